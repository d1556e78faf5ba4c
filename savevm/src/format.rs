//! Constants of the layout, the configuration block, and the description of a stream
//! (what the JSON trailer and `inspect` report).

use std::fmt::Write as _;

use crate::codec::{Decoder, Encoder};
use crate::error::{Error, Result};

/// First eight bytes of every stream. The 0x7F byte marks it as binary; the final `\n`
/// exposes transfers that rewrite line ends.
pub const MAGIC: [u8; 8] = *b"\x7fTERNVM\n";
/// The layout described in the crate documentation.
pub const FORMAT_VERSION: u32 = 1;
/// Header flag: written while the guest ran, so later RAM passes repeat pages of earlier
/// ones. Informational; the reader handles repeated pages either way.
pub const FLAG_LIVE: u32 = 1 << 0;
pub(crate) const KNOWN_FLAGS: u32 = FLAG_LIVE;

/// Guest page size: RAM records carry whole pages of this size.
pub const PAGE_SIZE: usize = 4096;
/// Most pages in one RAM_DATA record (1 MiB): what a reader may have to hold at once.
pub const MAX_DATA_RUN: u32 = 256;
/// Longest section, subsection or config-field name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest machine type or CPU model string.
pub const MAX_CONFIG_STR: usize = 64;
/// Largest config block.
pub const MAX_CONFIG_LEN: u32 = 4096;
/// Largest section body. Device state is kilobytes; RAM never goes in sections.
pub const MAX_SECTION_LEN: u32 = 16 << 20;
/// Most sections in one stream.
pub const MAX_SECTIONS: usize = 16_384;
/// Largest JSON trailer.
pub const MAX_TRAILER_LEN: u32 = 16 << 20;

pub(crate) const TAG_SECTION: u8 = 0x01;
pub(crate) const TAG_RAM_PASS: u8 = 0x02;
pub(crate) const TAG_RAM_ZERO: u8 = 0x03;
pub(crate) const TAG_RAM_DATA: u8 = 0x04;
pub(crate) const TAG_END: u8 = 0xFF;

/// Whether `name` may name a section or subsection: 1 to [`MAX_NAME_LEN`] bytes of
/// `a-z 0-9 _ . -`. Names go into error messages, file listings and JSON unescaped.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// What the stream was saved from. A reader compares it with the machine it loads into
/// before touching anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Machine type, e.g. `pc`.
    pub machine: String,
    /// Guest RAM in bytes, a multiple of [`PAGE_SIZE`].
    pub ram_size: u64,
    /// CPU model, e.g. `pentium-pro`.
    pub cpu_model: String,
}

impl Config {
    pub(crate) fn check(&self) -> Result<()> {
        for (what, s) in [("machine", &self.machine), ("cpu_model", &self.cpu_model)] {
            if s.len() > MAX_CONFIG_STR {
                return Err(Error::Usage(format!(
                    "config {what} is {} bytes, the limit is {MAX_CONFIG_STR}",
                    s.len()
                )));
            }
        }
        if self.ram_size % PAGE_SIZE as u64 != 0 {
            return Err(Error::Usage(format!(
                "RAM size {:#x} is not a whole number of pages",
                self.ram_size
            )));
        }
        Ok(())
    }

    pub(crate) fn ram_pages(&self) -> u64 {
        self.ram_size / PAGE_SIZE as u64
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.str(&self.machine, MAX_CONFIG_STR);
        e.u64(self.ram_size);
        e.str(&self.cpu_model, MAX_CONFIG_STR);
        e.into_bytes()
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self> {
        let mut d = Decoder::new("config", body);
        let machine = d.str("machine", MAX_CONFIG_STR)?;
        let ram_size = d.u64("ram_size")?;
        let cpu_model = d.str("cpu_model", MAX_CONFIG_STR)?;
        d.finish()?;
        if ram_size % PAGE_SIZE as u64 != 0 {
            return Err(d.out_of_range("ram_size", ram_size));
        }
        Ok(Config {
            machine,
            ram_size,
            cpu_model,
        })
    }

    /// `Ok` if a stream saved with `self` may load into a machine configured as
    /// `expected`; otherwise the first field that differs.
    pub fn check_matches(&self, expected: &Config) -> Result<()> {
        if self.machine != expected.machine {
            return Err(Error::ConfigMismatch {
                field: "machine type",
                expected: format!("{:?}", expected.machine),
                found: format!("{:?}", self.machine),
            });
        }
        if self.ram_size != expected.ram_size {
            return Err(Error::ConfigMismatch {
                field: "RAM size",
                expected: expected.ram_size.to_string(),
                found: self.ram_size.to_string(),
            });
        }
        if self.cpu_model != expected.cpu_model {
            return Err(Error::ConfigMismatch {
                field: "CPU model",
                expected: format!("{:?}", expected.cpu_model),
                found: format!("{:?}", self.cpu_model),
            });
        }
        Ok(())
    }
}

/// One subsection as the stream holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubsectionInfo {
    pub name: String,
    pub version: u32,
    /// Body bytes.
    pub size: u32,
}

/// One section as the stream holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionInfo {
    pub name: String,
    pub instance: u32,
    pub version: u32,
    /// Body bytes, fields and subsections together.
    pub size: u32,
    pub subsections: Vec<SubsectionInfo>,
}

/// The pages one RAM pass carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RamPassInfo {
    /// 1 for the first pass.
    pub pass: u32,
    /// Pages sent as zero runs (no data in the stream).
    pub zero_pages: u64,
    /// Pages sent with their contents.
    pub data_pages: u64,
}

