//! The transcendental instructions, computed in integer arithmetic so that every host
//! gives the same bits.
//!
//! Values are held as [`Xf`]: a sign, an `i32` exponent and a 128-bit significand, every
//! operation truncating. Series are evaluated far beyond the 64 bits of an x87 result
//! (errors near 2^-120), then rounded once with the rounding control, so results are the
//! correctly rounded ones except in cases closer to a rounding boundary than that.
//!
//! ```text
//!  FSIN FCOS FSINCOS FPTAN   |x| < 2^63, else C2=1 and ST(0) unchanged
//!      x = k·(π₆₆/2) + r exactly, |r| <= π₆₆/4, where π₆₆ is the 66-bit π of the x87
//!      (so results near multiples of π match the hardware's), then Taylor series in r
//!  FPATAN      atan(t), t = min/max ∈ [0,1], halved three times with
//!              atan t = 2·atan(t / (1 + √(1+t²))), then the alternating series
//!  F2XM1       expm1(x·ln 2) by its Taylor series (|x| <= 1; larger x split as n + f)
//!  FYL2X(P1)   log2 m = 2·atanh((m-1)/(m+1)) / ln 2 with m ∈ [√½, √2)
//! ```

use core::cmp::Ordering;

use super::arith::{invalid, nan1, nan2, round_wide, wide_from_parts, Ctx, Res};
use super::f80::{Class, EMIN, F80};
use super::{DE, PE, UE, ZE};

/// A working value: `m * 2^(exp - 127)`, `m` normalised (bit 127 set) or zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Xf {
    neg: bool,
    exp: i32,
    m: u128,
}

const TOP: u128 = 1 << 127;

/// 128 bits of π (exponent 1), of ln 2 (exponent -1).
const PI_M: u128 = 0xC90F_DAA2_2168_C234_C4C6_628B_80DC_1CD1;
const LN2_M: u128 = 0xB172_17F7_D1CF_79AB_C9E3_B398_03F2_F6AF;
/// π as the x87 uses it for argument reduction: 66 significant bits, here as a 68-bit
/// integer whose value times 2^-66 is π₆₆.
const PI66: u128 = 0xC_90FD_AA22_168C_234C;

fn mul128(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u128::from(u64::MAX));
    let (b1, b0) = (b >> 64, b & u128::from(u64::MAX));
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let lo = (p00 & u128::from(u64::MAX)) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

impl Xf {
    pub(crate) const ZERO: Xf = Xf {
        neg: false,
        exp: 0,
        m: 0,
    };
    pub(crate) const ONE: Xf = Xf {
        neg: false,
        exp: 0,
        m: TOP,
    };
    pub(crate) const PI: Xf = Xf {
        neg: false,
        exp: 1,
        m: PI_M,
    };
    pub(crate) const LN2: Xf = Xf {
        neg: false,
        exp: -1,
        m: LN2_M,
    };

    /// `m * 2^e`, normalised.
    fn from_parts(neg: bool, m: u128, e: i32) -> Xf {
        if m == 0 {
            return Xf::ZERO;
        }
        let lz = m.leading_zeros();
        Xf {
            neg,
            exp: 127 - lz as i32 + e,
            m: m << lz,
        }
    }

    /// The exact value of a finite register value.
    pub(crate) fn from_f80(x: F80) -> Xf {
        if x.class() == Class::Zero {
            return Xf::ZERO;
        }
        let (e, m) = x.normalized();
        Xf {
            neg: x.neg(),
            exp: e,
            m: u128::from(m) << 64,
        }
    }

    pub(crate) fn int(n: i64) -> Xf {
        Xf::from_parts(n < 0, u128::from(n.unsigned_abs()), 0)
    }

    pub(crate) fn is_zero(self) -> bool {
        self.m == 0
    }

    pub(crate) fn neg(self) -> Xf {
        Xf {
            neg: !self.neg && self.m != 0,
            ..self
        }
    }

    pub(crate) fn abs(self) -> Xf {
        Xf { neg: false, ..self }
    }

