//! Decimal adjustments: DAA, DAS, AAA, AAS, AAM, AAD, following the SDM pseudo-code.
//!
//! Flags the SDM leaves undefined are set deterministically:
//! * DAA/DAS: OF is the signed overflow of the correction applied to AL (the correction
//!   is non-negative, so OF = the sign went 0 -> 1 for DAA, 1 -> 0 for DAS), which is what
//!   Intel parts report.
//! * AAA/AAS: SF = OF = 0, ZF/PF from the final AL (whose high nibble is clear).
//! * AAM/AAD: CF = OF = AF = 0 (SF/ZF/PF from AL are defined).

use iced_x86::{Instruction, Mnemonic};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::state::{AF, CF, EAX, OF};
use crate::{Bus, Cpu};

#[inline(always)]
fn al(cpu: &Cpu) -> u32 {
    cpu.s.gpr[EAX] & 0xFF
}

#[inline(always)]
fn set_al(cpu: &mut Cpu, v: u32) {
    cpu.s.gpr[EAX] = (cpu.s.gpr[EAX] & !0xFF) | (v & 0xFF);
}

#[inline(always)]
fn set_ax(cpu: &mut Cpu, v: u32) {
    cpu.s.gpr[EAX] = (cpu.s.gpr[EAX] & !0xFFFF) | (v & 0xFFFF);
}

fn daa(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let old_al = al(cpu);
    let old_cf = cpu.s.lazy.cf();
    let mut a = old_al;
    let mut af = false;
    if a & 0x0F > 9 || cpu.s.lazy.af() {
        // The SDM's CF from this step (a carry out of AL + 6) is always overwritten
        // below: such a carry needs AL >= 0xFA, which takes the high correction.
        a = (a + 6) & 0xFF;
        af = true;
    }
    let cf = old_al > 0x99 || old_cf;
    if cf {
        a = (a + 0x60) & 0xFF;
    }
    let of = !old_al & a & 0x80 != 0;
    set_al(cpu, a);
    cpu.s.lazy.set_explicit(8, flags(cf, af, of), a);
    Ok(())
}

fn das(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let old_al = al(cpu);
    let old_cf = cpu.s.lazy.cf();
    let mut a = old_al;
    let mut cf = false;
    let mut af = false;
    if a & 0x0F > 9 || cpu.s.lazy.af() {
        cf = old_cf || a < 6;
        a = a.wrapping_sub(6) & 0xFF;
        af = true;
    }
    // No "else CF = 0" here, unlike DAA: a borrow from the low correction stays.
    if old_al > 0x99 || old_cf {
        a = a.wrapping_sub(0x60) & 0xFF;
        cf = true;
    }
    let of = old_al & !a & 0x80 != 0;
    set_al(cpu, a);
    cpu.s.lazy.set_explicit(8, flags(cf, af, of), a);
    Ok(())
}

/// AAA (`x` = 0) and AAS (`x` = 1).
fn aaa_aas(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let ax = cpu.s.gpr[EAX] & 0xFFFF;
    let adjust = ax & 0x0F > 9 || cpu.s.lazy.af();
    let ax = if !adjust {
        ax
    } else if op.x == 0 {
        ax.wrapping_add(0x106)
    } else {
        // AX - 6, then AH - 1 (the SDM's order: a borrow out of AL also reaches AH).
        ax.wrapping_sub(6).wrapping_sub(0x100)
    };
    let ax = ax & 0xFF0F;
    set_ax(cpu, ax);
    cpu.s
        .lazy
        .set_explicit(8, flags(adjust, adjust, false), ax & 0xFF);
    Ok(())
}

/// AAM imm8: AH = AL / imm, AL = AL % imm; #DE for imm = 0.
fn aam(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let base = op.imm & 0xFF;
    if base == 0 {
        return Err(Exception::de());
    }
    let a = al(cpu);
    let (q, r) = (a / base, a % base);
    set_ax(cpu, (q << 8) | r);
    cpu.s.lazy.set_explicit(8, 0, r);
    Ok(())
}

/// AAD imm8: AL = AL + AH * imm (mod 256), AH = 0.
fn aad(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let base = op.imm & 0xFF;
    let ax = cpu.s.gpr[EAX];
    let a = ((ax & 0xFF) + ((ax >> 8) & 0xFF) * base) & 0xFF;
    set_ax(cpu, a);
    cpu.s.lazy.set_explicit(8, 0, a);
    Ok(())
}

