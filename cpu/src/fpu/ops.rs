//! The x87 instructions: selection at translation time and the handlers.
//!
//! Op fields: `r` = i of an ST(i) operand, `x` = a small variant (condition of FCMOVcc,
//! operand size of the environment instructions), `imm2` = the 11-bit FOP the
//! instruction records. Memory operands are the usual `ea`/`seg`.
//!
//! Every handler first raises #NM (CR0.EM/TS) and, if it is a waiting instruction,
//! reports a pending unmasked exception; then it reads its memory operand, computes,
//! writes memory, and only then commits the FPU state, so a fault on the way leaves the
//! FPU as it was.

use core::cmp::Ordering;

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

use super::arith::{self, BinOp, Ctx, Res};
use super::env::{self, Layout};
use super::f80::{self, Class, F80};
use super::transcend;
use super::*;
use crate::block::{Handler, Op};
use crate::exception::{Exception, Result, MF};
use crate::state::{AF, CF, CR0_EM, CR0_MP, CR0_NE, CR0_TS, CS, OF, PF, SF as EFLAGS_SF, ZF};
use crate::translate::address_size_16;
use crate::width::{W16, W32, W8};
use crate::{Bus, Cpu};

// ---------------------------------------------------------------------------------------
// Entry checks and bookkeeping

/// A waiting FP instruction: #NM, then a pending exception.
#[inline]
fn enter(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    if cpu.s.cr0 & (CR0_EM | CR0_TS) != 0 {
        return Err(Exception::nm());
    }
    if cpu.s.fpu.pending() {
        signal(cpu, bus)?;
    }
    Ok(())
}

/// A non-waiting (FN*) instruction: #NM only.
#[inline]
fn enter_nowait(cpu: &Cpu) -> Result<()> {
    if cpu.s.cr0 & (CR0_EM | CR0_TS) != 0 {
        return Err(Exception::nm());
    }
    Ok(())
}

/// Reports the pending exception: #MF with CR0.NE, else FERR# to the board (IRQ 13 on a
/// PC) and the instruction goes on, as on a PC whose chipset asserts IGNNE#.
fn signal(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    if cpu.s.cr0 & CR0_NE != 0 {
        return Err(Exception::fault(MF));
    }
    bus.fpu_error(true);
    Ok(())
}

/// Tells the board FERR# went away, when an instruction cleared a pending exception.
fn cleared(cpu: &Cpu, bus: &mut dyn Bus, was_pending: bool) {
    if was_pending && !cpu.s.fpu.pending() && cpu.s.cr0 & CR0_NE == 0 {
        bus.fpu_error(false);
    }
}

/// Records the instruction pointer and opcode (every non-control instruction).
#[inline]
fn note(cpu: &mut Cpu, op: &Op) {
    let ip = cpu.s.eip.wrapping_sub(u32::from(op.len));
    let cs = &cpu.s.seg[CS];
    cpu.s.fpu.fip = if cs.big() { ip } else { ip & 0xFFFF };
    cpu.s.fpu.fcs = cs.selector;
    cpu.s.fpu.fop = op.imm2 as u16;
}

/// Records the instruction and its memory operand.
#[inline]
fn note_mem(cpu: &mut Cpu, op: &Op, ea: u32) {
    note(cpu, op);
    cpu.s.fpu.fdp = ea;
    cpu.s.fpu.fds = cpu.s.seg[op.seg()].selector;
}

fn ctx(cpu: &Cpu) -> Ctx {
    Ctx::new(cpu.s.fpu.cw)
}

/// Stack underflow (a source register is empty): IE, SF, C1 = 0; if masked, `dst`
/// gets the indefinite.
fn underflow(f: &mut FpuState, dst: Option<usize>, pop: bool) {
    if f.cw & IE != 0 {
        if let Some(d) = dst {
            f.set_st(d, F80::INDEFINITE);
        }
        if pop {
            f.pop();
        }
    }
    f.finish(IE | SF);
}

/// Stack overflow (a push onto a full register): IE, SF, C1 = 1; if masked, the
/// indefinite is pushed.
fn overflow(f: &mut FpuState) {
    if f.cw & IE != 0 {
        f.push(F80::INDEFINITE);
    }
    f.finish(IE | SF | C1);
}

// ---------------------------------------------------------------------------------------
// Memory

/// Checks that `len` bytes at seg:off may be written, segment and pages, so that a
/// store of several pieces either completes or faults before its first byte.
fn probe_write(cpu: &mut Cpu, seg: usize, off: u32, len: u32) -> Result<()> {
    let lin = cpu.seg_check(seg, off, len, true)?;
    cpu.probe_write(lin, len)
}

fn read_bytes(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: usize,
    off: u32,
    out: &mut [u8],
) -> Result<()> {
    let mut k = 0;
    while k < out.len() {
        let at = off.wrapping_add(k as u32);
        let left = out.len() - k;
        if left >= 4 {
            let v = cpu.read::<W32>(bus, seg, at)?;
            out[k..k + 4].copy_from_slice(&v.to_le_bytes());
            k += 4;
        } else if left >= 2 {
            let v = cpu.read::<W16>(bus, seg, at)?;
            out[k..k + 2].copy_from_slice(&(v as u16).to_le_bytes());
            k += 2;
        } else {
            out[k] = cpu.read::<W8>(bus, seg, at)? as u8;
            k += 1;
        }
    }
    Ok(())
}

fn write_bytes(cpu: &mut Cpu, bus: &mut dyn Bus, seg: usize, off: u32, data: &[u8]) -> Result<()> {
    probe_write(cpu, seg, off, data.len() as u32)?;
    let mut k = 0;
    while k < data.len() {
        let at = off.wrapping_add(k as u32);
        let left = data.len() - k;
        if left >= 4 {
            let v = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
            cpu.write::<W32>(bus, seg, at, v)?;
            k += 4;
        } else if left >= 2 {
            let v = u32::from(u16::from_le_bytes([data[k], data[k + 1]]));
            cpu.write::<W16>(bus, seg, at, v)?;
            k += 2;
        } else {
            cpu.write::<W8>(bus, seg, at, u32::from(data[k]))?;
            k += 1;
        }
    }
    Ok(())
}

// Memory operand formats.
const M32: u8 = 0;
const M64: u8 = 1;
const M80: u8 = 2;
const I16: u8 = 3;
const I32: u8 = 4;
const I64: u8 = 5;
const BCD: u8 = 6;

