//! Architectural state: what a snapshot of an x86 CPU must hold, in plain fields.

use crate::flags::Lazy;

pub const EAX: usize = 0;
pub const ECX: usize = 1;
pub const EDX: usize = 2;
pub const EBX: usize = 3;
pub const ESP: usize = 4;
pub const EBP: usize = 5;
pub const ESI: usize = 6;
pub const EDI: usize = 7;
/// A register that always reads zero: effective addresses without a base or index use it,
/// so address generation never branches on "is there an index register".
pub const ZERO: usize = 8;

pub const ES: usize = 0;
pub const CS: usize = 1;
pub const SS: usize = 2;
pub const DS: usize = 3;
pub const FS: usize = 4;
pub const GS: usize = 5;

pub const SEG_NAMES: [&str; 6] = ["ES", "CS", "SS", "DS", "FS", "GS"];

// EFLAGS bits.
pub const CF: u32 = 1 << 0;
pub const PF: u32 = 1 << 2;
pub const AF: u32 = 1 << 4;
pub const ZF: u32 = 1 << 6;
pub const SF: u32 = 1 << 7;
pub const TF: u32 = 1 << 8;
pub const IF: u32 = 1 << 9;
pub const DF: u32 = 1 << 10;
pub const OF: u32 = 1 << 11;
pub const IOPL: u32 = 3 << 12;
pub const NT: u32 = 1 << 14;
pub const RF: u32 = 1 << 16;
pub const VM: u32 = 1 << 17;
pub const AC: u32 = 1 << 18;
pub const VIF: u32 = 1 << 19;
pub const VIP: u32 = 1 << 20;
pub const ID: u32 = 1 << 21;
/// The six status flags kept lazily.
pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
/// Bit 1 of EFLAGS always reads one.
pub const FIXED1: u32 = 1 << 1;

// CR0 bits.
pub const CR0_PE: u32 = 1 << 0;
pub const CR0_MP: u32 = 1 << 1;
pub const CR0_EM: u32 = 1 << 2;
pub const CR0_TS: u32 = 1 << 3;
pub const CR0_ET: u32 = 1 << 4;
pub const CR0_NE: u32 = 1 << 5;
pub const CR0_WP: u32 = 1 << 16;
pub const CR0_AM: u32 = 1 << 18;
pub const CR0_NW: u32 = 1 << 29;
pub const CR0_CD: u32 = 1 << 30;
pub const CR0_PG: u32 = 1 << 31;
/// CR0 bits that exist on a P6; the others are reserved and read zero.
pub const CR0_DEFINED: u32 = CR0_PE
    | CR0_MP
    | CR0_EM
    | CR0_TS
    | CR0_ET
    | CR0_NE
    | CR0_WP
    | CR0_AM
    | CR0_NW
    | CR0_CD
    | CR0_PG;

// Segment attribute bits (the descriptor's access byte in bits 0-7, flags in 12-15).
pub const ATTR_ACCESSED: u16 = 1 << 0;
/// Data: writable; code: readable.
pub const ATTR_RW: u16 = 1 << 1;
/// Data: expand-down; code: conforming.
pub const ATTR_DC: u16 = 1 << 2;
pub const ATTR_CODE: u16 = 1 << 3;
/// Code or data (not a system descriptor).
pub const ATTR_S: u16 = 1 << 4;
pub const ATTR_DPL_SHIFT: u16 = 5;
pub const ATTR_P: u16 = 1 << 7;
pub const ATTR_AVL: u16 = 1 << 12;
/// Default operand size (code) / stack size and upper bound (data).
pub const ATTR_DB: u16 = 1 << 14;
pub const ATTR_G: u16 = 1 << 15;

/// A segment register with its hidden descriptor cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub selector: u16,
    pub base: u32,
    /// Limit in bytes (granularity already applied).
    pub limit: u32,
    pub attr: u16,
    /// False for a null selector loaded in protected mode: every access faults.
    pub usable: bool,
}

impl Segment {
    pub fn real(selector: u16) -> Self {
        Self {
            selector,
            base: u32::from(selector) << 4,
            limit: 0xFFFF,
            attr: ATTR_P | ATTR_S | ATTR_RW | ATTR_ACCESSED,
            usable: true,
        }
    }

    /// A segment register as virtual-8086 mode sees it: 64 KiB at selector * 16, ring 3,
    /// read/write. CS gets the same data-style attributes, since V86 code (as real-mode
    /// code) may write through a CS override.
    pub fn v86(selector: u16) -> Self {
        Self {
            selector,
            base: u32::from(selector) << 4,
            limit: 0xFFFF,
            attr: ATTR_P | ATTR_S | ATTR_RW | ATTR_ACCESSED | (3 << ATTR_DPL_SHIFT),
            usable: true,
        }
    }

