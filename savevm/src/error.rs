//! What can go wrong writing or reading a stream. Each message names where: the stream
//! offset for structural problems, the section (and subsection) and field for state.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader or writer failed.
    #[error("I/O error at stream offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// The stream ended in the middle of something.
    #[error("stream truncated at offset {offset} while reading {what}")]
    Truncated { offset: u64, what: &'static str },
    /// The first eight bytes are not [`crate::MAGIC`].
    #[error("not a tern machine-state stream (magic {found:02x?})")]
    BadMagic { found: [u8; 8] },
    /// A format version this build cannot read.
    #[error("stream format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    /// Header flags this build does not know.
    #[error("stream flags {flags:#x} have unknown bits {unknown:#x}")]
    UnknownFlags { flags: u32, unknown: u32 },
    /// The footer CRC-32 does not match the bytes before it.
    #[error("checksum mismatch: the stream says {stored:#010x}, its bytes give {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The trailing JSON is corrupt or does not describe the stream it follows.
    #[error("trailer: {reason}")]
    TrailerMismatch { reason: &'static str },
    /// The stream was saved from a machine unlike the one loading it.
    #[error("configuration mismatch: {field} is {found} in the stream, {expected} here")]
    ConfigMismatch {
        field: &'static str,
        expected: String,
        found: String,
    },
    /// A section nothing on this machine loads.
    #[error("unknown section {name:?} instance {instance}")]
    UnknownSection { name: String, instance: u32 },
    /// The same section and instance twice in one stream.
    #[error("section {name:?} instance {instance} appears twice")]
    DuplicateSection { name: String, instance: u32 },
    /// A component of this machine that the stream holds no state for.
    #[error("section {name:?} instance {instance} is missing from the stream")]
    MissingSection { name: String, instance: u32 },
    /// A section version outside what its loader accepts.
    #[error(
        "section {section}: version {version} is not supported (this build loads {min}..={max})"
    )]
    SectionVersion {
        section: String,
        version: u32,
        min: u32,
        max: u32,
    },
    /// Optional state the loader does not know: loading without it would lose state.
    #[error("section {section}: unknown subsection {subsection:?}")]
    UnknownSubsection { section: String, subsection: String },
    /// A known subsection in a version its loader does not accept.
    #[error("section {section}: subsection {subsection:?} version {version} is not supported (this build loads {min}..={max})")]
    SubsectionVersion {
        section: String,
        subsection: String,
        version: u32,
        min: u32,
        max: u32,
    },
    /// A section body ended before a field its loader reads.
    #[error("section {section}: truncated before field {field}")]
    FieldTruncated {
        section: String,
        field: &'static str,
    },
    /// A field whose value no valid state has.
    #[error("section {section}: field {field} value {value:#x} out of range")]
    OutOfRange {
        section: String,
        field: &'static str,
        value: u64,
    },
    /// A text field that is not UTF-8.
    #[error("{what}: not valid UTF-8")]
    BadString { what: String },
    /// A length field beyond its cap.
    #[error("{what}: length {len} exceeds the limit {max}")]
    TooLong { what: String, len: u64, max: u64 },
    /// A section body longer than its loader read.
    #[error("section {section}: {bytes} bytes left after the last field")]
    TrailingFields { section: String, bytes: u64 },
    /// Bytes after the end of a stream that must end there.
    #[error("trailing data at offset {offset} after the end of the stream")]
    TrailingGarbage { offset: u64 },
    /// Bytes that do not form a valid record.
    #[error("malformed stream at offset {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    /// A RAM record outside guest RAM.
    #[error("RAM record at offset {offset}: pages {first:#x}+{count} lie beyond the {pages} pages of RAM")]
    RamOutOfRange {
        offset: u64,
        first: u64,
        count: u64,
        pages: u64,
    },
    /// The caller's RAM sink refused a page.
    #[error("RAM sink failed at page {page:#x}: {source}")]
    Sink {
        page: u64,
        #[source]
        source: std::io::Error,
    },
    /// The caller's page source could not provide a page.
    #[error("page source failed at page {page:#x}: {source}")]
    Source {
        page: u64,
        #[source]
        source: std::io::Error,
    },
    /// A decoded state that its component rejects (the source says why).
    #[error("section {section}: invalid state: {source}")]
    Invalid {
        section: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The writer was used out of order or given something the format cannot hold.
    #[error("cannot write: {0}")]
    Usage(String),
}
