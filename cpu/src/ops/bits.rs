//! Bit and compare-exchange instructions: BT/BTS/BTR/BTC, BSF/BSR, BSWAP, XADD,
//! CMPXCHG, CMPXCHG8B, CMOVcc, SETcc.
//!
//! Undefined flags are kept as they were: BT* change only CF, BSF/BSR only ZF. BSF/BSR
//! with a zero source leave the destination unchanged (what Intel and AMD parts do,
//! documented by AMD). BSWAP of a 16-bit register clears it: the SDM calls the result
//! undefined and real CPUs produce 0 in the low word.

use iced_x86::{Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::Result;
use crate::flags::FlagOp;
use crate::mem::RamAccess;
use crate::ops::branch::cc_number;
use crate::state::{CF, EAX, EBX, ECX, EDX, ZF};
use crate::translate::{gpr, width};
use crate::width::{Width, W32, W8};
use crate::{by_width, by_width_16_32, Bus, Cpu};

/// `op.x` for the BT family: what happens to the selected bit.
const BT: u8 = 0;
const BTS: u8 = 1;
const BTR: u8 = 2;
const BTC: u8 = 3;

/// Sets CF to `cf`, keeping the other five flags.
#[inline(always)]
fn set_cf_only(cpu: &mut Cpu, cf: bool) {
    let f = cpu.s.lazy.materialize() & !CF;
    cpu.s.lazy.set_flags(f | if cf { CF } else { 0 });
}

#[inline(always)]
fn set_zf_only(cpu: &mut Cpu, zf: bool) {
    let f = cpu.s.lazy.materialize() & !ZF;
    cpu.s.lazy.set_flags(f | if zf { ZF } else { 0 });
}

/// Applies BT/BTS/BTR/BTC to bit `n` of `v`: (old bit, new value).
#[inline(always)]
fn bt_apply(kind: u8, v: u32, n: u32) -> (bool, u32) {
    let m = 1u32 << n;
    let new = match kind {
        BTS => v | m,
        BTR => v & !m,
        BTC => v ^ m,
        _ => v,
    };
    (v & m != 0, new)
}

/// `bt* r, r` (rm = tested register, r = offset register) and `bt* r, imm` (`x` bit 2
/// says the offset is `imm`). A register operand takes the offset modulo its width.
fn bt_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let off = if op.x & 4 != 0 {
        op.imm
    } else {
        W::get(&cpu.s, op.r)
    };
    let v = W::get(&cpu.s, op.rm);
    let (old, new) = bt_apply(op.x & 3, v, off & (W::BITS - 1));
    if op.x & 3 != BT {
        W::set(&mut cpu.s, op.rm, new);
    }
    set_cf_only(cpu, old);
    Ok(())
}

/// `bt* [m], r` / `bt* [m], imm`. An immediate offset is taken modulo the operand width;
/// a register offset is signed and selects the operand-sized unit at
/// `ea + (offset >> log2(width)) * bytes`, so it reaches memory beyond the operand.
fn bt_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let mut ea = op.ea(cpu);
    let n = if op.x & 4 != 0 {
        op.imm & (W::BITS - 1)
    } else {
        let off = W::sext(W::get(&cpu.s, op.r)) as i32;
        let unit = off >> W::BITS.trailing_zeros();
        ea = ea.wrapping_add((unit as u32).wrapping_mul(W::BYTES)) & op.amask;
        off as u32 & (W::BITS - 1)
    };
    let v = cpu.read::<W>(bus, op.seg(), ea)?;
    let (old, new) = bt_apply(op.x & 3, v, n);
    if op.x & 3 != BT {
        cpu.write::<W>(bus, op.seg(), ea, new)?;
    }
    set_cf_only(cpu, old);
    Ok(())
}

