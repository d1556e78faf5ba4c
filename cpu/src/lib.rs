//! The tern x86 interpreter.
//!
//! Guest code is decoded once, with `iced-x86`, into blocks of compact operations whose
//! operands are pre-resolved (register numbers, address-generation recipe, immediates) and
//! whose handler is chosen at decode time for the operand width and form. Blocks are cached
//! by guest physical address and CPU mode and found again through a small direct-mapped
//! jump cache, so the hot loop is: look up, run the ops, repeat.
//!
//! ```text
//!   run(budget) ─► interrupts? ─► jump cache[cs.base+eip] ─hit─► ops ─► next block
//!                                   │ miss
//!                                   ▼
//!                         block map[(phys, mode)] ─miss─► translate (decode + select handlers)
//! ```
//!
//! * Status flags are lazy ([`flags`]).
//! * Faults are values ([`Exception`]); an op commits no architectural state before it
//!   can no longer fault, so a fault leaves EIP at the instruction and the machine as it
//!   was, and the exception is delivered through the IVT or IDT.
//! * Memory goes through a software TLB ([`tlb`]) whose write entries exist only for pages
//!   already logged as dirty and not holding code, so self-modifying code and the dirty log
//!   cost nothing on the store fast path.
//! * Paging ([`paging`]) happens only when the TLB misses: the walk's verdict (physical page,
//!   user or supervisor permission, dirty bit) is folded into the entry, so a load or store
//!   costs the same one compare with paging on or off.
//!
//! The CPU never knows the board: port I/O, MMIO and the interrupt line reach it through
//! the [`Bus`] trait.

pub mod block;
pub mod exception;
pub mod flags;
pub mod fpu;
pub mod interrupt;
pub mod mem;
pub mod ops;
pub mod paging;
pub mod seg;
pub mod state;
mod task;
#[cfg(test)]
mod testbed;
pub mod testing;
pub mod tlb;
pub mod translate;
pub mod vmstate;
pub mod width;

mod cpu;
mod exec;

pub use cpu::{Cpu, CpuModel};
pub use exception::Exception;
pub use exec::Exit;
pub use state::{CpuState, Segment, TableReg};

/// What the CPU needs from the board it sits on.
pub trait Bus {
    /// Port input of `size` bytes (1, 2 or 4). Unclaimed ports read all-ones.
    fn io_read(&mut self, port: u16, size: u8) -> u32;
    fn io_write(&mut self, port: u16, size: u8, value: u32);
    /// A read of `size` bytes from MMIO region `id` at `offset`.
    fn mmio_read(&mut self, id: u32, offset: u64, size: u8) -> u32;
    fn mmio_write(&mut self, id: u32, offset: u64, size: u8, value: u32);
    /// The INTR line.
    fn interrupt_pending(&mut self) -> bool;
    /// The INTA cycle: the vector of the highest-priority pending interrupt.
    fn acknowledge_interrupt(&mut self) -> u8;
    /// Whether the board wants the CPU to return from `run` now (a device asked to end or
    /// reset the machine). Checked between blocks; port writes end their block.
    fn stop_requested(&mut self) -> bool;
    /// FERR#: the FPU found an unmasked exception pending at a waiting instruction while
    /// CR0.NE=0 (`true`), or cleared its exception flags again (`false`). A PC routes it
    /// to IRQ 13 and clears the request on a write to port 0xF0.
    /// A port access by the instruction that follows `icount` executed ones comes next. A
    /// board whose time follows instructions (a deterministic clock) moves its devices'
    /// time there, so what the guest reads does not depend on how runs are sliced.
    fn sync_icount(&mut self, icount: u64) {
        let _ = icount;
    }

    /// Guest time in nanoseconds once `icount` instructions have executed: the time
    /// stamp counter runs at 1 GHz of this time. The board answers from its virtual
    /// clock; without one, an instruction takes a nanosecond.
    fn time_ns(&mut self, icount: u64) -> u64 {
        icount
    }

    fn fpu_error(&mut self, asserted: bool) {
        let _ = asserted;
    }
}

/// A bus with nothing on it: ports read all-ones, no interrupts. For tests and tools.
#[derive(Default)]
pub struct NullBus;

impl Bus for NullBus {
    fn io_read(&mut self, _port: u16, size: u8) -> u32 {
        width::size_mask(size)
    }
    fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
    fn mmio_read(&mut self, _id: u32, _offset: u64, size: u8) -> u32 {
        width::size_mask(size)
    }
    fn mmio_write(&mut self, _id: u32, _offset: u64, _size: u8, _value: u32) {}
    fn interrupt_pending(&mut self) -> bool {
        false
    }
    fn acknowledge_interrupt(&mut self) -> u8 {
        0
    }
    fn stop_requested(&mut self) -> bool {
        false
    }
}
