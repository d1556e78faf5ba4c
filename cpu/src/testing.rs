//! Running a piece of 32-bit code in a bare machine: the harness of the differential tests
//! against the host CPU and of unit tests.
//!
//! ```text
//!  0x0000_1000  code (the snippet, then HLT)
//!  0x0001_0000  data: `SnippetState::data` (64 KiB), copied in before and out after
//!  0x0003_0000  stack top (ESP is the caller's; 0x30000 is a good value)
//!  GDT: 0x08 flat 32-bit code, 0x10 flat data; CS=0x08, all data segments 0x10
//! ```
//! There is no IDT, so an exception ends the run (a triple fault) and is reported.

use std::sync::Arc;

use memory::{GuestMemory, GuestPhysAddr};

use crate::state::*;
use crate::{Cpu, Exception, NullBus};

pub const CODE_BASE: u32 = 0x1000;
pub const DATA_BASE: u32 = 0x1_0000;
pub const DATA_SIZE: usize = 0x1_0000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetState {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub gpr: [u32; 8],
    pub eflags: u32,
    pub data: Vec<u8>,
    /// Instructions to run before giving up with `Timeout`.
    pub max_insns: u64,
}

impl Default for SnippetState {
    fn default() -> Self {
        let mut gpr = [0; 8];
        gpr[ESP] = 0x3_0000;
        Self {
            gpr,
            eflags: FIXED1,
            data: vec![0; DATA_SIZE],
            max_insns: 100_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnippetEnd {
    /// Ran to the HLT after the code.
    Done,
    /// An exception stopped it (EIP at the faulting instruction).
    Exception(Exception),
    /// Did not finish within the instruction budget.
    Timeout,
}

fn flat(code: bool) -> Segment {
    let mut attr = ATTR_P | ATTR_S | ATTR_RW | ATTR_ACCESSED | ATTR_DB | ATTR_G;
    if code {
        attr |= ATTR_CODE;
    }
    Segment {
        selector: if code { 0x08 } else { 0x10 },
        base: 0,
        limit: 0xFFFF_FFFF,
        attr,
        usable: true,
    }
}

/// Runs `code` in flat 32-bit protected mode at CPL 0 with `state`, updating it.
pub fn run_snippet32(code: &[u8], state: &mut SnippetState) -> SnippetEnd {
    let mem = Arc::new(GuestMemory::new(1 << 20).expect("1 MiB of RAM"));
    let mut image = code.to_vec();
    image.push(0xF4);
    mem.write_phys(GuestPhysAddr(u64::from(CODE_BASE)), &image);
    mem.write_phys(GuestPhysAddr(u64::from(DATA_BASE)), &state.data);
    let gdt: [u32; 6] = [0, 0, 0x0000_FFFF, 0x00CF_9B00, 0x0000_FFFF, 0x00CF_9300];
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    mem.write_phys(GuestPhysAddr(0x800), &gdt_bytes);
    let mut cpu = Cpu::new(mem.clone());
    let mut s = CpuState::reset();
    s.cr0 |= CR0_PE;
    s.gdtr = TableReg {
        base: 0x800,
        limit: 23,
    };
    s.idtr = TableReg { base: 0, limit: 0 };
    for (i, seg) in s.seg.iter_mut().enumerate() {
        *seg = flat(i == CS);
    }
    s.gpr[..8].copy_from_slice(&state.gpr);
    s.eflags = 0;
    s.lazy.set_flags(0);
    s.eip = CODE_BASE;
    cpu.set_state(s);
    cpu.set_eflags(state.eflags, 0xFFFF_FFFF);
    let end_eip = CODE_BASE + code.len() as u32;
    let mut bus = NullBus;
    let mut end = SnippetEnd::Timeout;
    while cpu.icount() < state.max_insns {
        cpu.run(&mut bus, 100_000.min(state.max_insns - cpu.icount()));
        if let Some(e) = cpu.last_exception {
            end = SnippetEnd::Exception(e);
            break;
        }
        if cpu.s.halted && cpu.s.eip == end_eip + 1 {
            end = SnippetEnd::Done;
            break;
        }
        if cpu.s.halted {
            break;
        }
    }
    state.gpr.copy_from_slice(&cpu.s.gpr[..8]);
    state.eflags = cpu.eflags();
    mem.read_phys(GuestPhysAddr(u64::from(DATA_BASE)), &mut state.data);
    end
}
