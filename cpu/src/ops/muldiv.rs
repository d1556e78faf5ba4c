//! (not yet implemented)

use iced_x86::Instruction;

use crate::block::{Handler, Op};

pub fn select(_i: &Instruction, _op: &mut Op) -> Option<Handler> {
    None
}
