//! Lazy status flags.
//!
//! Most instructions that set CF/PF/AF/ZF/SF/OF are followed by another that overwrites
//! them unread. So an instruction records only *what it did* (operation, width, operands,
//! result) and a flag is computed when something reads it: a Jcc, ADC, PUSHF, an
//! interrupt. The common `cmp`/`sub` + `jcc` pair is evaluated straight from the operands.

use crate::state::{AF, ARITH, CF, OF, PF, SF, ZF};

/// What produced the current status flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum FlagOp {
    /// `a` holds the six flags in EFLAGS positions (after POPF, SAHF, IRET, reset).
    #[default]
    Flags,
    Add,
    Adc,
    Sub,
    Sbb,
    /// AND/OR/XOR/TEST: CF = OF = 0, AF = 0.
    Logic,
    /// INC/DEC: `b` is 1; CF is the one before them.
    Inc,
    Dec,
    /// CF, OF and AF given in `a` (EFLAGS positions); ZF/SF/PF from `res`. Shifts,
    /// multiplies and BCD adjustments compute what is cheap to compute eagerly.
    Explicit,
}

/// The recorded operation. `w` is the operand width in bits (8, 16, 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lazy {
    pub op: FlagOp,
    pub w: u8,
    pub a: u32,
    pub b: u32,
    pub res: u32,
    /// CF of this operation in bit 0, computed when it is recorded.
    pub aux: u32,
}

impl Default for Lazy {
    fn default() -> Self {
        Self {
            op: FlagOp::Flags,
            w: 32,
            a: 0,
            b: 0,
            res: 0,
            aux: 0,
        }
    }
}

