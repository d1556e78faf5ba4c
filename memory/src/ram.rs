//! Guest RAM: one anonymous private mapping. Pages cost nothing until the guest touches
//! them, so a 3 GiB guest that uses 40 MiB costs 40 MiB of host memory.

use memmap2::MmapMut;

use crate::MemoryError;

/// The largest RAM a 32-bit guest without PAE can use: everything below the PCI/ROM window
/// at 0xE000_0000, as on a PC with an i440FX chipset.
pub const MAX_RAM: u64 = 0xE000_0000;

pub struct Ram {
    map: MmapMut,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping lives as long as `Ram`; every access goes through the bounds-checked
// methods below. Concurrent access from the vCPU and a migration sender is a deliberate
// race on plain guest bytes (as with real DMA): the dirty log, not the bytes, decides what
// a reader must copy again, so a torn read is always followed by a resend.
unsafe impl Send for Ram {}
// SAFETY: see `Send`.
unsafe impl Sync for Ram {}

impl Ram {
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        if size == 0 || size % crate::PAGE_SIZE != 0 {
            return Err(MemoryError::BadRamSize(size));
        }
        if size > MAX_RAM {
            return Err(MemoryError::RamTooLarge { size, max: MAX_RAM });
        }
        let len =
            usize::try_from(size).map_err(|_| MemoryError::RamTooLarge { size, max: MAX_RAM })?;
        let mut map = MmapMut::map_anon(len).map_err(|e| MemoryError::Map { size, source: e })?;
        // No request for transparent huge pages (QEMU makes one): measured on a virtual
        // machine whose hypervisor takes back free memory, a huge page comes from the large
        // free blocks it has taken back, and first touches of fresh RAM got several times
        // slower than with 4 KiB pages (a snapshot loaded into a fresh machine: 1.0-1.2 s
        // against 0.3 s; a 1 GiB migration: 1.8 s against 0.7 s). They won only where the
        // memory had just been freed by the same kind of work.
        let ptr = map.as_mut_ptr();
        Ok(Self { map, ptr, len })
    }

    #[inline]
    pub fn len(&self) -> u64 {
        self.len as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn check(&self, offset: u64, n: usize) -> Option<usize> {
        let off = usize::try_from(offset).ok()?;
        if off.checked_add(n)? <= self.len {
            Some(off)
        } else {
            None
        }
    }

    /// Reads `N` bytes at `offset`; `None` if out of range.
    #[inline]
    pub fn load<const N: usize>(&self, offset: u64) -> Option<[u8; N]> {
        let off = self.check(offset, N)?;
        // SAFETY: `check` proved `off..off+N` lies inside the mapping.
        Some(unsafe { std::ptr::read_unaligned(self.ptr.add(off) as *const [u8; N]) })
    }

    /// Writes `N` bytes at `offset` without touching the dirty log: only for callers that
    /// already logged the page (the CPU's TLB fast path, or [`crate::GuestMemory`] itself).
    #[inline]
    pub(crate) fn store<const N: usize>(&self, offset: u64, v: [u8; N]) -> bool {
        match self.check(offset, N) {
            Some(off) => {
                // SAFETY: in range, see `check`; the mapping is writable.
                unsafe { std::ptr::write_unaligned(self.ptr.add(off) as *mut [u8; N], v) };
                true
            }
            None => false,
        }
    }

    pub fn read_slice(&self, offset: u64, out: &mut [u8]) -> bool {
        match self.check(offset, out.len()) {
            Some(off) => {
                // SAFETY: in range; `out` is a distinct host buffer, never guest RAM.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.ptr.add(off), out.as_mut_ptr(), out.len())
                };
                true
            }
            None => false,
        }
    }

    pub(crate) fn write_slice(&self, offset: u64, data: &[u8]) -> bool {
        match self.check(offset, data.len()) {
            Some(off) => {
                // SAFETY: in range; `data` is a host buffer distinct from the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len())
                };
                true
            }
            None => false,
        }
    }

    pub(crate) fn fill(&self, offset: u64, len: usize, byte: u8) -> bool {
        match self.check(offset, len) {
            Some(off) => {
                // SAFETY: in range.
                unsafe { std::ptr::write_bytes(self.ptr.add(off), byte, len) };
                true
            }
            None => false,
        }
    }

    /// Asks the host to back `len` bytes at `offset` with writable memory now, without
    /// changing what they hold: the page faults (and the host's zeroing of fresh memory)
    /// happen here, on the caller's thread, instead of in a later copy. Only a hint; a
    /// host without it does nothing.
    pub fn prefault(&self, offset: u64, len: u64) {
        let range = usize::try_from(len)
            .ok()
            .and_then(|n| self.check(offset, n).map(|off| (off, n)));
        #[cfg(target_os = "linux")]
        if let Some((off, n)) = range {
            let _ = self
                .map
                .advise_range(memmap2::Advice::PopulateWrite, off, n);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = range;
    }

    /// Whether a page reads as all zeroes (migration sends those as a flag).
    pub fn page_is_zero(&self, page: u64) -> bool {
        let mut buf = [0u8; crate::PAGE_SIZE as usize];
        self.read_slice(page * crate::PAGE_SIZE, &mut buf) && buf.iter().all(|&b| b == 0)
    }

    /// Drops every page's contents (back to zero pages), used on reset of a fresh machine.
    pub(crate) fn discard(&mut self) {
        let _ = &mut self.map;
        self.fill(0, self.len, 0);
    }
}
