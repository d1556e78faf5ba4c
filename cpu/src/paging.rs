//! 32-bit paging as a P6 does it: two-level 4 KiB pages, 4 MiB pages with CR4.PSE, global
//! pages with CR4.PGE, CR0.WP, accessed and dirty bits, #PF with CR2 and an error code.
//!
//! ```text
//!  linear   31        22 21        12 11           0
//!          | directory  |   table    |   offset    |
//!
//!  CR3[31:12] ─► PDE ─P─┬─ PS=1 and CR4.PSE ─► 4 MiB page: PDE[31:22] | linear[21:0]
//!                       │                      (PDE[21:13] must be 0: no PSE-36)
//!                       └─ else ─► PTE ─P─► 4 KiB page: PTE[31:12] | linear[11:0]
//!
//!  PDE/PTE bits: 0 P  1 R/W  2 U/S  3 PWT  4 PCD  5 A  6 D  7 PS (PDE) / PAT  8 G
//!  #PF error code: 0 P (protection, not absence)  1 W/R  2 U/S  3 RSVD
//! ```
//!
//! The walk happens only when the software TLB misses ([`crate::tlb`]): what it finds
//! (the physical page, whether stores may use it, global, 4 MiB) is folded into the entry's
//! tags, so the load and store fast paths stay one compare whether paging is on or not.
//! The walk reads the tables from guest physical memory (A20 applies to the table
//! addresses as to the result; a table in a hole or MMIO reads as the memory map says,
//! all-ones), and its A/D bit updates are guest writes like any other: they go through
//! the dirty log and the code-page check.
//!
//! The permission rule is the SDM's for 32-bit paging without SMEP/SMAP/NX: U/S and R/W
//! are ANDed over the two levels (a 4 MiB PDE alone decides); a user access (CPL 3) needs
//! U/S and, to write, R/W; a supervisor access (CPL 0-2, and the implicit accesses to the
//! GDT, LDT, IDT and TSS at any CPL) may always read and may write unless R/W is clear
//! and CR0.WP is set. Accessed bits are set on every level used and the dirty bit on the
//! final one, only when the access is allowed; a fault leaves the tables untouched.
//!
//! Privilege in the TLB. The CPU keeps two entry sets, one filled with user permissions
//! (used at CPL 3) and one with supervisor permissions (CPL 0-2). `Cpu::tlb` is always
//! the set of the current privilege, so the fast paths need no privilege check; a change
//! of CPL across the 3 / 0-2 line swaps the two sets (two pointers) instead of flushing,
//! and a system-call round trip keeps both working sets warm. Implicit supervisor
//! accesses made at CPL 3 use the other set directly. Every flush applies to both.
//! Measured on the bare CPU (release build), a CPL 3 -> 0 -> 3 round trip that touches
//! 4 / 16 / 64 pages on each side costs 37 / 128 / 503 ns with the swap and
//! 513 / 1,238 / 4,057 ns if both crossings flush the TLB instead (the flush itself and
//! the walks that refill the working set).
//!
//! Code. Blocks are cached by physical address, so a page-table change never invalidates
//! translated code, and a store through any alias of a code page finds the page in the
//! code-page map. The jump cache in front of the block map is keyed by linear address; it
//! is emptied on a CR3 load and on CR0.PG/WP/PE or CR4.PSE/PGE changes, and INVLPG drops
//! the entries of the page and of the page before it (whose last block may run into it),
//! or all of them when the page may belong to a 4 MiB code mapping. An instruction that
//! crosses a page boundary always starts a block of its own: its second page is translated
//! when that block is translated (a #PF there reports the second page's address), and the
//! block records the second page's physical address, which a lookup in the block map
//! checks against a fresh translation before reusing the block.

use memory::{GuestPhysAddr, Region, PAGE_SHIFT};

use crate::exception::{Exception, Result, PF};
use crate::ops::system::{CR4_PGE, CR4_PSE};
use crate::state::{CR0_PG, CR0_WP};
use crate::tlb::{Fill, Tlb, GLOBAL, LARGE, PAGE_MASK};
use crate::Cpu;

