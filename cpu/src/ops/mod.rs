//! Instruction groups. Each module recognises its mnemonics in `select`, fills the op's
//! group-specific fields and returns the handler for the form and width.

use iced_x86::Instruction;

use crate::block::{Handler, Op};

pub mod alu;
pub mod bcd;
pub mod bits;
pub mod branch;
pub mod io;
pub mod misc;
pub mod mov;
pub mod muldiv;
pub mod shift;
pub mod stack;
pub mod string;
pub mod system;

type Select = fn(&Instruction, &mut Op) -> Option<Handler>;

/// The groups in the order they are asked; a mnemonic belongs to exactly one.
const GROUPS: &[Select] = &[
    mov::select,
    alu::select,
    branch::select,
    stack::select,
    shift::select,
    muldiv::select,
    bits::select,
    bcd::select,
    string::select,
    io::select,
    misc::select,
    system::select,
];

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    GROUPS.iter().find_map(|g| g(i, op))
}