const fn mem_len(m: u8) -> usize {
    match m {
        M32 | I32 => 4,
        M64 | I64 => 8,
        I16 => 2,
        _ => 10,
    }
}

/// Reads a memory operand as an extended value and the denormal flag of its format.
fn load_mem<const M: u8>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: usize,
    ea: u32,
) -> Result<(F80, u16)> {
    let mut b = [0u8; 10];
    read_bytes(cpu, bus, seg, ea, &mut b[..mem_len(M)])?;
    let mut q = [0u8; 8];
    q.copy_from_slice(&b[..8]);
    let q = u64::from_le_bytes(q);
    let den = |(v, d): (F80, bool)| (v, if d { DE } else { 0 });
    Ok(match M {
        M32 => den(F80::from_f32_bits(q as u32)),
        M64 => den(F80::from_f64_bits(q)),
        M80 => (F80::from_le_bytes(b), 0),
        I16 => {
            let v = q as u16 as i16;
            (F80::from_int(v < 0, u64::from(v.unsigned_abs())), 0)
        }
        I32 => {
            let v = q as u32 as i32;
            (F80::from_int(v < 0, u64::from(v.unsigned_abs())), 0)
        }
        I64 => {
            let v = q as i64;
            (F80::from_int(v < 0, v.unsigned_abs()), 0)
        }
        _ => (F80::from_bcd(b), 0),
    })
}

/// The bytes FST/FIST/FBSTP store for `x` in format `M` (`None`: an unmasked exception
/// stores nothing), and the status flags.
fn store_value<const M: u8>(x: F80, c: Ctx) -> (Option<[u8; 10]>, u16) {
    let mut b = [0u8; 10];
    let (ok, flags) = match M {
        M32 | M64 => {
            let (v, fl) = arith::to_ieee(x, M == M64, c);
            if let Some(v) = v {
                b[..8].copy_from_slice(&v.to_le_bytes());
            }
            (v.is_some(), fl)
        }
        M80 => {
            b = x.to_le_bytes();
            (true, 0)
        }
        I16 | I32 | I64 => {
            let bits = 8 * mem_len(M) as u32;
            let (v, fl) = arith::to_int(x, bits, c);
            if let Some(v) = v {
                b[..8].copy_from_slice(&v.to_le_bytes());
            }
            (v.is_some(), fl)
        }
        _ => {
            let (v, fl) = arith::to_bcd_int(x, c);
            if let Some(v) = v {
                b = match v {
                    Some((neg, m)) => f80::to_bcd(neg, m),
                    None => f80::BCD_INDEFINITE,
                };
            }
            (v.is_some(), fl)
        }
    };
    (ok.then_some(b), flags)
}

/// What a store of an empty register writes when invalid operations are masked.
fn indefinite_bytes<const M: u8>() -> [u8; 10] {
    let mut b = [0u8; 10];
    match M {
        M32 => b[..4].copy_from_slice(&0xFFC0_0000u32.to_le_bytes()),
        M64 => b[..8].copy_from_slice(&0xFFF8_0000_0000_0000u64.to_le_bytes()),
        M80 => b = F80::INDEFINITE.to_le_bytes(),
        I16 => b[..2].copy_from_slice(&0x8000u16.to_le_bytes()),
        I32 => b[..4].copy_from_slice(&0x8000_0000u32.to_le_bytes()),
        I64 => b[..8].copy_from_slice(&(1u64 << 63).to_le_bytes()),
        _ => b = f80::BCD_INDEFINITE,
    }
    b
}

// ---------------------------------------------------------------------------------------
// Arithmetic

const ADD: u8 = 0;
const MUL: u8 = 1;
const SUB: u8 = 2;
const SUBR: u8 = 3;
const DIV: u8 = 4;
const DIVR: u8 = 5;

fn compute(k: u8, d: F80, s: F80, pre: u16, c: Ctx) -> Res {
    match k {
        ADD => arith::binop(BinOp::Add, d, s, pre, c),
        MUL => arith::binop(BinOp::Mul, d, s, pre, c),
        SUB => arith::binop(BinOp::Sub, d, s, pre, c),
        SUBR => arith::binop(BinOp::Sub, s, d, pre, c),
        DIV => arith::binop(BinOp::Div, d, s, pre, c),
        _ => arith::binop(BinOp::Div, s, d, pre, c),
    }
}

/// Stores a result into ST(`d`) (unless an unmasked exception withheld it), pops if
/// asked and the result was stored, and updates the status word.
fn commit(f: &mut FpuState, d: usize, r: Res, pop: bool) {
    if let Some(v) = r.value {
        f.set_st(d, v);
        if pop {
            f.pop();
        }
    }
    f.finish(r.flags);
}

/// FADD/FMUL/FSUB(R)/FDIV(R) between registers: ST(0) op= ST(i), or ST(i) op= ST(0).
fn arith_reg<const K: u8, const TO_STI: bool, const POP: bool>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    let (d, s) = if TO_STI { (i, 0) } else { (0, i) };
    if f.is_empty(0) || f.is_empty(i) {
        underflow(f, Some(d), POP);
    } else {
        let r = compute(K, f.st(d), f.st(s), 0, c);
        commit(f, d, r, POP);
    }
    note(cpu, op);
    Ok(())
}

/// The same with a memory operand (real or integer): ST(0) op= m.
fn arith_mem<const K: u8, const M: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let ea = op.ea(cpu);
    let (src, pre) = load_mem::<M>(cpu, bus, op.seg(), ea)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        underflow(f, Some(0), false);
    } else {
        let r = compute(K, f.st(0), src, pre, c);
        commit(f, 0, r, false);
    }
    note_mem(cpu, op, ea);
    Ok(())
}

/// One-operand operations on ST(0).
fn unary<const K: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        underflow(f, Some(0), false);
    } else {
        let x = f.st(0);
        let r = match K {
            U_CHS => Res::ok(x.negate(), 0),
            U_ABS => Res::ok(x.abs(), 0),
            U_SQRT => arith::sqrt(x, c),
            U_RNDINT => arith::round_to_integral(x, c.full()),
            _ => transcend::f2xm1(x, c),
        };
        commit(f, 0, r, false);
    }
    note(cpu, op);
    Ok(())
}

const U_CHS: u8 = 0;
const U_ABS: u8 = 1;
const U_SQRT: u8 = 2;
const U_RNDINT: u8 = 3;
const U_F2XM1: u8 = 4;

