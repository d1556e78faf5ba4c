//! Guest memory accesses as instructions make them: segment checks, then the TLB.

use memory::{GuestPhysAddr, Region, PAGE_SHIFT};

use crate::exception::{Exception, Result};
use crate::state::SS;
use crate::tlb::PAGE_MASK;
use crate::width::{Width, W16, W32, W8};
use crate::{Bus, Cpu};

/// Loads and stores of one width from RAM by offset (little-endian on every host).
pub trait RamAccess: Width {
    fn load(mem: &memory::GuestMemory, off: u64) -> Option<u32>;
    fn store(mem: &memory::GuestMemory, off: u64, v: u32) -> bool;
}

impl RamAccess for W8 {
    #[inline(always)]
    fn load(mem: &memory::GuestMemory, off: u64) -> Option<u32> {
        mem.ram().load::<1>(off).map(|b| u32::from(b[0]))
    }
    #[inline(always)]
    fn store(mem: &memory::GuestMemory, off: u64, v: u32) -> bool {
        mem.store_logged::<1>(off, [v as u8])
    }
}

impl RamAccess for W16 {
    #[inline(always)]
    fn load(mem: &memory::GuestMemory, off: u64) -> Option<u32> {
        mem.ram()
            .load::<2>(off)
            .map(|b| u32::from(u16::from_le_bytes(b)))
    }
    #[inline(always)]
    fn store(mem: &memory::GuestMemory, off: u64, v: u32) -> bool {
        mem.store_logged::<2>(off, (v as u16).to_le_bytes())
    }
}

impl RamAccess for W32 {
    #[inline(always)]
    fn load(mem: &memory::GuestMemory, off: u64) -> Option<u32> {
        mem.ram().load::<4>(off).map(u32::from_le_bytes)
    }
    #[inline(always)]
    fn store(mem: &memory::GuestMemory, off: u64, v: u32) -> bool {
        mem.store_logged::<4>(off, v.to_le_bytes())
    }
}

#[inline(always)]
fn seg_fault(seg: usize) -> Exception {
    if seg == SS {
        Exception::ss(0)
    } else {
        Exception::gp(0)
    }
}

impl Cpu {
    /// Checks an access of `bytes` at `seg:off` and returns the linear address.
    #[inline(always)]
    pub fn seg_check(&self, seg: usize, off: u32, bytes: u32, write: bool) -> Result<u32> {
        let b = &self.bounds[seg];
        let ok = if write { b.write } else { b.read };
        let end = u64::from(off) + u64::from(bytes - 1);
        if !ok || off < b.lo || end > u64::from(b.hi) {
            return Err(seg_fault(seg));
        }
        Ok(self.s.seg[seg].base.wrapping_add(off))
    }

    #[inline(always)]
    pub fn read<W: RamAccess>(&mut self, bus: &mut dyn Bus, seg: usize, off: u32) -> Result<u32> {
        let lin = self.seg_check(seg, off, W::BYTES, false)?;
        self.read_lin::<W>(bus, lin)
    }

    #[inline(always)]
    pub fn write<W: RamAccess>(
        &mut self,
        bus: &mut dyn Bus,
        seg: usize,
        off: u32,
        v: u32,
    ) -> Result<()> {
        let lin = self.seg_check(seg, off, W::BYTES, true)?;
        self.write_lin::<W>(bus, lin, v)
    }

    #[inline(always)]
    pub fn read_lin<W: RamAccess>(&mut self, bus: &mut dyn Bus, lin: u32) -> Result<u32> {
        let e = self.tlb.entry(lin);
        if e.read == lin & PAGE_MASK && (lin & 0xFFF) <= 0x1000 - W::BYTES {
            if let Some(v) = W::load(&self.mem, u64::from(lin.wrapping_add(e.addend))) {
                return Ok(v);
            }
        }
        self.read_lin_slow(bus, lin, W::BYTES, self.tlb_user)
    }

    #[inline(always)]
    pub fn write_lin<W: RamAccess>(&mut self, bus: &mut dyn Bus, lin: u32, v: u32) -> Result<()> {
        let e = self.tlb.entry(lin);
        if e.write == lin & PAGE_MASK
            && (lin & 0xFFF) <= 0x1000 - W::BYTES
            && W::store(&self.mem, u64::from(lin.wrapping_add(e.addend)), v)
        {
            return Ok(());
        }
        self.write_lin_slow(bus, lin, W::BYTES, v, self.tlb_user)
    }

