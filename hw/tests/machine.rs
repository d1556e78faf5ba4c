//! Whole-machine behaviour that no single guest program reports on its own.

mod common;

use std::sync::Arc;

use common::aout_kernel as kernel;

use hw::clock::ClockMode;
use hw::{BootSource, MachineConfig, PcMachine, RunEvent};

fn machine(image: Arc<[u8]>, no_reboot: bool) -> PcMachine {
    PcMachine::new(MachineConfig {
        ram_size: 16 << 20,
        boot: BootSource::Multiboot {
            image,
            cmdline: String::new(),
        },
        debugcon_port: None,
        clock: ClockMode::Realtime,
        rtc_base: hw::rtc::RtcBase::HostUtc,
        no_reboot,
    })
    .unwrap()
}

/// `lidt [empty]; int3`: the IDT has no entries, so #BP -> #GP -> #DF -> shutdown.
fn triple_fault_kernel() -> Arc<[u8]> {
    let idt_ptr: u32 = 0x10_0000 + 32 + 8;
    let mut code = vec![0x0F, 0x01, 0x1D];
    code.extend_from_slice(&idt_ptr.to_le_bytes());
    code.push(0xCC);
    code.resize(8, 0x90);
    code.extend_from_slice(&[0; 6]);
    kernel(&code)
}

#[test]
fn triple_fault_with_no_reboot_shuts_down() {
    let mut m = machine(triple_fault_kernel(), true);
    assert_eq!(m.run(1000), RunEvent::Shutdown);
}

#[test]
fn triple_fault_resets_and_boots_again() {
    let mut m = machine(triple_fault_kernel(), false);
    assert_eq!(m.run(1000), RunEvent::Reset);
    // After the reset the kernel is loaded again and starts at its entry point.
    assert_eq!(m.cpu.s.eip, 0x10_0020);
    assert_eq!(m.run(1000), RunEvent::Reset);
}

#[test]
fn debug_exit_status_and_serial() {
    // mov dx,0x3f8; mov al,'T'; out dx,al; mov al,0x12; out 0xf4,al
    let code = [
        0x66, 0xBA, 0xF8, 0x03, 0xB0, b'T', 0xEE, 0xB0, 0x12, 0xE6, 0xF4, 0xEB, 0xFE,
    ];
    let mut m = machine(kernel(&code), true);
    assert_eq!(m.run(1000), RunEvent::Exit((0x12 << 1) | 1));
    assert_eq!(m.take_serial_output(), b"T");
}

#[test]
fn hlt_with_interrupts_off_stays_halted() {
    let mut m = machine(kernel(&[0xFA, 0xF4]), true);
    assert!(matches!(m.run(1000), RunEvent::Halted { .. }));
    assert!(m.halted());
}

#[test]
fn reset_via_port_0x92() {
    // mov al,1; out 0x92,al
    let mut m = machine(kernel(&[0xB0, 0x03, 0xE6, 0x92, 0xEB, 0xFE]), true);
    assert_eq!(m.run(1000), RunEvent::Shutdown);
}
