//! Running the guest programs of `testdata/` on a whole machine, shared by the test files.

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
