//! The x87 floating-point unit.
//!
//! ```text
//!  control word  15  12 11 10 9  8  7 6  5  4  3  2  1  0
//!               ┌─────┬─────┬────┬───┬──┬──┬──┬──┬──┬──┐
//!               │ IC  │ RC  │ PC │   │PM│UM│OM│ZM│DM│IM│   masks: 1 = masked
//!               └─────┴─────┴────┴───┴──┴──┴──┴──┴──┴──┘
//!  status word   15 14 13..11 10  9  8  7  6  5  4  3  2  1  0
//!               ┌──┬──┬──────┬──┬──┬──┬──┬──┬──┬──┬──┬──┬──┬──┐
//!               │B │C3│ TOP  │C2│C1│C0│ES│SF│PE│UE│OE│ZE│DE│IE│
//!               └──┴──┴──────┴──┴──┴──┴──┴──┴──┴──┴──┴──┴──┴──┘
//!  tag word      two bits per physical register R7..R0: 00 valid, 01 zero,
//!                10 special (NaN, ∞, denormal, unsupported), 11 empty
//!  ST(i) = R[(TOP + i) mod 8]; a push decrements TOP.
//! ```
//!
//! An exception whose flag is set while unmasked sets ES (and B): the next *waiting*
//! instruction (every FP instruction except the FN* control forms, and FWAIT) reports
//! it before doing anything else, as #MF when CR0.NE=1, or by asserting FERR# to the
//! board (IRQ 13 on a PC) when CR0.NE=0. CR0.EM or CR0.TS make FP instructions raise
//! #NM first (WAIT only with CR0.MP and TS).
//!
//! * [`f80`]: the register format and exact conversions;
//! * [`arith`]: correctly rounded arithmetic (rustc_apfloat plus integer code);
//! * [`transcend`]: the transcendental instructions in 128-bit integer arithmetic;
//! * `env`: FSTENV/FLDENV, FSAVE/FRSTOR, FXSAVE/FXRSTOR memory images;
//! * `ops`: the instruction handlers and their selection at translation time.

pub mod arith;
mod env;
pub mod f80;
mod ops;
pub mod transcend;

pub use f80::F80;
pub use ops::select;

// Status-word bits.
pub const IE: u16 = 1 << 0;
pub const DE: u16 = 1 << 1;
pub const ZE: u16 = 1 << 2;
pub const OE: u16 = 1 << 3;
pub const UE: u16 = 1 << 4;
pub const PE: u16 = 1 << 5;
pub const SF: u16 = 1 << 6;
pub const ES: u16 = 1 << 7;
pub const C0: u16 = 1 << 8;
pub const C1: u16 = 1 << 9;
pub const C2: u16 = 1 << 10;
pub const C3: u16 = 1 << 14;
pub const B: u16 = 1 << 15;
/// The six exception flags (and, in the control word, their masks).
pub const EXC: u16 = 0x3F;
pub const CC: u16 = C0 | C1 | C2 | C3;
const TOP_SHIFT: u16 = 11;

/// Control word after FINIT: everything masked, 64-bit precision, round to nearest.
pub const CW_INIT: u16 = 0x037F;
/// Control-word bits that exist (bit 6 always reads one).
const CW_BITS: u16 = 0x1F3F;

const TAG_EMPTY: u16 = 3;

/// Everything the x87 holds, in a form that saves and loads the same on every host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpuState {
    /// Physical registers R0..R7.
    pub regs: [F80; 8],
    pub cw: u16,
    /// Status word, TOP included.
    pub sw: u16,
    /// Full tag word, kept in step with the register contents.
    pub tw: u16,
    /// Last non-control instruction: offset, code selector, opcode (11 bits).
    pub fip: u32,
    pub fcs: u16,
    pub fop: u16,
    /// Last memory operand: offset and selector.
    pub fdp: u32,
    pub fds: u16,
}

impl Default for FpuState {
    fn default() -> Self {
        Self::reset()
    }
}

impl FpuState {
    /// The state at RESET (SDM table 9-1): control word 0x0040 (all exceptions
    /// unmasked, 24-bit precision), every register +0.0 tagged zero. FNINIT, which
    /// firmware runs before using the FPU, gives the usual 0x037F and an empty stack.
    pub fn reset() -> Self {
        Self {
            regs: [F80::ZERO; 8],
            cw: 0x0040,
            sw: 0,
            tw: 0x5555,
            fip: 0,
            fcs: 0,
            fop: 0,
            fdp: 0,
            fds: 0,
        }
    }