/// BSF (`x` = 0) / BSR (`x` = 1) of `src` into register `op.r`.
#[inline(always)]
fn bitscan<W: RamAccess>(cpu: &mut Cpu, op: &Op, src: u32) {
    let src = src & W::MASK;
    if src == 0 {
        set_zf_only(cpu, true);
        return;
    }
    let n = if op.x == 0 {
        src.trailing_zeros()
    } else {
        31 - src.leading_zeros()
    };
    W::set(&mut cpu.s, op.r, n);
    set_zf_only(cpu, false);
}

fn bitscan_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let src = W::get(&cpu.s, op.rm);
    bitscan::<W>(cpu, op, src);
    Ok(())
}

fn bitscan_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let src = cpu.read_op::<W>(bus, op)?;
    bitscan::<W>(cpu, op, src);
    Ok(())
}

fn bswap32(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let r = usize::from(op.r);
    cpu.s.gpr[r] = cpu.s.gpr[r].swap_bytes();
    Ok(())
}

/// BSWAP r16: undefined per the SDM; the low word becomes 0 as on real CPUs.
fn bswap16(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let r = usize::from(op.r);
    cpu.s.gpr[r] &= !0xFFFF;
    Ok(())
}

/// `xadd r, r`: rm = destination, r = source. The sum goes to the destination last, so
/// `xadd eax, eax` leaves the sum.
fn xadd_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let d = W::get(&cpu.s, op.rm);
    let s = W::get(&cpu.s, op.r);
    let sum = d.wrapping_add(s) & W::MASK;
    cpu.s.lazy.set(FlagOp::Add, W::BITS as u8, d, s, sum);
    W::set(&mut cpu.s, op.r, d);
    W::set(&mut cpu.s, op.rm, sum);
    Ok(())
}

fn xadd_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let d = cpu.read::<W>(bus, op.seg(), ea)?;
    let s = W::get(&cpu.s, op.r);
    let sum = d.wrapping_add(s) & W::MASK;
    cpu.write::<W>(bus, op.seg(), ea, sum)?;
    cpu.s.lazy.set(FlagOp::Add, W::BITS as u8, d, s, sum);
    W::set(&mut cpu.s, op.r, d);
    Ok(())
}

/// `cmpxchg r, r`: rm = destination, r = source. Flags as CMP accumulator, destination.
fn cmpxchg_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let acc = W::get(&cpu.s, EAX as u8);
    let d = W::get(&cpu.s, op.rm);
    cpu.s.lazy.set(
        FlagOp::Sub,
        W::BITS as u8,
        acc,
        d,
        acc.wrapping_sub(d) & W::MASK,
    );
    if acc == d {
        let s = W::get(&cpu.s, op.r);
        W::set(&mut cpu.s, op.rm, s);
    } else {
        W::set(&mut cpu.s, EAX as u8, d);
    }
    Ok(())
}

/// `cmpxchg [m], r`: the destination is written in both cases (with its own value when
/// the comparison fails), as the processor does, so a read-only operand faults either way.
fn cmpxchg_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let d = cpu.read::<W>(bus, op.seg(), ea)?;
    let acc = W::get(&cpu.s, EAX as u8);
    let eq = acc == d;
    let v = if eq { W::get(&cpu.s, op.r) } else { d };
    cpu.write::<W>(bus, op.seg(), ea, v)?;
    cpu.s.lazy.set(
        FlagOp::Sub,
        W::BITS as u8,
        acc,
        d,
        acc.wrapping_sub(d) & W::MASK,
    );
    if !eq {
        W::set(&mut cpu.s, EAX as u8, d);
    }
    Ok(())
}

