//! System instructions: segment register loads and stores, far transfers, software
//! interrupts and IRET, descriptor-table and control-register access, the protection
//! probes (LAR, LSL, VERR, VERW, ARPL), MSRs and the privileged odds and ends.
//!
//! ```text
//!  far JMP/CALL ─► code segment: same privilege (far_jump_to)
//!                  call gate: JMP same privilege; CALL to an inner ring switches stacks
//!                             through the TSS and copies the gate's parameter count
//!                  TSS or task gate: task switch (CALL nests)
//!  RETF/IRET to RPL > CPL: also pop SS:ESP, null data segments the outer ring may not use
//!  IRET ─► real mode / V86 (IOPL 3) / NT: back-link task / PM same ring / outer ring / V86
//!  SYSENTER/SYSEXIT ─► flat ring 0 / ring 3 segments from IA32_SYSENTER_CS
//! ```
//!
//! Every handler reads and checks all it needs before it changes anything, so a fault
//! leaves the machine as it was (the runner puts EIP back). Op fields used here:
//! `x` says where a 16-bit r/m operand lives (`RM_MEM`, `RM_REG16`, `RM_REG32`) and
//! `rm` names the register; `r` is the other register (a segment register number for the
//! segment-register forms, a control or debug register number for MOV CRn/DRn).

use iced_x86::{Code, Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::interrupt::{stack_room, Source};
use crate::mem::RamAccess;
use crate::seg::Descriptor;
use crate::state::*;
use crate::task::TaskSwitch;
use crate::translate::{gpr, width};
use crate::width::{Width, W16, W32};
use crate::{by_width_16_32, Bus, Cpu};

/// The r/m operand is memory.
const RM_MEM: u8 = 0;
/// The r/m operand is a 16-bit register.
const RM_REG16: u8 = 1;
/// The r/m operand is a 32-bit register (stores of selectors zero-extend into it).
const RM_REG32: u8 = 2;

// CR4 bits.
pub const CR4_VME: u32 = 1 << 0;
pub const CR4_PVI: u32 = 1 << 1;
pub const CR4_TSD: u32 = 1 << 2;
pub const CR4_DE: u32 = 1 << 3;
pub const CR4_PSE: u32 = 1 << 4;
pub const CR4_PAE: u32 = 1 << 5;
pub const CR4_MCE: u32 = 1 << 6;
pub const CR4_PGE: u32 = 1 << 7;
pub const CR4_PCE: u32 = 1 << 8;
/// CR4 bits a guest may set. VME/PVI and PAE are left out: nothing here implements them,
/// and setting a bit of a missing feature is #GP(0) on real CPUs, which is the honest answer.
/// PSE (4 MiB pages) and PGE (global pages) are implemented by the page walk.
const CR4_WRITABLE: u32 = CR4_TSD | CR4_DE | CR4_PSE | CR4_MCE | CR4_PGE | CR4_PCE;
/// CR0 bits a guest may write: all that exist on a P6.
const CR0_WRITABLE: u32 = CR0_DEFINED;

/// IA32_TIME_STAMP_COUNTER.
pub const MSR_TSC: u32 = 0x10;
/// IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP.
pub const MSR_SYSENTER_CS: u32 = 0x174;
pub const MSR_SYSENTER_ESP: u32 = 0x175;
pub const MSR_SYSENTER_EIP: u32 = 0x176;
/// IA32_BIOS_SIGN_ID: the microcode revision. Family-6 kernels read it unconditionally
/// (after writing 0 to it), so it reads 0 and ignores writes rather than faulting.
pub const MSR_BIOS_SIGN_ID: u32 = 0x8B;

// ---------------------------------------------------------------------------------------
// Small helpers

fn ud(_: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    Err(Exception::ud())
}

/// CPL 0 only (real mode counts as CPL 0; V86 is CPL 3).
fn privileged(cpu: &Cpu) -> Result<()> {
    if cpu.s.v86() || (cpu.s.protected() && cpu.s.cpl != 0) {
        Err(Exception::gp(0))
    } else {
        Ok(())
    }
}

/// Instructions that do not exist outside protected mode (#UD in real and V86 mode).
fn protected_only(cpu: &Cpu) -> Result<()> {
    if !cpu.s.protected() || cpu.s.v86() {
        Err(Exception::ud())
    } else {
        Ok(())
    }
}

fn iopl(cpu: &Cpu) -> u8 {
    ((cpu.s.eflags & IOPL) >> 12) as u8
}

/// Sets or clears ZF, keeping the other status flags.
fn set_zf(cpu: &mut Cpu, on: bool) {
    let f = cpu.eflags();
    cpu.s.lazy.set_flags(if on { f | ZF } else { f & !ZF });
}

/// Reads the 16-bit r/m operand (a selector or machine status word).
fn read_rm16(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<u16> {
    if op.x == RM_MEM {
        Ok(cpu.read_op::<W16>(bus, op)? as u16)
    } else {
        Ok(W16::get(&cpu.s, op.rm) as u16)
    }
}

/// Stores a 16-bit value to the r/m operand: memory gets 16 bits, a 32-bit register gets
/// the value zero-extended (P6 behaviour for MOV r32,Sreg / SLDT / STR).
fn write_rm16(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op, v: u32) -> Result<()> {
    match op.x {
        RM_MEM => cpu.write_op::<W16>(bus, op, v & 0xFFFF),
        RM_REG16 => {
            W16::set(&mut cpu.s, op.rm, v);
            Ok(())
        }
        _ => {
            W32::set(&mut cpu.s, op.rm, v);
            Ok(())
        }
    }
}

/// Fills `rm` and `x` for the r/m operand `n`.
fn rm_form(i: &Instruction, op: &mut Op, n: u32) {
    if i.op_kind(n) == OpKind::Register {
        op.rm = gpr(i.op_register(n));
        op.x = if i.op_register(n).size() == 4 {
            RM_REG32
        } else {
            RM_REG16
        };
    } else {
        op.x = RM_MEM;
    }
}

/// ESP after releasing `n` bytes, wrapping as the current stack size says.
fn esp_plus(cpu: &Cpu, n: u32) -> u32 {
    let esp = cpu.s.gpr[ESP];
    let m = cpu.stack_mask();
    (esp & !m) | (esp.wrapping_add(n) & m)
}

// ---------------------------------------------------------------------------------------
// Segment registers: MOV, PUSH, POP, LDS/LES/LFS/LGS/LSS

/// MOV Sreg, r/m16 (`r` = segment register). MOV SS opens a one-instruction interrupt
/// shadow so that `mov ss, ax; mov esp, ...` cannot be split by an interrupt.
fn mov_sreg_rm(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let sel = read_rm16(cpu, bus, op)?;
    let seg = usize::from(op.r);
    cpu.load_segment(bus, seg, sel)?;
    if seg == SS {
        cpu.s.inhibit_irq = true;
    }
    Ok(())
}

/// MOV r/m, Sreg (`r` = segment register).
fn mov_rm_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let sel = u32::from(cpu.s.seg[usize::from(op.r)].selector);
    write_rm16(cpu, bus, op, sel)
}

/// PUSH Sreg (`r` = segment register). With a 32-bit operand size the slot is 4 bytes but
/// only its low 16 bits are written, leaving the upper half as it was: what P6 and later
/// Intel CPUs do (the SDM allows this or zero extension).
fn push_sreg<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let sel = u32::from(cpu.s.seg[usize::from(op.r)].selector);
    if W::BITS == 16 {
        return cpu.push::<W16>(bus, sel);
    }
    let esp = cpu.s.gpr[ESP];
    let new = esp.wrapping_sub(4);
    let at = new & cpu.stack_mask();
    // The whole slot must be inside SS, even though only half of it is written.
    cpu.seg_check(SS, at, 4, true)?;
    cpu.write::<W16>(bus, SS, at, sel)?;
    cpu.set_esp(new);
    Ok(())
}

/// POP Sreg (`r` = segment register). The value is read from the old stack and ESP moves
/// by the old stack's width, but only once the load succeeded.
fn pop_sreg<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let sel = cpu.stack_peek::<W>(bus, 0)? as u16;
    let new_esp = esp_plus(cpu, W::BYTES);
    let seg = usize::from(op.r);
    cpu.load_segment(bus, seg, sel)?;
    cpu.s.gpr[ESP] = new_esp;
    if seg == SS {
        cpu.s.inhibit_irq = true;
    }
    Ok(())
}

/// LDS/LES/LFS/LGS/LSS r, m16:W (`x` = segment register, `r` = destination).
fn load_far_ptr<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let off = cpu.read::<W>(bus, op.seg(), ea)?;
    let sel = cpu.read::<W16>(bus, op.seg(), ea.wrapping_add(W::BYTES) & op.amask)?;
    cpu.load_segment(bus, usize::from(op.x), sel as u16)?;
    W::set(&mut cpu.s, op.r, off);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Far JMP / CALL / RETF

/// Loads CS:EIP for a far transfer in real or V86 mode (and the same-privilege case of
/// protected mode, through `far_jump_checked`). Real and V86 mode keep the cached CS limit,
/// which the target must respect.
fn far_target(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16, eip: u32) -> Result<()> {
    if (!cpu.s.protected() || cpu.s.v86()) && eip > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    cpu.far_jump_checked(bus, sel, eip)
}

/// Far JMP: a code segment, a call gate (no privilege change), or another task through a
/// TSS or task gate.
fn jmp_far(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16, eip: u32) -> Result<()> {
    if !cpu.s.protected() || cpu.s.v86() {
        return far_target(cpu, bus, sel, eip);
    }
    if sel & 0xFFFC == 0 {
        return Err(Exception::gp(0));
    }
    let d = cpu.read_descriptor(bus, sel)?;
    if d.is_segment() {
        return cpu.far_jump_to(bus, sel, d, eip);
    }
    far_system(cpu, bus, sel, d, TaskSwitch::Jmp)
}

/// Far CALL: the target is checked and loaded first (its faults come before stack faults,
/// as the SDM orders them); if pushing the return address then faults, CS and ESP go back.
/// Gates and tasks are `far_system`'s.
fn call_far<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16, eip: u32) -> Result<()> {
    let d = if cpu.s.protected() && !cpu.s.v86() {
        if sel & 0xFFFC == 0 {
            return Err(Exception::gp(0));
        }
        let d = cpu.read_descriptor(bus, sel)?;
        if !d.is_segment() {
            return far_system(cpu, bus, sel, d, TaskSwitch::Call);
        }
        Some(d)
    } else {
        None
    };
    let old_cs = cpu.s.seg[CS];
    let ret = cpu.s.eip;
    match d {
        Some(d) => cpu.far_jump_to(bus, sel, d, eip)?,
        None => far_target(cpu, bus, sel, eip)?,
    }
    push_return::<W>(cpu, bus, old_cs, ret)
}

/// Pushes the return address of a far CALL whose target is already loaded; on a fault CS
/// (and with it CPL) and ESP go back.
fn push_return<W: RamAccess>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    old_cs: Segment,
    ret: u32,
) -> Result<()> {
    let esp = cpu.s.gpr[ESP];
    let r = cpu
        .push::<W>(bus, u32::from(old_cs.selector))
        .and_then(|_| cpu.push::<W>(bus, ret));
    if let Err(e) = r {
        cpu.s.gpr[ESP] = esp;
        cpu.set_segment(CS, old_cs);
        return Err(e);
    }
    Ok(())
}