pub const PTE_P: u32 = 1 << 0;
pub const PTE_RW: u32 = 1 << 1;
pub const PTE_US: u32 = 1 << 2;
pub const PTE_A: u32 = 1 << 5;
pub const PTE_D: u32 = 1 << 6;
/// Page size (in a PDE, with CR4.PSE).
pub const PTE_PS: u32 = 1 << 7;
pub const PTE_G: u32 = 1 << 8;
/// Bits 21:13 of a 4 MiB PDE hold physical address bits 39:32 on CPUs with PSE-36 (and
/// bit 21 is reserved there too); this CPU has no PSE-36, so all of them are reserved.
pub const PDE_4M_RESERVED: u32 = 0x003F_E000;

/// #PF error code bits.
pub const PF_P: u32 = 1 << 0;
pub const PF_W: u32 = 1 << 1;
pub const PF_U: u32 = 1 << 2;
pub const PF_RSVD: u32 = 1 << 3;

/// The SDM's rule for an access through a translation whose combined U/S and R/W bits are
/// `us` and `rw`.
#[inline]
pub fn access_allowed(us: bool, rw: bool, write: bool, user: bool, wp: bool) -> bool {
    if user {
        us && (rw || !write)
    } else {
        rw || !write || !wp
    }
}

impl Cpu {
    /// Translates `lin` for a read (`write` false) or a write at user or supervisor
    /// privilege, through the TLB set of that privilege, walking and filling on a miss.
    /// Returns the physical address (A20 applied).
    pub(crate) fn translate_access(&mut self, lin: u32, write: bool, user: bool) -> Result<u32> {
        let page = lin & PAGE_MASK;
        let e = *self.tlb_for(user).entry(lin);
        let hit = if write { e.writes(page) } else { e.reads(page) };
        if hit {
            return Ok(lin.wrapping_add(e.addend));
        }
        let f = self.walk(lin, write, user)?;
        self.tlb_for(user).fill(lin, &f);
        Ok(f.phys | (lin & !PAGE_MASK))
    }

    /// Translates `lin` for an instruction fetch at the current privilege (on this CPU a
    /// fetch needs what a read needs), noting 4 MiB code mappings for INVLPG.
    pub(crate) fn translate_fetch(&mut self, lin: u32) -> Result<u32> {
        let phys = self.translate_access(lin, false, self.tlb_user)?;
        if self.tlb.entry(lin).flags & LARGE != 0 {
            self.jump_large |= 1 << ((lin >> 22) & 63);
        }
        Ok(phys)
    }

    /// Raises the #PF that an access to `lin` would raise, without any side effect
    /// otherwise: no accessed or dirty bit, nothing cached. An access that spans two
    /// pages checks both this way before it translates either for real, so a fault on
    /// the second page leaves the first page's entries as they were.
    pub(crate) fn check_access(&mut self, lin: u32, write: bool, user: bool) -> Result<()> {
        let page = lin & PAGE_MASK;
        let e = self.tlb_for(user).entry(lin);
        if (write && e.writes(page)) || (!write && e.reads(page)) {
            return Ok(());
        }
        self.walk_tables(lin, write, user, false).map(|_| ())
    }

    /// Checks that `bytes` at `lin` may be written at the current privilege (both pages if
    /// the range crosses one) without writing or setting any bit: for instructions that
    /// must not do anything else before a store that could fault.
    pub fn probe_write(&mut self, lin: u32, bytes: u32) -> Result<()> {
        let user = self.tlb_user;
        self.check_access(lin, true, user)?;
        let last = lin.wrapping_add(bytes - 1);
        if (last ^ lin) & PAGE_MASK != 0 {
            self.check_access(last, true, user)?;
        }
        Ok(())
    }

    /// The page walk. Raises #PF (with CR2 = `lin`) or sets the accessed and dirty bits
    /// the access needs and returns what the TLB should cache.
    pub(crate) fn walk(&mut self, lin: u32, write: bool, user: bool) -> Result<Fill> {
        self.walk_tables(lin, write, user, true)
    }

