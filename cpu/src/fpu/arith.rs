//! Correctly rounded x87 arithmetic.
//!
//! Every operation that rounds goes through one path:
//!
//! ```text
//!  operands ──► special cases (NaN, ∞, 0, invalid, denormal, zero divide)
//!     │
//!     ▼ finite
//!  exact or round-to-odd value in `Wide` (111-bit significand, 17-bit exponent)
//!     │   add/sub/mul/div: rustc_apfloat toward zero, lsb forced to 1 if inexact
//!     │   sqrt, remainders, scaling: our own integer arithmetic, sticky bit likewise
//!     ▼
//!  round once to 24/53/64 bits (precision control) with the rounding control,
//!  in the extended exponent range (denormals, overflow): rustc_apfloat
//!     │
//!     ▼
//!  masked responses or, for unmasked overflow/underflow, the result scaled by 2^∓24576
//! ```
//!
//! Rounding an intermediate that was itself rounded toward zero, with its last bit set
//! when anything was lost ("round to odd"), to a format at least two bits narrower gives
//! the correctly rounded result in every rounding mode, so one `Wide` operation and one
//! narrowing are exact x87 behaviour. `Wide`'s exponent range is wide enough that no
//! intermediate ever overflows or underflows, so the narrowing alone decides overflow,
//! underflow and denormalisation. Tininess is detected after rounding (with an
//! unbounded exponent), as x87 hardware does.

use core::cmp::Ordering;

use rustc_apfloat::ieee::{Double, IeeeFloat, Semantics, Single, X87DoubleExtended};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

use super::f80::{Class, BIAS, EMIN, F80};

/// Largest unbiased exponent of a finite extended value.
const EMAX: i32 = BIAS;
use super::{C1, DE, IE, OE, PE, UE, ZE};

/// The intermediate format: wider than any x87 result by far more than two bits, with an
/// exponent range no x87 operation leaves.
pub(crate) struct WideS;
impl Semantics for WideS {
    const BITS: usize = 128;
    const EXP_BITS: usize = 17;
}
pub(crate) type Wide = IeeeFloat<WideS>;
const WIDE_FRAC: u32 = 110;
const WIDE_BIAS: i32 = 65535;

/// Extended exponent range with a 24-bit significand: precision control "single".
pub(crate) struct Ext24S;
impl Semantics for Ext24S {
    const BITS: usize = 80;
    const EXP_BITS: usize = 15;
    const PRECISION: usize = 24;
}

/// Extended exponent range with a 53-bit significand: precision control "double".
pub(crate) struct Ext53S;
impl Semantics for Ext53S {
    const BITS: usize = 80;
    const EXP_BITS: usize = 15;
    const PRECISION: usize = 53;
}

/// The exponent adjustment of a result whose overflow or underflow exception is unmasked.
const REBIAS: i32 = 24576;

/// Precision control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prec {
    P24,
    P53,
    P64,
}

/// What an operation needs from the control word.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub rc: Round,
    pub pc: Prec,
    /// Exception masks (control word bits 0-5).
    pub masks: u16,
}

impl Ctx {
    pub fn new(cw: u16) -> Ctx {
        Ctx {
            rc: match (cw >> 10) & 3 {
                0 => Round::NearestTiesToEven,
                1 => Round::TowardNegative,
                2 => Round::TowardPositive,
                _ => Round::TowardZero,
            },
            pc: match (cw >> 8) & 3 {
                0 => Prec::P24,
                2 => Prec::P53,
                // 1 is reserved; the hardware rounds to 64 bits there.
                _ => Prec::P64,
            },
            masks: cw & 0x3F,
        }
    }

    /// The same context with full precision: only FADD, FSUB, FMUL, FDIV and FSQRT (and
    /// their integer-operand forms) obey precision control.
    pub fn full(self) -> Ctx {
        Ctx {
            pc: Prec::P64,
            ..self
        }
    }

    pub fn masked(self, f: u16) -> bool {
        self.masks & f == f
    }
}

/// The outcome of an operation: the value to store (`None`: an unmasked exception keeps
/// the destination unchanged) and status bits (exception flags, C1 = rounded up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Res {
    pub value: Option<F80>,
    pub flags: u16,
}

impl Res {
    pub fn ok(v: F80, flags: u16) -> Res {
        Res {
            value: Some(v),
            flags,
        }
    }
}

/// An invalid operation: real indefinite if masked.
pub fn invalid(ctx: Ctx) -> Res {
    Res {
        value: ctx.masked(IE).then_some(F80::INDEFINITE),
        flags: IE,
    }
}

