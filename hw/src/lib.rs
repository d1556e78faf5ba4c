//! The tern PC board.
//!
//! `hw` owns the devices of a PC (8259 PIC pair, 8254 PIT, 16550 UART, debug ports), the
//! virtual clock that drives them, the boot loaders, and `PcMachine`, which ties the CPU,
//! guest memory and devices together and implements the CPU's `Bus` trait.
//!
//! Devices are register state machines: each keeps its guest-visible registers in a plain
//! `XxxState` struct (what savevm will serialize) and never touches host resources itself;
//! bytes in and out of a UART go through buffers that the frontend drains.

pub mod boot;
pub mod clock;
pub mod debugport;
pub mod machine;
pub mod pic;
pub mod pit;
pub mod uart;
pub mod vmstate;

pub use machine::{BootSource, MachineConfig, MachineError, PcMachine, RunEvent};
