//! The guest programs of `testdata/` run on the whole machine: each reports PASS by
//! writing 0 to the debug-exit port (exit status 1) and prints its verdict on COM1.

use std::path::PathBuf;
use std::sync::Arc;

use hw::clock::ClockMode;
use hw::{BootSource, MachineConfig, PcMachine, RunEvent};

fn testdata(rel: &str) -> PathBuf {
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

fn multiboot(name: &str) -> BootSource {
    let path = testdata(&format!("guests/{name}.bin"));
    let image: Arc<[u8]> = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into();
    BootSource::Multiboot {
        image,
        cmdline: format!("{name}.bin "),
    }
}

fn expect_pass(name: &str, boot: BootSource) {
    let (status, serial) = run_guest(boot, 2_000_000_000);
    assert_eq!(
        status,
        Some(1),
        "guest {name} did not pass; serial output:\n{serial}"
    );
    assert!(
        serial.contains("PASS"),
        "guest {name} exited 1 without a PASS line:\n{serial}"
    );
}

macro_rules! guest_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                expect_pass(stringify!($name), multiboot(stringify!($name)));
            }
        )*
    };
}

guest_tests!(
    alu, shift, muldiv, bcd, bitops, string, stack, control, interrupts, exceptions, seglimits,
    timer, smc, segments
);

#[test]
fn realmode_bios() {
    let path = testdata("bios/realmode.rom");
    let image: Arc<[u8]> = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into();
    expect_pass("realmode", BootSource::Bios { image });
}

guest_tests!(paging);
