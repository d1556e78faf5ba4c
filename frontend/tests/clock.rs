//! End-to-end tests of guest time with real `tern` processes: `--clock deterministic`
//! runs repeat byte for byte, `--rtc-base` sets the RTC, and a realtime guest that halts
//! between timer ticks takes its time in wall-clock terms without spending host CPU on it.
//!
//! Wall-clock figures are printed (run with `--nocapture` to see them), never asserted:
//! the machine running the tests may be busy. The one bound on CPU use is loose enough to
//! hold on a loaded host and still catch a vCPU that spins while the guest halts.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Clock ticks per second of the times in `/proc/PID/stat` (`USER_HZ`, fixed at 100 in
/// Linux's user ABI).
const USER_HZ: u64 = 100;

/// Waits until the process has exited but is not yet reaped, and returns the CPU
/// time it used (user + system), as its parent's `getrusage` would after reaping it.
fn cpu_time_at_exit(tern: &mut Tern) -> Duration {
    let stat = format!("/proc/{}/stat", tern.0.id());
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&stat).expect("read /proc/PID/stat");
        // Fields after the parenthesised command name: state is the first, utime and
        // stime the 12th and 13th.
        let rest = &text[text.rfind(')').expect("stat format") + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f[0] == "Z" {
            let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            return Duration::from_millis(ticks * 1000 / USER_HZ);
        }
        assert!(Instant::now() < deadline, "tern did not exit");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn guest_arg(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

/// Runs a guest to its exit with the given extra options; returns the status and what it
/// wrote to the serial port.
fn run_guest(dir: &TempDir, name: &str, tag: &str, extra: &[&str]) -> (Option<i32>, Vec<u8>) {
    let serial = dir.path(&format!("{tag}.txt"));
    let mut args = vec![
        "run".to_string(),
        "--kernel".to_string(),
        guest_arg(name),
        "--serial".to_string(),
        format!("file:{}", serial.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = Tern::spawn(&argv).wait().code();
    (status, std::fs::read(&serial).unwrap_or_default())
}

#[test]
fn deterministic_runs_repeat_byte_for_byte() {
    let dir = TempDir::new("det");
    let runs: Vec<(Option<i32>, Vec<u8>)> = (0..3)
        .map(|i| {
            run_guest(
                &dir,
                "tickloop.bin",
                &format!("det{i}"),
                &["--clock", "deterministic"],
            )
        })
        .collect();
    let text = String::from_utf8_lossy(&runs[0].1).into_owned();
    println!("deterministic tickloop:\n{text}");
    for (i, (status, out)) in runs.iter().enumerate() {
        assert_eq!(
            *status,
            Some(1),
            "run {i}: {}",
            String::from_utf8_lossy(out)
        );
        assert_eq!(out, &runs[0].1, "run {i} differs from run 0");
    }
    assert!(text.contains("PASS tickloop"), "{text}");
    assert!(text.contains("rtc: 2000-01-01 00:00:00"), "{text}");

    // And the whole machine state at the end: three equal digests.
    let digests: Vec<String> = (0..3)
        .map(|_| {
            let out = Command::new(TERN)
                .args(["run", "--kernel", &guest_arg("tickloop.bin")])
                .args([
                    "--serial",
                    "none",
                    "--clock",
                    "deterministic",
                    "--digest-on-exit",
                ])
                .output()
                .expect("run tern");
            assert_eq!(out.status.code(), Some(1));
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .find_map(|l| l.strip_prefix("digest: ").map(str::to_string))
                .expect("a digest line")
        })
        .collect();
    assert_eq!(digests[0].len(), 64);
    assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");

    // The same with an RTC base: only the date line changes.
    let (status, out) = run_guest(
        &dir,
        "tickloop.bin",
        "based",
        &["--clock=deterministic", "--rtc-base=2024-02-29T12:34:56"],
    );
    assert_eq!(status, Some(1));
    let based = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(
        based.replace("rtc: 2024-02-29 12:34:56", "rtc: 2000-01-01 00:00:00"),
        text
    );

    // For comparison only: realtime runs depend on the host's timing.
    for i in 0..2 {
        let (_, out) = run_guest(&dir, "tickloop.bin", &format!("rt{i}"), &[]);
        println!("realtime tickloop {i}:\n{}", String::from_utf8_lossy(&out));
    }
}

#[test]
fn idle_realtime_guest_sleeps_between_ticks() {
    let dir = TempDir::new("idle");
    let serial = dir.path("serial.txt");
    let start = Instant::now();
    let mut tern = Tern::spawn(&[
        "run",
        "--kernel",
        &guest_arg("ticks.bin"),
        "--serial",
        &format!("file:{}", serial.display()),
    ]);
    let cpu = cpu_time_at_exit(&mut tern);
    let wall = start.elapsed();
    let status = tern.wait().code();
    let out = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
    println!(
        "ticks (100 at 100 Hz, realtime): wall {:.3} s, CPU {:.3} s = {:.1} % of a core\n{out}",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    assert_eq!(status, Some(1), "{out}");
    assert!(out.contains("ticks: 100"), "{out}");
    assert!(
        cpu < wall / 2,
        "a halted guest kept the host busy: CPU {cpu:?} in {wall:?}"
    );
}

#[test]
fn clock_options_are_checked() {
    for (args, expect) in [
        (&["run", "--clock", "fast"][..], "invalid clock 'fast'"),
        (&["run", "--rtc-base", "localtime"][..], "not supported"),
        (&["run", "--rtc-base", "2023-02-29"][..], "not a valid date"),
        (&["run", "--rtc-base=noon"][..], "invalid RTC base"),
    ] {
        let out = Command::new(TERN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tern");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("tern: error: "), "{err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}
