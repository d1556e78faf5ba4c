//! From guest bytes to a block of ops.
//!
//! `iced-x86` decodes; each instruction group in [`crate::ops`] recognises its mnemonics
//! and picks a handler for the operand form and width. Operands common to all groups
//! (length, memory operand, first immediate) are filled in here, once.

use iced_x86::{
    Decoder, DecoderError, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register,
};
use memory::{GuestPhysAddr, Region, PAGE_SHIFT};

use crate::block::{Block, Handler, Op};
use crate::exception::Result;
use crate::state::{CS, ZERO};
use crate::tlb::PAGE_MASK;
use crate::{Bus, Cpu};

/// Longest block, in instructions: bounds interrupt latency and translation waste.
pub const MAX_BLOCK: usize = 32;

/// x86 number of a general register of any width (AL..BH, AX..DI, EAX..EDI: 0-7).
pub fn gpr(r: Register) -> u8 {
    let n = r as u32;
    let idx = if r.is_gpr8() {
        n - Register::AL as u32
    } else if r.is_gpr16() {
        n - Register::AX as u32
    } else if r.is_gpr32() {
        n - Register::EAX as u32
    } else if r.is_segment_register() {
        n - Register::ES as u32
    } else if (Register::CR0 as u32..=Register::CR15 as u32).contains(&n) {
        n - Register::CR0 as u32
    } else if (Register::DR0 as u32..=Register::DR15 as u32).contains(&n) {
        n - Register::DR0 as u32
    } else {
        ZERO as u32
    };
    idx as u8
}

/// Width in bits of operand `n` (register or memory).
pub fn width(i: &Instruction, n: u32) -> u32 {
    match i.op_kind(n) {
        OpKind::Register => i.op_register(n).size() as u32 * 8,
        OpKind::Memory => i.memory_size().size() as u32 * 8,
        OpKind::Immediate8 => 8,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 16,
        _ => 32,
    }
}

/// Picks `$f::<W8|W16|W32, ...>` by a width in bits.
#[macro_export]
macro_rules! by_width {
    ($w:expr, $f:ident, { $k:expr }) => {
        match $w {
            8 => $f::<$crate::width::W8, $k> as $crate::block::Handler,
            16 => $f::<$crate::width::W16, $k> as $crate::block::Handler,
            _ => $f::<$crate::width::W32, $k> as $crate::block::Handler,
        }
    };
    ($w:expr, $f:ident $(, $t:ty)*) => {
        match $w {
            8 => $f::<$crate::width::W8 $(, $t)*> as $crate::block::Handler,
            16 => $f::<$crate::width::W16 $(, $t)*> as $crate::block::Handler,
            _ => $f::<$crate::width::W32 $(, $t)*> as $crate::block::Handler,
        }
    };
}

/// Picks `$f::<W16|W32, ...>` for instructions without a byte form.
#[macro_export]
macro_rules! by_width_16_32 {
    ($w:expr, $f:ident $(, $t:ty)*) => {
        match $w {
            16 => $f::<$crate::width::W16 $(, $t)*> as $crate::block::Handler,
            _ => $f::<$crate::width::W32 $(, $t)*> as $crate::block::Handler,
        }
    };
}

/// The op for an instruction no group handles: #UD at run time, as the CPU would.
fn undefined(_: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    Err(crate::Exception::ud())
}

