//! QEMU as the reference machine: every guest program of `testdata/guests` must print the
//! same serial output and end with the same exit status under tern as under
//! `qemu-system-i386 -kernel X -device isa-debug-exit,iobase=0xf4,iosize=4 -serial stdio`.
//!
//! Guests that print measured time are held to the same verdict lines instead.
//!
//! The comparison needs QEMU on the host. Without it the test says so and passes, unless
//! `TERN_REQUIRE_QEMU=1` (set by `.ci/run`, which installs QEMU) makes a missing QEMU a
//! failure, so CI can never pass by not comparing.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{multiboot, run_guest, testdata};

/// Guests whose behaviour QEMU's TCG does not model, with the reason.
const NOT_COMPARABLE: &[(&str, &str)] = &[
    (
        "seglimits",
        "QEMU's TCG does not check segment limits and rights on data accesses",
    ),
    ("demo", "runs until quit"),
    (
        "counter",
        "runs until quit unless told otherwise, and prints PIT counts it read",
    ),
];

/// Guests that print or check measured time (dates, tick counts, calibration, interrupt
/// latency): for them only the verdict lines and the exit status must match. QEMU's own
/// verdict on them depends on the host's timing (`timer`'s check that a CLI window
/// holds back exactly one PIT interrupt fails under QEMU on a loaded host), so QEMU gets
/// up to three runs to pass them.
const TIME_DEPENDENT: &[&str] = &["pit61", "rtc", "ticks", "tickloop", "timer"];

/// The lines that carry a verdict.
fn verdicts(serial: &str) -> Vec<&str> {
    serial
        .lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .collect()
}

fn qemu() -> Option<String> {
    let bin = std::env::var("TERN_QEMU").unwrap_or_else(|_| "qemu-system-i386".into());
    let ok = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(bin)
}

/// Runs `image` under QEMU; returns (exit status, serial output).
fn run_qemu(qemu: &str, image: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(qemu)
        .args(["-kernel"])
        .arg(image)
        .args([
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
            "-serial",
            "stdio",
            "-display",
            "none",
            "-no-reboot",
            "-m",
            "128",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start qemu");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait qemu") {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let serial = reader.join().expect("reader");
    (status, String::from_utf8_lossy(&serial).into_owned())
}

#[test]
fn guests_match_qemu() {
    let Some(qemu) = qemu() else {
        assert!(
            std::env::var("TERN_REQUIRE_QEMU").is_err(),
            "TERN_REQUIRE_QEMU is set but qemu-system-i386 does not run"
        );
        eprintln!("qemu-system-i386 not found: comparison skipped");
        return;
    };
    let dir = testdata("guests");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("testdata/guests")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| !NOT_COMPARABLE.iter().any(|(x, _)| x == n))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "too few guests found: {names:?}");
    let mut mismatches = Vec::new();
    for name in &names {
        let image = dir.join(format!("{name}.bin"));
        let time_dependent = TIME_DEPENDENT.contains(&name.as_str());
        let mut tries = 0;
        let (q_status, q_serial) = loop {
            tries += 1;
            let r = run_qemu(&qemu, &image);
            if r.0 == Some(1) || !time_dependent || tries == 3 {
                break r;
            }
        };
        let (t_status, t_serial) = run_guest(multiboot(name), 4_000_000_000);
        eprintln!("{name}: qemu {q_status:?}, tern {t_status:?}");
        let same_output = if time_dependent {
            verdicts(&q_serial) == verdicts(&t_serial) && !verdicts(&t_serial).is_empty()
        } else {
            q_serial == t_serial
        };
        if q_status != t_status || !same_output {
            mismatches.push(format!(
                "{name}: qemu exit {q_status:?}, tern exit {t_status:?}\n--- qemu\n{q_serial}\n--- tern\n{t_serial}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} guests differ from QEMU:\n{}",
        mismatches.len(),
        names.len(),
        mismatches.join("\n")
    );
}