#[inline(always)]
fn mask(w: u8) -> u32 {
    match w {
        8 => 0xFF,
        16 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

#[inline(always)]
fn sign(w: u8) -> u32 {
    1 << (w - 1)
}

#[inline(always)]
pub fn parity(v: u32) -> bool {
    (v as u8).count_ones() % 2 == 0
}

impl Lazy {
    /// Records an operation. CF is computed here, not on demand: it is one compare for the
    /// common operations (and `op` and `w` are constants at every inlined call site), while
    /// INC/DEC, ADC/SBB and the CF-reading conditions would otherwise each dispatch on the
    /// previous operation.
    #[inline(always)]
    pub fn set(&mut self, op: FlagOp, w: u8, a: u32, b: u32, res: u32) {
        let m = mask(w);
        let (am, bm, rm) = (a & m, b & m, res & m);
        let cf = match op {
            FlagOp::Flags | FlagOp::Explicit => a & CF != 0,
            FlagOp::Add => rm < am,
            FlagOp::Adc => {
                // The carry-in is whatever the result holds beyond a + b.
                let cin = rm.wrapping_sub(am).wrapping_sub(bm) & m;
                u64::from(am) + u64::from(bm) + u64::from(cin) > u64::from(m)
            }
            FlagOp::Sub => am < bm,
            FlagOp::Sbb => {
                let cin = am.wrapping_sub(bm).wrapping_sub(rm) & m;
                u64::from(am) < u64::from(bm) + u64::from(cin)
            }
            FlagOp::Logic => false,
            // INC/DEC keep the previous CF: `set_incdec` stores it.
            FlagOp::Inc | FlagOp::Dec => self.aux & CF != 0,
        };
        self.op = op;
        self.w = w;
        self.a = a;
        self.b = b;
        self.res = res;
        self.aux = u32::from(cf);
    }

    /// Replaces all six flags with those in `f` (EFLAGS positions).
    #[inline]
    pub fn set_flags(&mut self, f: u32) {
        *self = Lazy {
            op: FlagOp::Flags,
            w: 32,
            a: f & ARITH,
            b: 0,
            res: 0,
            aux: f & CF,
        };
    }

    #[inline(always)]
    pub fn cf(&self) -> bool {
        self.aux & CF != 0
    }

    #[inline]
    pub fn zf(&self) -> bool {
        match self.op {
            FlagOp::Flags => self.a & ZF != 0,
            _ => self.res & mask(self.w) == 0,
        }
    }

    #[inline]
    pub fn sf(&self) -> bool {
        match self.op {
            FlagOp::Flags => self.a & SF != 0,
            _ => self.res & sign(self.w) != 0,
        }
    }

    #[inline]
    pub fn pf(&self) -> bool {
        match self.op {
            FlagOp::Flags => self.a & PF != 0,
            _ => parity(self.res),
        }
    }

    #[inline]
    pub fn af(&self) -> bool {
        match self.op {
            FlagOp::Flags | FlagOp::Explicit => self.a & AF != 0,
            FlagOp::Logic => false,
            _ => (self.a ^ self.b ^ self.res) & 0x10 != 0,
        }
    }

    #[inline]
    pub fn of(&self) -> bool {
        let s = sign(self.w);
        let (a, b, r) = (self.a, self.b, self.res);
        match self.op {
            FlagOp::Flags | FlagOp::Explicit => self.a & OF != 0,
            FlagOp::Add | FlagOp::Adc | FlagOp::Inc => (a ^ r) & (b ^ r) & s != 0,
            FlagOp::Sub | FlagOp::Sbb | FlagOp::Dec => (a ^ b) & (a ^ r) & s != 0,
            FlagOp::Logic => false,
        }
    }

    /// The six flags in EFLAGS positions.
    pub fn materialize(&self) -> u32 {
        if self.op == FlagOp::Flags {
            return self.a & ARITH;
        }
        let mut f = 0;
        if self.cf() {
            f |= CF;
        }
        if self.pf() {
            f |= PF;
        }
        if self.af() {
            f |= AF;
        }
        if self.zf() {
            f |= ZF;
        }
        if self.sf() {
            f |= SF;
        }
        if self.of() {
            f |= OF;
        }
        f
    }

    /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc opcodes).
    #[inline(always)]
    pub fn cond(&self, cc: u8) -> bool {
        if self.op == FlagOp::Sub {
            // cmp/sub + jcc: answer from the operands without building flags.
            let m = mask(self.w);
            let (a, b) = (self.a & m, self.b & m);
            let sh = 32 - u32::from(self.w);
            let (sa, sb) = (((a << sh) as i32), ((b << sh) as i32));
            match cc {
                0x2 => return a < b,
                0x3 => return a >= b,
                0x4 => return a == b,
                0x5 => return a != b,
                0x6 => return a <= b,
                0x7 => return a > b,
                0xC => return sa < sb,
                0xD => return sa >= sb,
                0xE => return sa <= sb,
                0xF => return sa > sb,
                _ => {}
            }
        }
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r ^ (cc & 1 != 0)
    }

    /// INC/DEC keep CF: save it before recording the new operation.
    #[inline]
    pub fn set_incdec(&mut self, inc: bool, w: u8, a: u32, res: u32) {
        // `set` carries the old CF over for INC/DEC.
        self.set(if inc { FlagOp::Inc } else { FlagOp::Dec }, w, a, 1, res);
    }

    /// Records flags computed eagerly: `cf_of_af` in EFLAGS positions, the rest from `res`.
    #[inline]
    pub fn set_explicit(&mut self, w: u8, cf_of_af: u32, res: u32) {
        self.set(FlagOp::Explicit, w, cf_of_af & (CF | OF | AF), 0, res);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(w: u8, a: u32, b: u32, c: u32) -> Lazy {
        let m = mask(w);
        let mut l = Lazy::default();
        let op = if c == 0 { FlagOp::Add } else { FlagOp::Adc };
        l.set(op, w, a, b, a.wrapping_add(b).wrapping_add(c) & m);
        l
    }

    #[test]
    fn adc_carry_out() {
        assert!(add(8, 0xFF, 0xFF, 1).cf());
        assert!(add(8, 0xFF, 0x00, 1).cf());
        assert!(!add(8, 0x7F, 0x00, 1).cf());
        assert!(add(32, 0, 0xFFFF_FFFF, 1).cf());
        assert!(!add(32, 0, 0xFFFF_FFFE, 1).cf());
        assert!(add(16, 0x8000, 0x8000, 0).cf());
        assert!(add(16, 0x8000, 0x8000, 0).of());
    }

    #[test]
    fn cmp_conditions() {
        let mut l = Lazy::default();
        l.set(FlagOp::Sub, 8, 0x80, 0x01, 0x7F);
        assert!(l.cond(0x7)); // ja: 0x80 > 1 unsigned
        assert!(l.cond(0xC)); // jl: -128 < 1
        assert!(l.of());
        let f = l.materialize();
        assert_eq!(f & (CF | ZF | SF | OF), OF);
    }
}
