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
    # The server ends the connection after a quit; the client library reports the end of
    # the stream it did not ask for as EOFError (QEMU's own test harness expects it too).
    try:
        await qmp.disconnect()
    except EOFError:
        pass


async def job_events(listener, job_id):
    """The JOB_STATUS_CHANGE statuses of one job, up to and including "concluded"."""
    seen = []
    while not seen or seen[-1] != "concluded":
        ev = await asyncio.wait_for(listener.get(), 10)
        if ev["event"] == "JOB_STATUS_CHANGE" and ev["data"]["id"] == job_id:
            seen.append(ev["data"]["status"])
    return seen


async def run_job(qmp, command, job_id, tag):
    """Runs a snapshot job; returns its query-jobs entry once concluded."""
    with qmp.listener("JOB_STATUS_CHANGE") as listener:
        ret = await qmp.execute(command, {"job-id": job_id, "tag": tag, "vmstate": "disk0",
                                          "devices": ["disk0"]})
        check(ret == {}, f"{command} {tag} returns at once")
        seen = await job_events(listener, job_id)
    check(seen == ["created", "running", "waiting", "pending", "concluded"],
          f"{command} {tag}: JOB_STATUS_CHANGE {seen}")
    jobs = await qmp.execute("query-jobs")
    job = next(j for j in jobs if j["id"] == job_id)
    check(job["type"] == command and job["status"] == "concluded",
          f"query-jobs shows {job_id} concluded")
    with qmp.listener("JOB_STATUS_CHANGE") as listener:
        await qmp.execute("job-dismiss", {"id": job_id})
        ev = await asyncio.wait_for(listener.get(), 10)
        check(ev["data"] == {"id": job_id, "status": "null"}, f"job-dismiss {job_id}: {ev['data']}")
    jobs = await qmp.execute("query-jobs")
    check(all(j["id"] != job_id for j in jobs), f"{job_id} gone after job-dismiss")
    return job


async def snapshots(sock, snapdir):
    """snapshot-save / -load / -delete as jobs, with their events and their errors."""
    import os
    qmp = QMPClient("tern-test")
    await qmp.connect(sock)
    job = await run_job(qmp, "snapshot-save", "save0", "s1")
    check("error" not in job, "snapshot-save succeeded")
    check(os.path.exists(os.path.join(snapdir, "s1.tern")), "the snapshot file exists")
    st = await qmp.execute("query-status")
    check(st["running"] is True, "the guest runs on after snapshot-save")

    job = await run_job(qmp, "snapshot-load", "load0", "s1")
    check("error" not in job, "snapshot-load succeeded")
    st = await qmp.execute("query-status")
    check(st["running"] is True, "the guest runs on after snapshot-load")

    # A job that fails concludes too, with its error in query-jobs.
    job = await run_job(qmp, "snapshot-load", "load1", "nosuch")
    check("nosuch" in job.get("error", ""), f"failed snapshot-load: {job.get('error')}")
    try:
        await qmp.execute("job-dismiss", {"id": "load1"})
        check(False, "dismissing a dismissed job raises")
    except ExecuteError as e:
        check("load1" in str(e), f"job-dismiss of a gone job: {e}")

    job = await run_job(qmp, "snapshot-delete", "del0", "s1")
    check("error" not in job, "snapshot-delete succeeded")
    check(not os.path.exists(os.path.join(snapdir, "s1.tern")), "the snapshot file is gone")
    text = await qmp.execute("human-monitor-command", {"command-line": "info snapshots"})
    check(text == "There is no snapshot available.\n", f"info snapshots: {text!r}")
    st = await qmp.execute("query-status")
    check(st["running"] is True, "the guest still runs")
    await qmp.disconnect()


async def migrate(src_sock, dst_sock, port):
    """A whole migration driven over QMP, as management tools drive QEMU's."""
    uri = f"tcp:127.0.0.1:{port}"
    src = QMPClient("tern-src")
    await src.connect(src_sock)
    dst = QMPClient("tern-dst")
    await dst.connect(dst_sock)
    st = await dst.execute("query-status")
    check(st["running"] is False, f"destination before migrate-incoming: {st}")
    with src.listener(("MIGRATION", "MIGRATION_PASS", "STOP")) as src_events, \
            dst.listener(("MIGRATION", "RESUME")) as dst_events:
        await dst.execute("migrate-incoming", {"uri": uri})
        st = await dst.execute("query-status")
        check(st == {"running": False, "status": "inmigrate"}, f"destination waits: {st}")
        await src.execute("migrate-set-parameters",
                          {"max-bandwidth": 256 << 20, "downtime-limit": 500})
        p = await src.execute("query-migrate-parameters")
        check(p["max-bandwidth"] == 256 << 20 and p["downtime-limit"] == 500,
              f"query-migrate-parameters {p}")
        caps = await src.execute("query-migrate-capabilities")
        check(any(c["capability"] == "auto-converge" for c in caps),
              "query-migrate-capabilities lists auto-converge")
        await src.execute("migrate-set-capabilities",
                          {"capabilities": [{"capability": "auto-converge", "state": True}]})
        ret = await src.execute("migrate", {"uri": uri})
        check(ret == {}, "migrate returns at once")
        info = {}
        for _ in range(3000):
            info = await src.execute("query-migrate")
            if info["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.02)
        check(info["status"] == "completed", f"query-migrate: {info.get('status')} {info}")
        ram = info["ram"]
        check(ram["transferred"] >= ram["normal-bytes"] > 0 and ram["remaining"] == 0
              and ram["dirty-sync-count"] >= 2, f"ram figures {ram}")
        check("downtime" in info and "total-time" in info, "downtime and total time")

        statuses, passes, stopped = [], [], False
        while not statuses or statuses[-1] != "completed":
            ev = await asyncio.wait_for(src_events.get(), 10)
            if ev["event"] == "MIGRATION":
                statuses.append(ev["data"]["status"])
            elif ev["event"] == "MIGRATION_PASS":
                passes.append(ev["data"]["pass"])
            else:
                stopped = True
        check(statuses == ["setup", "active", "device", "completed"],
              f"source MIGRATION events {statuses}")
        check(passes == list(range(1, len(passes) + 1)) and len(passes) >= 2,
              f"MIGRATION_PASS events {passes}")
        check(stopped, "STOP on the source")

        statuses, resumed = [], False
        while not (resumed and statuses and statuses[-1] == "completed"):
            ev = await asyncio.wait_for(dst_events.get(), 10)
            if ev["event"] == "MIGRATION":
                statuses.append(ev["data"]["status"])
            else:
                resumed = True
        check(statuses == ["setup", "active", "completed"],
              f"destination MIGRATION events {statuses}")
    st = await dst.execute("query-status")
    check(st == {"running": True, "status": "running"}, f"destination runs: {st}")
    st = await src.execute("query-status")
    check(st == {"running": False, "status": "postmigrate"}, f"source stays stopped: {st}")
    info = await dst.execute("query-migrate")
    check(info["status"] == "completed", "query-migrate on the destination")
    await src.disconnect()
    await dst.disconnect()


async def main():
    scenario, sock = sys.argv[1], sys.argv[2]
    scenarios = {"basic": basic, "quit": quit_, "snapshots": snapshots, "migrate": migrate}
    await scenarios[scenario](sock, *sys.argv[3:])


asyncio.run(main())
