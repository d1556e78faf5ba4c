//! Guest physical memory for tern: RAM, the PC address map, the dirty log and the
//! code-page map.
//!
//! This crate owns every byte of guest memory and the one rule that savevm and migration
//! rest on: **no guest write is ever missed**. Every write to RAM passes one of two doors:
//!
//! ```text
//!  CPU store ──► soft TLB (cpu crate) ──fast path: page already logged──► Ram::store
//!                    │ first store to a page since the last harvest
//!                    ▼
//!               GuestMemory::note_write(page) ──► dirty log (every enabled client)
//!                                              └─► code-page map: "page holds translated code"
//!  device DMA ──► GuestMemory::write_phys ──► note_write + copy
//! ```
//!
//! The CPU keeps a write entry in its TLB only for a page it has logged since the last
//! harvest. A harvest is therefore two steps, in this order: every vCPU drops its TLB write
//! entries (the [`GuestMemory::dirty_epoch`] changes so each vCPU sees it at its next block
//! boundary), then the harvester takes the log. A page written in between is either still
//! set in the log or written through the slow path again; the data always lands before its
//! bit, and a harvester copies a page only after taking its bit.
//!
//! What this crate never knows about: CPUs, devices, or the stream format. MMIO holes carry
//! only a device id that the board (`hw`) dispatches on.

mod bitmap;
mod prefault;
mod ram;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub use bitmap::{AtomicBitmap, DirtyBitmap};
pub use prefault::{with_prefault, Prefault, PREFAULT_THREADS};
pub use ram::{Ram, MAX_RAM};

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// A guest physical address.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPhysAddr(pub u64);

impl GuestPhysAddr {
    pub fn page(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
}

/// Errors of the host side of guest memory. Guest accesses to holes are not errors: they
/// read as all-ones and writes vanish, as on the bus of a PC.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The RAM size must be a non-zero multiple of 4 KiB.
    #[error("guest RAM size {0} is not a non-zero multiple of 4 KiB")]
    BadRamSize(u64),
    /// Above what a 32-bit guest can address.
    #[error("guest RAM of {} MiB is more than a 32-bit guest can address (at most {} MiB)", size >> 20, max >> 20)]
    RamTooLarge { size: u64, max: u64 },
    /// The host refused the mapping.
    #[error("cannot map {} MiB of guest RAM: {source}", size >> 20)]
    Map { size: u64, source: std::io::Error },
    /// A region added to the map does not fit or overlaps another.
    #[error("memory region {name} at {start:#x} (+{len:#x}) overlaps another region or leaves the 4 GiB space")]
    BadRegion { name: String, start: u64, len: u64 },
}

/// The consumers of the dirty log. Each has its own bitmap, enabled and harvested on its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DirtyClient {
    Migration = 0,
    Snapshot = 1,
}

const DIRTY_CLIENTS: usize = 2;

/// What a guest physical address is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Region {
    /// RAM at this byte offset of [`Ram`].
    Ram(u64),
    /// Read-only memory: `rom` indexes [`GuestMemory::rom`], `offset` into its bytes.
    Rom { rom: usize, offset: u64 },
    /// A device's registers; `id` is the board's own number for it.
    Mmio { id: u32, offset: u64 },
    /// Nothing decodes this address.
    Unassigned,
}

#[derive(Clone, Debug)]
enum Kind {
    Rom { rom: usize, offset: u64 },
    Mmio { id: u32 },
    Unassigned,
}

#[derive(Clone, Debug)]
struct Hole {
    start: u64,
    len: u64,
    kind: Kind,
}

/// The legacy VGA window: no display adapter is emulated, so it decodes to nothing.
const VGA_HOLE: (u64, u64) = (0xA_0000, 0x2_0000);
/// The option-ROM and BIOS area of the first MiB: unassigned unless a ROM is mapped there.
const ROM_AREA: (u64, u64) = (0xC_0000, 0x4_0000);

