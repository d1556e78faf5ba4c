//! End-to-end tests of named snapshots with real `tern` processes: `savevm`, `loadvm`,
//! `delvm` and `info snapshots` on the human monitor, `--loadvm` in a new process, damaged
//! files, failed saves, `tern snapshot inspect|verify`, and the snapshot committed in
//! `testdata/snapshots/`, which every later format version must still load.
//!
//! The guest is `testdata/guests/counter.bin` with a deterministic clock: it prints
//! numbered lines with a PIT count, so a continuation after a load can be compared byte
//! for byte with what followed the save the first time.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// `--clock deterministic` with the counter guest: a line every 2 ms of guest time,
/// 256 pages dirtied.
const COUNTER: &str = "every=2 pages=256";

/// The paths of one guest process of these tests.
struct Files {
    serial: PathBuf,
    sock: PathBuf,
    snaps: PathBuf,
    stderr: PathBuf,
}

/// Starts the counter guest with `append` as its options and a deterministic clock, a
/// human monitor on `mon.sock` and the snapshot directory `snaps` in `dir`, its serial
/// output in `NAME.txt` and its stderr in `NAME.err`, plus `extra` arguments.
fn start(dir: &TempDir, name: &str, append: &str, extra: &[&str]) -> (Tern, Files) {
    let f = Files {
        serial: dir.path(&format!("{name}.txt")),
        sock: dir.path("mon.sock"),
        snaps: dir.path("snaps"),
        stderr: dir.path(&format!("{name}.err")),
    };
    let mon = format!("unix:{}", f.sock.display());
    let mut more = vec![
        "--clock",
        "deterministic",
        "--monitor",
        &mon,
        "--snapshot-dir",
        f.snaps.to_str().unwrap(),
    ];
    more.extend_from_slice(extra);
    let args = counter_args(append, &f.serial, &more);
    (Tern::spawn_logged(&strs(&args), &f.stderr), f)
}

fn snapshot_file(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("{tag}.tern"))
}

/// Where `cont` (output after a load) starts in `before` (output up to the load): the
/// position whose text `cont` repeats. `cont` must hold at least two complete lines.
fn replay_start(before: &str, cont: &str) -> usize {
    // The first complete line of the continuation is unique in the run (it has a line
    // number); the continuation may start in the middle of the line before it.
    let first_end = cont.find("\r\n").expect("a line in the continuation") + 2;
    let next_end = cont[first_end..]
        .find("\r\n")
        .map(|i| first_end + i + 2)
        .expect("a complete line in the continuation");
    let line = &cont[first_end..next_end];
    let at = before
        .find(line)
        .unwrap_or_else(|| panic!("{line:?} never came before the load:\n{before}"));
    assert!(at >= first_end, "{line:?} is at the start of the output");
    at - first_end
}

