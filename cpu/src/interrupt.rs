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
