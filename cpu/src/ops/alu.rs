//! Two-operand arithmetic and logic (ADD OR ADC SBB AND SUB XOR CMP TEST), INC, DEC,
//! NEG, NOT.

use iced_x86::{Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::Result;
use crate::flags::FlagOp;
use crate::mem::RamAccess;
use crate::translate::{gpr, width};
use crate::{by_width, Bus, Cpu};

/// One binary ALU operation: computes the result and records the flags.
pub trait AluOp: 'static {
    /// CMP and TEST only set flags.
    const WRITES: bool = true;
    fn apply<W: RamAccess>(cpu: &mut Cpu, a: u32, b: u32) -> u32;
}

macro_rules! alu_op {
    ($name:ident, $flag:expr, |$cpu:ident, $a:ident, $b:ident| $e:expr $(, writes = $w:expr)?) => {
        pub struct $name;
        impl AluOp for $name {
            $(const WRITES: bool = $w;)?
            #[inline(always)]
            fn apply<W: RamAccess>($cpu: &mut Cpu, $a: u32, $b: u32) -> u32 {
                let r = ($e) & W::MASK;
                $cpu.s.lazy.set($flag, W::BITS as u8, $a, $b, r);
                r
            }
        }
    };
}

alu_op!(Add, FlagOp::Add, |_cpu, a, b| a.wrapping_add(b));
alu_op!(Or, FlagOp::Logic, |_cpu, a, b| a | b);
alu_op!(Adc, FlagOp::Adc, |cpu, a, b| a
    .wrapping_add(b)
    .wrapping_add(u32::from(cpu.s.lazy.cf())));
alu_op!(Sbb, FlagOp::Sbb, |cpu, a, b| a
    .wrapping_sub(b)
    .wrapping_sub(u32::from(cpu.s.lazy.cf())));
alu_op!(And, FlagOp::Logic, |_cpu, a, b| a & b);
alu_op!(Sub, FlagOp::Sub, |_cpu, a, b| a.wrapping_sub(b));
alu_op!(Xor, FlagOp::Logic, |_cpu, a, b| a ^ b);
alu_op!(
    Cmp,
    FlagOp::Sub,
    |_cpu, a, b| a.wrapping_sub(b),
    writes = false
);
alu_op!(Test, FlagOp::Logic, |_cpu, a, b| a & b, writes = false);

/// `op r, r`: r = destination register, rm = source register.
fn rr<W: RamAccess, O: AluOp>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let a = W::get(&cpu.s, op.r);
    let b = W::get(&cpu.s, op.rm);
    let r = O::apply::<W>(cpu, a, b);
    if O::WRITES {
        W::set(&mut cpu.s, op.r, r);
    }
    Ok(())
}

/// `op r, imm`.
fn ri<W: RamAccess, O: AluOp>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let a = W::get(&cpu.s, op.r);
    let r = O::apply::<W>(cpu, a, op.imm & W::MASK);
    if O::WRITES {
        W::set(&mut cpu.s, op.r, r);
    }
    Ok(())
}

/// `op r, [m]`.
fn rm<W: RamAccess, O: AluOp>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let b = cpu.read_op::<W>(bus, op)?;
    let a = W::get(&cpu.s, op.r);
    let r = O::apply::<W>(cpu, a, b);
    if O::WRITES {
        W::set(&mut cpu.s, op.r, r);
    }
    Ok(())
}

/// `op [m], r`. The flags are recorded before the store, which is harmless: a faulting
/// store restarts the instruction, which records them again.
fn mr<W: RamAccess, O: AluOp>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let a = cpu.read::<W>(bus, op.seg(), ea)?;
    let saved = cpu.s.lazy;
    let r = O::apply::<W>(cpu, a, W::get(&cpu.s, op.r));
    if O::WRITES {
        if let Err(e) = cpu.write::<W>(bus, op.seg(), ea, r) {
            cpu.s.lazy = saved;
            return Err(e);
        }
    }
    Ok(())
}

/// `op [m], imm`.
fn mi<W: RamAccess, O: AluOp>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let a = cpu.read::<W>(bus, op.seg(), ea)?;
    let saved = cpu.s.lazy;
    let r = O::apply::<W>(cpu, a, op.imm & W::MASK);
    if O::WRITES {
        if let Err(e) = cpu.write::<W>(bus, op.seg(), ea, r) {
            cpu.s.lazy = saved;
            return Err(e);
        }
    }
    Ok(())
}

