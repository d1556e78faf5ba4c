//! String instructions: MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS, with REP/REPE/REPNE.
//!
//! The source is `seg:(E)SI` (segment overridable), the destination always `ES:(E)DI`;
//! the address size picks SI/DI/CX wrapping at 64 KiB or ESI/EDI/ECX. A repeated
//! instruction runs its loop here, without a dispatch per element, and is precise: the
//! registers are updated after each completed element, so a fault in element k leaves
//! them as after element k-1 with EIP at the instruction (the runner restores it), and the
//! restarted instruction carries on from there. After [`MAX_ITERATIONS`] elements, or when
//! a store hit translated code (`stop_block`), the handler points EIP back at the
//! instruction and ends the block: the run loop can take an interrupt in between, as the
//! hardware does, and resumes the loop afterwards.
//!
//! `op.x` is the repeat kind: 0 none, 1 REP/REPE (F3), 2 REPNE (F2). MOVS, STOS, LODS,
//! INS and OUTS repeat the same way under either prefix.

use iced_x86::{Code, Instruction, OpKind};

use crate::block::{Handler, Op};
use crate::exception::Result;
use crate::flags::FlagOp;
use crate::mem::RamAccess;
use crate::state::{DF, EAX, ECX, EDI, EDX, ES, ESI};
use crate::translate::gpr;
use crate::width::{W16, W32, W8};
use crate::{Bus, Cpu};

/// Elements a repeated instruction runs before it lets the run loop look at interrupts.
pub const MAX_ITERATIONS: u32 = 4096;

const REP_NONE: u8 = 0;
const REP_E: u8 = 1;
const REP_NE: u8 = 2;

/// Address size: which part of SI, DI and CX the instruction uses.
pub trait AddrSize: 'static {
    const MASK: u32;
}

pub struct A16;
pub struct A32;

impl AddrSize for A16 {
    const MASK: u32 = 0xFFFF;
}

impl AddrSize for A32 {
    const MASK: u32 = 0xFFFF_FFFF;
}

#[inline(always)]
fn reg<A: AddrSize>(cpu: &Cpu, r: usize) -> u32 {
    cpu.s.gpr[r] & A::MASK
}

/// Writes the address-size part of `r`, keeping the rest (SI in ESI).
#[inline(always)]
fn set_reg<A: AddrSize>(cpu: &mut Cpu, r: usize, v: u32) {
    cpu.s.gpr[r] = (cpu.s.gpr[r] & !A::MASK) | (v & A::MASK);
}

/// One string operation on one element at source offset `si`, destination offset `di`.
pub trait StrOp: 'static {
    /// Which index registers advance.
    const SRC: bool;
    const DST: bool;
    /// CMPS/SCAS: REPE/REPNE also stop on ZF.
    const COMPARES: bool = false;
    /// INS/OUTS: port I/O at DX, permission-checked once per handler call.
    const PORT: bool = false;
    fn step<W: RamAccess>(
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        op: &Op,
        si: u32,
        di: u32,
    ) -> Result<()>;
}

pub struct Movs;
pub struct Stos;
pub struct Lods;
pub struct Cmps;
pub struct Scas;
pub struct Ins;
pub struct Outs;

impl StrOp for Movs {
    const SRC: bool = true;
    const DST: bool = true;
    #[inline(always)]
    fn step<W: RamAccess>(
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        op: &Op,
        si: u32,
        di: u32,
    ) -> Result<()> {
        let v = cpu.read::<W>(bus, op.seg(), si)?;
        cpu.write::<W>(bus, ES, di, v)
    }
}

impl StrOp for Stos {
    const SRC: bool = false;
    const DST: bool = true;
    #[inline(always)]
    fn step<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op, _: u32, di: u32) -> Result<()> {
        let v = W::get(&cpu.s, EAX as u8);
        cpu.write::<W>(bus, ES, di, v)
    }
}

