//! Snapshots under host failure: a write error in the middle of `savevm` (a file size
//! limit, standing in for a full disk) and a `tern` killed in the middle of one. Neither
//! leaves a partial file under the tag; the earlier snapshot of that tag survives intact
//! and loads; after the write error the guest runs on.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn tern_under_sh(script: &str) -> Tern {
    let child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sh");
    Tern(child)
}

/// Takes snapshot `tag` of the demo guest in its own process; returns the file's bytes.
fn first_snapshot(dir: &TempDir, snaps: &Path, tag: &str, memory: &str) -> Vec<u8> {
    let mon = dir.path("first.sock");
    let mon_arg = format!("unix:{}", mon.display());
    let mut tern = Tern::spawn(&[
        "run",
        "--serial",
        "none",
        "--memory",
        memory,
        "--monitor",
        &mon_arg,
        "--snapshot-dir",
        snaps.to_str().unwrap(),
    ]);
    let mut m = Monitor::connect(&mut tern, &mon);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(m.cmd(&format!("savevm {tag}")), "");
    m.send(b"quit\n");
    tern.wait();
    std::fs::read(snaps.join(format!("{tag}.tern"))).unwrap()
}

/// The earlier snapshot still loads in a new process.
fn still_loads(dir: &TempDir, snaps: &Path, tag: &str, memory: &str) {
    let mon = dir.path("check.sock");
    let mon_arg = format!("unix:{}", mon.display());
    let mut tern = Tern::spawn(&[
        "run",
        "--serial",
        "none",
        "--memory",
        memory,
        "--monitor",
        &mon_arg,
        "--snapshot-dir",
        snaps.to_str().unwrap(),
        "--loadvm",
        tag,
    ]);
    let mut m = Monitor::connect(&mut tern, &mon);
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));
}

#[test]
fn a_write_error_mid_save_loses_nothing() {
    let dir = TempDir::new("snapfull");
    let snaps = dir.path("snaps");
    let keep = first_snapshot(&dir, &snaps, "t", "128M");
    // Now a tern whose files may not grow past 4 KiB (ulimit -f counts 1 KiB blocks), far
    // less than a snapshot; SIGXFSZ is ignored so writes fail with EFBIG, as on a full disk.
    let mon = dir.path("mon.sock");
    let script = format!(
        "trap '' XFSZ; ulimit -f 4; exec {TERN} run --serial none --monitor unix:{} --snapshot-dir {}",
        mon.display(),
        snaps.display()
    );
    let mut tern = tern_under_sh(&script);
    let mut m = Monitor::connect(&mut tern, &mon);
    let err = m.cmd("savevm t");
    assert!(err.starts_with("Error:"), "{err}");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    assert_eq!(std::fs::read(snaps.join("t.tern")).unwrap(), keep);
    let names: Vec<String> = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["t.tern"], "no temporary file is left");
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));
    still_loads(&dir, &snaps, "t", "128M");
}

#[test]
fn a_kill_mid_save_loses_nothing() {
    let dir = TempDir::new("snapkill");
    let snaps = dir.path("snaps");
    // 2 GiB of RAM: a save reads all of it, long enough to be killed in the middle.
    let keep = first_snapshot(&dir, &snaps, "t", "2G");
    let mon = dir.path("mon.sock");
    let mon_arg = format!("unix:{}", mon.display());
    let mut tern = Tern::spawn(&[
        "run",
        "--serial",
        "none",
        "--memory",
        "2G",
        "--monitor",
        &mon_arg,
        "--snapshot-dir",
        snaps.to_str().unwrap(),
    ]);
    let mut m = Monitor::connect(&mut tern, &mon);
    m.send(b"savevm t\n");
    std::thread::sleep(Duration::from_millis(60));
    tern.0.kill().unwrap();
    tern.0.wait().unwrap();
    // Whether the kill came before the rename or after, the tag holds a whole snapshot.
    let now = std::fs::read(snaps.join("t.tern")).unwrap();
    assert!(
        now == keep || savevm::verify(&now[..]).is_ok(),
        "the tag holds a damaged file"
    );
    still_loads(&dir, &snaps, "t", "2G");
}