    pub(crate) fn with_sign(self, neg: bool) -> Xf {
        Xf {
            neg: neg && self.m != 0,
            ..self
        }
    }

    /// Times 2^n.
    pub(crate) fn scale(self, n: i32) -> Xf {
        if self.m == 0 {
            self
        } else {
            Xf {
                exp: self.exp + n,
                ..self
            }
        }
    }

    pub(crate) fn mul(self, o: Xf) -> Xf {
        if self.m == 0 || o.m == 0 {
            return Xf::ZERO;
        }
        let (hi, lo) = mul128(self.m, o.m);
        let neg = self.neg != o.neg;
        if hi & TOP != 0 {
            Xf {
                neg,
                exp: self.exp + o.exp + 1,
                m: hi,
            }
        } else {
            Xf {
                neg,
                exp: self.exp + o.exp,
                m: (hi << 1) | (lo >> 127),
            }
        }
    }

    fn cmp_abs(self, o: Xf) -> Ordering {
        match (self.m == 0, o.m == 0) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => self.exp.cmp(&o.exp).then(self.m.cmp(&o.m)),
        }
    }

    pub(crate) fn add(self, o: Xf) -> Xf {
        if o.m == 0 {
            return self;
        }
        if self.m == 0 {
            return o;
        }
        let (a, b) = if self.cmp_abs(o) == Ordering::Less {
            (o, self)
        } else {
            (self, o)
        };
        let d = (a.exp - b.exp) as u32;
        // b aligned to a as a 256-bit (hi, lo) pair; `lost` says bits fell off its end.
        let (bh, bl, lost) = if d == 0 {
            (b.m, 0, false)
        } else if d < 128 {
            (b.m >> d, b.m << (128 - d), false)
        } else if d < 256 {
            (0, b.m >> (d - 128), d > 128 && b.m << (256 - d) != 0)
        } else {
            (0, 0, true)
        };
        if a.neg == b.neg {
            let (lo, c) = 0u128.overflowing_add(bl);
            let (hi, carry) = a.m.overflowing_add(bh + u128::from(c));
            if carry {
                Xf {
                    neg: a.neg,
                    exp: a.exp + 1,
                    m: (hi >> 1) | TOP,
                }
            } else {
                let _ = lo;
                Xf {
                    neg: a.neg,
                    exp: a.exp,
                    m: hi,
                }
            }
        } else {
            // Lost bits of the subtrahend still make the difference smaller: one more
            // unit off the bottom keeps the result truncated toward zero, so that a value
            // just below a representable one is never taken for it.
            let (lo, b1) = 0u128.overflowing_sub(bl);
            let (lo, b2) = lo.overflowing_sub(u128::from(lost));
            let hi = a.m - bh - u128::from(b1) - u128::from(b2);
            if hi == 0 && lo == 0 {
                return Xf::ZERO;
            }
            let lz = if hi == 0 {
                128 + lo.leading_zeros()
            } else {
                hi.leading_zeros()
            };
            let m = if lz == 0 {
                hi
            } else if lz < 128 {
                (hi << lz) | (lo >> (128 - lz))
            } else {
                lo << (lz - 128)
            };
            Xf {
                neg: a.neg,
                exp: a.exp - lz as i32,
                m,
            }
        }
    }

    pub(crate) fn sub(self, o: Xf) -> Xf {
        self.add(o.neg())
    }

    /// Division (the divisor must not be zero): 128 quotient bits by long division.
    pub(crate) fn div(self, o: Xf) -> Xf {
        debug_assert!(o.m != 0);
        if self.m == 0 {
            return Xf::ZERO;
        }
        let neg = self.neg != o.neg;
        let exp = self.exp - o.exp;
        // The leading quotient bit is 1 at 2^exp or at 2^(exp-1); r is what is left.
        let (mut r, exp) = if self.m >= o.m {
            (self.m - o.m, exp)
        } else {
            ((self.m << 1).wrapping_sub(o.m), exp - 1)
        };
        let mut q: u128 = 1;
        for _ in 0..127 {
            let carry = r & TOP != 0;
            r <<= 1;
            q <<= 1;
            if carry || r >= o.m {
                r = r.wrapping_sub(o.m);
                q |= 1;
            }
        }
        Xf { neg, exp, m: q }
    }

    /// Division by a small positive integer.
    pub(crate) fn div_int(self, n: u64) -> Xf {
        if self.m == 0 {
            return self;
        }
        let n = u128::from(n);
        let q1 = self.m / n;
        let r1 = self.m % n;
        let s = q1.leading_zeros();
        let q = (q1 << s) | ((r1 << s) / n);
        Xf {
            neg: self.neg,
            exp: self.exp - s as i32,
            m: q,
        }
    }

    /// Square root of a non-negative value.
    pub(crate) fn sqrt(self) -> Xf {
        if self.m == 0 {
            return self;
        }
        // value = m * 2^k with k = exp - 127; make k even.
        let (m, k) = if (self.exp - 127) & 1 != 0 {
            (self.m >> 1, self.exp - 126)
        } else {
            (self.m, self.exp - 127)
        };
        let (root, _) = super::arith::isqrt_shifted(m, 124, 126);
        Xf::from_parts(false, root, (k - 124) / 2)
    }

    /// Rounds to an x87 result with the rounding control (full precision). `exact` says
    /// the value is the true result, not an approximation of an irrational one.
    pub(crate) fn round(self, exact: bool, flags: u16, ctx: Ctx) -> Res {
        if self.m == 0 {
            return Res::ok(F80::zero(self.neg), flags);
        }
        let w = wide_from_parts(self.neg, self.m, self.exp - 127, !exact);
        let mut r = round_wide(w, ctx.full());
        r.flags |= flags;
        r
    }
}

