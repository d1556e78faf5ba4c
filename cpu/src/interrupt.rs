//! Delivering interrupts and exceptions through the real-mode IVT or the protected-mode IDT.
//!
//! ```text
//!  real mode:  IVT[v] = offset:16 segment:16 at IDTR.base + 4v
//!              push FLAGS, CS, IP; clear IF, TF, AC
//!  protected:  IDT[v] = gate at IDTR.base + 8v
//!    task gate ──────────► task switch (nested: NT, back link), error code on the new stack
//!    interrupt/trap gate ─► same ring (or conforming code): push on the current stack
//!                           inner ring: SS:ESP for the new CPL from the TSS
//!                           from V86: ring 0 only, the V86 segment registers saved too
//!
//!  frame on the handler's stack (slots of 4 bytes for a 32-bit gate, 2 for a 16-bit one)
//!      from V86:      GS FS DS ES  ┐
//!      inner ring:    SS ESP       ├ pushed first (highest addresses)
//!      always:        EFLAGS CS EIP [error code]  ◄── new ESP
//! ```
//! Faults raised while delivering carry the EXT bit when the event came from outside the
//! program (an exception or INTR; not INT n), and the IDT bit with `vector * 8` when they
//! concern the gate itself. A fault while delivering escalates as the SDM's double-fault
//! table says, and a fault while delivering #DF shuts the CPU down (triple fault).

use crate::exception::{Escalation, Exception, Result};
use crate::seg::Descriptor;
use crate::state::*;
use crate::task::TaskSwitch;
use crate::width::{W16, W32};
use crate::{Bus, Cpu};

/// A chain of faults each raised in a task just switched to could go on as long as the
/// guest has tasks; past this many links the CPU gives up as on a triple fault.
const MAX_FAULT_CHAIN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// INT n, INT3, INTO: gate DPL is checked and no EXT bit.
    Software,
    /// An exception with its error code.
    Exception(Option<u32>),
    /// INTR from the PIC.
    External,
}

impl Source {
    /// The EXT bit of the error code of a fault raised while delivering this event.
    pub fn ext(self) -> u32 {
        u32::from(self != Source::Software)
    }

    fn error_code(self) -> Option<u32> {
        match self {
            Source::Exception(e) => e,
            _ => None,
        }
    }
}

/// What a delivery must restore if a push faults after the CPU began to switch stacks.
struct Rollback {
    eflags: u32,
    cs: Segment,
    ss: Segment,
    esp: u32,
}

/// Whether `bytes` can be pushed below `esp` on stack segment `ss` without leaving it.
pub(crate) fn stack_room(ss: &Segment, esp: u32, bytes: u32) -> bool {
    let b = ss.bounds();
    let mask = if ss.big() { u32::MAX } else { 0xFFFF };
    let lo = esp.wrapping_sub(bytes) & mask;
    let hi = esp.wrapping_sub(1) & mask;
    b.write && lo <= hi && lo >= b.lo && hi <= b.hi
}

impl Cpu {
    /// Delivers a fault or trap raised by an instruction, escalating to #DF or shutdown.
    pub fn deliver_exception(&mut self, bus: &mut dyn Bus, e: Exception) {
        log::trace!(
            "{} at {:04x}:{:08x} error {:?}",
            e.name(),
            self.s.seg[CS].selector,
            self.s.eip,
            e.error()
        );
        self.last_exception = Some(e);
        let mut cur = e;
        for _ in 0..MAX_FAULT_CHAIN {
            let Err(next) = self.interrupt(bus, cur.vector, Source::Exception(cur.error())) else {
                return;
            };
            if next.trap {
                // A task gate switched tasks and the new task faulted: the first event was
                // delivered, and this one starts afresh in the new task.
                cur = next;
                continue;
            }
            cur = match cur.then(&next) {
                Escalation::Serial => next,
                Escalation::DoubleFault => Exception::df(),
                Escalation::Shutdown => break,
            };
        }
        self.triple_fault();
    }

