//! The software TLB: linear page -> RAM offset, with permissions folded into the tags.
//!
//! ```text
//!  entry = { read_tag, write_tag, addend }      index = (linear >> 12) % 256
//!  fast load : entry.read_tag  == linear & !0xFFF  -> ram[linear + addend]
//!  fast store: entry.write_tag == linear & !0xFFF  -> ram[linear + addend]
//! ```
//! A tag is a page-aligned linear address or `INVALID` (bit 0 set, so it never matches).
//! Only RAM gets entries. A write tag is set only for a page whose write has been logged
//! (dirty log, code-page check) since the last harvest, and the entry is dropped when the
//! page gets translated code, so the store fast path never has to look at either.

use crate::state::CpuState;

pub const TLB_ENTRIES: usize = 256;
pub const INVALID: u32 = 1;
pub const PAGE_MASK: u32 = !0xFFF;

#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    pub read: u32,
    pub write: u32,
    /// RAM offset minus linear address (wrapping).
    pub addend: u32,
}

const EMPTY: TlbEntry = TlbEntry {
    read: INVALID,
    write: INVALID,
    addend: 0,
};

pub struct Tlb {
    pub entries: Box<[TlbEntry; TLB_ENTRIES]>,
}

impl Default for Tlb {
    fn default() -> Self {
        Self {
            entries: Box::new([EMPTY; TLB_ENTRIES]),
        }
    }
}

impl Tlb {
    #[inline(always)]
    pub fn index(linear: u32) -> usize {
        ((linear >> 12) as usize) % TLB_ENTRIES
    }

    #[inline(always)]
    pub fn entry(&self, linear: u32) -> &TlbEntry {
        &self.entries[Self::index(linear)]
    }

    pub fn flush(&mut self) {
        self.entries.fill(EMPTY);
    }

    /// Drops every write permission: the first store to each page takes the slow path again
    /// (after a dirty-log harvest, or when a page gets translated code).
    pub fn flush_writes(&mut self) {
        for e in self.entries.iter_mut() {
            e.write = INVALID;
        }
    }

    pub fn flush_page(&mut self, linear: u32) {
        let e = &mut self.entries[Self::index(linear)];
        if e.read == linear & PAGE_MASK || e.write == linear & PAGE_MASK {
            *e = EMPTY;
        }
    }

    pub fn fill(&mut self, linear: u32, ram_offset: u32, writable: bool) {
        let page = linear & PAGE_MASK;
        let e = &mut self.entries[Self::index(linear)];
        // A new read entry for another page must not leave a write tag of the old page with
        // the new addend.
        if e.read != page {
            e.write = INVALID;
        }
        e.read = page;
        e.addend = (ram_offset & PAGE_MASK).wrapping_sub(page);
        if writable {
            e.write = page;
        }
    }
}

/// How the CPU reaches memory for one access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Execute,
}

/// Linear to physical. Paging is not enabled by this CPU yet, so the linear address is the
/// physical one; the page walk slots in here with no change to callers.
#[inline]
pub fn translate(_s: &CpuState, linear: u32, _access: Access) -> crate::exception::Result<u64> {
    Ok(u64::from(linear))
}