impl StrOp for Lods {
    const SRC: bool = true;
    const DST: bool = false;
    #[inline(always)]
    fn step<W: RamAccess>(
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        op: &Op,
        si: u32,
        _: u32,
    ) -> Result<()> {
        let v = cpu.read::<W>(bus, op.seg(), si)?;
        W::set(&mut cpu.s, EAX as u8, v);
        Ok(())
    }
}

impl StrOp for Cmps {
    const SRC: bool = true;
    const DST: bool = true;
    const COMPARES: bool = true;
    /// Flags as `sub [seg:si], [es:di]`.
    #[inline(always)]
    fn step<W: RamAccess>(
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        op: &Op,
        si: u32,
        di: u32,
    ) -> Result<()> {
        let a = cpu.read::<W>(bus, op.seg(), si)?;
        let b = cpu.read::<W>(bus, ES, di)?;
        let r = a.wrapping_sub(b) & W::MASK;
        cpu.s.lazy.set(FlagOp::Sub, W::BITS as u8, a, b, r);
        Ok(())
    }
}

impl StrOp for Scas {
    const SRC: bool = false;
    const DST: bool = true;
    const COMPARES: bool = true;
    /// Flags as `sub al/ax/eax, [es:di]`.
    #[inline(always)]
    fn step<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op, _: u32, di: u32) -> Result<()> {
        let b = cpu.read::<W>(bus, ES, di)?;
        let a = W::get(&cpu.s, EAX as u8);
        let r = a.wrapping_sub(b) & W::MASK;
        cpu.s.lazy.set(FlagOp::Sub, W::BITS as u8, a, b, r);
        Ok(())
    }
}

impl StrOp for Ins {
    const SRC: bool = false;
    const DST: bool = true;
    const PORT: bool = true;
    /// The destination is checked before the port is read: a port read has side effects,
    /// and a store that faulted after it would repeat them when the instruction restarts.
    #[inline(always)]
    fn step<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op, _: u32, di: u32) -> Result<()> {
        let lin = cpu.seg_check(ES, di, W::BYTES, true)?;
        cpu.probe_write(lin, W::BYTES)?;
        bus.sync_icount(cpu.s.icount);
        let v = bus.io_read(cpu.s.gpr[EDX] as u16, W::BYTES as u8);
        cpu.write_lin::<W>(bus, lin, v & W::MASK)
    }
}

impl StrOp for Outs {
    const SRC: bool = true;
    const DST: bool = false;
    const PORT: bool = true;
    #[inline(always)]
    fn step<W: RamAccess>(
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        op: &Op,
        si: u32,
        _: u32,
    ) -> Result<()> {
        let v = cpu.read::<W>(bus, op.seg(), si)?;
        bus.sync_icount(cpu.s.icount);
        bus.io_write(cpu.s.gpr[EDX] as u16, W::BYTES as u8, v);
        Ok(())
    }
}

/// One element, then SI/DI move by the element size in the DF direction.
#[inline(always)]
fn element<W: RamAccess, A: AddrSize, K: StrOp>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
    delta: u32,
) -> Result<()> {
    let si = reg::<A>(cpu, ESI);
    let di = reg::<A>(cpu, EDI);
    K::step::<W>(cpu, bus, op, si, di)?;
    if K::SRC {
        set_reg::<A>(cpu, ESI, si.wrapping_add(delta));
    }
    if K::DST {
        set_reg::<A>(cpu, EDI, di.wrapping_add(delta));
    }
    Ok(())
}

fn string<W: RamAccess, A: AddrSize, K: StrOp>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
) -> Result<()> {
    let r = repeat::<W, A, K>(cpu, bus, op);
    if K::PORT && K::SRC {
        // OUTS wrote a port: like OUT, end the block so the run loop sees what the device
        // did (an interrupt raised, a stop requested) at this instruction boundary.
        cpu.stop_block = true;
    }
    r
}

