//! The 80-bit extended-precision format, held the same way on every host.
//!
//! ```text
//!  79 78            64 63 62                                               0
//! ┌──┬────────────────┬──┬──────────────────────────────────────────────────┐
//! │S │ exponent (15)  │J │ fraction (63)                                    │
//! └──┴────────────────┴──┴──────────────────────────────────────────────────┘
//!  `se` = bits 79..64                 `sig` = bits 63..0 (J is the explicit integer bit)
//!
//!  exponent 0       J=0: zero (fraction 0) or denormal; J=1: pseudo-denormal (read as
//!                   the denormal of the same value, tagged special)
//!  exponent 7FFF    J=1: infinity (fraction 0) or NaN (bit 62 set = quiet);
//!                   J=0: pseudo-infinity / pseudo-NaN (unsupported since the 387)
//!  otherwise        J=1: normal; J=0: unnormal (unsupported)
//! ```
//!
//! The memory formats the x87 converts from and to (IEEE single and double, two's
//! complement integers, packed BCD) live here too, as exact conversions; the rounding ones
//! are in [`super::arith`].

/// One x87 register value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F80 {
    /// Significand with the explicit integer bit (bit 63).
    pub sig: u64,
    /// Sign (bit 15) and biased exponent.
    pub se: u16,
}

/// Exponent bias of the extended format.
pub const BIAS: i32 = 16383;
/// The explicit integer bit.
pub const J: u64 = 1 << 63;
/// The quiet bit of a NaN.
pub const QUIET: u64 = 1 << 62;
/// Smallest unbiased exponent of a normal number.
pub const EMIN: i32 = 1 - BIAS;

/// What an x87 value is, as instructions that care about operand kinds see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Zero,
    /// Denormals and pseudo-denormals: both raise the denormal-operand exception.
    Denormal,
    Normal,
    Infinity,
    QNaN,
    SNaN,
    /// Unnormals, pseudo-NaNs and pseudo-infinities: invalid operands since the 387.
    Unsupported,
}

impl F80 {
    pub const ZERO: F80 = F80 { sig: 0, se: 0 };
    pub const ONE: F80 = F80 { sig: J, se: 0x3FFF };
    pub const INFINITY: F80 = F80 { sig: J, se: 0x7FFF };
    /// The QNaN the x87 returns for a masked invalid operation ("real indefinite").
    pub const INDEFINITE: F80 = F80 {
        sig: 0xC000_0000_0000_0000,
        se: 0xFFFF,
    };

    pub const fn new(neg: bool, exp: u16, sig: u64) -> F80 {
        F80 {
            sig,
            se: ((neg as u16) << 15) | (exp & 0x7FFF),
        }
    }

    /// From the 80 bits as a little-endian memory image would hold them.
    pub const fn from_bits(b: u128) -> F80 {
        F80 {
            sig: b as u64,
            se: (b >> 64) as u16,
        }
    }

    pub const fn to_bits(self) -> u128 {
        ((self.se as u128) << 64) | self.sig as u128
    }

    pub fn from_le_bytes(b: [u8; 10]) -> F80 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        F80 {
            sig: u64::from_le_bytes(s),
            se: u16::from_le_bytes([b[8], b[9]]),
        }
    }

    pub fn to_le_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.sig.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }

    pub const fn neg(self) -> bool {
        self.se & 0x8000 != 0
    }

    pub const fn exp(self) -> u16 {
        self.se & 0x7FFF
    }

    pub const fn with_sign(self, neg: bool) -> F80 {
        F80 {
            sig: self.sig,
            se: (self.se & 0x7FFF) | ((neg as u16) << 15),
        }
    }

    pub const fn negate(self) -> F80 {
        F80 {
            sig: self.sig,
            se: self.se ^ 0x8000,
        }
    }

    pub const fn abs(self) -> F80 {
        self.with_sign(false)
    }

    pub fn zero(neg: bool) -> F80 {
        F80::ZERO.with_sign(neg)
    }

    pub fn infinity(neg: bool) -> F80 {
        F80::INFINITY.with_sign(neg)
    }

    pub fn class(self) -> Class {
        let e = self.exp();
        let j = self.sig & J != 0;
        match e {
            0 if self.sig == 0 => Class::Zero,
            0 => Class::Denormal,
            0x7FFF if !j => Class::Unsupported,
            0x7FFF if self.sig == J => Class::Infinity,
            0x7FFF if self.sig & QUIET != 0 => Class::QNaN,
            0x7FFF => Class::SNaN,
            _ if j => Class::Normal,
            _ => Class::Unsupported,
        }
    }

    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }

    /// A NaN with its quiet bit set.
    pub const fn quieted(self) -> F80 {
        F80 {
            sig: self.sig | QUIET,
            se: self.se,
        }
    }

    /// The two-bit tag of a non-empty register: 0 valid, 1 zero, 2 special.
    pub fn tag(self) -> u16 {
        match self.class() {
            Class::Normal => 0,
            Class::Zero => 1,
            _ => 2,
        }
    }

    /// Unbiased exponent of bit 63 and the significand shifted so that bit 63 is set:
    /// the value is `sig * 2^(exp - 63)`. For finite nonzero values only.
    pub fn normalized(self) -> (i32, u64) {
        let e = if self.exp() == 0 {
            EMIN
        } else {
            i32::from(self.exp()) - BIAS
        };
        let lz = self.sig.leading_zeros();
        (e - lz as i32, self.sig << lz)
    }

    /// The exact value of an integer magnitude with a sign (|m| < 2^64 always fits).
    pub fn from_int(neg: bool, m: u64) -> F80 {
        if m == 0 {
            return F80::zero(neg);
        }
        let lz = m.leading_zeros();
        F80::new(neg, (BIAS + 63 - lz as i32) as u16, m << lz)
    }

    /// Exact conversion from an IEEE binary format of `ebits` exponent and `fbits`
    /// fraction bits. The flag says the source was a denormal in its own format (the
    /// denormal-operand exception looks at the source, not at the extended result).
    pub fn from_ieee(bits: u64, ebits: u32, fbits: u32) -> (F80, bool) {
        let neg = bits >> (ebits + fbits) & 1 != 0;
        let emax = (1u64 << ebits) - 1;
        let e = (bits >> fbits) & emax;
        let f = bits & ((1u64 << fbits) - 1);
        let bias = (1i32 << (ebits - 1)) - 1;
        let frac = f << (63 - fbits);
        if e == emax {
            // Infinity, or a NaN keeping its payload (and its quiet bit at bit 62).
            return (F80::new(neg, 0x7FFF, J | frac), false);
        }
        if e == 0 {
            if f == 0 {
                return (F80::zero(neg), false);
            }
            let lz = frac.leading_zeros();
            let exp = BIAS + 1 - bias - lz as i32;
            return (F80::new(neg, exp as u16, frac << lz), true);
        }
        let exp = e as i32 - bias + BIAS;
        (F80::new(neg, exp as u16, J | frac), false)
    }

    pub fn from_f32_bits(b: u32) -> (F80, bool) {
        F80::from_ieee(u64::from(b), 8, 23)
    }

    pub fn from_f64_bits(b: u64) -> (F80, bool) {
        F80::from_ieee(b, 11, 52)
    }

    /// The value of an 18-digit packed BCD integer (sign in bit 79; bits 72-78 ignored).
    /// Digits above 9 are summed with their binary weight, which keeps the result defined
    /// for malformed input.
    pub fn from_bcd(b: [u8; 10]) -> F80 {
        let mut m: u64 = 0;
        for &byte in b[..9].iter().rev() {
            m = m * 100 + u64::from(byte >> 4) * 10 + u64::from(byte & 0xF);
        }
        F80::from_int(b[9] & 0x80 != 0, m)
    }
}