/// FSCALE: ST(0) = ST(0)·2^trunc(ST(1)).
fn fscale(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(1) {
        underflow(f, Some(0), false);
    } else {
        let r = arith::scale(f.st(0), f.st(1), c);
        commit(f, 0, r, false);
    }
    note(cpu, op);
    Ok(())
}

/// FPREM (`IEEE` false) and FPREM1.
fn fprem<const IEEE: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(1) {
        underflow(f, Some(0), false);
        f.sw &= !C2;
    } else {
        let r = arith::rem(f.st(0), f.st(1), IEEE, c);
        if let Some(v) = r.res.value {
            f.set_st(0, v);
        }
        f.sw &= !C2;
        if !r.done {
            f.sw |= C2;
        }
        let mut c1 = 0;
        if let Some(q) = r.q {
            f.sw &= !(C0 | C3);
            if q & 4 != 0 {
                f.sw |= C0;
            }
            if q & 2 != 0 {
                f.sw |= C3;
            }
            if q & 1 != 0 {
                c1 = C1;
            }
        }
        f.finish((r.res.flags & !C1) | c1);
    }
    note(cpu, op);
    Ok(())
}

/// FXTRACT: ST(0) = exponent, then push the significand.
fn fxtract(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || !f.is_empty(7) {
        let flags = if f.is_empty(0) { IE | SF } else { IE | SF | C1 };
        if c.masked(IE) {
            f.set_st(0, F80::INDEFINITE);
            f.push(F80::INDEFINITE);
        }
        f.finish(flags);
        note(cpu, op);
        return Ok(());
    }
    let x = f.st(0);
    let (e, s, flags) = match x.class() {
        Class::Unsupported => match arith::invalid(c).value {
            Some(v) => (v, v, IE),
            None => (x, x, IE),
        },
        Class::QNaN | Class::SNaN => {
            let r = arith::nan1(x, c);
            match r.value {
                Some(v) => (v, v, r.flags),
                None => (x, x, r.flags),
            }
        }
        Class::Infinity => (F80::INFINITY, x, 0),
        Class::Zero => {
            if !c.masked(ZE) {
                f.finish(ZE);
                note(cpu, op);
                return Ok(());
            }
            (F80::infinity(true), x, ZE)
        }
        cl => {
            let den = if cl == Class::Denormal { DE } else { 0 };
            if den != 0 && !c.masked(DE) {
                f.finish(DE);
                note(cpu, op);
                return Ok(());
            }
            let (e, m) = x.normalized();
            let exp = F80::from_int(e < 0, u64::from(e.unsigned_abs()));
            (exp, F80::new(x.neg(), 0x3FFF, m), den)
        }
    };
    if flags & IE != 0 && !c.masked(IE) {
        f.finish(flags);
    } else {
        f.set_st(0, e);
        f.push(s);
        f.finish(flags);
    }
    note(cpu, op);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Comparisons

fn set_cc(f: &mut FpuState, ord: Option<Ordering>) {
    f.sw &= !(C0 | C2 | C3);
    f.sw |= match ord {
        Some(Ordering::Greater) => 0,
        Some(Ordering::Less) => C0,
        Some(Ordering::Equal) => C3,
        None => C0 | C2 | C3,
    };
}

/// Compares ST(0) with `src`, sets C3/C2/C0 (C1 = 0) and pops `pops` times.
fn compare_into(f: &mut FpuState, src: F80, pre: u16, quiet: bool, pops: u8, c: Ctx) {
    let (ord, mut flags) = arith::compare(f.st(0), src, quiet);
    if flags & IE == 0 {
        flags |= pre;
    }
    let stopped = (flags & IE != 0 && !c.masked(IE)) || (flags & DE != 0 && !c.masked(DE));
    set_cc(f, ord);
    if !stopped {
        for _ in 0..pops {
            f.pop();
        }
    }
    f.finish(flags);
}

/// FCOM/FCOMP/FCOMPP/FUCOM/FUCOMP/FUCOMPP ST(i).
fn fcom_reg<const QUIET: bool, const POPS: u8>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(i) {
        set_cc(f, None);
        underflow(f, None, false);
        if c.masked(IE) {
            for _ in 0..POPS {
                f.pop();
            }
        }
    } else {
        let src = f.st(i);
        compare_into(f, src, 0, QUIET, POPS, c);
    }
    note(cpu, op);
    Ok(())
}

/// FCOM/FCOMP m32/m64, FICOM/FICOMP m16/m32.
fn fcom_mem<const M: u8, const POPS: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let ea = op.ea(cpu);
    let (src, pre) = load_mem::<M>(cpu, bus, op.seg(), ea)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        set_cc(f, None);
        underflow(f, None, false);
        if c.masked(IE) {
            for _ in 0..POPS {
                f.pop();
            }
        }
    } else {
        compare_into(f, src, pre, false, POPS, c);
    }
    note_mem(cpu, op, ea);
    Ok(())
}

/// FTST: ST(0) against +0.0.
fn ftst(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        set_cc(f, None);
        underflow(f, None, false);
    } else {
        compare_into(f, F80::ZERO, 0, false, 0, c);
    }
    note(cpu, op);
    Ok(())
}

/// FCOMI/FCOMIP/FUCOMI/FUCOMIP: the result in ZF, PF, CF; OF, SF, AF cleared.
fn fcomi<const QUIET: bool, const POP: bool>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    op: &Op,
) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    let (ord, flags) = if f.is_empty(0) || f.is_empty(i) {
        (None, IE | SF)
    } else {
        arith::compare(f.st(0), f.st(i), QUIET)
    };
    let stopped = (flags & IE != 0 && !c.masked(IE)) || (flags & DE != 0 && !c.masked(DE));
    {
        let e = match ord {
            Some(Ordering::Greater) => 0,
            Some(Ordering::Less) => CF,
            Some(Ordering::Equal) => ZF,
            None => ZF | PF | CF,
        };
        let old = cpu.eflags();
        cpu.s
            .lazy
            .set_flags((old & !(ZF | PF | CF | OF | EFLAGS_SF | AF)) | e);
    }
    let f = &mut cpu.s.fpu;
    if POP && !stopped {
        f.pop();
    }
    // C1 changes only on a stack fault.
    if flags & SF != 0 {
        f.finish(flags);
    } else {
        f.raise(flags);
    }
    note(cpu, op);
    Ok(())
}

