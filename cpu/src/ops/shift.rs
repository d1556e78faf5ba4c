//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR (by 1, CL or imm8) and the
//! double shifts SHLD/SHRD (by imm8 or CL).
//!
//! The count is masked to 5 bits and a masked count of 0 changes nothing, flags included.
//! Flags the SDM leaves undefined are set deterministically, the way Intel parts do where
//! that is known:
//! * shifts: CF = last bit out, SF/ZF/PF from the result, AF = 0; OF = MSB(result) XOR CF
//!   for SHL, MSB(original) for SHR, 0 for SAR, for every count (the SDM defines it for
//!   a count of 1 only).
//! * rotates keep SF/ZF/PF/AF; CF = last bit rotated; OF = MSB(result) XOR CF for ROL and
//!   RCL, the XOR of the two top result bits for ROR and RCR (for RCR this equals the
//!   SDM's "MSB(dest) XOR CF before the rotate" at count 1).
//! * SHLD/SHRD: CF = last bit out, OF as for SHL (SHLD) or the two top result bits
//!   (SHRD), SF/ZF/PF from the result, AF = 0. A 16-bit double shift by 17..31 is
//!   undefined; it is computed as a shift of the 48-bit pattern dest:src:dest, which
//!   reduces to the defined operation for counts up to 16.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

use crate::block::{Handler, Op};
use crate::exception::Result;
use crate::flags::Lazy;
use crate::mem::RamAccess;
use crate::state::{CF, ECX, OF};
use crate::translate::{gpr, width};
use crate::{by_width, by_width_16_32, Bus, Cpu};

/// `op.x` bits: the operation in the low three bits (the ModRM reg field numbering),
/// and whether the count comes from CL.
const KIND: u8 = 7;
const BY_CL: u8 = 8;
const ROL: u8 = 0;
const ROR: u8 = 1;
const RCL: u8 = 2;
const RCR: u8 = 3;
const SHL: u8 = 4;
const SHR: u8 = 5;
const SAR: u8 = 7;

/// The masked count: CL or the immediate (which is 1 for the D0-D3 "by 1" forms).
#[inline(always)]
fn count(cpu: &Cpu, op: &Op) -> u32 {
    let c = if op.x & BY_CL != 0 {
        cpu.s.gpr[ECX]
    } else {
        op.imm
    };
    c & 0x1F
}

#[inline(always)]
fn bit(v: u32, n: u32) -> u32 {
    (v >> n) & 1
}

/// Computes `kind a, c` (with `c` in 1..=31) in `bits`-bit arithmetic and records the
/// flags in `lazy`. Returns the result.
#[inline(always)]
fn shift(lazy: &mut Lazy, kind: u8, bits: u32, a: u32, c: u32) -> u32 {
    let mask = u32::MAX >> (32 - bits);
    let top = bits - 1;
    let w = bits as u8;
    let a = a & mask;
    match kind {
        ROL | ROR => {
            let r = c % bits;
            let res = if r == 0 {
                a
            } else if kind == ROL {
                ((a << r) | (a >> (bits - r))) & mask
            } else {
                ((a >> r) | (a << (bits - r))) & mask
            };
            let (cf, of) = if kind == ROL {
                let cf = res & 1;
                (cf, bit(res, top) ^ cf)
            } else {
                (bit(res, top), bit(res, top) ^ bit(res, top - 1))
            };
            set_rotate_flags(lazy, cf, of);
            res
        }
        RCL | RCR => {
            // Rotate through carry: a bits+1 wide rotation of CF:a. Counts are taken
            // modulo 9 and 17 for bytes and words; a count that is a multiple of that
            // leaves the value and CF as they were but still sets OF.
            let n = bits + 1;
            let t = if bits == 32 { c } else { c % n };
            let v = (u64::from(lazy.cf()) << bits) | u64::from(a);
            let wide_mask = (1u64 << n) - 1;
            let v = if t == 0 {
                v
            } else if kind == RCL {
                ((v << t) | (v >> (n - t))) & wide_mask
            } else {
                ((v >> t) | (v << (n - t))) & wide_mask
            };
            let res = (v as u32) & mask;
            let cf = (v >> bits) as u32 & 1;
            let of = if kind == RCL {
                bit(res, top) ^ cf
            } else {
                bit(res, top) ^ bit(res, top - 1)
            };
            set_rotate_flags(lazy, cf, of);
            res
        }
        SHR => {
            let res = a >> c;
            let cf = bit(a, c - 1);
            lazy.set_explicit(w, flag_bits(cf, bit(a, top)), res);
            res
        }
        SAR => {
            let s = ((a << (32 - bits)) as i32) >> (32 - bits);
            let res = (s >> c) as u32 & mask;
            let cf = ((s >> (c - 1)) as u32) & 1;
            lazy.set_explicit(w, flag_bits(cf, 0), res);
            res
        }
        _ => {
            // SHL/SAL: in 64-bit arithmetic the bit above the result is the last bit out
            // (0 once the count exceeds the width, as on the CPU).
            let wide = u64::from(a) << c;
            let res = (wide as u32) & mask;
            let cf = (wide >> bits) as u32 & 1;
            lazy.set_explicit(w, flag_bits(cf, bit(res, top) ^ cf), res);
            res
        }
    }
}

