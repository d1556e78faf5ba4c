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

/// `tern run` with a monitor on `NAME.sock` in `dir`, snapshots in `snaps`, `memory` of
/// RAM and `extra` arguments (without --kernel: the demo guest, its serial port off).
fn start(dir: &TempDir, name: &str, snaps: &Path, memory: &str, extra: &[&str]) -> (Tern, Monitor) {
    let mon = dir.path(&format!("{name}.sock"));
    let mon_arg = format!("unix:{}", mon.display());
    let mut args = vec![
        "run",
        "--memory",
        memory,
        "--monitor",
        &mon_arg,
        "--snapshot-dir",
        snaps.to_str().unwrap(),
    ];
    if !extra.contains(&"--serial") {
        args.extend(["--serial", "none"]);
    }
    args.extend_from_slice(extra);
    let mut tern = Tern::spawn(&args);
    let m = Monitor::connect(&mut tern, &mon);
    (tern, m)
}

/// Takes snapshot `tag` of the demo guest in its own process; returns the file's bytes.
fn first_snapshot(dir: &TempDir, snaps: &Path, tag: &str, memory: &str) -> Vec<u8> {
    let (mut tern, mut m) = start(dir, "first", snaps, memory, &[]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(m.cmd(&format!("savevm {tag}")), "");
    m.send(b"quit\n");
    tern.wait();
    std::fs::read(snaps.join(format!("{tag}.tern"))).unwrap()
}

/// The earlier snapshot still loads in a new process.
fn still_loads(dir: &TempDir, snaps: &Path, tag: &str, memory: &str) {
    let (mut tern, mut m) = start(dir, "check", snaps, memory, &["--loadvm", tag]);
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
    let keep = first_snapshot(&dir, &snaps, "t", "2G");
    // A guest that has written 1 GiB: saving it takes a good part of a second (pages
    // never written cost nothing, so an idle guest's save would be over at once).
    let serial = dir.path("fill.txt");
    let serial_arg = format!("file:{}", serial.display());
    let fill = guest("fill.bin");
    let (mut tern, mut m) = start(
        &dir,
        "mon",
        &snaps,
        "2G",
        &[
            "--kernel",
            fill.to_str().unwrap(),
            "--append",
            "fill=1024 idle=0",
            "--serial",
            &serial_arg,
        ],
    );
    wait_file(&serial, "the guest's fill", |t| t.contains("filled"));
    m.send(b"savevm t\n");
    // Killed once the new file is well under way: before its rename, in the middle.
    let partial = |e: &std::fs::DirEntry| {
        e.file_name().to_string_lossy().starts_with(".t.tern.tmp-")
            && e.metadata().is_ok_and(|md| md.len() > 16 << 20)
    };
    wait_until("the save under way", || {
        std::fs::read_dir(&snaps).is_ok_and(|d| d.flatten().any(|e| partial(&e)))
    });
    tern.0.kill().unwrap();
    tern.0.wait().unwrap();
    // The tag holds the earlier snapshot, whole; what was being written is a stale
    // temporary file that no listing shows.
    assert!(
        std::fs::read(snaps.join("t.tern")).unwrap() == keep,
        "the tag changed"
    );
    let stale = std::fs::read_dir(&snaps).unwrap().flatten().find(partial);
    let stale = stale.expect("the killed save's temporary file").path();
    assert!(savevm::verify(&std::fs::read(stale).unwrap()[..]).is_err());
    still_loads(&dir, &snaps, "t", "2G");
}
