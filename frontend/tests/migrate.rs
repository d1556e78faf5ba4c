//! End-to-end tests of live migration between real `tern` processes: every transport
//! (`tcp:`, `unix:`, `exec:`, `file:`, `fd:` handed over with `getfd`), the blocking
//! `migrate` of the human monitor, bandwidth and downtime settings, cancel, a destination
//! that goes away, a stream cut short, and a deterministic run that ends exactly as an
//! unmigrated one.
//!
//! The guest is `testdata/guests/counter.bin`: numbered lines, so the destination's output
//! must continue the source's without a gap or a repeat, and a region of RAM it rewrites
//! without pause, so every pass finds dirty pages.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;

/// Guest RAM of these tests: small enough to copy quickly, large enough for the counter's
/// 1024-page region.
const MEMORY: &str = "32M";

/// `info migrate` as a map from each line's label to its value.
fn info_migrate(m: &mut Monitor) -> HashMap<String, String> {
    m.cmd("info migrate")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A number of `info migrate`, without its unit.
fn number(info: &HashMap<String, String>, key: &str) -> u64 {
    info.get(key)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number for {key:?} in {info:?}"))
}

/// Polls `info migrate` until the status is `want`; panics on another final status.
fn wait_status(m: &mut Monitor, want: &str) -> HashMap<String, String> {
    let mut last = HashMap::new();
    wait_until(&format!("migration status {want}"), || {
        last = info_migrate(m);
        let status = last.get("Migration status").cloned().unwrap_or_default();
        if status != want && ["completed", "failed", "cancelled"].contains(&status.as_str()) {
            panic!("migration ended {status}, not {want}: {last:?}");
        }
        status == want
    });
    last
}

/// One `tern run` of the counter guest with a monitor socket.
struct Vm {
    tern: Tern,
    serial: std::path::PathBuf,
    sock: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl Vm {
    fn start(dir: &TempDir, name: &str, append: &str, extra: &[&str]) -> Vm {
        let serial = dir.path(&format!("{name}.txt"));
        let sock = dir.path(&format!("{name}.sock"));
        let stderr = dir.path(&format!("{name}.err"));
        let mon = format!("unix:{}", sock.display());
        let mut more = vec!["--monitor", mon.as_str()];
        if !extra.contains(&"--memory") {
            more.extend(["--memory", MEMORY]);
        }
        more.extend_from_slice(extra);
        let args = counter_args(append, &serial, &more);
        let tern = Tern::spawn_logged(&strs(&args), &stderr);
        Vm {
            tern,
            serial,
            sock,
            stderr,
        }
    }

    fn monitor(&mut self) -> Monitor {
        Monitor::connect(&mut self.tern, &self.sock)
    }

    fn output(&self) -> String {
        file_text(&self.serial)
    }

    /// Line ends so far (as `wait_counter` counts them): a destination's first line may
    /// be the end of one its source began.
    fn lines(&self) -> u32 {
        self.output().matches("\r\n").count() as u32
    }

    /// Waits until the guest has printed `more` lines beyond what it has now.
    fn wait_more(&self, more: u32) -> String {
        wait_counter(&self.serial, self.lines() + more)
    }
}

/// Checks a completed migration's figures on the source and that the source stays
/// stopped.
fn check_completed(info: &HashMap<String, String>, src: &mut Monitor) {
    let total = number(info, "total ram");
    assert_eq!(total, 32 << 10, "{info:?}");
    // Every page with data went at least once: the counter's region alone is 1024 pages.
    let normal = number(info, "normal");
    assert!(normal >= 1024, "{info:?}");
    assert!(
        number(info, "transferred ram") >= number(info, "normal bytes"),
        "{info:?}"
    );
    assert_eq!(number(info, "normal bytes"), normal * 4, "{info:?}");
    assert!(number(info, "dirty sync count") >= 2, "{info:?}");
    assert_eq!(number(info, "remaining ram"), 0, "{info:?}");
    assert_eq!(src.cmd("info status"), "VM status: paused (postmigrate)\n");
    // A stop changes nothing of a stopped guest, its run state included.
    assert_eq!(src.cmd("stop"), "");
    assert_eq!(src.cmd("info status"), "VM status: paused (postmigrate)\n");
}

/// The destination runs the guest and its output continues the source's.
fn check_continues(src: &Vm, dst: &mut Vm, dst_mon: &mut Monitor) {
    wait_until("the destination running", || {
        dst_mon.cmd("info status") == "VM status: running\n"
    });
    let before = src.output();
    let after = dst.wait_more(5);
    // The source has printed nothing since it stopped.
    assert_eq!(
        src.output(),
        before,
        "the source ran on after the migration"
    );
    let joined = before.clone() + &after;
    let last = check_counter_run(&joined, "source output, then destination output");
    assert!(
        last > counter_lines(&before).len() as u32 + 4,
        "source:\n{before}\ndestination:\n{after}"
    );
}

fn quit(vm: &mut Vm, m: &mut Monitor) {
    m.send(b"quit\n");
    assert_eq!(vm.tern.wait().code(), Some(0), "{}", file_text(&vm.stderr));
}

/// A live migration to a destination listening on `incoming`, started with
/// `migrate -d uri` on the source's monitor.
fn live_migration(name: &str, incoming: &str, uri: &str) {
    let dir = TempDir::new(name);
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", incoming]);
    let mut sm = src.monitor();
    let mut dm = dst.monitor();
    assert_eq!(dm.cmd("info status"), "VM status: paused (inmigrate)\n");
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd(&format!("migrate -d {uri}")), "");
    let info = wait_status(&mut sm, "completed");
    check_completed(&info, &mut sm);
    check_continues(&src, &mut dst, &mut dm);
    let dinfo = info_migrate(&mut dm);
    assert_eq!(dinfo["Migration status"], "completed", "{dinfo:?}");
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

#[test]
fn live_migration_over_tcp() {
    let port = free_port();
    let addr = format!("tcp:127.0.0.1:{port}");
    live_migration("mig-tcp", &addr, &addr);
}

#[test]
fn live_migration_over_a_unix_socket() {
    let dir = TempDir::new("mig-unix-sock");
    let addr = format!("unix:{}", dir.path("mig.sock").display());
    live_migration("mig-unix", &addr, &addr);
}

/// A guest rewriting 64 MiB without pause outpaces a 100 MiB/s link even at 1 % of its
/// speed (QEMU's ceiling): auto-converge goes past 99 % and the migration completes, and
/// the guest runs on at the destination.
#[test]
fn auto_converge_goes_past_99_percent_for_a_guest_rewriting_64_mib() {
    let dir = TempDir::new("mig-converge");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let args = ["--memory", "96M"];
    let mut src = Vm::start(&dir, "src", "every=5 pages=16384", &args);
    let incoming = [&args[..], &["--incoming", &addr]].concat();
    let mut dst = Vm::start(&dir, "dst", "every=5 pages=16384", &incoming);
    let mut sm = src.monitor();
    let mut dm = dst.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd("migrate_set_speed 100M"), "");
    assert_eq!(sm.cmd("migrate_set_capability auto-converge on"), "");
    assert_eq!(sm.cmd(&format!("migrate -d {addr}")), "");
    let mut past_99 = false;
    let mut last = HashMap::new();
    wait_until("the migration to end", || {
        last = info_migrate(&mut sm);
        // "99 (exactly 99.9512 %)": the throttle beyond QEMU's range.
        past_99 |= last
            .get("cpu throttle percentage")
            .is_some_and(|t| t.contains("exactly"));
        last.get("Migration status")
            .is_some_and(|s| ["completed", "failed", "cancelled"].contains(&s.as_str()))
    });
    assert_eq!(last["Migration status"], "completed", "{last:?}");
    assert!(past_99, "the throttle never went past 99 %: {last:?}");
    assert!(number(&last, "dirty sync count") >= 3, "{last:?}");
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

/// A guest paused on the source arrives paused, as QEMU's does, and `cont` runs it on
/// from where it stopped.
#[test]
fn a_paused_guest_arrives_paused() {
    let dir = TempDir::new("mig-paused");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &addr]);
    let mut sm = src.monitor();
    let mut dm = dst.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd("stop"), "");
    assert_eq!(sm.cmd(&format!("migrate {addr}")), "");
    let info = info_migrate(&mut sm);
    assert_eq!(info["Migration status"], "completed", "{info:?}");
    wait_until("the destination loaded", || {
        info_migrate(&mut dm)
            .get("Migration status")
            .is_some_and(|s| s == "completed")
    });
    assert_eq!(dm.cmd("info status"), "VM status: paused\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(dst.output(), "", "the paused guest printed");
    assert_eq!(dm.cmd("cont"), "");
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

/// `exec:` and `file:`: the stream goes to a file while the source runs; a destination
/// started afterwards from that file runs on from where the source stopped.
fn migration_through_a_file(
    name: &str,
    out_uri: impl Fn(&Path) -> String,
    in_uri: impl Fn(&Path) -> String,
) {
    let dir = TempDir::new(name);
    let stream = dir.path("stream.bin");
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut sm = src.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd(&format!("migrate -d {}", out_uri(&stream))), "");
    let info = wait_status(&mut sm, "completed");
    check_completed(&info, &mut sm);
    let len = std::fs::metadata(&stream).unwrap().len();
    assert!(len > 4 << 20, "the stream is only {len} bytes");
    let incoming = in_uri(&stream);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &incoming]);
    let mut dm = dst.monitor();
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

