//! The PC platform as a whole: A20 gates, the keyboard controller's reset line, CMOS
//! contents through the ports, and deterministic time (runs that do not depend on how the
//! caller slices them).

mod common;

use cpu::Bus;
use hw::clock::{ClockMode, DEFAULT_NS_PER_INSN};
use hw::rtc::{seconds_from_civil, RtcBase};
use hw::{BootSource, MachineConfig, PcMachine, RunEvent};

const DETERMINISTIC: ClockMode = ClockMode::Deterministic {
    ns_per_insn: DEFAULT_NS_PER_INSN,
};

fn guest(name: &str) -> BootSource {
    common::multiboot(name)
}

/// A Multiboot kernel at 1 MiB made of `code`.
fn kernel(code: &[u8]) -> BootSource {
    BootSource::Multiboot {
        image: common::aout_kernel(code),
        cmdline: String::new(),
    }
}

fn machine(boot: BootSource, clock: ClockMode, rtc_base: RtcBase) -> PcMachine {
    PcMachine::new(MachineConfig {
        ram_size: 32 << 20,
        boot,
        debugcon_port: None,
        clock,
        rtc_base,
        no_reboot: true,
    })
    .expect("machine")
}

/// Runs a deterministic machine to its exit, asking `budget(i)` instructions of the i-th
/// call; returns the exit status, the serial output, the instruction count and the time.
fn run_deterministic(
    boot: BootSource,
    mut budget: impl FnMut(u64) -> u64,
) -> (Option<i32>, String, u64, u64) {
    let mut m = machine(boot, DETERMINISTIC, RtcBase::Fixed(946_684_800));
    let mut out = Vec::new();
    let mut status = None;
    for i in 0..50_000_000u64 {
        let ev = m.run(budget(i));
        out.extend(m.take_serial_output());
        match ev {
            RunEvent::Exit(code) => {
                status = Some(code);
                break;
            }
            RunEvent::Shutdown | RunEvent::Halted { .. } => break,
            RunEvent::Ran | RunEvent::Reset => {}
        }
    }
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        m.icount(),
        m.clock_state().ns,
    )
}

#[test]
fn deterministic_runs_do_not_depend_on_how_they_are_sliced() {
    let reference = run_deterministic(guest("tickloop"), |_| 200_000);
    assert_eq!(reference.0, Some(1), "{}", reference.1);
    assert!(
        reference.1.contains("rtc: 2000-01-01 00:00:00"),
        "{}",
        reference.1
    );
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    type Budget = Box<dyn FnMut(u64) -> u64>;
    let patterns: [(&str, Budget); 3] = [
        ("1 instruction", Box::new(|_| 1)),
        ("997 instructions", Box::new(|_| 997)),
        (
            "random 1-50000",
            Box::new(move |_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                1 + seed % 50_000
            }),
        ),
    ];
    for (what, budget) in patterns {
        let run = run_deterministic(guest("tickloop"), budget);
        assert_eq!(run.1, reference.1, "serial output with budgets of {what}");
        assert_eq!(
            (run.0, run.2, run.3),
            (reference.0, reference.2, reference.3),
            "status, instruction count and clock with budgets of {what}"
        );
    }
}

/// The counter guest reads the PIT between timer ticks, wherever a slice happens to be:
/// what it reads, and so its output and its RAM, must not depend on the budgets either.
#[test]
fn deterministic_timer_reads_do_not_depend_on_how_runs_are_sliced() {
    let counter = || match guest("counter") {
        BootSource::Multiboot { image, .. } => BootSource::Multiboot {
            image,
            cmdline: "counter.bin exit=40 every=1 pages=64".into(),
        },
        other => other,
    };
    let reference = run_deterministic(counter(), |_| 200_000);
    assert_eq!(reference.0, Some(1), "{}", reference.1);
    assert!(reference.1.contains("count 000040 pit "), "{}", reference.1);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    type Budget = Box<dyn FnMut(u64) -> u64>;
    let patterns: [(&str, Budget); 2] = [
        ("3001 instructions", Box::new(|_| 3001)),
        (
            "random 1-300000",
            Box::new(move |_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                1 + seed % 300_000
            }),
        ),
    ];
    for (what, budget) in patterns {
        let run = run_deterministic(counter(), budget);
        assert_eq!(run.1, reference.1, "serial output with budgets of {what}");
        assert_eq!(
            (run.0, run.2, run.3),
            (reference.0, reference.2, reference.3),
            "status, instruction count and clock with budgets of {what}"
        );
    }
}