/// `xor r, r` / `sub r, r`: the zeroing idiom, common enough to skip the reads.
fn zero<W: RamAccess, O: AluOp>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let r = O::apply::<W>(cpu, 0, 0);
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

/// INC/DEC/NEG/NOT on a register (`K` selects: 0 inc, 1 dec, 2 neg, 3 not; a constant so
/// each form compiles to its own straight-line handler).
fn unary_r<W: RamAccess, const K: u8>(cpu: &mut Cpu, _: &mut dyn Bus, op: &Op) -> Result<()> {
    let a = W::get(&cpu.s, op.r);
    let r = unary::<W>(cpu, K, a);
    W::set(&mut cpu.s, op.r, r);
    Ok(())
}

fn unary_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let a = cpu.read::<W>(bus, op.seg(), ea)?;
    let saved = cpu.s.lazy;
    let r = unary::<W>(cpu, op.x, a);
    if let Err(e) = cpu.write::<W>(bus, op.seg(), ea, r) {
        cpu.s.lazy = saved;
        return Err(e);
    }
    Ok(())
}

#[inline(always)]
fn unary<W: RamAccess>(cpu: &mut Cpu, kind: u8, a: u32) -> u32 {
    let w = W::BITS as u8;
    match kind {
        0 => {
            let r = a.wrapping_add(1) & W::MASK;
            cpu.s.lazy.set_incdec(true, w, a, r);
            r
        }
        1 => {
            let r = a.wrapping_sub(1) & W::MASK;
            cpu.s.lazy.set_incdec(false, w, a, r);
            r
        }
        2 => {
            let r = 0u32.wrapping_sub(a) & W::MASK;
            cpu.s.lazy.set(FlagOp::Sub, w, 0, a, r);
            r
        }
        _ => !a & W::MASK,
    }
}

fn binary<O: AluOp>(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let w = width(i, 0);
    Some(match (i.op_kind(0), i.op_kind(1)) {
        (OpKind::Register, OpKind::Register) => {
            op.r = gpr(i.op0_register());
            op.rm = gpr(i.op1_register());
            let m = i.mnemonic();
            if op.r == op.rm && (m == Mnemonic::Xor || m == Mnemonic::Sub) {
                by_width!(w, zero, O)
            } else {
                by_width!(w, rr, O)
            }
        }
        (OpKind::Register, OpKind::Memory) => {
            op.r = gpr(i.op0_register());
            by_width!(w, rm, O)
        }
        (OpKind::Memory, OpKind::Register) => {
            op.r = gpr(i.op1_register());
            by_width!(w, mr, O)
        }
        (OpKind::Register, _) => {
            op.r = gpr(i.op0_register());
            by_width!(w, ri, O)
        }
        (OpKind::Memory, _) => by_width!(w, mi, O),
        _ => return None,
    })
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let unary_kind = match i.mnemonic() {
        Mnemonic::Add => return binary::<Add>(i, op),
        Mnemonic::Or => return binary::<Or>(i, op),
        Mnemonic::Adc => return binary::<Adc>(i, op),
        Mnemonic::Sbb => return binary::<Sbb>(i, op),
        Mnemonic::And => return binary::<And>(i, op),
        Mnemonic::Sub => return binary::<Sub>(i, op),
        Mnemonic::Xor => return binary::<Xor>(i, op),
        Mnemonic::Cmp => return binary::<Cmp>(i, op),
        Mnemonic::Test => return binary::<Test>(i, op),
        Mnemonic::Inc => 0,
        Mnemonic::Dec => 1,
        Mnemonic::Neg => 2,
        Mnemonic::Not => 3,
        _ => return None,
    };
    op.x = unary_kind;
    let w = width(i, 0);
    Some(if i.op_kind(0) == OpKind::Register {
        op.r = gpr(i.op0_register());
        macro_rules! k {
            ($k:expr) => {
                by_width!(w, unary_r, { $k })
            };
        }
        match unary_kind {
            0 => k!(0),
            1 => k!(1),
            2 => k!(2),
            _ => k!(3),
        }
    } else {
        by_width!(w, unary_m)
    })
}
