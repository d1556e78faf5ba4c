//! Flag instructions, HLT, CPUID, RDTSC, XLAT, LAHF/SAHF, PAUSE.

use iced_x86::{Instruction, Mnemonic};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::state::*;
use crate::width::W8;
use crate::{Bus, Cpu};

/// CPUID leaf 1 EDX: what this CPU implements, nothing more (x87 FPU, 4 MiB pages, TSC,
/// MSRs, CMPXCHG8B, SYSENTER/SYSEXIT, global pages, CMOVcc).
pub const CPUID_1_EDX: u32 =
    1 | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15);
/// Family 6, model 3, stepping 3: a Pentium II. Software ignores the SEP bit on family 6
/// below model 3 stepping 3, where SYSENTER was not usable, so a CPU that offers it must
/// say it is at least this one.
pub const CPUID_SIGNATURE: u32 = 0x0000_0633;

/// Whether the IOPL-sensitive instructions (CLI, STI) are allowed.
fn iopl_ok(cpu: &Cpu) -> bool {
    let iopl = ((cpu.s.eflags & IOPL) >> 12) as u8;
    if cpu.s.v86() {
        iopl == 3
    } else {
        !cpu.s.protected() || cpu.s.cpl <= iopl
    }
}

fn clc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let f = cpu.eflags();
    cpu.s.lazy.set_flags(f & !CF);
    Ok(())
}

fn stc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let f = cpu.eflags();
    cpu.s.lazy.set_flags(f | CF);
    Ok(())
}

fn cmc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let f = cpu.eflags();
    cpu.s.lazy.set_flags(f ^ CF);
    Ok(())
}

fn cld(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    cpu.s.eflags &= !DF;
    Ok(())
}

fn std_(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    cpu.s.eflags |= DF;
    Ok(())
}

fn cli(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    if !iopl_ok(cpu) {
        return Err(Exception::gp(0));
    }
    cpu.s.eflags &= !IF;
    Ok(())
}

fn sti(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    if !iopl_ok(cpu) {
        return Err(Exception::gp(0));
    }
    if cpu.s.eflags & IF == 0 {
        // Interrupts stay off for one more instruction, so `sti; hlt` cannot miss a wake-up.
        cpu.s.inhibit_irq = true;
        cpu.s.eflags |= IF;
    }
    Ok(())
}

fn hlt(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    if cpu.s.protected() && cpu.s.cpl != 0 {
        return Err(Exception::gp(0));
    }
    cpu.s.halted = true;
    cpu.stop_block = true;
    Ok(())
}

fn lahf(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let f = cpu.eflags() & 0xFF;
    cpu.s.gpr[EAX] = (cpu.s.gpr[EAX] & !0xFF00) | (f << 8);
    Ok(())
}

fn sahf(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let ah = (cpu.s.gpr[EAX] >> 8) & (SF | ZF | AF | PF | CF);
    let f = cpu.eflags();
    cpu.s.lazy.set_flags((f & !(SF | ZF | AF | PF | CF)) | ah);
    Ok(())
}

/// XLAT: AL = [seg:(E)BX + AL] (the memory operand holds only the base).
fn xlat(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu).wrapping_add(cpu.s.gpr[EAX] & 0xFF) & op.amask;
    let v = cpu.read::<W8>(bus, op.seg(), ea)?;
    cpu.s.gpr[EAX] = (cpu.s.gpr[EAX] & !0xFF) | v;
    Ok(())
}

fn cpuid(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let (a, b, c, d) = match cpu.s.gpr[EAX] {
        0 => (
            1,
            u32::from_le_bytes(*b"Genu"),
            u32::from_le_bytes(*b"ntel"),
            u32::from_le_bytes(*b"ineI"),
        ),
        // Leaves above the maximum answer as the highest basic leaf does on Intel CPUs.
        _ => (CPUID_SIGNATURE, 0, 0, CPUID_1_EDX),
    };
    cpu.s.gpr[EAX] = a;
    cpu.s.gpr[EBX] = b;
    cpu.s.gpr[ECX] = c;
    cpu.s.gpr[EDX] = d;
    Ok(())
}

/// RDTSC counts executed instructions (plus an offset the board may set): the same in
/// every run of the same guest, which the deterministic mode needs.
fn rdtsc(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    const CR4_TSD: u32 = 1 << 2;
    if cpu.s.cr4 & CR4_TSD != 0 && cpu.s.protected() && cpu.s.cpl != 0 {
        return Err(Exception::gp(0));
    }
    let t = cpu.tsc(bus);
    cpu.s.gpr[EAX] = t as u32;
    cpu.s.gpr[EDX] = (t >> 32) as u32;
    Ok(())
}