// ---------------------------------------------------------------------------------------
// Series

/// sin r for |r| <= π/4.
fn sin_series(r: Xf) -> Xf {
    let r2 = r.mul(r);
    let mut acc = Xf::ONE;
    for n in (1..=18u64).rev() {
        acc = Xf::ONE.sub(r2.mul(acc).div_int((2 * n) * (2 * n + 1)));
    }
    r.mul(acc)
}

/// cos r for |r| <= π/4.
fn cos_series(r: Xf) -> Xf {
    let r2 = r.mul(r);
    let mut acc = Xf::ONE;
    for n in (1..=18u64).rev() {
        acc = Xf::ONE.sub(r2.mul(acc).div_int((2 * n - 1) * (2 * n)));
    }
    acc
}

/// atan t for 0 <= t <= 1.
fn atan_unit(t: Xf) -> Xf {
    let mut u = t;
    for _ in 0..3 {
        let h = Xf::ONE.add(u.mul(u)).sqrt().add(Xf::ONE);
        u = u.div(h);
    }
    // |u| <= tan(π/32) < 0.1: the series to u^41 leaves less than 2^-130.
    let u2 = u.mul(u);
    let mut acc = Xf::ONE.div_int(41);
    for n in (0..20u64).rev() {
        acc = Xf::ONE.div_int(2 * n + 1).sub(u2.mul(acc));
    }
    u.mul(acc).scale(3)
}

/// expm1 y for |y| <= 0.7.
fn expm1_series(y: Xf) -> Xf {
    let mut acc = Xf::ONE;
    for n in (2..=36u64).rev() {
        acc = Xf::ONE.add(y.mul(acc).div_int(n));
    }
    y.mul(acc)
}

/// 2·atanh s for |s| <= 0.18: ln((1+s)/(1-s)).
fn ln_ratio(s: Xf) -> Xf {
    let s2 = s.mul(s);
    let mut acc = Xf::ONE.div_int(53);
    for n in (0..26u64).rev() {
        acc = Xf::ONE.div_int(2 * n + 1).add(s2.mul(acc));
    }
    s.mul(acc).scale(1)
}