/// Packed BCD of a magnitude below 10^18 with a sign.
pub fn to_bcd(neg: bool, mut m: u64) -> [u8; 10] {
    let mut b = [0u8; 10];
    for byte in b.iter_mut().take(9) {
        let lo = (m % 10) as u8;
        m /= 10;
        let hi = (m % 10) as u8;
        m /= 10;
        *byte = (hi << 4) | lo;
    }
    b[9] = if neg { 0x80 } else { 0 };
    b
}

/// What FBSTP stores for an invalid operand ("packed BCD indefinite").
pub const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(F80::ZERO.class(), Class::Zero);
        assert_eq!(F80::ONE.class(), Class::Normal);
        assert_eq!(F80::INFINITY.class(), Class::Infinity);
        assert_eq!(F80::INDEFINITE.class(), Class::QNaN);
        assert_eq!(F80::new(false, 0x7FFF, J | 1).class(), Class::SNaN);
        assert_eq!(F80::new(false, 0, 1).class(), Class::Denormal);
        assert_eq!(F80::new(false, 0, J).class(), Class::Denormal);
        assert_eq!(F80::new(false, 0x3FFF, 1).class(), Class::Unsupported);
        assert_eq!(F80::new(false, 0x7FFF, 0).class(), Class::Unsupported);
        assert_eq!(F80::new(false, 0x7FFF, QUIET).class(), Class::Unsupported);
    }

    #[test]
    fn ieee_loads_are_exact() {
        let (x, d) = F80::from_f64_bits(1.5f64.to_bits());
        assert_eq!(
            (x, d),
            (F80::new(false, 0x3FFF, 0xC000_0000_0000_0000), false)
        );
        // The smallest single denormal is 2^-149, a normal number in extended.
        let (x, d) = F80::from_f32_bits(1);
        assert_eq!((x, d), (F80::new(false, (BIAS - 149) as u16, J), true));
        let (x, _) = F80::from_f32_bits(0xFF80_0001);
        assert_eq!(x.class(), Class::SNaN);
        assert!(x.neg());
        let (x, _) = F80::from_f64_bits(0x7FF8_0000_0000_0000);
        assert_eq!(x, F80::new(false, 0x7FFF, 0xC000_0000_0000_0000));
    }

    #[test]
    fn integers_and_bcd() {
        assert_eq!(F80::from_int(false, 1), F80::ONE);
        assert_eq!(F80::from_int(true, 0), F80::zero(true));
        let x = F80::from_int(true, 1u64 << 63);
        assert_eq!((x.exp(), x.sig, x.neg()), (0x403E, J, true));
        let b = to_bcd(true, 123_456_789_012_345_678);
        assert_eq!(b[0], 0x78);
        assert_eq!(b[8], 0x12);
        assert_eq!(b[9], 0x80);
        assert_eq!(
            F80::from_bcd(b),
            F80::from_int(true, 123_456_789_012_345_678)
        );
    }

    #[test]
    fn normalized_denormals() {
        let (e, m) = F80::new(false, 0, 1).normalized();
        assert_eq!((e, m), (EMIN - 63, J));
        let (e, m) = F80::new(false, 0, J).normalized();
        assert_eq!((e, m), (EMIN, J));
    }
}
