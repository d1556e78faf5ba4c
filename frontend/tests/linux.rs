//! Debian's i386 Linux kernel with a busybox initramfs, booted by real `tern` processes:
//! the shell answers on the serial console, a deterministic boot repeats byte for byte,
//! and a snapshot taken at the prompt resumes in a new process.
//!
//! The image comes from `testdata/linux/build-image.sh` (Debian packages, cached outside
//! the repository; `.ci/run` builds it). `TERN_LINUX_IMAGE` names its directory, else the
//! script's default cache is used. Without an image the tests say so and pass, unless
//! `TERN_REQUIRE_LINUX=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// The short boot: no local APIC, no ISA PnP or PCI probing, crypto self-tests off (QEMU
/// reaches the prompt with it in about 2.7 G instructions).
const APPEND: &str = "console=ttyS0 panic=-1 nolapic cryptomgr.notests noisapnp pci=off";
const PROMPT: &[u8] = b"/ # ";
/// Booting takes 2.6 G instructions: well within this on any machine that runs the suite.
const BOOT_WAIT: Duration = Duration::from_secs(300);

fn image() -> Option<(String, String)> {
    let dir = std::env::var_os("TERN_LINUX_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("tern/linux-i386")
        });
    let (k, i) = (dir.join("bzImage"), dir.join("initrd.cpio"));
    if k.exists() && i.exists() {
        return Some((k.display().to_string(), i.display().to_string()));
    }
    assert!(
        std::env::var("TERN_REQUIRE_LINUX").is_err(),
        "TERN_REQUIRE_LINUX is set but there is no Linux image in {}",
        dir.display()
    );
    eprintln!(
        "no Linux image in {}: run testdata/linux/build-image.sh",
        dir.display()
    );
    None
}

/// The guest's serial console over a unix socket.
struct Console {
    s: UnixStream,
    seen: Vec<u8>,
}

impl Console {
    fn connect(tern: &mut Tern, path: &std::path::Path) -> Self {
        wait_path(tern, path);
        let s = UnixStream::connect(path).expect("serial socket");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Console {
            s,
            seen: Vec::new(),
        }
    }