/// log2 of a positive value, and whether it is exact (a power of two).
fn log2(v: Xf) -> (Xf, bool) {
    let mut e = v.exp;
    // f = m / 2^127 in [1, 2); fold into [√½, √2).
    let mut f = Xf {
        neg: false,
        exp: 0,
        m: v.m,
    };
    if v.m > 0xB504_F333_F9DE_6484_597D_89B3_754A_BE9F {
        f = f.scale(-1);
        e += 1;
    }
    if f == Xf::ONE {
        return (Xf::int(i64::from(e)), true);
    }
    let s = f.sub(Xf::ONE).div(f.add(Xf::ONE));
    let l = ln_ratio(s).div(Xf::LN2);
    (Xf::int(i64::from(e)).add(l), false)
}

// ---------------------------------------------------------------------------------------
// Trigonometry

/// |x| (finite, below 2^63) reduced modulo π₆₆/2: the remainder in [-π₆₆/4, π₆₆/4]
/// and the quotient modulo 4.
fn reduce(x: F80) -> (Xf, u32) {
    let (e, m) = x.normalized();
    if e < -1 {
        return (Xf::from_f80(x.abs()), 0);
    }
    // |x| / (π₆₆/2) = m·2^(e-63) / (PI66·2^-67) = m·2^(e+4) / PI66.
    let mut r = u128::from(m);
    let mut q: u32 = 0;
    for _ in 0..e + 4 {
        r <<= 1;
        q <<= 1;
        if r >= PI66 {
            r -= PI66;
            q |= 1;
        }
    }
    let mut neg = false;
    if 2 * r > PI66 {
        r = PI66 - r;
        neg = true;
        q = q.wrapping_add(1);
    }
    (Xf::from_parts(neg, r, -67), q & 3)
}

/// The trigonometric operand checks: `Err` with the result for special operands, `Ok`
/// with the denormal flag for finite ones, `None` when out of range (C2).
fn trig_operand(x: F80, ctx: Ctx) -> Option<Result<u16, Res>> {
    match x.class() {
        Class::Unsupported | Class::Infinity => Some(Err(invalid(ctx))),
        Class::QNaN | Class::SNaN => Some(Err(nan1(x, ctx))),
        Class::Denormal => Some(if ctx.masked(DE) {
            Ok(DE)
        } else {
            Err(Res {
                value: None,
                flags: DE,
            })
        }),
        _ if x.exp() >= 0x3FFF + 63 => None,
        _ => Some(Ok(0)),
    }
}

/// (sin x, cos x) as working values.
fn sin_cos_xf(x: F80) -> (Xf, Xf) {
    let (r, q) = reduce(x);
    let (s, c) = (sin_series(r), cos_series(r));
    let (s, c) = match q {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    };
    (if x.neg() { s.neg() } else { s }, c)
}

/// FSIN: `None` when |x| >= 2^63.
pub fn fsin(x: F80, ctx: Ctx) -> Option<Res> {
    Some(match trig_operand(x, ctx)? {
        Err(r) => r,
        Ok(_) if x.class() == Class::Zero => Res::ok(x, 0),
        Ok(f) => sin_cos_xf(x).0.round(false, f, ctx),
    })
}

/// FCOS.
pub fn fcos(x: F80, ctx: Ctx) -> Option<Res> {
    Some(match trig_operand(x, ctx)? {
        Err(r) => r,
        Ok(_) if x.class() == Class::Zero => Res::ok(F80::ONE, 0),
        Ok(f) => sin_cos_xf(x).1.round(false, f, ctx),
    })
}

/// FSINCOS: (sine, cosine).
pub fn fsincos(x: F80, ctx: Ctx) -> Option<(Res, Res)> {
    Some(match trig_operand(x, ctx)? {
        Err(r) => (r, r),
        Ok(_) if x.class() == Class::Zero => (Res::ok(x, 0), Res::ok(F80::ONE, 0)),
        Ok(f) => {
            let (s, c) = sin_cos_xf(x);
            (s.round(false, f, ctx), c.round(false, f, ctx))
        }
    })
}

