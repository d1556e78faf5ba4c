//! Running the guest programs of `testdata/` on a whole machine, shared by the test files.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::sync::Arc;

use hw::clock::ClockMode;
use hw::{BootSource, MachineConfig, PcMachine, RunEvent};

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

/// Runs a guest until it exits; returns (exit status, serial output).
pub fn run_guest(boot: BootSource, max_insns: u64) -> (Option<i32>, String) {
    let mut m = PcMachine::new(MachineConfig {
        ram_size: 32 << 20,
        boot,
        debugcon_port: None,
        clock: ClockMode::Realtime,
        rtc_base: hw::rtc::RtcBase::HostUtc,
        no_reboot: true,
    })
    .expect("machine");
    let mut out = Vec::new();
    let mut status = None;
    let start = std::time::Instant::now();
    while m.cpu.icount() < max_insns && start.elapsed().as_secs() < 60 {
        let ev = m.run(200_000);
        out.extend(m.take_serial_output());
        match ev {
            RunEvent::Exit(code) => {
                status = Some(code);
                break;
            }
            RunEvent::Shutdown => break,
            RunEvent::Halted { deadline_ns } => {
                if deadline_ns.is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            RunEvent::Ran | RunEvent::Reset => {}
        }
    }
    out.extend(m.take_serial_output());
    (status, String::from_utf8_lossy(&out).into_owned())
}

pub fn multiboot(name: &str) -> BootSource {
    let path = testdata(&format!("guests/{name}.bin"));
    let image: Arc<[u8]> = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into();
    BootSource::Multiboot {
        image,
        cmdline: format!("{name}.bin "),
    }
}

/// A Multiboot (a.out kludge) kernel at 1 MiB whose code follows the 32-byte header.
pub fn aout_kernel(code: &[u8]) -> Arc<[u8]> {
    let magic: u32 = 0x1BAD_B002;
    let flags: u32 = 1 << 16;
    let base: u32 = 0x10_0000;
    let mut img = Vec::new();
    for v in [
        magic,
        flags,
        0u32.wrapping_sub(magic + flags),
        base,
        base,
        0,
        0,
        base + 32,
    ] {
        img.extend_from_slice(&v.to_le_bytes());
    }
    img.extend_from_slice(code);
    img.resize(img.len().max(64), 0);
    img.into()
}