#[test]
fn migration_through_exec_commands() {
    migration_through_a_file(
        "mig-exec",
        |p| format!("exec:cat > {}", p.display()),
        |p| format!("exec:cat {}", p.display()),
    );
}

#[test]
fn migration_through_a_file_uri() {
    migration_through_a_file(
        "mig-file",
        |p| format!("file:{}", p.display()),
        |p| format!("file:{}", p.display()),
    );
}

/// Hands each monitor one end of a socket pair with `getfd mig` (SCM_RIGHTS; std has no
/// stable API for it, Python has `socket.send_fds`), then starts the destination with
/// `migrate_incoming fd:mig` and the source with `migrate -d fd:mig`.
const FD_HELPER: &str = r#"
import socket, sys

def monitor(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(60)
    buf = [b""]
    def reply():
        while b"(tern) " not in buf[0]:
            d = s.recv(4096)
            if not d:
                sys.exit("monitor closed: %r" % buf[0])
            buf[0] += d
        i = buf[0].index(b"(tern) ")
        text, buf[0] = buf[0][:i], buf[0][i + 7:]
        return text.decode()
    reply()
    return s, reply

def run(conn, line, fd=None):
    s, reply = conn
    if fd is None:
        s.sendall(line)
    else:
        socket.send_fds(s, [line], [fd])
    r = reply()
    if r != "":
        sys.exit("%r answered %r" % (line, r))

src, dst = monitor(sys.argv[1]), monitor(sys.argv[2])
a, b = socket.socketpair()
run(dst, b"getfd mig\n", b.fileno())
run(src, b"getfd mig\n", a.fileno())
a.close()
b.close()
run(dst, b"migrate_incoming fd:mig\n")
run(src, b"migrate -d fd:mig\n")
print("ok")
"#;

#[test]
fn migration_over_descriptors_handed_to_both_monitors() {
    let dir = TempDir::new("mig-fd");
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", "defer"]);
    let mut sm = src.monitor();
    let mut dm = dst.monitor();
    // Without a descriptor in the message there is nothing to keep.
    assert_eq!(
        sm.cmd("getfd nothing"),
        "Error: No file descriptor supplied via SCM_RIGHTS\n"
    );
    assert_eq!(dm.cmd("info status"), "VM status: paused\n");
    wait_counter(&src.serial, 3);
    let out = Command::new("python3")
        .args(["-c", FD_HELPER])
        .arg(&src.sock)
        .arg(&dst.sock)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "fd helper: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let info = wait_status(&mut sm, "completed");
    check_completed(&info, &mut sm);
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

/// A deterministic run migrated in the middle ends exactly as the same run unmigrated:
/// the same serial output, byte for byte (PIT counts included), and the same machine
/// digest at the guest's exit. Nothing was missed, nothing was sent twice, and guest
/// time did not notice the move.
#[test]
fn a_migrated_deterministic_run_ends_like_an_unmigrated_one() {
    let dir = TempDir::new("mig-det");
    let append = "exit=500 every=1";
    let det = ["--clock", "deterministic", "--digest-on-exit"];
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut reference = Vm::start(&dir, "ref", append, &det);
    let mut src = Vm::start(&dir, "src", append, &det);
    let mut dst_args = det.to_vec();
    dst_args.extend(["--incoming", &addr]);
    let mut dst = Vm::start(&dir, "dst", append, &dst_args);
    let mut sm = src.monitor();
    let _dm = dst.monitor();
    wait_counter(&src.serial, 20);
    // Without -d: the prompt comes back when the migration has ended.
    assert_eq!(sm.cmd(&format!("migrate {addr}")), "");
    let info = info_migrate(&mut sm);
    assert_eq!(info["Migration status"], "completed", "{info:?}");
    assert!(
        !src.output().contains("PASS"),
        "the guest finished before it was migrated"
    );
    assert_eq!(
        dst.tern.wait().code(),
        Some(1),
        "{}",
        file_text(&dst.stderr)
    );
    assert_eq!(reference.tern.wait().code(), Some(1));
    quit(&mut src, &mut sm);

    let unmigrated = reference.output();
    assert_eq!(check_counter_run(&unmigrated, "unmigrated"), 500);
    assert_eq!(
        src.output() + &dst.output(),
        unmigrated,
        "source and destination output against the unmigrated run"
    );
    assert_eq!(
        exit_digest(&dst.stderr),
        exit_digest(&reference.stderr),
        "machine state at the guest's exit"
    );
}

/// `migrate` without `-d` holds its monitor until the migration ends, while another
/// monitor of the same process answers; the bandwidth limit and the downtime limit are
/// set on the one, raised on the other, and apply at once.
#[test]
fn a_blocking_migrate_holds_only_its_own_monitor() {
    let dir = TempDir::new("mig-block");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &addr]);
    let mut a = src.monitor();
    let mut b = src.monitor();
    let mut dm = dst.monitor();
    wait_counter(&src.serial, 3);
    // 1 MiB/s: the first pass alone (the counter's 4 MiB) takes seconds.
    assert_eq!(a.cmd("migrate_set_speed 1M"), "");
    assert_eq!(a.cmd("migrate_set_downtime 0.5"), "");
    let params = b.cmd("info migrate_parameters");
    assert!(
        params.contains("max-bandwidth: 1048576 bytes/second\n")
            && params.contains("downtime-limit: 500 ms\n"),
        "{params}"
    );
    a.send(format!("migrate {addr}\n").as_bytes());
    let info = wait_status(&mut b, "active");
    assert_eq!(number(&info, "dirty sync count"), 1, "{info:?}");
    // Typed while the migration runs: held until it ends.
    a.send(b"info status\n");
    let sent = number(&wait_until_sent(&mut b, 64), "transferred ram");
    assert!(
        sent < 4 << 10,
        "{sent} KiB sent at 1 MiB/s before the limit was raised"
    );
    // The guest runs on meanwhile.
    let before = src.output().len();
    assert!(src.wait_more(2).len() > before);
    assert!(
        a.unsolicited().is_empty(),
        "the waiting monitor printed something"
    );
    assert_eq!(b.cmd("info status"), "VM status: running\n");

    assert_eq!(b.cmd("migrate_set_speed 1G"), "");
    // The end of the migration, then the line typed meanwhile.
    assert_eq!(a.until_prompt(), "");
    assert_eq!(a.until_prompt(), "VM status: paused (postmigrate)\n");
    let info = info_migrate(&mut b);
    assert_eq!(info["Migration status"], "completed", "{info:?}");
    check_completed(&info, &mut b);
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut a);
    quit(&mut dst, &mut dm);
}