/// FPTAN's tangent (the 1.0 it pushes is the caller's).
pub fn fptan(x: F80, ctx: Ctx) -> Option<Res> {
    Some(match trig_operand(x, ctx)? {
        Err(r) => r,
        Ok(_) if x.class() == Class::Zero => Res::ok(x, 0),
        Ok(f) => {
            let (s, c) = sin_cos_xf(x);
            s.div(c).round(false, f, ctx)
        }
    })
}

/// FPATAN: atan2(y, x) with y = ST(1), x = ST(0).
pub fn fpatan(y: F80, x: F80, ctx: Ctx) -> Res {
    use Class::*;
    let (cy, cx) = (y.class(), x.class());
    if cy == Unsupported || cx == Unsupported {
        return invalid(ctx);
    }
    if y.is_nan() || x.is_nan() {
        return nan2(x, y, ctx);
    }
    let mut flags = 0;
    if cy == Denormal || cx == Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    let pi = Xf::PI;
    let half = pi.scale(-1);
    let a = match (cy, cx) {
        (Zero, _) => {
            if x.neg() {
                pi
            } else {
                return Res::ok(y, flags);
            }
        }
        (Infinity, Infinity) => {
            let q = pi.scale(-2);
            if x.neg() {
                q.mul(Xf::int(3))
            } else {
                q
            }
        }
        (Infinity, _) | (_, Zero) => half,
        (_, Infinity) => {
            if x.neg() {
                pi
            } else {
                return Res::ok(F80::zero(y.neg()), flags);
            }
        }
        _ => {
            let (ay, ax) = (Xf::from_f80(y).abs(), Xf::from_f80(x).abs());
            let a = if ay.cmp_abs(ax) != Ordering::Greater {
                atan_unit(ay.div(ax))
            } else {
                half.sub(atan_unit(ax.div(ay)))
            };
            if x.neg() {
                pi.sub(a)
            } else {
                a
            }
        }
    };
    a.with_sign(y.neg()).round(false, flags, ctx)
}

/// F2XM1: 2^x - 1.
pub fn f2xm1(x: F80, ctx: Ctx) -> Res {
    let mut flags = 0;
    match x.class() {
        Class::Unsupported => return invalid(ctx),
        Class::QNaN | Class::SNaN => return nan1(x, ctx),
        Class::Zero => return Res::ok(x, 0),
        Class::Infinity => {
            return Res::ok(if x.neg() { F80::ONE.negate() } else { x }, 0);
        }
        Class::Denormal => {
            flags |= DE;
            if !ctx.masked(DE) {
                return Res { value: None, flags };
            }
        }
        Class::Normal => {}
    }
    let (e, m) = x.normalized();
    if e < 0 {
        let y = Xf::from_f80(x).mul(Xf::LN2);
        return expm1_series(y).round(false, flags, ctx);
    }
    // |x| >= 1: 2^x - 1 = 2^n · 2^f - 1 with f in [-½, ½]. Outside [-1, 1] the
    // hardware's result is undefined; this one is at least the true value.
    if e >= 15 {
        let v = if x.neg() {
            Xf::ONE.neg().add(Xf::ONE.scale(-200))
        } else {
            Xf::ONE.scale(20000)
        };
        return v.round(false, flags, ctx);
    }
    let xf = Xf::from_f80(x);
    let mut n = (m >> (63 - e)) as i64;
    let mut f = xf.abs().sub(Xf::int(n));
    if f.cmp_abs(Xf::ONE.scale(-1)) == Ordering::Greater {
        n += 1;
        f = f.sub(Xf::ONE);
    }
    let (n, f) = if x.neg() { (-n, f.neg()) } else { (n, f) };
    let p = expm1_series(f.mul(Xf::LN2)).add(Xf::ONE).scale(n as i32);
    // 2^n - 1 for an integral x is exact.
    p.sub(Xf::ONE).round(f.is_zero(), flags, ctx)
}

