//! Hardware task switching and the task-state segment (TSS).
//!
//! ```text
//!  32-bit TSS (limit >= 0x67)                   16-bit TSS of the 286 (limit >= 0x2B)
//!  0x00 back link                               0x00 back link
//!  0x04 ESP0  0x08 SS0                          0x02 SP0  0x04 SS0
//!  0x0C ESP1  0x10 SS1                          0x06 SP1  0x08 SS1
//!  0x14 ESP2  0x18 SS2                          0x0A SP2  0x0C SS2
//!  0x1C CR3   0x20 EIP  0x24 EFLAGS             0x0E IP   0x10 FLAGS
//!  0x28 EAX ECX EDX EBX ESP EBP ESI EDI         0x12 AX CX DX BX SP BP SI DI
//!  0x48 ES CS SS DS FS GS (4-byte slots)        0x22 ES CS SS DS (2-byte slots)
//!  0x60 LDT   0x64 T bit   0x66 I/O map base    0x2A LDT
//! ```
//! The inner-ring stacks (SSn:ESPn) are read on a privilege change, never written; a switch
//! saves EIP, EFLAGS, the general and the segment registers to the old TSS and loads those
//! plus LDTR (and CR3 when paging is on) from the new one.
//!
//! ```text
//!  switch by   old TSS busy   new TSS busy   nesting                         new TSS must be
//!  JMP         cleared        set            -                               available
//!  CALL, INT   kept           set            new NT = 1, link = old TR       available
//!  IRET        cleared        kept           saved image gets NT = 0         busy
//! ```
//! A switch runs in two halves around a commit point, as the SDM describes. Before it the
//! new descriptor and limit are checked, the new image is read, the old state is saved and
//! the busy bits and back link are written: a fault there leaves the registers as they were.
//! After it TR, CR0.TS, CR3, EIP, EFLAGS and the general registers belong to the new task,
//! and LDTR and the segment registers are loaded with their checks: a fault there is raised
//! in the new task, with the new task's EIP ([`Exception::in_new_task`]).

use crate::exception::{Exception, Result};
use crate::seg::Descriptor;
use crate::state::*;
use crate::width::{W16, W32};
use crate::{Bus, Cpu};

/// What started a task switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSwitch {
    Jmp,
    Call,
    Iret,
    /// An interrupt or exception through a task gate (nests like CALL).
    Interrupt,
}

impl TaskSwitch {
    fn nests(self) -> bool {
        matches!(self, TaskSwitch::Call | TaskSwitch::Interrupt)
    }
}

/// The TSS busy bit in the descriptor's high dword (type bit 1).
const BUSY: u32 = 1 << 9;

/// The state a TSS holds for a task, in either format.
struct TaskImage {
    cr3: u32,
    eip: u32,
    eflags: u32,
    gpr: [u32; 8],
    segs: [u16; 6],
    ldt: u16,
}

/// Whether a TSS descriptor type (or `Segment::attr`) names a 32-bit TSS.
fn is_32(ty: u32) -> bool {
    ty & 8 != 0
}

impl Cpu {
    /// Loads CR3: the page-directory base plus PWT/PCD (the rest is reserved), dropping
    /// every translation. A stand-in until the paging code provides its own.
    pub(crate) fn set_cr3(&mut self, v: u32) {
        self.s.cr3 = v & 0xFFFF_F018;
        self.tlb.flush();
    }

    /// SS:ESP for ring `cpl` from the current TSS; #TS(TR selector) when the TSS is too
    /// short to hold them.
    pub(crate) fn tss_stack(&mut self, bus: &mut dyn Bus, cpl: u8, ext: u32) -> Result<(u16, u32)> {
        let tr = self.s.tr;
        let fault = Exception::ts(u32::from(tr.selector & 0xFFFC) + ext);
        let (at, esp) = if is_32(u32::from(tr.attr)) {
            let at = 8 * u32::from(cpl) + 4;
            if at + 5 > tr.limit {
                return Err(fault);
            }
            (at + 4, self.read_sys::<W32>(bus, tr.base.wrapping_add(at))?)
        } else {
            let at = 4 * u32::from(cpl) + 2;
            if at + 3 > tr.limit {
                return Err(fault);
            }
            (at + 2, self.read_sys::<W16>(bus, tr.base.wrapping_add(at))?)
        };
        let ss = self.read_sys::<W16>(bus, tr.base.wrapping_add(at))? as u16;
        Ok((ss, esp))
    }