/// Polls `info migrate` until at least `kib` KiB have been sent.
fn wait_until_sent(m: &mut Monitor, kib: u64) -> HashMap<String, String> {
    let mut info = HashMap::new();
    wait_until(&format!("{kib} KiB sent"), || {
        info = info_migrate(m);
        info.contains_key("transferred ram") && number(&info, "transferred ram") >= kib
    });
    info
}

/// The destination of a stream that was cut short never runs the guest and ends with an
/// error status.
fn check_destination_failed(dst: &mut Vm) {
    assert_eq!(dst.tern.wait().code(), Some(2));
    assert_eq!(dst.output(), "", "the destination ran the guest");
    let err = file_text(&dst.stderr);
    assert!(err.contains("tern: incoming migration failed: "), "{err}");
}

#[test]
fn a_cancelled_migration_leaves_the_guest_running_at_the_source() {
    let dir = TempDir::new("mig-cancel");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &addr]);
    let mut sm = src.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd("migrate_set_speed 1M"), "");
    assert_eq!(sm.cmd(&format!("migrate -d {addr}")), "");
    wait_until_sent(&mut sm, 64);
    assert_eq!(sm.cmd("migrate_cancel"), "");
    wait_status(&mut sm, "cancelled");
    assert_eq!(sm.cmd("info status"), "VM status: running\n");
    let out = src.wait_more(5);
    check_counter_run(&out, "the source after the cancel");
    check_destination_failed(&mut dst);
    // A new migration can start after a cancelled one.
    let addr2 = format!("tcp:127.0.0.1:{}", free_port());
    let mut dst2 = Vm::start(&dir, "dst2", "every=5", &["--incoming", &addr2]);
    let mut dm2 = dst2.monitor();
    assert_eq!(sm.cmd("migrate_set_speed 0"), "");
    assert_eq!(sm.cmd(&format!("migrate -d {addr2}")), "");
    let info = wait_status(&mut sm, "completed");
    check_completed(&info, &mut sm);
    check_continues(&src, &mut dst2, &mut dm2);
    quit(&mut src, &mut sm);
    quit(&mut dst2, &mut dm2);
}