#[test]
fn savevm_loadvm_delvm_on_the_human_monitor() {
    let dir = TempDir::new("snap-hmp");
    let (
        mut tern,
        Files {
            serial,
            sock,
            snaps,
            ..
        },
    ) = start(&dir, "serial", COUNTER, &[]);
    let mut m = Monitor::connect(&mut tern, &sock);
    wait_counter(&serial, 5);

    // Saved while the guest runs; it runs on.
    assert_eq!(m.cmd("savevm t1"), "");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    let saved_at = file_text(&serial).len();
    wait_counter(
        &serial,
        counter_lines(&file_text(&serial)).len() as u32 + 10,
    );

    let list = m.cmd("info snapshots");
    let row = list
        .lines()
        .find(|l| l.starts_with("t1 "))
        .unwrap_or_else(|| panic!("t1 not listed:\n{list}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // TAG, size and unit, date, time, VM clock.
    assert_eq!(cols.len(), 6, "{row}");
    let size: u64 = cols[1].parse().unwrap_or_else(|_| panic!("size in {row}"));
    let file_size = std::fs::metadata(snapshot_file(&snaps, "t1"))
        .unwrap()
        .len();
    assert_eq!(size, file_size.div_ceil(1024), "{row}");
    assert_eq!(cols[2], "KiB", "{row}");
    assert!(
        cols[3].len() == 10 && cols[3].as_bytes()[4] == b'-' && cols[4].len() == 8,
        "date in {row}"
    );
    // Guest time at the save: a few lines of 2 ms each, never zero.
    let clock = cols[5];
    assert!(
        clock.len() == 12 && clock.starts_with("00:00:0") && clock != "00:00:00.000",
        "VM clock in {row}"
    );

    // Stopped, so that the output before the load is known exactly.
    assert_eq!(m.cmd("stop"), "");
    let before = file_text(&serial);
    assert_eq!(m.cmd("loadvm t1"), "");
    assert_eq!(m.cmd("info status"), "VM status: paused\n");
    assert_eq!(m.cmd("cont"), "");
    let lines_before = counter_lines(&before).len() as u32;
    let after = wait_counter(&serial, lines_before + 12);
    let cont = &after[before.len()..];
    let start = replay_start(&before, cont);
    assert!(
        start <= saved_at,
        "the continuation starts after the save's point"
    );
    // Byte for byte what followed the save the first time, PIT counts included.
    let overlap = (before.len() - start).min(cont.len());
    assert_eq!(
        &cont[..overlap],
        &before[start..start + overlap],
        "the replay differs from the first run"
    );
    assert!(overlap > 200, "the replay overlaps only {overlap} bytes");
    check_counter_run(&before[..start], "before the save");
    check_counter_run(&(before[..start].to_string() + cont), "after the load");

    // A tag that does not exist: a clear error, the guest runs on.
    let e = m.cmd("loadvm nosuch");
    assert_eq!(e, "Error: snapshot 'nosuch' does not exist\n");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    let n = counter_lines(&file_text(&serial)).len() as u32;
    wait_counter(&serial, n + 3);

    assert_eq!(m.cmd("delvm t1"), "");
    assert!(!snapshot_file(&snaps, "t1").exists());
    assert_eq!(m.cmd("info snapshots"), "There is no snapshot available.\n");
    assert_eq!(m.cmd("delvm t1"), "Error: snapshot 't1' does not exist\n");
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));
}