/// A far JMP or CALL (`how`) to a system descriptor: an available TSS, a task gate or a
/// call gate. Their DPL must be at least CPL and the selector's RPL.
fn far_system(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    sel: u16,
    d: Descriptor,
    how: TaskSwitch,
) -> Result<()> {
    let err = u32::from(sel & 0xFFFC);
    let ty = d.system_type();
    if !matches!(ty, 1 | 4 | 5 | 9 | 0xC) || d.dpl() < cpu.s.cpl.max((sel & 3) as u8) {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    match ty {
        // An available TSS (a busy one is #GP above: a task cannot be re-entered).
        1 | 9 => cpu.switch_task(bus, sel, d, how, 0, None),
        5 => {
            let tss = (d.lo >> 16) as u16;
            let terr = u32::from(tss & 0xFFFC);
            if tss & 4 != 0 {
                return Err(Exception::gp(terr));
            }
            let t = cpu.read_descriptor(bus, tss)?;
            if t.is_segment() || !matches!(t.system_type(), 1 | 9) {
                return Err(Exception::gp(terr));
            }
            if !t.present() {
                return Err(Exception::np(terr));
            }
            cpu.switch_task(bus, tss, t, how, 0, None)
        }
        _ => through_call_gate(cpu, bus, d, how == TaskSwitch::Call),
    }
}

/// A far JMP or CALL through a call gate (checked and present). JMP stays at the current
/// privilege; CALL to a more privileged non-conforming segment switches stacks.
fn through_call_gate(cpu: &mut Cpu, bus: &mut dyn Bus, gate: Descriptor, call: bool) -> Result<()> {
    let gate32 = gate.system_type() == 0xC;
    let sel = (gate.lo >> 16) as u16;
    let offset = if gate32 {
        (gate.lo & 0xFFFF) | (gate.hi & 0xFFFF_0000)
    } else {
        gate.lo & 0xFFFF
    };
    if sel & 0xFFFC == 0 {
        return Err(Exception::gp(0));
    }
    let err = u32::from(sel & 0xFFFC);
    let d = cpu.read_descriptor(bus, sel)?;
    let cpl = cpu.s.cpl;
    if !d.is_code() || d.dpl() > cpl {
        return Err(Exception::gp(err));
    }
    if call && !d.conforming() && d.dpl() < cpl {
        if !d.present() {
            return Err(Exception::np(err));
        }
        return call_gate_inner(cpu, bus, gate, sel, d, offset);
    }
    // The gate's RPL is not looked at: the target runs at CPL.
    let target = (sel & !3) | u16::from(cpl);
    let old_cs = cpu.s.seg[CS];
    let ret = cpu.s.eip;
    cpu.far_jump_to(bus, target, d, offset)?;
    if !call {
        return Ok(());
    }
    if gate32 {
        push_return::<W32>(cpu, bus, old_cs, ret)
    } else {
        push_return::<W16>(cpu, bus, old_cs, ret)
    }
}

/// CALL through a gate to an inner ring: SS:ESP for the new CPL from the TSS, then on the
/// new stack the caller's SS:ESP, the gate's count of parameters copied from the caller's
/// stack (words for a 16-bit gate, dwords for a 32-bit one, in the same order) and the
/// return CS:EIP.
fn call_gate_inner(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    gate: Descriptor,
    sel: u16,
    d: Descriptor,
    offset: u32,
) -> Result<()> {
    let gate32 = gate.system_type() == 0xC;
    let slot = if gate32 { 4 } else { 2 };
    let count = gate.hi & 0x1F;
    let cpl = d.dpl();
    let (ss_sel, esp) = cpu.tss_stack(bus, cpl, 0)?;
    let ss = cpu.check_inner_ss(bus, ss_sel, cpl, 0)?;
    let ss_seg = ss.to_segment(ss_sel);
    if !stack_room(&ss_seg, esp, (4 + count) * slot) {
        return Err(Exception::ss(u32::from(ss_sel & 0xFFFC)));
    }
    if offset > d.limit() {
        return Err(Exception::gp(0));
    }
    let mut params = [0u32; 31];
    for (i, p) in params[..count as usize].iter_mut().enumerate() {
        let at = i as u32 * slot;
        *p = if gate32 {
            cpu.stack_peek::<W32>(bus, at)?
        } else {
            cpu.stack_peek::<W16>(bus, at)?
        };
    }
    cpu.mark_accessed(bus, sel, &d)?;
    cpu.mark_accessed(bus, ss_sel, &ss)?;
    let (old_cs, old_ss, old_esp, ret) = (cpu.s.seg[CS], cpu.s.seg[SS], cpu.s.gpr[ESP], cpu.s.eip);
    cpu.set_segment(CS, d.to_segment((sel & !3) | u16::from(cpl)));
    cpu.set_segment(SS, ss_seg);
    cpu.s.gpr[ESP] = esp;
    let mut frame = [0u32; 35];
    frame[0] = u32::from(old_ss.selector);
    frame[1] = old_esp;
    let n = count as usize;
    for (k, &p) in params[..n].iter().rev().enumerate() {
        frame[2 + k] = p;
    }
    frame[2 + n] = u32::from(old_cs.selector);
    frame[3 + n] = ret;
    for &v in &frame[..4 + n] {
        let r = if gate32 {
            cpu.push::<W32>(bus, v)
        } else {
            cpu.push::<W16>(bus, v)
        };
        if let Err(e) = r {
            cpu.set_segment(CS, old_cs);
            cpu.set_segment(SS, old_ss);
            cpu.s.gpr[ESP] = old_esp;
            return Err(e);
        }
    }
    cpu.s.eip = offset;
    Ok(())
}

/// JMP ptr16:W (`imm` = offset, `imm2` = selector).
fn jmp_far_ptr(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    jmp_far(cpu, bus, op.imm2 as u16, op.imm)
}

/// JMP m16:W.
fn jmp_far_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let eip = cpu.read::<W>(bus, op.seg(), ea)?;
    let sel = cpu.read::<W16>(bus, op.seg(), ea.wrapping_add(W::BYTES) & op.amask)?;
    jmp_far(cpu, bus, sel as u16, eip)
}

/// CALL ptr16:W (`imm` = offset, `imm2` = selector).
fn call_far_ptr<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    call_far::<W>(cpu, bus, op.imm2 as u16, op.imm)
}

/// CALL m16:W.
fn call_far_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let eip = cpu.read::<W>(bus, op.seg(), ea)?;
    let sel = cpu.read::<W16>(bus, op.seg(), ea.wrapping_add(W::BYTES) & op.amask)?;
    call_far::<W>(cpu, bus, sel as u16, eip)
}

/// Checks the code segment a RETF or IRET returns to (RPL ≥ CPL, non-conforming DPL = RPL,
/// conforming DPL ≤ RPL, present).
fn check_return_cs(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16) -> Result<Descriptor> {
    if sel & 0xFFFC == 0 {
        return Err(Exception::gp(0));
    }
    let err = u32::from(sel & 0xFFFC);
    let rpl = (sel & 3) as u8;
    let d = cpu.read_descriptor(bus, sel)?;
    if !d.is_code() || rpl < cpu.s.cpl {
        return Err(Exception::gp(err));
    }
    if (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    Ok(d)
}

/// Checks the stack segment of a return to ring `rpl`.
fn check_return_ss(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16, rpl: u8) -> Result<Descriptor> {
    if sel & 0xFFFC == 0 {
        return Err(Exception::gp(0));
    }
    let err = u32::from(sel & 0xFFFC);
    let d = cpu.read_descriptor(bus, sel)?;
    if (sel & 3) as u8 != rpl || !d.is_segment() || d.is_code() || !d.rw() || d.dpl() != rpl {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::ss(err));
    }
    Ok(d)
}

/// A checked return to an outer ring: what is left to do cannot fault except the
/// accessed-bit updates, which come first.
struct OuterReturn {
    cs_sel: u16,
    cs: Descriptor,
    eip: u32,
    ss_sel: u16,
    ss: Descriptor,
    esp: u32,
}

/// Checks CS, SS and EIP of a return to the outer ring `cs_sel & 3`.
fn check_outer_return(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    cs_sel: u16,
    cs: Descriptor,
    eip: u32,
    ss_sel: u16,
    esp: u32,
) -> Result<OuterReturn> {
    let ss = check_return_ss(cpu, bus, ss_sel, (cs_sel & 3) as u8)?;
    if eip > cs.limit() {
        return Err(Exception::gp(0));
    }
    Ok(OuterReturn {
        cs_sel,
        cs,
        eip,
        ss_sel,
        ss,
        esp,
    })
}

/// Completes a return to an outer ring: CS (and so CPL), SS:ESP, then the data segment
/// registers the new ring may not use become null, so the outer code cannot keep access
/// to inner-ring data through a stale descriptor cache.
fn enter_outer(cpu: &mut Cpu, bus: &mut dyn Bus, r: &OuterReturn) -> Result<()> {
    cpu.mark_accessed(bus, r.cs_sel, &r.cs)?;
    cpu.mark_accessed(bus, r.ss_sel, &r.ss)?;
    cpu.set_segment(CS, r.cs.to_segment(r.cs_sel));
    cpu.set_segment(SS, r.ss.to_segment(r.ss_sel));
    // A 16-bit stack keeps the upper half of ESP, as on real CPUs.
    cpu.set_esp(r.esp);
    cpu.s.eip = r.eip;
    let cpl = cpu.s.cpl;
    for seg in [ES, DS, FS, GS] {
        let s = cpu.s.seg[seg];
        let conforming_code = s.is_code() && s.attr & ATTR_DC != 0;
        if s.usable && !conforming_code && s.dpl() < cpl {
            cpu.set_segment(
                seg,
                Segment {
                    selector: 0,
                    usable: false,
                    ..s
                },
            );
        }
    }
    // The privilege changed: translations and cached checks made at the old CPL go.
    cpu.state_changed();
    Ok(())
}

/// RETF / RETF imm16 (`imm` = bytes released after the pop).
fn retf<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let eip = cpu.stack_peek::<W>(bus, 0)?;
    let sel = cpu.stack_peek::<W>(bus, W::BYTES)? as u16;
    let new_esp = esp_plus(cpu, 2 * W::BYTES + op.imm);
    if !cpu.s.protected() || cpu.s.v86() {
        far_target(cpu, bus, sel, eip)?;
        cpu.s.gpr[ESP] = new_esp;
        return Ok(());
    }
    let rpl = (sel & 3) as u8;
    if rpl < cpu.s.cpl {
        return Err(Exception::gp(u32::from(sel & 0xFFFC)));
    }
    if rpl == cpu.s.cpl {
        cpu.far_jump_checked(bus, sel, eip)?;
        cpu.s.gpr[ESP] = new_esp;
        return Ok(());
    }
    // To an outer ring: the caller's SS:ESP sit above the return address and the
    // parameters; imm16 releases the parameters on the outer stack too.
    let cs = check_return_cs(cpu, bus, sel)?;
    let at = 2 * W::BYTES + op.imm;
    let esp = cpu.stack_peek::<W>(bus, at)?;
    let ss_sel = cpu.stack_peek::<W>(bus, at + W::BYTES)? as u16;
    let r = check_outer_return(cpu, bus, sel, cs, eip, ss_sel, esp)?;
    enter_outer(cpu, bus, &r)?;
    let esp = cpu.s.gpr[ESP];
    cpu.set_esp(esp.wrapping_add(op.imm));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// INT n, INT3, INTO, INT1, IRET

/// INT imm8. In V86 mode it is IOPL-sensitive (the monitor emulates it at IOPL < 3).
fn int_n(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    if cpu.s.v86() && iopl(cpu) < 3 {
        return Err(Exception::gp(0));
    }
    cpu.interrupt(bus, op.imm as u8, Source::Software)
}

/// INT3: #BP as a trap, delivered here so the frame holds the address after the INT3; not
/// IOPL-sensitive in V86 mode.
fn int3(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    cpu.interrupt(bus, crate::exception::BP, Source::Software)
}

/// INTO: #OF as a trap when OF is set.
fn into(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    if cpu.s.lazy.of() {
        cpu.interrupt(bus, crate::exception::OF, Source::Software)
    } else {
        Ok(())
    }
}

/// INT1 (ICEBP): #DB without the gate-privilege check of software interrupts, like a
/// hardware debug trap.
fn int1(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    cpu.interrupt(bus, crate::exception::DB, Source::Exception(None))
}

/// EFLAGS bits a real-mode 32-bit IRET loads (the SDM's 257FD5H): not VM, VIF, VIP.
const IRET_REAL_MASK: u32 = 0x0025_7FD5;

fn iret<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    if !cpu.s.protected() {
        let mask = if W::BITS == 16 {
            0xFFFF
        } else {
            IRET_REAL_MASK
        };
        return iret_real::<W>(cpu, bus, mask);
    }
    if cpu.s.v86() {
        if iopl(cpu) < 3 {
            return Err(Exception::gp(0));
        }
        // IOPL 3: like real mode, but IOPL itself (and VM, VIF, VIP) stay as they are.
        let mask = if W::BITS == 16 {
            0xFFFF & !IOPL
        } else {
            !(VM | IOPL | VIF | VIP)
        };
        return iret_real::<W>(cpu, bus, mask);
    }
    if cpu.s.eflags & NT != 0 {
        return iret_task(cpu, bus);
    }
    iret_protected::<W>(cpu, bus)
}

/// IRET with NT set: back to the task named by the current TSS's back link, which must be
/// a busy TSS in the GDT (#TS(link) otherwise).
fn iret_task(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    let link = cpu.read_sys::<W16>(bus, cpu.s.tr.base)? as u16;
    let err = Exception::ts(u32::from(link & 0xFFFC));
    if link & 4 != 0 {
        return Err(err);
    }
    let d = cpu.read_descriptor_or(bus, link, err)?;
    if d.is_segment() || !matches!(d.system_type(), 3 | 0xB) {
        return Err(err);
    }
    if !d.present() {
        return Err(Exception::np(u32::from(link & 0xFFFC)));
    }
    cpu.switch_task(bus, link, d, TaskSwitch::Iret, 0, None)
}

/// Real-mode and V86 IRET: pop (E)IP, CS, (E)FLAGS; `mask` says which flags load.
fn iret_real<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, mask: u32) -> Result<()> {
    let eip = cpu.stack_peek::<W>(bus, 0)?;
    let sel = cpu.stack_peek::<W>(bus, W::BYTES)? as u16;
    let flags = cpu.stack_peek::<W>(bus, 2 * W::BYTES)?;
    let new_esp = esp_plus(cpu, 3 * W::BYTES);
    far_target(cpu, bus, sel, eip)?;
    cpu.s.gpr[ESP] = new_esp;
    cpu.set_eflags(flags, mask);
    // IF or TF may have changed.
    cpu.stop_block = true;
    Ok(())
}