/// What a stream holds: the writer returns it, the trailer carries it as JSON, and
/// [`crate::inspect`] rebuilds it from the records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub format_version: u32,
    pub flags: u32,
    pub config: Config,
    pub sections: Vec<SectionInfo>,
    pub ram_passes: Vec<RamPassInfo>,
    /// Bytes covered by the checksum (header through END).
    pub stream_len: u64,
    /// CRC-32 of those bytes as computed (the writer's, or the reader's own).
    pub checksum: u32,
    /// Reading only: whether the footer agreed with `checksum`.
    pub checksum_ok: bool,
    /// Reading only: whether the trailer was intact and described this stream.
    pub trailer_ok: bool,
}

impl Description {
    pub(crate) fn new(flags: u32, config: Config) -> Self {
        Description {
            format_version: FORMAT_VERSION,
            flags,
            config,
            sections: Vec::new(),
            ram_passes: Vec::new(),
            stream_len: 0,
            checksum: 0,
            checksum_ok: false,
            trailer_ok: false,
        }
    }

    /// Pages sent over all passes (a page sent in two passes counts twice).
    pub fn ram_pages(&self) -> u64 {
        self.zero_pages() + self.data_pages()
    }

    pub fn zero_pages(&self) -> u64 {
        self.ram_passes.iter().map(|p| p.zero_pages).sum()
    }

    pub fn data_pages(&self) -> u64 {
        self.ram_passes.iter().map(|p| p.data_pages).sum()
    }

    pub fn section(&self, name: &str, instance: u32) -> Option<&SectionInfo> {
        self.sections
            .iter()
            .find(|s| s.name == name && s.instance == instance)
    }

    pub(crate) fn has_section(&self, name: &str, instance: u32) -> bool {
        self.section(name, instance).is_some()
    }

    /// The JSON trailer: one line, fields in a fixed order, so the same stream always
    /// renders the same bytes and a reader can compare instead of parse. Written by hand:
    /// the shape is fixed and flat, and `savevm` stays free of a serialization framework
    /// at the bottom of the crate graph.
    pub fn to_json(&self) -> String {
        let mut j = String::new();
        j.push_str("{\"format\":\"tern-vmstate\",\"format_version\":");
        let _ = write!(j, "{},\"flags\":{}", self.format_version, self.flags);
        j.push_str(",\"config\":{\"machine\":");
        json_str(&mut j, &self.config.machine);
        let _ = write!(j, ",\"ram_size\":{},\"cpu_model\":", self.config.ram_size);
        json_str(&mut j, &self.config.cpu_model);
        j.push_str("},\"sections\":[");
        for (i, s) in self.sections.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            j.push_str("{\"name\":");
            json_str(&mut j, &s.name);
            let _ = write!(
                j,
                ",\"instance\":{},\"version\":{},\"size\":{},\"subsections\":[",
                s.instance, s.version, s.size
            );
            for (k, sub) in s.subsections.iter().enumerate() {
                if k > 0 {
                    j.push(',');
                }
                j.push_str("{\"name\":");
                json_str(&mut j, &sub.name);
                let _ = write!(j, ",\"version\":{},\"size\":{}}}", sub.version, sub.size);
            }
            j.push_str("]}");
        }
        j.push_str("],\"ram\":{\"passes\":[");
        for (i, p) in self.ram_passes.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let _ = write!(
                j,
                "{{\"pass\":{},\"pages\":{},\"zero_pages\":{},\"data_pages\":{}}}",
                p.pass,
                p.zero_pages + p.data_pages,
                p.zero_pages,
                p.data_pages
            );
        }
        let _ = write!(
            j,
            "],\"pages\":{},\"zero_pages\":{},\"data_pages\":{}}}",
            self.ram_pages(),
            self.zero_pages(),
            self.data_pages()
        );
        let _ = write!(
            j,
            ",\"stream_len\":{},\"checksum\":{{\"algorithm\":\"crc32\",\"value\":\"{:08x}\"}}}}",
            self.stream_len, self.checksum
        );
        j
    }
}

/// A JSON string literal (RFC 8259): quote, backslash and control characters escaped,
/// everything else as UTF-8. Public for the other hand-written JSON of tern's stream
/// tools (migration statistics), so there is one escaping rule.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("cpu"));
        assert!(valid_name("debug-exit.0_a"));
        assert!(!valid_name(""));
        assert!(!valid_name("CPU"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a\"b"));
        assert!(valid_name(&"x".repeat(MAX_NAME_LEN)));
        assert!(!valid_name(&"x".repeat(MAX_NAME_LEN + 1)));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v.as_str(), Some("a\"b\\c\n\u{1}é"));
    }

    #[test]
    fn config_mismatch_names_the_field() {
        let a = Config {
            machine: "pc".into(),
            ram_size: 1 << 20,
            cpu_model: "pentium-pro".into(),
        };
        assert!(a.check_matches(&a).is_ok());
        let mut b = a.clone();
        b.ram_size = 2 << 20;
        match a.check_matches(&b) {
            Err(Error::ConfigMismatch { field, .. }) => assert_eq!(field, "RAM size"),
            other => panic!("{other:?}"),
        }
        let mut c = a.clone();
        c.cpu_model = "486".into();
        match a.check_matches(&c) {
            Err(Error::ConfigMismatch { field, .. }) => assert_eq!(field, "CPU model"),
            other => panic!("{other:?}"),
        }
    }
}