/// FXAM: the class of ST(0) in C3/C2/C0, its sign in C1.
fn fxam(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let f = &mut cpu.s.fpu;
    let x = f.st(0);
    let cc = if f.is_empty(0) {
        C3 | C0
    } else {
        match x.class() {
            Class::Unsupported => 0,
            Class::QNaN | Class::SNaN => C0,
            Class::Normal => C2,
            Class::Infinity => C2 | C0,
            Class::Zero => C3,
            Class::Denormal => C3 | C2,
        }
    };
    f.sw = (f.sw & !CC) | cc | if x.neg() { C1 } else { 0 };
    note(cpu, op);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Loads and stores

/// FLD/FILD/FBLD from memory.
fn fld_mem<const M: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let ea = op.ea(cpu);
    let (v, pre) = load_mem::<M>(cpu, bus, op.seg(), ea)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if !f.is_empty(7) {
        overflow(f);
    } else {
        // Only the single and double formats can hold a signalling NaN to complain about,
        // or a denormal.
        let snan = (M == M32 || M == M64) && v.class() == Class::SNaN;
        let flags = if snan { IE } else { pre };
        // An unmasked denormal operand still loads; an unmasked SNaN does not.
        if !snan || c.masked(IE) {
            f.push(if snan { v.quieted() } else { v });
        }
        f.finish(flags);
    }
    note_mem(cpu, op, ea);
    Ok(())
}

/// FLD ST(i).
fn fld_reg(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let f = &mut cpu.s.fpu;
    if f.is_empty(i) {
        if f.cw & IE != 0 {
            f.push(F80::INDEFINITE);
        }
        f.finish(IE | SF);
    } else if !f.is_empty(7) {
        overflow(f);
    } else {
        let v = f.st(i);
        f.push(v);
        f.finish(0);
    }
    note(cpu, op);
    Ok(())
}

const K_ONE: u8 = 0;
const K_L2T: u8 = 1;
const K_L2E: u8 = 2;
const K_PI: u8 = 3;
const K_LG2: u8 = 4;
const K_LN2: u8 = 5;
const K_ZERO: u8 = 6;

/// FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ.
fn fld_const<const K: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let v = match K {
        K_ONE => F80::ONE,
        K_L2T => transcend::constant(transcend::L2T, c),
        K_L2E => transcend::constant(transcend::L2E, c),
        K_PI => transcend::constant(transcend::PI, c),
        K_LG2 => transcend::constant(transcend::LG2, c),
        K_LN2 => transcend::constant(transcend::LN2, c),
        _ => F80::ZERO,
    };
    let f = &mut cpu.s.fpu;
    if !f.is_empty(7) {
        overflow(f);
    } else {
        f.push(v);
        f.finish(0);
    }
    note(cpu, op);
    Ok(())
}

/// FST/FSTP/FIST/FISTP/FBSTP to memory.
fn fst_mem<const M: u8, const POP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let ea = op.ea(cpu);
    let c = ctx(cpu);
    let f = &cpu.s.fpu;
    let (bytes, flags, empty) = if f.is_empty(0) {
        (c.masked(IE).then(indefinite_bytes::<M>), IE | SF, true)
    } else {
        let (b, fl) = store_value::<M>(f.st(0), c);
        (b, fl, false)
    };
    if let Some(b) = bytes {
        write_bytes(cpu, bus, op.seg(), ea, &b[..mem_len(M)])?;
    }
    let f = &mut cpu.s.fpu;
    if POP && (bytes.is_some() || (empty && c.masked(IE))) {
        f.pop();
    }
    f.finish(flags);
    note_mem(cpu, op, ea);
    Ok(())
}

/// FST/FSTP ST(i).
fn fst_reg<const POP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        underflow(f, Some(i), POP);
    } else {
        let v = f.st(0);
        f.set_st(i, v);
        if POP {
            f.pop();
        }
        f.finish(0);
    }
    note(cpu, op);
    Ok(())
}

/// FXCH ST(i).
fn fxch(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let i = usize::from(op.r);
    let f = &mut cpu.s.fpu;
    let (e0, ei) = (f.is_empty(0), f.is_empty(i));
    if e0 || ei {
        if f.cw & IE != 0 {
            let a = if e0 { F80::INDEFINITE } else { f.st(0) };
            let b = if ei { F80::INDEFINITE } else { f.st(i) };
            f.set_st(0, b);
            f.set_st(i, a);
        }
        f.finish(IE | SF);
    } else {
        let (a, b) = (f.st(0), f.st(i));
        f.set_st(0, b);
        f.set_st(i, a);
        f.finish(0);
    }
    note(cpu, op);
    Ok(())
}

/// FCMOVcc ST(0), ST(i); `x` = 0 B, 1 E, 2 BE, 3 U, +4 for the negation.
fn fcmov(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let l = &cpu.s.lazy;
    let cond = match op.x & 3 {
        0 => l.cf(),
        1 => l.zf(),
        2 => l.cf() || l.zf(),
        _ => l.pf(),
    } != (op.x & 4 != 0);
    let i = usize::from(op.r);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(i) {
        underflow(f, Some(0), false);
    } else {
        if cond {
            let v = f.st(i);
            f.set_st(0, v);
        }
    }
    note(cpu, op);
    Ok(())
}

/// FFREE ST(i) and FFREEP (which also pops).
fn ffree<const POP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let f = &mut cpu.s.fpu;
    f.free(usize::from(op.r));
    f.sw &= !C1;
    if POP {
        let t = f.top() + 1;
        f.set_top(t);
    }
    note(cpu, op);
    Ok(())
}

/// FINCSTP (`UP`) and FDECSTP.
fn fstp_move<const UP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let f = &mut cpu.s.fpu;
    let t = if UP { f.top() + 1 } else { f.top() + 7 };
    f.set_top(t);
    f.sw &= !C1;
    note(cpu, op);
    Ok(())
}

fn fnop(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    note(cpu, op);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Transcendentals

const T_SIN: u8 = 0;
const T_COS: u8 = 1;

/// FSIN, FCOS: C2 = 1 and ST(0) unchanged when |ST(0)| >= 2^63.
fn trig<const K: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) {
        underflow(f, Some(0), false);
        f.sw &= !C2;
    } else {
        let x = f.st(0);
        let r = if K == T_SIN {
            transcend::fsin(x, c)
        } else {
            transcend::fcos(x, c)
        };
        match r {
            Some(r) => {
                f.sw &= !C2;
                commit(f, 0, r, false);
            }
            None => {
                f.sw = (f.sw & !C1) | C2;
            }
        }
    }
    note(cpu, op);
    Ok(())
}