/// A NaN operand of a one-operand operation: quieted, invalid if it was signalling.
pub fn nan1(x: F80, ctx: Ctx) -> Res {
    if x.class() == Class::SNaN {
        Res {
            value: ctx.masked(IE).then_some(x.quieted()),
            flags: IE,
        }
    } else {
        Res::ok(x, 0)
    }
}

/// The x87 rules for two operands of which at least one is a NaN: a lone NaN wins; of a
/// signalling and a quiet NaN the quiet one; of two alike, the larger significand (the
/// positive one on a tie). Signalling NaNs raise the invalid-operation exception.
pub fn nan2(a: F80, b: F80, ctx: Ctx) -> Res {
    let (ca, cb) = (a.class(), b.class());
    let r = match (a.is_nan(), b.is_nan()) {
        (true, false) => a,
        (false, true) => b,
        _ if ca != cb => {
            if ca == Class::QNaN {
                a
            } else {
                b
            }
        }
        _ => match a.sig.cmp(&b.sig) {
            Ordering::Greater => a,
            Ordering::Less => b,
            Ordering::Equal => {
                if a.neg() {
                    b
                } else {
                    a
                }
            }
        },
    }
    .quieted();
    if ca == Class::SNaN || cb == Class::SNaN {
        Res {
            value: ctx.masked(IE).then_some(r),
            flags: IE,
        }
    } else {
        Res::ok(r, 0)
    }
}

// ---------------------------------------------------------------------------------------
// The wide intermediate

/// `m * 2^e` with its last bit forced to one if `sticky` or if `m` has more bits than
/// `Wide` holds (round to odd). `m` must not be zero.
pub(crate) fn wide_from_parts(neg: bool, m: u128, e: i32, sticky: bool) -> Wide {
    debug_assert!(m != 0);
    let lz = m.leading_zeros();
    let exp = 127 - lz as i32 + e;
    debug_assert!((-WIDE_BIAS + 1..=WIDE_BIAS).contains(&exp));
    let below = (m << lz) << 1; // the bits after the leading one, left-aligned
    let frac = below >> (128 - WIDE_FRAC);
    let lost = below << WIDE_FRAC != 0;
    Wide::from_bits(
        (u128::from(neg) << 127)
            | (((exp + WIDE_BIAS) as u128) << WIDE_FRAC)
            | frac
            | u128::from(sticky || lost),
    )
}

/// The exact value of an x87 register (zeros and infinities included; not NaNs).
pub(crate) fn to_wide(x: F80) -> Wide {
    match x.class() {
        Class::Zero => {
            if x.neg() {
                -Wide::ZERO
            } else {
                Wide::ZERO
            }
        }
        Class::Infinity => {
            if x.neg() {
                -Wide::INFINITY
            } else {
                Wide::INFINITY
            }
        }
        _ => {
            let (e, m) = x.normalized();
            wide_from_parts(x.neg(), u128::from(m), e - 63, false)
        }
    }
}

/// A result of a toward-zero operation made round-to-odd.
fn odd(r: StatusAnd<Wide>) -> Wide {
    if r.status.contains(Status::INEXACT) {
        Wide::from_bits(r.value.to_bits() | 1)
    } else {
        r.value
    }
}

/// Rounds `w` to the precision `pc` in the extended exponent range.
fn narrow(w: Wide, pc: Prec, rc: Round) -> (F80, Status) {
    let mut lost = false;
    let (x, st): (X87DoubleExtended, Status) = match pc {
        Prec::P64 => {
            let r = w.convert_r(rc, &mut lost);
            (r.value, r.status)
        }
        Prec::P53 => {
            let r: StatusAnd<IeeeFloat<Ext53S>> = w.convert_r(rc, &mut lost);
            (r.value.convert(&mut lost).value, r.status)
        }
        Prec::P24 => {
            let r: StatusAnd<IeeeFloat<Ext24S>> = w.convert_r(rc, &mut lost);
            (r.value.convert(&mut lost).value, r.status)
        }
    };
    (F80::from_bits(x.to_bits()), st)
}

fn greater_abs(a: Wide, b: Wide) -> bool {
    a.abs().partial_cmp(&b.abs()) == Some(Ordering::Greater)
}