/// All of guest physical memory: RAM, ROMs, MMIO holes and the logs that watch RAM writes.
pub struct GuestMemory {
    ram: Ram,
    holes: Vec<Hole>,
    roms: Vec<Arc<[u8]>>,
    a20: AtomicBool,
    dirty: [AtomicBitmap; DIRTY_CLIENTS],
    dirty_enabled: AtomicU32,
    dirty_epoch: AtomicU64,
    /// Pages written since the machine was created: a page outside it still holds the
    /// zeroes of a fresh mapping, so savers and senders skip it without reading it.
    written: AtomicBitmap,
    code: AtomicBitmap,
    smc: AtomicBitmap,
    smc_pending: AtomicBool,
}

impl GuestMemory {
    /// RAM of `ram_size` bytes with the PC's holes below 1 MiB; A20 enabled.
    pub fn new(ram_size: u64) -> Result<Self, MemoryError> {
        let ram = Ram::new(ram_size)?;
        let pages = ram_size / PAGE_SIZE;
        let mut m = Self {
            ram,
            holes: Vec::new(),
            roms: Vec::new(),
            a20: AtomicBool::new(true),
            dirty: [AtomicBitmap::new(pages), AtomicBitmap::new(pages)],
            dirty_enabled: AtomicU32::new(0),
            dirty_epoch: AtomicU64::new(0),
            written: AtomicBitmap::new(pages),
            code: AtomicBitmap::new(pages),
            smc: AtomicBitmap::new(pages),
            smc_pending: AtomicBool::new(false),
        };
        m.insert("vga", VGA_HOLE.0, VGA_HOLE.1, Kind::Unassigned)?;
        m.insert("rom-area", ROM_AREA.0, ROM_AREA.1, Kind::Unassigned)?;
        Ok(m)
    }

    pub fn ram(&self) -> &Ram {
        &self.ram
    }

    pub fn ram_size(&self) -> u64 {
        self.ram.len()
    }

    pub fn rom(&self, index: usize) -> &[u8] {
        &self.roms[index]
    }

    fn insert(&mut self, name: &str, start: u64, len: u64, kind: Kind) -> Result<(), MemoryError> {
        let end = start.checked_add(len).filter(|&e| e <= 1 << 32 && len > 0);
        let bad = || MemoryError::BadRegion {
            name: name.to_string(),
            start,
            len,
        };
        let end = end.ok_or_else(bad)?;
        // A region may replace part of an unassigned hole (a ROM in the ROM area) but
        // never overlap another ROM or device.
        let overlaps = |h: &Hole| h.start < end && start < h.start + h.len;
        if self
            .holes
            .iter()
            .any(|h| overlaps(h) && !matches!(h.kind, Kind::Unassigned))
        {
            return Err(bad());
        }
        let mut kept = Vec::with_capacity(self.holes.len() + 2);
        for h in std::mem::take(&mut self.holes) {
            let h_end = h.start + h.len;
            if !overlaps(&h) {
                kept.push(h);
                continue;
            }
            if h.start < start {
                kept.push(Hole {
                    start: h.start,
                    len: start - h.start,
                    kind: Kind::Unassigned,
                });
            }
            if h_end > end {
                kept.push(Hole {
                    start: end,
                    len: h_end - end,
                    kind: Kind::Unassigned,
                });
            }
        }
        kept.push(Hole { start, len, kind });
        kept.sort_by_key(|h| h.start);
        self.holes = kept;
        Ok(())
    }

    /// Maps `data` read-only at `start` (a BIOS at the top of the first MiB and below 4 GiB
    /// maps the same bytes twice).
    pub fn add_rom(
        &mut self,
        name: &str,
        start: u64,
        data: Arc<[u8]>,
        data_offset: u64,
    ) -> Result<(), MemoryError> {
        let len = data.len() as u64 - data_offset.min(data.len() as u64);
        let rom = match self.roms.iter().position(|r| Arc::ptr_eq(r, &data)) {
            Some(i) => i,
            None => {
                self.roms.push(data);
                self.roms.len() - 1
            }
        };
        self.insert(
            name,
            start,
            len,
            Kind::Rom {
                rom,
                offset: data_offset,
            },
        )
    }

    /// Decodes `[start, start+len)` to the device `id`.
    pub fn add_mmio(
        &mut self,
        name: &str,
        start: u64,
        len: u64,
        id: u32,
    ) -> Result<(), MemoryError> {
        self.insert(name, start, len, Kind::Mmio { id })
    }