#[test]
fn a_destination_that_goes_away_fails_the_migration_and_the_guest_runs_on() {
    let dir = TempDir::new("mig-gone");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &addr]);
    let mut sm = src.monitor();
    wait_counter(&src.serial, 3);
    // Nobody there at all.
    let nobody = format!("tcp:127.0.0.1:{}", free_port());
    assert_eq!(sm.cmd(&format!("migrate -d {nobody}")), "");
    let info = wait_status(&mut sm, "failed");
    assert!(
        info["error description"].contains("cannot connect"),
        "{info:?}"
    );
    // A file where there is no directory for it: nothing is left behind.
    let nowhere = dir.path("no-such-dir").join("stream.bin");
    assert_eq!(
        sm.cmd(&format!("migrate -d file:{}", nowhere.display())),
        ""
    );
    let info = wait_status(&mut sm, "failed");
    assert!(
        info["error description"].contains("no-such-dir"),
        "{info:?}"
    );
    assert!(!dir.path("no-such-dir").exists());
    assert_eq!(sm.cmd("info status"), "VM status: running\n");

    assert_eq!(sm.cmd("migrate_set_speed 1M"), "");
    assert_eq!(sm.cmd(&format!("migrate -d {addr}")), "");
    wait_until_sent(&mut sm, 64);
    dst.tern.0.kill().unwrap();
    dst.tern.wait();
    let info = wait_status(&mut sm, "failed");
    assert!(
        info.get("error description").is_some_and(|e| !e.is_empty()),
        "{info:?}"
    );
    assert_eq!(sm.cmd("info status"), "VM status: running\n");
    let out = src.wait_more(5);
    check_counter_run(&out, "the source after the failure");
    quit(&mut src, &mut sm);
}

