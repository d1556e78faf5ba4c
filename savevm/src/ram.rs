//! Where RAM pages come from when writing and go to when reading. `savevm` never sees
//! guest memory itself: the board (or a migration sender) adapts its RAM to these traits,
//! and tests use a flat byte slice.

use std::io;

use crate::format::PAGE_SIZE;

/// Supplies guest RAM pages to [`crate::StreamWriter::put_ram`]. Pages are numbered by RAM
/// offset (offset / [`PAGE_SIZE`]).
pub trait PageSource {
    /// Copies page `page` into `out`.
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()>;

    /// How many pages from `first` (below `end`) the source knows to be zero without
    /// reading them (never written, say). The writer sends those as one zero run.
    fn known_zero(&mut self, first: u64, end: u64) -> u64 {
        let _ = (first, end);
        0
    }
}

/// Receives guest RAM pages from a [`crate::StreamReader`], in stream order. Later pages
/// overwrite earlier ones. Pages arrive before the footer checksum is verified: a sink
/// that writes into live RAM must be used only where a failed stream discards that RAM
/// (an incoming migration, a machine about to be reset), or must stage the pages.
pub trait RamSink {
    /// `count` pages from `first` on are all zero; they may hold data from an earlier pass,
    /// which must be cleared.
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()>;
    /// Page `page` holds `data`.
    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()>;

    /// Pages from `first` on hold `data` (a whole number of pages, one run of the
    /// stream). A sink that can copy a run at once overrides this.
    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        for (page, d) in (first..).zip(data.chunks_exact(PAGE_SIZE)) {
            let d: &[u8; PAGE_SIZE] = d.try_into().map_err(|_| io::ErrorKind::InvalidInput)?;
            self.write_page(page, d)?;
        }
        Ok(())
    }

    /// A data run for pages `first..first + count` follows: its header has been read, its
    /// bytes not yet. A sink that can prepare the pages meanwhile (take their page faults
    /// on another thread, say) does so; nothing is promised about their contents.
    fn coming(&mut self, first: u64, count: u64) {
        let _ = (first, count);
    }

    /// [`RamSink::write_pages`] for a sink that keeps the run's buffer (to hand it to
    /// another thread, say); it returns a buffer for the reader's next run, of any length.
    fn write_run(&mut self, first: u64, run: Vec<u8>) -> io::Result<Vec<u8>> {
        self.write_pages(first, &run)?;
        Ok(run)
    }
}

/// A sink that tells `announce` of every data run before it comes (see
/// [`RamSink::coming`]) and passes everything to `sink`.
pub struct Announce<'a, S: RamSink + ?Sized, F: FnMut(u64, u64)> {
    pub sink: &'a mut S,
    pub announce: F,
}

impl<S: RamSink + ?Sized, F: FnMut(u64, u64)> RamSink for Announce<'_, S, F> {
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
        self.sink.zero_pages(first, count)
    }
    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        self.sink.write_page(page, data)
    }
    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        self.sink.write_pages(first, data)
    }
    fn coming(&mut self, first: u64, count: u64) {
        (self.announce)(first, count);
        self.sink.coming(first, count);
    }
    fn write_run(&mut self, first: u64, run: Vec<u8>) -> io::Result<Vec<u8>> {
        self.sink.write_run(first, run)
    }
}

/// A sink that drops every page: for `inspect` and `verify`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardRam;

impl RamSink for DiscardRam {
    fn zero_pages(&mut self, _first: u64, _count: u64) -> io::Result<()> {
        Ok(())
    }
    fn write_page(&mut self, _page: u64, _data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        Ok(())
    }
}

fn page_range(len: usize, first: u64, count: u64) -> io::Result<std::ops::Range<usize>> {
    let start = first.checked_mul(PAGE_SIZE as u64);
    let end = first
        .checked_add(count)
        .and_then(|e| e.checked_mul(PAGE_SIZE as u64));
    match (start, end) {
        (Some(s), Some(e)) if e <= len as u64 => Ok(s as usize..e as usize),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pages {first:#x}+{count} outside a RAM image of {len} bytes"),
        )),
    }
}

/// A flat RAM image: page `n` is bytes `n * 4096 ..`.
impl PageSource for [u8] {
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()> {
        let r = page_range(self.len(), page, 1)?;
        out.copy_from_slice(&self[r]);
        Ok(())
    }
}

impl RamSink for [u8] {
    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        let r = page_range(self.len(), first, (data.len() / PAGE_SIZE) as u64)?;
        self[r].copy_from_slice(&data[..data.len() / PAGE_SIZE * PAGE_SIZE]);
        Ok(())
    }
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
        let r = page_range(self.len(), first, count)?;
        self[r].fill(0);
        Ok(())
    }
    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        let r = page_range(self.len(), page, 1)?;
        self[r].copy_from_slice(data);
        Ok(())
    }
}

/// Whether a page is all zero, a word at a time.
pub fn is_zero_page(p: &[u8; PAGE_SIZE]) -> bool {
    p.chunks_exact(16)
        .all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_image_source_and_sink() {
        let mut ram = vec![0u8; 3 * PAGE_SIZE];
        let mut p = [7u8; PAGE_SIZE];
        ram.write_page(1, &p).unwrap();
        assert_eq!(ram[PAGE_SIZE], 7);
        assert_eq!(ram[PAGE_SIZE - 1], 0);
        ram.as_mut_slice().read_page(1, &mut p).unwrap();
        assert!(p.iter().all(|&b| b == 7));
        assert!(ram.write_page(3, &p).is_err());
        assert!(ram.zero_pages(2, 2).is_err());
        assert!(ram.zero_pages(u64::MAX, 2).is_err());
        ram.zero_pages(0, 3).unwrap();
        assert!(ram.iter().all(|&b| b == 0));
    }

    #[test]
    fn zero_detection() {
        let mut p = [0u8; PAGE_SIZE];
        assert!(is_zero_page(&p));
        p[PAGE_SIZE - 1] = 1;
        assert!(!is_zero_page(&p));
        p[PAGE_SIZE - 1] = 0;
        p[0] = 0x80;
        assert!(!is_zero_page(&p));
    }
}
