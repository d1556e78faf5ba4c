//! Reading a stream: record by record ([`StreamReader::next_record`]), or whole and
//! verified ([`StreamReader::read_all`]); and the `inspect` / `verify` tools.

use std::io::Read;

use crate::codec::{parse_subsections, Decoder, Encoder, SubEntry};
use crate::error::{Error, Result};
use crate::format::*;
use crate::io::CrcReader;
use crate::ram::{DiscardRam, RamSink};
use crate::state::Loaders;

/// One section read from a stream: its header and its body, with the subsections located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionData {
    pub name: String,
    pub instance: u32,
    pub version: u32,
    body: Vec<u8>,
    fields_len: usize,
    subs: Vec<SubEntry>,
}

impl SectionData {
    /// A section built from an encoder, as if read from a stream (tests, tools).
    pub fn from_encoder(name: &str, instance: u32, version: u32, enc: &Encoder) -> Result<Self> {
        Self::parse(
            name.to_string(),
            instance,
            version,
            enc.as_bytes().to_vec(),
            enc.fields_len() as u32,
            0,
        )
    }

    /// Like [`SectionData::from_encoder`] from raw parts; the body framing is checked.
    pub fn from_parts(
        name: &str,
        instance: u32,
        version: u32,
        body: Vec<u8>,
        fields_len: u32,
    ) -> Result<Self> {
        Self::parse(name.to_string(), instance, version, body, fields_len, 0)
    }

    fn parse(
        name: String,
        instance: u32,
        version: u32,
        body: Vec<u8>,
        fields_len: u32,
        offset: u64,
    ) -> Result<Self> {
        let malformed = |reason: String| Error::Malformed { offset, reason };
        if !valid_name(&name) {
            return Err(malformed(format!("bad section name {name:?}")));
        }
        let fields_len = fields_len as usize;
        if fields_len > body.len() {
            return Err(malformed(format!(
                "section {name}: fields length {fields_len} beyond its {} bytes",
                body.len()
            )));
        }
        let subs = parse_subsections(&body[fields_len..], fields_len)
            .map_err(|r| malformed(format!("section {name}: {r}")))?;
        Ok(SectionData {
            name,
            instance,
            version,
            body,
            fields_len,
            subs,
        })
    }

    /// The body: fields, then subsections.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn fields_len(&self) -> usize {
        self.fields_len
    }

    /// A decoder over the body for the section's loader.
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder::with_subsections(&self.name, &self.body, self.fields_len, &self.subs)
    }

    pub fn info(&self) -> SectionInfo {
        SectionInfo {
            name: self.name.clone(),
            instance: self.instance,
            version: self.version,
            size: self.body.len() as u32,
            subsections: self
                .subs
                .iter()
                .map(|s| SubsectionInfo {
                    name: s.name.clone(),
                    version: s.version,
                    size: s.range.len() as u32,
                })
                .collect(),
        }
    }
}

/// One record of the stream. RAM contents have already gone to the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Section(SectionData),
    RamPass(u32),
    RamZero { first: u64, count: u32 },
    RamData { first: u64, count: u32 },
    End,
}

/// Reads one stream from `R`, which it consumes only as far as it needs (it never reads
/// past the trailer, so a socket can carry more after it). Wrap a file or socket in a
/// `BufReader`: reads are field-sized.
pub struct StreamReader<R: Read> {
    input: CrcReader<R>,
    desc: Description,
    ram_pages: u64,
    ended: bool,
    footer_read: bool,
    /// One data run, read whole (at most [`MAX_DATA_RUN`] pages, a bound the stream
    /// cannot raise) so the transport, the checksum and the sink each see it once.
    run: Vec<u8>,
}

impl<R: Read> StreamReader<R> {
    /// Reads the header and config and refuses the stream, before anything else is read,
    /// unless it was saved from a machine configured like `expected`.
    pub fn new(input: R, expected: &Config) -> Result<Self> {
        let r = Self::open_unchecked(input)?;
        r.desc.config.check_matches(expected)?;
        Ok(r)
    }