    /// Reads `bytes` (1, 2 or 4) at `lin` with user or supervisor permissions the slow
    /// way: TLB miss (page walk), ROM, MMIO, page crossing.
    #[inline(never)]
    pub fn read_lin_slow(
        &mut self,
        bus: &mut dyn Bus,
        lin: u32,
        bytes: u32,
        user: bool,
    ) -> Result<u32> {
        let off = lin & 0xFFF;
        if off + bytes > 0x1000 {
            // Crossing a page: both pages are checked, then translated, then read.
            let n1 = 0x1000 - off;
            self.check_access(lin, false, user)?;
            self.check_access(lin.wrapping_add(n1), false, user)?;
            let p1 = self.translate_access(lin, false, user)?;
            let p2 = self.translate_access(lin.wrapping_add(n1), false, user)?;
            let lo = self.read_phys_part(bus, p1, n1);
            let hi = self.read_phys_part(bus, p2, bytes - n1);
            return Ok(lo | hi << (8 * n1));
        }
        let phys = self.translate_access(lin, false, user)?;
        Ok(self.read_phys_part(bus, phys, bytes))
    }

    /// Writes `bytes` (1, 2 or 4) of `v` at `lin` the slow way. A store that crosses a
    /// page checks both pages before it sets an accessed or dirty bit or writes a byte.
    #[inline(never)]
    pub fn write_lin_slow(
        &mut self,
        bus: &mut dyn Bus,
        lin: u32,
        bytes: u32,
        v: u32,
        user: bool,
    ) -> Result<()> {
        let off = lin & 0xFFF;
        if off + bytes > 0x1000 {
            let n1 = 0x1000 - off;
            self.check_access(lin, true, user)?;
            self.check_access(lin.wrapping_add(n1), true, user)?;
            let p1 = self.translate_access(lin, true, user)?;
            let p2 = self.translate_access(lin.wrapping_add(n1), true, user)?;
            self.write_phys_part(bus, p1, n1, v);
            self.write_phys_part(bus, p2, bytes - n1, v >> (8 * n1));
            return Ok(());
        }
        let phys = self.translate_access(lin, true, user)?;
        if self.write_phys_part(bus, phys, bytes, v) {
            // Logged: the page may take fast stores until the next harvest or until it
            // gets translated code.
            self.tlb_for(user).arm_write(lin);
        }
        Ok(())
    }

    /// `bytes` (1-4) at `phys`, all within one page, as the memory map decodes it.
    fn read_phys_part(&mut self, bus: &mut dyn Bus, phys: u32, bytes: u32) -> u32 {
        match self.mem.classify(GuestPhysAddr(u64::from(phys))) {
            Region::Ram(off) => {
                let mut b = [0u8; 4];
                self.mem.ram().read_slice(off, &mut b[..bytes as usize]);
                u32::from_le_bytes(b)
            }
            Region::Rom { rom, offset } => {
                let r = self.mem.rom(rom);
                let mut v = 0;
                for i in 0..bytes as usize {
                    v |= u32::from(r.get(offset as usize + i).copied().unwrap_or(0xFF)) << (8 * i);
                }
                v
            }
            Region::Mmio { id, offset } if bytes != 3 => bus.mmio_read(id, offset, bytes as u8),
            Region::Mmio { id, offset } => (0..3u32).fold(0, |v, i| {
                v | bus.mmio_read(id, offset + u64::from(i), 1) << (8 * i)
            }),
            Region::Unassigned => u32::MAX >> (32 - 8 * bytes),
        }
    }