    /// Gate A20: when off, address bit 20 reads as zero, as on the PC's 8086 wrap-around.
    pub fn set_a20(&self, enabled: bool) {
        self.a20.store(enabled, Ordering::Release);
    }

    pub fn a20(&self) -> bool {
        self.a20.load(Ordering::Acquire)
    }

    /// The mask the CPU applies to physical addresses.
    #[inline]
    pub fn a20_mask(&self) -> u64 {
        if self.a20() {
            u64::MAX
        } else {
            !(1 << 20)
        }
    }

    /// What `addr` decodes to (A20 applied).
    pub fn classify(&self, addr: GuestPhysAddr) -> Region {
        let a = addr.0 & self.a20_mask();
        // Holes are few (two to a handful) and sorted; lookups happen on TLB fills only.
        for h in &self.holes {
            if a >= h.start && a < h.start + h.len {
                let off = a - h.start;
                return match h.kind {
                    Kind::Rom { rom, offset } => Region::Rom {
                        rom,
                        offset: offset + off,
                    },
                    Kind::Mmio { id } => Region::Mmio { id, offset: off },
                    Kind::Unassigned => Region::Unassigned,
                };
            }
        }
        if a < self.ram.len() {
            Region::Ram(a)
        } else {
            Region::Unassigned
        }
    }

    /// Logs a write to RAM page `page` in every enabled dirty client and reports whether the
    /// page holds translated code (whose blocks the writer must then invalidate).
    #[inline]
    pub fn note_write(&self, page: u64) -> bool {
        self.written.set(page);
        let enabled = self.dirty_enabled.load(Ordering::Acquire);
        for (i, map) in self.dirty.iter().enumerate() {
            if enabled & (1 << i) != 0 {
                map.set(page);
            }
        }
        self.code.get(page)
    }

    /// The CPU's store once its TLB says the page is logged. See the crate docs.
    #[inline]
    pub fn store_logged<const N: usize>(&self, ram_offset: u64, v: [u8; N]) -> bool {
        self.ram.store(ram_offset, v)
    }