#[inline(always)]
fn flag_bits(cf: u32, of: u32) -> u32 {
    (if cf != 0 { CF } else { 0 }) | (if of != 0 { OF } else { 0 })
}

/// Rotates change CF and OF only: the other four flags are materialized and kept.
fn set_rotate_flags(lazy: &mut Lazy, cf: u32, of: u32) {
    let f = lazy.materialize() & !(CF | OF);
    lazy.set_flags(f | flag_bits(cf, of));
}

/// `shift r, imm` with the kind as a constant: the common shifts by a constant get a
/// straight-line handler.
fn shift_ri<W: RamAccess, const K: u8>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let c = op.imm & 0x1F;
    if c == 0 {
        return Ok(());
    }
    let a = W::get(&cpu.s, op.rm);
    let r = shift(&mut cpu.s.lazy, K, W::BITS, a, c);
    W::set(&mut cpu.s, op.rm, r);
    Ok(())
}

/// `shift r, count`: rm = the register.
fn shift_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let c = count(cpu, op);
    if c == 0 {
        return Ok(());
    }
    let a = W::get(&cpu.s, op.rm);
    let r = shift(&mut cpu.s.lazy, op.x & KIND, W::BITS, a, c);
    W::set(&mut cpu.s, op.rm, r);
    Ok(())
}

/// `shift [m], count`. With a count of 0 the operand is read (and may fault) but not
/// written.
fn shift_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let c = count(cpu, op);
    let ea = op.ea(cpu);
    let a = cpu.read::<W>(bus, op.seg(), ea)?;
    if c == 0 {
        return Ok(());
    }
    let saved = cpu.s.lazy;
    let r = shift(&mut cpu.s.lazy, op.x & KIND, W::BITS, a, c);
    if let Err(e) = cpu.write::<W>(bus, op.seg(), ea, r) {
        cpu.s.lazy = saved;
        return Err(e);
    }
    Ok(())
}

/// SHLD (`left`) or SHRD of `d` filled from `s` by `c` in 1..=31.
fn double(lazy: &mut Lazy, left: bool, bits: u32, d: u32, s: u32, c: u32) -> u32 {
    let mask = u32::MAX >> (32 - bits);
    let top = bits - 1;
    let (d, s) = (d & mask, s & mask);
    // The pattern dest:src:dest (dest highest for SHLD's view, lowest for SHRD's).
    let x = (u128::from(d) << (2 * bits)) | (u128::from(s) << bits) | u128::from(d);
    let (res, cf, of) = if left {
        let y = x << c;
        let res = (y >> (2 * bits)) as u32 & mask;
        let cf = (y >> (3 * bits)) as u32 & 1;
        (res, cf, bit(res, top) ^ cf)
    } else {
        let res = (x >> c) as u32 & mask;
        let cf = (x >> (c - 1)) as u32 & 1;
        (res, cf, bit(res, top) ^ bit(res, top - 1))
    };
    lazy.set_explicit(bits as u8, flag_bits(cf, of), res);
    res
}

/// `shld/shrd r, r, count`: rm = destination, r = source, x bit 0 = SHRD.
fn double_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let c = count(cpu, op);
    if c == 0 {
        return Ok(());
    }
    let d = W::get(&cpu.s, op.rm);
    let s = W::get(&cpu.s, op.r);
    let r = double(&mut cpu.s.lazy, op.x & 1 == 0, W::BITS, d, s, c);
    W::set(&mut cpu.s, op.rm, r);
    Ok(())
}

fn double_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let c = count(cpu, op);
    let ea = op.ea(cpu);
    let d = cpu.read::<W>(bus, op.seg(), ea)?;
    if c == 0 {
        return Ok(());
    }
    let s = W::get(&cpu.s, op.r);
    let saved = cpu.s.lazy;
    let r = double(&mut cpu.s.lazy, op.x & 1 == 0, W::BITS, d, s, c);
    if let Err(e) = cpu.write::<W>(bus, op.seg(), ea, r) {
        cpu.s.lazy = saved;
        return Err(e);
    }
    Ok(())
}