/// Protected-mode IRET (no nested task).
fn iret_protected<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<()> {
    let b = W::BYTES;
    let eip = cpu.stack_peek::<W>(bus, 0)?;
    let sel = cpu.stack_peek::<W>(bus, b)? as u16;
    let flags = cpu.stack_peek::<W>(bus, 2 * b)?;
    let cpl = cpu.s.cpl;
    if W::BITS == 32 && flags & VM != 0 && cpl == 0 {
        return iret_to_v86(cpu, bus, eip, sel, flags);
    }
    // What POPF may change at this privilege: IOPL only at CPL 0, IF only at CPL ≤ IOPL;
    // VM never (a return to V86 is the path above). The old CPL decides, also on a return
    // to an outer ring.
    let mut mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
    if W::BITS == 32 {
        mask |= RF | AC | ID;
    }
    if cpl <= iopl(cpu) {
        mask |= IF;
    }
    if cpl == 0 {
        mask |= IOPL;
        if W::BITS == 32 {
            mask |= VIF | VIP;
        }
    }
    let cs = check_return_cs(cpu, bus, sel)?;
    let rpl = (sel & 3) as u8;
    if rpl == cpl {
        if eip > cs.limit() {
            return Err(Exception::gp(0));
        }
        let new_esp = esp_plus(cpu, 3 * b);
        cpu.mark_accessed(bus, sel, &cs)?;
        cpu.set_segment(CS, cs.to_segment(sel));
        cpu.s.eip = eip;
        cpu.s.gpr[ESP] = new_esp;
        cpu.set_eflags(flags, mask);
        cpu.stop_block = true;
        return Ok(());
    }
    let esp = cpu.stack_peek::<W>(bus, 3 * b)?;
    let ss_sel = cpu.stack_peek::<W>(bus, 4 * b)? as u16;
    let r = check_outer_return(cpu, bus, sel, cs, eip, ss_sel, esp)?;
    cpu.set_eflags(flags, mask);
    enter_outer(cpu, bus, &r)
}