/// FSINCOS and FPTAN: ST(0) = first result, then push the second.
fn trig2<const TAN: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || !f.is_empty(7) {
        let flags = if f.is_empty(0) { IE | SF } else { IE | SF | C1 };
        if c.masked(IE) {
            f.set_st(0, F80::INDEFINITE);
            f.push(F80::INDEFINITE);
        }
        f.sw &= !C2;
        f.finish(flags);
        note(cpu, op);
        return Ok(());
    }
    let x = f.st(0);
    let r = if TAN {
        transcend::fptan(x, c).map(|t| {
            let one = if t.value.is_some_and(|v| !v.is_nan()) {
                Res::ok(F80::ONE, 0)
            } else {
                t
            };
            (t, one)
        })
    } else {
        transcend::fsincos(x, c)
    };
    match r {
        None => f.sw = (f.sw & !C1) | C2,
        Some((a, b)) => {
            f.sw &= !C2;
            if let (Some(va), Some(vb)) = (a.value, b.value) {
                f.set_st(0, va);
                f.push(vb);
            }
            // Each result contributes its flags; C1 says whether the top one rounded up.
            f.finish((a.flags | b.flags) & !C1 | (b.flags & C1));
        }
    }
    note(cpu, op);
    Ok(())
}

const P_ATAN: u8 = 0;
const P_YL2X: u8 = 1;
const P_YL2XP1: u8 = 2;

/// FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), then pop.
fn binary_pop<const K: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let c = ctx(cpu);
    let f = &mut cpu.s.fpu;
    if f.is_empty(0) || f.is_empty(1) {
        underflow(f, Some(1), true);
    } else {
        let (x, y) = (f.st(0), f.st(1));
        let r = match K {
            P_ATAN => transcend::fpatan(y, x, c),
            P_YL2X => transcend::fyl2x(x, y, c),
            _ => transcend::fyl2xp1(x, y, c),
        };
        commit(f, 1, r, true);
    }
    note(cpu, op);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Control

fn fninit(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let was = cpu.s.fpu.pending();
    cpu.s.fpu.init();
    cleared(cpu, bus, was);
    Ok(())
}

fn fnclex(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let was = cpu.s.fpu.pending();
    cpu.s.fpu.sw &= !(EXC | SF | ES | B);
    cleared(cpu, bus, was);
    Ok(())
}

/// FNSTSW AX.
fn fnstsw_ax(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let g = &mut cpu.s.gpr[crate::state::EAX];
    *g = (*g & !0xFFFF) | u32::from(cpu.s.fpu.sw);
    Ok(())
}

/// FNSTSW m16 (`x` = 0) and FNSTCW m16 (`x` = 1).
fn fnst_word(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let v = if op.x == 0 {
        cpu.s.fpu.sw
    } else {
        cpu.s.fpu.cw
    };
    cpu.write_op::<W16>(bus, op, u32::from(v))
}

fn fldcw(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let v = cpu.read_op::<W16>(bus, op)?;
    let was = cpu.s.fpu.pending();
    cpu.s.fpu.set_cw(v as u16);
    cleared(cpu, bus, was);
    Ok(())
}

fn env_layout(cpu: &Cpu, op: &Op) -> Layout {
    Layout::new(!cpu.s.protected() || cpu.s.v86(), op.x != 0)
}

/// FNSTENV: store the environment, then mask every exception.
fn fnstenv(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let layout = env_layout(cpu, op);
    let img = env::encode_env(&cpu.s.fpu, layout);
    let ea = op.ea(cpu);
    write_bytes(cpu, bus, op.seg(), ea, &img[..layout.len()])?;
    let was = cpu.s.fpu.pending();
    let cw = cpu.s.fpu.cw | EXC;
    cpu.s.fpu.set_cw(cw);
    cleared(cpu, bus, was);
    Ok(())
}

fn fldenv(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let layout = env_layout(cpu, op);
    let mut img = [0u8; 28];
    let ea = op.ea(cpu);
    read_bytes(cpu, bus, op.seg(), ea, &mut img[..layout.len()])?;
    let was = cpu.s.fpu.pending();
    env::decode_env(&mut cpu.s.fpu, layout, &img);
    cleared(cpu, bus, was);
    Ok(())
}

/// FNSAVE: store everything, then FNINIT.
fn fnsave(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let layout = env_layout(cpu, op);
    let img = env::encode_save(&cpu.s.fpu, layout);
    let ea = op.ea(cpu);
    write_bytes(cpu, bus, op.seg(), ea, &img)?;
    let was = cpu.s.fpu.pending();
    cpu.s.fpu.init();
    cleared(cpu, bus, was);
    Ok(())
}

fn frstor(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter(cpu, bus)?;
    let layout = env_layout(cpu, op);
    let mut img = [0u8; 108];
    let n = layout.len() + 80;
    let ea = op.ea(cpu);
    read_bytes(cpu, bus, op.seg(), ea, &mut img[..n])?;
    let was = cpu.s.fpu.pending();
    env::decode_save(&mut cpu.s.fpu, layout, &img[..n]);
    cleared(cpu, bus, was);
    Ok(())
}

/// FXSAVE/FXRSTOR: #NM like any FP instruction, no pending-exception check, and the
/// area must be 16-byte aligned.
fn fxsave(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let ea = op.ea(cpu);
    if ea & 15 != 0 {
        return Err(Exception::gp(0));
    }
    let img = env::encode_fxsave(&cpu.s.fpu);
    write_bytes(cpu, bus, op.seg(), ea, &img)
}

fn fxrstor(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    enter_nowait(cpu)?;
    let ea = op.ea(cpu);
    if ea & 15 != 0 {
        return Err(Exception::gp(0));
    }
    let mut img = [0u8; env::FX_LEN];
    read_bytes(cpu, bus, op.seg(), ea, &mut img)?;
    let was = cpu.s.fpu.pending();
    env::decode_fxsave(&mut cpu.s.fpu, &img);
    cleared(cpu, bus, was);
    Ok(())
}