/// Whether operand `n` is CL (the count register).
fn is_cl(i: &Instruction, n: u32) -> bool {
    i.op_kind(n) == OpKind::Register && i.op_register(n) == Register::CL
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let kind = match i.mnemonic() {
        Mnemonic::Rol => ROL,
        Mnemonic::Ror => ROR,
        Mnemonic::Rcl => RCL,
        Mnemonic::Rcr => RCR,
        Mnemonic::Shl | Mnemonic::Sal => SHL,
        Mnemonic::Shr => SHR,
        Mnemonic::Sar => SAR,
        Mnemonic::Shld | Mnemonic::Shrd => {
            if i.op_count() != 3 || i.op_kind(1) != OpKind::Register {
                return None;
            }
            op.x = u8::from(i.mnemonic() == Mnemonic::Shrd);
            if is_cl(i, 2) {
                op.x |= BY_CL;
            }
            op.r = gpr(i.op1_register());
            let w = width(i, 0);
            return Some(match i.op_kind(0) {
                OpKind::Register => {
                    op.rm = gpr(i.op0_register());
                    by_width_16_32!(w, double_r)
                }
                OpKind::Memory => by_width_16_32!(w, double_m),
                _ => return None,
            });
        }
        _ => return None,
    };
    if i.op_count() != 2 {
        return None;
    }
    op.x = kind;
    if is_cl(i, 1) {
        op.x |= BY_CL;
    } else if i.op_kind(1) == OpKind::Register {
        return None;
    }
    let w = width(i, 0);
    Some(match i.op_kind(0) {
        OpKind::Register => {
            op.rm = gpr(i.op0_register());
            if op.x & BY_CL != 0 {
                by_width!(w, shift_r)
            } else {
                match kind {
                    SHL => by_width!(w, shift_ri, { SHL }),
                    SHR => by_width!(w, shift_ri, { SHR }),
                    SAR => by_width!(w, shift_ri, { SAR }),
                    ROL => by_width!(w, shift_ri, { ROL }),
                    ROR => by_width!(w, shift_ri, { ROR }),
                    _ => by_width!(w, shift_r),
                }
            }
        }
        OpKind::Memory => by_width!(w, shift_m),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::state::{AF, CF, EAX, EBX, ECX, EDX, FIXED1, OF, PF, SF, ZF};
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    /// Runs `code` with the given registers and initial flags; returns the final state.
    fn run(code: &[u8], regs: &[(usize, u32)], flags: u32) -> SnippetState {
        let mut s = SnippetState::default();
        for &(r, v) in regs {
            s.gpr[r] = v;
        }
        s.eflags = FIXED1 | flags;
        assert_eq!(run_snippet32(code, &mut s), SnippetEnd::Done);
        s
    }

    const STATUS: u32 = CF | PF | AF | ZF | SF | OF;

    #[test]
    fn shl_by_one() {
        // shl al, 1 with AL = 0x81: CF = 1, OF = MSB(result) ^ CF = 1.
        let s = run(&[0xD0, 0xE0], &[(EAX, 0xFFFF_FF81)], 0);
        assert_eq!(s.gpr[EAX], 0xFFFF_FF02);
        assert_eq!(s.eflags & STATUS, CF | OF);
    }

    #[test]
    fn shr_by_cl() {
        // shr eax, cl: OF = MSB of the original, CF = last bit out.
        let s = run(&[0xD3, 0xE8], &[(EAX, 0x8000_0001), (ECX, 1)], 0);
        assert_eq!(s.gpr[EAX], 0x4000_0000);
        assert_eq!(s.eflags & STATUS, CF | OF | PF);
    }

    #[test]
    fn sar_imm() {
        // sar al, 3: 0x90 -> 0xF2, CF = bit 2 of 0x90 = 0.
        let s = run(&[0xC0, 0xF8, 0x03], &[(EAX, 0x90)], CF);
        assert_eq!(s.gpr[EAX], 0xF2);
        assert_eq!(s.eflags & (CF | SF | ZF | OF), SF);
        // sar edx, 31 spreads the sign.
        let s = run(&[0xC1, 0xFA, 0x1F], &[(EDX, 0x8000_0000)], 0);
        assert_eq!(s.gpr[EDX], 0xFFFF_FFFF);
        assert_eq!(s.eflags & (CF | SF | ZF | OF), SF);
    }

    #[test]
    fn zero_count_keeps_flags() {
        // rol al, cl with CL = 0, and shl dword [m], 32 (masked to 0).
        let s = run(&[0xD2, 0xC0], &[(EAX, 0x80), (ECX, 0)], CF | ZF | OF);
        assert_eq!(s.gpr[EAX], 0x80);
        assert_eq!(s.eflags & STATUS, CF | ZF | OF);
        let mut st = SnippetState::default();
        st.data[..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        st.eflags = FIXED1 | SF | PF;
        let code = [0xC1, 0x25, 0x00, 0x00, 0x01, 0x00, 0x20];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(&st.data[..4], &0x1234_5678u32.to_le_bytes());
        assert_eq!(st.eflags & STATUS, SF | PF);
    }

    #[test]
    fn rotates_keep_szp() {
        // rol al, 1 with AL = 0x80 and ZF set: AL = 1, CF = 1, ZF kept, OF = 0 ^ 1.
        let s = run(&[0xD0, 0xC0], &[(EAX, 0x80)], ZF | PF);
        assert_eq!(s.gpr[EAX], 0x01);
        assert_eq!(s.eflags & STATUS, ZF | PF | CF | OF);
        // ror eax, 4: CF = MSB(result), OF = XOR of the two top bits.
        let s = run(&[0xC1, 0xC8, 0x04], &[(EAX, 0x0000_0008)], SF);
        assert_eq!(s.gpr[EAX], 0x8000_0000);
        assert_eq!(s.eflags & STATUS, SF | CF | OF);
    }

    #[test]
    fn rotate_through_carry() {
        // rcl al, 1 with CF = 1, AL = 0x80: AL = 0x01, CF = 1.
        let s = run(&[0xD0, 0xD0], &[(EAX, 0x80)], CF);
        assert_eq!(s.gpr[EAX], 0x01);
        assert_eq!(s.eflags & (CF | OF), CF | OF);
        // rcl al, 9: a full 9-bit turn, value and CF unchanged.
        let s = run(&[0xC0, 0xD0, 0x09], &[(EAX, 0x5A)], CF);
        assert_eq!(s.gpr[EAX], 0x5A);
        assert_eq!(s.eflags & CF, CF);
        // rcr bx, 1 with CF = 0, BX = 1: BX = 0, CF = 1, OF = 0.
        let s = run(&[0x66, 0xD1, 0xDB], &[(EBX, 0xABCD_0001)], ZF);
        assert_eq!(s.gpr[EBX], 0xABCD_0000);
        assert_eq!(s.eflags & STATUS, CF | ZF);
        // rcr ecx, cl: ECX = 0x12345678 rotated right by 4 through CF = 1.
        let s = run(&[0xD3, 0xD9], &[(ECX, 0x1234_5604)], CF);
        // 33-bit value 1:0x12345604 rotated right by 4: low 4 bits (0100) go around,
        // bit 3 (0) is the new CF, and the old CF lands at bit 28.
        assert_eq!(s.gpr[ECX], 0x9123_4560);
        assert_eq!(s.eflags & CF, 0);
    }

    #[test]
    fn shift_memory_and_wide_counts() {
        // shl byte [0x10000], 2 with 0x40: result 0, CF = 1, ZF = 1.
        let mut st = SnippetState::default();
        st.data[0] = 0x40;
        let code = [0xC0, 0x25, 0x00, 0x00, 0x01, 0x00, 0x02];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.data[0], 0);
        assert_eq!(st.eflags & (CF | ZF | SF | OF), CF | ZF | OF);
        // shl al, 9: everything shifted out, CF = 0.
        let s = run(&[0xC0, 0xE0, 0x09], &[(EAX, 0xFF)], CF);
        assert_eq!(s.gpr[EAX], 0);
        assert_eq!(s.eflags & (CF | ZF), ZF);
        // shr ax, cl with CL = 17.
        let s = run(&[0x66, 0xD3, 0xE8], &[(EAX, 0x1234_FFFF), (ECX, 17)], 0);
        assert_eq!(s.gpr[EAX], 0x1234_0000);
        assert_eq!(s.eflags & ZF, ZF);
    }

    #[test]
    fn double_shifts() {
        // shld eax, ebx, 4.
        let s = run(
            &[0x0F, 0xA4, 0xD8, 0x04],
            &[(EAX, 0x1234_5678), (EBX, 0x9ABC_DEF0)],
            0,
        );
        assert_eq!(s.gpr[EAX], 0x2345_6789);
        assert_eq!(s.eflags & (CF | ZF | SF), CF);
        // shrd [0x10000], ebx, cl with CL = 8.
        let mut st = SnippetState::default();
        st.gpr[EBX] = 0xAB;
        st.gpr[ECX] = 8;
        st.data[..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        let code = [0x0F, 0xAD, 0x1D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(&st.data[..4], &0xAB12_3456u32.to_le_bytes());
        assert_eq!(st.eflags & (CF | ZF | SF), SF);
        // shld ax, bx, 20: undefined on paper; the 48-bit dest:src:dest model.
        let s = run(
            &[0x66, 0x0F, 0xA4, 0xD8, 0x14],
            &[(EAX, 0x1234), (EBX, 0x5678)],
            0,
        );
        assert_eq!(s.gpr[EAX], 0x6781);
    }
}