    /// Switches to the task whose TSS descriptor `d` selector `sel` names. The caller has
    /// checked the descriptor's type (available, or busy for IRET), privilege and presence.
    /// `error` is pushed on the new task's stack (an exception through a task gate); `ext`
    /// is the EXT bit of faults before the commit point.
    pub(crate) fn switch_task(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        d: Descriptor,
        how: TaskSwitch,
        ext: u32,
        error: Option<u32>,
    ) -> Result<()> {
        let big = is_32(u32::from(d.system_type()));
        if d.limit() < if big { 0x67 } else { 0x2B } {
            return Err(Exception::ts(u32::from(sel & 0xFFFC) + ext));
        }
        let base = d.base();
        let img = self.read_task_image(bus, base, big)?;
        let old = self.s.tr;
        let mut flags = self.eflags();
        if how == TaskSwitch::Iret {
            flags &= !NT;
        }
        self.save_task_image(bus, old.base, is_32(u32::from(old.attr)), flags)?;
        if matches!(how, TaskSwitch::Jmp | TaskSwitch::Iret) {
            self.set_tss_busy(bus, old.selector, false)?;
        }
        if how.nests() {
            self.write_sys::<W16>(bus, base, u32::from(old.selector))?;
        }
        if how != TaskSwitch::Iret {
            self.set_tss_busy(bus, sel, true)?;
        }

        // Commit: from here on the CPU runs the new task.
        let mut tr = d.to_segment(sel);
        tr.attr |= (BUSY >> 8) as u16;
        self.s.tr = tr;
        self.s.cr0 |= CR0_TS;
        if big && self.s.cr0 & CR0_PG != 0 {
            self.set_cr3(img.cr3);
        }
        self.s.eip = img.eip;
        let mut eflags = img.eflags;
        if how.nests() {
            eflags |= NT;
        }
        // A 16-bit TSS holds FLAGS only: the upper half, VM included, comes up clear.
        self.set_eflags(eflags, u32::MAX);
        if big {
            self.s.gpr[..8].copy_from_slice(&img.gpr);
        } else {
            // The 286 format holds the low halves; the upper ones stay as they were.
            for (r, v) in self.s.gpr[..8].iter_mut().zip(img.gpr) {
                *r = (*r & 0xFFFF_0000) | v;
            }
        }
        let r = self.enter_task(bus, &img, big, error);
        // CPL, VM and the segments all changed under what was derived from them.
        self.state_changed();
        r.map_err(Exception::in_new_task)
    }

    /// The part of a switch after the commit point that can fault: LDTR, the segment
    /// registers, the EIP limit check and the error code push.
    fn enter_task(
        &mut self,
        bus: &mut dyn Bus,
        img: &TaskImage,
        big: bool,
        error: Option<u32>,
    ) -> Result<()> {
        let v86 = self.s.v86();
        for (seg, &sel) in img.segs.iter().enumerate() {
            // Selectors first, unusable until checked; CS's RPL is the new CPL.
            let s = if v86 {
                Segment::v86(sel)
            } else {
                Segment::null(sel)
            };
            self.set_segment(seg, s);
        }
        self.s.ldtr = Segment::null(img.ldt);
        self.load_task_ldt(bus, img.ldt)?;
        if !v86 {
            self.load_task_segments(bus, &img.segs)?;
        }
        if self.s.eip > self.s.seg[CS].limit {
            return Err(Exception::gp(0));
        }
        if let Some(e) = error {
            if big {
                self.push::<W32>(bus, e)?;
            } else {
                self.push::<W16>(bus, e)?;
            }
        }
        Ok(())
    }

    fn read_task_image(&mut self, bus: &mut dyn Bus, base: u32, big: bool) -> Result<TaskImage> {
        let mut img = TaskImage {
            cr3: 0,
            eip: 0,
            eflags: 0,
            gpr: [0; 8],
            segs: [0; 6],
            ldt: 0,
        };
        let at = |off: u32| base.wrapping_add(off);
        if big {
            img.cr3 = self.read_sys::<W32>(bus, at(0x1C))?;
            img.eip = self.read_sys::<W32>(bus, at(0x20))?;
            img.eflags = self.read_sys::<W32>(bus, at(0x24))?;
            for (n, r) in img.gpr.iter_mut().enumerate() {
                *r = self.read_sys::<W32>(bus, at(0x28 + 4 * n as u32))?;
            }
            for (n, s) in img.segs.iter_mut().enumerate() {
                *s = self.read_sys::<W16>(bus, at(0x48 + 4 * n as u32))? as u16;
            }
            img.ldt = self.read_sys::<W16>(bus, at(0x60))? as u16;
        } else {
            img.eip = self.read_sys::<W16>(bus, at(0x0E))?;
            img.eflags = self.read_sys::<W16>(bus, at(0x10))?;
            for (n, r) in img.gpr.iter_mut().enumerate() {
                *r = self.read_sys::<W16>(bus, at(0x12 + 2 * n as u32))?;
            }
            // ES, CS, SS, DS; the 286 had no FS and GS, which come up null.
            for (n, s) in img.segs[..4].iter_mut().enumerate() {
                *s = self.read_sys::<W16>(bus, at(0x22 + 2 * n as u32))? as u16;
            }
            img.ldt = self.read_sys::<W16>(bus, at(0x2A))? as u16;
        }
        Ok(img)
    }

