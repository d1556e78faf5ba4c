//! The memory images of the x87 state: the environment (FSTENV/FLDENV, and the head of
//! FSAVE/FRSTOR) in its four layouts, and the FXSAVE/FXRSTOR area.
//!
//! ```text
//!  environment, 32-bit protected (28 bytes)    16-bit protected (14 bytes)
//!   +0  FCW      (upper half reserved, 1s)      +0  FCW
//!   +4  FSW                                     +2  FSW
//!   +8  FTW                                     +4  FTW
//!  +12  FIP offset                              +6  FIP offset
//!  +16  FCS | FOP << 16                         +8  FCS
//!  +20  FDP offset                             +10  FDP offset
//!  +24  FDS                                    +12  FDS
//!
//!  real mode and V86 (IP/DP are linear: selector·16 + offset)
//!   32-bit: +12 IP[15:0]  +16 IP[31:16] << 12 | FOP  +20 DP[15:0]  +24 DP[31:16] << 12
//!   16-bit: +6  IP[15:0]  +8  IP[19:16] << 12 | FOP  +10 DP[15:0]  +12 DP[19:16] << 12
//!
//!  FSAVE = environment, then ST(0)..ST(7), 10 bytes each (94 or 108 bytes)
//!
//!  FXSAVE (512 bytes, 16-byte aligned; only the first 160 are written here)
//!   +0 FCW  +2 FSW  +4 abridged FTW (1 bit per register: not empty)  +6 FOP
//!   +8 FIP  +12 FCS  +16 FDP  +20 FDS  +24 MXCSR  +28 MXCSR_MASK
//!  +32 + 16·i  ST(i), 10 bytes (6 reserved)
//! ```

use super::{FpuState, F80};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    Real16,
    Prot16,
    Real32,
    Prot32,
}

impl Layout {
    pub(super) fn new(real: bool, op32: bool) -> Layout {
        match (real, op32) {
            (true, false) => Layout::Real16,
            (false, false) => Layout::Prot16,
            (true, true) => Layout::Real32,
            (false, true) => Layout::Prot32,
        }
    }

    pub(super) fn len(self) -> usize {
        match self {
            Layout::Real16 | Layout::Prot16 => 14,
            _ => 28,
        }
    }
}

fn put16(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The environment image (the first `layout.len()` bytes of the result).
pub(super) fn encode_env(f: &FpuState, layout: Layout) -> [u8; 28] {
    let mut b = [0u8; 28];
    let (cw, sw, tw) = (u32::from(f.cw), u32::from(f.sw), u32::from(f.tw));
    let fop = u32::from(f.fop & 0x7FF);
    let lin_ip = (u32::from(f.fcs) << 4).wrapping_add(f.fip);
    let lin_dp = (u32::from(f.fds) << 4).wrapping_add(f.fdp);
    const RES: u32 = 0xFFFF_0000;
    match layout {
        Layout::Prot32 => {
            put32(&mut b, 0, RES | cw);
            put32(&mut b, 4, RES | sw);
            put32(&mut b, 8, RES | tw);
            put32(&mut b, 12, f.fip);
            put32(&mut b, 16, u32::from(f.fcs) | (fop << 16));
            put32(&mut b, 20, f.fdp);
            put32(&mut b, 24, RES | u32::from(f.fds));
        }
        Layout::Real32 => {
            put32(&mut b, 0, RES | cw);
            put32(&mut b, 4, RES | sw);
            put32(&mut b, 8, RES | tw);
            put32(&mut b, 12, RES | (lin_ip & 0xFFFF));
            put32(&mut b, 16, ((lin_ip >> 16) << 12) | fop);
            put32(&mut b, 20, RES | (lin_dp & 0xFFFF));
            put32(&mut b, 24, (lin_dp >> 16) << 12);
        }
        Layout::Prot16 => {
            put16(&mut b, 0, cw);
            put16(&mut b, 2, sw);
            put16(&mut b, 4, tw);
            put16(&mut b, 6, f.fip);
            put16(&mut b, 8, u32::from(f.fcs));
            put16(&mut b, 10, f.fdp);
            put16(&mut b, 12, u32::from(f.fds));
        }
        Layout::Real16 => {
            put16(&mut b, 0, cw);
            put16(&mut b, 2, sw);
            put16(&mut b, 4, tw);
            put16(&mut b, 6, lin_ip);
            put16(&mut b, 8, ((lin_ip >> 16) << 12) | fop);
            put16(&mut b, 10, lin_dp);
            put16(&mut b, 12, (lin_dp >> 16) << 12);
        }
    }
    b
}

/// Loads an environment image: control, status (TOP, flags), which registers are empty
/// (the other tags follow the register contents), pointers. ES follows the loaded
/// flags and masks.
pub(super) fn decode_env(f: &mut FpuState, layout: Layout, b: &[u8]) {
    let wide = matches!(layout, Layout::Prot32 | Layout::Real32);
    let word = |i: usize| {
        if wide {
            get32(b, 4 * i) & 0xFFFF
        } else {
            get16(b, 2 * i)
        }
    };
    let cw = word(0) as u16;
    f.sw = word(1) as u16;
    f.tw = word(2) as u16;
    match layout {
        Layout::Prot32 => {
            f.fip = get32(b, 12);
            f.fcs = get16(b, 16) as u16;
            f.fop = (get32(b, 16) >> 16) as u16 & 0x7FF;
            f.fdp = get32(b, 20);
            f.fds = get16(b, 24) as u16;
        }
        Layout::Real32 => {
            f.fip = (get32(b, 12) & 0xFFFF) | ((get32(b, 16) >> 12 & 0xFFFF) << 16);
            f.fop = get32(b, 16) as u16 & 0x7FF;
            f.fdp = (get32(b, 20) & 0xFFFF) | ((get32(b, 24) >> 12 & 0xFFFF) << 16);
            f.fcs = 0;
            f.fds = 0;
        }
        Layout::Prot16 => {
            f.fip = get16(b, 6);
            f.fcs = get16(b, 8) as u16;
            f.fdp = get16(b, 10);
            f.fds = get16(b, 12) as u16;
        }
        Layout::Real16 => {
            f.fip = get16(b, 6) | ((get16(b, 8) >> 12) << 16);
            f.fop = get16(b, 8) as u16 & 0x7FF;
            f.fdp = get16(b, 10) | ((get16(b, 12) >> 12) << 16);
            f.fcs = 0;
            f.fds = 0;
        }
    }
    f.retag();
    f.set_cw(cw);
}

/// The FSAVE image: environment, then the eight registers in stack order.
pub(super) fn encode_save(f: &FpuState, layout: Layout) -> Vec<u8> {
    let mut v = encode_env(f, layout)[..layout.len()].to_vec();
    for i in 0..8 {
        v.extend_from_slice(&f.st(i).to_le_bytes());
    }
    v
}

pub(super) fn decode_save(f: &mut FpuState, layout: Layout, b: &[u8]) {
    let n = layout.len();
    // Registers first: the environment's TOP says where ST(0) is, and the tags are
    // recomputed from the new contents.
    let top = ((get16(b, if n == 28 { 4 } else { 2 }) >> 11) & 7) as usize;
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[n + 10 * i..n + 10 * i + 10]);
        f.regs[(top + i) & 7] = F80::from_le_bytes(r);
    }
    decode_env(f, layout, &b[..n]);
}

