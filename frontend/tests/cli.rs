//! End-to-end tests of the `tern` binary: real processes, a unix-socket monitor, serial
//! output to a file, and the exit statuses the command line promises.
//!
//! Everything stays inside a per-test temporary directory; the only sockets are unix
//! sockets there. Every wait is bounded so a broken build fails instead of hanging.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn demo_guest_with_unix_monitor() {
    let dir = TempDir::new("demo");
    let serial = dir.path("serial.txt");
    let mon = dir.path("mon.sock");
    let mut tern = Tern::spawn(&[
        "run",
        &format!("--serial=file:{}", serial.display()),
        &format!("--monitor=unix:{}", mon.display()),
    ]);
    let mut m = Monitor::connect(&mut tern, &mon);
    wait_file(&serial, "the demo's banner", |t| {
        t.contains("tern: a pure-software x86 PC emulator")
    });
    assert_eq!(m.cmd("info status"), "VM status: running\n");

    // Running: the demo prints an uptime line every second.
    wait_file(&serial, "an uptime line", |t| t.contains("uptime"));
    assert_eq!(m.cmd("stop"), "");
    assert_eq!(m.cmd("info status"), "VM status: paused\n");
    let stopped = file_text(&serial).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        file_text(&serial).len(),
        stopped,
        "serial output grew while stopped"
    );

    assert_eq!(m.cmd("c"), "");
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    wait_file(&serial, "output after cont", |t| t.len() > stopped);

    let regs = m.cmd("info registers");
    for field in [
        "EAX=", "EBX=", "ESP=", "EIP=", "EFL=", "CPL=0", "CS =0008", "GDT=", "IDT=", "CR0=",
        "ICOUNT=",
    ] {
        assert!(regs.contains(field), "no {field} in {regs}");
    }
    // The Multiboot header sits at the start of the kernel, loaded at 1 MiB.
    let x = m.cmd("x /4xw 0x100000");
    assert!(x.starts_with("00100000: 0x1badb002 "), "{x}");
    assert_eq!(x.lines().count(), 1, "{x}");
    assert_eq!(m.cmd("xp /2xb 0x100000"), "00100000: 0x02 0xb0\n");

    // Garbage gets an error and the connection lives on.
    assert_eq!(m.cmd("frobnicate now"), "unknown command: 'frobnicate'\n");
    assert!(m.cmd("x /4q 0").contains("invalid"));
    m.send(b"\xff\xfe\x80 info\n");
    assert!(m.until_prompt().contains("UTF-8"));
    let mut huge = vec![b'a'; 1 << 20];
    huge.push(b'\n');
    m.send(&huge);
    assert!(m.until_prompt().contains("too long"));
    assert_eq!(m.cmd("info status"), "VM status: running\n");

    // A second connection sees only its own replies; a third that hangs up mid-line
    // disturbs nobody.
    let mut m2 = Monitor::connect(&mut tern, &mon);
    {
        let mut m3 = Monitor::connect(&mut tern, &mon);
        m3.send(b"info sta");
    }
    assert!(m.cmd("x /16xw 0x100000").starts_with("00100000:"));
    assert_eq!(m.cmd("system_reset"), "");
    assert_eq!(m2.cmd("info status"), "VM status: running\n");
    assert!(m2.unsolicited().is_empty());
    assert_eq!(m.cmd("info status"), "VM status: running\n");
    assert!(m.unsolicited().is_empty());

    m.send(b"quit\n");
    let status = tern.wait();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!mon.exists(), "monitor socket left behind");
}

#[test]
fn paused_start_and_quit() {
    let dir = TempDir::new("paused");
    let serial = dir.path("serial.txt");
    let mon = dir.path("mon.sock");
    let mut tern = Tern::spawn(&[
        "run",
        "--paused",
        "--serial",
        &format!("file:{}", serial.display()),
        "--monitor",
        &format!("unix:{}", mon.display()),
    ]);
    let mut m = Monitor::connect(&mut tern, &mon);
    assert_eq!(m.cmd("info status"), "VM status: paused\n");
    assert!(m.cmd("info registers").contains("ICOUNT=0\n"));
    assert_eq!(file_text(&serial), "");
    assert_eq!(m.cmd("cont"), "");
    wait_file(&serial, "the demo's banner", |t| t.contains("tern:"));
    m.send(b"q\n");
    assert_eq!(tern.wait().code(), Some(0));
}

#[test]
fn test_guest_passes_through_debug_exit() {
    let dir = TempDir::new("alu");
    let serial = dir.path("serial.txt");
    let kernel = guest("alu.bin");
    let mut tern = Tern::spawn(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--append",
        "quiet",
        "--serial",
        &format!("file:{}", serial.display()),
    ]);
    // PASS convention: the guest writes 0 to port 0xF4, and QEMU's debug-exit turns V into
    // the status (V << 1) | 1.
    assert_eq!(
        tern.wait().code(),
        Some(1),
        "serial: {}",
        file_text(&serial)
    );
    assert!(file_text(&serial).contains("PASS"));
}

fn run_err(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(TERN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tern");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unbootable_kernels_are_refused() {
    let dir = TempDir::new("badkernel");
    let plain = dir.path("plain.bin");
    std::fs::write(&plain, vec![0x90u8; 16384]).unwrap();
    let (code, err) = run_err(&["run", "--kernel", plain.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("tern: error: "), "{err}");
    assert!(
        err.contains("plain.bin is neither a Multiboot kernel"),
        "{err}"
    );

    let mut bz = vec![0u8; 16384];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let bzimage = dir.path("bzImage");
    std::fs::write(&bzimage, bz).unwrap();
    // A boot header of protocol 0.00: refused by the Linux loader with the reason.
    let (code, err) = run_err(&["run", "--kernel", bzimage.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("boot protocol 0.00 is older"), "{err}");

    let (code, err) = run_err(&["run", "--kernel", dir.path("missing").to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read kernel"), "{err}");
}

#[test]
fn bad_memory_sizes_are_refused() {
    for (arg, expect) in [
        ("5G", "3584 MiB"),
        ("0", "empty"),
        ("lots", "invalid memory size"),
    ] {
        let (code, err) = run_err(&["run", "--memory", arg]);
        assert_eq!(code, Some(2), "--memory {arg}: {err}");
        assert!(err.starts_with("tern: error: "), "{err}");
        assert!(err.contains(expect), "--memory {arg}: {err}");
    }
}

#[test]
fn bad_options_are_refused() {
    let (code, err) = run_err(&["run", "--serial", "carrier-pigeon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid serial backend"), "{err}");
    let (code, err) = run_err(&["run", "--frobnicate"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("frobnicate"), "{err}");
}
