//! The tern PC board.
//!
//! `hw` owns the devices of a PC (8259 PIC pair, 8254 PIT, MC146818 RTC with CMOS RAM,
//! 8042 keyboard controller, 16550 UART, debug ports), the virtual clock that drives them,
//! the boot loaders, and `PcMachine`, which ties the CPU, guest memory and devices together
//! and implements the CPU's `Bus` trait.
//!
//! Devices are register state machines: each keeps its guest-visible registers in a plain
//! `XxxState` struct (what savevm will serialize) and never touches host resources itself;
//! bytes in and out of a UART go through buffers that the frontend drains.

pub mod boot;
pub mod clock;
pub mod debugport;
pub mod i8042;
pub mod machine;
pub mod pic;
pub mod pit;
pub mod rtc;
pub mod snapshot;
pub mod uart;
pub mod vmstate;

pub use machine::{BootSource, MachineConfig, MachineError, PcMachine, RunEvent};
pub use snapshot::StateError;