/// Whether a result is tiny for the underflow exception: below 2^-16382 after rounding
/// to the precision with an unbounded exponent, as the x87 detects it.
fn is_tiny(w: Wide, ctx: Ctx) -> bool {
    let e = w.ilogb();
    if e >= EMIN {
        return false;
    }
    if e < EMIN - 1 {
        return true;
    }
    // Just below 2^-16382: tiny unless rounding carries up to it (scaled into the
    // normal range, where rounding is that of an unbounded exponent).
    let (r, _) = narrow(w.scalbn(REBIAS), ctx.pc, ctx.rc);
    r.exp() < (EMIN + REBIAS + BIAS) as u16
}

/// Rounds an exact or round-to-odd finite nonzero value to an x87 register result.
pub(crate) fn round_wide(w: Wide, ctx: Ctx) -> Res {
    let tiny = is_tiny(w, ctx);
    let (r, st) = narrow(w, ctx.pc, ctx.rc);
    // Overflow: the result rounded with an unbounded exponent is 2^16384 or more (the
    // library reports it only when it returns infinity).
    let overflow = w.ilogb() > EMAX || r.class() == Class::Infinity;
    let rebias = if overflow && !ctx.masked(OE) {
        Some((-REBIAS, OE))
    } else if tiny && !ctx.masked(UE) {
        Some((REBIAS, UE))
    } else {
        None
    };
    if let Some((adj, flag)) = rebias {
        let w2 = w.scalbn(adj);
        // Beyond what the rebias can bring back (only FSCALE gets there): ∞ or 0.
        if w2.ilogb() > EMAX {
            return Res::ok(F80::infinity(w.is_negative()), flag | PE | C1);
        }
        if w2.ilogb() < EMIN {
            return Res::ok(F80::zero(w.is_negative()), flag | PE);
        }
        let (r2, st2) = narrow(w2, ctx.pc, ctx.rc);
        let mut flags = flag;
        if st2.contains(Status::INEXACT) {
            flags |= PE;
            if greater_abs(to_wide(r2), w2) {
                flags |= C1;
            }
        }
        return Res::ok(r2, flags);
    }
    let inexact = st.contains(Status::INEXACT);
    let mut flags = 0;
    if overflow {
        flags |= OE;
    }
    if inexact {
        flags |= PE;
        if tiny {
            flags |= UE;
        }
        if greater_abs(to_wide(r), w) {
            flags |= C1;
        }
    }
    Res::ok(r, flags)
}

// ---------------------------------------------------------------------------------------
// The four operations

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// `a op b`. `pre` carries a denormal-operand flag of a memory source, whose denormal
/// status belongs to its own format.
pub fn binop(op: BinOp, a: F80, b: F80, pre: u16, ctx: Ctx) -> Res {
    use Class::*;
    let (ca, cb) = (a.class(), b.class());
    if ca == Unsupported || cb == Unsupported {
        return invalid(ctx);
    }
    if a.is_nan() || b.is_nan() {
        return nan2(a, b, ctx);
    }
    let bneg = b.neg() != (op == BinOp::Sub);
    let sign = a.neg() != b.neg();
    let bad = match op {
        BinOp::Add | BinOp::Sub => ca == Infinity && cb == Infinity && a.neg() != bneg,
        BinOp::Mul => matches!((ca, cb), (Zero, Infinity) | (Infinity, Zero)),
        BinOp::Div => matches!((ca, cb), (Zero, Zero) | (Infinity, Infinity)),
    };
    if bad {
        return invalid(ctx);
    }
    // A zero divisor is reported alone, before a denormal dividend.
    if op == BinOp::Div && cb == Zero && ca != Zero && ca != Infinity {
        let value = ctx.masked(ZE).then_some(F80::infinity(sign));
        return Res { value, flags: ZE };
    }
    let mut flags = pre;
    if ca == Denormal || cb == Denormal {
        flags |= DE;
    }
    if flags & DE != 0 && !ctx.masked(DE) {
        return Res { value: None, flags };
    }
    let rz = Round::TowardZero;
    let w = match op {
        BinOp::Add | BinOp::Sub => {
            if ca == Infinity {
                return Res::ok(a, flags);
            }
            if cb == Infinity {
                return Res::ok(b.with_sign(bneg), flags);
            }
            let zero_sign = if a.neg() == bneg {
                a.neg()
            } else {
                ctx.rc == Round::TowardNegative
            };
            if ca == Zero && cb == Zero {
                return Res::ok(F80::zero(zero_sign), flags);
            }
            let w = odd(to_wide(a).add_r(to_wide(b.with_sign(bneg)), rz));
            if w.is_zero() {
                return Res::ok(F80::zero(zero_sign), flags);
            }
            w
        }
        BinOp::Mul => {
            if ca == Infinity || cb == Infinity {
                return Res::ok(F80::infinity(sign), flags);
            }
            if ca == Zero || cb == Zero {
                return Res::ok(F80::zero(sign), flags);
            }
            odd(to_wide(a).mul_r(to_wide(b), rz))
        }
        BinOp::Div => {
            if ca == Infinity {
                return Res::ok(F80::infinity(sign), flags);
            }
            if cb == Infinity || ca == Zero {
                return Res::ok(F80::zero(sign), flags);
            }
            odd(to_wide(a).div_r(to_wide(b), rz))
        }
    };
    let mut r = round_wide(w, ctx);
    r.flags |= flags;
    r
}