/// IRETD at CPL 0 with VM set in the popped EFLAGS: back to V86 mode. The frame holds EIP,
/// CS, EFLAGS, ESP, SS, ES, DS, FS, GS, all 32-bit slots.
fn iret_to_v86(cpu: &mut Cpu, bus: &mut dyn Bus, eip: u32, cs: u16, flags: u32) -> Result<()> {
    let mut v = [0u32; 6];
    for (n, slot) in v.iter_mut().enumerate() {
        *slot = cpu.stack_peek::<W32>(bus, 12 + 4 * n as u32)?;
    }
    if eip > 0xFFFF {
        return Err(Exception::gp(0));
    }
    let [esp, ss, es, ds, fs, gs] = v;
    // VM goes on first so that set_segment computes CPL 3 for the new CS.
    cpu.set_eflags(flags, 0x003F_7FD5 | VM);
    let sels = [
        (CS, u32::from(cs)),
        (SS, ss),
        (ES, es),
        (DS, ds),
        (FS, fs),
        (GS, gs),
    ];
    for (seg, sel) in sels {
        cpu.set_segment(seg, Segment::v86(sel as u16));
    }
    cpu.s.gpr[ESP] = esp;
    cpu.s.eip = eip;
    cpu.state_changed();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Descriptor tables and task register

/// LGDT/LIDT m16&32 (`r`: 0 GDTR, 1 IDTR; `imm2` 1 for a 16-bit operand size, which loads
/// only 24 bits of base as the 286 did).
fn load_table(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let ea = op.ea(cpu);
    let limit = cpu.read::<W16>(bus, op.seg(), ea)? as u16;
    let mut base = cpu.read::<W32>(bus, op.seg(), ea.wrapping_add(2) & op.amask)?;
    if op.imm2 == 1 {
        base &= 0x00FF_FFFF;
    }
    let t = TableReg { base, limit };
    if op.r == 0 {
        cpu.s.gdtr = t;
    } else {
        cpu.s.idtr = t;
    }
    cpu.stop_block = true;
    Ok(())
}

/// SGDT/SIDT m (`r`: 0 GDTR, 1 IDTR). The full 32-bit base is stored for either operand
/// size, as the SDM says for 32-bit processors (the 286 wrote 0xFF in the top byte).
/// Both halves are checked (segment and page) before either is written.
fn store_table(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let t = if op.r == 0 { cpu.s.gdtr } else { cpu.s.idtr };
    let ea = op.ea(cpu);
    let ea2 = ea.wrapping_add(2) & op.amask;
    let lin1 = cpu.seg_check(op.seg(), ea, 2, true)?;
    let lin2 = cpu.seg_check(op.seg(), ea2, 4, true)?;
    cpu.probe_write(lin1, 2)?;
    cpu.probe_write(lin2, 4)?;
    cpu.write_lin::<W16>(bus, lin1, u32::from(t.limit))?;
    cpu.write_lin::<W32>(bus, lin2, t.base)
}

/// Whether `sel` names a descriptor inside its table (LAR/LSL/VERR/VERW answer ZF = 0
/// instead of faulting), and the descriptor.
fn probe_descriptor(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16) -> Result<Option<Descriptor>> {
    if sel & 0xFFFC == 0 {
        return Ok(None);
    }
    let end = u32::from(sel & !7) + 7;
    let inside = if sel & 4 != 0 {
        cpu.s.ldtr.usable && cpu.s.ldtr.selector & 0xFFFC != 0 && end <= cpu.s.ldtr.limit
    } else {
        end <= u32::from(cpu.s.gdtr.limit)
    };
    if !inside {
        return Ok(None);
    }
    cpu.read_descriptor(bus, sel).map(Some)
}

/// LLDT r/m16. A null selector leaves LDTR unusable (any LDT reference then faults).
fn lldt(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    privileged(cpu)?;
    let sel = read_rm16(cpu, bus, op)?;
    let err = u32::from(sel & 0xFFFC);
    if sel & 0xFFFC == 0 {
        cpu.s.ldtr = Segment {
            selector: sel,
            usable: false,
            ..cpu.s.ldtr
        };
        return Ok(());
    }
    if sel & 4 != 0 {
        return Err(Exception::gp(err));
    }
    let d = cpu.read_descriptor(bus, sel)?;
    if d.is_segment() || d.system_type() != 2 {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    cpu.s.ldtr = d.to_segment(sel);
    cpu.stop_block = true;
    Ok(())
}

/// LTR r/m16: an available TSS in the GDT, which becomes busy.
fn ltr(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    privileged(cpu)?;
    let sel = read_rm16(cpu, bus, op)?;
    let err = u32::from(sel & 0xFFFC);
    if sel & 0xFFFC == 0 {
        return Err(Exception::gp(0));
    }
    if sel & 4 != 0 {
        return Err(Exception::gp(err));
    }
    let mut d = cpu.read_descriptor(bus, sel)?;
    // 1: available 16-bit TSS, 9: available 32-bit TSS.
    if d.is_segment() || !matches!(d.system_type(), 1 | 9) {
        return Err(Exception::gp(err));
    }
    if !d.present() {
        return Err(Exception::np(err));
    }
    d.hi |= 1 << 9; // the busy bit
    let at = cpu.s.gdtr.base.wrapping_add(u32::from(sel & !7) + 4);
    cpu.write_sys::<W32>(bus, at, d.hi)?;
    cpu.s.tr = d.to_segment(sel);
    cpu.stop_block = true;
    Ok(())
}

/// SLDT / STR r/m16 (`r`: 0 LDTR, 1 TR).
fn store_sys_sel(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    let sel = if op.r == 0 {
        cpu.s.ldtr.selector
    } else {
        cpu.s.tr.selector
    };
    write_rm16(cpu, bus, op, u32::from(sel))
}

// ---------------------------------------------------------------------------------------
// Control and debug registers

/// Writes CR0 after the checks every path (MOV, LMSW, CLTS) shares. ET is wired to 1.
/// Turning paging on or off, or changing WP or PE, drops every translation; the other bits
/// (TS, MP, EM, ...) leave the TLB alone, as on hardware.
fn write_cr0(cpu: &mut Cpu, v: u32) -> Result<()> {
    let v = (v & CR0_WRITABLE) | CR0_ET;
    if (v & CR0_PG != 0 && v & CR0_PE == 0) || (v & CR0_NW != 0 && v & CR0_CD == 0) {
        return Err(Exception::gp(0));
    }
    let changed = cpu.s.cr0 ^ v;
    cpu.s.cr0 = v;
    if changed & (CR0_PG | CR0_WP | CR0_PE) != 0 {
        cpu.state_changed();
    } else {
        cpu.stop_block = true;
    }
    Ok(())
}

/// MOV CRn, r32 (`r` = n, `rm` = source). CR1, CR5-CR7 were rejected at translation.
/// A CR3 load flushes the non-global translations; a change of CR4.PSE or CR4.PGE
/// flushes them all.
fn mov_cr_r(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let v = cpu.s.gpr[usize::from(op.rm)];
    match op.r {
        0 => write_cr0(cpu, v)?,
        2 => cpu.s.cr2 = v,
        3 => cpu.set_cr3(v),
        _ => {
            if v & !CR4_WRITABLE != 0 {
                return Err(Exception::gp(0));
            }
            let changed = cpu.s.cr4 ^ v;
            cpu.s.cr4 = v;
            if changed & (CR4_PSE | CR4_PGE) != 0 {
                cpu.state_changed();
            }
        }
    }
    Ok(())
}

/// MOV r32, CRn (`r` = n, `rm` = destination).
fn mov_r_cr(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let v = match op.r {
        0 => cpu.s.cr0,
        2 => cpu.s.cr2,
        3 => cpu.s.cr3,
        _ => cpu.s.cr4,
    };
    cpu.s.gpr[usize::from(op.rm)] = v;
    Ok(())
}

/// The debug register MOV DRn reaches: DR4/DR5 are DR6/DR7 unless CR4.DE makes them #UD.
/// Breakpoints and DR7.GD are not acted upon yet: the registers only hold their values.
fn dr_index(cpu: &Cpu, n: u8) -> Result<usize> {
    match n {
        4 | 5 if cpu.s.cr4 & CR4_DE != 0 => Err(Exception::ud()),
        4 | 5 => Ok(usize::from(n) + 2),
        _ => Ok(usize::from(n)),
    }
}

/// MOV DRn, r32 (`r` = n, `rm` = source). DR6 and DR7 keep their fixed bits.
fn mov_dr_r(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let n = dr_index(cpu, op.r)?;
    let v = cpu.s.gpr[usize::from(op.rm)];
    cpu.s.dr[n] = match n {
        6 => (v & 0x0000_E00F) | 0xFFFF_0FF0,
        7 => (v & 0xFFFF_23FF) | 0x400,
        _ => v,
    };
    Ok(())
}

/// MOV r32, DRn (`r` = n, `rm` = destination).
fn mov_r_dr(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let n = dr_index(cpu, op.r)?;
    cpu.s.gpr[usize::from(op.rm)] = cpu.s.dr[n];
    Ok(())
}

/// LMSW r/m16: loads PE, MP, EM, TS; PE can be set but not cleared.
fn lmsw(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let v = u32::from(read_rm16(cpu, bus, op)?);
    let cr0 = cpu.s.cr0;
    write_cr0(cpu, (cr0 & !0xF) | (v & 0xF) | (cr0 & CR0_PE))
}

/// SMSW r/m16. A 32-bit register receives all of CR0 (the SDM leaves the upper half
/// undefined; P6 CPUs store CR0).
fn smsw(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let cr0 = cpu.s.cr0;
    write_rm16(
        cpu,
        bus,
        op,
        if op.x == RM_REG32 { cr0 } else { cr0 & 0xFFFF },
    )
}

fn clts(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    privileged(cpu)?;
    cpu.s.cr0 &= !CR0_TS;
    cpu.stop_block = true;
    Ok(())
}

/// INVLPG m: drops the translation of the page holding the operand's linear address
/// (segment base + offset; nothing is accessed, so no limit check), global or not.
fn invlpg(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    privileged(cpu)?;
    let lin = cpu.s.seg[op.seg()].base.wrapping_add(op.ea(cpu));
    cpu.invalidate_page(lin);
    Ok(())
}

/// WBINVD / INVD: there are no caches to write back or drop.
fn cache_op(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    privileged(cpu)
}

// ---------------------------------------------------------------------------------------
// MSRs

/// RDMSR: ECX names the MSR, EDX:EAX receive it. Implemented: the time-stamp counter (the
/// same count RDTSC reads), the microcode revision (reads 0) and the three SYSENTER MSRs;
/// any other MSR is #GP(0), as for an MSR the CPU does not have.
fn rdmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    privileged(cpu)?;
    let v: u64 = match cpu.s.gpr[ECX] {
        MSR_TSC => cpu.tsc(bus),
        MSR_BIOS_SIGN_ID => 0,
        MSR_SYSENTER_CS => u64::from(cpu.s.sysenter_cs),
        MSR_SYSENTER_ESP => u64::from(cpu.s.sysenter_esp),
        MSR_SYSENTER_EIP => u64::from(cpu.s.sysenter_eip),
        _ => return Err(Exception::gp(0)),
    };
    cpu.s.gpr[EAX] = v as u32;
    cpu.s.gpr[EDX] = (v >> 32) as u32;
    Ok(())
}

/// WRMSR: writing the TSC moves its offset so that it reads the value now and counts on
/// from there; the microcode revision ignores writes; the SYSENTER MSRs keep their low 32
/// bits (a 32-bit CPU has no more); anything else is #GP(0).
fn wrmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    privileged(cpu)?;
    let v = u64::from(cpu.s.gpr[EDX]) << 32 | u64::from(cpu.s.gpr[EAX]);
    match cpu.s.gpr[ECX] {
        MSR_TSC => cpu.s.tsc_offset = v.wrapping_sub(bus.time_ns(cpu.s.icount)),
        MSR_BIOS_SIGN_ID => {}
        MSR_SYSENTER_CS => cpu.s.sysenter_cs = v as u32,
        MSR_SYSENTER_ESP => cpu.s.sysenter_esp = v as u32,
        MSR_SYSENTER_EIP => cpu.s.sysenter_eip = v as u32,
        _ => return Err(Exception::gp(0)),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SYSENTER / SYSEXIT

/// The flat 4 GiB segment SYSENTER and SYSEXIT load without reading a descriptor.
fn flat_segment(selector: u16, code: bool, dpl: u16) -> Segment {
    let mut attr =
        ATTR_P | ATTR_S | ATTR_RW | ATTR_ACCESSED | ATTR_DB | ATTR_G | (dpl << ATTR_DPL_SHIFT);
    if code {
        attr |= ATTR_CODE;
    }
    Segment {
        selector,
        base: 0,
        limit: u32::MAX,
        attr,
        usable: true,
    }
}

/// SYSENTER: to ring 0 at SYSENTER_CS:SYSENTER_EIP with SS = SYSENTER_CS + 8 and ESP =
/// SYSENTER_ESP, both flat; VM, IF and RF clear. #GP(0) in real mode or with a null CS MSR.
fn sysenter(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let cs = (cpu.s.sysenter_cs as u16) & 0xFFFC;
    if !cpu.s.protected() || cs == 0 {
        return Err(Exception::gp(0));
    }
    let was_v86 = cpu.s.v86();
    // VM first, so that loading CS computes CPL 0.
    cpu.s.eflags &= !(VM | IF | RF);
    cpu.set_segment(CS, flat_segment(cs, true, 0));
    cpu.set_segment(SS, flat_segment(cs.wrapping_add(8), false, 0));
    cpu.s.gpr[ESP] = cpu.s.sysenter_esp;
    cpu.s.eip = cpu.s.sysenter_eip;
    if was_v86 {
        cpu.state_changed();
    }
    Ok(())
}

/// SYSEXIT: to ring 3 at (SYSENTER_CS + 16):EDX with SS = SYSENTER_CS + 24 and ESP = ECX,
/// both flat. #GP(0) unless in protected mode at CPL 0 with a non-null CS MSR.
fn sysexit(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let cs = (cpu.s.sysenter_cs as u16) & 0xFFFC;
    if !cpu.s.protected() || cpu.s.v86() || cpu.s.cpl != 0 || cs == 0 {
        return Err(Exception::gp(0));
    }
    cpu.set_segment(CS, flat_segment(cs.wrapping_add(16) | 3, true, 3));
    cpu.set_segment(SS, flat_segment(cs.wrapping_add(24) | 3, false, 3));
    cpu.s.gpr[ESP] = cpu.s.gpr[ECX];
    cpu.s.eip = cpu.s.gpr[EDX];
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Protection probes: LAR, LSL, VERR, VERW, ARPL

/// The privilege rule of LAR/LSL/VERR/VERW: conforming code is always visible, anything
/// else needs DPL ≥ max(CPL, RPL).
fn visible(cpu: &Cpu, sel: u16, d: &Descriptor) -> bool {
    d.conforming() || d.dpl() >= cpu.s.cpl.max((sel & 3) as u8)
}

/// LAR r, r/m16 (`r` = destination): the access rights (descriptor bytes 5-7, masked) and
/// ZF = 1, or ZF = 0 and the destination unchanged.
fn lar<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    let sel = read_rm16(cpu, bus, op)?;
    // Valid system types: TSSs (available/busy), LDT, call and task gates.
    let d = probe_descriptor(cpu, bus, sel)?.filter(|d| {
        (d.is_segment() || matches!(d.system_type(), 1..=5 | 9 | 0xB | 0xC)) && visible(cpu, sel, d)
    });
    if let Some(d) = d {
        W::set(&mut cpu.s, op.r, d.hi & 0x00F0_FF00 & W::MASK);
    }
    set_zf(cpu, d.is_some());
    Ok(())
}

/// LSL r, r/m16 (`r` = destination): the byte-granular limit and ZF = 1, or ZF = 0.
fn lsl<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    let sel = read_rm16(cpu, bus, op)?;
    // Valid system types: TSSs and the LDT (gates have no limit).
    let d = probe_descriptor(cpu, bus, sel)?.filter(|d| {
        (d.is_segment() || matches!(d.system_type(), 1..=3 | 9 | 0xB)) && visible(cpu, sel, d)
    });
    if let Some(d) = d {
        W::set(&mut cpu.s, op.r, d.limit() & W::MASK);
    }
    set_zf(cpu, d.is_some());
    Ok(())
}

/// VERR / VERW r/m16 (`r`: 0 VERR, 1 VERW): ZF = 1 if the segment could be read /
/// written at this CPL and the selector's RPL.
fn verify(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    let sel = read_rm16(cpu, bus, op)?;
    let ok = match probe_descriptor(cpu, bus, sel)? {
        Some(d) if d.is_segment() => {
            let usable = if op.r == 0 {
                !d.is_code() || d.rw()
            } else {
                !d.is_code() && d.rw()
            };
            usable && visible(cpu, sel, &d)
        }
        _ => false,
    };
    set_zf(cpu, ok);
    Ok(())
}

/// ARPL r/m16, r16 (`r` = source): raises the destination selector's RPL to the source's.
/// Only the low 16 bits of a register destination change.
fn arpl(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    protected_only(cpu)?;
    let src = W16::get(&cpu.s, op.r);
    let dst = if op.x == RM_MEM {
        cpu.read_op::<W16>(bus, op)?
    } else {
        W16::get(&cpu.s, op.rm)
    };
    let raise = dst & 3 < src & 3;
    if raise {
        let v = (dst & !3) | (src & 3);
        if op.x == RM_MEM {
            cpu.write_op::<W16>(bus, op, v)?;
        } else {
            W16::set(&mut cpu.s, op.rm, v);
        }
    }
    set_zf(cpu, raise);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Selection

fn is_sreg(i: &Instruction, n: u32) -> bool {
    i.op_kind(n) == OpKind::Register && i.op_register(n).is_segment_register()
}

/// Fills `imm` (offset) and `imm2` (selector) of a direct far branch.
fn far_ptr(i: &Instruction, op: &mut Op) -> Option<bool> {
    match i.op_kind(0) {
        OpKind::FarBranch16 => {
            op.imm = u32::from(i.far_branch16());
            op.imm2 = u32::from(i.far_branch_selector());
            Some(false)
        }
        OpKind::FarBranch32 => {
            op.imm = i.far_branch32();
            op.imm2 = u32::from(i.far_branch_selector());
            Some(true)
        }
        _ => None,
    }
}

fn select_mov(i: &Instruction, op: &mut Op) -> Option<Handler> {
    if i.op_count() != 2 {
        return None;
    }
    if is_sreg(i, 0) {
        if i.op0_register() == iced_x86::Register::CS {
            return Some(ud);
        }
        op.r = gpr(i.op0_register());
        rm_form(i, op, 1);
        return Some(mov_sreg_rm);
    }
    if is_sreg(i, 1) {
        op.r = gpr(i.op1_register());
        rm_form(i, op, 0);
        return Some(mov_rm_sreg);
    }
    if i.op_kind(0) != OpKind::Register || i.op_kind(1) != OpKind::Register {
        return None;
    }
    let (r0, r1) = (i.op0_register(), i.op1_register());
    let valid_cr = |n: u8| matches!(n, 0 | 2 | 3 | 4);
    if r0.is_cr() {
        op.r = gpr(r0);
        op.rm = gpr(r1);
        return Some(if valid_cr(op.r) { mov_cr_r } else { ud });
    }
    if r1.is_cr() {
        op.r = gpr(r1);
        op.rm = gpr(r0);
        return Some(if valid_cr(op.r) { mov_r_cr } else { ud });
    }
    if r0.is_dr() {
        op.r = gpr(r0);
        op.rm = gpr(r1);
        return Some(if op.r < 8 { mov_dr_r } else { ud });
    }
    if r1.is_dr() {
        op.r = gpr(r1);
        op.rm = gpr(r0);
        return Some(if op.r < 8 { mov_r_dr } else { ud });
    }
    None
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let w32 = |wide: bool| -> usize {
        if wide {
            32
        } else {
            16
        }
    };
    Some(match i.mnemonic() {
        Mnemonic::Mov => return select_mov(i, op),
        Mnemonic::Push | Mnemonic::Pop if is_sreg(i, 0) => {
            op.r = gpr(i.op0_register());
            let wide = i.stack_pointer_increment().unsigned_abs() == 4;
            if i.mnemonic() == Mnemonic::Push {
                by_width_16_32!(w32(wide), push_sreg)
            } else if i.op0_register() == iced_x86::Register::CS {
                ud
            } else {
                by_width_16_32!(w32(wide), pop_sreg)
            }
        }
        Mnemonic::Lds | Mnemonic::Les | Mnemonic::Lfs | Mnemonic::Lgs | Mnemonic::Lss => {
            if i.op_kind(1) != OpKind::Memory {
                return Some(ud);
            }
            op.r = gpr(i.op0_register());
            op.x = match i.mnemonic() {
                Mnemonic::Lds => DS,
                Mnemonic::Les => ES,
                Mnemonic::Lfs => FS,
                Mnemonic::Lgs => GS,
                _ => SS,
            } as u8;
            by_width_16_32!(width(i, 0), load_far_ptr)
        }
        Mnemonic::Jmp => match i.code() {
            Code::Jmp_ptr1616 | Code::Jmp_ptr1632 => {
                far_ptr(i, op)?;
                jmp_far_ptr
            }
            Code::Jmp_m1616 => jmp_far_m::<W16>,
            Code::Jmp_m1632 => jmp_far_m::<W32>,
            _ => return None,
        },
        Mnemonic::Call => match i.code() {
            Code::Call_ptr1616 | Code::Call_ptr1632 => {
                let wide = far_ptr(i, op)?;
                by_width_16_32!(w32(wide), call_far_ptr)
            }
            Code::Call_m1616 => call_far_m::<W16>,
            Code::Call_m1632 => call_far_m::<W32>,
            _ => return None,
        },
        Mnemonic::Retf => {
            op.imm = if i.op_count() > 0 {
                u32::from(i.immediate16())
            } else {
                0
            };
            match i.code() {
                Code::Retfw | Code::Retfw_imm16 => retf::<W16>,
                Code::Retfd | Code::Retfd_imm16 => retf::<W32>,
                _ => return None,
            }
        }
        Mnemonic::Int => int_n,
        Mnemonic::Int3 => int3,
        Mnemonic::Into => into,
        Mnemonic::Int1 => int1,
        Mnemonic::Iret => iret::<W16>,
        Mnemonic::Iretd => iret::<W32>,
        Mnemonic::Lgdt | Mnemonic::Lidt | Mnemonic::Sgdt | Mnemonic::Sidt => {
            if i.op_kind(0) != OpKind::Memory {
                return Some(ud);
            }
            op.r = u8::from(matches!(i.mnemonic(), Mnemonic::Lidt | Mnemonic::Sidt));
            op.imm2 = u32::from(matches!(
                i.code(),
                Code::Lgdt_m1632_16 | Code::Lidt_m1632_16
            ));
            match i.mnemonic() {
                Mnemonic::Lgdt | Mnemonic::Lidt => load_table,
                _ => store_table,
            }
        }
        Mnemonic::Lldt => {
            rm_form(i, op, 0);
            lldt
        }
        Mnemonic::Ltr => {
            rm_form(i, op, 0);
            ltr
        }
        Mnemonic::Sldt | Mnemonic::Str => {
            rm_form(i, op, 0);
            op.r = u8::from(i.mnemonic() == Mnemonic::Str);
            store_sys_sel
        }
        Mnemonic::Lmsw => {
            rm_form(i, op, 0);
            lmsw
        }
        Mnemonic::Smsw => {
            rm_form(i, op, 0);
            smsw
        }
        Mnemonic::Clts => clts,
        Mnemonic::Invlpg => invlpg,
        Mnemonic::Wbinvd | Mnemonic::Invd => cache_op,
        Mnemonic::Rdmsr => rdmsr,
        Mnemonic::Wrmsr => wrmsr,
        Mnemonic::Sysenter => sysenter,
        Mnemonic::Sysexit if i.code() == Code::Sysexitd => sysexit,
        Mnemonic::Lar | Mnemonic::Lsl => {
            op.r = gpr(i.op0_register());
            rm_form(i, op, 1);
            let w = width(i, 0);
            if i.mnemonic() == Mnemonic::Lar {
                by_width_16_32!(w, lar)
            } else {
                by_width_16_32!(w, lsl)
            }
        }
        Mnemonic::Verr | Mnemonic::Verw => {
            rm_form(i, op, 0);
            op.r = u8::from(i.mnemonic() == Mnemonic::Verw);
            verify
        }
        Mnemonic::Arpl => {
            rm_form(i, op, 0);
            op.r = gpr(i.op1_register());
            arpl
        }
        Mnemonic::Ud2 => ud,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! Snippets were assembled with `nasm -f bin` (`bits 32`, `org 0x1000` unless the
    //! source says otherwise); the source is kept above each byte string.

    use std::sync::Arc;

    use memory::{GuestMemory, GuestPhysAddr};

    use super::*;
    use crate::exception::{GP, NP, UD};
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};
    use crate::{Exit, NullBus};

    fn run(code: &[u8]) -> (SnippetEnd, SnippetState) {
        let mut s = SnippetState::default();
        let end = run_snippet32(code, &mut s);
        (end, s)
    }

    fn fault(vector: u8, error: Option<u32>) -> SnippetEnd {
        SnippetEnd::Exception(match error {
            Some(e) => Exception::with_error(vector, e),
            None => Exception::fault(vector),
        })
    }

    fn gp(error: u32) -> SnippetEnd {
        fault(GP, Some(error))
    }

    fn word(data: &[u8], at: usize) -> u32 {
        u32::from(u16::from_le_bytes([data[at], data[at + 1]]))
    }

    fn dword(data: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(data[at..at + 4].try_into().unwrap())
    }

    /// Runs 16-bit real-mode code at 0000:1000 with the IVT at 0 and SS:SP = 0000:8000
    /// until it halts; returns the CPU to look at.
    fn run_real(code: &[u8]) -> Cpu {
        let mem = Arc::new(GuestMemory::new(1 << 20).expect("1 MiB of RAM"));
        mem.write_phys(GuestPhysAddr(0x1000), code);
        let mut cpu = Cpu::new(mem);
        let mut s = CpuState::reset();
        s.seg = [Segment::real(0); 6];
        s.seg[CS].attr |= ATTR_CODE;
        s.idtr = TableReg {
            base: 0,
            limit: 0x3FF,
        };
        s.eip = 0x1000;
        s.gpr[ESP] = 0x8000;
        cpu.set_state(s);
        for _ in 0..100 {
            if cpu.run(&mut NullBus, 10_000) != Exit::Budget {
                break;
            }
        }
        assert!(cpu.s.halted, "did not halt: eip {:#x}", cpu.s.eip);
        cpu
    }

    // mov eax, cr0
    // mov ebx, eax
    // or eax, 2
    // mov cr0, eax
    // mov ecx, cr0
    // mov eax, cr4
    // or eax, 0x10
    // mov cr4, eax
    // mov edx, cr4
    // mov eax, 0x12345000
    // mov cr3, eax
    // mov esi, cr3
    // mov cr2, eax
    // mov edi, cr2
    const CR0: &[u8] = &[
        0x0F, 0x20, 0xC0, 0x89, 0xC3, 0x83, 0xC8, 0x02, 0x0F, 0x22, 0xC0, 0x0F, 0x20, 0xC1, 0x0F,
        0x20, 0xE0, 0x83, 0xC8, 0x10, 0x0F, 0x22, 0xE0, 0x0F, 0x20, 0xE2, 0xB8, 0x00, 0x50, 0x34,
        0x12, 0x0F, 0x22, 0xD8, 0x0F, 0x20, 0xDE, 0x0F, 0x22, 0xD0, 0x0F, 0x20, 0xD7,
    ];

    // mov eax, cr0
    // and eax, ~0x40000000
    // mov cr0, eax
    const CR0_NW: &[u8] = &[
        0x0F, 0x20, 0xC0, 0x25, 0xFF, 0xFF, 0xFF, 0xBF, 0x0F, 0x22, 0xC0,
    ];

    // mov eax, cr0
    // and eax, ~1
    // or eax, 0x80000000
    // mov cr0, eax
    const CR0_PG: &[u8] = &[
        0x0F, 0x20, 0xC0, 0x83, 0xE0, 0xFE, 0x0D, 0x00, 0x00, 0x00, 0x80, 0x0F, 0x22, 0xC0,
    ];

    // mov eax, 0x20
    // mov cr4, eax
    const CR4_PAE: &[u8] = &[0xB8, 0x20, 0x00, 0x00, 0x00, 0x0F, 0x22, 0xE0];

    // call 0x08:func
    // mov ebx, 1
    // push 7
    // call 0x08:func2
    // mov edx, esp
    // call word 0x08:func16
    // mov dword [0x10000], func
    // mov word [0x10004], 0x08
    // call far [0x10000]
    // mov ebp, esi
    // jmp done
    // func:
    // mov eax, [esp+4]
    // mov ecx, [esp]
    // mov esi, esp
    // retf
    // func2:
    // retf 4
    // func16:
    // movzx edi, word [esp+2]
    // o16 retf
    // done:
    const FARCALL: &[u8] = &[
        0x9A, 0x3A, 0x10, 0x00, 0x00, 0x08, 0x00, 0xBB, 0x01, 0x00, 0x00, 0x00, 0x6A, 0x07, 0x9A,
        0x44, 0x10, 0x00, 0x00, 0x08, 0x00, 0x89, 0xE2, 0x66, 0x9A, 0x47, 0x10, 0x08, 0x00, 0xC7,
        0x05, 0x00, 0x00, 0x01, 0x00, 0x3A, 0x10, 0x00, 0x00, 0x66, 0xC7, 0x05, 0x04, 0x00, 0x01,
        0x00, 0x08, 0x00, 0xFF, 0x1D, 0x00, 0x00, 0x01, 0x00, 0x89, 0xF5, 0xEB, 0x14, 0x8B, 0x44,
        0x24, 0x04, 0x8B, 0x0C, 0x24, 0x89, 0xE6, 0xCB, 0xCA, 0x04, 0x00, 0x0F, 0xB7, 0x7C, 0x24,
        0x02, 0x66, 0xCB,
    ];

    // mov eax, handler
    // mov [idt + 0x30*8], ax
    // mov word [idt + 0x30*8 + 2], 0x08
    // mov word [idt + 0x30*8 + 4], 0x8E00
    // shr eax, 16
    // mov [idt + 0x30*8 + 6], ax
    // mov eax, handler3
    // mov [idt + 3*8], ax
    // mov word [idt + 3*8 + 2], 0x08
    // mov word [idt + 3*8 + 4], 0x8F00
    // shr eax, 16
    // mov [idt + 3*8 + 6], ax
    // mov eax, handler3
    // mov [idt + 4*8], ax
    // mov word [idt + 4*8 + 2], 0x08
    // mov word [idt + 4*8 + 4], 0x8F00
    // shr eax, 16
    // mov [idt + 4*8 + 6], ax
    // lidt [idtr]
    // sti
    // xor eax, eax
    // int 0x30
    // pushfd
    // pop dword [0x10008]
    // int3
    // after3:
    // mov [0x1000c], edi
    // mov [0x10010], ebp
    // mov al, 0x7f
    // add al, 1      ; OF=1
    // into
    // after4:
    // mov [0x10014], edi
    // cli
    // jmp done
    // handler:
    // mov eax, 0x55
    // pushfd
    // pop dword [0x10000]
    // mov ecx, [esp+4]
    // mov edx, [esp+8]
    // iretd
    // handler3:
    // mov edi, [esp]
    // mov ebp, [esp+4]
    // iretd
    // idtr: dw 0x7ff
    //       dd 0x10100
    // idt equ 0x10100
    // done:
    // mov dword [0x10018], after3
    // mov dword [0x1001c], after4
    const IDT: &[u8] = &[
        0xB8, 0xA0, 0x10, 0x00, 0x00, 0x66, 0xA3, 0x80, 0x02, 0x01, 0x00, 0x66, 0xC7, 0x05, 0x82,
        0x02, 0x01, 0x00, 0x08, 0x00, 0x66, 0xC7, 0x05, 0x84, 0x02, 0x01, 0x00, 0x00, 0x8E, 0xC1,
        0xE8, 0x10, 0x66, 0xA3, 0x86, 0x02, 0x01, 0x00, 0xB8, 0xB5, 0x10, 0x00, 0x00, 0x66, 0xA3,
        0x18, 0x01, 0x01, 0x00, 0x66, 0xC7, 0x05, 0x1A, 0x01, 0x01, 0x00, 0x08, 0x00, 0x66, 0xC7,
        0x05, 0x1C, 0x01, 0x01, 0x00, 0x00, 0x8F, 0xC1, 0xE8, 0x10, 0x66, 0xA3, 0x1E, 0x01, 0x01,
        0x00, 0xB8, 0xB5, 0x10, 0x00, 0x00, 0x66, 0xA3, 0x20, 0x01, 0x01, 0x00, 0x66, 0xC7, 0x05,
        0x22, 0x01, 0x01, 0x00, 0x08, 0x00, 0x66, 0xC7, 0x05, 0x24, 0x01, 0x01, 0x00, 0x00, 0x8F,
        0xC1, 0xE8, 0x10, 0x66, 0xA3, 0x26, 0x01, 0x01, 0x00, 0x0F, 0x01, 0x1D, 0xBD, 0x10, 0x00,
        0x00, 0xFB, 0x31, 0xC0, 0xCD, 0x30, 0x9C, 0x8F, 0x05, 0x08, 0x00, 0x01, 0x00, 0xCC, 0x89,
        0x3D, 0x0C, 0x00, 0x01, 0x00, 0x89, 0x2D, 0x10, 0x00, 0x01, 0x00, 0xB0, 0x7F, 0x04, 0x01,
        0xCE, 0x89, 0x3D, 0x14, 0x00, 0x01, 0x00, 0xFA, 0xEB, 0x23, 0xB8, 0x55, 0x00, 0x00, 0x00,
        0x9C, 0x8F, 0x05, 0x00, 0x00, 0x01, 0x00, 0x8B, 0x4C, 0x24, 0x04, 0x8B, 0x54, 0x24, 0x08,
        0xCF, 0x8B, 0x3C, 0x24, 0x8B, 0x6C, 0x24, 0x04, 0xCF, 0xFF, 0x07, 0x00, 0x01, 0x01, 0x00,
        0xC7, 0x05, 0x18, 0x00, 0x01, 0x00, 0x86, 0x10, 0x00, 0x00, 0xC7, 0x05, 0x1C, 0x00, 0x01,
        0x00, 0x97, 0x10, 0x00, 0x00,
    ];

    // int 0x21
    const INT_NOIDT: &[u8] = &[0xCD, 0x21];

    // lgdt [gdtr]
    // push dword 0x23
    // push dword 0x2F000
    // push dword 0x3202
    // push dword 0x1B
    // push dword ring3
    // iretd
    // gdtr: dw gdt_end - gdt - 1
    //       dd gdt
    // align 8
    // gdt: dq 0
    //      dq 0x00CF9B000000FFFF
    //      dq 0x00CF93000000FFFF
    //      dq 0x00CFFB000000FFFF
    //      dq 0x00CFF3000000FFFF
    // gdt_end:
    // ring3:
    // cli                 ; allowed: IOPL 3
    // mov eax, cs
    // mov ebx, ss
    // mov ecx, ds
    // mov esi, esp
    // lgdt [gdtr]
    const IRET3: &[u8] = &[
        0x0F, 0x01, 0x15, 0x1B, 0x10, 0x00, 0x00, 0x6A, 0x23, 0x68, 0x00, 0xF0, 0x02, 0x00, 0x68,
        0x02, 0x32, 0x00, 0x00, 0x6A, 0x1B, 0x68, 0x50, 0x10, 0x00, 0x00, 0xCF, 0x27, 0x00, 0x28,
        0x10, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00,
        0x00, 0x93, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFB, 0xCF, 0x00, 0xFF, 0xFF, 0x00,
        0x00, 0x00, 0xF3, 0xCF, 0x00, 0xFA, 0x8C, 0xC8, 0x8C, 0xD3, 0x8C, 0xD9, 0x89, 0xE6, 0x0F,
        0x01, 0x15, 0x1B, 0x10, 0x00, 0x00,
    ];

    // mov ax, 0x08
    // lar ebx, ax
    // setz cl
    // lsl edx, ax
    // setz ch
    // mov ax, 0x30
    // mov esi, 0x1234
    // lar esi, ax
    // setnz [0x10000]
    // mov ax, 0
    // lsl esi, ax
    // setnz [0x10001]
    // mov ax, 0x08
    // verr ax
    // setz [0x10002]
    // verw ax
    // setnz [0x10003]
    // mov ax, 0x10
    // verw ax
    // setz [0x10004]
    // mov word [0x10010], 0x10
    // mov di, 3
    // arpl [0x10010], di
    // setz [0x10005]
    // mov di, 0x11
    // mov ax, 0x13
    // arpl ax, di
    // setnz [0x10006]
    // mov ebp, eax
    // mov word [0x10012], 0x10
    // o16 lar bp, [0x10012]
    const LARLSL: &[u8] = &[
        0x66, 0xB8, 0x08, 0x00, 0x0F, 0x02, 0xD8, 0x0F, 0x94, 0xC1, 0x0F, 0x03, 0xD0, 0x0F, 0x94,
        0xC5, 0x66, 0xB8, 0x30, 0x00, 0xBE, 0x34, 0x12, 0x00, 0x00, 0x0F, 0x02, 0xF0, 0x0F, 0x95,
        0x05, 0x00, 0x00, 0x01, 0x00, 0x66, 0xB8, 0x00, 0x00, 0x0F, 0x03, 0xF0, 0x0F, 0x95, 0x05,
        0x01, 0x00, 0x01, 0x00, 0x66, 0xB8, 0x08, 0x00, 0x0F, 0x00, 0xE0, 0x0F, 0x94, 0x05, 0x02,
        0x00, 0x01, 0x00, 0x0F, 0x00, 0xE8, 0x0F, 0x95, 0x05, 0x03, 0x00, 0x01, 0x00, 0x66, 0xB8,
        0x10, 0x00, 0x0F, 0x00, 0xE8, 0x0F, 0x94, 0x05, 0x04, 0x00, 0x01, 0x00, 0x66, 0xC7, 0x05,
        0x10, 0x00, 0x01, 0x00, 0x10, 0x00, 0x66, 0xBF, 0x03, 0x00, 0x63, 0x3D, 0x10, 0x00, 0x01,
        0x00, 0x0F, 0x94, 0x05, 0x05, 0x00, 0x01, 0x00, 0x66, 0xBF, 0x11, 0x00, 0x66, 0xB8, 0x13,
        0x00, 0x63, 0xF8, 0x0F, 0x95, 0x05, 0x06, 0x00, 0x01, 0x00, 0x89, 0xC5, 0x66, 0xC7, 0x05,
        0x12, 0x00, 0x01, 0x00, 0x10, 0x00, 0x66, 0x0F, 0x02, 0x2D, 0x12, 0x00, 0x01, 0x00,
    ];

    // lgdt [gdtr]
    // jmp 0x18:next
    // gdtr: dw gdt_end - gdt - 1
    //       dd gdt
    // align 8
    // gdt: dq 0
    //      dq 0x00CF9B000000FFFF
    //      dq 0x00CF93000000FFFF
    //      dq 0x00CF9B000000FFFF
    //      dq 0x00CF93000000FFFF
    // gdt_end:
    // next:
    // mov ax, 0x20
    // mov ds, ax
    // mov eax, cs
    // mov ebx, ds
    // mov dword [0x10000], far2
    // mov word [0x10004], 0x08
    // jmp far [0x10000]
    // far2:
    // mov ecx, cs
    const LGDT_FAR: &[u8] = &[
        0x0F, 0x01, 0x15, 0x0E, 0x10, 0x00, 0x00, 0xEA, 0x40, 0x10, 0x00, 0x00, 0x18, 0x00, 0x27,
        0x00, 0x18, 0x10, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00,
        0x93, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00,
        0x00, 0x93, 0xCF, 0x00, 0x66, 0xB8, 0x20, 0x00, 0x8E, 0xD8, 0x8C, 0xC8, 0x8C, 0xDB, 0xC7,
        0x05, 0x00, 0x00, 0x01, 0x00, 0x63, 0x10, 0x00, 0x00, 0x66, 0xC7, 0x05, 0x04, 0x00, 0x01,
        0x00, 0x08, 0x00, 0xFF, 0x2D, 0x00, 0x00, 0x01, 0x00, 0x8C, 0xC9,
    ];

    // lgdt [gdtr]
    // mov ax, 0x18
    // ltr ax
    // mov ebx, 0xFFFFFFFF
    // str ebx
    // mov ax, 0x20
    // lldt ax
    // sldt ecx
    // mov ax, 0x0C
    // mov fs, ax
    // mov edx, fs
    // mov esi, [fs:0x10000]
    // mov ax, 0x18
    // ltr ax
    // gdtr: dw 39
    //       dd 0x10000
    const LTR: &[u8] = &[
        0x0F, 0x01, 0x15, 0x36, 0x10, 0x00, 0x00, 0x66, 0xB8, 0x18, 0x00, 0x0F, 0x00, 0xD8, 0xBB,
        0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0xCB, 0x66, 0xB8, 0x20, 0x00, 0x0F, 0x00, 0xD0, 0x0F,
        0x00, 0xC1, 0x66, 0xB8, 0x0C, 0x00, 0x8E, 0xE0, 0x8C, 0xE2, 0x64, 0x8B, 0x35, 0x00, 0x00,
        0x01, 0x00, 0x66, 0xB8, 0x18, 0x00, 0x0F, 0x00, 0xD8, 0x27, 0x00, 0x00, 0x00, 0x01, 0x00,
    ];

    // mov ax, 0x1B
    // mov ds, ax
    const MOV_DS_BEYOND: &[u8] = &[0x66, 0xB8, 0x1B, 0x00, 0x8E, 0xD8];

    // xor eax, eax
    // mov ds, ax
    // mov ebx, 1
    // mov ecx, [0x10000]
    const MOV_DS_NULL: &[u8] = &[
        0x31, 0xC0, 0x8E, 0xD8, 0xBB, 0x01, 0x00, 0x00, 0x00, 0x8B, 0x0D, 0x00, 0x00, 0x01, 0x00,
    ];

    // mov ax, 0x13
    // mov ds, ax
    const MOV_DS_RPL: &[u8] = &[0x66, 0xB8, 0x13, 0x00, 0x8E, 0xD8];

    // mov ax, 0x10
    // mov ds, ax
    // mov ebx, 0xFFFFFFFF
    // mov ebx, ds          ; zero-extends into EBX
    // mov word [0x10000], 0x5555
    // mov [0x10000], es    ; stores 16 bits
    const MOV_DS_VALID: &[u8] = &[
        0x66, 0xB8, 0x10, 0x00, 0x8E, 0xD8, 0xBB, 0xFF, 0xFF, 0xFF, 0xFF, 0x8C, 0xDB, 0x66, 0xC7,
        0x05, 0x00, 0x00, 0x01, 0x00, 0x55, 0x55, 0x8C, 0x05, 0x00, 0x00, 0x01, 0x00,
    ];

    // xor eax, eax
    // mov ss, ax
    const MOV_SS_NULL: &[u8] = &[0x31, 0xC0, 0x8E, 0xD0];

    // mov ecx, 0x10
    // rdmsr
    // mov esi, eax
    // mov eax, 0x1000
    // mov edx, 1
    // wrmsr
    // rdmsr
    // mov edi, eax
    // mov ebp, edx
    // mov ecx, 0x1234
    // rdmsr
    const MSR: &[u8] = &[
        0xB9, 0x10, 0x00, 0x00, 0x00, 0x0F, 0x32, 0x89, 0xC6, 0xB8, 0x00, 0x10, 0x00, 0x00, 0xBA,
        0x01, 0x00, 0x00, 0x00, 0x0F, 0x30, 0x0F, 0x32, 0x89, 0xC7, 0x89, 0xD5, 0xB9, 0x34, 0x12,
        0x00, 0x00, 0x0F, 0x32,
    ];

    // bits 16
    // mov word [0x21*4], handler
    // mov word [0x21*4+2], 0
    // mov ax, 0x1234
    // int 0x21
    // mov [0x500], bx
    // call 0x0000:farfn
    // push es
    // mov ax, 0x0070
    // push ax
    // pop es
    // mov di, es
    // pop es
    // cli
    // lgdt [gdtr]
    // mov eax, cr0
    // or al, 1
    // mov cr0, eax
    // jmp 0x08:pm
    // pm:
    // mov ax, 0x10
    // mov ds, ax
    // mov ss, ax
    // mov dword [0x600], 0xCAFEBABE
    // jmp 0x18:pm16
    // bits 16
    // pm16:
    // mov eax, cr0
    // and al, 0xFE
    // mov cr0, eax
    // jmp 0x0000:real
    // real:
    // mov ax, 0x50
    // mov ds, ax
    // xor ax, ax
    // mov ss, ax
    // mov ecx, [0x100]
    // hlt
    // handler:
    // mov bx, ax
    // add bx, 1
    // iret
    // farfn:
    // mov si, 0x77
    // retf
    // align 8
    // gdtr: dw 31
    //       dd gdt
    // align 8
    // gdt: dq 0
    //      dq 0x00CF9B000000FFFF
    //      dq 0x00CF93000000FFFF
    //      dq 0x00009B000000FFFF
    const REAL: &[u8] = &[
        0xC7, 0x06, 0x84, 0x00, 0x6B, 0x10, 0xC7, 0x06, 0x86, 0x00, 0x00, 0x00, 0xB8, 0x34, 0x12,
        0xCD, 0x21, 0x89, 0x1E, 0x00, 0x05, 0x9A, 0x71, 0x10, 0x00, 0x00, 0x06, 0xB8, 0x70, 0x00,
        0x50, 0x07, 0x8C, 0xC7, 0x07, 0xFA, 0x0F, 0x01, 0x16, 0x78, 0x10, 0x0F, 0x20, 0xC0, 0x0C,
        0x01, 0x0F, 0x22, 0xC0, 0xEA, 0x36, 0x10, 0x08, 0x00, 0x66, 0xB8, 0x10, 0x00, 0x8E, 0xD8,
        0x8E, 0xD0, 0xC7, 0x05, 0x00, 0x06, 0x00, 0x00, 0xBE, 0xBA, 0xFE, 0xCA, 0xEA, 0x4F, 0x10,
        0x00, 0x00, 0x18, 0x00, 0x0F, 0x20, 0xC0, 0x24, 0xFE, 0x0F, 0x22, 0xC0, 0xEA, 0x5C, 0x10,
        0x00, 0x00, 0xB8, 0x50, 0x00, 0x8E, 0xD8, 0x31, 0xC0, 0x8E, 0xD0, 0x66, 0x8B, 0x0E, 0x00,
        0x01, 0xF4, 0x89, 0xC3, 0x83, 0xC3, 0x01, 0xCF, 0xBE, 0x77, 0x00, 0xCB, 0x90, 0x90, 0x90,
        0x1F, 0x00, 0x80, 0x10, 0x00, 0x00, 0x90, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x93,
        0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0x00, 0x00,
    ];

    // bits 16
    // mov word [6*4], udh
    // mov word [6*4+2], 0
    // lar ax, bx
    // mov cx, 1
    // udh:
    // hlt
    const REAL_UD: &[u8] = &[
        0xC7, 0x06, 0x18, 0x00, 0x12, 0x10, 0xC7, 0x06, 0x1A, 0x00, 0x00, 0x00, 0x0F, 0x02, 0xC3,
        0xB9, 0x01, 0x00, 0xF4,
    ];

    // lgdt [gdtr]
    // mov ax, 0x10
    // mov es, ax
    // mov ax, 0x1B        ; conforming? no: a DPL3 code selector in FS stays (DPL 3 >= CPL 3)
    // mov fs, ax
    // push dword 0x23
    // push dword 0x2F000
    // push dword 0x1B
    // push dword ring3
    // retf
    // gdtr: dw gdt_end - gdt - 1
    //       dd gdt
    // align 8
    // gdt: dq 0
    //      dq 0x00CF9B000000FFFF
    //      dq 0x00CF93000000FFFF
    //      dq 0x00CFFB000000FFFF
    //      dq 0x00CFF3000000FFFF
    // gdt_end:
    // ring3:
    // mov eax, cs
    // mov ebx, ss
    // mov ecx, ds
    // mov edx, es
    // mov esi, esp
    // mov edi, fs
    // mov ebp, cr0
    const RING3: &[u8] = &[
        0x0F, 0x01, 0x15, 0x22, 0x10, 0x00, 0x00, 0x66, 0xB8, 0x10, 0x00, 0x8E, 0xC0, 0x66, 0xB8,
        0x1B, 0x00, 0x8E, 0xE0, 0x6A, 0x23, 0x68, 0x00, 0xF0, 0x02, 0x00, 0x6A, 0x1B, 0x68, 0x50,
        0x10, 0x00, 0x00, 0xCB, 0x27, 0x00, 0x28, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9B, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00,
        0x00, 0x93, 0xCF, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xFB, 0xCF, 0x00, 0xFF, 0xFF, 0x00,
        0x00, 0x00, 0xF3, 0xCF, 0x00, 0x8C, 0xC8, 0x8C, 0xD3, 0x8C, 0xD9, 0x8C, 0xC2, 0x89, 0xE6,
        0x8C, 0xE7, 0x0F, 0x20, 0xC5,
    ];

    // sgdt [0x10000]
    // sidt [0x10008]
    // o16 sgdt [0x10010]
    const SGDT: &[u8] = &[
        0x0F, 0x01, 0x05, 0x00, 0x00, 0x01, 0x00, 0x0F, 0x01, 0x0D, 0x08, 0x00, 0x01, 0x00, 0x66,
        0x0F, 0x01, 0x05, 0x10, 0x00, 0x01, 0x00,
    ];

    // push dword 0x40      ; gs
    // push dword 0x30      ; fs
    // push dword 0x20      ; ds
    // push dword 0x10      ; es
    // push dword 0x0200    ; ss
    // push dword 0x0FFE    ; esp
    // push dword 0x20002   ; eflags: VM, IOPL 0
    // push dword 0x0100    ; cs
    // push dword v86code - 0x1000
    // iretd
    // bits 16
    // v86code:
    // mov ax, cs
    // mov bx, ds
    // mov cx, ss
    // mov dx, sp
    // mov si, gs
    // int 0x21
    const V86: &[u8] = &[
        0x6A, 0x40, 0x6A, 0x30, 0x6A, 0x20, 0x6A, 0x10, 0x68, 0x00, 0x02, 0x00, 0x00, 0x68, 0xFE,
        0x0F, 0x00, 0x00, 0x68, 0x02, 0x00, 0x02, 0x00, 0x68, 0x00, 0x01, 0x00, 0x00, 0x68, 0x22,
        0x00, 0x00, 0x00, 0xCF, 0x8C, 0xC8, 0x8C, 0xDB, 0x8C, 0xD1, 0x89, 0xE2, 0x8C, 0xEE, 0xCD,
        0x21,
    ];

    // mov word [0x10000], target
    // mov word [0x10002], 0x08
    // o16 jmp far [0x10000]
    // mov eax, 1
    // target:
    // mov word [0x10000], target2
    // o16 call far [0x10000]
    // jmp done
    // target2:
    // movzx ebx, word [esp+2]
    // o16 retf
    // done:
    const FARM16: &[u8] = &[
        0x66, 0xC7, 0x05, 0x00, 0x00, 0x01, 0x00, 0x1E, 0x10, 0x66, 0xC7, 0x05, 0x02, 0x00, 0x01,
        0x00, 0x08, 0x00, 0x66, 0xFF, 0x2D, 0x00, 0x00, 0x01, 0x00, 0xB8, 0x01, 0x00, 0x00, 0x00,
        0x66, 0xC7, 0x05, 0x00, 0x00, 0x01, 0x00, 0x30, 0x10, 0x66, 0xFF, 0x1D, 0x00, 0x00, 0x01,
        0x00, 0xEB, 0x07, 0x0F, 0xB7, 0x5C, 0x24, 0x02, 0x66, 0xCB,
    ];

    #[test]
    fn mov_sreg_valid_and_stores() {
        let (end, s) = run(MOV_DS_VALID);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EBX], 0x10, "MOV r32,Sreg zero-extends");
        assert_eq!(word(&s.data, 0), 0x10, "MOV m16,ES");
    }

    #[test]
    fn mov_sreg_faults_carry_the_selector() {
        assert_eq!(run(MOV_DS_BEYOND).0, gp(0x18), "beyond the GDT limit");
        assert_eq!(run(MOV_DS_RPL).0, gp(0x10), "RPL 3 > DPL 0");
    }

    #[test]
    fn null_ds_loads_but_faults_on_use() {
        let (end, s) = run(MOV_DS_NULL);
        assert_eq!(end, gp(0));
        assert_eq!(s.gpr[EBX], 1, "the load itself did not fault");
    }

    #[test]
    fn null_ss_is_gp0() {
        assert_eq!(run(MOV_SS_NULL).0, gp(0));
    }

    #[test]
    fn mov_to_cs_and_pop_cs_are_ud() {
        // mov cs, ax
        assert_eq!(run(&[0x8E, 0xC8]).0, fault(UD, None));
        // ud2
        assert_eq!(run(&[0x0F, 0x0B]).0, fault(UD, None));
        // mov eax, cr1 / mov cr5, eax
        assert_eq!(run(&[0x0F, 0x20, 0xC8]).0, fault(UD, None));
        assert_eq!(run(&[0x0F, 0x22, 0xE8]).0, fault(UD, None));
    }

    #[test]
    fn push_pop_segment_registers() {
        // push ds; push es; pop fs; pop gs; mov eax, fs; mov ebx, gs;
        // o16 push ss; pop cx; mov edx, esp
        let code = [
            0x1E, 0x06, 0x0F, 0xA1, 0x0F, 0xA9, 0x8C, 0xE0, 0x8C, 0xEB, 0x66, 0x16, 0x66, 0x59,
            0x89, 0xE2,
        ];
        let (end, s) = run(&code);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0x10);
        assert_eq!(s.gpr[EBX], 0x10);
        assert_eq!(s.gpr[ECX] & 0xFFFF, 0x10);
        assert_eq!(s.gpr[EDX], 0x3_0000);
    }

    #[test]
    fn pop_ss_null_leaves_esp() {
        // push 0; pop ss
        let (end, s) = run(&[0x6A, 0x00, 0x17]);
        assert_eq!(end, gp(0));
        assert_eq!(s.gpr[ESP], 0x3_0000 - 4);
    }

    #[test]
    fn sgdt_sidt() {
        let (end, s) = run(SGDT);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(word(&s.data, 0), 23);
        assert_eq!(dword(&s.data, 2), 0x800);
        assert_eq!(word(&s.data, 8), 0);
        assert_eq!(dword(&s.data, 10), 0);
        assert_eq!(word(&s.data, 0x10), 23);
        assert_eq!(
            dword(&s.data, 0x12),
            0x800,
            "16-bit SGDT stores all 32 bits"
        );
    }

    #[test]
    fn lgdt_then_far_jumps() {
        let (end, s) = run(LGDT_FAR);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0x18);
        assert_eq!(s.gpr[EBX], 0x20);
        assert_eq!(s.gpr[ECX], 0x08, "JMP m16:32");
    }

    #[test]
    fn far_call_and_retf() {
        let (end, s) = run(FARCALL);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0x08, "CS pushed above EIP");
        assert_eq!(s.gpr[ECX], 0x1036, "return EIP of the CALL m16:32");
        assert_eq!(s.gpr[EBX], 1);
        assert_eq!(s.gpr[EDX], 0x3_0000, "RETF 4 released the argument");
        assert_eq!(s.gpr[EDI], 0x08, "16-bit CALL pushes a 16-bit CS");
        assert_eq!(s.gpr[EBP], 0x3_0000 - 8, "CALL m16:32");
        assert_eq!(s.gpr[ESP], 0x3_0000);
    }

    #[test]
    fn far_jump_to_bad_selectors() {
        // jmp 0x10:0x1000 (data segment)
        let (end, _) = run(&[0xEA, 0x00, 0x10, 0x00, 0x00, 0x10, 0x00]);
        assert_eq!(end, gp(0x10));
        // call 0x18:0x1000 (beyond the GDT): nothing pushed
        let (end, s) = run(&[0x9A, 0x00, 0x10, 0x00, 0x00, 0x18, 0x00]);
        assert_eq!(end, gp(0x18));
        assert_eq!(s.gpr[ESP], 0x3_0000);
        // jmp 0:0
        let (end, _) = run(&[0xEA, 0, 0, 0, 0, 0, 0]);
        assert_eq!(end, gp(0));
    }

    #[test]
    fn control_registers() {
        let (end, s) = run(CR0);
        assert_eq!(end, SnippetEnd::Done);
        let cr0 = s.gpr[EBX];
        assert_eq!(cr0 & (CR0_PE | CR0_ET), CR0_PE | CR0_ET);
        assert_eq!(s.gpr[ECX], cr0 | CR0_MP);
        assert_eq!(s.gpr[EDX], CR4_PSE);
        assert_eq!(s.gpr[ESI], 0x1234_5000);
        assert_eq!(s.gpr[EDI], 0x1234_5000);
        assert_eq!(run(CR0_PG).0, gp(0), "PG without PE");
        assert_eq!(run(CR0_NW).0, gp(0), "NW without CD");
        assert_eq!(run(CR4_PAE).0, gp(0), "PAE is not implemented");
    }

    #[test]
    fn lar_lsl_verr_verw_arpl() {
        let (end, s) = run(LARLSL);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EBX], 0x00C0_9B00);
        assert_eq!(s.gpr[EDX], 0xFFFF_FFFF);
        assert_eq!(s.gpr[ECX] & 0xFFFF, 0x0101, "ZF set by LAR and LSL");
        assert_eq!(s.gpr[ESI], 0x1234, "failed LAR/LSL leave the register");
        assert_eq!(&s.data[..7], &[1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(word(&s.data, 0x10), 0x13, "ARPL raised RPL in memory");
        assert_eq!(s.gpr[EAX] & 0xFFFF, 0x13);
        assert_eq!(s.gpr[EBP] & 0xFFFF, 0x9300, "16-bit LAR of 0x13");
    }

    #[test]
    fn int_without_idt_reports_gp() {
        assert_eq!(run(INT_NOIDT).0, gp(0x21 * 8 + 2));
    }

    #[test]
    fn interrupt_gates_int3_into_iret() {
        let (end, s) = run(IDT);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EAX] & 0xFF, 0x80, "handler set EAX, then 0x7F + 1");
        assert_eq!(dword(&s.data, 0) & IF, 0, "interrupt gate cleared IF");
        assert_eq!(s.gpr[EDX] & IF, IF, "EFLAGS image had IF");
        assert_eq!(dword(&s.data, 8) & IF, IF, "IRETD restored IF");
        assert_eq!(s.gpr[ECX], 0x08, "CS in the frame");
        assert_eq!(dword(&s.data, 0xC), dword(&s.data, 0x18), "INT3 frame EIP");
        assert_eq!(dword(&s.data, 0x10), 0x08);
        assert_eq!(dword(&s.data, 0x14), dword(&s.data, 0x1C), "INTO frame EIP");
    }

    #[test]
    fn retf_to_outer_ring_nulls_data_segments() {
        let (end, s) = run(RING3);
        assert_eq!(end, gp(0), "MOV from CR0 at CPL 3");
        assert_eq!(s.gpr[EAX], 0x1B);
        assert_eq!(s.gpr[EBX], 0x23);
        assert_eq!(s.gpr[ECX], 0, "DS (DPL 0) became null");
        assert_eq!(s.gpr[EDX], 0, "ES (DPL 0) became null");
        assert_eq!(s.gpr[ESI], 0x2_F000);
        assert_eq!(s.gpr[EDI], 0x1B, "FS (DPL 3) kept");
    }

    #[test]
    fn iret_to_outer_ring() {
        let (end, s) = run(IRET3);
        assert_eq!(end, gp(0), "LGDT at CPL 3");
        assert_eq!(s.gpr[EAX], 0x1B);
        assert_eq!(s.gpr[EBX], 0x23);
        assert_eq!(s.gpr[ECX], 0);
        assert_eq!(s.gpr[ESI], 0x2_F000);
        assert_eq!(s.eflags & IOPL, IOPL, "CPL 0 IRET loads IOPL");
        assert_eq!(s.eflags & IF, 0, "CLI at IOPL 3");
    }

    #[test]
    fn iret_to_v86() {
        let (end, s) = run(V86);
        assert_eq!(end, gp(0), "INT n at IOPL 0 in V86");
        assert_eq!(s.gpr[EAX] & 0xFFFF, 0x100);
        assert_eq!(s.gpr[EBX] & 0xFFFF, 0x20);
        assert_eq!(s.gpr[ECX] & 0xFFFF, 0x200);
        assert_eq!(s.gpr[EDX] & 0xFFFF, 0xFFE);
        assert_eq!(s.gpr[ESI] & 0xFFFF, 0x40);
        assert_eq!(s.eflags & VM, VM);
    }

    /// GDT at 0x10000: null, code, data, a 32-bit TSS (0x18) at 0x10100 and an LDT (0x20)
    /// at 0x10200 whose entry 1 (selector 0x0C) is data based at 0x100.
    fn tables() -> SnippetState {
        let mut s = SnippetState::default();
        let gdt: [u64; 5] = [
            0,
            0x00CF_9B00_0000_FFFF,
            0x00CF_9300_0000_FFFF,
            0x0000_8901_0100_0067,
            0x0000_8201_0200_0017,
        ];
        for (n, d) in gdt.iter().enumerate() {
            s.data[n * 8..n * 8 + 8].copy_from_slice(&d.to_le_bytes());
        }
        let ldt: [u64; 2] = [0, 0x00CF_9300_0100_FFFF];
        for (n, d) in ldt.iter().enumerate() {
            s.data[0x200 + n * 8..0x200 + n * 8 + 8].copy_from_slice(&d.to_le_bytes());
        }
        s.data[0x100..0x104].copy_from_slice(&0xABCD_1234u32.to_le_bytes());
        s
    }

    #[test]
    fn ltr_lldt_str_sldt() {
        let mut s = tables();
        let end = run_snippet32(LTR, &mut s);
        assert_eq!(end, gp(0x18), "LTR of a busy TSS");
        assert_eq!(s.gpr[EBX], 0x18);
        assert_eq!(s.gpr[ECX], 0x20);
        assert_eq!(s.gpr[EDX], 0x0C);
        assert_eq!(s.gpr[ESI], 0xABCD_1234, "FS from the LDT");
        assert_eq!(s.data[0x18 + 5], 0x8B, "the TSS is busy");
    }

    #[test]
    fn ltr_not_present_is_np() {
        let mut s = tables();
        s.data[0x18 + 5] = 0x09;
        assert_eq!(run_snippet32(LTR, &mut s), fault(NP, Some(0x18)));
        assert_eq!(s.gpr[EBX], 0, "nothing after the LTR ran");
    }

    #[test]
    fn msrs() {
        let (end, s) = run(MSR);
        assert_eq!(end, gp(0), "unknown MSR");
        assert!(s.gpr[ESI] < 10, "TSC counts instructions");
        assert_eq!(s.gpr[EBP], 1);
        assert!(s.gpr[EDI] >= 0x1000 && s.gpr[EDI] < 0x1010);
    }

    #[test]
    fn real_mode_int_far_call_and_pe_round_trip() {
        let cpu = run_real(REAL);
        assert_eq!(cpu.last_exception, None);
        let mut b = [0u8; 2];
        cpu.read_phys(0x500, &mut b);
        assert_eq!(
            u16::from_le_bytes(b),
            0x1235,
            "INT 21h handler ran and IRET returned"
        );
        assert_eq!(cpu.s.gpr[ESI] & 0xFFFF, 0x77, "far call");
        assert_eq!(cpu.s.gpr[EDI] & 0xFFFF, 0x70, "push/pop ES in real mode");
        assert_eq!(
            cpu.s.gpr[ECX], 0xCAFE_BABE,
            "PM store read back in real mode"
        );
        assert_eq!(cpu.s.gpr[ESP] & 0xFFFF, 0x8000);
        assert!(!cpu.s.protected());
        assert_eq!(cpu.s.seg[DS].base, 0x500);
        assert_eq!(cpu.s.seg[CS].selector, 0);
    }

    #[test]
    fn protection_probes_are_ud_in_real_mode() {
        let cpu = run_real(REAL_UD);
        assert_eq!(cpu.last_exception.map(|e| e.vector), Some(UD));
        assert_eq!(cpu.s.gpr[ECX] & 0xFFFF, 0);
    }

    #[test]
    fn far_jmp_and_call_through_m16_16() {
        let (end, s) = run(FARM16);
        assert_eq!(end, SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0, "JMP m16:16 skipped the MOV");
        assert_eq!(s.gpr[EBX], 0x08, "CALL m16:16 pushed a 16-bit CS");
        assert_eq!(s.gpr[ESP], 0x3_0000);
    }
}