    fn triple_fault(&mut self) {
        log::debug!(
            "triple fault at {:04x}:{:08x}",
            self.s.seg[CS].selector,
            self.s.eip
        );
        self.s.shutdown = true;
        self.stop_block = true;
    }

    /// Delivers the vector the PIC acknowledged.
    pub fn deliver_external(&mut self, bus: &mut dyn Bus, vector: u8) {
        if let Err(e) = self.interrupt(bus, vector, Source::External) {
            self.deliver_exception(bus, e);
        }
    }

    /// Enters the handler for `vector`. On error nothing architectural has changed except
    /// memory below the stack pointer, unless the error is marked as raised in a new task
    /// (`trap`): then a task gate's switch completed and the fault belongs to that task.
    pub fn interrupt(&mut self, bus: &mut dyn Bus, vector: u8, src: Source) -> Result<()> {
        self.s.halted = false;
        self.stop_block = true;
        if !self.s.protected() {
            return self.interrupt_real(bus, vector);
        }
        self.interrupt_protected(bus, vector, src)
    }

    fn interrupt_real(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<()> {
        let at = u32::from(vector) * 4;
        if at + 3 > u32::from(self.s.idtr.limit) {
            return Err(Exception::gp(0));
        }
        let entry = self.read_sys::<W32>(bus, self.s.idtr.base.wrapping_add(at))?;
        let flags = self.eflags();
        let (cs, ip) = (u32::from(self.s.seg[CS].selector), self.s.eip);
        let esp = self.s.gpr[ESP];
        let r = self
            .push::<W16>(bus, flags)
            .and_then(|_| self.push::<W16>(bus, cs))
            .and_then(|_| self.push::<W16>(bus, ip));
        if let Err(e) = r {
            self.s.gpr[ESP] = esp;
            return Err(e);
        }
        self.s.eflags &= !(IF | TF | AC | RF);
        let mut s = self.s.seg[CS];
        s.selector = (entry >> 16) as u16;
        s.base = (entry >> 16) << 4;
        self.set_segment(CS, s);
        self.s.eip = entry & 0xFFFF;
        Ok(())
    }

    fn interrupt_protected(&mut self, bus: &mut dyn Bus, vector: u8, src: Source) -> Result<()> {
        let ext = src.ext();
        let idt_err = u32::from(vector) * 8 + 2 + ext;
        let at = u32::from(vector) * 8;
        if at + 7 > u32::from(self.s.idtr.limit) {
            return Err(Exception::gp(idt_err));
        }
        let gate = Descriptor {
            lo: self.read_sys::<W32>(bus, self.s.idtr.base.wrapping_add(at))?,
            hi: self.read_sys::<W32>(bus, self.s.idtr.base.wrapping_add(at + 4))?,
        };
        // Type with the S bit: a code or data descriptor is no gate either.
        let ty = (gate.hi >> 8) & 0x1F;
        if !matches!(ty, 0x05 | 0x06 | 0x07 | 0x0E | 0x0F) {
            return Err(Exception::gp(idt_err));
        }
        if src == Source::Software && gate.dpl() < self.s.cpl {
            return Err(Exception::gp(idt_err));
        }
        if !gate.present() {
            return Err(Exception::np(idt_err));
        }
        if ty == 0x05 {
            return self.interrupt_task_gate(bus, gate, src);
        }
        self.interrupt_gate(bus, gate, src)
    }

    /// A task gate in the IDT: a nested task switch, then the error code goes on the new
    /// task's stack.
    fn interrupt_task_gate(
        &mut self,
        bus: &mut dyn Bus,
        gate: Descriptor,
        src: Source,
    ) -> Result<()> {
        let ext = src.ext();
        let sel = (gate.lo >> 16) as u16;
        let err = u32::from(sel & 0xFFFC) + ext;
        if sel & 4 != 0 {
            return Err(Exception::gp(err));
        }
        let d = self.read_descriptor_or(bus, sel, Exception::gp(err))?;
        if d.is_segment() || !matches!(d.system_type(), 1 | 9) {
            return Err(Exception::gp(err));
        }
        if !d.present() {
            return Err(Exception::np(err));
        }
        self.switch_task(bus, sel, d, TaskSwitch::Interrupt, ext, src.error_code())
    }

    /// An interrupt or trap gate: checks, then the frame on the same or an inner stack.
    fn interrupt_gate(&mut self, bus: &mut dyn Bus, gate: Descriptor, src: Source) -> Result<()> {
        let ext = src.ext();
        let ty = (gate.hi >> 8) & 0x1F;
        let gate32 = ty & 8 != 0;
        let trap_gate = ty & 1 != 0;
        let sel = (gate.lo >> 16) as u16;
        let offset = if gate32 {
            (gate.lo & 0xFFFF) | (gate.hi & 0xFFFF_0000)
        } else {
            gate.lo & 0xFFFF
        };
        if sel & 0xFFFC == 0 {
            return Err(Exception::gp(ext));
        }
        let sel_err = u32::from(sel & 0xFFFC) + ext;
        let d = self.read_descriptor_or(bus, sel, Exception::gp(sel_err))?;
        let cpl = self.s.cpl;
        if !d.is_code() || d.dpl() > cpl {
            return Err(Exception::gp(sel_err));
        }
        if !d.present() {
            return Err(Exception::np(sel_err));
        }
        let v86 = self.s.v86();
        let inner = !d.conforming() && d.dpl() < cpl;
        // V86 code may only be interrupted into ring 0, never into a conforming segment.
        if v86 && (!inner || d.dpl() != 0) {
            return Err(Exception::gp(sel_err));
        }
        let new_cpl = if inner { d.dpl() } else { cpl };
        let err = src.error_code();
        let slot = if gate32 { 4 } else { 2 };
        let mut slots = 3 + u32::from(err.is_some());
        if inner {
            slots += 2;
        }
        if v86 {
            slots += 4;
        }
        // The stack the frame goes on, checked before anything changes.
        let new_stack = if inner {
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, ext)?;
            let ss = self.check_inner_ss(bus, ss_sel, new_cpl, ext)?;
            let seg = ss.to_segment(ss_sel);
            if !stack_room(&seg, esp, slots * slot) {
                return Err(Exception::ss(u32::from(ss_sel & 0xFFFC) + ext));
            }
            Some((ss_sel, ss, esp))
        } else {
            if !stack_room(&self.s.seg[SS], self.s.gpr[ESP], slots * slot) {
                return Err(Exception::ss(ext));
            }
            None
        };
        if offset > d.limit() {
            return Err(Exception::gp(ext));
        }
        self.mark_accessed(bus, sel, &d)?;
        if let Some((ss_sel, ss, _)) = &new_stack {
            self.mark_accessed(bus, *ss_sel, ss)?;
        }

        // Commit. A push can still fault (a page of the new stack); then all goes back.
        let flags = self.eflags();
        let old = Rollback {
            eflags: self.s.eflags,
            cs: self.s.seg[CS],
            ss: self.s.seg[SS],
            esp: self.s.gpr[ESP],
        };
        let eip = self.s.eip;
        // VM goes off first, so that loading CS computes the CPL from the selector.
        self.s.eflags &= !VM;
        self.set_segment(CS, d.to_segment((sel & !3) | u16::from(new_cpl)));
        let mut frame = [0u32; 10];
        let mut n = 0;
        if let Some((ss_sel, ss, esp)) = new_stack {
            if v86 {
                for seg in [GS, FS, DS, ES] {
                    frame[n] = u32::from(self.s.seg[seg].selector);
                    n += 1;
                }
            }
            frame[n] = u32::from(old.ss.selector);
            frame[n + 1] = old.esp;
            n += 2;
            self.set_segment(SS, ss.to_segment(ss_sel));
            self.s.gpr[ESP] = esp;
        }
        frame[n] = flags;
        frame[n + 1] = u32::from(old.cs.selector);
        frame[n + 2] = eip;
        n += 3;
        if let Some(e) = err {
            frame[n] = e;
            n += 1;
        }
        for &v in &frame[..n] {
            let r = if gate32 {
                self.push::<W32>(bus, v)
            } else {
                self.push::<W16>(bus, v)
            };
            if let Err(e) = r {
                self.roll_back(old);
                return Err(e);
            }
        }
        if v86 {
            for seg in [ES, DS, FS, GS] {
                self.set_segment(seg, Segment::null(0));
            }
        }
        self.s.eip = offset;
        self.s.eflags &= !(TF | NT | RF);
        if !trap_gate {
            self.s.eflags &= !IF;
        }
        if v86 {
            // The mode changed under everything derived from it.
            self.state_changed();
        }
        Ok(())
    }

