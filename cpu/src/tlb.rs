//! The software TLB: linear page -> physical page, with permissions folded into the tags.
//!
//! ```text
//!  entry = { read_tag, write_tag, addend, flags }
//!  index = (page ^ page >> 8) % 256                      page = linear >> 12
//!  fast load : entry.read_tag  == linear & !0xFFF  -> ram[linear + addend]
//!  fast store: entry.write_tag == linear & !0xFFF  -> ram[linear + addend]
//!
//!  tag = page-aligned linear address | low bits
//!        bit 0 INVALID  no translation for this kind of access: walk the page tables
//!        bit 1 SLOW     the translation is known (physical = linear + addend) but the
//!                       access must take the slow path: not RAM, or a store whose page
//!                       has not been logged since the last dirty-log harvest
//! ```
//! A tag with any low bit set never equals a page-aligned address, so the fast paths are
//! one compare each and never look at permissions, the dirty log or the code-page map. The
//! rules that make that sound are applied when an entry is filled:
//!
//! * a read tag exists only if the page walk allowed reading at the privilege the entry set
//!   belongs to (the CPU keeps one set for CPL 3 and one for CPL 0-2, see `paging`);
//! * a write tag is `SLOW` at best unless writing is allowed at that privilege, the page's
//!   dirty bit is set in the page tables, and the store has been logged (dirty log,
//!   code-page check); only the store slow path makes a write tag fast;
//! * a page that gets translated code, or a harvest of the dirty log, turns every fast
//!   write tag back into a `SLOW` one ([`Tlb::flush_writes`]).
//!
//! Without paging the linear address is the physical one and every entry is filled as if
//! the page tables allowed everything.
//!
//! The index folds bits 20-27 of the address into bits 12-19: with the page number alone,
//! two buffers a multiple of 1 MiB apart (a copy's source and destination, say) share
//! every entry and evict each other on each access, which made such a `rep movsd` ten
//! times slower. Consecutive pages still take consecutive entries.

pub const TLB_ENTRIES: usize = 256;
pub const INVALID: u32 = 1;
/// The translation is valid, but not for the fast path.
pub const SLOW: u32 = 2;
pub const PAGE_MASK: u32 = !0xFFF;

/// `TlbEntry::flags`: the entry survives a CR3 load (a global page with CR4.PGE).
pub const GLOBAL: u32 = 1;
/// `TlbEntry::flags`: the entry is a 4 KiB piece of a 4 MiB page; INVLPG anywhere in that
/// page drops it.
pub const LARGE: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub read: u32,
    pub write: u32,
    /// Physical address (the RAM offset, for RAM) minus linear address (wrapping).
    pub addend: u32,
    pub flags: u32,
}

const EMPTY: TlbEntry = TlbEntry {
    read: INVALID,
    write: INVALID,
    addend: 0,
    flags: 0,
};

impl TlbEntry {
    /// Whether the entry translates `page` for reading (fast or slow).
    #[inline(always)]
    pub fn reads(&self, page: u32) -> bool {
        self.read & !SLOW == page
    }

    /// Whether the entry translates `page` for writing (fast or slow).
    #[inline(always)]
    pub fn writes(&self, page: u32) -> bool {
        self.write & !SLOW == page
    }
}

/// What a page walk found, to be cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// Physical address of the page (A20 applied).
    pub phys: u32,
    /// Whether the physical page is RAM (only RAM takes the fast paths).
    pub ram: bool,
    /// Writing is allowed at this privilege and the dirty bit is set: a store may use the
    /// translation once it has been logged.
    pub writable: bool,
    /// [`GLOBAL`] | [`LARGE`].
    pub flags: u32,
}

pub struct Tlb {
    pub entries: Box<[TlbEntry; TLB_ENTRIES]>,
    /// Some entry may have [`LARGE`] set (INVLPG then scans for the whole 4 MiB page).
    large: bool,
}

impl Default for Tlb {
    fn default() -> Self {
        Self {
            entries: Box::new([EMPTY; TLB_ENTRIES]),
            large: false,
        }
    }
}

impl Tlb {
    #[inline(always)]
    pub fn index(linear: u32) -> usize {
        let page = (linear >> 12) as usize;
        (page ^ (page >> 8)) % TLB_ENTRIES
    }

    #[inline(always)]
    pub fn entry(&self, linear: u32) -> &TlbEntry {
        &self.entries[Self::index(linear)]
    }

    #[inline(always)]
    pub fn entry_mut(&mut self, linear: u32) -> &mut TlbEntry {
        &mut self.entries[Self::index(linear)]
    }

    pub fn flush(&mut self) {
        self.entries.fill(EMPTY);
        self.large = false;
    }

    /// A CR3 load: everything but global pages goes.
    pub fn flush_nonglobal(&mut self) {
        for e in self.entries.iter_mut() {
            if e.flags & GLOBAL == 0 {
                *e = EMPTY;
            }
        }
    }

    /// Makes every store take the slow path once more (after a dirty-log harvest, or when a
    /// page gets translated code); the translations themselves stay.
    pub fn flush_writes(&mut self) {
        // An INVALID tag stays invalid with SLOW added.
        for e in self.entries.iter_mut() {
            e.write |= SLOW;
        }
    }