impl Cpu {
    /// The time stamp counter: guest time at 1 GHz (so it keeps pace with the PIT and
    /// RTC whatever the interpreter's speed, and stands still with guest time), plus the
    /// offset a WRMSR to it set. RDTSC begins its block, so `icount` is exact here.
    pub(crate) fn tsc(&mut self, bus: &mut dyn Bus) -> u64 {
        bus.time_ns(self.s.icount).wrapping_add(self.s.tsc_offset)
    }
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Clc => clc,
        Mnemonic::Stc => stc,
        Mnemonic::Cmc => cmc,
        Mnemonic::Cld => cld,
        Mnemonic::Std => std_,
        Mnemonic::Cli => cli,
        Mnemonic::Sti => sti,
        Mnemonic::Hlt => hlt,
        Mnemonic::Lahf => lahf,
        Mnemonic::Sahf => sahf,
        Mnemonic::Xlatb => {
            op.index = ZERO as u8;
            xlat
        }
        Mnemonic::Cpuid => cpuid,
        Mnemonic::Rdtsc => rdtsc,
        Mnemonic::Pause => super::mov::nop,
        _ => return None,
    })
}

#[cfg(test)]
mod v86_tests {
    //! IOPL-sensitive instructions in virtual-8086 mode (no VME): at IOPL < 3 they raise
    //! #GP(0), which reaches a ring-0 handler through the IDT with the V86 frame.

    use super::*;
    use crate::testbed::*;

    const HANDLER: u32 = 0x1_1000;
    /// V86 code at 1000:0010 (linear 0x10010), stack 2000:0100.
    const V86_CODE: u32 = 0x1_0010;

    fn v86_bed(iopl: u32, code: &[u8]) -> Bed {
        let mut b = Bed::new();
        b.gate(13, CODE0, HANDLER, INT_GATE);
        b.gate(0x21, CODE0, HANDLER, INT_GATE_DPL3);
        b.gate(3, CODE0, HANDLER, INT_GATE_DPL3);
        b.write(HANDLER, &[0xF4]);
        b.write(V86_CODE, code);
        b.enter_v86(iopl);
        b
    }

    #[test]
    fn sensitive_instructions_fault_below_iopl_3() {
        // cli, sti, pushf, popf, int 0x21, iret
        let cases: [&[u8]; 6] = [&[0xFA], &[0xFB], &[0x9C], &[0x9D], &[0xCD, 0x21], &[0xCF]];
        for code in cases {
            for iopl in 0..3 {
                let mut b = v86_bed(iopl, code);
                b.run_to(HANDLER);
                assert_eq!(
                    b.cpu.s.gpr[ESP],
                    STACK0 - 40,
                    "{code:02x?}: V86 frame + error"
                );
                assert_eq!(b.r32(STACK0 - 40), 0, "{code:02x?}: #GP(0)");
                assert_eq!(
                    b.r32(STACK0 - 36),
                    0x10,
                    "{code:02x?}: IP of the instruction"
                );
                assert_eq!(b.r32(STACK0 - 28) & VM, VM);
            }
        }
    }

    #[test]
    fn at_iopl_3_they_run() {
        // cli; pushf; pop ax; sti; pushf; pop bx; int 0x21
        let code = [0xFA, 0x9C, 0x58, 0xFB, 0x9C, 0x5B, 0xCD, 0x21];
        let mut b = v86_bed(3, &code);
        b.run_to(HANDLER);
        assert_eq!(
            b.cpu.s.gpr[ESP],
            STACK0 - 36,
            "INT n: the V86 frame, no error code"
        );
        assert_eq!(b.r32(STACK0 - 36), 0x18, "IP after INT");
        assert_eq!(b.cpu.s.gpr[EAX] & IF, 0, "CLI cleared IF");
        assert_eq!(b.cpu.s.gpr[EBX] & IF, IF, "STI set IF");
        assert_eq!(b.cpu.s.gpr[EBX] & VM, 0, "PUSHF hides VM");
    }

    #[test]
    fn int3_is_not_iopl_sensitive() {
        let mut b = v86_bed(0, &[0xCC]);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0 - 36);
        assert_eq!(b.r32(STACK0 - 36), 0x11, "a trap: IP after INT3");
    }

    #[test]
    fn hlt_in_v86_is_gp() {
        let mut b = v86_bed(3, &[0xF4]);
        b.run_to(HANDLER);
        assert_eq!(b.r32(STACK0 - 40), 0);
        assert_eq!(b.r32(STACK0 - 36), 0x10);
    }
}

#[cfg(test)]
mod cpuid_tests {
    use super::*;
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    #[test]
    fn sep_comes_with_a_pentium_ii_signature() {
        // mov eax, 1; cpuid
        let mut s = SnippetState::default();
        let end = run_snippet32(&[0xB8, 0x01, 0x00, 0x00, 0x00, 0x0F, 0xA2], &mut s);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EDX] & (1 << 11), 1 << 11, "SEP");
        let (family, model, stepping) = (
            (s.gpr[EAX] >> 8) & 0xF,
            (s.gpr[EAX] >> 4) & 0xF,
            s.gpr[EAX] & 0xF,
        );
        // SEP is real only from family 6 model 3 stepping 3 on.
        assert!(family == 6 && (model > 3 || (model == 3 && stepping >= 3)));
        assert_eq!(
            CpuState::reset().gpr[EDX],
            s.gpr[EAX],
            "the reset signature agrees"
        );
    }
}