    /// The walk proper; `update` false only checks (no A/D bits written).
    fn walk_tables(&mut self, lin: u32, write: bool, user: bool, update: bool) -> Result<Fill> {
        let a20 = self.mem.a20_mask();
        if self.s.cr0 & CR0_PG == 0 {
            let phys = (u64::from(lin & PAGE_MASK) & a20) as u32;
            return Ok(Fill {
                phys,
                ram: self.is_ram(phys),
                writable: true,
                flags: 0,
            });
        }
        let err = if write { PF_W } else { 0 } | if user { PF_U } else { 0 };
        let wp = self.s.cr0 & CR0_WP != 0;
        let pge = self.s.cr4 & CR4_PGE != 0;
        let pde_addr = u64::from((self.s.cr3 & PAGE_MASK) | ((lin >> 20) & 0xFFC)) & a20;
        let pde = self.read_table(pde_addr);
        if pde & PTE_P == 0 {
            return Err(self.page_fault(lin, err));
        }
        let (phys, us, rw, dirty, flags);
        if pde & PTE_PS != 0 && self.s.cr4 & CR4_PSE != 0 {
            if pde & PDE_4M_RESERVED != 0 {
                return Err(self.page_fault(lin, err | PF_P | PF_RSVD));
            }
            us = pde & PTE_US != 0;
            rw = pde & PTE_RW != 0;
            if !access_allowed(us, rw, write, user, wp) {
                return Err(self.page_fault(lin, err | PF_P));
            }
            let new = pde | PTE_A | if write { PTE_D } else { 0 };
            if update && new != pde {
                self.write_table(pde_addr, new);
            }
            phys = (pde & 0xFFC0_0000) | (lin & 0x003F_F000);
            dirty = new & PTE_D != 0;
            flags = LARGE | if pge && pde & PTE_G != 0 { GLOBAL } else { 0 };
        } else {
            let pte_addr = u64::from((pde & PAGE_MASK) | ((lin >> 10) & 0xFFC)) & a20;
            let pte = self.read_table(pte_addr);
            if pte & PTE_P == 0 {
                return Err(self.page_fault(lin, err));
            }
            us = pde & pte & PTE_US != 0;
            rw = pde & pte & PTE_RW != 0;
            if !access_allowed(us, rw, write, user, wp) {
                return Err(self.page_fault(lin, err | PF_P));
            }
            if update && pde & PTE_A == 0 {
                self.write_table(pde_addr, pde | PTE_A);
            }
            // Re-read: the directory may map itself, and the store above may have been
            // to this very entry.
            let pte = if pde_addr == pte_addr {
                self.read_table(pte_addr)
            } else {
                pte
            };
            let new = pte | PTE_A | if write { PTE_D } else { 0 };
            if update && new != pte {
                self.write_table(pte_addr, new);
            }
            phys = pte & PAGE_MASK;
            dirty = new & PTE_D != 0;
            flags = if pge && pte & PTE_G != 0 { GLOBAL } else { 0 };
        }
        let phys = (u64::from(phys) & a20) as u32;
        Ok(Fill {
            phys,
            ram: self.is_ram(phys),
            writable: dirty && access_allowed(us, rw, true, user, wp),
            flags,
        })
    }

    /// Linear to physical as the monitor wants it: supervisor view, no faults, no
    /// accessed or dirty bits set, the TLB untouched.
    pub fn translate_debug(&self, lin: u32) -> Option<u64> {
        let a20 = self.mem.a20_mask();
        if self.s.cr0 & CR0_PG == 0 {
            return Some(u64::from(lin) & a20);
        }
        let pde =
            self.read_table(u64::from((self.s.cr3 & PAGE_MASK) | ((lin >> 20) & 0xFFC)) & a20);
        if pde & PTE_P == 0 {
            return None;
        }
        if pde & PTE_PS != 0 && self.s.cr4 & CR4_PSE != 0 {
            if pde & PDE_4M_RESERVED != 0 {
                return None;
            }
            return Some(u64::from((pde & 0xFFC0_0000) | (lin & 0x003F_FFFF)) & a20);
        }
        let pte = self.read_table(u64::from((pde & PAGE_MASK) | ((lin >> 10) & 0xFFC)) & a20);
        if pte & PTE_P == 0 {
            return None;
        }
        Some(u64::from((pte & PAGE_MASK) | (lin & !PAGE_MASK)) & a20)
    }

