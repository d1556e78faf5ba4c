//! End-to-end tests across host architectures: `tern` built for aarch64 and for
//! big-endian s390x, run under qemu-user, exchanges state with the native x86-64 `tern`.
//! The state stream is little-endian with fixed-width fields, so a guest must not notice
//! which host runs it or how often it moved:
//!
//! ```text
//!   x86-64 --tcp--> s390x --tcp--> aarch64 --tcp--> x86-64    == one unmigrated x86-64 run
//!   savevm on s390x  -> loadvm on x86-64, and the reverse      == the saving host's own end
//!   testdata/snapshots/counter-v1.tern on all three             == counter-v1.out, one digest
//! ```
//!
//! With `--clock deterministic` "the same" means byte for byte: the serial output, PIT
//! counts included, and the machine digest at the guest's exit.
//!
//! The cross binaries come from the environment (`.ci/xarch` builds them):
//! `TERN_XARCH_S390X` and `TERN_XARCH_AARCH64` name `tern` built for
//! `s390x-unknown-linux-gnu` and `aarch64-unknown-linux-gnu`. Without them these tests
//! are skipped, unless `TERN_REQUIRE_XARCH=1`, which makes that a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A host architecture and how to start `tern` on it.
#[derive(Clone, Copy, Debug)]
enum Host {
    Native,
    S390x,
    Aarch64,
}

/// The cross binaries, or `None` when the tests are to be skipped.
struct Hosts {
    s390x: PathBuf,
    aarch64: PathBuf,
}

fn hosts() -> Option<Hosts> {
    let get = |var: &str| std::env::var_os(var).map(PathBuf::from);
    match (get("TERN_XARCH_S390X"), get("TERN_XARCH_AARCH64")) {
        (Some(s390x), Some(aarch64)) => {
            for p in [&s390x, &aarch64] {
                assert!(p.is_file(), "no cross tern at {}", p.display());
            }
            Some(Hosts { s390x, aarch64 })
        }
        _ => {
            assert!(
                std::env::var("TERN_REQUIRE_XARCH").as_deref() != Ok("1"),
                "TERN_REQUIRE_XARCH=1 but TERN_XARCH_S390X or TERN_XARCH_AARCH64 is not set"
            );
            eprintln!("skipped: TERN_XARCH_S390X and TERN_XARCH_AARCH64 are not set");
            None
        }
    }
}

impl Hosts {
    /// The command that runs `tern` on `host`: the cross binaries under qemu-user, with
    /// the target's C library from the cross sysroot.
    fn command(&self, host: Host) -> Command {
        let (qemu, sysroot, bin) = match host {
            Host::Native => return Command::new(TERN),
            Host::S390x => ("qemu-s390x", "/usr/s390x-linux-gnu", &self.s390x),
            Host::Aarch64 => ("qemu-aarch64", "/usr/aarch64-linux-gnu", &self.aarch64),
        };
        let mut c = Command::new(qemu);
        c.arg("-L").arg(sysroot).arg(bin);
        c
    }

    /// `tern ARGS` on `host`, stderr to `stderr`.
    fn spawn(&self, host: Host, args: &[String], stderr: &Path) -> Tern {
        let err = std::fs::File::create(stderr).expect("create the stderr file");
        let child = self
            .command(host)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start tern on {host:?}: {e}"));
        Tern(child)
    }
}

/// Options of every run here: small RAM (the cross hosts are emulated), a deterministic
/// clock and the digest at exit.
const COMMON: [&str; 5] = [
    "--memory",
    "16M",
    "--clock",
    "deterministic",
    "--digest-on-exit",
];

/// One `tern run` of the counter guest on one host.
struct Vm {
    host: Host,
    tern: Tern,
    serial: PathBuf,
    sock: PathBuf,
    stderr: PathBuf,
}

impl Vm {
    fn start(hosts: &Hosts, host: Host, dir: &TempDir, name: &str, append: &str) -> Vm {
        Self::start_with(hosts, host, dir, name, append, &[])
    }

