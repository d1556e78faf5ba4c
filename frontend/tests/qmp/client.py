"""Drives a running tern with QEMU's own QMP client library (PyPI: qemu-qmp).

usage: client.py SCENARIO SOCKET [ARGS...]

Prints one line per check ("ok: ...") and exits non-zero on the first failure, so the
Rust test that starts tern shows what went wrong.
"""
import asyncio
import sys

from qemu.qmp import ExecuteError, QMPClient


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


async def basic(sock):
    qmp = QMPClient("tern-test")
    await qmp.connect(sock)
    check(qmp.greeting is not None, "greeting received and capabilities negotiated")
    ver = await qmp.execute("query-version")
    check(ver["qemu"]["major"] >= 1 and "tern" in ver["package"], f"query-version {ver}")
    st = await qmp.execute("query-status")
    check(st["status"] == "running" and st["running"] is True, f"query-status {st}")
    names = {c["name"] for c in await qmp.execute("query-commands")}
    check({"stop", "cont", "query-status"} <= names, "query-commands lists the basics")

    with qmp.listener() as listener:
        await qmp.execute("stop")
        ev = await asyncio.wait_for(listener.get(), 10)
        check(ev["event"] == "STOP" and "timestamp" in ev, f"STOP event {ev}")
    st = await qmp.execute("query-status")
    check(st["status"] == "paused" and st["running"] is False, f"stopped: {st}")
    with qmp.listener() as listener:
        await qmp.execute("cont")
        ev = await asyncio.wait_for(listener.get(), 10)
        check(ev["event"] == "RESUME", f"RESUME event {ev}")
    st = await qmp.execute("query-status")
    check(st["status"] == "running", "running again")

    text = await qmp.execute("human-monitor-command", {"command-line": "info status"})
    check(text == "VM status: running\n", f"human-monitor-command: {text!r}")
    try:
        await qmp.execute("no-such-command")
        check(False, "unknown command raises")
    except ExecuteError as e:
        check(e.error_class == "CommandNotFound", f"unknown command: {e.error_class}")
    try:
        await qmp.execute("stop", {"bogus": 1})
        check(False, "bad argument raises")
    except ExecuteError as e:
        check(e.error_class == "GenericError", f"bad argument: {e.error_class}")
    st = await qmp.execute("query-status")
    check(st["running"] is True, "connection and guest survive errors")
    await qmp.disconnect()


async def quit_(sock):
    qmp = QMPClient("tern-test")
    await qmp.connect(sock)
    with qmp.listener() as listener:
        await qmp.execute("quit")
        ev = await asyncio.wait_for(listener.get(), 10)
        check(
            ev["event"] == "SHUTDOWN" and ev["data"]["reason"] == "host-qmp-quit",
            f"SHUTDOWN event {ev['data']}",
        )
    await qmp.disconnect()


async def main():
    scenario, sock = sys.argv[1], sys.argv[2]
    scenarios = {"basic": basic, "quit": quit_}
    await scenarios[scenario](sock, *sys.argv[3:])


asyncio.run(main())