/// CMPXCHG8B m64: compares EDX:EAX with the quadword; ZF says whether ECX:EBX was
/// stored (else EDX:EAX gets the quadword, which is written back unchanged). Only ZF
/// changes.
fn cmpxchg8b(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let hi_ea = ea.wrapping_add(4) & op.amask;
    let seg = op.seg();
    let lo = cpu.read::<W32>(bus, seg, ea)?;
    let hi = cpu.read::<W32>(bus, seg, hi_ea)?;
    let eq = lo == cpu.s.gpr[EAX] && hi == cpu.s.gpr[EDX];
    let (new_lo, new_hi) = if eq {
        (cpu.s.gpr[EBX], cpu.s.gpr[ECX])
    } else {
        (lo, hi)
    };
    // Probe the high half with its old value first, so that a fault on either half
    // comes before anything has changed.
    cpu.write::<W32>(bus, seg, hi_ea, hi)?;
    cpu.write::<W32>(bus, seg, ea, new_lo)?;
    cpu.write::<W32>(bus, seg, hi_ea, new_hi)?;
    if !eq {
        cpu.s.gpr[EAX] = lo;
        cpu.s.gpr[EDX] = hi;
    }
    set_zf_only(cpu, eq);
    Ok(())
}

/// `cmovcc r, r`: x = condition. A false condition leaves the destination unchanged.
fn cmov_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    if cpu.s.lazy.cond(op.x) {
        let v = W::get(&cpu.s, op.rm);
        W::set(&mut cpu.s, op.r, v);
    }
    Ok(())
}

/// `cmovcc r, [m]`: the source is read (and may fault) whatever the condition.
fn cmov_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = cpu.read_op::<W>(bus, op)?;
    if cpu.s.lazy.cond(op.x) {
        W::set(&mut cpu.s, op.r, v);
    }
    Ok(())
}

fn setcc_r(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = u32::from(cpu.s.lazy.cond(op.x));
    W8::set(&mut cpu.s, op.rm, v);
    Ok(())
}