/// Runs `tern run` with a deterministic clock, the serial output to `NAME.txt` and
/// `--digest-on-exit`, plus `extra`, to its end; returns the exit status, the serial output
/// and the digest at exit.
fn run_to_exit(dir: &TempDir, name: &str, extra: &[&str]) -> (i32, String, String) {
    let serial = dir.path(&format!("{name}.txt"));
    let stderr = dir.path(&format!("{name}.err"));
    let mut args: Vec<String> = vec![
        "run".into(),
        "--serial".into(),
        format!("file:{}", serial.display()),
        "--clock".into(),
        "deterministic".into(),
        "--digest-on-exit".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let status = Tern::spawn_logged(&strs(&args), &stderr).wait();
    (
        status.code().unwrap_or(-1),
        file_text(&serial),
        exit_digest(&stderr),
    )
}

#[test]
fn loadvm_in_a_new_process_finishes_like_the_uninterrupted_run() {
    let dir = TempDir::new("snap-new");
    let append = "exit=150 every=2 pages=256";
    let (
        mut first,
        Files {
            serial,
            sock,
            snaps,
            stderr,
        },
    ) = start(&dir, "first", append, &["--digest-on-exit"]);
    let mut m = Monitor::connect(&mut first, &sock);
    wait_counter(&serial, 10);
    assert_eq!(m.cmd("savevm mid"), "");
    assert_eq!(first.wait().code(), Some(1), "{}", file_text(&stderr));
    let whole = file_text(&serial);
    let digest = exit_digest(&stderr);
    assert_eq!(check_counter_run(&whole, "first run"), 150);
    assert!(whole.ends_with("PASS counter\r\n"), "{whole}");

    // A new process boots whatever it is given, then takes the snapshot's state: the
    // built-in demo guest here, with only the RAM size (128M) in common.
    let (status, resumed, resumed_digest) = run_to_exit(
        &dir,
        "resumed",
        &["--loadvm", "mid", "--snapshot-dir", snaps.to_str().unwrap()],
    );
    assert_eq!(status, 1, "{resumed}");
    assert!(
        resumed.len() > 200 && resumed.len() < whole.len() - 200,
        "resumed run printed {} of {} bytes",
        resumed.len(),
        whole.len()
    );
    assert!(
        whole.ends_with(&resumed),
        "the resumed run's output is not the rest of the first run's:\n{resumed}"
    );
    assert_eq!(resumed_digest, digest, "machine state at exit");

    // A tag that does not exist: an error before anything runs.
    let err = dir.path("missing.err");
    let status = Tern::spawn_logged(
        &[
            "run",
            "--loadvm",
            "nosuch",
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
        &err,
    )
    .wait();
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        file_text(&err),
        "tern: error: snapshot 'nosuch' does not exist\n"
    );
}

/// `tern snapshot ARGS`: exit status and stdout + stderr.
fn snapshot_tool(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(TERN)
        .arg("snapshot")
        .args(args)
        .output()
        .expect("run tern snapshot");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn damaged_snapshots_are_refused_and_the_guest_runs_on() {
    let dir = TempDir::new("snap-bad");
    let (
        mut tern,
        Files {
            serial,
            sock,
            snaps,
            ..
        },
    ) = start(&dir, "serial", COUNTER, &["--memory", "16M"]);
    let mut m = Monitor::connect(&mut tern, &sock);
    wait_counter(&serial, 3);
    assert_eq!(m.cmd("savevm good"), "");
    let good = std::fs::read(snapshot_file(&snaps, "good")).unwrap();
    // One bit flipped in the middle: guest RAM (the device sections are at the head,
    // the description at the tail, both small).
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    std::fs::write(snapshot_file(&snaps, "flipped"), &flipped).unwrap();
    std::fs::write(
        snapshot_file(&snaps, "truncated"),
        &good[..good.len() * 2 / 3],
    )
    .unwrap();

    // Stopped, a failed load leaves the machine exactly as it was.
    assert_eq!(m.cmd("stop"), "");
    let digest = m.cmd("info digest");
    assert_eq!(digest.len(), 65, "{digest}");
    let e = m.cmd("loadvm flipped");
    assert!(
        e.starts_with(
            "Error: cannot load snapshot 'flipped': corrupt machine state: checksum mismatch"
        ),
        "{e}"
    );
    assert_eq!(m.cmd("info digest"), digest);
    let e = m.cmd("loadvm truncated");
    assert!(
        e.starts_with("Error: cannot load snapshot 'truncated': corrupt machine state: stream truncated at offset"),
        "{e}"
    );
    assert_eq!(m.cmd("info digest"), digest);
    // Intact, but from a machine with 4 MiB of RAM.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/snapshots");
    std::fs::copy(
        committed.join("counter-v1.tern"),
        snapshot_file(&snaps, "small"),
    )
    .unwrap();
    let e = m.cmd("loadvm small");
    assert!(
        e.starts_with("Error: cannot load snapshot 'small': the state belongs to another machine"),
        "{e}"
    );
    assert_eq!(m.cmd("info digest"), digest);
    assert_eq!(m.cmd("info status"), "VM status: paused\n");

    // Running, it runs on.
    assert_eq!(m.cmd("cont"), "");
    let e = m.cmd("loadvm flipped");
    assert!(e.contains("checksum mismatch"), "{e}");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    let n = check_counter_run(&file_text(&serial), "before the failed loads");
    let out = wait_counter(&serial, n + 5);
    check_counter_run(&out, "after the failed loads");
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));

    // The offline checker names the damage.
    let path = |tag: &str| snapshot_file(&snaps, tag).to_str().unwrap().to_string();
    let (status, out, _) = snapshot_tool(&["verify", &path("good")]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
    let (status, out, _) = snapshot_tool(&["verify", &path("flipped")]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("damaged") && out.contains("checksum mismatch"),
        "{out}"
    );
    // inspect describes a damaged file too, and says that it is damaged.
    let (status, out, err) = snapshot_tool(&["inspect", "--json", &path("flipped")]);
    assert_eq!(status, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).expect("inspect --json is JSON");
    assert_eq!(d["checksum"]["ok"], false, "{out}");
    let (status, out, _) = snapshot_tool(&["verify", &path("truncated")]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("damaged") && out.contains("truncated"),
        "{out}"
    );

    // The description of a good file is JSON with the config, the sections and RAM.
    let (status, out, err) = snapshot_tool(&["inspect", "--json", &path("good")]);
    assert_eq!(status, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).expect("inspect --json is JSON");
    assert_eq!(d["format"], "tern-vmstate");
    assert_eq!(d["checksum"]["ok"], true, "{out}");
    assert_eq!(d["trailer_ok"], true, "{out}");
    assert_eq!(d["config"]["ram_size"], 16u64 << 20);
    assert_eq!(d["config"]["machine"], "tern-pc");
    let names: Vec<&str> = d["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cpu",
            "clock",
            "pic",
            "pit",
            "rtc",
            "i8042",
            "uart",
            "debug-exit",
            "board"
        ]
    );
    assert_eq!(d["ram"]["pages"], 4096);
    // The counter's 256 pages and the kernel at least.
    assert!(d["ram"]["data_pages"].as_u64().unwrap() > 256, "{out}");
    // The stream, then its description for tools.
    let stream_len = d["stream_len"].as_u64().unwrap();
    assert!(stream_len < good.len() as u64 && stream_len + 4096 > good.len() as u64);
}

