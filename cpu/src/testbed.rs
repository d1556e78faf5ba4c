//! A protected-mode machine for unit tests of privilege changes, gates and tasks: a GDT with
//! segments for rings 0, 1 and 3, an IDT, a 32-bit TSS loaded in TR, and stacks per ring.
//!
//! ```text
//!  0x0000_0800  GDT (64 entries)            0x08 code DPL0   0x10 data DPL0
//!  0x0000_1000  IDT (256 gates, all empty)  0x18 code DPL3   0x20 data DPL3
//!  0x0002_0000  TSS of the running task     0x28 TSS (busy, in TR; limit 0x67 + I/O map)
//!  0x0000_2100  second TSS, 0x2200 third    0x30 code DPL1   0x38 data DPL1
//!  0x0000_3000  LDT (for tests that load one) 0x40 conforming code DPL0
//!  0x0000_7000  ring 0 stack top (ESP0)     0x48 16-bit code DPL0  0x50 16-bit data DPL0
//!  0x0000_6000  ring 1 stack top (ESP1)     0x58.. free for the test
//!  0x0000_9000  ring 3 stack top
//!  0x0001_0000  code
//! ```
//! Flat segments (base 0, 4 GiB) everywhere, so an address means the same in every ring.

use std::sync::Arc;

use memory::{GuestMemory, GuestPhysAddr};

use crate::state::*;
use crate::{Bus, Cpu, Exit};

pub const GDT: u32 = 0x800;
pub const IDT: u32 = 0x1000;
/// With its I/O map (all ports allowed) at offset 0x68.
pub const TSS: u32 = 0x2_0000;
pub const TSS2: u32 = 0x2100;
pub const TSS3: u32 = 0x2200;
pub const LDT: u32 = 0x3000;
pub const STACK0: u32 = 0x7000;
pub const STACK1: u32 = 0x6000;
pub const STACK3: u32 = 0x9000;
pub const CODE: u32 = 0x1_0000;

pub const CODE0: u16 = 0x08;
pub const DATA0: u16 = 0x10;
pub const CODE3: u16 = 0x1B;
pub const DATA3: u16 = 0x23;
pub const TSS_SEL: u16 = 0x28;
pub const CODE1: u16 = 0x31;
pub const DATA1: u16 = 0x39;
pub const CONFORMING0: u16 = 0x40;
pub const CODE16: u16 = 0x48;

/// Gate and descriptor type bytes (P, DPL, type).
pub const INT_GATE: u8 = 0x8E;
pub const INT_GATE_DPL3: u8 = 0xEE;
pub const TRAP_GATE_DPL3: u8 = 0xEF;
pub const INT_GATE16_DPL3: u8 = 0xE6;
pub const TASK_GATE: u8 = 0x85;

/// A code or data descriptor (`access` is the access byte, `flags` the G/DB nibble).
pub fn seg_desc(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    u64::from(limit & 0xFFFF)
        | u64::from(base & 0xFF_FFFF) << 16
        | u64::from(access) << 40
        | u64::from((limit >> 16) & 0xF) << 48
        | u64::from(flags & 0xF) << 52
        | u64::from(base >> 24) << 56
}

/// A gate (call, interrupt, trap or task) to `sel:offset`; `count` is a call gate's
/// parameter count.
pub fn gate_desc(sel: u16, offset: u32, access: u8, count: u8) -> u64 {
    u64::from(offset & 0xFFFF)
        | u64::from(sel) << 16
        | u64::from(count & 0x1F) << 32
        | u64::from(access) << 40
        | u64::from(offset >> 16) << 48
}

/// A bus that records port writes and reads ports as their low byte.
#[derive(Default)]
pub struct PortBus {
    pub writes: Vec<(u16, u32)>,
}