fn repeat<W: RamAccess, A: AddrSize, K: StrOp>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
) -> Result<()> {
    let delta = if cpu.s.eflags & DF != 0 {
        W::BYTES.wrapping_neg()
    } else {
        W::BYTES
    };
    if op.x == REP_NONE {
        if K::PORT {
            super::io::io_allowed(cpu, bus, cpu.s.gpr[EDX] as u16, W::BYTES as u8)?;
        }
        return element::<W, A, K>(cpu, bus, op, delta);
    }
    if reg::<A>(cpu, ECX) == 0 {
        return Ok(());
    }
    if K::PORT {
        super::io::io_allowed(cpu, bus, cpu.s.gpr[EDX] as u16, W::BYTES as u8)?;
    }
    let mut n = 0u32;
    loop {
        element::<W, A, K>(cpu, bus, op, delta)?;
        let cx = reg::<A>(cpu, ECX).wrapping_sub(1);
        set_reg::<A>(cpu, ECX, cx);
        n += 1;
        if K::COMPARES && cpu.s.lazy.zf() != (op.x == REP_E) {
            return Ok(());
        }
        if cx & A::MASK == 0 {
            return Ok(());
        }
        let board_stop = K::PORT && K::SRC && bus.stop_requested();
        if n >= MAX_ITERATIONS || cpu.stop_block || board_stop {
            // Not done: run this instruction again from the next block, once the run loop
            // has looked at interrupts (or retranslated code this loop overwrote, or done
            // what the board asked).
            cpu.s.eip = cpu.s.eip.wrapping_sub(u32::from(op.len));
            cpu.stop_block = true;
            return Ok(());
        }
    }
}