    /// Writes the outgoing task's EIP, `eflags`, general and segment registers to its TSS.
    fn save_task_image(
        &mut self,
        bus: &mut dyn Bus,
        base: u32,
        big: bool,
        eflags: u32,
    ) -> Result<()> {
        let at = |off: u32| base.wrapping_add(off);
        let gpr = self.s.gpr;
        let segs = self.s.seg.map(|s| u32::from(s.selector));
        if big {
            self.write_sys::<W32>(bus, at(0x20), self.s.eip)?;
            self.write_sys::<W32>(bus, at(0x24), eflags)?;
            for (n, &r) in gpr[..8].iter().enumerate() {
                self.write_sys::<W32>(bus, at(0x28 + 4 * n as u32), r)?;
            }
            for (n, &s) in segs.iter().enumerate() {
                self.write_sys::<W16>(bus, at(0x48 + 4 * n as u32), s)?;
            }
        } else {
            self.write_sys::<W16>(bus, at(0x0E), self.s.eip)?;
            self.write_sys::<W16>(bus, at(0x10), eflags)?;
            for (n, &r) in gpr[..8].iter().enumerate() {
                self.write_sys::<W16>(bus, at(0x12 + 2 * n as u32), r)?;
            }
            for (n, &s) in segs[..4].iter().enumerate() {
                self.write_sys::<W16>(bus, at(0x22 + 2 * n as u32), s)?;
            }
        }
        Ok(())
    }

    /// Sets or clears the busy bit of the TSS descriptor `sel` names in the GDT.
    fn set_tss_busy(&mut self, bus: &mut dyn Bus, sel: u16, busy: bool) -> Result<()> {
        let at = self.s.gdtr.base.wrapping_add(u32::from(sel & !7) + 4);
        let hi = self.read_sys::<W32>(bus, at)?;
        let hi = if busy { hi | BUSY } else { hi & !BUSY };
        self.write_sys::<W32>(bus, at, hi)
    }

    /// LDTR of the new task: null, or an LDT descriptor in the GDT; anything else is
    /// #TS(selector), a missing one included.
    fn load_task_ldt(&mut self, bus: &mut dyn Bus, sel: u16) -> Result<()> {
        if sel & 0xFFFC == 0 {
            return Ok(());
        }
        let fault = Exception::ts(u32::from(sel & 0xFFFC));
        if sel & 4 != 0 {
            return Err(fault);
        }
        let d = self.read_descriptor_or(bus, sel, fault)?;
        if d.is_segment() || d.system_type() != 2 || !d.present() {
            return Err(fault);
        }
        self.s.ldtr = d.to_segment(sel);
        Ok(())
    }

    /// CS, SS, ES, DS, FS, GS of a protected-mode task, with the checks of the SDM's table
    /// of task-switch faults: #TS(selector) for a bad selector or descriptor, #NP or (for
    /// SS) #SS when it is not present.
    fn load_task_segments(&mut self, bus: &mut dyn Bus, segs: &[u16; 6]) -> Result<()> {
        let sel = segs[CS];
        let err = u32::from(sel & 0xFFFC);
        let rpl = (sel & 3) as u8;
        if err == 0 {
            return Err(Exception::ts(0));
        }
        let d = self.read_descriptor_or(bus, sel, Exception::ts(err))?;
        let dpl_ok = if d.conforming() {
            d.dpl() <= rpl
        } else {
            d.dpl() == rpl
        };
        if !d.is_code() || !dpl_ok {
            return Err(Exception::ts(err));
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        self.mark_accessed(bus, sel, &d)?;
        self.set_segment(CS, d.to_segment(sel));
        let cpl = rpl;

        let sel = segs[SS];
        let err = u32::from(sel & 0xFFFC);
        if err == 0 {
            return Err(Exception::ts(0));
        }
        let d = self.read_descriptor_or(bus, sel, Exception::ts(err))?;
        if (sel & 3) as u8 != cpl || !d.is_segment() || d.is_code() || !d.rw() || d.dpl() != cpl {
            return Err(Exception::ts(err));
        }
        if !d.present() {
            return Err(Exception::ss(err));
        }
        self.mark_accessed(bus, sel, &d)?;
        self.set_segment(SS, d.to_segment(sel));

        for seg in [ES, DS, FS, GS] {
            let sel = segs[seg];
            let err = u32::from(sel & 0xFFFC);
            if err == 0 {
                continue; // stays null
            }
            let d = self.read_descriptor_or(bus, sel, Exception::ts(err))?;
            if !d.is_segment() || (d.is_code() && !d.rw()) {
                return Err(Exception::ts(err));
            }
            if !d.conforming() && d.dpl() < cpl.max((sel & 3) as u8) {
                return Err(Exception::ts(err));
            }
            if !d.present() {
                return Err(Exception::np(err));
            }
            self.mark_accessed(bus, sel, &d)?;
            self.set_segment(seg, d.to_segment(sel));
        }
        Ok(())
    }
}
