//! Multiplication and division: MUL, IMUL (one, two and three operands), DIV, IDIV.
//!
//! Flags: MUL and IMUL set CF = OF = "the high half is significant" as the SDM says. SF,
//! ZF, PF and AF are undefined; like Bochs they are taken from the low half of the
//! product (AL, AX, EAX or the truncated destination) with AF = 0. DIV and IDIV leave all
//! flags unchanged (they are undefined). A zero divisor or a quotient that does not fit
//! (IDIV of the most negative dividend by -1 included) raises #DE with nothing changed.

use iced_x86::{Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::mem::RamAccess;
use crate::state::{CF, EAX, EDX, OF};
use crate::translate::{gpr, width};
use crate::width::Width;
use crate::{by_width, by_width_16_32, Bus, Cpu};

/// `op.x` of the one-operand forms.
const MUL: u8 = 0;
const IMUL: u8 = 1;
const DIV: u8 = 2;
const IDIV: u8 = 3;

/// The double-width accumulator: AX for bytes, DX:AX for words, EDX:EAX for dwords.
#[inline(always)]
fn acc_pair<W: Width>(cpu: &Cpu) -> u64 {
    if W::BITS == 8 {
        u64::from(cpu.s.gpr[EAX] & 0xFFFF)
    } else {
        (u64::from(W::get(&cpu.s, EDX as u8)) << W::BITS) | u64::from(W::get(&cpu.s, EAX as u8))
    }
}

/// Stores `lo` and `hi` into AL:AH, AX:DX or EAX:EDX.
#[inline(always)]
fn set_pair<W: Width>(cpu: &mut Cpu, lo: u32, hi: u32) {
    if W::BITS == 8 {
        let ax = (lo & 0xFF) | ((hi & 0xFF) << 8);
        cpu.s.gpr[EAX] = (cpu.s.gpr[EAX] & !0xFFFF) | ax;
    } else {
        W::set(&mut cpu.s, EAX as u8, lo);
        W::set(&mut cpu.s, EDX as u8, hi);
    }
}

#[inline(always)]
fn cf_of(significant: bool) -> u32 {
    if significant {
        CF | OF
    } else {
        0
    }
}

/// MUL/IMUL/DIV/IDIV with source `src` (kind in `op.x`).
#[inline(always)]
fn one<W: RamAccess>(cpu: &mut Cpu, kind: u8, src: u32) -> Result<()> {
    let bits = W::BITS;
    let w = bits as u8;
    let mask = u64::from(W::MASK);
    match kind {
        MUL => {
            let p = u64::from(W::get(&cpu.s, EAX as u8)) * u64::from(src & W::MASK);
            let (lo, hi) = ((p & mask) as u32, (p >> bits) as u32);
            set_pair::<W>(cpu, lo, hi);
            cpu.s.lazy.set_explicit(w, cf_of(hi != 0), lo);
        }
        IMUL => {
            let a = i64::from(W::sext(W::get(&cpu.s, EAX as u8)) as i32);
            let b = i64::from(W::sext(src) as i32);
            let p = a * b;
            let lo = (p as u64 & mask) as u32;
            let hi = ((p as u64 >> bits) & mask) as u32;
            let fits = i64::from(W::sext(lo) as i32) == p;
            set_pair::<W>(cpu, lo, hi);
            cpu.s.lazy.set_explicit(w, cf_of(!fits), lo);
        }
        DIV => {
            let d = u64::from(src & W::MASK);
            if d == 0 {
                return Err(Exception::de());
            }
            let n = acc_pair::<W>(cpu);
            let q = n / d;
            if q > mask {
                return Err(Exception::de());
            }
            set_pair::<W>(cpu, q as u32, (n % d) as u32);
        }
        _ => {
            let d = i64::from(W::sext(src) as i32);
            if d == 0 {
                return Err(Exception::de());
            }
            let n = acc_pair::<W>(cpu);
            // Sign-extend the double-width dividend to 64 bits.
            let sh = 64 - 2 * bits;
            let n = ((n << sh) as i64) >> sh;
            let (q, r) = match (n.checked_div(d), n.checked_rem(d)) {
                (Some(q), Some(r)) => (q, r),
                _ => return Err(Exception::de()),
            };
            let lim = 1i64 << (bits - 1);
            if q < -lim || q >= lim {
                return Err(Exception::de());
            }
            set_pair::<W>(cpu, q as u32, r as u32);
        }
    }
    Ok(())
}

fn one_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let src = W::get(&cpu.s, op.rm);
    one::<W>(cpu, op.x, src)
}

fn one_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let src = cpu.read_op::<W>(bus, op)?;
    one::<W>(cpu, op.x, src)
}