/// FYL2X: y·log2(x) with x = ST(0), y = ST(1).
pub fn fyl2x(x: F80, y: F80, ctx: Ctx) -> Res {
    use Class::*;
    let (cx, cy) = (x.class(), y.class());
    if cx == Unsupported || cy == Unsupported {
        return invalid(ctx);
    }
    if x.is_nan() || y.is_nan() {
        return nan2(x, y, ctx);
    }
    if x.neg() && cx != Zero {
        return invalid(ctx);
    }
    let ys = y.neg();
    // log2(0) is a division by zero, reported alone like FDIV's.
    if cx == Zero && !matches!(cy, Zero | Infinity) {
        let value = ctx.masked(ZE).then_some(F80::infinity(!ys));
        return Res { value, flags: ZE };
    }
    let mut flags = 0;
    if cx == Denormal || cy == Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    match (cx, cy) {
        (Zero, Zero) | (Infinity, Zero) => return invalid(ctx),
        (Zero, _) => return Res::ok(F80::infinity(!ys), flags),
        (Infinity, _) => return Res::ok(F80::infinity(ys), flags),
        _ => {}
    }
    let (l, exact) = log2(Xf::from_f80(x));
    if cy == Infinity {
        if l.is_zero() {
            return invalid(ctx);
        }
        return Res::ok(F80::infinity(ys != l.neg), flags);
    }
    if cy == Zero || l.is_zero() {
        return Res::ok(F80::zero(ys != l.neg), flags);
    }
    let p = Xf::from_f80(y).mul(l);
    let mut r = p.round(exact, flags, ctx);
    if exact {
        // A power of two gives the exact product, which the hardware still reports as
        // inexact (and so as an underflow when tiny).
        r.flags |= PE;
        if p.exp < EMIN && ctx.masked(UE) {
            r.flags |= UE;
        }
    }
    r
}

/// FYL2XP1: y·log2(x + 1) with x = ST(0), y = ST(1).
pub fn fyl2xp1(x: F80, y: F80, ctx: Ctx) -> Res {
    use Class::*;
    let (cx, cy) = (x.class(), y.class());
    if cx == Unsupported || cy == Unsupported {
        return invalid(ctx);
    }
    if x.is_nan() || y.is_nan() {
        return nan2(x, y, ctx);
    }
    let mut flags = 0;
    if cx == Denormal || cy == Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    let xf = Xf::from_f80(x);
    let one_plus = if cx == Infinity {
        None
    } else {
        Some(xf.add(Xf::ONE))
    };
    // Below -1 the logarithm does not exist; at -1 it is -∞.
    if (cx == Infinity && x.neg()) || one_plus.is_some_and(|v| v.neg) {
        return invalid(ctx);
    }
    let ys = y.neg();
    match (cx, cy) {
        (Zero, Infinity) | (Infinity, Zero) => return invalid(ctx),
        (Zero, _) | (_, Zero) => return Res::ok(F80::zero(ys != x.neg()), flags),
        (Infinity, _) => return Res::ok(F80::infinity(ys), flags),
        _ => {}
    }
    let v = one_plus.unwrap_or(Xf::ONE);
    if v.is_zero() {
        if cy == Infinity {
            return Res::ok(F80::infinity(!ys), flags);
        }
        flags |= ZE;
        let value = ctx.masked(ZE).then_some(F80::infinity(!ys));
        return Res { value, flags };
    }
    if cy == Infinity {
        return Res::ok(F80::infinity(ys != x.neg()), flags);
    }
    // Near zero, log2(1+x) = 2·atanh(x/(2+x))/ln 2 keeps full relative precision.
    let l = if xf.abs().cmp_abs(Xf::ONE.scale(-2)) == Ordering::Less {
        let s = xf.div(xf.add(Xf::int(2)));
        ln_ratio(s).div(Xf::LN2)
    } else {
        log2(v).0
    };
    Xf::from_f80(y).mul(l).round(false, flags, ctx)
}

