//! The guest programs of `testdata/` run on the whole machine: each reports PASS by
//! writing 0 to the debug-exit port (exit status 1) and prints its verdict on COM1.

mod common;

use std::sync::Arc;

use common::{multiboot, run_guest, testdata};
use hw::BootSource;

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

// Privilege levels, gates, tasks and virtual-8086 mode.
guest_tests!(ring3, callgate, task, v86, doublefault);

// Platform devices and time: the RTC and CMOS, the 8042 and A20, PIT channel 2 through
// port 0x61, and the timer-driven guests.
guest_tests!(rtc, i8042, pit61, ticks, tickloop);

// The subject of the savevm equivalence test: timer interrupts over large copies, UART
// loopback, a PIT channel 2 one-shot.
guest_tests!(equiv);

#[test]
fn fpu() {
    expect_pass("fpu", multiboot("fpu"));
}

guest_tests!(paging);

// The migration benchmark's fill-then-idle guest, with its defaults.
guest_tests!(fill);