#[test]
fn a_destination_whose_source_dies_mid_stream_exits_without_running_the_guest() {
    let dir = TempDir::new("mig-cut");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(&dir, "dst", "every=5", &["--incoming", &addr]);
    let mut sm = src.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd("migrate_set_speed 1M"), "");
    assert_eq!(sm.cmd(&format!("migrate -d {addr}")), "");
    wait_until_sent(&mut sm, 64);
    src.tern.0.kill().unwrap();
    src.tern.wait();
    check_destination_failed(&mut dst);

    // A stream file cut short: the same from a file.
    let stream = dir.path("stream.bin");
    let mut src2 = Vm::start(&dir, "src2", "every=5", &[]);
    let mut sm2 = src2.monitor();
    wait_counter(&src2.serial, 3);
    assert_eq!(
        sm2.cmd(&format!("migrate -d file:{}", stream.display())),
        ""
    );
    wait_status(&mut sm2, "completed");
    quit(&mut src2, &mut sm2);
    let whole = std::fs::read(&stream).unwrap();
    std::fs::write(&stream, &whole[..whole.len() - 100]).unwrap();
    let incoming = format!("file:{}", stream.display());
    let mut dst2 = Vm::start(&dir, "dst2", "every=5", &["--incoming", &incoming]);
    check_destination_failed(&mut dst2);

    // An address that cannot be used at all is an error at start-up.
    let err = dir.path("bad.err");
    let status = Tern::spawn_logged(&["run", "--incoming", "udp:127.0.0.1:1"], &err).wait();
    assert_eq!(status.code(), Some(2));
    let text = file_text(&err);
    assert!(
        text.starts_with("tern: error: cannot wait for a migration on udp:127.0.0.1:1: "),
        "{text}"
    );
}