#[cfg(test)]
mod gate_tests {
    //! Call gates, SYSENTER/SYSEXIT and their MSRs on the protected-mode test bed. Code
    //! bytes are hand-assembled; each line's comment is its source.

    use super::*;
    use crate::testbed::*;
    use crate::Exit;

    const HANDLER: u32 = 0x1_1000;
    const GP_HANDLER: u32 = 0x1_1800;
    /// Below 64 KiB, for 16-bit gates.
    const HANDLER16: u32 = 0x8800;
    const GATE32: u16 = 0x58;
    const GATE16: u16 = 0x60;

    fn bed() -> Bed {
        let mut b = Bed::new();
        b.desc(11, gate_desc(CODE0, HANDLER, 0xEC, 2));
        b.desc(12, gate_desc(CODE0, HANDLER16, 0xE4, 1));
        b.gate(13, CODE0, GP_HANDLER, INT_GATE);
        b.write(GP_HANDLER, &[0xF4]);
        b.write(HANDLER16, &[0xF4]);
        b
    }

    fn far(opcode: u8, sel: u16) -> Vec<u8> {
        let s = sel.to_le_bytes();
        vec![opcode, 0, 0, 0, 0, s[0], s[1]]
    }

    /// Runs from the current state and expects the fault `want` (no handler for it).
    fn expect_fault(b: &mut Bed, want: Exception) {
        b.gate(13, 0, 0, 0);
        assert_eq!(b.run(), Exit::Shutdown);
        assert_eq!(b.cpu.last_exception, Some(want));
    }