/// Square root, correctly rounded: the digit-by-digit integer root of the significand
/// gives 70 bits and a sticky bit.
pub fn sqrt(x: F80, ctx: Ctx) -> Res {
    match x.class() {
        Class::Unsupported => return invalid(ctx),
        Class::QNaN | Class::SNaN => return nan1(x, ctx),
        Class::Zero => return Res::ok(x, 0),
        _ if x.neg() => return invalid(ctx),
        Class::Infinity => return Res::ok(x, 0),
        _ => {}
    }
    let mut flags = 0;
    if x.class() == Class::Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    let (e, m) = x.normalized();
    let mut k = e - 63;
    let mut mm = u128::from(m);
    if k & 1 != 0 {
        mm <<= 1;
        k -= 1;
    }
    // sqrt(mm * 2^74) has 70 bits (mm has 64 or 65).
    let (root, rest) = isqrt_shifted(mm, 74, 70);
    let w = wide_from_parts(false, root, k / 2 - 37, rest);
    let mut r = round_wide(w, ctx);
    r.flags |= flags;
    r
}

/// The integer square root of `m << shift` (a number of at most `2 * digits` bits),
/// `digits` bits long, and whether a remainder was left.
pub(crate) fn isqrt_shifted(m: u128, shift: u32, digits: u32) -> (u128, bool) {
    let bit = |p: u32| -> u128 {
        if p < shift || p - shift >= 128 {
            0
        } else {
            (m >> (p - shift)) & 1
        }
    };
    let mut rem: u128 = 0;
    let mut root: u128 = 0;
    for i in (0..digits).rev() {
        rem = (rem << 2) | (bit(2 * i + 1) << 1) | bit(2 * i);
        let trial = (root << 2) | 1;
        root <<= 1;
        if rem >= trial {
            rem -= trial;
            root |= 1;
        }
    }
    (root, rem != 0)
}

// ---------------------------------------------------------------------------------------
// Comparisons

/// The outcome of a comparison: `None` = unordered.
pub fn compare(a: F80, b: F80, quiet: bool) -> (Option<Ordering>, u16) {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        return (None, IE);
    }
    if a.is_nan() || b.is_nan() {
        let signalling = ca == Class::SNaN || cb == Class::SNaN;
        return (None, if signalling || !quiet { IE } else { 0 });
    }
    let flags = if ca == Class::Denormal || cb == Class::Denormal {
        DE
    } else {
        0
    };
    (to_wide(a).partial_cmp(&to_wide(b)), flags)
}

// ---------------------------------------------------------------------------------------
// Rounding to integers

/// `|x|` rounded to an integer by `rc`: the magnitude (saturated far beyond any
/// destination), whether it was inexact and whether it was rounded up in magnitude.
/// For finite values.
pub fn round_int(x: F80, rc: Round) -> (u128, bool, bool) {
    if x.class() == Class::Zero {
        return (0, false, false);
    }
    let (e, m) = x.normalized();
    if e >= 63 {
        return if e - 63 >= 64 {
            (u128::MAX, false, false)
        } else {
            (u128::from(m) << (e - 63), false, false)
        };
    }
    let (int, frac_cmp, inexact) = if e < -1 {
        (0u128, Ordering::Less, true)
    } else {
        let sh = (63 - e) as u32; // 1..=64
        let m = u128::from(m);
        let int = m >> sh;
        let frac = m & ((1u128 << sh) - 1);
        (int, frac.cmp(&(1u128 << (sh - 1))), frac != 0)
    };
    let up = inexact
        && match rc {
            Round::TowardZero => false,
            Round::TowardPositive => !x.neg(),
            Round::TowardNegative => x.neg(),
            _ => frac_cmp == Ordering::Greater || (frac_cmp == Ordering::Equal && int & 1 == 1),
        };
    (int + u128::from(up), inexact, up)
}