/// Picks `string::<W, A, K>` by element width and address size.
macro_rules! pick {
    ($k:ty, $w:expr, $a16:expr) => {
        match ($w, $a16) {
            (8, true) => string::<W8, A16, $k> as Handler,
            (16, true) => string::<W16, A16, $k> as Handler,
            (_, true) => string::<W32, A16, $k> as Handler,
            (8, false) => string::<W8, A32, $k> as Handler,
            (16, false) => string::<W16, A32, $k> as Handler,
            (_, false) => string::<W32, A32, $k> as Handler,
        }
    };
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    use Code::*;
    let (kind, w) = match i.code() {
        Movsb_m8_m8 => (0, 8),
        Movsw_m16_m16 => (0, 16),
        Movsd_m32_m32 => (0, 32),
        Stosb_m8_AL => (1, 8),
        Stosw_m16_AX => (1, 16),
        Stosd_m32_EAX => (1, 32),
        Lodsb_AL_m8 => (2, 8),
        Lodsw_AX_m16 => (2, 16),
        Lodsd_EAX_m32 => (2, 32),
        Cmpsb_m8_m8 => (3, 8),
        Cmpsw_m16_m16 => (3, 16),
        Cmpsd_m32_m32 => (3, 32),
        Scasb_AL_m8 => (4, 8),
        Scasw_AX_m16 => (4, 16),
        Scasd_EAX_m32 => (4, 32),
        Insb_m8_DX => (5, 8),
        Insw_m16_DX => (5, 16),
        Insd_m32_DX => (5, 32),
        Outsb_DX_m8 => (6, 8),
        Outsw_DX_m16 => (6, 16),
        Outsd_DX_m32 => (6, 32),
        _ => return None,
    };
    let mut a16 = false;
    for n in 0..i.op_count() {
        match i.op_kind(n) {
            OpKind::MemorySegSI => {
                a16 = true;
                op.seg = gpr(i.memory_segment());
            }
            OpKind::MemorySegESI => op.seg = gpr(i.memory_segment()),
            OpKind::MemoryESDI => a16 = true,
            OpKind::MemorySegRSI | OpKind::MemoryESRDI => return None,
            _ => {}
        }
    }
    op.x = if i.has_repne_prefix() {
        REP_NE
    } else if i.has_rep_prefix() {
        REP_E
    } else {
        REP_NONE
    };
    Some(match kind {
        0 => pick!(Movs, w, a16),
        1 => pick!(Stos, w, a16),
        2 => pick!(Lods, w, a16),
        3 => pick!(Cmps, w, a16),
        4 => pick!(Scas, w, a16),
        5 => pick!(Ins, w, a16),
        _ => pick!(Outs, w, a16),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iced_x86::{Decoder, DecoderOptions};
    use memory::{GuestMemory, GuestPhysAddr};

    use super::*;
    use crate::exception::Exception;
    use crate::state::*;
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState, CODE_BASE, DATA_BASE};
    use crate::translate::translate_insn;

    fn dword(s: &SnippetState, off: usize) -> u32 {
        u32::from_le_bytes(s.data[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn movs_stos_forward_backward_and_zero_count() {
        // cld; rep movsb 8 bytes from 0x10000 to 0x10001 (overlapping forward copy)
        // rep movsd 4 dwords from 0x10100 to 0x10104; rep stosd 3 x 0x12345678 at 0x10200
        // std; rep stosb 4 x 0x5A down from 0x1030F; rep movsd 4 dwords from 0x1060C to
        // 0x10610 (backward, memmove-style); cld; rep stosb with ECX = 0 at 0x10700;
        // index registers saved to 0x10800.. after each
        let code = [
            0xFC, 0xBE, 0x00, 0x00, 0x01, 0x00, 0xBF, 0x01, 0x00, 0x01, 0x00, 0xB9, 0x08, 0x00,
            0x00, 0x00, 0xF3, 0xA4, 0x89, 0x35, 0x00, 0x08, 0x01, 0x00, 0x89, 0x3D, 0x04, 0x08,
            0x01, 0x00, 0x89, 0x0D, 0x08, 0x08, 0x01, 0x00, 0xBE, 0x00, 0x01, 0x01, 0x00, 0xBF,
            0x04, 0x01, 0x01, 0x00, 0xB9, 0x04, 0x00, 0x00, 0x00, 0xF3, 0xA5, 0x89, 0x35, 0x0C,
            0x08, 0x01, 0x00, 0x89, 0x3D, 0x10, 0x08, 0x01, 0x00, 0xBF, 0x00, 0x02, 0x01, 0x00,
            0xB8, 0x78, 0x56, 0x34, 0x12, 0xB9, 0x03, 0x00, 0x00, 0x00, 0xF3, 0xAB, 0x89, 0x3D,
            0x14, 0x08, 0x01, 0x00, 0xFD, 0xBF, 0x0F, 0x03, 0x01, 0x00, 0xB0, 0x5A, 0xB9, 0x04,
            0x00, 0x00, 0x00, 0xF3, 0xAA, 0x89, 0x3D, 0x18, 0x08, 0x01, 0x00, 0xBE, 0x0C, 0x06,
            0x01, 0x00, 0xBF, 0x10, 0x06, 0x01, 0x00, 0xB9, 0x04, 0x00, 0x00, 0x00, 0xF3, 0xA5,
            0x89, 0x35, 0x1C, 0x08, 0x01, 0x00, 0x89, 0x3D, 0x20, 0x08, 0x01, 0x00, 0xFC, 0xBF,
            0x00, 0x07, 0x01, 0x00, 0xB9, 0x00, 0x00, 0x00, 0x00, 0xF3, 0xAA, 0x89, 0x3D, 0x24,
            0x08, 0x01, 0x00,
        ];
        let mut s = SnippetState::default();
        s.data[0] = 0x11;
        for k in 1..16 {
            s.data[k] = 0x20 + k as u8;
        }
        for k in 0..4 {
            s.data[0x100 + 4 * k..0x104 + 4 * k].copy_from_slice(&(0xA0 + k as u32).to_le_bytes());
            s.data[0x600 + 4 * k..0x604 + 4 * k].copy_from_slice(&(1 + k as u32).to_le_bytes());
        }
        s.data[0x700] = 0xEE;
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        // Byte by byte, the forward overlapping copy smears the first byte.
        assert_eq!(&s.data[..9], &[0x11; 9]);
        assert_eq!(s.data[9], 0x29);
        assert_eq!(dword(&s, 0x800), 0x1_0008);
        assert_eq!(dword(&s, 0x804), 0x1_0009);
        assert_eq!(dword(&s, 0x808), 0);
        for k in 0..5 {
            assert_eq!(dword(&s, 0x100 + 4 * k), 0xA0);
        }
        assert_eq!(dword(&s, 0x80C), 0x1_0110);
        assert_eq!(dword(&s, 0x810), 0x1_0114);
        for k in 0..3 {
            assert_eq!(dword(&s, 0x200 + 4 * k), 0x1234_5678);
        }
        assert_eq!(dword(&s, 0x20C), 0);
        assert_eq!(dword(&s, 0x814), 0x1_020C);
        // DF = 1: stores go downwards, EDI ends below the last one.
        assert_eq!(&s.data[0x30B..0x310], &[0, 0x5A, 0x5A, 0x5A, 0x5A]);
        assert_eq!(dword(&s, 0x818), 0x1_030B);
        let moved: Vec<u32> = (0..5).map(|k| dword(&s, 0x600 + 4 * k)).collect();
        assert_eq!(moved, [1, 1, 2, 3, 4]);
        assert_eq!(dword(&s, 0x81C), 0x1_05FC);
        assert_eq!(dword(&s, 0x820), 0x1_0600);
        // REP with ECX = 0 does nothing.
        assert_eq!(s.data[0x700], 0xEE);
        assert_eq!(dword(&s, 0x824), 0x1_0700);
        assert_eq!(s.eflags & DF, 0);
    }

    #[test]
    fn cmps_scas_lods() {
        // "hello world" at 0x10400, "hello there" at 0x10500
        // repe cmpsb (ECX = 11); pushfd; pop eax; save EAX to 0x10820, ESI EDI ECX to 0x10800..
        // repe cmpsb (ECX = 5, all equal); pushfd; pop ebx; save ECX to 0x1080C
        // repne scasb for 'o' (ECX = 100) at 0x10400; pushfd; pop edx; save EDI ECX
        // lodsd from 0x10400; save EAX ESI; cmpsw 0x10400 vs 0x10500; pushfd; pop ebp
        let code = [
            0xBE, 0x00, 0x04, 0x01, 0x00, 0xBF, 0x00, 0x05, 0x01, 0x00, 0xB9, 0x0B, 0x00, 0x00,
            0x00, 0xF3, 0xA6, 0x9C, 0x58, 0xA3, 0x20, 0x08, 0x01, 0x00, 0x89, 0x35, 0x00, 0x08,
            0x01, 0x00, 0x89, 0x3D, 0x04, 0x08, 0x01, 0x00, 0x89, 0x0D, 0x08, 0x08, 0x01, 0x00,
            0xBE, 0x00, 0x04, 0x01, 0x00, 0xBF, 0x00, 0x05, 0x01, 0x00, 0xB9, 0x05, 0x00, 0x00,
            0x00, 0xF3, 0xA6, 0x9C, 0x5B, 0x89, 0x0D, 0x0C, 0x08, 0x01, 0x00, 0xBF, 0x00, 0x04,
            0x01, 0x00, 0xB0, 0x6F, 0xB9, 0x64, 0x00, 0x00, 0x00, 0xF2, 0xAE, 0x9C, 0x5A, 0x89,
            0x3D, 0x10, 0x08, 0x01, 0x00, 0x89, 0x0D, 0x14, 0x08, 0x01, 0x00, 0xBE, 0x00, 0x04,
            0x01, 0x00, 0xAD, 0xA3, 0x18, 0x08, 0x01, 0x00, 0x89, 0x35, 0x1C, 0x08, 0x01, 0x00,
            0xBE, 0x00, 0x04, 0x01, 0x00, 0xBF, 0x00, 0x05, 0x01, 0x00, 0x66, 0xA7, 0x9C, 0x5D,
        ];
        let mut s = SnippetState::default();
        s.data[0x400..0x40B].copy_from_slice(b"hello world");
        s.data[0x500..0x50B].copy_from_slice(b"hello there");
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        // Stopped after the 7th byte ('w' - 't' = 3): ZF clear, PF set.
        assert_eq!(dword(&s, 0x800), 0x1_0407);
        assert_eq!(dword(&s, 0x804), 0x1_0507);
        assert_eq!(dword(&s, 0x808), 4);
        assert_eq!(dword(&s, 0x820) & (CF | ZF | SF | OF | PF | AF), PF);
        // Ran out of count with everything equal.
        assert_eq!(dword(&s, 0x80C), 0);
        assert_eq!(s.gpr[EBX] & (CF | ZF | SF | OF), ZF);
        // 'o' is the 5th byte.
        assert_eq!(dword(&s, 0x810), 0x1_0405);
        assert_eq!(dword(&s, 0x814), 95);
        assert_eq!(s.gpr[EDX] & ZF, ZF);
        assert_eq!(dword(&s, 0x818), u32::from_le_bytes(*b"hell"));
        assert_eq!(dword(&s, 0x81C), 0x1_0404);
        assert_eq!(s.gpr[EBP] & (CF | ZF), ZF);
    }

    #[test]
    fn address_size_16() {
        // esi = 0x12348000, edi = 0x56788100, ecx = 0xFFFF0003; dword [0x8000] = 0x44332211
        // a16 rep movsb; save [0x8100], ESI, EDI, ECX to data 0..16
        // byte [0xFFFF] = 0x99; esi = 0x0001FFFF; a16 lodsb; save ESI, EAX
        // std; edi = 0x00030000; al = 0x77; a16 stosb; cld; save EDI, byte [0]
        let code = [
            0xBE, 0x00, 0x80, 0x34, 0x12, 0xBF, 0x00, 0x81, 0x78, 0x56, 0xB9, 0x03, 0x00, 0xFF,
            0xFF, 0xC7, 0x05, 0x00, 0x80, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0xF3, 0x67, 0xA4,
            0xA1, 0x00, 0x81, 0x00, 0x00, 0xA3, 0x00, 0x00, 0x01, 0x00, 0x89, 0x35, 0x04, 0x00,
            0x01, 0x00, 0x89, 0x3D, 0x08, 0x00, 0x01, 0x00, 0x89, 0x0D, 0x0C, 0x00, 0x01, 0x00,
            0xC6, 0x05, 0xFF, 0xFF, 0x00, 0x00, 0x99, 0xBE, 0xFF, 0xFF, 0x01, 0x00, 0x67, 0xAC,
            0x89, 0x35, 0x10, 0x00, 0x01, 0x00, 0xA3, 0x14, 0x00, 0x01, 0x00, 0xFD, 0xBF, 0x00,
            0x00, 0x03, 0x00, 0xB0, 0x77, 0x67, 0xAA, 0xFC, 0x89, 0x3D, 0x18, 0x00, 0x01, 0x00,
            0xA0, 0x00, 0x00, 0x00, 0x00, 0xA2, 0x1C, 0x00, 0x01, 0x00,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        // SI, DI and CX only: the upper halves stay.
        assert_eq!(dword(&s, 0), 0x0033_2211);
        assert_eq!(dword(&s, 4), 0x1234_8003);
        assert_eq!(dword(&s, 8), 0x5678_8103);
        assert_eq!(dword(&s, 0xC), 0xFFFF_0000);
        // SI wraps from 0xFFFF to 0 without carrying into ESI's top half.
        assert_eq!(dword(&s, 0x10), 0x0001_0000);
        assert_eq!(dword(&s, 0x14) & 0xFF, 0x99);
        // DI = 0 is address 0 (not 0x30000), and wraps down to 0xFFFF.
        assert_eq!(dword(&s, 0x18), 0x0003_FFFF);
        assert_eq!(s.data[0x1C], 0x77);
    }

    #[test]
    fn fault_mid_rep_is_precise() {
        // esi = 0xFFFFFFF6; edi = 0x10000; ecx = 10; rep movsd: the third dword would end
        // beyond the 4 GiB segment limit.
        let code = [
            0xBE, 0xF6, 0xFF, 0xFF, 0xFF, 0xBF, 0x00, 0x00, 0x01, 0x00, 0xB9, 0x0A, 0x00, 0x00,
            0x00, 0xF3, 0xA5,
        ];
        let mut s = SnippetState::default();
        assert_eq!(
            run_snippet32(&code, &mut s),
            SnippetEnd::Exception(Exception::gp(0))
        );
        assert_eq!(s.gpr[ESI], 0xFFFF_FFFE);
        assert_eq!(s.gpr[EDI], 0x1_0008);
        assert_eq!(s.gpr[ECX], 8);
    }

    #[test]
    fn long_rep_resumes_across_blocks() {
        // rep stosd 5000 x 0xA5A5A5A5 at 0x10000; save EDI to 0x1FF00
        // rep movsb 20000 bytes 0x10000 -> 0x20000; byte [0x20000 + 15000] = 0
        // repe cmpsb 20000 bytes 0x10000 vs 0x20000
        let code = [
            0xBF, 0x00, 0x00, 0x01, 0x00, 0xB8, 0xA5, 0xA5, 0xA5, 0xA5, 0xB9, 0x88, 0x13, 0x00,
            0x00, 0xF3, 0xAB, 0x89, 0x3D, 0x00, 0xFF, 0x01, 0x00, 0xBE, 0x00, 0x00, 0x01, 0x00,
            0xBF, 0x00, 0x00, 0x02, 0x00, 0xB9, 0x20, 0x4E, 0x00, 0x00, 0xF3, 0xA4, 0xC6, 0x05,
            0x98, 0x3A, 0x02, 0x00, 0x00, 0xBE, 0x00, 0x00, 0x01, 0x00, 0xBF, 0x00, 0x00, 0x02,
            0x00, 0xB9, 0x20, 0x4E, 0x00, 0x00, 0xF3, 0xA6,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        assert!(s.data[..20000].iter().all(|&b| b == 0xA5));
        assert_eq!(s.data[20000], 0);
        assert_eq!(dword(&s, 0xFF00), 0x1_0000 + 20000);
        // The mismatch is element 15001.
        assert_eq!(s.gpr[ECX], 20000 - 15001);
        assert_eq!(s.gpr[ESI], 0x1_0000 + 15001);
        assert_eq!(s.gpr[EDI], 0x2_0000 + 15001);
        // 0xA5 - 0: SF and PF.
        assert_eq!(s.eflags & (CF | ZF | SF | OF | PF | AF), SF | PF);
    }

    #[test]
    fn rep_stos_over_following_code() {
        // xor eax, eax; mov edi, target; mov al, 0x90; mov ecx, 5; rep stosb; mov al, 0
        // target: mov eax, 1  -- overwritten with NOPs before it runs
        let code = [
            0x31, 0xC0, 0xBF, 0x12, 0x10, 0x00, 0x00, 0xB0, 0x90, 0xB9, 0x05, 0x00, 0x00, 0x00,
            0xF3, 0xAA, 0xB0, 0x00, 0xB8, 0x01, 0x00, 0x00, 0x00,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0);
        assert_eq!(s.gpr[EDI], CODE_BASE + 0x17);
    }

    fn decode(bytes: &[u8]) -> Op {
        let i = Decoder::new(32, bytes, DecoderOptions::NONE).decode();
        translate_insn(&i)
    }

    #[test]
    fn source_segment_and_repeat_kind() {
        assert_eq!(usize::from(decode(&[0xAD]).seg), DS); // lodsd
        assert_eq!(usize::from(decode(&[0x64, 0xAD]).seg), FS); // fs lodsd
        assert_eq!(usize::from(decode(&[0x26, 0xA4]).seg), ES); // es movsb
        assert_eq!(usize::from(decode(&[0x36, 0x6E]).seg), SS); // ss outsb
        assert_eq!(decode(&[0xA6]).x, REP_NONE);
        assert_eq!(decode(&[0xF3, 0xA6]).x, REP_E);
        assert_eq!(decode(&[0xF2, 0xAE]).x, REP_NE);
    }

    /// Returns 0x10, 0x11, ... from port reads and records port writes.
    #[derive(Default)]
    struct PortBus {
        next: u32,
        writes: Vec<(u16, u8, u32)>,
    }

    impl Bus for PortBus {
        fn io_read(&mut self, _port: u16, size: u8) -> u32 {
            let v = 0x10 + self.next;
            self.next += 1;
            v & crate::width::size_mask(size)
        }
        fn io_write(&mut self, port: u16, size: u8, value: u32) {
            self.writes.push((port, size, value));
        }
        fn mmio_read(&mut self, _: u32, _: u64, size: u8) -> u32 {
            crate::width::size_mask(size)
        }
        fn mmio_write(&mut self, _: u32, _: u64, _: u8, _: u32) {}
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

    #[test]
    fn ins_outs() {
        // mov dx, 0x300; edi = 0x10000; rep insb (ECX = 4); esi = 0x10000
        // rep outsw (ECX = 2); insd; esi = 0x10004; outsb
        let code = [
            0x66, 0xBA, 0x00, 0x03, 0xBF, 0x00, 0x00, 0x01, 0x00, 0xB9, 0x04, 0x00, 0x00, 0x00,
            0xF3, 0x6C, 0xBE, 0x00, 0x00, 0x01, 0x00, 0xB9, 0x02, 0x00, 0x00, 0x00, 0xF3, 0x66,
            0x6F, 0x6D, 0xBE, 0x04, 0x00, 0x01, 0x00, 0x6E, 0xF4,
        ];
        let mem = Arc::new(GuestMemory::new(1 << 20).expect("RAM"));
        mem.write_phys(GuestPhysAddr(u64::from(CODE_BASE)), &code);
        let mut cpu = Cpu::new(mem.clone());
        let mut st = CpuState::reset();
        st.cr0 |= CR0_PE;
        for (k, seg) in st.seg.iter_mut().enumerate() {
            *seg = Segment {
                selector: 8,
                base: 0,
                limit: u32::MAX,
                attr: ATTR_P
                    | ATTR_S
                    | ATTR_RW
                    | ATTR_DB
                    | ATTR_G
                    | if k == CS { ATTR_CODE } else { 0 },
                usable: true,
            };
        }
        st.gpr[ESP] = 0x3_0000;
        st.eip = CODE_BASE;
        cpu.set_state(st);
        let mut bus = PortBus::default();
        cpu.run(&mut bus, 1000);
        assert!(cpu.s.halted);
        assert_eq!(cpu.last_exception, None);
        let mut d = [0u8; 8];
        mem.read_phys(GuestPhysAddr(u64::from(DATA_BASE)), &mut d);
        assert_eq!(d, [0x10, 0x11, 0x12, 0x13, 0x14, 0, 0, 0]);
        assert_eq!(
            bus.writes,
            [(0x300, 2, 0x1110), (0x300, 2, 0x1312), (0x300, 1, 0x14)]
        );
        assert_eq!(cpu.s.gpr[EDI], 0x1_0008);
        assert_eq!(cpu.s.gpr[ESI], 0x1_0005);
        assert_eq!(cpu.s.gpr[ECX], 0);
    }
}