/// WAIT/FWAIT: #NM only when both MP and TS are set; then the pending exception.
fn fwait(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    if cpu.s.cr0 & (CR0_MP | CR0_TS) == CR0_MP | CR0_TS {
        return Err(Exception::nm());
    }
    if cpu.s.fpu.pending() {
        signal(cpu, bus)?;
    }
    Ok(())
}

/// FNENI, FNDISI, FNSETPM: 8087/287 controls that the 387 and later ignore.
fn fignored(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    enter_nowait(cpu)
}

// ---------------------------------------------------------------------------------------
// Selection

/// The ST(i) operand's i (0 if there is none other than ST(0)).
fn st_index(i: &Instruction) -> u8 {
    (0..i.op_count())
        .filter(|&n| i.op_kind(n) == OpKind::Register)
        .map(|n| i.op_register(n))
        .filter(|r| (Register::ST0 as u32..=Register::ST7 as u32).contains(&(*r as u32)))
        .map(|r| (r as u32 - Register::ST0 as u32) as u8)
        .find(|&k| k != 0)
        .unwrap_or(0)
}

/// The ModRM byte's mod and r/m fields of a memory operand.
fn modrm_mem(i: &Instruction) -> (u32, u32) {
    let base = i.memory_base();
    let index = i.memory_index();
    let disp = i.memory_displ_size();
    let md = |none_ok: bool| match disp {
        0 => 0,
        1 => 1,
        _ if none_ok => 0,
        _ => 2,
    };
    if address_size_16(i) {
        use Register::*;
        let rm = match (base, index) {
            (BX, SI) => 0,
            (BX, DI) => 1,
            (BP, SI) => 2,
            (BP, DI) => 3,
            (SI, None) => 4,
            (DI, None) => 5,
            (BP, None) => 6,
            (BX, None) => 7,
            _ => return (0, 6),
        };
        (md(false), rm)
    } else if base == Register::None && index == Register::None {
        (0, 5)
    } else if index != Register::None || base == Register::ESP {
        (md(base == Register::None), 4)
    } else {
        (md(false), u32::from(crate::translate::gpr(base)))
    }
}

/// FOP: the low three bits of the first opcode byte and the ModRM byte.
fn fop(i: &Instruction) -> u32 {
    let oc = i.op_code();
    let code = oc.op_code();
    if oc.op_code_len() == 2 {
        let modrm = (code & 0xFF) | u32::from(st_index(i));
        (((code >> 8) & 7) << 8) | modrm
    } else {
        let reg = oc.group_index().max(0) as u32;
        let (md, rm) = modrm_mem(i);
        ((code & 7) << 8) | (md << 6) | (reg << 3) | rm
    }
}

fn has_mem(i: &Instruction) -> bool {
    (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory)
}

/// The memory operand's format from its size and kind.
fn mem_format(i: &Instruction, int: bool) -> u8 {
    use iced_x86::MemorySize as S;
    match i.memory_size() {
        S::Float32 => M32,
        S::Float64 => M64,
        S::Float80 => M80,
        S::Int16 => I16,
        S::Int32 => I32,
        S::Int64 => I64,
        S::Bcd => BCD,
        _ if int => I32,
        _ => M32,
    }
}