    /// FNINIT: registers keep their bits but are all empty.
    pub fn init(&mut self) {
        self.cw = CW_INIT;
        self.sw = 0;
        self.tw = 0xFFFF;
        self.fip = 0;
        self.fcs = 0;
        self.fop = 0;
        self.fdp = 0;
        self.fds = 0;
    }

    pub fn top(&self) -> usize {
        usize::from((self.sw >> TOP_SHIFT) & 7)
    }

    pub fn set_top(&mut self, t: usize) {
        self.sw = (self.sw & !(7 << TOP_SHIFT)) | (((t & 7) as u16) << TOP_SHIFT);
    }

    /// Physical register number of ST(i).
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }

    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }

    pub fn tag(&self, phys: usize) -> u16 {
        (self.tw >> (2 * phys)) & 3
    }

    fn set_tag(&mut self, phys: usize, t: u16) {
        self.tw = (self.tw & !(3 << (2 * phys))) | (t << (2 * phys));
    }

    pub fn is_empty(&self, i: usize) -> bool {
        self.tag(self.phys(i)) == TAG_EMPTY
    }

    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.set_tag(p, v.tag());
    }

    /// Marks ST(i) empty (FFREE).
    pub fn free(&mut self, i: usize) {
        let p = self.phys(i);
        self.set_tag(p, TAG_EMPTY);
    }

    pub fn push(&mut self, v: F80) {
        let t = self.top().wrapping_sub(1) & 7;
        self.set_top(t);
        self.set_st(0, v);
    }

    pub fn pop(&mut self) {
        self.free(0);
        let t = self.top() + 1;
        self.set_top(t);
    }

    /// Recomputes the tags of non-empty registers from their contents (after a load of
    /// the tag word from memory, where only "empty or not" is taken).
    pub fn retag(&mut self) {
        for p in 0..8 {
            if self.tag(p) != TAG_EMPTY {
                self.set_tag(p, self.regs[p].tag());
            }
        }
    }

    /// Sets ES and B from the exception flags and masks (a control-word load can
    /// unmask a flag already set, which makes it pending too).
    pub fn update_es(&mut self) {
        if self.sw & EXC & !self.cw != 0 {
            self.sw |= ES | B;
        } else {
            self.sw &= !(ES | B);
        }
    }

    /// Ends an arithmetic instruction: exception flags (and SF) accumulate, C1 takes the
    /// value in `flags` (rounded up, or stack overflow), ES follows.
    pub fn finish(&mut self, flags: u16) {
        self.sw = (self.sw & !C1) | (flags & (C1 | EXC | SF));
        self.update_es();
    }

    /// Accumulates exception flags, leaving the condition codes alone.
    pub fn raise(&mut self, flags: u16) {
        self.sw |= flags & (EXC | SF);
        self.update_es();
    }

    pub fn set_cw(&mut self, cw: u16) {
        self.cw = (cw & CW_BITS) | 0x40;
        self.update_es();
    }

    /// Whether an exception is pending for the next waiting instruction.
    pub fn pending(&self) -> bool {
        self.sw & ES != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_and_tags() {
        let mut f = FpuState::reset();
        f.init();
        assert!(f.is_empty(0));
        f.push(F80::ONE);
        assert_eq!(f.top(), 7);
        assert_eq!(f.tw, 0x3FFF);
        f.push(F80::ZERO);
        assert_eq!(f.top(), 6);
        assert_eq!(f.tag(6), 1);
        assert_eq!(f.st(1), F80::ONE);
        f.pop();
        assert_eq!(f.top(), 7);
        assert_eq!(f.tw, 0x3FFF);
        f.set_st(0, F80::INFINITY);
        assert_eq!(f.tag(7), 2);
    }

    #[test]
    fn pending_exceptions_follow_masks() {
        let mut f = FpuState::reset();
        f.init();
        f.finish(PE | C1);
        assert_eq!(f.sw, PE | C1);
        f.set_cw(CW_INIT & !PE);
        assert!(f.pending());
        assert_eq!(f.sw & B, B);
        f.set_cw(CW_INIT);
        assert!(!f.pending());
    }
}