#[inline(always)]
fn flags(cf: bool, af: bool, of: bool) -> u32 {
    (if cf { CF } else { 0 }) | (if af { AF } else { 0 }) | (if of { OF } else { 0 })
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Daa => daa,
        Mnemonic::Das => das,
        Mnemonic::Aaa => {
            op.x = 0;
            aaa_aas
        }
        Mnemonic::Aas => {
            op.x = 1;
            aaa_aas
        }
        Mnemonic::Aam => aam,
        Mnemonic::Aad => aad,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::exception::Exception;
    use crate::state::{AF, CF, EAX, FIXED1, OF, PF, SF, ZF};
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    fn run(code: &[u8], eax: u32, flags: u32) -> SnippetState {
        let mut s = SnippetState::default();
        s.gpr[EAX] = eax;
        s.eflags = FIXED1 | flags;
        assert_eq!(run_snippet32(code, &mut s), SnippetEnd::Done);
        s
    }

    const STATUS: u32 = CF | PF | AF | ZF | SF | OF;

    #[test]
    fn daa() {
        // 0x79 + 0x35 = 0xAE; DAA gives 0x14 with a decimal carry.
        let s = run(&[0x27], 0x1234_00AE, 0);
        assert_eq!(s.gpr[EAX], 0x1234_0014);
        assert_eq!(s.eflags & (CF | AF | ZF | SF), CF | AF);
        // 0x9A -> 0x00, CF = AF = ZF = 1.
        let s = run(&[0x27], 0x9A, 0);
        assert_eq!(s.gpr[EAX], 0);
        assert_eq!(s.eflags & (CF | AF | ZF), CF | AF | ZF);
        // 0x38 + 0x38 = 0x70 with AF = 1: 0x76, no carry.
        let s = run(&[0x27], 0x70, AF);
        assert_eq!(s.gpr[EAX], 0x76);
        assert_eq!(s.eflags & (CF | AF), AF);
        // Nothing to adjust: 0x45 stays, CF and AF cleared.
        let s = run(&[0x27], 0x45, 0);
        assert_eq!(s.gpr[EAX], 0x45);
        assert_eq!(s.eflags & STATUS, 0);
    }

    #[test]
    fn das() {
        // 0x35 - 0x47 = 0xEE with CF = AF = 1: DAS gives 0x88, CF = 1.
        let s = run(&[0x2F], 0xEE, CF | AF);
        assert_eq!(s.gpr[EAX], 0x88);
        assert_eq!(s.eflags & (CF | AF | SF | ZF), CF | AF | SF);
        // 0x47 - 0x35 = 0x12: nothing to adjust.
        let s = run(&[0x2F], 0x12, 0);
        assert_eq!(s.gpr[EAX], 0x12);
        assert_eq!(s.eflags & (CF | AF), 0);
        // AL = 3 with AF = 1: the low correction borrows, CF = 1 with no high correction.
        let s = run(&[0x2F], 0x03, AF);
        assert_eq!(s.gpr[EAX], 0xFD);
        assert_eq!(s.eflags & (CF | AF), CF | AF);
    }

    #[test]
    fn aaa_aas() {
        // 5 + 6 = 0x0B: AX = 0x0101.
        let s = run(&[0x37], 0x000B, 0);
        assert_eq!(s.gpr[EAX], 0x0101);
        assert_eq!(s.eflags & (CF | AF), CF | AF);
        // AL = 0xFA: AX + 0x106 carries into AH twice over (AH + 2).
        let s = run(&[0x37], 0x00FA, 0);
        assert_eq!(s.gpr[EAX], 0x0200);
        // No adjustment: the high nibble of AL is still cleared.
        let s = run(&[0x37], 0x0035, CF);
        assert_eq!(s.gpr[EAX], 0x0005);
        assert_eq!(s.eflags & (CF | AF), 0);
        // 2 - 5 = 0xFD with AF = 1 and AH = 1: AX = 0x0007.
        let s = run(&[0x3F], 0x01FD, AF);
        assert_eq!(s.gpr[EAX], 0x0007);
        assert_eq!(s.eflags & (CF | AF), CF | AF);
    }

    #[test]
    fn aam_aad() {
        // aam: 79 -> AH = 7, AL = 9.
        let s = run(&[0xD4, 0x0A], 0xFFFF_004F, 0);
        assert_eq!(s.gpr[EAX], 0xFFFF_0709);
        assert_eq!(s.eflags & (ZF | SF), 0);
        // aam 0: #DE with AX unchanged.
        let mut st = SnippetState::default();
        st.gpr[EAX] = 0x4F;
        assert_eq!(
            run_snippet32(&[0xD4, 0x00], &mut st),
            SnippetEnd::Exception(Exception::de())
        );
        assert_eq!(st.gpr[EAX], 0x4F);
        // aad: 7 * 10 + 9 = 79.
        let s = run(&[0xD5, 0x0A], 0xFFFF_0709, 0);
        assert_eq!(s.gpr[EAX], 0xFFFF_004F);
        // aad 16: 2 * 16 + 3.
        let s = run(&[0xD5, 0x10], 0x0203, 0);
        assert_eq!(s.gpr[EAX], 0x23);
        // aad giving 0 sets ZF.
        let s = run(&[0xD5, 0x0A], 0x0000, 0);
        assert_eq!(s.eflags & (ZF | PF), ZF | PF);
    }
}