impl Bus for PortBus {
    fn io_read(&mut self, port: u16, _size: u8) -> u32 {
        u32::from(port as u8)
    }
    fn io_write(&mut self, port: u16, _size: u8, value: u32) {
        self.writes.push((port, value));
    }
    fn mmio_read(&mut self, _id: u32, _offset: u64, _size: u8) -> u32 {
        0
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

/// Where a task starts: what `Bed::tss32` writes.
pub struct Task {
    pub cs: u16,
    pub eip: u32,
    pub ss: u16,
    pub esp: u32,
    pub ds: u16,
    pub eflags: u32,
}

pub struct Bed {
    pub cpu: Cpu,
    pub bus: PortBus,
    mem: Arc<GuestMemory>,
}

impl Bed {
    /// Ring 0, flat segments, EIP at `CODE`, ESP at `STACK0`, TR loaded.
    pub fn new() -> Self {
        let mem = Arc::new(GuestMemory::new(2 << 20).expect("2 MiB of RAM"));
        let mut bed = Self {
            cpu: Cpu::new(mem.clone()),
            bus: PortBus::default(),
            mem,
        };
        let descs = [
            (1, seg_desc(0, 0xFFFFF, 0x9A, 0xC)),
            (2, seg_desc(0, 0xFFFFF, 0x92, 0xC)),
            (3, seg_desc(0, 0xFFFFF, 0xFA, 0xC)),
            (4, seg_desc(0, 0xFFFFF, 0xF2, 0xC)),
            (5, seg_desc(TSS, 0x67 + 0x2001, 0x8B, 0)),
            (6, seg_desc(0, 0xFFFFF, 0xBA, 0xC)),
            (7, seg_desc(0, 0xFFFFF, 0xB2, 0xC)),
            (8, seg_desc(0, 0xFFFFF, 0x9E, 0xC)),
            (9, seg_desc(0, 0xFFFF, 0x9A, 0)),
            (10, seg_desc(0, 0xFFFF, 0x92, 0)),
        ];
        for (n, d) in descs {
            bed.desc(n, d);
        }
        // The TSS: stacks for rings 0-2, an I/O map right after the fixed part that
        // allows every port, and its terminating all-ones byte.
        bed.w32(TSS + 4, STACK0);
        bed.w16(TSS + 8, u32::from(DATA0));
        bed.w32(TSS + 0xC, STACK1);
        bed.w16(TSS + 0x10, u32::from(DATA1));
        bed.w16(TSS + 0x66, 0x68);
        bed.w8(TSS + 0x68 + 0x2000, 0xFF);
        let mut s = CpuState::reset();
        s.cr0 |= CR0_PE;
        s.gdtr = TableReg {
            base: GDT,
            limit: 64 * 8 - 1,
        };
        s.idtr = TableReg {
            base: IDT,
            limit: 256 * 8 - 1,
        };
        s.tr = Segment {
            selector: TSS_SEL,
            base: TSS,
            limit: 0x67 + 0x2001,
            attr: ATTR_P | 0xB,
            usable: true,
        };
        s.ldtr = Segment::null(0);
        for (n, seg) in s.seg.iter_mut().enumerate() {
            let sel = if n == CS { CODE0 } else { DATA0 };
            *seg = crate::seg::Descriptor {
                lo: 0x0000_FFFF,
                hi: if n == CS { 0x00CF_9B00 } else { 0x00CF_9300 },
            }
            .to_segment(sel);
        }
        s.eip = CODE;
        s.gpr[ESP] = STACK0;
        bed.cpu.set_state(s);
        bed
    }

    /// Writes GDT entry `n`.
    pub fn desc(&mut self, n: u32, d: u64) {
        self.write(GDT + 8 * n, &d.to_le_bytes());
    }

    /// Writes IDT entry `vector`.
    pub fn gate(&mut self, vector: u8, sel: u16, offset: u32, access: u8) {
        let d = gate_desc(sel, offset, access, 0);
        self.write(IDT + 8 * u32::from(vector), &d.to_le_bytes());
    }

    /// Puts the CPU in virtual-8086 mode with IOPL `iopl` at 1000:0010, SS:SP 2000:0100
    /// and distinct data segments (ES 4000, DS 3000, FS 5000, GS 6000).
    pub fn enter_v86(&mut self, iopl: u32) {
        let mut s = self.cpu.s.clone();
        s.eflags = (s.eflags & !IOPL) | VM | (iopl << 12);
        for (n, sel) in [0x4000u16, 0x1000, 0x2000, 0x3000, 0x5000, 0x6000]
            .iter()
            .enumerate()
        {
            s.seg[n] = Segment::v86(*sel);
        }
        s.cpl = 3;
        s.eip = 0x10;
        s.gpr[ESP] = 0x100;
        self.cpu.set_state(s);
    }

    pub fn write(&mut self, at: u32, bytes: &[u8]) {
        self.mem.write_phys(GuestPhysAddr(u64::from(at)), bytes);
    }

    pub fn w8(&mut self, at: u32, v: u8) {
        self.write(at, &[v]);
    }

    pub fn w16(&mut self, at: u32, v: u32) {
        self.write(at, &(v as u16).to_le_bytes());
    }

    pub fn w32(&mut self, at: u32, v: u32) {
        self.write(at, &v.to_le_bytes());
    }

    pub fn r8(&self, at: u32) -> u8 {
        let mut b = [0u8; 1];
        self.mem.read_phys(GuestPhysAddr(u64::from(at)), &mut b);
        b[0]
    }

    pub fn r16(&self, at: u32) -> u32 {
        let mut b = [0u8; 2];
        self.mem.read_phys(GuestPhysAddr(u64::from(at)), &mut b);
        u32::from(u16::from_le_bytes(b))
    }

    pub fn r32(&self, at: u32) -> u32 {
        let mut b = [0u8; 4];
        self.mem.read_phys(GuestPhysAddr(u64::from(at)), &mut b);
        u32::from_le_bytes(b)
    }

    /// The access byte of GDT entry `n` (type and busy bit included).
    pub fn access(&self, n: u32) -> u8 {
        self.r8(GDT + 8 * n + 5)
    }

    /// Fills a 32-bit TSS at `at` with the entry state of a task; ES, FS and GS get `ds`.
    pub fn tss32(&mut self, at: u32, t: &Task) {
        self.w32(at + 0x20, t.eip);
        self.w32(at + 0x24, t.eflags);
        self.w32(at + 0x38, t.esp);
        for (n, sel) in [t.ds, t.cs, t.ss, t.ds, t.ds, t.ds].into_iter().enumerate() {
            self.w16(at + 0x48 + 4 * n as u32, u32::from(sel));
        }
        self.w16(at + 0x60, 0);
        self.w16(at + 0x66, 0x68);
    }

    /// Loads flat segments of ring 3 (CS 0x1B, SS/DS/ES/FS/GS 0x23) and ESP = `STACK3`.
    pub fn enter_ring3(&mut self, eip: u32) {
        let mut s = self.cpu.s.clone();
        for (n, seg) in s.seg.iter_mut().enumerate() {
            let sel = if n == CS { CODE3 } else { DATA3 };
            *seg = crate::seg::Descriptor {
                lo: 0x0000_FFFF,
                hi: if n == CS { 0x00CF_FB00 } else { 0x00CF_F300 },
            }
            .to_segment(sel);
        }
        s.cpl = 3;
        s.eip = eip;
        s.gpr[ESP] = STACK3;
        self.cpu.set_state(s);
    }

    /// Runs until HLT (at CPL 0), a triple fault, or 100,000 instructions.
    pub fn run(&mut self) -> Exit {
        let mut left = 100_000u64;
        loop {
            let start = self.cpu.icount();
            let exit = self.cpu.run(&mut self.bus, left.min(10_000));
            if exit != Exit::Budget {
                return exit;
            }
            left = left.saturating_sub(self.cpu.icount() - start);
            if left == 0 {
                return Exit::Budget;
            }
        }
    }

    /// `run`, then asserts that the CPU halted with EIP just past the HLT at `hlt_at`.
    pub fn run_to(&mut self, hlt_at: u32) {
        let exit = self.run();
        assert_eq!(
            exit,
            Exit::Halted,
            "last exception {:?}",
            self.cpu.last_exception
        );
        assert_eq!(
            self.cpu.s.eip,
            hlt_at + 1,
            "halted elsewhere; last exception {:?}",
            self.cpu.last_exception
        );
    }
}
