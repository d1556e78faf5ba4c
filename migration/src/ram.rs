//! Guest RAM as the stream sees it: pages numbered by RAM offset (not by physical address,
//! so the pages a hole shadows below 1 MiB travel too).
//!
//! The source reads RAM while the guest writes it. A page read half-old half-new is fine:
//! its write set the dirty bit after the data landed, so the next harvest names it and a
//! later pass (at the latest the final one, with the guest stopped) sends it whole.

use std::io;

use memory::GuestMemory;
use savevm::{PageSource, RamSink, PAGE_SIZE};

fn out_of_range(page: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("page {page:#x} is outside guest RAM"),
    )
}

/// Reads pages straight from guest RAM, on any thread.
pub struct RamSource<'a>(pub &'a GuestMemory);

impl PageSource for RamSource<'_> {
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()> {
        let off = page.checked_mul(PAGE_SIZE as u64);
        match off {
            Some(off) if self.0.ram().read_slice(off, out) => Ok(()),
            _ => Err(out_of_range(page)),
        }
    }

    /// Pages never written are zero: pass 1 of a mostly idle guest reads none of them. A
    /// page written after this answer is in the dirty log and goes in a later pass.
    fn known_zero(&mut self, first: u64, end: u64) -> u64 {
        self.0.unwritten_run(first, end)
    }
}

/// Writes incoming pages into guest RAM (logged, and reported where they overwrite
/// translated code).
pub struct RamLoader<'a>(pub &'a GuestMemory);

impl RamSink for RamLoader<'_> {
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
        static ZERO: [u8; PAGE_SIZE] = [0; PAGE_SIZE];
        // A page never written, or one that reads as zero, is left alone: on a fresh
        // destination that is every page of pass 1, which then costs no host memory and,
        // never written, not even a read.
        for page in self.0.written_pages(first, first.saturating_add(count)) {
            if !self.0.ram().page_is_zero(page) {
                self.write_page(page, &ZERO)?;
            }
        }
        Ok(())
    }

    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        let off = page.checked_mul(PAGE_SIZE as u64);
        match off {
            Some(off) if self.0.write_ram(off, data) => Ok(()),
            _ => Err(out_of_range(page)),
        }
    }

    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        let off = first.checked_mul(PAGE_SIZE as u64);
        match off {
            Some(off) if self.0.write_ram(off, data) => Ok(()),
            _ => Err(out_of_range(first)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memory::GuestPhysAddr;

    #[test]
    fn pages_round_trip_by_ram_offset() {
        let a = GuestMemory::new(2 << 20).unwrap();
        let b = GuestMemory::new(2 << 20).unwrap();
        a.write_phys(GuestPhysAddr(0x5000), &[7; 10]);
        let mut page = [0u8; PAGE_SIZE];
        RamSource(&a).read_page(5, &mut page).unwrap();
        assert_eq!(&page[..11], &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]);
        // Page 0xA0 sits behind the VGA hole: only a write by offset reaches it.
        RamLoader(&b).write_page(0xA0, &page).unwrap();
        let mut back = [0u8; PAGE_SIZE];
        RamSource(&b).read_page(0xA0, &mut back).unwrap();
        assert_eq!(back, page);
        RamLoader(&b).zero_pages(0x9F, 3).unwrap();
        assert!(b.ram().page_is_zero(0xA0));
        assert!(RamSource(&a).read_page(512, &mut page).is_err());
        assert!(RamSource(&a).read_page(u64::MAX, &mut page).is_err());
        assert!(RamLoader(&b).write_page(512, &page).is_err());
        b.write_phys(GuestPhysAddr(0x1000), &[1]);
        assert!(RamLoader(&b).zero_pages(1, 1000).is_err());
        assert!(b.ram().page_is_zero(1));
    }
}