/// FRNDINT.
pub fn round_to_integral(x: F80, ctx: Ctx) -> Res {
    match x.class() {
        Class::Unsupported => return invalid(ctx),
        Class::QNaN | Class::SNaN => return nan1(x, ctx),
        Class::Zero | Class::Infinity => return Res::ok(x, 0),
        _ => {}
    }
    let mut flags = 0;
    if x.class() == Class::Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    let (e, _) = x.normalized();
    if e >= 63 {
        return Res::ok(x, flags);
    }
    let (int, inexact, up) = round_int(x, ctx.rc);
    if inexact {
        flags |= PE;
    }
    if up {
        flags |= C1;
    }
    Res::ok(F80::from_int(x.neg(), int as u64), flags)
}

/// FIST/FISTP of `bits` bits: the two's complement value, or the integer indefinite.
pub fn to_int(x: F80, bits: u32, ctx: Ctx) -> (Option<u64>, u16) {
    let indefinite = 1u64 << (bits - 1);
    let inv = || (ctx.masked(IE).then_some(indefinite), IE);
    match x.class() {
        Class::Unsupported | Class::QNaN | Class::SNaN | Class::Infinity => return inv(),
        _ => {}
    }
    // Stores do not report denormal operands.
    let mut flags = 0;
    let (mag, inexact, up) = round_int(x, ctx.rc);
    let limit = u128::from(indefinite) - u128::from(!x.neg());
    if mag > limit {
        let (v, f) = inv();
        return (v, f | flags);
    }
    if inexact {
        flags |= PE;
    }
    if up {
        flags |= C1;
    }
    let v = if x.neg() {
        (mag as u64).wrapping_neg()
    } else {
        mag as u64
    };
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (Some(v & mask), flags)
}

/// FBSTP: the magnitude and sign to pack, or `None` for the BCD indefinite.
pub fn to_bcd_int(x: F80, ctx: Ctx) -> (Option<Option<(bool, u64)>>, u16) {
    let inv = || (ctx.masked(IE).then_some(None), IE);
    match x.class() {
        Class::Unsupported | Class::QNaN | Class::SNaN | Class::Infinity => return inv(),
        _ => {}
    }
    // Stores do not report denormal operands.
    let mut flags = 0;
    let (mag, inexact, up) = round_int(x, ctx.rc);
    if mag > 999_999_999_999_999_999 {
        let (v, f) = inv();
        return (v, f | flags);
    }
    if inexact {
        flags |= PE;
    }
    if up {
        flags |= C1;
    }
    (Some(Some((x.neg(), mag as u64))), flags)
}

// ---------------------------------------------------------------------------------------
// Stores to the IEEE formats

/// FST/FSTP to single (`double = false`) or double precision: the bits to store, or
/// `None` for an unmasked exception (nothing is written).
pub fn to_ieee(x: F80, double: bool, ctx: Ctx) -> (Option<u64>, u16) {
    let (ebits, fbits) = if double { (11, 52) } else { (8, 23) };
    let sign = u64::from(x.neg()) << (ebits + fbits);
    let exp_all = ((1u64 << ebits) - 1) << fbits;
    let quiet = 1u64 << (fbits - 1);
    let nan = |x: F80| sign | exp_all | quiet | ((x.sig << 1) >> (64 - fbits));
    match x.class() {
        Class::Unsupported => {
            return (
                ctx.masked(IE)
                    .then_some((1 << (ebits + fbits)) | exp_all | quiet),
                IE,
            )
        }
        Class::SNaN => return (ctx.masked(IE).then_some(nan(x)), IE),
        Class::QNaN => return (Some(nan(x)), 0),
        Class::Infinity => return (Some(sign | exp_all), 0),
        Class::Zero => return (Some(sign), 0),
        _ => {}
    }
    // Stores do not report denormal operands.
    let mut flags = 0;
    let w = to_wide(x);
    let emin = if double { -1022 } else { -126 };
    // Tiny after rounding: near 2^emin, round to the precision in the extended exponent
    // range, where that is rounding with an unbounded exponent.
    let tiny = w.ilogb() < emin - 1
        || (w.ilogb() == emin - 1 && {
            let (r, _) = narrow(w, if double { Prec::P53 } else { Prec::P24 }, ctx.rc);
            r.normalized().0 < emin
        });
    let mut lost = false;
    let (bits, back, st) = if double {
        let r: StatusAnd<Double> = w.convert_r(ctx.rc, &mut lost);
        let back: Wide = r.value.convert(&mut lost).value;
        (r.value.to_bits() as u64, back, r.status)
    } else {
        let r: StatusAnd<Single> = w.convert_r(ctx.rc, &mut lost);
        let back: Wide = r.value.convert(&mut lost).value;
        (r.value.to_bits() as u64, back, r.status)
    };
    let emax = if double { 1023 } else { 127 };
    let overflow = w.ilogb() > emax || back.is_infinite();
    if overflow && !ctx.masked(OE) {
        return (None, flags | OE);
    }
    if tiny && !ctx.masked(UE) {
        return (None, flags | UE);
    }
    if overflow {
        flags |= OE;
    }
    if st.contains(Status::INEXACT) {
        flags |= PE;
        if tiny {
            flags |= UE;
        }
        if greater_abs(back, w) {
            flags |= C1;
        }
    }
    (Some(bits), flags)
}