/// `cont` and `stop` on a destination that waits for its stream do not run the guest
/// over the RAM being received; they decide whether it starts once the stream has
/// loaded, as in QEMU. Neither can a snapshot be taken of it meanwhile. Kept stopped, it
/// shows that what arrived is exactly the machine the source stopped.
#[test]
fn a_destination_waiting_for_its_stream_does_not_run() {
    let dir = TempDir::new("mig-wait");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let snaps = dir.path("snaps");
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(
        &dir,
        "dst",
        "every=5",
        &[
            "--incoming",
            &addr,
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    let mut sm = src.monitor();
    let mut dm = dst.monitor();
    assert_eq!(dm.cmd("cont"), "");
    assert_eq!(dm.cmd("info status"), "VM status: paused (inmigrate)\n");
    assert_eq!(
        dm.cmd("savevm early"),
        "Error: a migration is in progress\n"
    );
    assert!(!snaps.exists());
    // Stays stopped once migrated.
    assert_eq!(dm.cmd("stop"), "");
    wait_counter(&src.serial, 3);
    assert_eq!(
        dst.output(),
        "",
        "the destination ran the guest before its stream came"
    );
    assert_eq!(sm.cmd(&format!("migrate {addr}")), "");
    wait_status(&mut dm, "completed");
    assert_eq!(dm.cmd("info status"), "VM status: paused\n");
    assert_eq!(dst.output(), "");
    // Both stopped at the switch-over: the same machine, RAM, devices and clock.
    let digest = sm.cmd("info digest");
    assert_eq!(digest.len(), 65, "{digest}");
    assert_eq!(
        dm.cmd("info digest"),
        digest,
        "the destination's machine at arrival"
    );
    assert_eq!(dm.cmd("cont"), "");
    check_continues(&src, &mut dst, &mut dm);
    quit(&mut src, &mut sm);
    quit(&mut dst, &mut dm);
}

/// A destination configured differently (here its RAM size) refuses the stream before
/// loading anything: it exits with an error, the source fails and runs on.
#[test]
fn a_destination_of_another_machine_refuses_the_stream() {
    let dir = TempDir::new("mig-mismatch");
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut src = Vm::start(&dir, "src", "every=5", &[]);
    let mut dst = Vm::start(
        &dir,
        "dst",
        "every=5",
        &["--incoming", &addr, "--memory", "64M"],
    );
    let mut sm = src.monitor();
    wait_counter(&src.serial, 3);
    assert_eq!(sm.cmd(&format!("migrate -d {addr}")), "");
    wait_status(&mut sm, "failed");
    check_destination_failed(&mut dst);
    let err = file_text(&dst.stderr);
    assert!(err.contains("ram_size") || err.contains("RAM"), "{err}");
    assert_eq!(sm.cmd("info status"), "VM status: running\n");
    check_counter_run(&src.wait_more(3), "the source after the refusal");
    quit(&mut src, &mut sm);
}

/// Five migrations of one deterministic run, each to a new process and over a different
/// transport on the way (tcp, unix, tcp, unix, tcp): the output of all six processes in
/// order, and the machine state at the guest's exit, equal an unmigrated run's.
#[test]
fn five_ping_pong_migrations_of_one_run() {
    let dir = TempDir::new("mig-pingpong");
    let append = "exit=600 every=1";
    let det = ["--clock", "deterministic", "--digest-on-exit"];
    let mut reference = Vm::start(&dir, "ref", append, &det);
    let mut current = Vm::start(&dir, "hop0", append, &det);
    let mut outputs = Vec::new();
    for hop in 1..=5 {
        let uri = if hop % 2 == 1 {
            format!("tcp:127.0.0.1:{}", free_port())
        } else {
            format!("unix:{}", dir.path(&format!("mig{hop}.sock")).display())
        };
        let mut args = det.to_vec();
        args.extend(["--incoming", &uri]);
        let mut next = Vm::start(&dir, &format!("hop{hop}"), append, &args);
        let _nm = next.monitor();
        let mut cm = current.monitor();
        // Let the guest run a while on this host before moving on.
        current.wait_more(10);
        assert_eq!(cm.cmd(&format!("migrate {uri}")), "", "hop {hop}");
        let info = info_migrate(&mut cm);
        assert_eq!(info["Migration status"], "completed", "hop {hop}: {info:?}");
        quit(&mut current, &mut cm);
        outputs.push(current.output());
        current = next;
    }
    assert_eq!(
        current.tern.wait().code(),
        Some(1),
        "{}",
        file_text(&current.stderr)
    );
    outputs.push(current.output());
    assert_eq!(reference.tern.wait().code(), Some(1));
    let unmigrated = reference.output();
    assert_eq!(check_counter_run(&unmigrated, "unmigrated"), 600);
    assert_eq!(outputs.concat(), unmigrated, "six processes against one");
    assert_eq!(
        exit_digest(&current.stderr),
        exit_digest(&reference.stderr),
        "machine state at the guest's exit"
    );
}