    /// A write from a device (DMA) or a loader: logs, checks for code, then copies. Writes to
    /// ROM and holes are dropped, as the bus would.
    pub fn write_phys(&self, addr: GuestPhysAddr, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let a = addr.0 + done as u64;
            let n = ((PAGE_SIZE - (a % PAGE_SIZE)) as usize).min(data.len() - done);
            if let Region::Ram(off) = self.classify(GuestPhysAddr(a)) {
                let page = off >> PAGE_SHIFT;
                self.ram.write_slice(off, &data[done..done + n]);
                // Data first, then the log: a harvester that takes the bit sees the data.
                if self.note_write(page) {
                    self.smc.set(page);
                    self.smc_pending.store(true, Ordering::Release);
                }
            }
            done += n;
        }
    }

    /// Writes RAM by offset rather than by guest physical address, logged and checked for
    /// code like [`GuestMemory::write_phys`]: for restoring RAM page by page (an incoming
    /// migration), where pages shadowed by a hole must be restored too. `false` if the
    /// range is not inside RAM (nothing is written then).
    pub fn write_ram(&self, offset: u64, data: &[u8]) -> bool {
        let in_ram = offset
            .checked_add(data.len() as u64)
            .is_some_and(|end| end <= self.ram.len());
        if !in_ram {
            return false;
        }
        let mut done = 0usize;
        while done < data.len() {
            let off = offset + done as u64;
            let n = ((PAGE_SIZE - (off % PAGE_SIZE)) as usize).min(data.len() - done);
            self.ram.write_slice(off, &data[done..done + n]);
            if self.note_write(off >> PAGE_SHIFT) {
                self.smc.set(off >> PAGE_SHIFT);
                self.smc_pending.store(true, Ordering::Release);
            }
            done += n;
        }
        true
    }

    /// Reads guest physical memory as a device or debugger sees it (holes read all-ones).
    pub fn read_phys(&self, addr: GuestPhysAddr, out: &mut [u8]) {
        let mut done = 0usize;
        while done < out.len() {
            let a = addr.0 + done as u64;
            let n = ((PAGE_SIZE - (a % PAGE_SIZE)) as usize).min(out.len() - done);
            let dst = &mut out[done..done + n];
            match self.classify(GuestPhysAddr(a)) {
                Region::Ram(off) => {
                    self.ram.read_slice(off, dst);
                }
                Region::Rom { rom, offset } => {
                    let r = &self.roms[rom];
                    for (i, b) in dst.iter_mut().enumerate() {
                        *b = r.get(offset as usize + i).copied().unwrap_or(0xFF);
                    }
                }
                Region::Mmio { .. } | Region::Unassigned => dst.fill(0xFF),
            }
            done += n;
        }
    }

    /// Zeroes all RAM (a fresh machine or a load that replaces everything); the pages are
    /// reported dirty and any code on them invalid.
    pub fn clear_ram(&mut self) {
        self.ram.discard();
        for m in &self.dirty {
            m.set_all();
        }
        self.smc.set_all();
        self.smc_pending.store(true, Ordering::Release);
    }

    /// How many pages from `first` (up to `end`) have never been written since the
    /// machine was created, and so are known to be zero without reading them. Every write
    /// passes [`GuestMemory::note_write`] before its data lands, so a page outside the map
    /// is zero; a page inside it may be zero too (written with zeroes), which a caller
    /// finds by reading it.
    pub fn unwritten_run(&self, first: u64, end: u64) -> u64 {
        self.written.next_set(first, end).max(first) - first
    }

    /// The pages of `first..end` that may hold data (written since the machine was
    /// created), ascending; the others are zero (see [`GuestMemory::unwritten_run`]).
    pub fn written_pages(&self, first: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
        let mut page = first;
        std::iter::from_fn(move || {
            page = self.written.next_set(page, end).max(page);
            (page < end).then(|| {
                page += 1;
                page - 1
            })
        })
    }

    // ---- dirty log ------------------------------------------------------------------

    /// Starts logging for `client` with an empty log. vCPUs re-arm their TLBs (the epoch
    /// moves) so that no write after this call escapes the log.
    pub fn dirty_enable(&self, client: DirtyClient) {
        self.dirty[client as usize].clear_all();
        self.dirty_enabled
            .fetch_or(1 << client as u32, Ordering::AcqRel);
        self.dirty_epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn dirty_disable(&self, client: DirtyClient) {
        self.dirty_enabled
            .fetch_and(!(1 << client as u32), Ordering::AcqRel);
        self.dirty[client as usize].clear_all();
    }

    pub fn dirty_enabled(&self, client: DirtyClient) -> bool {
        self.dirty_enabled.load(Ordering::Acquire) & (1 << client as u32) != 0
    }

    /// Takes `client`'s log. Every vCPU must have dropped its TLB write entries since the
    /// previous take (see the crate docs); the board's harvest does both in order.
    pub fn dirty_take(&self, client: DirtyClient) -> DirtyBitmap {
        let t = self.dirty[client as usize].take();
        self.dirty_epoch.fetch_add(1, Ordering::AcqRel);
        t
    }

    /// Moves whenever TLB write entries must be dropped.
    #[inline]
    pub fn dirty_epoch(&self) -> u64 {
        self.dirty_epoch.load(Ordering::Acquire)
    }

    /// Asks every vCPU to drop its TLB write entries (the first half of a harvest).
    pub fn bump_dirty_epoch(&self) {
        self.dirty_epoch.fetch_add(1, Ordering::AcqRel);
    }

    // ---- code-page map --------------------------------------------------------------

    /// Marks a RAM page as holding translated code: the next write to it must go through
    /// [`GuestMemory::note_write`], which reports it.
    pub fn code_mark(&self, page: u64) {
        self.code.set(page);
    }

    pub fn code_clear(&self, page: u64) {
        self.code.clear(page);
    }

    pub fn is_code(&self, page: u64) -> bool {
        self.code.get(page)
    }

    /// Pages with code written by DMA since the last call; the CPU invalidates their blocks.
    #[inline]
    pub fn smc_pending(&self) -> bool {
        self.smc_pending.load(Ordering::Acquire)
    }

    pub fn take_smc(&self) -> DirtyBitmap {
        self.smc_pending.store(false, Ordering::Release);
        self.smc.take()
    }
}

#[cfg(test)]
mod tests;
