//! Data movement between registers and memory: MOV, MOVZX, MOVSX, LEA, XCHG, CBW/CWDE,
//! CWD/CDQ, NOP.

use iced_x86::{Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::Result;
use crate::mem::RamAccess;
use crate::state::{EAX, EDX};
use crate::translate::{gpr, width};
use crate::width::{Width, W16, W32, W8};
use crate::{by_width, Bus, Cpu};

fn rr<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = W::get(&cpu.s, op.rm);
    W::set(&mut cpu.s, op.r, v);
    Ok(())
}

fn ri<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    W::set(&mut cpu.s, op.r, op.imm);
    Ok(())
}

fn rm<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = cpu.read_op::<W>(bus, op)?;
    W::set(&mut cpu.s, op.r, v);
    Ok(())
}

fn mr<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = W::get(&cpu.s, op.r);
    cpu.write_op::<W>(bus, op, v)
}

fn mi<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    cpu.write_op::<W>(bus, op, op.imm & W::MASK)
}

/// MOVZX/MOVSX: source width `S`, destination width `D`; `x` = 1 for sign extension.
fn ext_r<S: RamAccess, D: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = S::get(&cpu.s, op.rm);
    let v = if op.x != 0 { S::sext(v) } else { v };
    D::set(&mut cpu.s, op.r, v);
    Ok(())
}

fn ext_m<S: RamAccess, D: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = cpu.read_op::<S>(bus, op)?;
    let v = if op.x != 0 { S::sext(v) } else { v };
    D::set(&mut cpu.s, op.r, v);
    Ok(())
}

fn lea<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    W::set(&mut cpu.s, op.r, ea);
    Ok(())
}

fn xchg_rr<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let a = W::get(&cpu.s, op.r);
    let b = W::get(&cpu.s, op.rm);
    W::set(&mut cpu.s, op.r, b);
    W::set(&mut cpu.s, op.rm, a);
    Ok(())
}

fn xchg_rm<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let m = cpu.read::<W>(bus, op.seg(), ea)?;
    cpu.write::<W>(bus, op.seg(), ea, W::get(&cpu.s, op.r))?;
    W::set(&mut cpu.s, op.r, m);
    Ok(())
}

/// CBW / CWDE: sign-extend the low half of the accumulator into all of it.
fn widen_acc<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let v = cpu.s.gpr[EAX];
    let r = if W::BITS == 16 {
        W8::sext(v & 0xFF)
    } else {
        W16::sext(v & 0xFFFF)
    };
    W::set(&mut cpu.s, EAX as u8, r);
    Ok(())
}

/// CWD / CDQ: the accumulator's sign into DX / EDX.
fn sign_to_dx<W: RamAccess>(cpu: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    let neg = W::get(&cpu.s, EAX as u8) & W::SIGN != 0;
    W::set(&mut cpu.s, EDX as u8, if neg { W::MASK } else { 0 });
    Ok(())
}

pub(crate) fn nop(_: &mut Cpu, _: &mut dyn Bus, _: &Op) -> Result<()> {
    Ok(())
}

fn is_gpr(i: &Instruction, n: u32) -> bool {
    i.op_kind(n) == OpKind::Register && i.op_register(n).is_gpr()
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let w = width(i, 0);
    match i.mnemonic() {
        Mnemonic::Mov => {
            if !(is_gpr(i, 0) || i.op_kind(0) == OpKind::Memory) {
                return None; // segment, control and debug registers: the system group
            }
            Some(match (i.op_kind(0), i.op_kind(1)) {
                (OpKind::Register, OpKind::Register) if is_gpr(i, 1) => {
                    op.r = gpr(i.op0_register());
                    op.rm = gpr(i.op1_register());
                    by_width!(w, rr)
                }
                (OpKind::Register, OpKind::Memory) => {
                    op.r = gpr(i.op0_register());
                    by_width!(w, rm)
                }
                (OpKind::Memory, OpKind::Register) if is_gpr(i, 1) => {
                    op.r = gpr(i.op1_register());
                    by_width!(w, mr)
                }
                (OpKind::Register, _) if i.op_kind(1) != OpKind::Register => {
                    op.r = gpr(i.op0_register());
                    by_width!(w, ri)
                }
                (OpKind::Memory, k) if k != OpKind::Register => by_width!(w, mi),
                _ => return None,
            })
        }
        Mnemonic::Movzx | Mnemonic::Movsx => {
            op.x = u8::from(i.mnemonic() == Mnemonic::Movsx);
            op.r = gpr(i.op0_register());
            let sw = width(i, 1);
            let reg = i.op_kind(1) == OpKind::Register;
            if reg {
                op.rm = gpr(i.op1_register());
            }
            Some(match (sw, w, reg) {
                (8, 16, true) => ext_r::<W8, W16>,
                (8, 16, false) => ext_m::<W8, W16>,
                (8, _, true) => ext_r::<W8, W32>,
                (8, _, false) => ext_m::<W8, W32>,
                (16, 16, true) => ext_r::<W16, W16>,
                (16, 16, false) => ext_m::<W16, W16>,
                (_, _, true) => ext_r::<W16, W32>,
                (_, _, false) => ext_m::<W16, W32>,
            })
        }
        Mnemonic::Lea => {
            if i.op_kind(1) != OpKind::Memory {
                return None;
            }
            op.r = gpr(i.op0_register());
            Some(by_width!(w, lea))
        }
        Mnemonic::Xchg => Some(match (i.op_kind(0), i.op_kind(1)) {
            (OpKind::Register, OpKind::Register) => {
                op.r = gpr(i.op0_register());
                op.rm = gpr(i.op1_register());
                by_width!(w, xchg_rr)
            }
            (OpKind::Memory, OpKind::Register) => {
                op.r = gpr(i.op1_register());
                by_width!(w, xchg_rm)
            }
            (OpKind::Register, OpKind::Memory) => {
                op.r = gpr(i.op0_register());
                by_width!(w, xchg_rm)
            }
            _ => return None,
        }),
        Mnemonic::Cbw => Some(widen_acc::<W16>),
        Mnemonic::Cwde => Some(widen_acc::<W32>),
        Mnemonic::Cwd => Some(sign_to_dx::<W16>),
        Mnemonic::Cdq => Some(sign_to_dx::<W32>),
        Mnemonic::Nop => Some(nop),
        _ => None,
    }
}