    #[test]
    fn call_gate_to_ring0_copies_parameters_and_retf_returns() {
        let mut b = bed();
        let mut code = vec![
            0x68, 0x11, 0x11, 0x11, 0x11, // push 0x11111111
            0x68, 0x22, 0x22, 0x22, 0x22, // push 0x22222222
        ];
        code.extend(far(0x9A, GATE32 | 3)); // call 0x5B:0
        code.push(0xFA); // cli (CPL 3, IOPL 0: #GP)
        b.write(CODE, &code);
        b.write(
            HANDLER,
            &[
                0xF4, // hlt
                0xB8, 0x10, 0x00, 0x00, 0x00, // mov eax, 0x10
                0x8E, 0xD8, // mov ds, ax
                0xCA, 0x08, 0x00, // retf 8
            ],
        );
        b.enter_ring3(CODE);
        b.run_to(HANDLER);
        let s = b.cpu.s.clone();
        assert_eq!((s.cpl, s.seg[SS].selector), (0, DATA0));
        assert_eq!(s.gpr[ESP], STACK0 - 24);
        let frame: Vec<u32> = (0..6).map(|n| b.r32(STACK0 - 24 + 4 * n)).collect();
        assert_eq!(
            frame,
            [
                CODE + 17,
                u32::from(CODE3),
                0x2222_2222,
                0x1111_1111,
                STACK3 - 8,
                u32::from(DATA3)
            ]
        );
        // RETF 8 back to ring 3, which then faults on CLI.
        b.cpu.s.halted = false;
        b.run_to(GP_HANDLER);
        assert_eq!(b.r32(STACK0 - 20), CODE + 17, "back after the CALL");
        assert_eq!(b.r32(STACK0 - 8), STACK3, "RETF 8 released the parameters");
        assert_eq!(
            b.cpu.s.seg[DS].selector, 0,
            "DS (DPL 0) nulled on the way out"
        );
        assert!(!b.cpu.s.seg[DS].usable);
        assert_eq!(b.cpu.s.seg[ES].selector, DATA3, "ES (DPL 3) kept");
    }

