//! Segment registers and descriptors: loading them with the protected-mode checks.

use crate::exception::{Exception, Result, GP};
use crate::mem::RamAccess;
use crate::state::*;
use crate::width::W32;
use crate::{Bus, Cpu};

/// A raw 8-byte descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub lo: u32,
    pub hi: u32,
}

impl Descriptor {
    pub fn base(&self) -> u32 {
        (self.lo >> 16) | ((self.hi & 0xFF) << 16) | (self.hi & 0xFF00_0000)
    }

    /// Limit in bytes, granularity applied.
    pub fn limit(&self) -> u32 {
        let raw = (self.lo & 0xFFFF) | (self.hi & 0x000F_0000);
        if self.hi & (1 << 23) != 0 {
            (raw << 12) | 0xFFF
        } else {
            raw
        }
    }

    /// Access byte and flags in the layout of [`Segment::attr`].
    pub fn attr(&self) -> u16 {
        ((self.hi >> 8) & 0xF0FF) as u16
    }

    pub fn present(&self) -> bool {
        self.hi & (1 << 15) != 0
    }

    pub fn dpl(&self) -> u8 {
        ((self.hi >> 13) & 3) as u8
    }

    /// Code or data (S bit set).
    pub fn is_segment(&self) -> bool {
        self.hi & (1 << 12) != 0
    }

    pub fn is_code(&self) -> bool {
        self.is_segment() && self.hi & (1 << 11) != 0
    }

    pub fn conforming(&self) -> bool {
        self.is_code() && self.hi & (1 << 10) != 0
    }

    /// Writable data, or readable code.
    pub fn rw(&self) -> bool {
        self.hi & (1 << 9) != 0
    }

    /// The system-descriptor type (bits 8-11) when S is clear.
    pub fn system_type(&self) -> u8 {
        ((self.hi >> 8) & 0xF) as u8
    }

    pub fn to_segment(&self, selector: u16) -> Segment {
        Segment {
            selector,
            base: self.base(),
            limit: self.limit(),
            attr: self.attr(),
            usable: true,
        }
    }
}

impl Cpu {
    /// Reads the descriptor `sel` names in the GDT or LDT; #GP(sel) if beyond the table.
    pub fn read_descriptor(&mut self, bus: &mut dyn Bus, sel: u16) -> Result<Descriptor> {
        let index = u32::from(sel & !7);
        let (base, limit) = if sel & 4 != 0 {
            if !self.s.ldtr.usable || self.s.ldtr.selector & !3 == 0 {
                return Err(Exception::gp(u32::from(sel & 0xFFFC)));
            }
            (self.s.ldtr.base, self.s.ldtr.limit)
        } else {
            (self.s.gdtr.base, u32::from(self.s.gdtr.limit))
        };
        if index + 7 > limit {
            return Err(Exception::gp(u32::from(sel & 0xFFFC)));
        }
        let lo = self.read_sys::<W32>(bus, base.wrapping_add(index))?;
        let hi = self.read_sys::<W32>(bus, base.wrapping_add(index + 4))?;
        Ok(Descriptor { lo, hi })
    }

    /// Reads a descriptor like [`Cpu::read_descriptor`], but a selector beyond its table
    /// raises `fault` (the #TS or EXT-marked #GP the context asks for); memory faults pass.
    pub(crate) fn read_descriptor_or(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        fault: Exception,
    ) -> Result<Descriptor> {
        self.read_descriptor(bus, sel)
            .map_err(|e| if e.vector == GP { fault } else { e })
    }

    /// Sets the accessed bit of a descriptor in memory, as the CPU does on a load.
    pub fn mark_accessed(&mut self, bus: &mut dyn Bus, sel: u16, d: &Descriptor) -> Result<()> {
        if d.hi & (1 << 8) != 0 {
            return Ok(());
        }
        let base = if sel & 4 != 0 {
            self.s.ldtr.base
        } else {
            self.s.gdtr.base
        };
        let at = base.wrapping_add(u32::from(sel & !7) + 4);
        self.write_sys::<W32>(bus, at, d.hi | (1 << 8))
    }

    /// Sets a segment register directly (already checked) and refreshes what depends on it.
    pub fn set_segment(&mut self, seg: usize, s: Segment) {
        self.s.seg[seg] = s;
        self.bounds[seg] = s.bounds();
        if seg == CS {
            self.s.cpl = if self.s.v86() {
                3
            } else if self.s.protected() {
                (s.selector & 3) as u8
            } else {
                0
            };
            self.sync_tlb_privilege();
        }
        if seg == CS || seg == SS {
            self.stop_block = true;
        }
    }