    /// Raises #PF: CR2 gets the linear address now, as the CPU does when it detects the
    /// fault, before delivery.
    fn page_fault(&mut self, lin: u32, error: u32) -> Exception {
        self.s.cr2 = lin;
        Exception::with_error(PF, error)
    }

    fn is_ram(&self, phys: u32) -> bool {
        matches!(
            self.mem.classify(GuestPhysAddr(u64::from(phys))),
            Region::Ram(_)
        )
    }

    /// A page-table entry (4-byte aligned, so never split across pages).
    fn read_table(&self, addr: u64) -> u32 {
        let mut b = [0u8; 4];
        self.mem.read_phys(GuestPhysAddr(addr), &mut b);
        u32::from_le_bytes(b)
    }

    /// An accessed/dirty update: a guest-visible write, so logged and checked for code
    /// like a store. Tables outside RAM keep their bits clear.
    fn write_table(&mut self, addr: u64, v: u32) {
        if let Region::Ram(off) = self.mem.classify(GuestPhysAddr(addr)) {
            let page = off >> PAGE_SHIFT;
            if self.mem.note_write(page) {
                self.invalidate_code_page(page);
            }
            self.mem.store_logged::<4>(off, v.to_le_bytes());
        }
    }

    /// The TLB set for `user` or supervisor permissions.
    #[inline]
    pub(crate) fn tlb_for(&mut self, user: bool) -> &mut Tlb {
        if user == self.tlb_user {
            &mut self.tlb
        } else {
            &mut self.tlb_alt
        }
    }

    /// Makes `tlb` the set of the current privilege (called when CPL may have changed).
    #[inline]
    pub(crate) fn sync_tlb_privilege(&mut self) {
        let user = self.s.cpl == 3;
        if user != self.tlb_user {
            std::mem::swap(&mut self.tlb, &mut self.tlb_alt);
            self.tlb_user = user;
        }
    }

    /// Drops every translation and everything keyed by linear address.
    pub(crate) fn flush_tlb(&mut self) {
        self.tlb.flush();
        self.tlb_alt.flush();
        self.cache.flush_jump_cache();
        self.jump_large = 0;
    }

    /// Sends every store to the slow path again (dirty-log harvest, new code pages).
    pub(crate) fn flush_tlb_writes(&mut self) {
        self.tlb.flush_writes();
        self.tlb_alt.flush_writes();
    }

    /// MOV CR3 (and a task switch's CR3 load): the page directory base plus PWT/PCD; every
    /// non-global translation goes, and the jump cache with it.
    pub(crate) fn set_cr3(&mut self, v: u32) {
        self.s.cr3 = v & 0xFFFF_F018;
        self.tlb.flush_nonglobal();
        self.tlb_alt.flush_nonglobal();
        self.cache.flush_jump_cache();
        self.jump_large = 0;
        self.stop_block = true;
    }

    /// INVLPG: drops the translation of `lin`'s page (all of a 4 MiB page) in both sets,
    /// global or not, and the jump-cache slots that may hold code reached through it.
    pub(crate) fn invalidate_page(&mut self, lin: u32) {
        self.tlb.flush_page(lin);
        self.tlb_alt.flush_page(lin);
        if self.jump_large & (1 << ((lin >> 22) & 63)) != 0 {
            self.cache.flush_jump_cache();
            self.jump_large = 0;
        } else {
            self.cache.flush_jump_page(lin);
        }
        self.stop_block = true;
    }
}

#[cfg(test)]
mod tests;