    /// Reads until `what` appears after byte `from` of everything seen; returns the
    /// position just after it.
    fn wait_for(&mut self, from: usize, what: &[u8], limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.seen[from.min(self.seen.len())..]
                .windows(what.len())
                .position(|w| w == what)
            {
                return from + i + what.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {:?} on the console; it shows:\n{}",
                String::from_utf8_lossy(what),
                String::from_utf8_lossy(&self.seen)
            );
            let mut b = [0u8; 4096];
            match self.s.read(&mut b) {
                Ok(0) => panic!(
                    "console closed; it showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                ),
                Ok(n) => self.seen.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
    }

    /// Types a line and returns what the shell printed up to its next prompt.
    fn run(&mut self, line: &str) -> String {
        let from = self.seen.len();
        self.s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let end = self.wait_for(from, PROMPT, WAIT);
        String::from_utf8_lossy(&self.seen[from..end]).into_owned()
    }
}

fn boot(dir: &TempDir, tag: &str, extra: &[&str]) -> (Tern, Console) {
    let (kernel, initrd) = image().expect("image");
    let serial = dir.path(&format!("{tag}-serial.sock"));
    let serial_arg = format!("unix:{}", serial.display());
    let mut args = vec![
        "run",
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--append",
        APPEND,
        "--no-reboot",
        "--serial",
        &serial_arg,
    ];
    args.extend_from_slice(extra);
    let mut tern = Tern::spawn(&args);
    let console = Console::connect(&mut tern, &serial);
    (tern, console)
}

#[test]
fn busybox_shell_on_the_serial_console() {
    if image().is_none() {
        return;
    }
    let dir = TempDir::new("linux");
    let (mut tern, mut c) = boot(&dir, "shell", &[]);
    c.wait_for(0, PROMPT, BOOT_WAIT);
    let out = c.run("echo $((6*7))");
    assert!(out.lines().any(|l| l.trim() == "42"), "{out}");
    let m = c.run("uname -m");
    assert!(m.contains("i686") || m.contains("i586"), "{m}");
    let info = c.run("cat /proc/cpuinfo");
    for flag in ["fpu", "tsc", "cx8", "cmov"] {
        assert!(
            info.split_whitespace().any(|w| w == flag),
            "cpuinfo lacks {flag}:\n{info}"
        );
    }
    let out = c.run("for i in 1 2 3 4 5; do echo loop$((i*i)); done");
    for v in [1, 4, 9, 16, 25] {
        assert!(out.contains(&format!("loop{v}")), "{out}");
    }
    c.s.write_all(b"reboot -f\n").unwrap();
    assert_eq!(
        tern.wait().code(),
        Some(0),
        "reboot -f ends tern (--no-reboot)"
    );
}

#[test]
fn deterministic_boots_repeat_byte_for_byte() {
    if image().is_none() {
        return;
    }
    let dir = TempDir::new("linuxdet");
    let (kernel, initrd) = image().unwrap();
    let append = format!("{APPEND} tern.reboot");
    let mut runs = Vec::new();
    for run in 0..2 {
        let serial = dir.path(&format!("det{run}.txt"));
        let serial_arg = format!("file:{}", serial.display());
        let out = std::process::Command::new(TERN)
            .args([
                "run",
                "--kernel",
                &kernel,
                "--initrd",
                &initrd,
                "--append",
                &append,
                "--no-reboot",
                "--clock",
                "deterministic",
                "--rtc-base",
                "2024-01-01T00:00:00",
                "--digest-on-exit",
                "--serial",
                &serial_arg,
            ])
            .output()
            .expect("run tern");
        assert_eq!(out.status.code(), Some(0));
        let digest = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("digest: ").map(str::to_string))
            .expect("a digest line");
        let console = std::fs::read(&serial).unwrap();
        assert!(
            console.windows(20).any(|w| w == b"tern-linux: rebootin"),
            "the boot reached init:\n{}",
            String::from_utf8_lossy(&console)
        );
        runs.push((console, digest));
    }
    assert_eq!(runs[0].1, runs[1].1, "digests differ");
    assert!(runs[0].0 == runs[1].0, "consoles differ");
}

#[test]
fn snapshot_at_the_prompt_resumes_in_a_new_process() {
    if image().is_none() {
        return;
    }
    let dir = TempDir::new("linuxsnap");
    let snaps = dir.path("snaps");
    let mon = dir.path("mon.sock");
    let mon_arg = format!("unix:{}", mon.display());
    let (mut tern, mut c) = boot(
        &dir,
        "first",
        &[
            "--monitor",
            &mon_arg,
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    c.wait_for(0, PROMPT, BOOT_WAIT);
    c.run("export GREETING=from-before-the-snapshot");
    let mut m = Monitor::connect(&mut tern, &mon);
    assert_eq!(m.cmd("savevm prompt"), "");
    assert!(m.cmd("info snapshots").contains("prompt"));
    m.send(b"quit\n");
    assert_eq!(tern.wait().code(), Some(0));

    let (mut second, mut c2) = boot(
        &dir,
        "second",
        &[
            "--loadvm",
            "prompt",
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    let out = c2.run("echo $GREETING $((6*7))");
    assert!(out.contains("from-before-the-snapshot 42"), "{out}");
    c2.s.write_all(b"reboot -f\n").unwrap();
    assert_eq!(second.wait().code(), Some(0));
}

/// The counters a shell loop printed, in order, from `n0` lines.
fn counters(text: &str) -> Vec<u64> {
    text.split(|c: char| c.is_whitespace())
        .filter_map(|w| w.strip_prefix('n').and_then(|n| n.parse().ok()))
        .collect()
}

#[test]
fn live_migration_while_a_shell_loop_prints() {
    if image().is_none() {
        return;
    }
    let dir = TempDir::new("linuxmig");
    let (smon, dmon) = (dir.path("src-mon.sock"), dir.path("dst-mon.sock"));
    let (smon_arg, dmon_arg) = (
        format!("unix:{}", smon.display()),
        format!("unix:{}", dmon.display()),
    );
    let (mut src, mut sc) = boot(&dir, "src", &["--monitor", &smon_arg]);
    sc.wait_for(0, PROMPT, BOOT_WAIT);
    let mark = sc.seen.len();
    sc.s.write_all(b"i=0; while true; do echo n$i; i=$((i+1)); usleep 100000; done\n")
        .unwrap();
    sc.wait_for(mark, b"n5\r\n", WAIT);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let incoming = format!("tcp:127.0.0.1:{port}");
    let (mut dst, mut dc) = boot(
        &dir,
        "dst",
        &["--monitor", &dmon_arg, "--incoming", &incoming],
    );
    let mut sm = Monitor::connect(&mut src, &smon);
    let mut dm = Monitor::connect(&mut dst, &dmon);
    assert_eq!(sm.cmd(&format!("migrate -d {incoming}")), "");
    let deadline = Instant::now() + WAIT;
    loop {
        let info = sm.cmd("info migrate");
        if info.contains("Migration status: completed") {
            break;
        }
        assert!(!info.contains("failed"), "{info}");
        assert!(
            Instant::now() < deadline,
            "migration did not complete: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The source is done once the stream is out; the destination runs once it has
    // loaded and verified it.
    let deadline = Instant::now() + WAIT;
    while !dm.cmd("info status").contains("VM status: running") {
        assert!(Instant::now() < deadline, "the destination never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The loop goes on at the destination: collect a few more lines there.
    let before = counters(&String::from_utf8_lossy(&sc.seen[mark..]));
    let last = *before.last().expect("counters at the source");
    dc.wait_for(0, format!("n{}\r\n", last + 5).as_bytes(), WAIT);
    // The source's console (drained) then the destination's: one unbroken count.
    let mut rest = Vec::new();
    sc.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 4096];
    while let Ok(n) = sc.s.read(&mut b) {
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&b[..n]);
    }
    let mut all = String::from_utf8_lossy(&sc.seen[mark..]).into_owned();
    all.push_str(&String::from_utf8_lossy(&rest));
    all.push_str(&String::from_utf8_lossy(&dc.seen));
    let seq = counters(&all);
    let expect: Vec<u64> = (0..seq.len() as u64).collect();
    assert_eq!(
        seq, expect,
        "a gap or a repeat across the migration:\n{all}"
    );
    assert!(sm.cmd("info status").contains("postmigrate"));
    sm.send(b"quit\n");
    dm.send(b"quit\n");
    src.wait();
    dst.wait();
}