#[test]
fn deterministic_halt_skips_to_the_next_deadline() {
    let start = std::time::Instant::now();
    let (status, serial, icount, ns) = run_deterministic(guest("ticks"), |_| 200_000);
    assert_eq!(status, Some(1), "{serial}");
    assert!(
        serial.contains("ticks: 100, rtc seconds 00 -> 01"),
        "{serial}"
    );
    // 100 ticks of 10 ms, almost all of it halted: the clock is past a second while the
    // instructions executed would account for only a fraction of it.
    assert!(ns >= 1_000_000_000, "virtual time {ns} ns");
    assert!(
        icount * DEFAULT_NS_PER_INSN < ns / 10,
        "{icount} instructions for {ns} ns"
    );
    // Nothing waited for the host clock (a generous bound: this is a second of guest time).
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a20_is_on_while_either_gate_asks_for_it() {
    let mut m = machine(kernel(&[0xF4]), ClockMode::Realtime, RtcBase::HostUtc);
    let mem = m.memory().clone();
    assert!(mem.a20());
    // Port 0x92 off: the 8042's output port still holds it on.
    m.board.io_write(0x92, 1, 0);
    assert!(mem.a20());
    // 8042 output port A20 off (0xD1, then the byte, reset bit kept high).
    m.board.io_write(0x64, 1, 0xD1);
    m.board.io_write(0x60, 1, 0xDD);
    assert!(!mem.a20());
    m.board.io_write(0x92, 1, 0x02);
    assert!(mem.a20(), "port 0x92 alone turns it on");
    m.board.io_write(0x92, 1, 0);
    assert!(!mem.a20());
    m.board.io_write(0x64, 1, 0xDF);
    assert!(mem.a20(), "0xDF: the 8042 alone turns it on");
    assert_eq!(m.board.io_read(0x92, 1), 0, "port 0x92 reads its own bits");
    // A system reset turns A20 on again.
    m.reset().unwrap();
    assert!(mem.a20());
}

#[test]
fn keyboard_controller_reset_line() {
    // mov al, 0xFE; out 0x64, al; jmp $
    let pulse = [0xB0, 0xFE, 0xE6, 0x64, 0xEB, 0xFE];
    let mut m = machine(kernel(&pulse), ClockMode::Realtime, RtcBase::HostUtc);
    assert_eq!(m.run(1000), RunEvent::Shutdown);
    // Output port written with bit 0 low: mov al,0xD1; out 0x64,al; mov al,0xDC; out 0x60,al
    let write = [0xB0, 0xD1, 0xE6, 0x64, 0xB0, 0xDC, 0xE6, 0x60, 0xEB, 0xFE];
    let mut m = machine(kernel(&write), ClockMode::Realtime, RtcBase::HostUtc);
    assert_eq!(m.run(1000), RunEvent::Shutdown);
    // 0xFF pulses nothing.
    let nop = [0xB0, 0xFF, 0xE6, 0x64, 0xEB, 0xFE];
    let mut m = machine(kernel(&nop), ClockMode::Realtime, RtcBase::HostUtc);
    assert_eq!(m.run(1000), RunEvent::Ran);
}

#[test]
fn cmos_through_the_ports() {
    let base = seconds_from_civil(2099, 12, 31, 23, 59, 59);
    let mut m = machine(kernel(&[0xF4]), DETERMINISTIC, RtcBase::Fixed(base));
    let cmos = |m: &mut PcMachine, i: u8| {
        m.board.io_write(0x70, 1, u32::from(i));
        m.board.io_read(0x71, 1) as u8
    };
    assert_eq!(
        [cmos(&mut m, 0x34), cmos(&mut m, 0x35)],
        [0x00, 0x01],
        "32 MiB"
    );
    assert_eq!([cmos(&mut m, 0x30), cmos(&mut m, 0x31)], [0x00, 0x7C]);
    assert_eq!([cmos(&mut m, 0x15), cmos(&mut m, 0x16)], [0x80, 0x02]);
    let time = |m: &mut PcMachine| [0x32, 0x09, 0x08, 0x07, 0x04, 0x02, 0x00].map(|i| cmos(m, i));
    assert_eq!(time(&mut m), [0x20, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59]);
    // A second of deterministic time: the clock rolls over into the next century. The
    // CPU sits in HLT with interrupts off, so the time is skipped by hand.
    m.board.clock.skip_to(1_000_000_000);
    assert_eq!(time(&mut m), [0x21, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00]);
}