// ---------------------------------------------------------------------------------------
// FSCALE, FPREM, FPREM1

/// FSCALE: `a * 2^trunc(b)`.
pub fn scale(a: F80, b: F80, ctx: Ctx) -> Res {
    use Class::*;
    let (ca, cb) = (a.class(), b.class());
    if ca == Unsupported || cb == Unsupported {
        return invalid(ctx);
    }
    if a.is_nan() || b.is_nan() {
        return nan2(a, b, ctx);
    }
    let bad = match cb {
        Infinity if !b.neg() => ca == Zero,
        Infinity => ca == Infinity,
        _ => false,
    };
    if bad {
        return invalid(ctx);
    }
    let mut flags = 0;
    if ca == Denormal || cb == Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return Res { value: None, flags };
        }
    }
    if ca == Infinity || ca == Zero {
        return Res::ok(a, flags);
    }
    if cb == Infinity {
        let v = if b.neg() {
            F80::zero(a.neg())
        } else {
            F80::infinity(a.neg())
        };
        return Res::ok(v, flags);
    }
    // trunc(b), clamped where the result is certainly beyond the extended range, even
    // rebiased.
    const LIMIT: i32 = 60000;
    let n = if cb == Zero {
        0
    } else {
        let (e, m) = b.normalized();
        let mag = if e < 0 {
            0
        } else if e > 30 {
            LIMIT
        } else {
            ((m >> (63 - e)) as i32).min(LIMIT)
        };
        if b.neg() {
            -mag
        } else {
            mag
        }
    };
    let (e, m) = a.normalized();
    let e = (e + n).clamp(-LIMIT, LIMIT);
    let w = wide_from_parts(a.neg(), u128::from(m), e - 63, false);
    let mut r = round_wide(w, ctx.full());
    r.flags |= flags;
    r
}

/// A partial remainder: the result, the low three quotient bits and whether the
/// reduction is complete (C2 = 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rem {
    pub res: Res,
    /// `None` when no reduction took place (NaN or invalid operands): C0 and C3 stay.
    pub q: Option<u8>,
    pub done: bool,
}