    fn roll_back(&mut self, old: Rollback) {
        let vm_changed = (old.eflags ^ self.s.eflags) & VM != 0;
        self.s.eflags = old.eflags;
        self.set_segment(CS, old.cs);
        self.set_segment(SS, old.ss);
        self.s.gpr[ESP] = old.esp;
        if vm_changed {
            self.state_changed();
        }
    }

    /// Checks the stack segment an inner-ring entry found in the TSS for ring `cpl`:
    /// #TS for a bad selector or descriptor, #SS if it is not present.
    pub(crate) fn check_inner_ss(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        cpl: u8,
        ext: u32,
    ) -> Result<Descriptor> {
        if sel & 0xFFFC == 0 {
            return Err(Exception::ts(ext));
        }
        let err = u32::from(sel & 0xFFFC) + ext;
        let d = self.read_descriptor_or(bus, sel, Exception::ts(err))?;
        if (sel & 3) as u8 != cpl || !d.is_segment() || d.is_code() || !d.rw() || d.dpl() != cpl {
            return Err(Exception::ts(err));
        }
        if !d.present() {
            return Err(Exception::ss(err));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_room_respects_limits_and_expand_down() {
        let mut ss = Segment {
            selector: 0x10,
            base: 0,
            limit: 0xFFF,
            attr: ATTR_P | ATTR_S | ATTR_RW | ATTR_DB,
            usable: true,
        };
        assert!(stack_room(&ss, 0x1000, 20));
        assert!(stack_room(&ss, 20, 20));
        assert!(!stack_room(&ss, 19, 20), "would wrap below 0");
        assert!(
            !stack_room(&ss, 0x1001, 4),
            "the top slot is beyond the limit"
        );
        ss.attr |= ATTR_DC; // expand-down: valid offsets are 0x1000..=0xFFFFFFFF
        assert!(!stack_room(&ss, 0x1010, 20));
        assert!(stack_room(&ss, 0x1014, 20));
        ss.attr &= !ATTR_RW;
        assert!(!stack_room(&ss, 0x2000, 4), "read-only stack");
    }
}

#[cfg(test)]
mod delivery_tests {
    use super::*;
    use crate::exception::{DF, GP, NP, SS as SS_FAULT, TS};
    use crate::testbed::*;
    use crate::Exit;

    const HANDLER: u32 = 0x1_1000;
    /// Below 64 KiB, for 16-bit gates.
    const HANDLER16: u32 = 0x8800;

    fn err(vector: u8, code: u32) -> Result<()> {
        Err(Exception::with_error(vector, code))
    }

    /// A CPU at ring 3 about to run `int 0x80` (gate DPL 3 to a ring-0 HLT).
    fn ring3_bed() -> Bed {
        let mut b = Bed::new();
        b.gate(0x80, CODE0, HANDLER, INT_GATE_DPL3);
        b.write(HANDLER, &[0xF4]);
        b.write(CODE, &[0xCD, 0x80]);
        b.enter_ring3(CODE);
        b
    }

    #[test]
    fn int_from_ring3_switches_to_the_tss_stack() {
        let mut b = ring3_bed();
        b.cpu.set_eflags(IF, IF);
        b.run_to(HANDLER);
        let s = &b.cpu.s;
        assert_eq!(s.cpl, 0);
        assert_eq!(s.seg[CS].selector, CODE0);
        assert_eq!(s.seg[SS].selector, DATA0, "SS0 from the TSS");
        assert_eq!(s.gpr[ESP], STACK0 - 20, "ESP0 less a 5-slot frame");
        assert_eq!(s.eflags & IF, 0, "an interrupt gate clears IF");
        assert_eq!(s.seg[DS].selector, DATA3, "data segments stay");
        assert_eq!(b.r32(STACK0 - 20), CODE + 2, "EIP after INT");
        assert_eq!(b.r32(STACK0 - 16), u32::from(CODE3));
        assert_eq!(b.r32(STACK0 - 12) & IF, IF, "EFLAGS image");
        assert_eq!(b.r32(STACK0 - 8), STACK3, "old ESP");
        assert_eq!(b.r32(STACK0 - 4), u32::from(DATA3), "old SS");
    }

    #[test]
    fn exception_from_ring3_pushes_its_error_code() {
        let mut b = ring3_bed();
        // cli at IOPL 0
        b.write(CODE, &[0xFA]);
        b.gate(13, CODE0, HANDLER, INT_GATE);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0 - 24);
        assert_eq!(b.r32(STACK0 - 24), 0, "error code");
        assert_eq!(b.r32(STACK0 - 20), CODE, "EIP of the faulting CLI");
        assert_eq!(b.r32(STACK0 - 8), STACK3);
    }

    #[test]
    fn software_int_through_a_dpl0_gate_is_gp() {
        let mut b = ring3_bed();
        b.gate(0x80, CODE0, HANDLER, INT_GATE);
        b.gate(13, CODE0, HANDLER, INT_GATE);
        b.run_to(HANDLER);
        assert_eq!(b.r32(STACK0 - 24), 0x80 * 8 + 2, "IDT bit, no EXT");
        assert_eq!(b.r32(STACK0 - 20), CODE, "EIP of the INT");
        // A hardware interrupt does not look at the gate's DPL.
        let mut b = ring3_bed();
        b.gate(0x80, CODE0, HANDLER, INT_GATE);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x80, Source::External), Ok(()));
        assert_eq!(b.cpu.s.cpl, 0);
    }

    #[test]
    fn trap_gate_keeps_if() {
        let mut b = ring3_bed();
        b.gate(0x80, CODE0, HANDLER, TRAP_GATE_DPL3);
        b.cpu.set_eflags(IF, IF);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.eflags & IF, IF);
    }

    #[test]
    fn gate_faults_carry_idt_and_ext_bits() {
        let mut b = Bed::new();
        let sw = Source::Software;
        let hw = Source::External;
        // Not present.
        b.gate(0x30, CODE0, HANDLER, INT_GATE & 0x7F);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x30, sw), err(NP, 0x182));
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x30, hw), err(NP, 0x183));
        // Not a gate type: a call gate, a data descriptor.
        b.gate(0x31, CODE0, HANDLER, 0x8C);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x31, hw), err(GP, 0x18B));
        b.gate(0x32, CODE0, HANDLER, 0x92);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x32, sw), err(GP, 0x192));
        // Beyond the IDT limit.
        b.cpu.s.idtr.limit = 0x40 * 8 - 1;
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x40, sw), err(GP, 0x202));
        let e = Source::Exception(Some(0));
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x40, e), err(GP, 0x203));
    }

    #[test]
    fn handler_segment_faults_carry_the_selector() {
        let mut b = Bed::new();
        let hw = Source::External;
        let cases = [
            (0x0000, err(GP, 1)),     // null
            (0x0200, err(GP, 0x201)), // beyond the GDT
            (DATA0, err(GP, 0x11)),   // not code
            (CODE3, err(GP, 0x19)),   // DPL 3 > CPL 0
            (0x58, err(NP, 0x59)),    // not present
        ];
        b.desc(11, seg_desc(0, 0xFFFFF, 0x1A, 0xC));
        for (sel, want) in cases {
            b.gate(0x30, sel, HANDLER, INT_GATE);
            assert_eq!(b.cpu.interrupt(&mut b.bus, 0x30, hw), want, "{sel:#x}");
        }
        // An offset beyond the handler segment's limit.
        b.gate(0x30, CODE16, 0xFFF0, INT_GATE);
        b.desc(9, seg_desc(0, 0xFFEF, 0x9A, 0));
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x30, hw), err(GP, 1));
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x30, Source::Software),
            err(GP, 0)
        );
    }

    #[test]
    fn inner_stack_faults_and_nothing_changes() {
        let sw = Source::Software;
        let ex = Source::Exception(Some(0));
        type Setup = (&'static str, fn(&mut Bed), u8, u32);
        let setups: [Setup; 8] = [
            ("SS0 null", |b| b.w16(TSS + 8, 0), TS, 0),
            ("SS0 RPL 3", |b| b.w16(TSS + 8, 0x13), TS, 0x10),
            (
                "SS0 DPL 3",
                |b| b.w16(TSS + 8, u32::from(DATA3 & !3)),
                TS,
                0x20,
            ),
            ("SS0 code", |b| b.w16(TSS + 8, u32::from(CODE0)), TS, 0x08),
            (
                "SS0 read-only",
                |b| b.desc(2, seg_desc(0, 0xFFFFF, 0x90, 0xC)),
                TS,
                0x10,
            ),
            (
                "SS0 not present",
                |b| b.desc(2, seg_desc(0, 0xFFFFF, 0x12, 0xC)),
                SS_FAULT,
                0x10,
            ),
            (
                "no room on the new stack",
                |b| b.desc(2, seg_desc(0, 0x6FF0, 0x92, 0x4)),
                SS_FAULT,
                0x10,
            ),
            (
                "TSS too short for SS0",
                |b| {
                    b.desc(5, seg_desc(TSS, 8, 0x8B, 0));
                    b.cpu.s.tr.limit = 8;
                },
                TS,
                0x28,
            ),
        ];
        for (what, setup, vector, code) in setups {
            for (src, ext) in [(sw, 0), (ex, 1)] {
                let mut b = ring3_bed();
                setup(&mut b);
                let before = b.cpu.s.clone();
                let want = err(vector, code + ext);
                assert_eq!(b.cpu.interrupt(&mut b.bus, 0x80, src), want, "{what}");
                b.cpu.s.halted = before.halted;
                assert_eq!(b.cpu.s, before, "{what}: state changed");
            }
        }
    }

    #[test]
    fn same_ring_stack_without_room_is_ss_ext() {
        let mut b = Bed::new();
        b.gate(0x30, CODE0, HANDLER, INT_GATE);
        b.cpu.s.gpr[ESP] = 8;
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x30, Source::External),
            err(SS_FAULT, 1)
        );
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x30, Source::Software),
            err(SS_FAULT, 0)
        );
        assert_eq!(b.cpu.s.gpr[ESP], 8);
    }

    #[test]
    fn sixteen_bit_tss_and_gate() {
        let mut b = ring3_bed();
        // TR: a 286 TSS whose SP0:SS0 are 0x6800:DATA0.
        b.desc(11, seg_desc(TSS2, 0x2B, 0x83, 0));
        b.w16(TSS2 + 2, 0x6800);
        b.w16(TSS2 + 4, u32::from(DATA0));
        b.cpu.s.tr = crate::seg::Descriptor {
            lo: seg_desc(TSS2, 0x2B, 0x83, 0) as u32,
            hi: (seg_desc(TSS2, 0x2B, 0x83, 0) >> 32) as u32,
        }
        .to_segment(0x58);
        b.gate(0x80, CODE0, HANDLER16, INT_GATE16_DPL3);
        b.write(HANDLER16, &[0xF4]);
        b.run_to(HANDLER16);
        assert_eq!(b.cpu.s.gpr[ESP], 0x6800 - 10);
        assert_eq!(b.r16(0x6800 - 10), (CODE + 2) & 0xFFFF, "IP");
        assert_eq!(b.r16(0x6800 - 8), u32::from(CODE3));
        assert_eq!(b.r16(0x6800 - 4), STACK3 & 0xFFFF, "SP");
        assert_eq!(b.r16(0x6800 - 2), u32::from(DATA3));
        // A 286 TSS too short for SP0:SS0.
        let mut b = ring3_bed();
        b.cpu.s.tr.attr = ATTR_P | 3;
        b.cpu.s.tr.limit = 4;
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x80, Source::Software),
            err(TS, 0x28)
        );
    }

    #[test]
    fn ring1_handler_uses_ss1_esp1() {
        let mut b = ring3_bed();
        b.gate(0x80, CODE1, HANDLER, INT_GATE_DPL3);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x80, Source::Software), Ok(()));
        let s = &b.cpu.s;
        assert_eq!((s.cpl, s.seg[CS].selector), (1, CODE1));
        assert_eq!((s.seg[SS].selector, s.gpr[ESP]), (DATA1, STACK1 - 20));
        assert_eq!(b.r32(STACK1 - 4), u32::from(DATA3));
    }

    #[test]
    fn conforming_handler_runs_in_the_current_ring() {
        let mut b = ring3_bed();
        b.gate(0x80, CONFORMING0, HANDLER, INT_GATE_DPL3);
        assert_eq!(b.cpu.interrupt(&mut b.bus, 0x80, Source::Software), Ok(()));
        let s = &b.cpu.s;
        assert_eq!(s.cpl, 3);
        assert_eq!(s.seg[CS].selector, CONFORMING0 | 3, "RPL = CPL");
        assert_eq!(s.seg[SS].selector, DATA3, "no stack switch");
        assert_eq!(s.gpr[ESP], STACK3 - 12);
        assert_eq!(s.eip, HANDLER);
    }

    /// A CPU in V86 mode at 1000:0010 with SS:SP 2000:0100 and distinct data segments.
    fn v86_bed() -> Bed {
        let mut b = Bed::new();
        b.gate(0x21, CODE0, HANDLER, INT_GATE_DPL3);
        b.enter_v86(3);
        b
    }

    #[test]
    fn interrupt_from_v86_saves_and_nulls_the_segments() {
        for (src, extra) in [(Source::Software, 0), (Source::Exception(Some(0)), 4)] {
            let mut b = v86_bed();
            assert_eq!(b.cpu.interrupt(&mut b.bus, 0x21, src), Ok(()));
            let s = b.cpu.s.clone();
            assert_eq!(s.eflags & VM, 0);
            assert_eq!(s.cpl, 0);
            assert_eq!(s.seg[SS].selector, DATA0);
            let top = STACK0;
            assert_eq!(s.gpr[ESP], top - 36 - extra);
            for seg in [ES, DS, FS, GS] {
                assert_eq!(s.seg[seg].selector, 0);
                assert!(!s.seg[seg].usable);
            }
            let frame: Vec<u32> = (0..9).map(|n| b.r32(top - 36 + 4 * n)).collect();
            assert_eq!(frame[0], 0x10, "EIP");
            assert_eq!(frame[1], 0x1000, "CS");
            assert_eq!(frame[2] & VM, VM, "EFLAGS with VM");
            assert_eq!(frame[3..], [0x100, 0x2000, 0x4000, 0x3000, 0x5000, 0x6000]);
        }
    }

    #[test]
    fn v86_may_only_enter_ring0_non_conforming_code() {
        let mut b = v86_bed();
        b.gate(0x21, CODE3, HANDLER, INT_GATE_DPL3);
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x21, Source::Software),
            err(GP, 0x18)
        );
        b.gate(0x21, CONFORMING0, HANDLER, INT_GATE_DPL3);
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x21, Source::External),
            err(GP, 0x41)
        );
        b.gate(0x21, CODE1, HANDLER, INT_GATE_DPL3);
        assert_eq!(
            b.cpu.interrupt(&mut b.bus, 0x21, Source::External),
            err(GP, 0x31)
        );
        assert_eq!(b.cpu.s.eflags & VM, VM);
    }

    #[test]
    fn hardware_interrupt_in_v86_reaches_ring0() {
        let mut b = v86_bed();
        b.gate(0x21, CODE0, HANDLER, INT_GATE);
        b.cpu.deliver_external(&mut b.bus, 0x21);
        assert_eq!(b.cpu.s.cpl, 0);
        assert_eq!(b.cpu.s.eip, HANDLER);
    }

    /// `mov eax, 0x58; mov ds, ax` with GDT entry 11 (0x58) a data segment not present,
    /// and no #NP gate.
    fn np_bed() -> Bed {
        let mut b = Bed::new();
        b.desc(11, seg_desc(0, 0xFFFFF, 0x12, 0xC));
        b.write(CODE, &[0xB8, 0x58, 0x00, 0x00, 0x00, 0x8E, 0xD8]);
        b.write(HANDLER, &[0xF4]);
        b
    }

    #[test]
    fn np_while_delivering_np_is_a_double_fault() {
        let mut b = np_bed();
        b.gate(DF, CODE0, HANDLER, INT_GATE);
        b.run_to(HANDLER);
        assert_eq!(b.cpu.s.gpr[ESP], STACK0 - 16);
        assert_eq!(b.r32(STACK0 - 16), 0, "#DF error code");
        assert_eq!(b.r32(STACK0 - 12), CODE + 5, "EIP of the MOV");
        assert_eq!(b.cpu.last_exception, Some(Exception::np(0x58)));
    }

    #[test]
    fn fault_while_delivering_df_shuts_down() {
        let mut b = np_bed();
        assert_eq!(b.run(), Exit::Shutdown);
        assert!(b.cpu.s.shutdown);
    }

    #[test]
    fn benign_then_contributory_is_delivered_serially() {
        let mut b = Bed::new();
        // ud2 with the #UD gate not present: #NP(6 * 8 + 2 + EXT) goes to the #NP handler.
        b.write(CODE, &[0x0F, 0x0B]);
        b.gate(6, CODE0, HANDLER, INT_GATE & 0x7F);
        b.gate(NP, CODE0, HANDLER, INT_GATE);
        b.write(HANDLER, &[0xF4]);
        b.run_to(HANDLER);
        assert_eq!(b.r32(STACK0 - 16), 6 * 8 + 3);
        assert_eq!(b.r32(STACK0 - 12), CODE);
    }

    #[test]
    fn contributory_after_serial_np_still_double_faults() {
        // #UD -> (gate missing) #NP -> (its handler's segment not present) #NP: the
        // second contributory fault escalates, even though the first step was serial.
        let mut b = np_bed();
        b.write(CODE, &[0x0F, 0x0B]);
        b.gate(6, CODE0, HANDLER, INT_GATE & 0x7F);
        b.gate(NP, 0x58, HANDLER, INT_GATE);
        b.desc(11, seg_desc(0, 0xFFFFF, 0x1A, 0xC));
        b.gate(DF, CODE0, HANDLER, INT_GATE);
        b.run_to(HANDLER);
        assert_eq!(b.r32(STACK0 - 16), 0);
        assert_eq!(b.r32(STACK0 - 12), CODE);
    }
}
