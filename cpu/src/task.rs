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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testbed::*;
    use crate::Exit;

    const TASK_CODE: u32 = 0x1_2000;
    const TASK_STACK: u32 = 0x5000;
    const HANDLER: u32 = 0x1_1000;
    const TSS2_SEL: u16 = 0x58;
    const TSS3_SEL: u16 = 0x60;
    const GATE_SEL: u16 = 0x68;

    /// GDT 11: a 32-bit TSS at TSS2 whose task runs TASK_CODE at ring 0 with ESP 0x5000,
    /// EAX..EDI = 0x1111_1111 * (n + 1), DF set. GDT 12: a 16-bit TSS at TSS3.
    /// GDT 13: a task gate to GDT 11.
    fn task_bed() -> Bed {
        let mut b = Bed::new();
        b.desc(11, seg_desc(TSS2, 0x67, 0x89, 0));
        b.desc(12, seg_desc(TSS3, 0x2B, 0x81, 0));
        b.desc(13, gate_desc(TSS2_SEL, 0, 0x85, 0));
        b.tss32(
            TSS2,
            &Task {
                cs: CODE0,
                eip: TASK_CODE,
                ss: DATA0,
                esp: TASK_STACK,
                ds: DATA0,
                eflags: DF | FIXED1,
            },
        );
        for n in 0..8u32 {
            if n != 4 {
                b.w32(TSS2 + 0x28 + 4 * n, 0x1111_1111 * (n + 1));
            }
        }
        b.write(TASK_CODE, &[0xF4]);
        b.write(HANDLER, &[0xF4]);
        b
    }

    fn far(opcode: u8, sel: u16) -> [u8; 7] {
        let s = sel.to_le_bytes();
        [opcode, 0, 0, 0, 0, s[0], s[1]]
    }

    const JMP: u8 = 0xEA;
    const CALL: u8 = 0x9A;

    #[test]
    fn jmp_to_a_tss_switches_everything() {
        let mut b = task_bed();
        b.cpu.s.gpr[EAX] = 0xAAAA;
        b.cpu.s.gpr[EBP] = 0xBBBB;
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.run_to(TASK_CODE);
        let s = b.cpu.s.clone();
        assert_eq!(s.tr.selector, TSS2_SEL);
        assert_eq!(s.tr.base, TSS2);
        assert_eq!(s.gpr[EAX], 0x1111_1111);
        assert_eq!(s.gpr[EDI], 0x8888_8888);
        assert_eq!(s.gpr[ESP], TASK_STACK);
        assert_eq!(
            s.eflags & (DF | NT),
            DF,
            "EFLAGS from the TSS, no NT for JMP"
        );
        assert_eq!(s.cr0 & CR0_TS, CR0_TS);
        assert_eq!(s.seg[SS].selector, DATA0);
        assert_eq!(b.access(5), 0x89, "old TSS no longer busy");
        assert_eq!(b.access(11), 0x8B, "new TSS busy");
        assert_eq!(b.r16(TSS2), 0, "no back link");
        assert_eq!(b.r32(TSS + 0x20), CODE + 7, "old EIP saved: after the JMP");
        assert_eq!(b.r32(TSS + 0x28), 0xAAAA, "old EAX saved");
        assert_eq!(b.r32(TSS + 0x3C), 0xBBBB, "old EBP saved");
        assert_eq!(b.r32(TSS + 0x38), STACK0, "old ESP saved");
        assert_eq!(b.r16(TSS + 0x4C), u32::from(CODE0), "old CS saved");
    }

    #[test]
    fn call_nests_and_iret_returns() {
        let mut b = task_bed();
        // The task: pushfd; pop ebx; iretd. The caller: call 0x58:0; hlt.
        b.write(TASK_CODE, &[0x9C, 0x5B, 0xCF]);
        b.write(CODE, &far(CALL, TSS2_SEL));
        b.write(CODE + 7, &[0xF4]);
        b.run_to(CODE + 7);
        let s = b.cpu.s.clone();
        assert_eq!(s.tr.selector, TSS_SEL, "back in the first task");
        assert_eq!(s.gpr[ESP], STACK0, "no return address pushed");
        assert_eq!(s.eflags & NT, 0);
        assert_eq!(b.r32(TSS2 + 0x34) & NT, NT, "the called task ran with NT");
        assert_eq!(b.r16(TSS2), u32::from(TSS_SEL), "back link");
        assert_eq!(
            b.r32(TSS2 + 0x24) & NT,
            0,
            "IRET saved the nested task without NT"
        );
        assert_eq!(b.r32(TSS2 + 0x20), TASK_CODE + 3, "its EIP after the IRET");
        assert_eq!(b.access(5), 0x8B, "the caller stayed busy");
        assert_eq!(b.access(11), 0x89, "IRET freed the nested task");
    }

    #[test]
    fn call_through_a_task_gate() {
        let mut b = task_bed();
        b.write(CODE, &far(CALL, GATE_SEL));
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.tr.selector, TSS2_SEL);
        assert_eq!(b.cpu.s.eflags & NT, NT);
        assert_eq!(b.r16(TSS2), u32::from(TSS_SEL));
    }

    #[test]
    fn exception_through_an_idt_task_gate_pushes_its_error_code() {
        let mut b = task_bed();
        b.gate(13, TSS2_SEL, 0, TASK_GATE);
        // mov eax, 0x200; mov ds, ax (beyond the GDT: #GP(0x200))
        b.write(CODE, &[0xB8, 0x00, 0x02, 0x00, 0x00, 0x8E, 0xD8]);
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.tr.selector, TSS2_SEL);
        assert_eq!(b.cpu.s.gpr[ESP], TASK_STACK - 4);
        assert_eq!(b.r32(TASK_STACK - 4), 0x200);
        assert_eq!(b.cpu.s.eflags & NT, NT);
        assert_eq!(
            b.r32(TSS + 0x20),
            CODE + 5,
            "the faulting instruction's EIP saved"
        );
        assert_eq!(b.r16(TSS2), u32::from(TSS_SEL));
    }

    #[test]
    fn int_n_through_an_idt_task_gate() {
        let mut b = task_bed();
        b.gate(0x40, TSS2_SEL, 0, TASK_GATE);
        b.write(CODE, &[0xCD, 0x40]);
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.gpr[ESP], TASK_STACK, "no error code");
        assert_eq!(b.r32(TSS + 0x20), CODE + 2);
        // A task gate whose TSS is busy: #GP(TSS selector).
        let mut b = task_bed();
        b.gate(0x40, TSS_SEL, 0, TASK_GATE);
        assert_eq!(
            b.cpu
                .interrupt(&mut b.bus, 0x40, crate::interrupt::Source::External),
            Err(Exception::gp(u32::from(TSS_SEL) + 1))
        );
    }

    /// Runs `code` at CODE and expects it to fault with `want` before anything changed.
    fn expect_fault(mut b: Bed, code: &[u8], want: Exception) {
        b.write(CODE, code);
        let before = b.cpu.s.clone();
        assert_eq!(
            b.run(),
            Exit::Shutdown,
            "no handlers: the fault ends the run"
        );
        assert_eq!(b.cpu.last_exception, Some(want));
        assert_eq!(b.cpu.s.tr, before.tr);
        assert_eq!(b.cpu.s.gpr, before.gpr);
        assert_eq!(b.access(5), 0x8B);
    }

    #[test]
    fn switch_faults_before_the_commit_point() {
        let b = task_bed();
        expect_fault(b, &far(JMP, TSS_SEL), Exception::gp(0x28));
        let mut b = task_bed();
        b.desc(11, seg_desc(TSS2, 0x66, 0x89, 0));
        expect_fault(b, &far(JMP, TSS2_SEL), Exception::ts(0x58));
        let mut b = task_bed();
        b.desc(12, seg_desc(TSS3, 0x2A, 0x81, 0));
        expect_fault(b, &far(CALL, TSS3_SEL), Exception::ts(0x60));
        let mut b = task_bed();
        b.desc(11, seg_desc(TSS2, 0x67, 0x09, 0));
        expect_fault(b, &far(JMP, TSS2_SEL), Exception::np(0x58));
        let mut b = task_bed();
        b.desc(13, gate_desc(TSS2_SEL | 4, 0, 0x85, 0));
        expect_fault(b, &far(JMP, GATE_SEL), Exception::gp(0x5C));
        let mut b = task_bed();
        b.desc(13, gate_desc(TSS2_SEL, 0, 0x05, 0));
        expect_fault(b, &far(JMP, GATE_SEL), Exception::np(0x68));
        // RPL 3 above the TSS's DPL 0.
        let b = task_bed();
        expect_fault(b, &far(JMP, TSS2_SEL | 3), Exception::gp(0x58));
    }

    #[test]
    fn ring3_needs_a_dpl3_tss_or_gate() {
        let mut b = task_bed();
        b.write(CODE, &far(JMP, TSS2_SEL | 3));
        b.enter_ring3(CODE);
        b.run();
        assert_eq!(b.cpu.last_exception, Some(Exception::gp(0x58)));
        let mut b = task_bed();
        b.desc(13, gate_desc(TSS2_SEL, 0, 0xE5, 0));
        b.write(CODE, &far(JMP, GATE_SEL | 3));
        b.enter_ring3(CODE);
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.cpl, 0, "the task's CS decides its CPL");
    }

    #[test]
    fn sixteen_bit_tss() {
        let mut b = task_bed();
        b.w16(TSS3 + 0x0E, 0x8000); // IP
        b.w16(TSS3 + 0x10, FIXED1 | CF);
        for n in 0..8 {
            b.w16(TSS3 + 0x12 + 2 * n, 0x100 + n);
        }
        for (n, sel) in [DATA0, CODE0, DATA0, DATA0].into_iter().enumerate() {
            b.w16(TSS3 + 0x22 + 2 * n as u32, u32::from(sel));
        }
        b.write(0x8000, &[0xF4]);
        b.cpu.s.gpr[EAX] = 0xABCD_0000;
        b.write(CODE, &far(JMP, TSS3_SEL));
        b.run_to(0x8000);
        let s = b.cpu.s.clone();
        assert_eq!(s.tr.selector, TSS3_SEL);
        assert_eq!(s.gpr[EAX], 0xABCD_0100, "the low half from the TSS");
        assert_eq!(s.gpr[ESP] & 0xFFFF, 0x104);
        assert_eq!(s.flags() & CF, CF);
        assert_eq!(s.seg[FS].selector, 0);
        assert!(!s.seg[FS].usable, "a 286 TSS has no FS");
        assert_eq!(b.access(12), 0x83);
        // Back to the 32-bit task: the 286 TSS gets the 16-bit image.
        b.cpu.s.gpr[ECX] = 0x5555_4444;
        b.cpu.s.halted = false;
        b.write(0x8001, &far(JMP, TSS_SEL));
        b.write(CODE + 7, &[0xF4]);
        b.run_to(CODE + 7);
        assert_eq!(b.cpu.s.tr.selector, TSS_SEL);
        assert_eq!(b.r16(TSS3 + 0x0E), 0x8008, "IP saved");
        assert_eq!(b.r16(TSS3 + 0x14), 0x4444, "CX saved");
        assert_eq!(b.r16(TSS3 + 0x24), u32::from(CODE0), "CS saved");
    }

    #[test]
    fn faults_after_the_commit_point_belong_to_the_new_task() {
        let mut b = task_bed();
        b.w16(TSS2 + 0x54, 0x200); // DS beyond the GDT
        b.gate(10, CODE0, HANDLER, INT_GATE);
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.tr.selector, TSS2_SEL, "the switch completed");
        assert_eq!(
            b.cpu.s.gpr[ESP],
            TASK_STACK - 16,
            "frame on the new task's stack"
        );
        assert_eq!(b.r32(TASK_STACK - 16), 0x200, "#TS(DS)");
        assert_eq!(b.r32(TASK_STACK - 12), TASK_CODE, "the new task's EIP");
        assert_eq!(b.access(11), 0x8B);
        // A data segment that is not present: #NP(selector), also in the new task.
        let mut b = task_bed();
        b.desc(14, seg_desc(0, 0xFFFFF, 0x12, 0xC));
        b.w16(TSS2 + 0x58, 0x70); // FS
        b.gate(11, CODE0, HANDLER, INT_GATE);
        b.write(CODE, &far(CALL, TSS2_SEL));
        b.run_to(HANDLER);
        assert_eq!(b.r32(TASK_STACK - 16), 0x70);
        assert_eq!(b.cpu.s.eflags & NT, 0, "the handler's gate cleared NT");
        assert_eq!(b.r32(TASK_STACK - 4) & NT, NT, "the task had NT");
    }

    #[test]
    fn task_ldt_is_loaded_and_checked() {
        let mut b = task_bed();
        b.desc(14, seg_desc(LDT, 0x17, 0x82, 0));
        b.write(LDT + 8, &seg_desc(0x4_0000, 0xFFFF, 0x92, 0).to_le_bytes());
        b.w16(TSS2 + 0x60, 0x70);
        b.w16(TSS2 + 0x54, 0x0C); // DS = LDT entry 1
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.ldtr.selector, 0x70);
        assert_eq!(b.cpu.s.ldtr.base, LDT);
        assert_eq!(b.cpu.s.seg[DS].base, 0x4_0000);
        // An LDT selector naming a data segment: #TS(LDT selector) in the new task, whose
        // segment registers are not loaded yet, so (as the SDM advises) the #TS handler is
        // a task of its own.
        let mut b = task_bed();
        b.w16(TSS2 + 0x60, u32::from(DATA0));
        b.desc(15, seg_desc(TSS3 + 0x100, 0x67, 0x89, 0));
        b.tss32(
            TSS3 + 0x100,
            &Task {
                cs: CODE0,
                eip: HANDLER,
                ss: DATA0,
                esp: 0x4000,
                ds: DATA0,
                eflags: FIXED1,
            },
        );
        b.gate(10, 0x78, 0, TASK_GATE);
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.tr.selector, 0x78);
        assert_eq!(b.r32(0x4000 - 4), u32::from(DATA0), "#TS(LDT selector)");
        assert_eq!(
            b.r16(TSS3 + 0x100),
            u32::from(TSS2_SEL),
            "nested in the new task"
        );
        assert_eq!(b.r32(TSS2 + 0x20), TASK_CODE, "which had not run yet");
    }

    #[test]
    fn task_switch_into_v86() {
        let mut b = task_bed();
        b.tss32(
            TSS2,
            &Task {
                cs: 0x1000,
                eip: 0x20,
                ss: 0x2000,
                esp: 0x100,
                ds: 0x3000,
                eflags: VM | IOPL | FIXED1,
            },
        );
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.cpu.step(&mut b.bus);
        let s = b.cpu.s.clone();
        assert!(s.v86());
        assert_eq!(s.cpl, 3);
        assert_eq!(s.seg[CS].base, 0x10000);
        assert_eq!(s.seg[SS].base, 0x20000);
        assert_eq!(s.seg[DS].base, 0x30000);
        assert_eq!(s.eip, 0x20);
    }

    #[test]
    fn cr3_comes_from_a_32_bit_tss_only_with_paging() {
        // Identity-map the first 4 MiB so that paging changes nothing.
        let mut b = task_bed();
        b.w32(0x3_0000, 0x3_1003);
        for n in 0..1024 {
            b.w32(0x3_1000 + 4 * n, (n << 12) | 3);
        }
        b.w32(TSS2 + 0x1C, 0x3_0018);
        b.cpu.s.cr3 = 0x3_0000;
        b.write(CODE, &far(JMP, TSS2_SEL));
        b.run_to(TASK_CODE);
        assert_eq!(b.cpu.s.cr3, 0x3_0000, "paging off: CR3 kept");
        let mut b2 = task_bed();
        b2.w32(0x3_0000, 0x3_1003);
        for n in 0..1024 {
            b2.w32(0x3_1000 + 4 * n, (n << 12) | 3);
        }
        b2.w32(TSS2 + 0x1C, 0x3_0018);
        let mut s = b2.cpu.s.clone();
        s.cr3 = 0x3_0000;
        s.cr0 |= CR0_PG;
        b2.cpu.set_state(s);
        b2.write(CODE, &far(JMP, TSS2_SEL));
        b2.run_to(TASK_CODE);
        assert_eq!(b2.cpu.s.cr3, 0x3_0018, "paging on: CR3 from the TSS");
    }

    #[test]
    fn iret_with_nt_needs_a_busy_back_link() {
        let mut b = task_bed();
        b.w16(TSS, u32::from(TSS2_SEL)); // available, not busy
        b.cpu.set_eflags(NT, NT);
        b.write(CODE, &[0xCF]);
        b.run();
        assert_eq!(b.cpu.last_exception, Some(Exception::ts(0x58)));
        assert_eq!(b.cpu.s.tr.selector, TSS_SEL);
        let mut b = task_bed();
        b.w16(TSS, 0x5C); // TI set
        b.cpu.set_eflags(NT, NT);
        b.write(CODE, &[0xCF]);
        b.run();
        assert_eq!(b.cpu.last_exception, Some(Exception::ts(0x5C)));
    }
}
