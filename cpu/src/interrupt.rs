//! Delivering interrupts and exceptions through the real-mode IVT or the protected-mode IDT.
//!
//! ```text
//!  real mode:  IVT[v] = offset:16 segment:16 at IDTR.base + 4v
//!              push FLAGS, CS, IP; clear IF, TF, AC
//!  protected:  IDT[v] = gate at IDTR.base + 8v
//!              interrupt gate (clears IF) or trap gate; 16- or 32-bit frame
//!              push EFLAGS, CS, EIP [, error code]
//! ```
//! A fault while delivering escalates as the SDM's double-fault table says, and a fault
//! while delivering #DF shuts the CPU down (triple fault).

use crate::exception::{self as ex, Exception, Result};
use crate::state::*;
use crate::width::{W16, W32};
use crate::{Bus, Cpu};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// INT n, INT3, INTO: gate DPL is checked and no EXT bit.
    Software,
    /// An exception with its error code.
    Exception(Option<u32>),
    /// INTR from the PIC.
    External,
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
        let first = e;
        let r = self.interrupt(bus, e.vector, Source::Exception(e.error()));
        let Err(second) = r else { return };
        if first.vector == ex::DF {
            self.triple_fault();
            return;
        }
        let escalate = (first.contributory() && second.contributory())
            || (first.vector == ex::PF && (second.contributory() || second.vector == ex::PF));
        let next = if escalate {
            Exception::with_error(ex::DF, 0)
        } else {
            second
        };
        if let Err(_third) = self.interrupt(bus, next.vector, Source::Exception(next.error())) {
            if next.vector == ex::DF || escalate {
                self.triple_fault();
            } else {
                // A benign fault while delivering another benign one: give up the same way
                // hardware eventually does rather than loop.
                self.deliver_exception_depth2(bus, _third);
            }
        }
    }

    fn deliver_exception_depth2(&mut self, bus: &mut dyn Bus, e: Exception) {
        if self
            .interrupt(bus, e.vector, Source::Exception(e.error()))
            .is_err()
        {
            self.triple_fault();
        }
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
    /// memory below the stack pointer.
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
        let ext = u32::from(src != Source::Software);
        let idt_err = u32::from(vector) * 8 + 2 + ext;
        let at = u32::from(vector) * 8;
        if at + 7 > u32::from(self.s.idtr.limit) {
            return Err(Exception::gp(idt_err));
        }
        let lo = self.read_sys::<W32>(bus, self.s.idtr.base.wrapping_add(at))?;
        let hi = self.read_sys::<W32>(bus, self.s.idtr.base.wrapping_add(at + 4))?;
        let ty = (hi >> 8) & 0x1F;
        let gate32 = match ty {
            0x06 | 0x07 => false,
            0x0E | 0x0F => true,
            _ => return Err(Exception::gp(idt_err)),
        };
        let trap_gate = ty & 1 != 0;
        let gate_dpl = ((hi >> 13) & 3) as u8;
        if src == Source::Software && gate_dpl < self.s.cpl {
            return Err(Exception::gp(idt_err));
        }
        if hi & (1 << 15) == 0 {
            return Err(Exception::np(idt_err));
        }
        let sel = (lo >> 16) as u16;
        let offset = if gate32 {
            (lo & 0xFFFF) | (hi & 0xFFFF_0000)
        } else {
            lo & 0xFFFF
        };
        if sel & 0xFFFC == 0 {
            return Err(Exception::gp(ext));
        }
        let sel_err = u32::from(sel & 0xFFFC) + ext;
        let d = self
            .read_descriptor(bus, sel)
            .map_err(|_| Exception::gp(sel_err))?;
        if !d.is_code() || d.dpl() > self.s.cpl {
            return Err(Exception::gp(sel_err));
        }
        if !d.present() {
            return Err(Exception::np(sel_err));
        }
        if !d.conforming() && d.dpl() < self.s.cpl || self.s.v86() {
            // Entering an inner ring needs the TSS stack switch, which this CPU does not
            // implement yet; the guest sees #GP rather than a half-done transfer.
            return Err(Exception::gp(sel_err));
        }
        if offset > d.limit() {
            return Err(Exception::gp(ext));
        }
        let flags = self.eflags();
        let cs = u32::from(self.s.seg[CS].selector);
        let eip = self.s.eip;
        let esp = self.s.gpr[ESP];
        let err = match src {
            Source::Exception(e) => e,
            _ => None,
        };
        let r = if gate32 {
            self.push::<W32>(bus, flags)
                .and_then(|_| self.push::<W32>(bus, cs))
                .and_then(|_| self.push::<W32>(bus, eip))
                .and_then(|_| err.map_or(Ok(()), |e| self.push::<W32>(bus, e)))
        } else {
            self.push::<W16>(bus, flags)
                .and_then(|_| self.push::<W16>(bus, cs))
                .and_then(|_| self.push::<W16>(bus, eip))
                .and_then(|_| err.map_or(Ok(()), |e| self.push::<W16>(bus, e)))
        };
        if let Err(e) = r {
            self.s.gpr[ESP] = esp;
            return Err(e);
        }
        self.mark_accessed(bus, sel, &d)?;
        let cpl = self.s.cpl;
        self.set_segment(CS, d.to_segment((sel & !3) | u16::from(cpl)));
        self.s.eip = offset;
        self.s.eflags &= !(TF | NT | RF | VM);
        if !trap_gate {
            self.s.eflags &= !IF;
        }
        Ok(())
    }
}