/// Builds the op for one decoded instruction.
pub fn translate_insn(i: &Instruction) -> Op {
    let mut op = Op {
        f: undefined,
        len: i.len() as u8,
        r: 0,
        rm: 0,
        seg: 3,
        base: ZERO as u8,
        index: ZERO as u8,
        scale: 0,
        x: 0,
        disp: 0,
        amask: 0xFFFF_FFFF,
        imm: 0,
        imm2: 0,
    };
    if i.code() == iced_x86::Code::INVALID {
        return op;
    }
    for n in 0..i.op_count() {
        match i.op_kind(n) {
            OpKind::Memory => {
                op.seg = gpr(i.memory_segment());
                op.base = if i.memory_base() == Register::None {
                    ZERO as u8
                } else {
                    gpr(i.memory_base())
                };
                op.index = if i.memory_index() == Register::None {
                    ZERO as u8
                } else {
                    gpr(i.memory_index())
                };
                op.scale = i.memory_index_scale().trailing_zeros() as u8;
                op.disp = i.memory_displacement32();
                op.amask = if i.memory_base().size() == 2
                    || i.memory_index().size() == 2
                    || i.memory_displ_size() == 2
                {
                    0xFFFF
                } else {
                    0xFFFF_FFFF
                };
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32 => {
                op.imm = i.immediate(n) as u32;
            }
            OpKind::Immediate8_2nd => op.imm2 = u32::from(i.immediate8_2nd()),
            _ => {}
        }
    }
    // A 16-bit address size with no registers (a plain [disp16]) also wraps at 64 KiB.
    if has_memory(i) && address_size_16(i) {
        op.amask = 0xFFFF;
    }
    op.f = crate::ops::select(i, &mut op)
        .or_else(|| crate::fpu::select(i, &mut op))
        .unwrap_or(undefined as Handler);
    op
}

fn has_memory(i: &Instruction) -> bool {
    (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory)
}

/// Whether the instruction uses 16-bit addressing (decoded in 16-bit code without 0x67,
/// or in 32-bit code with it).
pub fn address_size_16(i: &Instruction) -> bool {
    let a16 = |r: Register| r != Register::None && r.size() == 2;
    if a16(i.memory_base()) || a16(i.memory_index()) {
        return true;
    }
    if i.memory_base() != Register::None || i.memory_index() != Register::None {
        return false;
    }
    i.memory_displ_size() == 2
}

/// Whether execution must leave the block after this instruction.
fn ends_block(i: &Instruction) -> bool {
    if i.flow_control() != FlowControl::Next {
        return true;
    }
    let writes_seg = |r: Register| r == Register::SS || r == Register::CS;
    match i.mnemonic() {
        Mnemonic::Mov | Mnemonic::Pop => {
            (i.op_count() > 0 && i.op_kind(0) == OpKind::Register && writes_seg(i.op0_register()))
                || (i.op_count() > 0
                    && i.op_kind(0) == OpKind::Register
                    && i.op0_register().is_cr())
        }
        Mnemonic::Sti
        | Mnemonic::Popf
        | Mnemonic::Popfd
        | Mnemonic::Hlt
        | Mnemonic::Lmsw
        | Mnemonic::Clts
        | Mnemonic::Lss
        | Mnemonic::Wrmsr
        | Mnemonic::Invlpg
        | Mnemonic::Lldt
        | Mnemonic::Ltr
        | Mnemonic::Lgdt
        | Mnemonic::Lidt
        // A port write may end or reset the machine, or unmask an interrupt: let the
        // board see it before the next block.
        | Mnemonic::Out
        | Mnemonic::Outsb
        | Mnemonic::Outsw
        | Mnemonic::Outsd => true,
        _ => false,
    }
}

/// Instructions that read time: the time stamp counter, or a device through a port. The
/// interpreter counts executed instructions per block, so these always begin a block:
/// at their start the count is exact, and so is the time derived from it.
fn reads_time(i: &Instruction) -> bool {
    matches!(
        i.mnemonic(),
        Mnemonic::Rdtsc
            | Mnemonic::Rdmsr
            | Mnemonic::In
            | Mnemonic::Insb
            | Mnemonic::Insw
            | Mnemonic::Insd
            | Mnemonic::Out
            | Mnemonic::Outsb
            | Mnemonic::Outsw
            | Mnemonic::Outsd
    )
}

impl Cpu {
    /// Translates the block at CS:EIP (linear `lin`, physical `phys`).
    ///
    /// Only the first page is fetched for a block that starts with whole instructions: it
    /// ends before an instruction that would run into the next page. Such an instruction
    /// then starts a block of its own, which is the only kind that fetches the next page,
    /// through translation at that moment (so a #PF there is raised with that page's
    /// address, just before the instruction would execute), and which records where that
    /// page was mapped.
    pub(crate) fn translate_block(&mut self, lin: u32, phys: u64) -> Result<std::rc::Rc<Block>> {
        let page_left = 0x1000 - (lin & 0xFFF) as usize;
        let mut bytes = vec![0u8; page_left + 15];
        self.mem
            .read_phys(GuestPhysAddr(phys), &mut bytes[..page_left]);
        let bitness = if self.s.seg[CS].big() { 32 } else { 16 };
        let eip = u64::from(self.s.eip);
        let mut ops = Vec::with_capacity(8);
        let mut i = Instruction::default();
        let mut dec = Decoder::with_ip(bitness, &bytes[..page_left], eip, DecoderOptions::NONE);
        while dec.can_decode() && ops.len() < MAX_BLOCK {
            dec.decode_out(&mut i);
            if dec.last_error() == DecoderError::NoMoreBytes {
                break; // runs into the next page
            }
            if reads_time(&i) && !ops.is_empty() {
                // It starts the next block, so the instruction count is exact when it runs.
                break;
            }
            ops.push(translate_insn(&i));
            if i.is_invalid() || ends_block(&i) {
                break;
            }
        }
        let mut next_phys = None;
        if ops.is_empty() {
            let next_lin = lin.wrapping_add(page_left as u32);
            let p2 = self.translate_fetch(next_lin)?;
            self.mem
                .read_phys(GuestPhysAddr(u64::from(p2)), &mut bytes[page_left..]);
            let mut dec = Decoder::with_ip(bitness, &bytes, eip, DecoderOptions::NONE);
            dec.decode_out(&mut i);
            ops.push(translate_insn(&i));
            next_phys = Some(p2 & PAGE_MASK);
        }
        let mut pages = [None, None];
        let mut new_code = false;
        for (slot, p) in pages.iter_mut().zip([Some(phys), next_phys.map(u64::from)]) {
            let Some(p) = p else { continue };
            if matches!(self.mem.classify(GuestPhysAddr(p)), Region::Ram(_)) {
                let page = p >> PAGE_SHIFT;
                *slot = Some(page as u32);
                if !self.mem.is_code(page) {
                    self.mem.code_mark(page);
                    new_code = true;
                }
            }
        }
        if new_code {
            // Pages that now hold code must not take fast stores any longer.
            self.flush_tlb_writes();
        }
        let block = Block {
            lin,
            phys: phys as u32,
            mode: self.mode_key(),
            ops: ops.into_boxed_slice(),
            pages,
            next_phys,
            valid: std::cell::Cell::new(true),
        };
        Ok(self.cache.insert(block))
    }
}