#[test]
fn a_failed_save_leaves_no_file_and_the_guest_running() {
    let dir = TempDir::new("snap-fail");
    // The snapshot directory is a regular file: nothing can be saved in it.
    std::fs::write(dir.path("snaps"), b"not a directory").unwrap();
    let (
        mut tern,
        Files {
            serial,
            sock,
            snaps,
            ..
        },
    ) = start(&dir, "serial", COUNTER, &["--memory", "16M"]);
    let pid = tern.0.id();
    let mut m = Monitor::connect(&mut tern, &sock);
    wait_counter(&serial, 3);
    let e = m.cmd("savevm t1");
    assert!(
        e.starts_with("Error: cannot save snapshot 't1': ") && e.contains(snaps.to_str().unwrap()),
        "{e}"
    );
    assert_eq!(std::fs::read(&snaps).unwrap(), b"not a directory");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    assert!(m.cmd("info snapshots").starts_with("Error: "));

    // A directory that exists, but where the file cannot be written: the temporary file's
    // name is taken by a directory. An older snapshot of the same tag stays as it was.
    std::fs::remove_file(&snaps).unwrap();
    assert_eq!(m.cmd("savevm t1"), "");
    let old = std::fs::read(snapshot_file(&snaps, "t1")).unwrap();
    std::fs::create_dir(snaps.join(format!(".t1.tern.tmp-{pid}"))).unwrap();
    std::fs::create_dir(snaps.join(format!(".t2.tern.tmp-{pid}"))).unwrap();
    for tag in ["t1", "t2"] {
        let e = m.cmd(&format!("savevm {tag}"));
        assert!(
            e.starts_with(&format!("Error: cannot save snapshot '{tag}': ")),
            "{e}"
        );
    }
    assert_eq!(std::fs::read(snapshot_file(&snaps, "t1")).unwrap(), old);
    assert!(!snapshot_file(&snaps, "t2").exists());
    let list = m.cmd("info snapshots");
    assert_eq!(
        list.lines().filter(|l| l.starts_with("t")).count(),
        1,
        "{list}"
    );
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    let n = check_counter_run(&file_text(&serial), "before the failed saves");
    let out = wait_counter(&serial, n + 5);
    check_counter_run(&out, "after the failed saves");
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));
}

/// The snapshot committed with format version 1 (see `testdata/snapshots/README.md`)
/// still loads, and the guest finishes exactly as it did when the file was made.
#[test]
fn the_committed_version_1_snapshot_still_loads() {
    let dir = TempDir::new("snap-v1");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/snapshots");
    let snaps = dir.path("snaps");
    std::fs::create_dir(&snaps).unwrap();
    std::fs::copy(
        committed.join("counter-v1.tern"),
        snapshot_file(&snaps, "counter-v1"),
    )
    .unwrap();
    let expected = file_text(&committed.join("counter-v1.out"));
    let (status, out, _) = run_to_exit(
        &dir,
        "v1",
        &[
            "--memory",
            "4M",
            "--loadvm",
            "counter-v1",
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 1, "{out}");
    let lines = counter_lines(&out);
    assert_eq!(lines, (13..=40).collect::<Vec<u32>>(), "{out}");
    assert!(
        out.ends_with("count 000040 pit 0001\r\nPASS counter\r\n"),
        "{out}"
    );
    assert_eq!(out, expected, "the guest's output after loading");
}