/// Truncating signed multiply for the two- and three-operand IMUL forms.
#[inline(always)]
fn imul_trunc<W: RamAccess>(cpu: &mut Cpu, a: u32, b: u32) -> u32 {
    let p = i64::from(W::sext(a) as i32) * i64::from(W::sext(b) as i32);
    let lo = p as u32 & W::MASK;
    let fits = i64::from(W::sext(lo) as i32) == p;
    cpu.s.lazy.set_explicit(W::BITS as u8, cf_of(!fits), lo);
    lo
}

/// `imul r, r`: r = destination, rm = source.
fn imul2_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let r = imul_trunc::<W>(cpu, W::get(&cpu.s, op.r), W::get(&cpu.s, op.rm));
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

fn imul2_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let b = cpu.read_op::<W>(bus, op)?;
    let r = imul_trunc::<W>(cpu, W::get(&cpu.s, op.r), b);
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

/// `imul r, r, imm`: r = destination, rm = source, imm = the (sign-extended) immediate.
fn imul3_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let r = imul_trunc::<W>(cpu, W::get(&cpu.s, op.rm), op.imm);
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

fn imul3_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let a = cpu.read_op::<W>(bus, op)?;
    let r = imul_trunc::<W>(cpu, a, op.imm);
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let kind = match i.mnemonic() {
        Mnemonic::Mul => MUL,
        Mnemonic::Imul => IMUL,
        Mnemonic::Div => DIV,
        Mnemonic::Idiv => IDIV,
        _ => return None,
    };
    match i.op_count() {
        1 => {
            op.x = kind;
            let w = width(i, 0);
            Some(match i.op_kind(0) {
                OpKind::Register => {
                    op.rm = gpr(i.op0_register());
                    by_width!(w, one_r)
                }
                OpKind::Memory => by_width!(w, one_m),
                _ => return None,
            })
        }
        2 | 3 if kind == IMUL && i.op_kind(0) == OpKind::Register => {
            op.r = gpr(i.op0_register());
            let w = width(i, 0);
            let reg = i.op_kind(1) == OpKind::Register;
            if reg {
                op.rm = gpr(i.op1_register());
            }
            Some(match (i.op_count(), reg) {
                (2, true) => by_width_16_32!(w, imul2_r),
                (2, false) => by_width_16_32!(w, imul2_m),
                (_, true) => by_width_16_32!(w, imul3_r),
                (_, false) => by_width_16_32!(w, imul3_m),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::exception::Exception;
    use crate::state::{CF, EAX, EBX, ECX, EDX, FIXED1, OF};
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    fn state(regs: &[(usize, u32)]) -> SnippetState {
        let mut s = SnippetState::default();
        for &(r, v) in regs {
            s.gpr[r] = v;
        }
        s.eflags = FIXED1;
        s
    }

    fn run(code: &[u8], regs: &[(usize, u32)]) -> SnippetState {
        let mut s = state(regs);
        assert_eq!(run_snippet32(code, &mut s), SnippetEnd::Done);
        s
    }

    /// Runs code expected to raise #DE and checks that no register changed.
    fn run_de(code: &[u8], regs: &[(usize, u32)]) {
        let mut s = state(regs);
        let before = s.gpr;
        assert_eq!(
            run_snippet32(code, &mut s),
            SnippetEnd::Exception(Exception::de())
        );
        assert_eq!(s.gpr, before);
    }

    #[test]
    fn mul_widths() {
        // mul bl: 0x80 * 2 = 0x100 -> AX, high half significant.
        let s = run(&[0xF6, 0xE3], &[(EAX, 0xAAAA_0080), (EBX, 2)]);
        assert_eq!(s.gpr[EAX], 0xAAAA_0100);
        assert_eq!(s.eflags & (CF | OF), CF | OF);
        // mul ecx: 0xFFFFFFFF * 2.
        let s = run(&[0xF7, 0xE1], &[(EAX, 0xFFFF_FFFF), (ECX, 2)]);
        assert_eq!((s.gpr[EDX], s.gpr[EAX]), (1, 0xFFFF_FFFE));
        assert_eq!(s.eflags & (CF | OF), CF | OF);
        // mul cx: 3 * 4, DX = 0 keeps EDX's upper half.
        let s = run(
            &[0x66, 0xF7, 0xE1],
            &[(EAX, 3), (ECX, 4), (EDX, 0x5555_5555)],
        );
        assert_eq!((s.gpr[EDX], s.gpr[EAX]), (0x5555_0000, 12));
        assert_eq!(s.eflags & (CF | OF), 0);
    }

    #[test]
    fn imul_forms() {
        // imul bl: -2 * 3 = -6 fits in AL.
        let s = run(&[0xF6, 0xEB], &[(EAX, 0xFE), (EBX, 3)]);
        assert_eq!(s.gpr[EAX], 0xFFFA);
        assert_eq!(s.eflags & (CF | OF), 0);
        // imul bl: 0x40 * 4 = 0x100 does not.
        let s = run(&[0xF6, 0xEB], &[(EAX, 0x40), (EBX, 4)]);
        assert_eq!(s.gpr[EAX], 0x0100);
        assert_eq!(s.eflags & (CF | OF), CF | OF);
        // imul dword [m]: -1 * 5 = -5 in EDX:EAX.
        let mut st = state(&[(EAX, 5)]);
        st.data[..4].copy_from_slice(&(-1i32).to_le_bytes());
        let code = [0xF7, 0x2D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!((st.gpr[EDX], st.gpr[EAX]), (0xFFFF_FFFF, (-5i32) as u32));
        assert_eq!(st.eflags & (CF | OF), 0);
        // imul eax, [m]: 5 * -3.
        let mut st = state(&[(EAX, 5)]);
        st.data[..4].copy_from_slice(&(-3i32).to_le_bytes());
        let code = [0x0F, 0xAF, 0x05, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.gpr[EAX], (-15i32) as u32);
        assert_eq!(st.eflags & (CF | OF), 0);
        // imul ecx, edx, 0x10000 with EDX = 0x10000: truncated to 0, overflow.
        let s = run(&[0x69, 0xCA, 0x00, 0x00, 0x01, 0x00], &[(EDX, 0x10000)]);
        assert_eq!(s.gpr[ECX], 0);
        assert_eq!(s.eflags & (CF | OF), CF | OF);
        // imul ax, bx, -2 (sign-extended imm8).
        let s = run(
            &[0x66, 0x6B, 0xC3, 0xFE],
            &[(EAX, 0xDEAD_0000), (EBX, 0x100)],
        );
        assert_eq!(s.gpr[EAX], 0xDEAD_FE00);
        assert_eq!(s.eflags & (CF | OF), 0);
    }

    #[test]
    fn div_and_idiv() {
        // div bl: 1000 / 10.
        let s = run(&[0xF6, 0xF3], &[(EAX, 1000), (EBX, 10)]);
        assert_eq!(s.gpr[EAX], 100);
        // div dword [m]: 0x1_0000_0005 / 0x10.
        let mut st = state(&[(EDX, 1), (EAX, 5)]);
        st.data[..4].copy_from_slice(&0x10u32.to_le_bytes());
        let code = [0xF7, 0x35, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!((st.gpr[EAX], st.gpr[EDX]), (0x1000_0000, 5));
        // idiv ecx: -7 / 2 = -3 remainder -1 (truncation toward zero).
        let s = run(
            &[0xF7, 0xF9],
            &[(EDX, 0xFFFF_FFFF), (EAX, (-7i32) as u32), (ECX, 2)],
        );
        assert_eq!((s.gpr[EAX], s.gpr[EDX]), ((-3i32) as u32, (-1i32) as u32));
        // idiv cx: 0x0001_0000 / -2 = -0x8000, the most negative quotient, fits.
        let s = run(&[0x66, 0xF7, 0xF9], &[(EDX, 1), (EAX, 0), (ECX, 0xFFFE)]);
        assert_eq!(s.gpr[EAX] & 0xFFFF, 0x8000);
        assert_eq!(s.gpr[EDX] & 0xFFFF, 0);
    }

    #[test]
    fn divide_errors() {
        // div ecx by zero.
        run_de(&[0xF7, 0xF1], &[(EAX, 1), (ECX, 0)]);
        // div ecx: quotient 2^32 does not fit.
        run_de(&[0xF7, 0xF1], &[(EDX, 1), (EAX, 0), (ECX, 1)]);
        // div bl: 0x100 / 1.
        run_de(&[0xF6, 0xF3], &[(EAX, 0x100), (EBX, 1)]);
        // idiv bl: -128 / -1.
        run_de(&[0xF6, 0xFB], &[(EAX, 0xFF80), (EBX, 0xFF)]);
        // idiv ecx: -2^31 / -1, and the most negative 64-bit dividend / -1.
        run_de(
            &[0xF7, 0xF9],
            &[(EDX, 0xFFFF_FFFF), (EAX, 0x8000_0000), (ECX, 0xFFFF_FFFF)],
        );
        run_de(
            &[0xF7, 0xF9],
            &[(EDX, 0x8000_0000), (EAX, 0), (ECX, 0xFFFF_FFFF)],
        );
        // idiv cx: 0x8000 / 1 = +0x8000 does not fit.
        run_de(&[0x66, 0xF7, 0xF9], &[(EDX, 0), (EAX, 0x8000), (ECX, 1)]);
        // div dword [m] with a zero divisor in memory.
        run_de(&[0xF7, 0x35, 0x00, 0x00, 0x01, 0x00], &[(EAX, 1)]);
    }
}
