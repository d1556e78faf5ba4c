//! Writing a stream: header and config on creation, then sections and RAM passes in any
//! order the caller needs, then the end marker, footer and trailer.

use std::io::Write;
use std::ops::Range;

use crate::codec::Encoder;
use crate::error::{Error, Result};
use crate::format::*;
use crate::io::CrcWriter;
use crate::ram::{is_zero_page, PageSource};
use crate::state::VmState;

/// Writes one stream to `W`. Sections are encoded in memory (they are small) and written
/// whole; RAM goes straight from the page source to `W` in runs of at most
/// [`MAX_DATA_RUN`] pages, so memory use does not grow with guest RAM.
pub struct StreamWriter<W: Write> {
    out: CrcWriter<W>,
    desc: Description,
    ram_pages: u64,
    /// The current data run, not yet written: its first `run_pages` pages (room for
    /// [`MAX_DATA_RUN`], allocated with the first data page).
    run: Vec<u8>,
    run_first: u64,
    run_pages: u64,
    /// Length of the current zero run, not yet written.
    zero_first: u64,
    zero_count: u64,
}

const MAX_RUN: u64 = MAX_DATA_RUN as u64;

impl<W: Write> StreamWriter<W> {
    /// Starts a stream: writes the header (with `flags`, e.g. [`FLAG_LIVE`]) and `config`.
    pub fn new(out: W, config: &Config, flags: u32) -> Result<Self> {
        config.check()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::Usage(format!("unknown flags {flags:#x}")));
        }
        let mut w = StreamWriter {
            out: CrcWriter::new(out),
            desc: Description::new(flags, config.clone()),
            ram_pages: config.ram_pages(),
            run: Vec::new(),
            run_first: 0,
            run_pages: 0,
            zero_first: 0,
            zero_count: 0,
        };
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        let body = config.encode();
        h.extend_from_slice(&(body.len() as u32).to_le_bytes());
        h.extend_from_slice(&body);
        w.out.put(&h)?;
        Ok(w)
    }

    /// Bytes written so far (for progress and rate limiting).
    pub fn bytes_written(&self) -> u64 {
        self.out.offset()
    }

    /// What has been written so far.
    pub fn description(&self) -> &Description {
        &self.desc
    }

    /// Writes `state` as section `T::NAME`, instance `instance`, at `T::VERSION`.
    pub fn put_section<T: VmState>(&mut self, instance: u32, state: &T) -> Result<()> {
        let mut enc = Encoder::new();
        state.save(&mut enc);
        self.put_encoded(T::NAME, instance, T::VERSION, &enc)
    }

    /// Writes a section body that was encoded elsewhere.
    pub fn put_encoded(
        &mut self,
        name: &str,
        instance: u32,
        version: u32,
        enc: &Encoder,
    ) -> Result<()> {
        self.flush_ram()?;
        if !valid_name(name) {
            return Err(Error::Usage(format!("bad section name {name:?}")));
        }
        if self.desc.has_section(name, instance) {
            return Err(Error::DuplicateSection {
                name: name.to_string(),
                instance,
            });
        }
        if self.desc.sections.len() >= MAX_SECTIONS {
            return Err(Error::Usage(format!("more than {MAX_SECTIONS} sections")));
        }
        let body = enc.as_bytes();
        if body.len() > MAX_SECTION_LEN as usize {
            return Err(Error::TooLong {
                what: format!("section {name}"),
                len: body.len() as u64,
                max: u64::from(MAX_SECTION_LEN),
            });
        }
        let mut h = Vec::with_capacity(24 + name.len());
        h.push(TAG_SECTION);
        h.extend_from_slice(&(name.len() as u32).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&instance.to_le_bytes());
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&(body.len() as u32).to_le_bytes());
        h.extend_from_slice(&(enc.fields_len() as u32).to_le_bytes());
        self.out.put(&h)?;
        self.out.put(body)?;
        self.desc.sections.push(SectionInfo {
            name: name.to_string(),
            instance,
            version,
            size: body.len() as u32,
            subsections: enc.subsections().to_vec(),
        });
        Ok(())
    }

    /// Opens the next RAM pass and returns its number (1 for the first).
    pub fn begin_ram_pass(&mut self) -> Result<u32> {
        self.flush_ram()?;
        let pass = self.desc.ram_passes.len() as u32 + 1;
        let mut h = [0u8; 5];
        h[0] = TAG_RAM_PASS;
        h[1..].copy_from_slice(&pass.to_le_bytes());
        self.out.put(&h)?;
        self.desc.ram_passes.push(RamPassInfo {
            pass,
            ..RamPassInfo::default()
        });
        Ok(pass)
    }

    /// Writes RAM pages `pages` from `src` into the current pass: zero pages as counts,
    /// the others with their contents. Consecutive calls with adjoining ranges extend the
    /// same runs.
    pub fn put_ram(
        &mut self,
        src: &mut (impl PageSource + ?Sized),
        pages: Range<u64>,
    ) -> Result<()> {
        if self.desc.ram_passes.is_empty() {
            return Err(Error::Usage("RAM written before begin_ram_pass".into()));
        }
        if pages.start > pages.end || pages.end > self.ram_pages {
            return Err(Error::Usage(format!(
                "pages {:#x}..{:#x} outside the {} pages of RAM",
                pages.start, pages.end, self.ram_pages
            )));
        }
        let mut p = pages.start;
        while p < pages.end {
            let known = src.known_zero(p, pages.end).min(pages.end - p);
            if known > 0 {
                self.add_zero(p, known)?;
                p += known;
                continue;
            }
            let run_pages = self.run_pages;
            if run_pages > 0 && (self.run_first + run_pages != p || run_pages == MAX_RUN) {
                self.flush_data()?;
            }
            if self.run.is_empty() {
                self.run = vec![0; MAX_RUN as usize * PAGE_SIZE];
            }
            // Straight into the run: a data page is copied once on its way out.
            let at = self.run_pages as usize * PAGE_SIZE;
            let page = self.run[at..]
                .first_chunk_mut::<PAGE_SIZE>()
                .ok_or_else(|| Error::Usage("RAM run buffer overflow".into()))?;
            src.read_page(p, page)
                .map_err(|source| Error::Source { page: p, source })?;
            if is_zero_page(page) {
                self.add_zero(p, 1)?;
            } else {
                if self.zero_count > 0 {
                    self.flush_zero()?;
                }
                if self.run_pages == 0 {
                    self.run_first = p;
                }
                self.run_pages += 1;
            }
            p += 1;
        }
        Ok(())
    }

    /// Adds `count` zero pages from `first` to the zero run being gathered.
    fn add_zero(&mut self, first: u64, count: u64) -> Result<()> {
        if self.run_pages > 0 {
            self.flush_data()?;
        }
        let (mut first, mut count) = (first, count);
        while count > 0 {
            if self.zero_count > 0
                && (self.zero_first + self.zero_count != first
                    || self.zero_count == u64::from(u32::MAX))
            {
                self.flush_zero()?;
            }
            if self.zero_count == 0 {
                self.zero_first = first;
            }
            let n = count.min(u64::from(u32::MAX) - self.zero_count);
            self.zero_count += n;
            first += n;
            count -= n;
        }
        Ok(())
    }

    /// Writes every range of `ranges` (e.g. the dirty pages of a pass).
    pub fn put_ram_ranges(
        &mut self,
        src: &mut (impl PageSource + ?Sized),
        ranges: impl IntoIterator<Item = Range<u64>>,
    ) -> Result<()> {
        for r in ranges {
            self.put_ram(src, r)?;
        }
        Ok(())
    }

    fn flush_zero(&mut self) -> Result<()> {
        if self.zero_count == 0 {
            return Ok(());
        }
        let mut h = [0u8; 13];
        h[0] = TAG_RAM_ZERO;
        h[1..9].copy_from_slice(&self.zero_first.to_le_bytes());
        h[9..13].copy_from_slice(&(self.zero_count as u32).to_le_bytes());
        self.out.put(&h)?;
        if let Some(p) = self.desc.ram_passes.last_mut() {
            p.zero_pages += self.zero_count;
        }
        self.zero_count = 0;
        Ok(())
    }

    fn flush_data(&mut self) -> Result<()> {
        if self.run_pages == 0 {
            return Ok(());
        }
        let count = self.run_pages as u32;
        let mut h = [0u8; 13];
        h[0] = TAG_RAM_DATA;
        h[1..9].copy_from_slice(&self.run_first.to_le_bytes());
        h[9..13].copy_from_slice(&count.to_le_bytes());
        self.out.put(&h)?;
        self.out
            .put(&self.run[..self.run_pages as usize * PAGE_SIZE])?;
        if let Some(p) = self.desc.ram_passes.last_mut() {
            p.data_pages += u64::from(count);
        }
        self.run_pages = 0;
        Ok(())
    }

    /// Writes out any RAM run still being gathered. Sections and passes do this
    /// themselves; a migration sender calls it before it waits, so the bytes leave now.
    pub fn flush_ram(&mut self) -> Result<()> {
        self.flush_zero()?;
        self.flush_data()
    }

    /// Writes out any RAM run still being gathered and flushes `W`: everything written so
    /// far has left, for a sender that paces or times what reached the transport.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_ram()?;
        self.out.flush()
    }

    /// Ends the stream: end marker, checksum, JSON trailer. Returns the writer and what
    /// the stream holds.
    pub fn finish(mut self) -> Result<(W, Description)> {
        self.flush_ram()?;
        self.out.put(&[TAG_END])?;
        self.desc.stream_len = self.out.offset();
        self.desc.checksum = self.out.checksum();
        self.desc.checksum_ok = true;
        self.desc.trailer_ok = true;
        self.out.put_raw(&self.desc.checksum.to_le_bytes())?;
        let json = self.desc.to_json();
        if json.len() > MAX_TRAILER_LEN as usize {
            return Err(Error::TooLong {
                what: "JSON trailer".into(),
                len: json.len() as u64,
                max: u64::from(MAX_TRAILER_LEN),
            });
        }
        self.out.put_raw(&(json.len() as u32).to_le_bytes())?;
        self.out.put_raw(json.as_bytes())?;
        self.out
            .put_raw(&crc32fast::hash(json.as_bytes()).to_le_bytes())?;
        self.out.flush()?;
        Ok((self.out.into_inner(), self.desc))
    }
}