    /// MOV/POP/LDS-style load of ES, SS, DS, FS or GS with the checks of the mode.
    pub fn load_segment(&mut self, bus: &mut dyn Bus, seg: usize, sel: u16) -> Result<()> {
        if !self.s.protected() || self.s.v86() {
            let mut s = self.s.seg[seg];
            s.selector = sel;
            s.base = u32::from(sel) << 4;
            s.usable = true;
            if self.s.v86() {
                s.limit = 0xFFFF;
                s.attr = ATTR_P | ATTR_S | ATTR_RW | ATTR_ACCESSED | (3 << ATTR_DPL_SHIFT);
            }
            self.set_segment(seg, s);
            return Ok(());
        }
        let err = u32::from(sel & 0xFFFC);
        let rpl = (sel & 3) as u8;
        let cpl = self.s.cpl;
        if sel & 0xFFFC == 0 {
            if seg == SS {
                return Err(Exception::gp(0));
            }
            let mut s = self.s.seg[seg];
            s.selector = sel;
            s.usable = false;
            self.set_segment(seg, s);
            return Ok(());
        }
        let d = self.read_descriptor(bus, sel)?;
        if seg == SS {
            if rpl != cpl || !d.is_segment() || d.is_code() || !d.rw() || d.dpl() != cpl {
                return Err(Exception::gp(err));
            }
            if !d.present() {
                return Err(Exception::ss(err));
            }
        } else {
            if !d.is_segment() || (d.is_code() && !d.rw()) {
                return Err(Exception::gp(err));
            }
            if (!d.is_code() || !d.conforming()) && d.dpl() < cpl.max(rpl) {
                return Err(Exception::gp(err));
            }
            if !d.present() {
                return Err(Exception::np(err));
            }
        }
        self.mark_accessed(bus, sel, &d)?;
        self.set_segment(seg, d.to_segment(sel));
        Ok(())
    }

    /// Checks a code-segment descriptor for a far JMP/CALL/RET target at privilege `cpl`
    /// (same privilege: gates and task switches are the caller's) and loads CS:EIP.
    pub fn far_jump_checked(&mut self, bus: &mut dyn Bus, sel: u16, eip: u32) -> Result<()> {
        if !self.s.protected() || self.s.v86() {
            let mut s = self.s.seg[CS];
            s.selector = sel;
            s.base = u32::from(sel) << 4;
            self.set_segment(CS, s);
            self.s.eip = eip;
            return Ok(());
        }
        if sel & 0xFFFC == 0 {
            return Err(Exception::gp(0));
        }
        let d = self.read_descriptor(bus, sel)?;
        self.far_jump_to(bus, sel, d, eip)
    }

    /// [`Cpu::far_jump_checked`] with the descriptor already read.
    pub(crate) fn far_jump_to(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        d: Descriptor,
        eip: u32,
    ) -> Result<()> {
        let err = u32::from(sel & 0xFFFC);
        let cpl = self.s.cpl;
        let rpl = (sel & 3) as u8;
        if !d.is_code() {
            return Err(Exception::gp(err));
        }
        if d.conforming() {
            if d.dpl() > cpl {
                return Err(Exception::gp(err));
            }
        } else if rpl > cpl || d.dpl() != cpl {
            return Err(Exception::gp(err));
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        if eip > d.limit() {
            return Err(Exception::gp(0));
        }
        self.mark_accessed(bus, sel, &d)?;
        // CS.RPL becomes CPL: the privilege does not change.
        let s = d.to_segment((sel & !3) | u16::from(cpl));
        self.set_segment(CS, s);
        self.s.eip = eip;
        Ok(())
    }

    /// Reads the memory operand of `op` as width `W`.
    #[inline(always)]
    pub fn read_op<W: RamAccess>(
        &mut self,
        bus: &mut dyn Bus,
        op: &crate::block::Op,
    ) -> Result<u32> {
        let ea = op.ea(self);
        self.read::<W>(bus, op.seg(), ea)
    }

    #[inline(always)]
    pub fn write_op<W: RamAccess>(
        &mut self,
        bus: &mut dyn Bus,
        op: &crate::block::Op,
        v: u32,
    ) -> Result<()> {
        let ea = op.ea(self);
        self.write::<W>(bus, op.seg(), ea, v)
    }

    /// Full EFLAGS as the guest reads it.
    #[inline]
    pub fn eflags(&self) -> u32 {
        self.s.flags()
    }

    /// Writes the EFLAGS bits in `mask` (callers pass what the instruction and privilege
    /// allow).
    pub fn set_eflags(&mut self, v: u32, mask: u32) {
        let cur = self.s.flags();
        let new =
            ((cur & !mask) | (v & mask) | FIXED1) & !(1 << 3 | 1 << 5 | 1 << 15 | 0xFFC0_0000);
        let vm_changed = (cur ^ new) & VM != 0;
        self.s.eflags = new & !ARITH;
        self.s.lazy.set_flags(new);
        if vm_changed {
            self.state_changed();
        }
    }
}