    /// Reads the header and config without comparing them to a machine (tools).
    pub fn open_unchecked(input: R) -> Result<Self> {
        let mut input = CrcReader::new(input);
        let mut magic = [0u8; 8];
        input.get(&mut magic, "magic")?;
        if magic != MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let version = input.u32("format version")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let flags = input.u32("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::UnknownFlags {
                flags,
                unknown: flags & !KNOWN_FLAGS,
            });
        }
        let len = input.u32("config length")?;
        if len > MAX_CONFIG_LEN {
            return Err(Error::TooLong {
                what: "config".into(),
                len: u64::from(len),
                max: u64::from(MAX_CONFIG_LEN),
            });
        }
        let body = input.vec(len, "config", true)?;
        let config = Config::decode(&body)?;
        Ok(StreamReader {
            input,
            ram_pages: config.ram_pages(),
            desc: Description::new(flags, config),
            ended: false,
            footer_read: false,
            run: Vec::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.desc.config
    }

    /// What has been read so far.
    pub fn description(&self) -> &Description {
        &self.desc
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    fn malformed(&self, offset: u64, reason: String) -> Error {
        Error::Malformed { offset, reason }
    }

    fn name(&mut self) -> Result<String> {
        let at = self.input.offset();
        let len = self.input.u32("section name")?;
        if len as usize > MAX_NAME_LEN {
            return Err(self.malformed(at, format!("section name of {len} bytes")));
        }
        let b = self.input.vec(len, "section name", true)?;
        match String::from_utf8(b) {
            Ok(s) if valid_name(&s) => Ok(s),
            Ok(s) => Err(self.malformed(at, format!("bad section name {s:?}"))),
            Err(_) => Err(self.malformed(at, "section name is not UTF-8".into())),
        }
    }

    /// Reads the next record. RAM pages go to `ram` as they are read; after [`Record::End`]
    /// call [`StreamReader::finish`].
    pub fn next_record(&mut self, ram: &mut (impl RamSink + ?Sized)) -> Result<Record> {
        if self.ended {
            return Ok(Record::End);
        }
        let at = self.input.offset();
        match self.input.u8("record tag")? {
            TAG_SECTION => self.section(at).map(Record::Section),
            TAG_RAM_PASS => {
                let pass = self.input.u32("RAM pass")?;
                let want = self.desc.ram_passes.len() as u32 + 1;
                if pass != want {
                    return Err(self.malformed(at, format!("RAM pass {pass}, expected {want}")));
                }
                self.desc.ram_passes.push(RamPassInfo {
                    pass,
                    ..RamPassInfo::default()
                });
                Ok(Record::RamPass(pass))
            }
            tag @ (TAG_RAM_ZERO | TAG_RAM_DATA) => {
                let first = self.input.u64("RAM first page")?;
                let count = self.input.u32("RAM page count")?;
                if self.desc.ram_passes.is_empty() {
                    return Err(self.malformed(at, "RAM record before the first pass".into()));
                }
                let data = tag == TAG_RAM_DATA;
                if count == 0 || (data && count > MAX_DATA_RUN) {
                    return Err(self.malformed(at, format!("RAM run of {count} pages")));
                }
                if first
                    .checked_add(u64::from(count))
                    .is_none_or(|end| end > self.ram_pages)
                {
                    return Err(Error::RamOutOfRange {
                        offset: at,
                        first,
                        count: u64::from(count),
                        pages: self.ram_pages,
                    });
                }
                if data {
                    ram.coming(first, u64::from(count));
                    let mut run = std::mem::take(&mut self.run);
                    // Only growth is zero-filled: a recycled buffer is already long.
                    run.resize(count as usize * PAGE_SIZE, 0);
                    self.input.get(&mut run, "RAM page")?;
                    self.run = ram.write_run(first, run).map_err(|source| Error::Sink {
                        page: first,
                        source,
                    })?;
                } else {
                    ram.zero_pages(first, u64::from(count))
                        .map_err(|source| Error::Sink {
                            page: first,
                            source,
                        })?;
                }
                if let Some(p) = self.desc.ram_passes.last_mut() {
                    if data {
                        p.data_pages += u64::from(count);
                    } else {
                        p.zero_pages += u64::from(count);
                    }
                }
                Ok(if data {
                    Record::RamData { first, count }
                } else {
                    Record::RamZero { first, count }
                })
            }
            TAG_END => {
                self.ended = true;
                self.desc.stream_len = self.input.offset();
                self.desc.checksum = self.input.checksum();
                Ok(Record::End)
            }
            tag => Err(self.malformed(at, format!("unknown record tag {tag:#04x}"))),
        }
    }

    fn section(&mut self, at: u64) -> Result<SectionData> {
        let name = self.name()?;
        let instance = self.input.u32("section instance")?;
        let version = self.input.u32("section version")?;
        let len = self.input.u32("section length")?;
        if len > MAX_SECTION_LEN {
            return Err(Error::TooLong {
                what: format!("section {name}"),
                len: u64::from(len),
                max: u64::from(MAX_SECTION_LEN),
            });
        }
        let fields_len = self.input.u32("section fields length")?;
        if self.desc.has_section(&name, instance) {
            return Err(Error::DuplicateSection { name, instance });
        }
        if self.desc.sections.len() >= MAX_SECTIONS {
            return Err(self.malformed(at, format!("more than {MAX_SECTIONS} sections")));
        }
        let body_at = self.input.offset();
        let body = self.input.vec(len, "section body", true)?;
        let s = SectionData::parse(name, instance, version, body, fields_len, body_at)?;
        self.desc.sections.push(s.info());
        Ok(s)
    }

    /// Reads footer and trailer, recording in the description whether they check out.
    fn read_footer(&mut self) -> Result<u32> {
        if !self.ended {
            return Err(Error::Usage("footer read before the end marker".into()));
        }
        if self.footer_read {
            return Err(Error::Usage("footer read twice".into()));
        }
        self.footer_read = true;
        let stored = self.input.u32_raw("footer checksum")?;
        self.desc.checksum_ok = stored == self.desc.checksum;
        let len = self.input.u32_raw("trailer length")?;
        if len > MAX_TRAILER_LEN {
            return Err(Error::TooLong {
                what: "JSON trailer".into(),
                len: u64::from(len),
                max: u64::from(MAX_TRAILER_LEN),
            });
        }
        let json = self.input.vec(len, "JSON trailer", false)?;
        let json_crc = self.input.u32_raw("trailer checksum")?;
        // The trailer was rendered with the writer's checksum, which is the stored one.
        let mut expect = self.desc.clone();
        expect.checksum = stored;
        self.desc.trailer_ok =
            crc32fast::hash(&json) == json_crc && json == expect.to_json().as_bytes();
        Ok(stored)
    }

    /// After [`Record::End`]: reads footer and trailer and fails unless the checksum matches
    /// and the trailer describes this stream. Reads nothing beyond the trailer.
    pub fn finish(&mut self) -> Result<Description> {
        let stored = self.read_footer()?;
        if !self.desc.checksum_ok {
            return Err(Error::ChecksumMismatch {
                stored,
                computed: self.desc.checksum,
            });
        }
        if !self.desc.trailer_ok {
            return Err(Error::TrailerMismatch {
                reason: "the JSON description is corrupt or does not match the stream",
            });
        }
        Ok(self.desc.clone())
    }

    /// Fails if any byte follows: for a file, which must hold exactly one stream.
    pub fn expect_eof(&mut self) -> Result<()> {
        self.input.expect_eof()
    }

    /// Reads every remaining record, sending RAM to `ram` and keeping the sections, then
    /// verifies footer and trailer. Nothing is loaded: the result is loaded with
    /// [`Verified::load_into`] once the whole stream is known to be intact.
    pub fn read_all(&mut self, ram: &mut (impl RamSink + ?Sized)) -> Result<Verified> {
        let mut sections = Vec::new();
        loop {
            match self.next_record(ram)? {
                Record::Section(s) => sections.push(s),
                Record::End => break,
                _ => {}
            }
        }
        let description = self.finish()?;
        Ok(Verified {
            description,
            sections,
        })
    }

    pub fn into_inner(self) -> R {
        self.input.into_inner()
    }
}

/// A stream read to its end with checksum and trailer verified: its sections, ready to
/// load.
#[derive(Clone, Debug)]
pub struct Verified {
    pub description: Description,
    pub sections: Vec<SectionData>,
}

impl Verified {
    /// Loads every section into the component registered for it. First checks, changing
    /// nothing, that sections and components match one to one ([`Error::UnknownSection`],
    /// [`Error::MissingSection`]) and that every version is loadable. Each component then
    /// validates its own state; if one refuses, those before it have been loaded, so a
    /// caller that needs all-or-nothing passes temporary components and commits them
    /// after this returns `Ok`.
    pub fn load_into(&self, loaders: &mut Loaders<'_>) -> Result<()> {
        loaders.load(&self.sections)
    }

    pub fn section(&self, name: &str, instance: u32) -> Option<&SectionData> {
        self.sections
            .iter()
            .find(|s| s.name == name && s.instance == instance)
    }
}

/// Walks a whole stream (a file) and describes it, without loading anything. Structural
/// damage is an error; a wrong checksum or trailer is reported in
/// [`Description::checksum_ok`] and [`Description::trailer_ok`].
pub fn inspect(input: impl Read) -> Result<Description> {
    let mut r = StreamReader::open_unchecked(input)?;
    while !matches!(r.next_record(&mut DiscardRam)?, Record::End) {}
    r.read_footer()?;
    r.expect_eof()?;
    Ok(r.desc)
}

/// Like [`inspect`], but any damage, including a wrong checksum or trailer, is an error.
pub fn verify(input: impl Read) -> Result<Description> {
    let mut r = StreamReader::open_unchecked(input)?;
    while !matches!(r.next_record(&mut DiscardRam)?, Record::End) {}
    r.finish()?;
    r.expect_eof()?;
    Ok(r.desc)
}