macro_rules! arith_sel {
    ($k:expr, $i:expr, $op:expr, $pop:expr) => {{
        if has_mem($i) {
            match mem_format($i, false) {
                M32 => arith_mem::<{ $k }, M32> as Handler,
                M64 => arith_mem::<{ $k }, M64>,
                I16 => arith_mem::<{ $k }, I16>,
                _ => arith_mem::<{ $k }, I32>,
            }
        } else {
            let to_sti = $i.op0_register() != Register::ST0;
            match (to_sti, $pop) {
                (false, _) => arith_reg::<{ $k }, false, false> as Handler,
                (true, false) => arith_reg::<{ $k }, true, false>,
                (true, true) => arith_reg::<{ $k }, true, true>,
            }
        }
    }};
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    use Mnemonic as M;
    let m = i.mnemonic();
    let x87 = matches!(m as u32, v if (M::F2xm1 as u32..=M::Fyl2xp1 as u32).contains(&v))
        || matches!(m, M::Wait);
    if !x87 || matches!(m, M::Femms | M::Fisttp | M::Fxrstor64 | M::Fxsave64) {
        return None;
    }
    op.r = st_index(i);
    if m != M::Wait {
        op.imm2 = fop(i);
    }
    let mem = has_mem(i);
    Some(match m {
        M::Fadd | M::Fiadd => arith_sel!(ADD, i, op, false),
        M::Faddp => arith_sel!(ADD, i, op, true),
        M::Fmul | M::Fimul => arith_sel!(MUL, i, op, false),
        M::Fmulp => arith_sel!(MUL, i, op, true),
        M::Fsub | M::Fisub => arith_sel!(SUB, i, op, false),
        M::Fsubp => arith_sel!(SUB, i, op, true),
        M::Fsubr | M::Fisubr => arith_sel!(SUBR, i, op, false),
        M::Fsubrp => arith_sel!(SUBR, i, op, true),
        M::Fdiv | M::Fidiv => arith_sel!(DIV, i, op, false),
        M::Fdivp => arith_sel!(DIV, i, op, true),
        M::Fdivr | M::Fidivr => arith_sel!(DIVR, i, op, false),
        M::Fdivrp => arith_sel!(DIVR, i, op, true),
        M::Fchs => unary::<U_CHS>,
        M::Fabs => unary::<U_ABS>,
        M::Fsqrt => unary::<U_SQRT>,
        M::Frndint => unary::<U_RNDINT>,
        M::F2xm1 => unary::<U_F2XM1>,
        M::Fscale => fscale,
        M::Fprem => fprem::<false>,
        M::Fprem1 => fprem::<true>,
        M::Fxtract => fxtract,
        M::Fcom | M::Fcomp | M::Ficom | M::Ficomp if mem => {
            let pops = matches!(m, M::Fcomp | M::Ficomp);
            match (mem_format(i, matches!(m, M::Ficom | M::Ficomp)), pops) {
                (M32, false) => fcom_mem::<M32, 0> as Handler,
                (M32, true) => fcom_mem::<M32, 1>,
                (M64, false) => fcom_mem::<M64, 0>,
                (M64, true) => fcom_mem::<M64, 1>,
                (I16, false) => fcom_mem::<I16, 0>,
                (I16, true) => fcom_mem::<I16, 1>,
                (_, false) => fcom_mem::<I32, 0>,
                (_, true) => fcom_mem::<I32, 1>,
            }
        }
        M::Fcom => fcom_reg::<false, 0>,
        M::Fcomp => fcom_reg::<false, 1>,
        M::Fucom => fcom_reg::<true, 0>,
        M::Fucomp => fcom_reg::<true, 1>,
        M::Fcompp => {
            op.r = 1;
            fcom_reg::<false, 2>
        }
        M::Fucompp => {
            op.r = 1;
            fcom_reg::<true, 2>
        }
        M::Fcomi => fcomi::<false, false>,
        M::Fcomip => fcomi::<false, true>,
        M::Fucomi => fcomi::<true, false>,
        M::Fucomip => fcomi::<true, true>,
        M::Ftst => ftst,
        M::Fxam => fxam,
        M::Fld | M::Fild | M::Fbld if mem => match mem_format(i, m == M::Fild) {
            M32 => fld_mem::<M32> as Handler,
            M64 => fld_mem::<M64>,
            M80 => fld_mem::<M80>,
            I16 => fld_mem::<I16>,
            I32 => fld_mem::<I32>,
            I64 => fld_mem::<I64>,
            _ => fld_mem::<BCD>,
        },
        M::Fld => fld_reg,
        M::Fld1 => fld_const::<K_ONE>,
        M::Fldl2t => fld_const::<K_L2T>,
        M::Fldl2e => fld_const::<K_L2E>,
        M::Fldpi => fld_const::<K_PI>,
        M::Fldlg2 => fld_const::<K_LG2>,
        M::Fldln2 => fld_const::<K_LN2>,
        M::Fldz => fld_const::<K_ZERO>,
        M::Fst | M::Fstp | M::Fist | M::Fistp | M::Fbstp if mem => {
            let pop = matches!(m, M::Fstp | M::Fistp | M::Fbstp);
            match (mem_format(i, matches!(m, M::Fist | M::Fistp)), pop) {
                (M32, false) => fst_mem::<M32, false> as Handler,
                (M32, true) => fst_mem::<M32, true>,
                (M64, false) => fst_mem::<M64, false>,
                (M64, true) => fst_mem::<M64, true>,
                (M80, _) => fst_mem::<M80, true>,
                (I16, false) => fst_mem::<I16, false>,
                (I16, true) => fst_mem::<I16, true>,
                (I32, false) => fst_mem::<I32, false>,
                (I32, true) => fst_mem::<I32, true>,
                (I64, _) => fst_mem::<I64, true>,
                _ => fst_mem::<BCD, true>,
            }
        }
        M::Fst => fst_reg::<false>,
        M::Fstp | M::Fstpnce => fst_reg::<true>,
        M::Fxch => fxch,
        M::Fcmovb | M::Fcmove | M::Fcmovbe | M::Fcmovu => {
            op.x = match m {
                M::Fcmovb => 0,
                M::Fcmove => 1,
                M::Fcmovbe => 2,
                _ => 3,
            };
            fcmov
        }
        M::Fcmovnb | M::Fcmovne | M::Fcmovnbe | M::Fcmovnu => {
            op.x = 4 | match m {
                M::Fcmovnb => 0,
                M::Fcmovne => 1,
                M::Fcmovnbe => 2,
                _ => 3,
            };
            fcmov
        }
        M::Ffree => ffree::<false>,
        M::Ffreep => ffree::<true>,
        M::Fincstp => fstp_move::<true>,
        M::Fdecstp => fstp_move::<false>,
        M::Fnop => fnop,
        M::Fsin => trig::<T_SIN>,
        M::Fcos => trig::<T_COS>,
        M::Fsincos => trig2::<false>,
        M::Fptan => trig2::<true>,
        M::Fpatan => binary_pop::<P_ATAN>,
        M::Fyl2x => binary_pop::<P_YL2X>,
        M::Fyl2xp1 => binary_pop::<P_YL2XP1>,
        M::Fninit => fninit,
        M::Fnclex => fnclex,
        M::Fnstsw if !mem => fnstsw_ax,
        M::Fnstsw => {
            op.x = 0;
            fnst_word
        }
        M::Fnstcw => {
            op.x = 1;
            fnst_word
        }
        M::Fldcw => fldcw,
        M::Fnstenv | M::Fldenv | M::Fnsave | M::Frstor => {
            // 28/108-byte images with a 32-bit operand size, 14/94 with a 16-bit one.
            op.x = u8::from(matches!(i.memory_size().size(), 28 | 108));
            match m {
                M::Fnstenv => fnstenv as Handler,
                M::Fldenv => fldenv,
                M::Fnsave => fnsave,
                _ => frstor,
            }
        }
        M::Fxsave => fxsave,
        M::Fxrstor => fxrstor,
        M::Wait => fwait,
        M::Fneni | M::Fndisi | M::Fnsetpm => fignored,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! Snippets were assembled with `nasm -f bin` (`bits 32`, `org 0x1000`); the source
    //! is kept above each byte string.

    use std::sync::Arc;

    use memory::{GuestMemory, GuestPhysAddr};

    use super::*;
    use crate::exception::NM;
    use crate::fpu::ES;
    use crate::state::{
        CpuState, Segment, ATTR_CODE, ATTR_DB, ATTR_G, ATTR_P, ATTR_RW, ATTR_S, CR0_PE, EAX, EBX,
        ESP,
    };
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    fn run(code: &[u8]) -> (SnippetEnd, SnippetState) {
        let mut s = SnippetState::default();
        let end = run_snippet32(code, &mut s);
        (end, s)
    }

    fn dword(data: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn task_switched_raises_nm_but_wait_needs_mp() {
        // mov eax, cr0; or eax, 8 (TS); mov cr0, eax; wait; fld1
        let code = [
            0x0f, 0x20, 0xc0, 0x83, 0xc8, 0x08, 0x0f, 0x22, 0xc0, 0x9b, 0xd9, 0xe8,
        ];
        assert_eq!(run(&code).0, SnippetEnd::Exception(Exception::fault(NM)));
        // ... or eax, 0xA (MP | TS); mov cr0, eax; wait
        let code = [0x0f, 0x20, 0xc0, 0x83, 0xc8, 0x0a, 0x0f, 0x22, 0xc0, 0x9b];
        assert_eq!(run(&code).0, SnippetEnd::Exception(Exception::fault(NM)));
        // ... or eax, 4 (EM); mov cr0, eax; wait (runs); fninit (#NM)
        let code = [
            0x0f, 0x20, 0xc0, 0x83, 0xc8, 0x04, 0x0f, 0x22, 0xc0, 0x9b, 0xdb, 0xe3,
        ];
        assert_eq!(run(&code).0, SnippetEnd::Exception(Exception::fault(NM)));
    }

    #[test]
    fn unmasked_exception_waits_for_the_next_waiting_instruction() {
        // mov eax, cr0; or eax, 0x20 (NE); mov cr0, eax; fninit
        // mov word [0x10000], 0x037B (ZE unmasked); fldcw [0x10000]
        // fld1; fldz; fdivp st1, st0; fnstsw ax; mov ebx, 1; fwait; mov ebx, 2
        let code = [
            0x0f, 0x20, 0xc0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xc0, 0xdb, 0xe3, 0x66, 0xc7, 0x05,
            0x00, 0x00, 0x01, 0x00, 0x7b, 0x03, 0xd9, 0x2d, 0x00, 0x00, 0x01, 0x00, 0xd9, 0xe8,
            0xd9, 0xee, 0xde, 0xf9, 0xdf, 0xe0, 0xbb, 0x01, 0x00, 0x00, 0x00, 0x9b, 0xbb, 0x02,
            0x00, 0x00, 0x00,
        ];
        let (end, s) = run(&code);
        assert_eq!(end, SnippetEnd::Exception(Exception::fault(MF)));
        assert_eq!(s.gpr[EBX], 1, "#MF comes at the FWAIT, not at the FDIVP");
        let sw = s.gpr[EAX] as u16;
        assert_eq!(sw & (ZE | ES | B), ZE | ES | B);
        assert_eq!(
            (sw >> 11) & 7,
            6,
            "an unmasked exception leaves the stack as it was"
        );
    }

    /// A board that records FERR#.
    #[derive(Default)]
    struct FerrBus(Vec<bool>);

    impl Bus for FerrBus {
        fn io_read(&mut self, _: u16, _: u8) -> u32 {
            u32::MAX
        }
        fn io_write(&mut self, _: u16, _: u8, _: u32) {}
        fn mmio_read(&mut self, _: u32, _: u64, _: u8) -> u32 {
            u32::MAX
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
        fn fpu_error(&mut self, asserted: bool) {
            self.0.push(asserted);
        }
    }

    /// Runs flat 32-bit code at 0x1000 (CR0.NE clear) on `bus` until HLT.
    fn run_on(code: &[u8], bus: &mut dyn Bus) -> Cpu {
        let mem = Arc::new(GuestMemory::new(1 << 20).unwrap());
        let mut image = code.to_vec();
        image.push(0xF4);
        mem.write_phys(GuestPhysAddr(0x1000), &image);
        let mut cpu = Cpu::new(mem);
        let mut s = CpuState::reset();
        s.cr0 |= CR0_PE;
        let flat = |code: bool| Segment {
            selector: if code { 8 } else { 0x10 },
            base: 0,
            limit: u32::MAX,
            attr: ATTR_P | ATTR_S | ATTR_RW | ATTR_DB | ATTR_G | if code { ATTR_CODE } else { 0 },
            usable: true,
        };
        for (i, seg) in s.seg.iter_mut().enumerate() {
            *seg = flat(i == CS);
        }
        s.eip = 0x1000;
        s.gpr[ESP] = 0x8000;
        cpu.set_state(s);
        cpu.run(bus, 1000);
        cpu
    }

    #[test]
    fn without_ne_the_board_hears_ferr_and_the_program_goes_on() {
        // fninit; mov word [0x10000], 0x037B; fldcw [0x10000]; fld1; fldz
        // fdivp st1, st0; fwait; fnclex; mov ebx, 3
        let code = [
            0xdb, 0xe3, 0x66, 0xc7, 0x05, 0x00, 0x00, 0x01, 0x00, 0x7b, 0x03, 0xd9, 0x2d, 0x00,
            0x00, 0x01, 0x00, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0x9b, 0xdb, 0xe2, 0xbb, 0x03,
            0x00, 0x00, 0x00,
        ];
        let mut bus = FerrBus::default();
        let cpu = run_on(&code, &mut bus);
        assert_eq!(cpu.s.gpr[EBX], 3);
        assert_eq!(bus.0, [true, false]);
        assert!(!cpu.s.fpu.pending());
    }

    #[test]
    fn instruction_and_data_pointers_are_recorded() {
        // fninit; nop; fld dword [esi+8]; fnstenv [0x10100]; fnop; fnstenv [0x10200]
        let code = [
            0xdb, 0xe3, 0x90, 0xd9, 0x46, 0x08, 0xd9, 0x35, 0x00, 0x01, 0x01, 0x00, 0xd9, 0xd0,
            0xd9, 0x35, 0x00, 0x02, 0x01, 0x00,
        ];
        let (end, s) = run(&code);
        assert_eq!(end, SnippetEnd::Done);
        let env = |at: usize| {
            (0..4)
                .map(|k| dword(&s.data, at + 12 + 4 * k))
                .collect::<Vec<_>>()
        };
        // FIP, FCS | FOP << 16, FDP, FDS (upper half reserved, ones).
        assert_eq!(env(0x100), [0x1003, 0x0146_0008, 8, 0xFFFF_0010]);
        // FNOP records itself but keeps the data pointer.
        assert_eq!(env(0x200), [0x100C, 0x01D0_0008, 8, 0xFFFF_0010]);
        // FNSTENV masked every exception in the control word.
        assert_eq!(dword(&s.data, 0x200) & 0x3F, 0x3F);
    }

    #[test]
    fn fxsave_needs_sixteen_byte_alignment() {
        // fxsave [0x10008]
        let code = [0x0f, 0xae, 0x05, 0x08, 0x00, 0x01, 0x00];
        assert_eq!(run(&code).0, SnippetEnd::Exception(Exception::gp(0)));
    }

    #[test]
    fn reset_state_is_the_sdm_one() {
        let s = CpuState::reset();
        assert_eq!((s.fpu.cw, s.fpu.sw, s.fpu.tw), (0x0040, 0, 0x5555));
        assert!(s.fpu.regs.iter().all(|r| *r == F80::ZERO));
    }
}
