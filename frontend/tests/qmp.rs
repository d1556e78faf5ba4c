//! QMP driven by QEMU's own client library, `qemu.qmp` (PyPI `qemu-qmp`), against real
//! `tern` processes: if tern speaks QMP as QEMU does, the tools written for QEMU work.
//!
//! The Python side is `tests/qmp/client.py`. It needs a Python with `qemu.qmp`:
//! `TERN_QMP_PYTHON` names it (`.ci/run` makes a virtual environment and sets it), else
//! `python3` is tried. Without the library the tests say so and pass, unless
//! `TERN_REQUIRE_QMP=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::*;

/// A Python that can `import qemu.qmp`, if there is one.
fn python() -> Option<String> {
    let py = std::env::var("TERN_QMP_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import qemu.qmp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("TERN_REQUIRE_QMP").is_err(),
            "TERN_REQUIRE_QMP is set but {py} cannot import qemu.qmp"
        );
        eprintln!("qemu.qmp not available to {py}: QMP client test skipped");
    }
    ok.then_some(py)
}

/// Runs a scenario of client.py; panics with its output when it fails.
fn client(py: &str, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/qmp/client.py");
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .output()
        .expect("run the QMP client");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "QMP client failed:\n{text}");
    text
}

#[test]
fn qemu_qmp_client_drives_tern() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("qmp");
    let sock = dir.path("qmp.sock");
    let sock_arg = format!("unix:{}", sock.display());
    let mut tern = Tern::spawn(&["run", "--qmp", &sock_arg, "--serial", "none"]);
    wait_path(&mut tern, &sock);
    let mode = std::fs::metadata(&sock).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "the QMP socket is owner-only"
    );
    let out = client(&py, &["basic", sock.to_str().unwrap()]);
    assert!(
        out.contains("ok: connection and guest survive errors"),
        "{out}"
    );
    // The guest is still running and a monitor still answers: quit through QMP's own
    // human-monitor passthrough.
    let out = client(&py, &["quit", sock.to_str().unwrap()]);
    assert!(out.contains("ok: SHUTDOWN"), "{out}");
    assert_eq!(tern.wait().code(), Some(0));
}

#[test]
fn snapshot_jobs_through_qemu_qmp() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("qmp-snap");
    let (sock, snaps, serial) = (
        dir.path("qmp.sock"),
        dir.path("snaps"),
        dir.path("serial.txt"),
    );
    let args = counter_args(
        "every=2 pages=64",
        &serial,
        &[
            "--memory",
            "16M",
            "--qmp",
            &format!("unix:{}", sock.display()),
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    let mut tern = Tern::spawn(&strs(&args));
    wait_path(&mut tern, &sock);
    let out = client(
        &py,
        &["snapshots", sock.to_str().unwrap(), snaps.to_str().unwrap()],
    );
    assert!(out.contains("ok: the guest still runs"), "{out}");
    // The load took the guest back to the save; it runs on from there.
    let n = counter_lines(&file_text(&serial)).len() as u32;
    wait_counter(&serial, n + 3);
    client(&py, &["quit", sock.to_str().unwrap()]);
    assert_eq!(tern.wait().code(), Some(0));
}

#[test]
fn a_migration_driven_through_qemu_qmp() {
    let Some(py) = python() else { return };
    let dir = TempDir::new("qmp-mig");
    let start = |name: &str, extra: &[&str]| {
        let sock = dir.path(&format!("{name}.sock"));
        let serial = dir.path(&format!("{name}.txt"));
        let qmp = format!("unix:{}", sock.display());
        let mut more = vec!["--memory", "32M", "--qmp", &qmp];
        more.extend_from_slice(extra);
        let args = counter_args("every=5", &serial, &more);
        let mut tern = Tern::spawn(&strs(&args));
        wait_path(&mut tern, &sock);
        (tern, sock, serial)
    };
    let (mut src, src_sock, src_serial) = start("src", &[]);
    let (mut dst, dst_sock, dst_serial) = start("dst", &["--incoming", "defer"]);
    wait_counter(&src_serial, 3);
    let port = free_port().to_string();
    let out = client(
        &py,
        &[
            "migrate",
            src_sock.to_str().unwrap(),
            dst_sock.to_str().unwrap(),
            &port,
        ],
    );
    assert!(
        out.contains("ok: query-migrate on the destination"),
        "{out}"
    );
    let before = file_text(&src_serial);
    let after = wait_counter(&dst_serial, 5);
    check_counter_run(&(before + &after), "source output, then destination output");
    client(&py, &["quit", src_sock.to_str().unwrap()]);
    client(&py, &["quit", dst_sock.to_str().unwrap()]);
    assert_eq!(src.wait().code(), Some(0));
    assert_eq!(dst.wait().code(), Some(0));
}

/// `qmp-shell`, the interactive client of the same package, connects and runs a command.
#[test]
fn qmp_shell_runs_query_status() {
    let Some(py) = python() else { return };
    let shell = std::path::Path::new(&py).with_file_name("qmp-shell");
    if !shell.exists() {
        assert!(
            std::env::var("TERN_REQUIRE_QMP").is_err(),
            "{} is missing",
            shell.display()
        );
        return;
    }
    let dir = TempDir::new("qmpshell");
    let sock = dir.path("qmp.sock");
    let sock_arg = format!("unix:{}", sock.display());
    let mut tern = Tern::spawn(&["run", "--qmp", &sock_arg, "--serial", "none"]);
    wait_path(&mut tern, &sock);
    let mut child = Command::new(&shell)
        .arg(&sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start qmp-shell");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"query-status\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(r#"{"return": {"running": true, "status": "running"}}"#),
        "{text}"
    );
}

/// Garbage, a half message, and a client that goes away in the middle of a command
/// disturb neither the guest nor another monitor.
#[test]
fn bad_clients_do_not_disturb_the_guest() {
    let dir = TempDir::new("qmpbad");
    let sock = dir.path("qmp.sock");
    let mon = dir.path("mon.sock");
    let (sock_arg, mon_arg) = (
        format!("unix:{}", sock.display()),
        format!("unix:{}", mon.display()),
    );
    let mut tern = Tern::spawn(&[
        "run",
        "--qmp",
        &sock_arg,
        "--monitor",
        &mon_arg,
        "--serial",
        "none",
    ]);
    wait_path(&mut tern, &sock);
    let mut m = Monitor::connect(&mut tern, &mon);
    for junk in [
        &b"\x00\xff{{{not json]]\n"[..],
        b"{\"execute\": \"qmp_capabilities\"}{\"execute\": \"query-sta",
        &vec![b'['; 200_000][..],
    ] {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(junk).unwrap();
        // Leave without reading the replies or finishing the message.
        drop(c);
        assert_eq!(m.cmd("info status"), "VM status: running\n");
    }
    // A well-behaved client is still served.
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-status\",\"id\":9}\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"id\":9") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("\"status\":\"running\""));
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));
}