    /// A null selector loaded in protected mode: the register holds `selector` and any use
    /// faults.
    pub fn null(selector: u16) -> Self {
        Self {
            selector,
            base: 0,
            limit: 0,
            attr: 0,
            usable: false,
        }
    }

    pub fn dpl(&self) -> u8 {
        ((self.attr >> ATTR_DPL_SHIFT) & 3) as u8
    }

    pub fn is_code(&self) -> bool {
        self.attr & ATTR_CODE != 0
    }

    pub fn big(&self) -> bool {
        self.attr & ATTR_DB != 0
    }

    /// The valid offset range `[lo, hi]` and whether reads and writes are allowed; the
    /// memory fast path checks these instead of decoding the attributes each time.
    pub fn bounds(&self) -> SegBounds {
        if !self.usable {
            return SegBounds {
                lo: 1,
                hi: 0,
                read: false,
                write: false,
            };
        }
        let code = self.is_code();
        let expand_down = !code && self.attr & ATTR_DC != 0;
        let (lo, hi) = if expand_down {
            let top = if self.big() { u32::MAX } else { 0xFFFF };
            (self.limit.wrapping_add(1), top)
        } else {
            (0, self.limit)
        };
        SegBounds {
            lo,
            hi,
            read: !code || self.attr & ATTR_RW != 0,
            write: !code && self.attr & ATTR_RW != 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegBounds {
    pub lo: u32,
    pub hi: u32,
    pub read: bool,
    pub write: bool,
}

/// GDTR / IDTR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableReg {
    pub base: u32,
    pub limit: u16,
}

/// Every piece of architectural state. `pub` so that the monitor and savevm read it; code
/// that changes mode-relevant fields must go through `Cpu` so caches stay coherent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuState {
    /// EAX..EDI, then the always-zero slot.
    pub gpr: [u32; 9],
    pub eip: u32,
    /// EFLAGS without the six status flags, which live in `lazy`.
    pub eflags: u32,
    pub lazy: Lazy,
    pub seg: [Segment; 6],
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub ldtr: Segment,
    pub tr: Segment,
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    pub dr: [u32; 8],
    pub cpl: u8,
    pub halted: bool,
    /// One-instruction interrupt shadow after STI, MOV SS, POP SS.
    pub inhibit_irq: bool,
    /// Executed instructions since reset.
    pub icount: u64,
    pub tsc_offset: u64,
    /// Set by a triple fault: the board resets or stops.
    pub shutdown: bool,
    /// IA32_SYSENTER_CS, _ESP, _EIP (MSRs 0x174-0x176): where SYSENTER goes and, from the
    /// CS value, which selectors SYSEXIT loads.
    pub sysenter_cs: u32,
    pub sysenter_esp: u32,
    pub sysenter_eip: u32,
    /// The x87 FPU.
    pub fpu: crate::fpu::FpuState,
}

impl CpuState {
    /// The state after RESET, as the SDM tabulates it (CS:IP = F000:FFF0 with CS base
    /// 0xFFFF0000, so the first fetch is 16 bytes below 4 GiB).
    pub fn reset() -> Self {
        let mut seg = [Segment::real(0); 6];
        seg[CS] = Segment {
            selector: 0xF000,
            base: 0xFFFF_0000,
            ..Segment::real(0xF000)
        };
        // Real-mode CS is read/write like any segment: code may store through a CS
        // override. A protected-mode far jump loads real code attributes.
        let sys = |ty: u16| Segment {
            selector: 0,
            base: 0,
            limit: 0xFFFF,
            attr: ATTR_P | ty,
            usable: true,
        };
        let mut gpr = [0; 9];
        // EDX holds the processor signature at reset, the one CPUID reports.
        gpr[EDX] = crate::ops::misc::CPUID_SIGNATURE;
        Self {
            gpr,
            eip: 0xFFF0,
            eflags: FIXED1,
            lazy: Lazy::default(),
            seg,
            gdtr: TableReg {
                base: 0,
                limit: 0xFFFF,
            },
            idtr: TableReg {
                base: 0,
                limit: 0xFFFF,
            },
            ldtr: sys(2),
            tr: sys(0xB),
            cr0: CR0_ET | CR0_NW | CR0_CD,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xFFFF_0FF0, 0x400],
            cpl: 0,
            halted: false,
            inhibit_irq: false,
            icount: 0,
            tsc_offset: 0,
            shutdown: false,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            fpu: crate::fpu::FpuState::reset(),
        }
    }

    pub fn protected(&self) -> bool {
        self.cr0 & CR0_PE != 0
    }

    pub fn v86(&self) -> bool {
        self.eflags & VM != 0
    }

    /// Full EFLAGS as the guest sees it.
    pub fn flags(&self) -> u32 {
        (self.eflags & !ARITH) | self.lazy.materialize()
    }
}