    /// Stores `bytes` (1-4) of `v` at `phys`, all within one page: RAM through the dirty
    /// log and the code-page check, MMIO to the board; ROM and holes ignore it. Returns
    /// whether it was RAM.
    fn write_phys_part(&mut self, bus: &mut dyn Bus, phys: u32, bytes: u32, v: u32) -> bool {
        match self.mem.classify(GuestPhysAddr(u64::from(phys))) {
            Region::Ram(off) => {
                let page = off >> PAGE_SHIFT;
                // Log first (dirty clients, code check), then store.
                if self.mem.note_write(page) {
                    self.invalidate_code_page(page);
                }
                let b = v.to_le_bytes();
                match bytes {
                    1 => self.mem.store_logged::<1>(off, [b[0]]),
                    2 => self.mem.store_logged::<2>(off, [b[0], b[1]]),
                    3 => self.mem.store_logged::<3>(off, [b[0], b[1], b[2]]),
                    _ => self.mem.store_logged::<4>(off, b),
                };
                true
            }
            Region::Mmio { id, offset } if bytes != 3 => {
                bus.mmio_write(id, offset, bytes as u8, v);
                false
            }
            Region::Mmio { id, offset } => {
                for i in 0..3u32 {
                    bus.mmio_write(id, offset + u64::from(i), 1, (v >> (8 * i)) & 0xFF);
                }
                false
            }
            Region::Rom { .. } | Region::Unassigned => false,
        }
    }

    /// Reads for system structures (descriptor tables, TSS, IDT): linear, no segment
    /// check, and supervisor permissions whatever the CPL.
    pub fn read_sys<W: RamAccess>(&mut self, bus: &mut dyn Bus, lin: u32) -> Result<u32> {
        if !self.tlb_user {
            return self.read_lin::<W>(bus, lin);
        }
        let e = self.tlb_alt.entry(lin);
        if e.read == lin & PAGE_MASK && (lin & 0xFFF) <= 0x1000 - W::BYTES {
            if let Some(v) = W::load(&self.mem, u64::from(lin.wrapping_add(e.addend))) {
                return Ok(v);
            }
        }
        self.read_lin_slow(bus, lin, W::BYTES, false)
    }

    /// Writes to system structures (accessed and busy bits): supervisor, like `read_sys`.
    pub fn write_sys<W: RamAccess>(&mut self, bus: &mut dyn Bus, lin: u32, v: u32) -> Result<()> {
        if !self.tlb_user {
            return self.write_lin::<W>(bus, lin, v);
        }
        self.write_lin_slow(bus, lin, W::BYTES, v, false)
    }
}

impl Cpu {
    /// Pushes a value of width `W` (16 or 32 bits) on SS:ESP, wrapping as the stack size
    /// says. ESP changes only once the store succeeded.
    #[inline]
    pub fn push<W: RamAccess>(&mut self, bus: &mut dyn Bus, v: u32) -> Result<()> {
        let esp = self.s.gpr[crate::state::ESP];
        let new = self.stack_sub(esp, W::BYTES);
        self.write::<W>(bus, SS, new & self.stack_mask(), v)?;
        self.set_esp(new);
        Ok(())
    }

    /// Pops a value of width `W`; ESP changes only once the load succeeded.
    #[inline]
    pub fn pop<W: RamAccess>(&mut self, bus: &mut dyn Bus) -> Result<u32> {
        let esp = self.s.gpr[crate::state::ESP];
        let v = self.read::<W>(bus, SS, esp & self.stack_mask())?;
        self.set_esp(esp.wrapping_add(W::BYTES));
        Ok(v)
    }

    /// Reads the stack at ESP + `offset` without popping (multi-value pops check first).
    #[inline]
    pub fn stack_peek<W: RamAccess>(&mut self, bus: &mut dyn Bus, offset: u32) -> Result<u32> {
        let at = self.s.gpr[crate::state::ESP].wrapping_add(offset) & self.stack_mask();
        self.read::<W>(bus, SS, at)
    }

    /// 0xFFFF for a 16-bit stack segment, all ones for a 32-bit one.
    #[inline(always)]
    pub fn stack_mask(&self) -> u32 {
        if self.s.seg[SS].big() {
            0xFFFF_FFFF
        } else {
            0xFFFF
        }
    }

    #[inline(always)]
    fn stack_sub(&self, esp: u32, n: u32) -> u32 {
        let m = self.stack_mask();
        (esp & !m) | (esp.wrapping_sub(n) & m)
    }

    /// Writes ESP (or only SP for a 16-bit stack).
    #[inline(always)]
    pub fn set_esp(&mut self, v: u32) {
        let m = self.stack_mask();
        let esp = &mut self.s.gpr[crate::state::ESP];
        *esp = (*esp & !m) | (v & m);
    }
}