// ---------------------------------------------------------------------------------------
// Constants

/// FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2: 128-bit significands and exponents, rounded
/// by the rounding control like the hardware's.
pub const L2T: (u128, i32) = (0xD49A_784B_CD1B_8AFE_492B_F6FF_4DAF_DB4D, 1);
pub const L2E: (u128, i32) = (0xB8AA_3B29_5C17_F0BB_BE87_FED0_691D_3E89, 0);
pub const PI: (u128, i32) = (PI_M, 1);
pub const LG2: (u128, i32) = (0x9A20_9A84_FBCF_F798_8F89_59AC_0B7C_9178, -2);
pub const LN2: (u128, i32) = (LN2_M, -1);

/// A constant rounded by the rounding control (no exception flags: the instructions
/// that load constants raise none).
pub fn constant(c: (u128, i32), ctx: Ctx) -> F80 {
    let x = Xf {
        neg: false,
        exp: c.1,
        m: c.0,
    };
    x.round(false, 0, ctx).value.unwrap_or(F80::INDEFINITE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> F80 {
        F80::from_f64_bits(x.to_bits()).0
    }

    fn ctx() -> Ctx {
        Ctx::new(0x037F)
    }

    /// The value as f64 (for tests on ordinary numbers).
    fn d(r: Res) -> f64 {
        let v = r.value.unwrap();
        let (e, m) = v.normalized();
        let x = (m >> 11) as f64 * 2f64.powi(e - 52);
        if v.neg() {
            -x
        } else {
            x
        }
    }

    /// The first 120 bits of a working value (normalised).
    fn top(x: Xf) -> (i32, u128) {
        (x.exp, x.m >> 8)
    }

    #[test]
    fn arithmetic_of_working_values() {
        let three = Xf::int(3);
        let third = Xf::ONE.div(three);
        assert_eq!(third.m, 0xAAAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAA_AAAA);
        assert_eq!(third.exp, -2);
        assert_eq!(Xf::ONE.div_int(3), third);
        assert_eq!(third.mul(three).add(Xf::ONE.scale(-127)).exp, 0);
        assert_eq!(Xf::int(9).sqrt(), three);
        assert_eq!(Xf::int(5).sub(Xf::int(5)), Xf::ZERO);
        assert_eq!(Xf::int(5).sub(Xf::int(7)), Xf::int(-2));
    }

    #[test]
    fn constants_agree_with_their_series() {
        // ln 2 = 18·atanh(1/26) - 2·atanh(1/4801) + 8·atanh(1/8749).
        let t = |n: u64| ln_ratio(Xf::ONE.div_int(n));
        let ln2 = t(26).mul(Xf::int(9)).sub(t(4801)).add(t(8749).scale(2));
        assert_eq!(top(ln2), top(Xf::LN2));
        // π = 16·atan(1/5) - 4·atan(1/239) (Machin).
        let a = atan_unit(Xf::ONE.div_int(5)).scale(4);
        let b = atan_unit(Xf::ONE.div_int(239)).scale(2);
        assert_eq!(top(a.sub(b)), top(Xf::PI));
        let c = |k: (u128, i32)| {
            top(Xf {
                neg: false,
                exp: k.1,
                m: k.0,
            })
        };
        assert_eq!(top(Xf::ONE.div(Xf::LN2)), c(L2E));
        let l2t = log2(Xf::int(10)).0;
        assert_eq!(top(l2t), c(L2T));
        assert_eq!(top(Xf::ONE.div(l2t)), c(LG2));
        // π₆₆ is π truncated to 66 bits.
        assert_eq!(PI66 >> 4, PI_M >> 64);
        assert_eq!(PI66 & 0xF, (PI_M >> 60) & 0xC);
    }

    #[test]
    fn constants_round_like_the_hardware() {
        let rn = Ctx::new(0x037F);
        let rd = Ctx::new(0x077F);
        assert_eq!(constant(PI, rn).sig, 0xC90F_DAA2_2168_C235);
        assert_eq!(constant(PI, rd).sig, 0xC90F_DAA2_2168_C234);
        assert_eq!(constant(L2E, rn).sig, 0xB8AA_3B29_5C17_F0BC);
        assert_eq!(constant(LG2, rn).sig, 0x9A20_9A84_FBCF_F799);
        assert_eq!(constant(LN2, rn).sig, 0xB172_17F7_D1CF_79AC);
        assert_eq!(constant(L2T, rn).sig, 0xD49A_784B_CD1B_8AFE);
    }

    #[test]
    fn trigonometry() {
        let c = ctx();
        for x in [0.5f64, 1.0, 2.0, -3.0, 10.0, 100.0, 1e6, -0.001] {
            // Reducing by π₆₆ costs |x|·1.3e-21 of absolute accuracy, as on the hardware.
            let tol = 1e-15 + x.abs() * 2e-21;
            assert!((d(fsin(f(x), c).unwrap()) - x.sin()).abs() < tol, "sin {x}");
            assert!((d(fcos(f(x), c).unwrap()) - x.cos()).abs() < tol, "cos {x}");
            let t = d(fptan(f(x), c).unwrap());
            assert!(
                (t - x.tan()).abs() < tol * x.tan().abs().max(1.0),
                "tan {x}"
            );
        }
        assert_eq!(fsin(f(1e19), c), None);
        assert_eq!(fcos(F80::ZERO, c), Some(Res::ok(F80::ONE, 0)));
        // π truncated to 64 bits is 3·2^-64 below π₆₆, so its sine is that (where the
        // true value is 3.07·2^-64).
        let pi = constant(PI, Ctx::new(0x0F7F));
        let s = fsin(pi, c).unwrap().value.unwrap();
        assert_eq!(s, F80::new(false, 0x3FFF - 63, 0xC000_0000_0000_0000));
    }

    #[test]
    fn arctangent() {
        let c = ctx();
        for (y, x) in [
            (1.0f64, 1.0f64),
            (1.0, -1.0),
            (-2.0, 3.0),
            (1e-5, -7.0),
            (5.0, 1e-3),
        ] {
            let r = d(fpatan(f(y), f(x), c));
            assert!((r - y.atan2(x)).abs() < 1e-15, "atan2({y}, {x}) = {r}");
        }
        let r = fpatan(F80::zero(true), F80::zero(true), c);
        assert_eq!(r.value.unwrap(), constant(PI, c).negate());
    }

    #[test]
    fn exponentials_and_logarithms() {
        let c = ctx();
        for x in [0.5f64, -0.5, 1.0, -1.0, 1e-10, 0.3] {
            let r = d(f2xm1(f(x), c));
            assert!((r - (x.exp2() - 1.0)).abs() < 1e-15, "2^{x}-1 = {r}");
        }
        assert_eq!(f2xm1(f(1.0), c), Res::ok(F80::ONE, 0));
        for (x, y) in [(8.0f64, 1.0f64), (10.0, 2.0), (0.1, -3.0), (1e300, 1.0)] {
            let r = d(fyl2x(f(x), f(y), c));
            assert!(
                (r - y * x.log2()).abs() < 1e-13 * r.abs().max(1.0),
                "{y}*log2({x})"
            );
        }
        // Exact, but reported inexact as the hardware does.
        assert_eq!(fyl2x(f(8.0), f(1.0), c), Res::ok(f(3.0), PE));
        assert_eq!(
            fyl2x(F80::ZERO, f(1.0), c),
            Res::ok(F80::infinity(true), ZE)
        );
        for (x, y) in [(0.25f64, 1.0f64), (-0.2, 2.0), (1e-12, 1.0)] {
            let r = d(fyl2xp1(f(x), f(y), c));
            assert!(
                (r - y * x.ln_1p() / 2f64.ln()).abs() < 1e-15,
                "{y}*log2(1+{x})"
            );
        }
    }
}