/// Bytes of the FXSAVE area written and read.
pub(super) const FX_LEN: usize = 160;

pub(super) fn encode_fxsave(f: &FpuState) -> [u8; FX_LEN] {
    let mut b = [0u8; FX_LEN];
    put16(&mut b, 0, u32::from(f.cw));
    put16(&mut b, 2, u32::from(f.sw));
    let abridged = (0..8).fold(0u8, |a, p| a | (u8::from(f.tag(p) != 3) << p));
    b[4] = abridged;
    put16(&mut b, 6, u32::from(f.fop & 0x7FF));
    put32(&mut b, 8, f.fip);
    put16(&mut b, 12, u32::from(f.fcs));
    put32(&mut b, 16, f.fdp);
    put16(&mut b, 20, u32::from(f.fds));
    // MXCSR and its mask: the reset value and the bits a P6 with SSE would accept.
    put32(&mut b, 24, 0x1F80);
    put32(&mut b, 28, 0xFFBF);
    for i in 0..8 {
        b[32 + 16 * i..42 + 16 * i].copy_from_slice(&f.st(i).to_le_bytes());
    }
    b
}

pub(super) fn decode_fxsave(f: &mut FpuState, b: &[u8]) {
    f.sw = get16(b, 2) as u16;
    let top = f.top();
    let mut tw = 0u16;
    for p in 0..8 {
        if b[4] & (1 << p) == 0 {
            tw |= 3 << (2 * p);
        }
    }
    f.tw = tw;
    f.fop = get16(b, 6) as u16 & 0x7FF;
    f.fip = get32(b, 8);
    f.fcs = get16(b, 12) as u16;
    f.fdp = get32(b, 16);
    f.fds = get16(b, 20) as u16;
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[32 + 16 * i..42 + 16 * i]);
        f.regs[(top + i) & 7] = F80::from_le_bytes(r);
    }
    f.retag();
    f.set_cw(get16(b, 0) as u16);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FpuState {
        let mut f = FpuState::reset();
        f.init();
        f.push(F80::ONE);
        f.push(F80::INFINITY);
        f.fip = 0x1234_5678;
        f.fcs = 0x1B;
        f.fop = 0x5C3;
        f.fdp = 0x0BAD_F00D;
        f.fds = 0x23;
        f
    }

    #[test]
    fn save_restore_round_trips_in_every_layout() {
        for layout in [
            Layout::Prot32,
            Layout::Prot16,
            Layout::Real32,
            Layout::Real16,
        ] {
            let f = sample();
            let img = encode_save(&f, layout);
            assert_eq!(img.len(), layout.len() + 80);
            let mut g = FpuState::reset();
            decode_save(&mut g, layout, &img);
            assert_eq!(g.regs, f.regs);
            assert_eq!((g.cw, g.sw, g.tw), (f.cw, f.sw, f.tw));
            if layout == Layout::Prot32 {
                assert_eq!(g, f);
            }
        }
    }

    #[test]
    fn protected_32_layout() {
        let b = encode_env(&sample(), Layout::Prot32);
        assert_eq!(get32(&b, 0), 0xFFFF_037F);
        assert_eq!(get32(&b, 8), 0xFFFF_2FFF);
        assert_eq!(get32(&b, 16), 0x05C3_001B);
    }

    #[test]
    fn real_mode_pointers_are_linear() {
        let mut f = sample();
        f.fcs = 0x1000;
        f.fip = 0x0010;
        let b = encode_env(&f, Layout::Real16);
        assert_eq!(get16(&b, 6), 0x0010);
        assert_eq!(get16(&b, 8), 0x1000 | 0x5C3);
        let mut g = FpuState::reset();
        decode_env(&mut g, Layout::Real16, &b);
        assert_eq!((g.fip, g.fcs, g.fop), (0x10010, 0, 0x5C3));
    }

    #[test]
    fn fxsave_abridges_tags() {
        let f = sample();
        let b = encode_fxsave(&f);
        assert_eq!(b[4], 0xC0);
        let mut g = FpuState::reset();
        decode_fxsave(&mut g, &b);
        assert_eq!(g, f);
    }
}
