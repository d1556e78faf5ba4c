//! The run loop.

use std::rc::Rc;

use memory::GuestPhysAddr;

use crate::block::Block;
use crate::exception::Result;
use crate::state::{CS, IF};
use crate::tlb::PAGE_MASK;
use crate::{Bus, Cpu};

/// Why `run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The instruction budget is spent.
    Budget,
    /// HLT with nothing to wake the CPU: the board may sleep until an interrupt.
    Halted,
    /// Triple fault: the board resets the machine or stops.
    Shutdown,
    /// The board asked to stop ([`Bus::stop_requested`]).
    Stopped,
}

impl Cpu {
    /// Runs guest code for about `budget` instructions (whole blocks; at most one block over).
    pub fn run(&mut self, bus: &mut dyn Bus, budget: u64) -> Exit {
        let start = self.s.icount;
        loop {
            if self.s.shutdown {
                return Exit::Shutdown;
            }
            self.poll_memory_events();
            if self.s.eflags & IF != 0 && !self.s.inhibit_irq && bus.interrupt_pending() {
                let vector = bus.acknowledge_interrupt();
                self.s.halted = false;
                self.deliver_external(bus, vector);
                continue;
            }
            if self.s.halted {
                return Exit::Halted;
            }
            if self.s.icount.wrapping_sub(start) >= budget {
                return Exit::Budget;
            }
            if bus.stop_requested() {
                return Exit::Stopped;
            }
            self.step_block(bus);
        }
    }

    /// Reacts to what other parties did to memory: a dirty-log harvest (drop write
    /// entries) or DMA over translated code (drop its blocks).
    #[inline]
    fn poll_memory_events(&mut self) {
        if self.mem.dirty_epoch() != self.dirty_epoch {
            self.rearm_dirty_tracking();
        }
        if self.mem.smc_pending() {
            let pages = self.mem.take_smc();
            for p in pages.pages() {
                self.invalidate_code_page(p);
            }
            self.flush_tlb_writes();
        }
    }

    /// Finds or translates the block at CS:EIP and runs it.
    fn step_block(&mut self, bus: &mut dyn Bus) {
        let lin = self.s.seg[CS].base.wrapping_add(self.s.eip);
        let mode = self.mode_key();
        let block = match self.cache.lookup_jump(lin, mode) {
            Some(b) => b.clone(),
            None => match self.find_block(lin, mode) {
                Ok(b) => b,
                Err(e) => {
                    self.deliver_exception(bus, e);
                    return;
                }
            },
        };
        self.stop_block = false;
        // In an interrupt shadow exactly one instruction runs before interrupts are looked
        // at again.
        let n = if self.s.inhibit_irq {
            // The shadow ends with this instruction unless it sets a new one (STI; MOV SS).
            self.s.inhibit_irq = false;
            1
        } else {
            block.ops.len()
        };
        // EIP lives in a register across the ops and is stored before each handler runs
        // (handlers read it as the address of the next instruction).
        let mut eip = self.s.eip;
        let mut done = n;
        for (k, op) in block.ops[..n].iter().enumerate() {
            let next = eip.wrapping_add(u32::from(op.len));
            self.s.eip = next;
            if let Err(e) = (op.f)(self, bus, op) {
                if !e.trap {
                    self.s.eip = eip;
                    done = k;
                } else {
                    done = k + 1;
                }
                self.s.icount += done as u64;
                self.deliver_exception(bus, e);
                return;
            }
            if self.stop_block {
                done = k + 1;
                break;
            }
            eip = next;
        }
        self.s.icount += done as u64;
    }

    /// The block at linear `lin` when the jump cache has none: translate the address for
    /// execution, look the physical address up in the block map (a block that runs into
    /// the next page serves only while that page still maps where it did), or translate.
    #[inline(never)]
    fn find_block(&mut self, lin: u32, mode: u32) -> Result<Rc<Block>> {
        let phys = self.translate_fetch(lin)?;
        if let Some(b) = self.cache.find(phys, mode) {
            let same = match b.next_phys {
                None => true,
                Some(p2) => {
                    let next = (lin & PAGE_MASK).wrapping_add(0x1000);
                    self.translate_fetch(next)
                        .is_ok_and(|p| p & PAGE_MASK == p2)
                }
            };
            if same {
                self.cache.link_jump(lin, &b);
                return Ok(b);
            }
        }
        self.translate_block(lin, u64::from(phys))
    }

    /// Executes exactly one instruction (the monitor's single step, tests).
    pub fn step(&mut self, bus: &mut dyn Bus) -> Exit {
        // An armed shadow makes step_block run exactly one op and then clears it, which
        // is also right if a real shadow was pending.
        self.s.inhibit_irq = true;
        self.step_block(bus);
        if self.s.shutdown {
            Exit::Shutdown
        } else if self.s.halted {
            Exit::Halted
        } else {
            Exit::Budget
        }
    }

    /// Reads guest physical memory (monitor `xp`).
    pub fn read_phys(&self, addr: u64, out: &mut [u8]) {
        self.mem.read_phys(GuestPhysAddr(addr), out);
    }
}