fn setcc_m(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = u32::from(cpu.s.lazy.cond(op.x));
    cpu.write_op::<W8>(bus, op, v)
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let m = i.mnemonic();
    let w = width(i, 0);
    let mem0 = i.op_kind(0) == OpKind::Memory;
    match m {
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc => {
            op.x = match m {
                Mnemonic::Bt => BT,
                Mnemonic::Bts => BTS,
                Mnemonic::Btr => BTR,
                _ => BTC,
            };
            if i.op_kind(1) == OpKind::Register {
                op.r = gpr(i.op1_register());
            } else {
                op.x |= 4;
            }
            if mem0 {
                Some(by_width_16_32!(w, bt_m))
            } else {
                op.rm = gpr(i.op0_register());
                Some(by_width_16_32!(w, bt_r))
            }
        }
        // F3 0F BC/BD decode as TZCNT/LZCNT, but a CPU without BMI1/ABM (this one, which
        // advertises neither) ignores the F3 prefix and runs BSF/BSR. Compilers emit
        // `rep bsf` on purpose for that reason (Linux's find_first_bit does).
        Mnemonic::Bsf | Mnemonic::Bsr | Mnemonic::Tzcnt | Mnemonic::Lzcnt => {
            op.x = u8::from(matches!(m, Mnemonic::Bsr | Mnemonic::Lzcnt));
            op.r = gpr(i.op0_register());
            if i.op_kind(1) == OpKind::Register {
                op.rm = gpr(i.op1_register());
                Some(by_width_16_32!(w, bitscan_r))
            } else {
                Some(by_width_16_32!(w, bitscan_m))
            }
        }
        Mnemonic::Bswap => {
            op.r = gpr(i.op0_register());
            Some(if w == 16 { bswap16 } else { bswap32 })
        }
        Mnemonic::Xadd | Mnemonic::Cmpxchg => {
            op.r = gpr(i.op1_register());
            let xadd = m == Mnemonic::Xadd;
            Some(match (mem0, xadd) {
                (true, true) => by_width!(w, xadd_m),
                (true, false) => by_width!(w, cmpxchg_m),
                (false, xadd) => {
                    op.rm = gpr(i.op0_register());
                    if xadd {
                        by_width!(w, xadd_r)
                    } else {
                        by_width!(w, cmpxchg_r)
                    }
                }
            })
        }
        // The register form does not exist: leave it to the #UD op.
        Mnemonic::Cmpxchg8b if mem0 => Some(cmpxchg8b),
        Mnemonic::Cmova
        | Mnemonic::Cmovae
        | Mnemonic::Cmovb
        | Mnemonic::Cmovbe
        | Mnemonic::Cmove
        | Mnemonic::Cmovg
        | Mnemonic::Cmovge
        | Mnemonic::Cmovl
        | Mnemonic::Cmovle
        | Mnemonic::Cmovne
        | Mnemonic::Cmovno
        | Mnemonic::Cmovnp
        | Mnemonic::Cmovns
        | Mnemonic::Cmovo
        | Mnemonic::Cmovp
        | Mnemonic::Cmovs => {
            op.x = cc_number(i);
            op.r = gpr(i.op0_register());
            if i.op_kind(1) == OpKind::Register {
                op.rm = gpr(i.op1_register());
                Some(by_width_16_32!(w, cmov_r))
            } else {
                Some(by_width_16_32!(w, cmov_m))
            }
        }
        Mnemonic::Seta
        | Mnemonic::Setae
        | Mnemonic::Setb
        | Mnemonic::Setbe
        | Mnemonic::Sete
        | Mnemonic::Setg
        | Mnemonic::Setge
        | Mnemonic::Setl
        | Mnemonic::Setle
        | Mnemonic::Setne
        | Mnemonic::Setno
        | Mnemonic::Setnp
        | Mnemonic::Setns
        | Mnemonic::Seto
        | Mnemonic::Setp
        | Mnemonic::Sets => {
            op.x = cc_number(i);
            if mem0 {
                Some(setcc_m)
            } else {
                op.rm = gpr(i.op0_register());
                Some(setcc_r)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::exception::Exception;
    use crate::state::{CF, EAX, EBX, ECX, EDX, FIXED1, OF, PF, SF, ZF};
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    fn state(regs: &[(usize, u32)], flags: u32) -> SnippetState {
        let mut s = SnippetState::default();
        for &(r, v) in regs {
            s.gpr[r] = v;
        }
        s.eflags = FIXED1 | flags;
        s
    }

    fn run(code: &[u8], regs: &[(usize, u32)], flags: u32) -> SnippetState {
        let mut s = state(regs, flags);
        assert_eq!(run_snippet32(code, &mut s), SnippetEnd::Done);
        s
    }

    fn dword(s: &SnippetState, off: usize) -> u32 {
        u32::from_le_bytes(s.data[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn rep_bsf_and_rep_bsr_run_as_bsf_and_bsr() {
        // rep bsf ecx, ecx (TZCNT on BMI1 CPUs) with ECX = 0x50: 4.
        let s = run(&[0xF3, 0x0F, 0xBC, 0xC9], &[(ECX, 0x50)], 0);
        assert_eq!(s.gpr[ECX], 4);
        assert_eq!(s.eflags & ZF, 0);
        // A zero source: ZF set and the destination kept, as BSF does (TZCNT would give 32).
        let s = run(&[0xF3, 0x0F, 0xBC, 0xC1], &[(EAX, 0x1234), (ECX, 0)], 0);
        assert_eq!(s.gpr[EAX], 0x1234);
        assert_eq!(s.eflags & ZF, ZF);
        // rep bsr eax, ecx (LZCNT on ABM CPUs) with ECX = 0x50: 6.
        let s = run(&[0xF3, 0x0F, 0xBD, 0xC1], &[(ECX, 0x50)], 0);
        assert_eq!(s.gpr[EAX], 6);
    }

    #[test]
    fn bit_test_registers() {
        // bt eax, 5: CF = 1, the other flags kept.
        let s = run(&[0x0F, 0xBA, 0xE0, 0x05], &[(EAX, 0x20)], ZF | SF);
        assert_eq!(s.eflags & (CF | ZF | SF | OF | PF), CF | ZF | SF);
        // bts ecx, edx with EDX = 33: bit 1 (offset modulo 32).
        let s = run(&[0x0F, 0xAB, 0xD1], &[(ECX, 0), (EDX, 33)], CF);
        assert_eq!(s.gpr[ECX], 2);
        assert_eq!(s.eflags & CF, 0);
    }

    #[test]
    fn bit_test_memory() {
        // btr dword [0x10000], ecx with ECX = 35: bit 3 of the dword at 0x10004.
        let mut st = state(&[(ECX, 35)], 0);
        st.data[4] = 0xFF;
        let code = [0x0F, 0xB3, 0x0D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.data[4], 0xF7);
        assert_eq!(st.eflags & CF, CF);
        // btc dword [ebx], ecx with EBX = 0x10008, ECX = -1: bit 31 of the dword at 0x10004.
        let mut st = state(&[(EBX, 0x10008), (ECX, 0xFFFF_FFFF)], 0);
        assert_eq!(
            run_snippet32(&[0x0F, 0xBB, 0x0B], &mut st),
            SnippetEnd::Done
        );
        assert_eq!(dword(&st, 4), 0x8000_0000);
        assert_eq!(dword(&st, 8), 0);
        assert_eq!(st.eflags & CF, 0);
        // bt word [0x10000], 17: an immediate offset is taken modulo 16, so bit 1.
        let mut st = state(&[], 0);
        st.data[0] = 2;
        let code = [0x66, 0x0F, 0xBA, 0x25, 0x00, 0x00, 0x01, 0x00, 0x11];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.eflags & CF, CF);
        // bts word [0x10000], cx with CX = 20: bit 4 of the word at 0x10002.
        let mut st = state(&[(ECX, 20)], 0);
        let code = [0x66, 0x0F, 0xAB, 0x0D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(&st.data[..4], &[0, 0, 0x10, 0]);
    }

    #[test]
    fn bit_scans() {
        let s = run(&[0x0F, 0xBC, 0xC1], &[(ECX, 0xF0)], ZF);
        assert_eq!(s.gpr[EAX], 4);
        assert_eq!(s.eflags & ZF, 0);
        let s = run(&[0x0F, 0xBD, 0xC1], &[(ECX, 0xF0)], 0);
        assert_eq!(s.gpr[EAX], 7);
        // A zero source: ZF = 1, destination unchanged.
        let s = run(&[0x0F, 0xBD, 0xC1], &[(EAX, 0x1234), (ECX, 0)], CF);
        assert_eq!(s.gpr[EAX], 0x1234);
        assert_eq!(s.eflags & (ZF | CF), ZF | CF);
        // bsf ax, [0x10000].
        let mut st = state(&[(EAX, 0xFFFF_FFFF)], 0);
        st.data[1] = 0x80;
        let code = [0x66, 0x0F, 0xBC, 0x05, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.gpr[EAX], 0xFFFF_000F);
    }

    #[test]
    fn bswap() {
        let s = run(&[0x0F, 0xC8], &[(EAX, 0x1122_3344)], 0);
        assert_eq!(s.gpr[EAX], 0x4433_2211);
        let s = run(&[0x66, 0x0F, 0xC8], &[(EAX, 0x1122_3344)], 0);
        assert_eq!(s.gpr[EAX], 0x1122_0000);
    }

    #[test]
    fn xadd() {
        let mut st = state(&[(ECX, 3)], 0);
        st.data[0] = 0xFF;
        st.data[1] = 0xFF;
        st.data[2] = 0xFF;
        st.data[3] = 0xFF;
        let code = [0x0F, 0xC1, 0x0D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(dword(&st, 0), 2);
        assert_eq!(st.gpr[ECX], 0xFFFF_FFFF);
        assert_eq!(st.eflags & (CF | ZF), CF);
        // xadd eax, eax: the sum wins.
        let s = run(&[0x0F, 0xC1, 0xC0], &[(EAX, 21)], 0);
        assert_eq!(s.gpr[EAX], 42);
    }

    #[test]
    fn cmpxchg() {
        // Equal: ECX = EDX, ZF = 1.
        let s = run(&[0x0F, 0xB1, 0xD1], &[(EAX, 7), (ECX, 7), (EDX, 9)], 0);
        assert_eq!((s.gpr[EAX], s.gpr[ECX]), (7, 9));
        assert_eq!(s.eflags & ZF, ZF);
        // Not equal: EAX = ECX, ZF = 0, flags as CMP 5, 7.
        let s = run(&[0x0F, 0xB1, 0xD1], &[(EAX, 5), (ECX, 7), (EDX, 9)], 0);
        assert_eq!((s.gpr[EAX], s.gpr[ECX]), (7, 7));
        assert_eq!(s.eflags & (ZF | CF | SF), CF | SF);
        // cmpxchg byte [m], bl.
        let mut st = state(&[(EAX, 0x1111_1142), (EBX, 0x99)], 0);
        st.data[0] = 0x42;
        let code = [0x0F, 0xB0, 0x1D, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.data[0], 0x99);
        assert_eq!(st.gpr[EAX], 0x1111_1142);
        let mut st = state(&[(EAX, 0x1111_1100), (EBX, 0x99)], 0);
        st.data[0] = 0x42;
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.data[0], 0x42);
        assert_eq!(st.gpr[EAX], 0x1111_1142);
    }

    #[test]
    fn cmpxchg8b() {
        let code = [0x0F, 0xC7, 0x0D, 0x00, 0x00, 0x01, 0x00];
        let regs = [(EDX, 1), (EAX, 2), (ECX, 3), (EBX, 4)];
        let mut st = state(&regs, CF);
        st.data[..4].copy_from_slice(&2u32.to_le_bytes());
        st.data[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!((dword(&st, 0), dword(&st, 4)), (4, 3));
        assert_eq!(st.eflags & (ZF | CF), ZF | CF);
        let mut st = state(&regs, ZF);
        st.data[..4].copy_from_slice(&5u32.to_le_bytes());
        st.data[4..8].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!((st.gpr[EAX], st.gpr[EDX]), (5, 6));
        assert_eq!((dword(&st, 0), dword(&st, 4)), (5, 6));
        assert_eq!(st.eflags & ZF, 0);
        // The register form is #UD.
        let mut st = state(&[], 0);
        assert_eq!(
            run_snippet32(&[0x0F, 0xC7, 0xC8], &mut st),
            SnippetEnd::Exception(Exception::ud())
        );
    }

    #[test]
    fn cmov_and_setcc() {
        let s = run(&[0x0F, 0x44, 0xC1], &[(EAX, 1), (ECX, 2)], ZF);
        assert_eq!(s.gpr[EAX], 2);
        let s = run(&[0x0F, 0x44, 0xC1], &[(EAX, 1), (ECX, 2)], 0);
        assert_eq!(s.gpr[EAX], 1);
        // cmovnz eax, [0x10000]: taken, then not taken.
        let code = [0x0F, 0x45, 0x05, 0x00, 0x00, 0x01, 0x00];
        let mut st = state(&[(EAX, 1)], 0);
        st.data[0] = 0x77;
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.gpr[EAX], 0x77);
        let mut st = state(&[(EAX, 1)], ZF);
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.gpr[EAX], 1);
        // setc al; setnz byte [m].
        let s = run(&[0x0F, 0x92, 0xC0], &[(EAX, 0xFFFF_FFFF)], CF);
        assert_eq!(s.gpr[EAX], 0xFFFF_FF01);
        let mut st = state(&[], ZF);
        st.data[0] = 0x55;
        let code = [0x0F, 0x95, 0x05, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(run_snippet32(&code, &mut st), SnippetEnd::Done);
        assert_eq!(st.data[0], 0);
    }
}
