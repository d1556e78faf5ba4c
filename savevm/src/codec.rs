//! Field encoding inside a section body: the primitives a component's `save` and `load`
//! are written with.
//!
//! ```text
//!  u8 u16 u32 u64 i32 i64   little-endian, fixed width
//!  bool                     one byte, 0 or 1 (anything else is out of range)
//!  array::<N>               N raw bytes
//!  u16s/u32s/u64s::<N>      N integers, no length
//!  bytes, str               u32 length, then the bytes; the reader passes a maximum
//!  subsection               name str │ version u32 │ len u32 │ len bytes of fields
//! ```
//!
//! Fields carry no tags: a section's version says which fields are there, and a loader
//! reads them in the order its `save` wrote them. Subsections follow the last field, so
//! the section header records where the fields end (`fields_len`); that lets a loader find
//! subsections by name and lets a reader tell "loader read too little" from "stream too
//! long". Every read names its field, so an error says which one was truncated or out of
//! range.

use std::ops::{Range, RangeInclusive};

use crate::error::{Error, Result};
use crate::format::{valid_name, SubsectionInfo, MAX_NAME_LEN};

/// Builds one section body. Infallible: it writes to memory, and the stream writer checks
/// the size when it puts the section out.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    /// Where the fields ended: set when the first subsection is written.
    fields_len: Option<usize>,
    subsections: Vec<SubsectionInfo>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn put(&mut self, bytes: &[u8]) {
        debug_assert!(
            self.fields_len.is_none(),
            "a field written after a subsection would be read as part of it"
        );
        self.buf.extend_from_slice(bytes);
    }

    pub fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    pub fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.put(&[u8::from(v)]);
    }

    /// Fixed-size raw bytes.
    pub fn array<const N: usize>(&mut self, v: &[u8; N]) {
        self.put(v);
    }

    pub fn u16s(&mut self, v: &[u16]) {
        for &x in v {
            self.u16(x);
        }
    }

    pub fn u32s(&mut self, v: &[u32]) {
        for &x in v {
            self.u32(x);
        }
    }

    pub fn u64s(&mut self, v: &[u64]) {
        for &x in v {
            self.u64(x);
        }
    }

    /// Variable-length bytes. `max` is the limit the loader will apply; writing more is
    /// a bug in the component.
    pub fn bytes(&mut self, v: &[u8], max: usize) {
        debug_assert!(v.len() <= max, "{} bytes, limit {max}", v.len());
        self.u32(v.len() as u32);
        self.put(v);
    }

    pub fn str(&mut self, v: &str, max: usize) {
        self.bytes(v.as_bytes(), max);
    }

    /// Appends subsection `name` at `version` with the fields `f` writes. Call after the
    /// last field, and only when the state it holds is needed: a loader that does not
    /// know `name` refuses the whole section.
    pub fn subsection(&mut self, name: &'static str, version: u32, f: impl FnOnce(&mut Encoder)) {
        debug_assert!(valid_name(name), "bad subsection name {name:?}");
        debug_assert!(
            self.subsections.iter().all(|s| s.name != name),
            "subsection {name:?} written twice"
        );
        let mut sub = Encoder::new();
        f(&mut sub);
        debug_assert!(sub.subsections.is_empty(), "subsections do not nest");
        if self.fields_len.is_none() {
            self.fields_len = Some(self.buf.len());
        }
        self.buf
            .extend_from_slice(&(name.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(&version.to_le_bytes());
        self.buf
            .extend_from_slice(&(sub.buf.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&sub.buf);
        self.subsections.push(SubsectionInfo {
            name: name.to_string(),
            version,
            size: sub.buf.len() as u32,
        });
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of fields before the first subsection.
    pub fn fields_len(&self) -> usize {
        self.fields_len.unwrap_or(self.buf.len())
    }

    pub fn subsections(&self) -> &[SubsectionInfo] {
        &self.subsections
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A subsection located in a section body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SubEntry {
    pub name: String,
    pub version: u32,
    pub range: Range<usize>,
}

/// Splits the part of a section body after its fields into subsections, checking their
/// framing (not their contents).
pub(crate) fn parse_subsections(tail: &[u8], base: usize) -> Result<Vec<SubEntry>, String> {
    let mut out: Vec<SubEntry> = Vec::new();
    let mut pos = 0usize;
    let word = |pos: usize| -> Option<u32> {
        let b = tail.get(pos..pos.checked_add(4)?)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    };
    while pos < tail.len() {
        let name_len = word(pos).ok_or("subsection header truncated")? as usize;
        if name_len > MAX_NAME_LEN {
            return Err(format!("subsection name of {name_len} bytes"));
        }
        let name_end = pos + 4 + name_len;
        let name = tail
            .get(pos + 4..name_end)
            .ok_or("subsection name truncated")?;
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| valid_name(n))
            .ok_or_else(|| format!("bad subsection name {:?}", String::from_utf8_lossy(name)))?;
        let version = word(name_end).ok_or("subsection header truncated")?;
        let len = word(name_end + 4).ok_or("subsection header truncated")? as usize;
        let start = name_end + 8;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= tail.len())
            .ok_or_else(|| format!("subsection {name:?} runs past the section"))?;
        if out.iter().any(|s| s.name == name) {
            return Err(format!("subsection {name:?} appears twice"));
        }
        out.push(SubEntry {
            name: name.to_string(),
            version,
            range: base + start..base + end,
        });
        pos = end;
    }
    Ok(out)
}

struct SubRef<'a> {
    name: &'a str,
    version: u32,
    body: &'a [u8],
    taken: bool,
}

/// Reads one section body (or a subsection's) field by field.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    subs: Vec<SubRef<'a>>,
    section: &'a str,
    subsection: Option<&'a str>,
}

impl<'a> Decoder<'a> {
    /// Fields only, without subsections; `context` names them in errors.
    pub fn new(context: &'a str, fields: &'a [u8]) -> Self {
        Decoder {
            buf: fields,
            pos: 0,
            subs: Vec::new(),
            section: context,
            subsection: None,
        }
    }

    pub(crate) fn with_subsections(
        section: &'a str,
        body: &'a [u8],
        fields_len: usize,
        subs: &'a [SubEntry],
    ) -> Self {
        Decoder {
            buf: &body[..fields_len],
            pos: 0,
            subs: subs
                .iter()
                .map(|s| SubRef {
                    name: &s.name,
                    version: s.version,
                    body: &body[s.range.clone()],
                    taken: false,
                })
                .collect(),
            section,
            subsection: None,
        }
    }

    /// `section` or `section/subsection`, for messages.
    pub fn context(&self) -> String {
        match self.subsection {
            Some(sub) => format!("{}/{}", self.section, sub),
            None => self.section.to_string(),
        }
    }

    /// Bytes of fields not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::FieldTruncated {
                section: self.context(),
                field,
            });
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.fixed::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16> {
        self.fixed(field).map(u16::from_le_bytes)
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32> {
        self.fixed(field).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64> {
        self.fixed(field).map(u64::from_le_bytes)
    }

    pub fn i32(&mut self, field: &'static str) -> Result<i32> {
        self.fixed(field).map(i32::from_le_bytes)
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64> {
        self.fixed(field).map(i64::from_le_bytes)
    }

    pub fn bool(&mut self, field: &'static str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.out_of_range(field, u64::from(v))),
        }
    }

    /// A `u8` that must not exceed `max`.
    pub fn u8_max(&mut self, field: &'static str, max: u8) -> Result<u8> {
        let v = self.u8(field)?;
        if v > max {
            return Err(self.out_of_range(field, u64::from(v)));
        }
        Ok(v)
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        self.fixed(field)
    }

    pub fn u16s<const N: usize>(&mut self, field: &'static str) -> Result<[u16; N]> {
        let mut a = [0; N];
        for x in &mut a {
            *x = self.u16(field)?;
        }
        Ok(a)
    }

    pub fn u32s<const N: usize>(&mut self, field: &'static str) -> Result<[u32; N]> {
        let mut a = [0; N];
        for x in &mut a {
            *x = self.u32(field)?;
        }
        Ok(a)
    }

    pub fn u64s<const N: usize>(&mut self, field: &'static str) -> Result<[u64; N]> {
        let mut a = [0; N];
        for x in &mut a {
            *x = self.u64(field)?;
        }
        Ok(a)
    }

    /// Length-prefixed bytes, at most `max` of them. Nothing is allocated before the length
    /// is checked against both `max` and what the body holds.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>> {
        let len = self.u32(field)?;
        if len as usize > max {
            return Err(Error::TooLong {
                what: format!("section {}: field {field}", self.context()),
                len: u64::from(len),
                max: max as u64,
            });
        }
        Ok(self.take(len as usize, field)?.to_vec())
    }

    pub fn str(&mut self, field: &'static str, max: usize) -> Result<String> {
        let b = self.bytes(field, max)?;
        String::from_utf8(b).map_err(|_| Error::BadString {
            what: format!("section {}: field {field}", self.context()),
        })
    }

    /// Runs `f` on subsection `name` if the section has it, with its version, which must
    /// lie in `versions`. `f` must read every field of it. Absent: `Ok(None)`.
    pub fn subsection<T>(
        &mut self,
        name: &str,
        versions: RangeInclusive<u32>,
        f: impl FnOnce(&mut Decoder<'a>, u32) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(i) = self.subs.iter().position(|s| s.name == name) else {
            return Ok(None);
        };
        let (sub_name, version, body) =
            (self.subs[i].name, self.subs[i].version, self.subs[i].body);
        if !versions.contains(&version) {
            return Err(Error::SubsectionVersion {
                section: self.context(),
                subsection: sub_name.to_string(),
                version,
                min: *versions.start(),
                max: *versions.end(),
            });
        }
        let mut d = Decoder {
            buf: body,
            pos: 0,
            subs: Vec::new(),
            section: self.section,
            subsection: Some(sub_name),
        };
        let v = f(&mut d, version)?;
        d.finish()?;
        self.subs[i].taken = true;
        Ok(Some(v))
    }

    /// Checks that every field was read and every subsection taken. A loader calls this
    /// after decoding and before committing, so an unknown subsection or a body longer
    /// than its version leaves the component unchanged.
    pub fn finish(&mut self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(Error::TrailingFields {
                section: self.context(),
                bytes: self.remaining() as u64,
            });
        }
        if let Some(s) = self.subs.iter().find(|s| !s.taken) {
            return Err(Error::UnknownSubsection {
                section: self.context(),
                subsection: s.name.to_string(),
            });
        }
        Ok(())
    }

    /// The error for a field whose value no valid state has.
    pub fn out_of_range(&self, field: &'static str, value: u64) -> Error {
        Error::OutOfRange {
            section: self.context(),
            field,
            value,
        }
    }

    /// The error for a decoded state its component rejects as a whole.
    pub fn invalid(&self, err: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Invalid {
            section: self.context(),
            source: Box::new(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding is fixed byte for byte: these vectors hold on any host, of any
    /// endianness or word size.
    #[test]
    fn golden_primitives() {
        let mut e = Encoder::new();
        e.u8(0xAB);
        e.u16(0x1234);
        e.u32(0xDEAD_BEEF);
        e.u64(0x0102_0304_0506_0708);
        e.i32(-2);
        e.i64(-0x1_0000_0000);
        e.bool(true);
        e.bool(false);
        e.array(&[9, 8, 7]);
        e.u16s(&[1, 0x8000]);
        e.u32s(&[0x11223344]);
        e.u64s(&[u64::MAX]);
        e.bytes(&[0xCC, 0xDD], 8);
        e.str("hé", 8);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0xAB,
            0x34, 0x12,
            0xEF, 0xBE, 0xAD, 0xDE,
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
            0xFE, 0xFF, 0xFF, 0xFF,
            0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
            0x01,
            0x00,
            9, 8, 7,
            0x01, 0x00, 0x00, 0x80,
            0x44, 0x33, 0x22, 0x11,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0x02, 0x00, 0x00, 0x00, 0xCC, 0xDD,
            0x03, 0x00, 0x00, 0x00, b'h', 0xC3, 0xA9,
        ];
        assert_eq!(e.as_bytes(), want);

        let mut d = Decoder::new("t", want);
        assert_eq!(d.u8("a").unwrap(), 0xAB);
        assert_eq!(d.u16("b").unwrap(), 0x1234);
        assert_eq!(d.u32("c").unwrap(), 0xDEAD_BEEF);
        assert_eq!(d.u64("d").unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(d.i32("e").unwrap(), -2);
        assert_eq!(d.i64("f").unwrap(), -0x1_0000_0000);
        assert!(d.bool("g").unwrap());
        assert!(!d.bool("h").unwrap());
        assert_eq!(d.array::<3>("i").unwrap(), [9, 8, 7]);
        assert_eq!(d.u16s::<2>("j").unwrap(), [1, 0x8000]);
        assert_eq!(d.u32s::<1>("k").unwrap(), [0x11223344]);
        assert_eq!(d.u64s::<1>("l").unwrap(), [u64::MAX]);
        assert_eq!(d.bytes("m", 8).unwrap(), [0xCC, 0xDD]);
        assert_eq!(d.str("n", 8).unwrap(), "hé");
        d.finish().unwrap();
    }

    #[test]
    fn golden_subsection() {
        let mut e = Encoder::new();
        e.u16(7);
        e.subsection("fifo", 2, |s| s.u8(0x5A));
        assert_eq!(e.fields_len(), 2);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x07, 0x00,
            0x04, 0x00, 0x00, 0x00, b'f', b'i', b'f', b'o',
            0x02, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00,
            0x5A,
        ];
        assert_eq!(e.as_bytes(), want);
        assert_eq!(
            e.subsections(),
            [SubsectionInfo {
                name: "fifo".into(),
                version: 2,
                size: 1
            }]
        );
        let subs = parse_subsections(&want[2..], 2).unwrap();
        assert_eq!(subs[0].range, 18..19);
        let mut d = Decoder::with_subsections("dev", want, 2, &subs);
        assert_eq!(d.u16("x").unwrap(), 7);
        let got = d.subsection("fifo", 1..=2, |s, v| {
            assert_eq!(v, 2);
            s.u8("b")
        });
        assert_eq!(got.unwrap(), Some(0x5A));
        assert_eq!(
            d.subsection("absent", 1..=1, |s, _| s.u8("b")).unwrap(),
            None
        );
        d.finish().unwrap();
    }

    #[test]
    fn unknown_subsection_is_refused_by_name() {
        let mut e = Encoder::new();
        e.u8(1);
        e.subsection("extra", 1, |s| s.u8(2));
        let b = e.as_bytes();
        let subs = parse_subsections(&b[1..], 1).unwrap();
        let mut d = Decoder::with_subsections("dev", b, 1, &subs);
        d.u8("x").unwrap();
        match d.finish() {
            Err(Error::UnknownSubsection {
                section,
                subsection,
            }) => {
                assert_eq!(section, "dev");
                assert_eq!(subsection, "extra");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subsection_version_and_leftovers() {
        let mut e = Encoder::new();
        e.subsection("s", 3, |s| {
            s.u8(1);
            s.u8(2);
        });
        let b = e.as_bytes();
        let subs = parse_subsections(b, 0).unwrap();
        let mut d = Decoder::with_subsections("dev", b, 0, &subs);
        assert!(matches!(
            d.subsection("s", 1..=2, |s, _| s.u8("a")),
            Err(Error::SubsectionVersion { version: 3, .. })
        ));
        let mut d = Decoder::with_subsections("dev", b, 0, &subs);
        match d.subsection("s", 1..=3, |s, _| s.u8("a")) {
            Err(Error::TrailingFields { section, bytes }) => {
                assert_eq!(section, "dev/s");
                assert_eq!(bytes, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decoder_errors_name_the_field() {
        let mut d = Decoder::new("dev", &[2, 0x10, 0, 0, 0]);
        match d.bool("flag") {
            Err(Error::OutOfRange {
                section,
                field,
                value,
            }) => assert_eq!((section.as_str(), field, value), ("dev", "flag", 2)),
            other => panic!("{other:?}"),
        }
        // A length beyond the limit is refused before anything is allocated.
        assert!(matches!(
            d.bytes("buf", 8),
            Err(Error::TooLong { len: 16, .. })
        ));
        let mut d = Decoder::new("dev", &[1, 2, 3]);
        match d.u32("word") {
            Err(Error::FieldTruncated { field, .. }) => assert_eq!(field, "word"),
            other => panic!("{other:?}"),
        }
        // A length within the limit but beyond the body is truncation.
        let mut d = Decoder::new("dev", &[4, 0, 0, 0, 1]);
        assert!(matches!(
            d.bytes("buf", 8),
            Err(Error::FieldTruncated { .. })
        ));
        let mut d = Decoder::new("dev", &[2, 0, 0, 0, 0xFF, 0xFE]);
        assert!(matches!(d.str("s", 8), Err(Error::BadString { .. })));
        let mut d = Decoder::new("dev", &[9]);
        assert!(matches!(
            d.u8_max("level", 7),
            Err(Error::OutOfRange { value: 9, .. })
        ));
        let mut d = Decoder::new("dev", &[1, 2]);
        d.u8("a").unwrap();
        assert!(matches!(
            d.finish(),
            Err(Error::TrailingFields { bytes: 1, .. })
        ));
    }

    #[test]
    fn subsection_framing_is_checked() {
        assert!(parse_subsections(&[], 0).unwrap().is_empty());
        // Name length beyond the cap, name not valid, body past the end, duplicate.
        assert!(parse_subsections(&[0xFF, 0, 0, 0], 0).is_err());
        assert!(parse_subsections(&[1, 0, 0, 0, b'A', 1, 0, 0, 0, 0, 0, 0, 0], 0).is_err());
        assert!(parse_subsections(&[1, 0, 0, 0, b'a', 1, 0, 0, 0, 5, 0, 0, 0, 1], 0).is_err());
        let one = [1, 0, 0, 0, b'a', 1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_subsections(&one, 0).unwrap().len(), 1);
        let two = [one, one].concat();
        assert!(parse_subsections(&two, 0).is_err());
        for n in 1..one.len() {
            assert!(parse_subsections(&one[..n], 0).is_err(), "cut at {n}");
        }
    }
}
