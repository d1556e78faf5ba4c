//! Operand widths as types, so one generic handler serves 8, 16 and 32 bits.

use crate::state::CpuState;

pub trait Width: Copy + 'static {
    const BITS: u32;
    const BYTES: u32;
    const MASK: u32;
    const SIGN: u32;
    /// Register `r` in this width's numbering (for 8 bits: AL CL DL BL AH CH DH BH).
    fn get(s: &CpuState, r: u8) -> u32;
    fn set(s: &mut CpuState, r: u8, v: u32);
    /// Sign-extends a value of this width to 32 bits.
    #[inline(always)]
    fn sext(v: u32) -> u32 {
        let sh = 32 - Self::BITS;
        (((v << sh) as i32) >> sh) as u32
    }
}

#[derive(Clone, Copy)]
pub struct W8;
#[derive(Clone, Copy)]
pub struct W16;
#[derive(Clone, Copy)]
pub struct W32;

impl Width for W8 {
    const BITS: u32 = 8;
    const BYTES: u32 = 1;
    const MASK: u32 = 0xFF;
    const SIGN: u32 = 0x80;
    #[inline(always)]
    fn get(s: &CpuState, r: u8) -> u32 {
        let r = usize::from(r);
        if r < 4 {
            s.gpr[r] & 0xFF
        } else {
            (s.gpr[r & 3] >> 8) & 0xFF
        }
    }
    #[inline(always)]
    fn set(s: &mut CpuState, r: u8, v: u32) {
        let r = usize::from(r);
        if r < 4 {
            s.gpr[r] = (s.gpr[r] & !0xFF) | (v & 0xFF);
        } else {
            s.gpr[r & 3] = (s.gpr[r & 3] & !0xFF00) | ((v & 0xFF) << 8);
        }
    }
}

impl Width for W16 {
    const BITS: u32 = 16;
    const BYTES: u32 = 2;
    const MASK: u32 = 0xFFFF;
    const SIGN: u32 = 0x8000;
    #[inline(always)]
    fn get(s: &CpuState, r: u8) -> u32 {
        s.gpr[usize::from(r)] & 0xFFFF
    }
    #[inline(always)]
    fn set(s: &mut CpuState, r: u8, v: u32) {
        let r = usize::from(r);
        s.gpr[r] = (s.gpr[r] & !0xFFFF) | (v & 0xFFFF);
    }
}

impl Width for W32 {
    const BITS: u32 = 32;
    const BYTES: u32 = 4;
    const MASK: u32 = 0xFFFF_FFFF;
    const SIGN: u32 = 0x8000_0000;
    #[inline(always)]
    fn get(s: &CpuState, r: u8) -> u32 {
        s.gpr[usize::from(r)]
    }
    #[inline(always)]
    fn set(s: &mut CpuState, r: u8, v: u32) {
        s.gpr[usize::from(r)] = v;
    }
}

pub fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}