    /// INVLPG: drops the entry for `linear`'s page and, if a 4 MiB page may be cached,
    /// every piece of the 4 MiB page around it. Returns whether a 4 MiB piece was dropped.
    pub fn flush_page(&mut self, linear: u32) -> bool {
        let page = linear & PAGE_MASK;
        let e = self.entry_mut(linear);
        if e.reads(page) || e.writes(page) {
            *e = EMPTY;
        }
        let mut dropped_large = false;
        if self.large {
            let region = linear >> 22;
            for e in self.entries.iter_mut() {
                let tag = if e.read & INVALID == 0 {
                    e.read
                } else {
                    e.write
                };
                if e.flags & LARGE != 0 && tag & INVALID == 0 && tag >> 22 == region {
                    *e = EMPTY;
                    dropped_large = true;
                }
            }
        }
        dropped_large
    }

    /// Caches a translation of `linear`'s page. The write tag is never fast here: only the
    /// store slow path, having logged the store, makes it so ([`Tlb::arm_write`]).
    pub fn fill(&mut self, linear: u32, f: &Fill) {
        let page = linear & PAGE_MASK;
        let slow = if f.ram { 0 } else { SLOW };
        self.large |= f.flags & LARGE != 0;
        *self.entry_mut(linear) = TlbEntry {
            read: page | slow,
            write: if f.writable { page | SLOW } else { INVALID },
            addend: (f.phys & PAGE_MASK).wrapping_sub(page),
            flags: f.flags,
        };
    }

    /// Lets stores to `linear`'s page take the fast path: the caller found the entry
    /// writable and RAM, and logged the store.
    #[inline]
    pub fn arm_write(&mut self, linear: u32) {
        let page = linear & PAGE_MASK;
        let e = self.entry_mut(linear);
        if e.writes(page) && e.read == page {
            e.write = page;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_a_mebibyte_apart_do_not_share_entries() {
        for (a, b) in [(0x0010_0000, 0x0020_0000), (0x0040_0000, 0x0050_0000)] {
            for off in (0..0x10_0000).step_by(0x1000) {
                assert_ne!(Tlb::index(a + off), Tlb::index(b + off), "{:#x}", a + off);
            }
        }
        // 256 consecutive pages still fill 256 different entries.
        let mut seen = [false; TLB_ENTRIES];
        for p in 0x300..0x400u32 {
            seen[Tlb::index(p << 12)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    fn fill(phys: u32, ram: bool, writable: bool, flags: u32) -> Fill {
        Fill {
            phys,
            ram,
            writable,
            flags,
        }
    }

    #[test]
    fn fill_never_makes_a_fast_write_tag() {
        let mut t = Tlb::default();
        t.fill(0x1234_5678, &fill(0x9000, true, true, 0));
        let e = *t.entry(0x1234_5000);
        assert_eq!(e.read, 0x1234_5000);
        assert_eq!(e.write, 0x1234_5000 | SLOW);
        assert_eq!(0x1234_5678u32.wrapping_add(e.addend), 0x9678);
        t.arm_write(0x1234_5FFF);
        assert_eq!(t.entry(0x1234_5000).write, 0x1234_5000);
        t.flush_writes();
        assert_eq!(t.entry(0x1234_5000).write, 0x1234_5000 | SLOW);
    }

    #[test]
    fn read_only_and_non_ram_entries() {
        let mut t = Tlb::default();
        t.fill(0x5000, &fill(0x7000, true, false, 0));
        assert_eq!(t.entry(0x5000).write, INVALID);
        t.arm_write(0x5000);
        assert_eq!(
            t.entry(0x5000).write,
            INVALID,
            "no write without permission"
        );
        t.fill(0x6000, &fill(0xFEC0_0000, false, true, 0));
        let e = *t.entry(0x6000);
        assert!(
            e.reads(0x6000) && e.read != 0x6000,
            "MMIO is slow-path only"
        );
        t.arm_write(0x6000);
        assert_eq!(
            t.entry(0x6000).write,
            0x6000 | SLOW,
            "MMIO never takes fast stores"
        );
    }

    #[test]
    fn global_entries_survive_flush_nonglobal_only() {
        let mut t = Tlb::default();
        t.fill(0x1000, &fill(0x1000, true, true, GLOBAL));
        t.fill(0x2000, &fill(0x2000, true, true, 0));
        t.flush_nonglobal();
        assert!(t.entry(0x1000).reads(0x1000));
        assert!(!t.entry(0x2000).reads(0x2000));
        t.flush_page(0x1ABC);
        assert!(!t.entry(0x1000).reads(0x1000));
    }

    #[test]
    fn invlpg_drops_every_piece_of_a_large_page() {
        let mut t = Tlb::default();
        t.fill(0x0040_1000, &fill(0x0080_1000, true, true, LARGE));
        t.fill(0x0040_5000, &fill(0x0080_5000, true, true, LARGE));
        t.fill(0x0080_3000, &fill(0x0080_3000, true, true, LARGE));
        t.fill(0x0040_2000, &fill(0x0000_2000, true, true, 0));
        assert!(t.flush_page(0x007F_FFFF));
        assert!(!t.entry(0x0040_1000).reads(0x0040_1000));
        assert!(!t.entry(0x0040_5000).reads(0x0040_5000));
        assert!(
            t.entry(0x0080_3000).reads(0x0080_3000),
            "another 4 MiB page"
        );
        assert!(
            t.entry(0x0040_2000).reads(0x0040_2000),
            "a 4 KiB page stays"
        );
        assert!(!t.flush_page(0x0000_0000));
    }
}
