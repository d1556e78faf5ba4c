//! Flag instructions, HLT, CPUID, RDTSC, XLAT, LAHF/SAHF, PAUSE.

use iced_x86::{Instruction, Mnemonic};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::state::*;
use crate::width::W8;
use crate::{Bus, Cpu};

/// CPUID leaf 1 EDX: what this CPU implements, nothing more (TSC, CMPXCHG8B,
/// SYSENTER/SYSEXIT, CMOVcc).
pub const CPUID_1_EDX: u32 = (1 << 4) | (1 << 8) | (1 << 11) | (1 << 15);
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
fn rdtsc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    const CR4_TSD: u32 = 1 << 2;
    if cpu.s.cr4 & CR4_TSD != 0 && cpu.s.protected() && cpu.s.cpl != 0 {
        return Err(Exception::gp(0));
    }
    let t = cpu.s.icount.wrapping_add(cpu.s.tsc_offset);
    cpu.s.gpr[EAX] = t as u32;
    cpu.s.gpr[EDX] = (t >> 32) as u32;
    Ok(())
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
