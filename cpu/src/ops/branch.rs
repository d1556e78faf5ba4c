//! Near control transfers: JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JCXZ/JECXZ.
//!
//! Relative targets are kept relative (`imm` = target - next EIP): the same physical code
//! reached through another CS base runs the same block. `imm2` is the operand-size mask
//! that EIP wraps to.

use iced_x86::{Code, Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::mem::RamAccess;
use crate::state::{CS, ECX};
use crate::translate::{gpr, width};
use crate::width::{W16, W32};
use crate::{by_width_16_32, Bus, Cpu};

/// Sets EIP, with the CS limit check every transfer makes.
#[inline(always)]
pub fn jump_to(cpu: &mut Cpu, target: u32) -> Result<()> {
    if target > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    cpu.s.eip = target;
    Ok(())
}

fn jmp_rel(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    jump_to(cpu, cpu.s.eip.wrapping_add(op.imm) & op.imm2)
}

/// One handler per condition, so the condition folds into the flag evaluation.
fn jcc<const CC: u8>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    if cpu.s.lazy.cond(CC) {
        jump_to(cpu, cpu.s.eip.wrapping_add(op.imm) & op.imm2)
    } else {
        Ok(())
    }
}

fn jmp_r<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    jump_to(cpu, W::get(&cpu.s, op.r))
}

fn jmp_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let t = cpu.read_op::<W>(bus, op)?;
    jump_to(cpu, t)
}

fn call_rel<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ret = cpu.s.eip;
    let target = ret.wrapping_add(op.imm) & W::MASK;
    if target > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    cpu.push::<W>(bus, ret)?;
    cpu.s.eip = target;
    Ok(())
}

fn call_r<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let target = W::get(&cpu.s, op.r);
    if target > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    cpu.push::<W>(bus, cpu.s.eip)?;
    cpu.s.eip = target;
    Ok(())
}

fn call_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let target = cpu.read_op::<W>(bus, op)?;
    if target > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    cpu.push::<W>(bus, cpu.s.eip)?;
    cpu.s.eip = target;
    Ok(())
}

/// RET / RET imm16 (`imm` bytes released after the pop).
fn ret<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let target = cpu.stack_peek::<W>(bus, 0)?;
    if target > cpu.s.seg[CS].limit {
        return Err(Exception::gp(0));
    }
    let esp = cpu.s.gpr[crate::state::ESP];
    cpu.set_esp(esp.wrapping_add(W::BYTES).wrapping_add(op.imm));
    cpu.s.eip = target;
    Ok(())
}

/// LOOP family and JCXZ. `x`: 0 loop, 1 loope, 2 loopne, 3 jcxz; `rm` is 16 or 32: the
/// counter width (address size).
fn loop_<C: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let mut c = C::get(&cpu.s, ECX as u8);
    let take = if op.x == 3 {
        c == 0
    } else {
        c = c.wrapping_sub(1) & C::MASK;
        C::set(&mut cpu.s, ECX as u8, c);
        c != 0
            && match op.x {
                1 => cpu.s.lazy.zf(),
                2 => !cpu.s.lazy.zf(),
                _ => true,
            }
    };
    if take {
        jump_to(cpu, cpu.s.eip.wrapping_add(op.imm) & op.imm2)
    } else {
        Ok(())
    }
}

fn rel(i: &Instruction, op: &mut Op) -> bool {
    match i.op_kind(0) {
        OpKind::NearBranch16 | OpKind::NearBranch32 => {
            let sixteen = i.op_kind(0) == OpKind::NearBranch16;
            op.imm2 = if sixteen { 0xFFFF } else { 0xFFFF_FFFF };
            op.imm = (i.near_branch_target() as u32).wrapping_sub(i.next_ip32());
            true
        }
        _ => false,
    }
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    // By size alone a far pointer m16:16 (4 bytes) looks like a near m32 target: the far
    // forms are told apart by their code and left to the system group.
    let near_mem = |i: &Instruction| {
        i.op_kind(0) == OpKind::Memory
            && !i.is_jmp_far_indirect()
            && !i.is_call_far_indirect()
            && matches!(i.memory_size().size(), 2 | 4)
    };
    match i.mnemonic() {
        Mnemonic::Jmp => {
            if rel(i, op) {
                return Some(jmp_rel);
            }
            match i.op_kind(0) {
                OpKind::Register => {
                    op.r = gpr(i.op0_register());
                    Some(by_width_16_32!(width(i, 0), jmp_r))
                }
                OpKind::Memory if near_mem(i) => Some(by_width_16_32!(width(i, 0), jmp_m)),
                _ => None,
            }
        }
        Mnemonic::Call => {
            if rel(i, op) {
                return Some(if op.imm2 == 0xFFFF {
                    call_rel::<W16>
                } else {
                    call_rel::<W32>
                });
            }
            match i.op_kind(0) {
                OpKind::Register => {
                    op.r = gpr(i.op0_register());
                    Some(by_width_16_32!(width(i, 0), call_r))
                }
                OpKind::Memory if near_mem(i) => Some(by_width_16_32!(width(i, 0), call_m)),
                _ => None,
            }
        }
        Mnemonic::Ret => {
            op.imm = if i.op_count() > 0 {
                u32::from(i.immediate16())
            } else {
                0
            };
            Some(if matches!(i.code(), Code::Retnw | Code::Retnw_imm16) {
                ret::<W16>
            } else {
                ret::<W32>
            })
        }
        _ if i.is_jcc_short_or_near() => {
            op.x = cc_number(i);
            rel(i, op);
            Some(JCC[usize::from(op.x)])
        }
        Mnemonic::Loop | Mnemonic::Loope | Mnemonic::Loopne | Mnemonic::Jcxz | Mnemonic::Jecxz => {
            op.x = match i.mnemonic() {
                Mnemonic::Loop => 0,
                Mnemonic::Loope => 1,
                Mnemonic::Loopne => 2,
                _ => 3,
            };
            rel(i, op);
            let cx16 = matches!(
                i.code(),
                Code::Loop_rel8_16_CX
                    | Code::Loop_rel8_32_CX
                    | Code::Loope_rel8_16_CX
                    | Code::Loope_rel8_32_CX
                    | Code::Loopne_rel8_16_CX
                    | Code::Loopne_rel8_32_CX
                    | Code::Jcxz_rel8_16
                    | Code::Jcxz_rel8_32
            );
            Some(if cx16 { loop_::<W16> } else { loop_::<W32> })
        }
        _ => None,
    }
}

const JCC: [Handler; 16] = [
    jcc::<0>, jcc::<1>, jcc::<2>, jcc::<3>, jcc::<4>, jcc::<5>, jcc::<6>, jcc::<7>, jcc::<8>,
    jcc::<9>, jcc::<10>, jcc::<11>, jcc::<12>, jcc::<13>, jcc::<14>, jcc::<15>,
];

/// The condition nibble of a Jcc/SETcc/CMOVcc (0 = O, 1 = NO, 2 = B, ... 0xF = G).
pub fn cc_number(i: &Instruction) -> u8 {
    use iced_x86::ConditionCode as C;
    match i.condition_code() {
        C::o => 0,
        C::no => 1,
        C::b => 2,
        C::ae => 3,
        C::e => 4,
        C::ne => 5,
        C::be => 6,
        C::a => 7,
        C::s => 8,
        C::ns => 9,
        C::p => 10,
        C::np => 11,
        C::l => 12,
        C::ge => 13,
        C::le => 14,
        C::g => 15,
        C::None => 0,
    }
}