/// FPREM (`ieee = false`: quotient truncated) and FPREM1 (quotient rounded to nearest).
/// Exponent differences of 64 and more are reduced by a chunk of 32 to 63 bits at a
/// time, as Intel and AMD processors do, so a loop on C2 ends with the right quotient
/// bits.
pub fn rem(a: F80, b: F80, ieee: bool, ctx: Ctx) -> Rem {
    use Class::*;
    let out = |res: Res| Rem {
        res,
        q: None,
        done: true,
    };
    let zero_q = |res: Res| Rem {
        res,
        q: Some(0),
        done: true,
    };
    let (ca, cb) = (a.class(), b.class());
    if ca == Unsupported || cb == Unsupported {
        return out(invalid(ctx));
    }
    if a.is_nan() || b.is_nan() {
        return out(nan2(a, b, ctx));
    }
    if ca == Infinity || cb == Zero {
        return out(invalid(ctx));
    }
    let mut flags = 0;
    if ca == Denormal || cb == Denormal {
        flags |= DE;
        if !ctx.masked(DE) {
            return out(Res { value: None, flags });
        }
    }
    // The dividend comes back as any arithmetic result would: normalised, and tiny
    // ones signal underflow when that is unmasked.
    let keep = |flags: u16| {
        if ca == Zero {
            return Res::ok(a, flags);
        }
        let mut r = round_wide(to_wide(a), ctx.full());
        r.flags |= flags;
        r
    };
    if cb == Infinity || ca == Zero {
        return zero_q(keep(flags));
    }
    let (ea, ma) = a.normalized();
    let (eb, mb) = b.normalized();
    let d = ea - eb;
    if d < -1 || (d == -1 && !ieee) {
        return zero_q(keep(flags));
    }
    // num / den with the remainder in units of 2^unit.
    let (num, den, unit, partial) = if d >= 64 {
        let n = 32 + (d & 31);
        (u128::from(ma) << n, u128::from(mb), eb + (d - n) - 63, true)
    } else if d >= 0 {
        (u128::from(ma) << d, u128::from(mb), eb - 63, false)
    } else {
        (u128::from(ma), u128::from(mb) << 1, ea - 63, false)
    };
    let mut q = num / den;
    let mut r = num % den;
    let mut neg = a.neg();
    if ieee && !partial && (2 * r > den || (2 * r == den && q & 1 == 1)) {
        q += 1;
        r = den - r;
        neg = !neg;
    }
    let res = if r == 0 {
        Res::ok(F80::zero(a.neg()), flags)
    } else {
        let mut res = round_wide(wide_from_parts(neg, r, unit, false), ctx.full());
        res.flags |= flags;
        res
    };
    Rem {
        res,
        q: Some(if partial { 0 } else { (q & 7) as u8 }),
        done: !partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::f80::J;

    fn f(x: f64) -> F80 {
        F80::from_f64_bits(x.to_bits()).0
    }

    fn ctx(cw: u16) -> Ctx {
        Ctx::new(cw)
    }

    const CW: u16 = 0x037F;

    #[test]
    fn simple_arithmetic() {
        let r = binop(BinOp::Add, f(1.5), f(2.25), 0, ctx(CW));
        assert_eq!(r, Res::ok(f(3.75), 0));
        let r = binop(BinOp::Div, f(1.0), f(3.0), 0, ctx(CW));
        assert_eq!(r.value.unwrap().sig, 0xAAAA_AAAA_AAAA_AAAB);
        assert_eq!(r.flags, PE | C1);
        // Precision control "single": 1/3 rounded to 24 bits.
        let r = binop(BinOp::Div, f(1.0), f(3.0), 0, ctx(CW & !0x300));
        assert_eq!(r.value.unwrap().sig, 0xAAAA_AB00_0000_0000);
        // Toward zero.
        let r = binop(BinOp::Div, f(1.0), f(3.0), 0, ctx(CW | 0xC00));
        assert_eq!(r.value.unwrap().sig, 0xAAAA_AAAA_AAAA_AAAA);
        assert_eq!(r.flags, PE);
    }

    #[test]
    fn zero_signs_follow_rounding() {
        let r = binop(BinOp::Sub, f(1.0), f(1.0), 0, ctx(CW));
        assert_eq!(r.value, Some(F80::zero(false)));
        let r = binop(BinOp::Sub, f(1.0), f(1.0), 0, ctx(CW | 0x400));
        assert_eq!(r.value, Some(F80::zero(true)));
    }

    #[test]
    fn invalid_and_zero_divide() {
        let r = binop(BinOp::Mul, F80::ZERO, F80::INFINITY, 0, ctx(CW));
        assert_eq!(r, Res::ok(F80::INDEFINITE, IE));
        let r = binop(BinOp::Div, f(-2.0), F80::ZERO, 0, ctx(CW));
        assert_eq!(r, Res::ok(F80::infinity(true), ZE));
        let r = binop(BinOp::Div, f(-2.0), F80::ZERO, 0, ctx(CW & !ZE));
        assert_eq!(r.value, None);
    }

    #[test]
    fn overflow_and_underflow() {
        let big = F80::new(false, 0x7FFE, u64::MAX);
        let r = binop(BinOp::Mul, big, f(2.0), 0, ctx(CW));
        assert_eq!(r, Res::ok(F80::INFINITY, OE | PE | C1));
        let r = binop(BinOp::Mul, big, f(2.0), 0, ctx(CW | 0xC00));
        assert_eq!(r, Res::ok(big, OE | PE));
        // Unmasked: the exponent comes back rebiased by 24576.
        let r = binop(BinOp::Mul, big, f(2.0), 0, ctx(CW & !OE));
        assert_eq!(r, Res::ok(F80::new(false, 0x7FFF - 24576, u64::MAX), OE));
        let tiny = F80::new(false, 1, J);
        let r = binop(BinOp::Mul, tiny, f(0.75), 0, ctx(CW));
        assert_eq!(r, Res::ok(F80::new(false, 0, 0x6000_0000_0000_0000), 0));
        let r = binop(BinOp::Div, tiny, f(3.0), 0, ctx(CW));
        assert_eq!(r.flags & (UE | PE), UE | PE);
    }

    #[test]
    fn square_roots() {
        let r = sqrt(f(2.0), ctx(CW));
        assert_eq!(
            r.value.unwrap(),
            F80::new(false, 0x3FFF, 0xB504_F333_F9DE_6484)
        );
        assert_eq!(r.flags, PE);
        assert_eq!(sqrt(f(6.25), ctx(CW)), Res::ok(f(2.5), 0));
        assert_eq!(sqrt(f(-1.0), ctx(CW)), Res::ok(F80::INDEFINITE, IE));
        assert_eq!(sqrt(F80::zero(true), ctx(CW)), Res::ok(F80::zero(true), 0));
        let r = sqrt(F80::new(false, 0, 1), ctx(CW));
        assert_eq!(r.flags, DE | PE);
    }

    #[test]
    fn integer_rounding() {
        let c = ctx(CW);
        assert_eq!(to_int(f(2.5), 16, c), (Some(2), PE));
        assert_eq!(to_int(f(3.5), 16, c), (Some(4), PE | C1));
        assert_eq!(to_int(f(-32768.0), 16, c), (Some(0x8000), 0));
        assert_eq!(to_int(f(32768.0), 16, c), (Some(0x8000), IE));
        assert_eq!(
            to_int(f(-1.5), 32, ctx(CW | 0x400)),
            (Some(0xFFFF_FFFE), PE | C1)
        );
        let r = round_to_integral(f(-0.25), c);
        assert_eq!(r, Res::ok(F80::zero(true), PE));
    }

    #[test]
    fn stores_round_and_flag() {
        let c = ctx(CW);
        let (v, fl) = to_ieee(f(0.1), false, c);
        assert_eq!(v, Some(u64::from(0.1f32.to_bits())));
        assert_eq!(fl, PE | C1);
        let (v, fl) = to_ieee(f(1e300), false, c);
        assert_eq!(v, Some(0x7F80_0000));
        assert_eq!(fl, OE | PE | C1);
        let (v, _) = to_ieee(F80::new(true, 0x7FFF, J | 1), true, c);
        assert_eq!(v, Some(0xFFF8_0000_0000_0000));
    }

    #[test]
    fn remainders() {
        let c = ctx(CW);
        let r = rem(f(7.0), f(2.0), false, c);
        assert_eq!(r.res.value, Some(f(1.0)));
        assert_eq!((r.q, r.done), (Some(3), true));
        let r = rem(f(7.0), f(2.0), true, c);
        assert_eq!(r.res.value, Some(f(-1.0)));
        assert_eq!(r.q, Some(4));
        let r = rem(f(1e30), f(3.0), false, c);
        assert!(!r.done);
        let r = rem(f(5.0), F80::ZERO, false, c);
        assert_eq!(r.res, Res::ok(F80::INDEFINITE, IE));
    }

    #[test]
    fn scaling() {
        let c = ctx(CW);
        assert_eq!(scale(f(1.5), f(3.9), c), Res::ok(f(12.0), 0));
        assert_eq!(scale(f(1.5), f(-1.0), c), Res::ok(f(0.75), 0));
        assert_eq!(
            scale(f(1.0), f(1e10), c),
            Res::ok(F80::INFINITY, OE | PE | C1)
        );
        assert_eq!(
            scale(F80::ZERO, F80::INFINITY, c),
            Res::ok(F80::INDEFINITE, IE)
        );
    }

    #[test]
    fn nan_rules() {
        let c = ctx(CW);
        let q1 = F80::new(false, 0x7FFF, 0xC000_0000_0000_0001);
        let s2 = F80::new(false, 0x7FFF, 0x8000_0000_0000_0002);
        assert_eq!(nan2(q1, s2, c), Res::ok(q1, IE));
        assert_eq!(nan2(s2, f(1.0), c), Res::ok(s2.quieted(), IE));
        let q3 = F80::new(true, 0x7FFF, 0xC000_0000_0000_0003);
        assert_eq!(nan2(q1, q3, c), Res::ok(q3, 0));
    }
}