    #[test]
    fn sixteen_bit_call_gate_copies_words() {
        let mut b = bed();
        let mut code = vec![0x66, 0x68, 0x33, 0x33]; // push word 0x3333
        code.extend(far(0x9A, GATE16 | 3)); // call 0x63:0
        b.write(CODE, &code);
        b.enter_ring3(CODE);
        b.run_to(HANDLER16);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0 - 10);
        let frame: Vec<u32> = (0..5).map(|n| b.r16(STACK0 - 10 + 2 * n)).collect();
        assert_eq!(
            frame,
            [
                (CODE + 11) & 0xFFFF,
                u32::from(CODE3),
                0x3333,
                (STACK3 - 2) & 0xFFFF,
                u32::from(DATA3)
            ]
        );
        assert_eq!(b.cpu.s.eip, HANDLER16 + 1);
    }

    #[test]
    fn jmp_and_call_through_a_gate_at_the_same_privilege() {
        let mut b = bed();
        b.write(CODE, &far(0xEA, GATE32)); // jmp 0x58:0
        b.write(HANDLER, &[0xF4]);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0, "JMP pushes nothing");
        // A call to a conforming segment from ring 3: no stack switch, CPL stays 3.
        let mut b = bed();
        b.desc(11, gate_desc(CONFORMING0, HANDLER, 0xEC, 2));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        // The handler: cli (#GP at CPL 3 shows the ring it runs in).
        b.write(HANDLER, &[0xFA]);
        b.enter_ring3(CODE);
        b.run_to(GP_HANDLER);
        assert_eq!(
            b.r32(STACK0 - 16),
            u32::from(CONFORMING0 | 3),
            "CS of the handler"
        );
        assert_eq!(b.r32(STACK0 - 8), STACK3 - 8, "CS:EIP on the ring-3 stack");
        assert_eq!(b.r32(STACK3 - 8), CODE + 7);
        assert_eq!(b.r32(STACK3 - 4), u32::from(CODE3));
    }

    #[test]
    fn call_gate_in_the_ldt() {
        let mut b = bed();
        b.desc(13, seg_desc(LDT, 0xF, 0x82, 0));
        b.write(LDT + 8, &gate_desc(CODE0, HANDLER, 0xEC, 0).to_le_bytes());
        b.cpu.s.ldtr = crate::seg::Descriptor {
            lo: seg_desc(LDT, 0xF, 0x82, 0) as u32,
            hi: (seg_desc(LDT, 0xF, 0x82, 0) >> 32) as u32,
        }
        .to_segment(0x68);
        b.write(CODE, &far(0x9A, 0x0F)); // call 0x0F:0 (LDT entry 1, RPL 3)
        b.write(HANDLER, &[0xF4]);
        b.enter_ring3(CODE);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.cpl, 0);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0 - 16);
    }

    #[test]
    fn call_gate_faults() {
        // JMP through a gate cannot raise the privilege: #GP(code selector).
        let mut b = bed();
        b.write(CODE, &far(0xEA, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::gp(u32::from(CODE0)));
        // Gate DPL 0 < CPL 3.
        let mut b = bed();
        b.desc(11, gate_desc(CODE0, HANDLER, 0x8C, 0));
        b.write(CODE, &far(0x9A, GATE32));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::gp(u32::from(GATE32)));
        // Gate DPL 0 < RPL 3 at CPL 0.
        let mut b = bed();
        b.desc(11, gate_desc(CODE0, HANDLER, 0x8C, 0));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        expect_fault(&mut b, Exception::gp(u32::from(GATE32)));
        // Gate not present.
        let mut b = bed();
        b.desc(11, gate_desc(CODE0, HANDLER, 0x6C, 0));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::np(u32::from(GATE32)));
        // Target segment not present.
        let mut b = bed();
        b.desc(14, seg_desc(0, 0xFFFFF, 0x1A, 0xC));
        b.desc(11, gate_desc(0x70, HANDLER, 0xEC, 0));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::np(0x70));
        // A null target selector.
        let mut b = bed();
        b.desc(11, gate_desc(0, HANDLER, 0xEC, 0));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::gp(0));
        // The inner stack: SS0 not present, then too small for the frame.
        let mut b = bed();
        b.desc(2, seg_desc(0, 0xFFFFF, 0x12, 0xC));
        b.write(CODE, &far(0x9A, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::ss(u32::from(DATA0)));
        let mut b = bed();
        b.w32(TSS + 4, 20); // 24 bytes needed: SS, ESP, 2 parameters, CS, EIP
        b.write(CODE, &far(0x9A, GATE32 | 3));
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::ss(u32::from(DATA0)));
        assert_eq!(b.cpu.s.cpl, 3, "nothing changed");
        assert_eq!(b.cpu.s.gpr[ESP], STACK3);
    }

    #[test]
    fn sysenter_and_sysexit_round_trip() {
        let mut b = bed();
        b.cpu.s.sysenter_cs = u32::from(CODE0);
        b.cpu.s.sysenter_esp = STACK0 - 0x100;
        b.cpu.s.sysenter_eip = HANDLER;
        b.write(CODE, &[0x0F, 0x34, 0xFA]); // sysenter; cli
        b.write(
            HANDLER,
            &[
                0xF4, // hlt
                0xB9, 0x00, 0x80, 0x00, 0x00, // mov ecx, 0x8000
                0xBA, 0x02, 0x00, 0x01, 0x00, // mov edx, CODE + 2
                0x0F, 0x35, // sysexit
            ],
        );
        b.enter_ring3(CODE);
        b.cpu.set_eflags(IF, IF);
        b.run_to(HANDLER);
        let s = b.cpu.s.clone();
        assert_eq!(
            (s.cpl, s.seg[CS].selector, s.seg[SS].selector),
            (0, CODE0, DATA0)
        );
        assert_eq!(s.gpr[ESP], STACK0 - 0x100);
        assert_eq!(s.eflags & IF, 0);
        assert_eq!(s.seg[CS].limit, u32::MAX);
        b.cpu.s.halted = false;
        b.run_to(GP_HANDLER);
        assert_eq!(
            b.r32(STACK0 - 20),
            CODE + 2,
            "the CLI after SYSENTER, at ring 3"
        );
        assert_eq!(
            b.r32(STACK0 - 16),
            u32::from(CODE3),
            "CS = SYSENTER_CS + 16, RPL 3"
        );
        assert_eq!(b.r32(STACK0 - 8), 0x8000, "ESP = ECX");
        assert_eq!(
            b.r32(STACK0 - 4),
            u32::from(DATA3),
            "SS = SYSENTER_CS + 24, RPL 3"
        );
    }

    #[test]
    fn sysenter_and_sysexit_faults() {
        let mut b = bed();
        b.write(CODE, &[0x0F, 0x34]);
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::gp(0));
        let mut b = bed();
        b.cpu.s.sysenter_cs = u32::from(CODE0);
        b.write(CODE, &[0x0F, 0x35]);
        b.enter_ring3(CODE);
        expect_fault(&mut b, Exception::gp(0));
        let mut b = bed();
        b.write(CODE, &[0x0F, 0x35]);
        expect_fault(&mut b, Exception::gp(0));
        // Real mode: SYSENTER is #GP(0) whatever the MSRs say.
        let mut b = bed();
        b.cpu.s.sysenter_cs = u32::from(CODE0);
        b.cpu.s.cr0 &= !CR0_PE;
        b.write(CODE, &[0x0F, 0x34]);
        b.cpu.step(&mut b.bus);
        assert_eq!(b.cpu.last_exception, Some(Exception::gp(0)));
    }

    #[test]
    fn sysenter_msrs_read_back() {
        let mut b = bed();
        b.write(
            CODE,
            &[
                0xB9, 0x74, 0x01, 0x00, 0x00, // mov ecx, 0x174
                0xB8, 0x08, 0x00, 0x00, 0x00, // mov eax, 8
                0x31, 0xD2, // xor edx, edx
                0x0F, 0x30, // wrmsr
                0x41, // inc ecx
                0xB8, 0x00, 0x70, 0x00, 0x00, // mov eax, 0x7000
                0x0F, 0x30, // wrmsr
                0x41, // inc ecx
                0xB8, 0x00, 0x10, 0x01, 0x00, // mov eax, 0x11000
                0x0F, 0x30, // wrmsr
                0xB9, 0x74, 0x01, 0x00, 0x00, // mov ecx, 0x174
                0x0F, 0x32, // rdmsr
                0x89, 0xC3, // mov ebx, eax
                0xF4, // hlt
            ],
        );
        b.run_to(CODE + 39);
        let s = &b.cpu.s;
        assert_eq!(
            (s.sysenter_cs, s.sysenter_esp, s.sysenter_eip),
            (8, 0x7000, HANDLER)
        );
        assert_eq!(s.gpr[EBX], 8);
        assert_eq!(s.gpr[EDX], 0);
    }
}