    fn start_with(
        hosts: &Hosts,
        host: Host,
        dir: &TempDir,
        name: &str,
        append: &str,
        extra: &[&str],
    ) -> Vm {
        let serial = dir.path(&format!("{name}.txt"));
        let sock = dir.path(&format!("{name}.sock"));
        let stderr = dir.path(&format!("{name}.err"));
        let mon = format!("unix:{}", sock.display());
        let mut more = COMMON.to_vec();
        more.extend(["--monitor", mon.as_str()]);
        more.extend_from_slice(extra);
        let args = counter_args(append, &serial, &more);
        let tern = hosts.spawn(host, &args, &stderr);
        Vm {
            host,
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

    /// Waits for the guest's exit; returns its status after checking it passed.
    fn finish(&mut self) -> String {
        let status = self.tern.wait();
        assert_eq!(
            status.code(),
            Some(1),
            "{:?}: {}",
            self.host,
            file_text(&self.stderr)
        );
        exit_digest(&self.stderr)
    }
}

/// Moves the running guest of `src` to a new process on `to`, over loopback TCP with
/// `migrate` (which returns when the migration has completed), and ends `src`.
fn hop(hosts: &Hosts, dir: &TempDir, src: &mut Vm, to: Host, name: &str, append: &str) -> Vm {
    let addr = format!("tcp:127.0.0.1:{}", free_port());
    let mut dst = Vm::start_with(hosts, to, dir, name, append, &["--incoming", &addr]);
    let mut dm = dst.monitor();
    assert_eq!(dm.cmd("info status"), "VM status: paused (inmigrate)\n");
    let mut sm = src.monitor();
    assert_eq!(sm.cmd(&format!("migrate {addr}")), "");
    let info = sm.cmd("info migrate");
    assert!(
        info.contains("Migration status: completed"),
        "{:?} -> {to:?}: {info}",
        src.host
    );
    assert!(
        !src.output().contains("PASS"),
        "the guest finished on {:?} before it was migrated",
        src.host
    );
    sm.send(b"quit\n");
    assert_eq!(
        src.tern.wait().code(),
        Some(0),
        "{}",
        file_text(&src.stderr)
    );
    dst
}

/// The whole trip: x86-64 -> s390x -> aarch64 -> x86-64, each leg a live migration of a
/// running guest after it has printed some lines there, against one unmigrated x86-64
/// run of the same guest.
#[test]
fn a_guest_migrated_round_the_hosts_ends_like_an_unmigrated_native_run() {
    let Some(hosts) = hosts() else { return };
    let dir = TempDir::new("xarch-trip");
    // Long enough that no leg's guest finishes while its migration runs; the last leg,
    // native, runs the rest quickly.
    let append = "exit=3000 every=1 pages=256";
    let mut reference = Vm::start(&hosts, Host::Native, &dir, "ref", append);
    let mut legs = vec![Vm::start(&hosts, Host::Native, &dir, "leg0", append)];
    for (i, to) in [Host::S390x, Host::Aarch64, Host::Native]
        .into_iter()
        .enumerate()
    {
        let src = legs.last_mut().unwrap();
        wait_counter(&src.serial, 20);
        let dst = hop(&hosts, &dir, src, to, &format!("leg{}", i + 1), append);
        legs.push(dst);
    }
    let digest = legs.last_mut().unwrap().finish();
    let reference_digest = reference.finish();
    let unmigrated = reference.output();
    assert_eq!(check_counter_run(&unmigrated, "unmigrated"), 3000);
    let joined: String = legs.iter().map(Vm::output).collect();
    for (leg, vm) in legs.iter().enumerate() {
        // How far from its end the guest was at each move: the margin of `exit=`.
        eprintln!(
            "leg {leg} ({:?}): {} lines",
            vm.host,
            counter_lines(&vm.output()).len()
        );
        assert!(
            counter_lines(&vm.output()).len() >= 20 || leg == legs.len() - 1,
            "leg {leg} ({:?}) printed too little: {}",
            vm.host,
            vm.output()
        );
    }
    assert!(
        joined == unmigrated,
        "the legs' output against the unmigrated run ({} and {} bytes; first difference at {})",
        joined.len(),
        unmigrated.len(),
        joined
            .bytes()
            .zip(unmigrated.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(joined.len().min(unmigrated.len()))
    );
    assert_eq!(
        digest, reference_digest,
        "machine state at the guest's exit"
    );
}

/// Runs the counter guest on `saver` with `savevm mid` taken on its monitor after some
/// lines, to its end; then a new process on `loader` loads the snapshot and must end
/// exactly as the saver did: the rest of its output and the same digest.
fn snapshot_across(hosts: &Hosts, saver: Host, loader: Host) -> String {
    let dir = TempDir::new(&format!("xarch-snap-{saver:?}-{loader:?}"));
    let snaps = dir.path("snaps");
    let snap_dir = ["--snapshot-dir", snaps.to_str().unwrap()];
    let append = "exit=150 every=2";
    let mut first = Vm::start_with(hosts, saver, &dir, "saver", append, &snap_dir);
    let mut m = first.monitor();
    wait_counter(&first.serial, 10);
    assert_eq!(m.cmd("savevm mid"), "");
    let digest = first.finish();
    let whole = first.output();
    assert_eq!(check_counter_run(&whole, "saving run"), 150);

    let serial = dir.path("loader.txt");
    let stderr = dir.path("loader.err");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--serial".into(),
        format!("file:{}", serial.display()),
        "--loadvm".into(),
        "mid".into(),
    ];
    args.extend(COMMON.iter().chain(&snap_dir).map(|s| s.to_string()));
    let status = hosts.spawn(loader, &args, &stderr).wait();
    assert_eq!(status.code(), Some(1), "{}", file_text(&stderr));
    let resumed = file_text(&serial);
    assert!(
        resumed.len() > 200 && whole.ends_with(&resumed),
        "{saver:?} -> {loader:?}: the loaded run's output is not the rest of the saving run's:\n{resumed}"
    );
    assert_eq!(
        exit_digest(&stderr),
        digest,
        "{saver:?} -> {loader:?}: machine state at exit"
    );
    digest
}

#[test]
fn a_snapshot_saved_on_s390x_loads_on_x86_64_and_the_reverse() {
    let Some(hosts) = hosts() else { return };
    let there = snapshot_across(&hosts, Host::S390x, Host::Native);
    let back = snapshot_across(&hosts, Host::Native, Host::S390x);
    // Both saving runs were the same deterministic run, on different hosts.
    assert_eq!(there, back, "the same run on s390x and on x86-64");
}

/// The committed format-1 snapshot (`testdata/snapshots/README.md`) loads on every host,
/// and the guest ends the same everywhere.
#[test]
fn the_committed_version_1_snapshot_loads_on_every_host() {
    let Some(hosts) = hosts() else { return };
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/snapshots");
    let expected = file_text(&committed.join("counter-v1.out"));
    let dir = TempDir::new("xarch-v1");
    let snaps = dir.path("snaps");
    std::fs::create_dir(&snaps).unwrap();
    std::fs::copy(
        committed.join("counter-v1.tern"),
        snaps.join("counter-v1.tern"),
    )
    .unwrap();
    let mut digests = Vec::new();
    for host in [Host::Native, Host::S390x, Host::Aarch64] {
        let serial = dir.path(&format!("{host:?}.txt"));
        let stderr = dir.path(&format!("{host:?}.err"));
        let args: Vec<String> = [
            "run",
            "--serial",
            &format!("file:{}", serial.display()),
            "--memory",
            "4M",
            "--clock",
            "deterministic",
            "--digest-on-exit",
            "--loadvm",
            "counter-v1",
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let status = hosts.spawn(host, &args, &stderr).wait();
        assert_eq!(status.code(), Some(1), "{host:?}: {}", file_text(&stderr));
        assert_eq!(file_text(&serial), expected, "{host:?}: the guest's output");
        digests.push(exit_digest(&stderr));
    }
    assert!(
        digests.iter().all(|d| *d == digests[0]),
        "digests at exit (x86-64, s390x, aarch64): {digests:?}"
    );
}
