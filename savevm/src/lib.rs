//! tern's machine-state stream: one format for snapshot files and for live migration.
//!
//! `savevm` owns the byte layout of a saved machine and nothing else. It knows no device,
//! no CPU and no guest memory: components describe their own state through the
//! [`VmState`] trait, guest RAM arrives through a [`PageSource`] and leaves through a
//! [`RamSink`]. The stream is written to any `io::Write` and read from any `io::Read`
//! as it goes, so the same code fills a snapshot file and a migration socket while the
//! guest keeps running (RAM in several passes, device state last).
//!
//! # Layout
//!
//! Every integer is little-endian and of fixed width; there is no `usize`, no pointer and
//! nothing else that depends on the host, so a stream written on x86-64 loads on aarch64
//! or a big-endian host. A `str` is a `u32` byte length followed by that many bytes of
//! UTF-8, with a limit per field.
//!
//! ```text
//!  offset
//!  0      ┌───────────────────────────────────────────────────────────────────────┐
//!         │ magic "\x7fTERNVM\n" (8) │ format version u32 │ flags u32              │ header
//!  16     ├───────────────────────────────────────────────────────────────────────┤
//!         │ len u32 │ machine str │ ram_size u64 │ cpu_model str                   │ config
//!         ├───────────────────────────────────────────────────────────────────────┤
//!         │ records, each opened by a tag byte:                                    │
//!         │ 0x01 SECTION  name str │ instance u32 │ version u32 │                  │
//!         │               body_len u32 │ fields_len u32 │ body                     │
//!         │ 0x02 RAM_PASS pass u32 (1, 2, 3, ... in order)                          │
//!         │ 0x03 RAM_ZERO first_page u64 │ count u32            (no data)          │
//!         │ 0x04 RAM_DATA first_page u64 │ count u32 (1..=256) │ count × 4096 bytes │
//!         │ 0xFF END                                                               │
//!         ├───────────────────────────────────────────────────────────────────────┤
//!         │ CRC-32 u32 of every byte above                                         │ footer
//!         ├───────────────────────────────────────────────────────────────────────┤
//!         │ json_len u32 │ JSON description │ CRC-32 u32 of the JSON               │ trailer
//!         └───────────────────────────────────────────────────────────────────────┘
//!
//!  section body:  ┌─────────────── fields_len ───────────────┬── subsections ──────────┐
//!                 │ fields of version `version`, in order     │ name str │ version u32 │
//!                 │                                           │ len u32 │ len bytes │…  │
//!                 └───────────────────────────────────────────┴──────────────────────────┘
//! ```
//!
//! * The **config** comes first so that a reader refuses a stream for another machine
//!   (machine type, RAM size, CPU model) before it has loaded anything
//!   ([`StreamReader::new`]).
//! * A **section** is one component's state: name, instance (COM1 and COM2 are two
//!   instances of `uart`), and the version its fields were written in. Each is
//!   length-prefixed, so a tool can list or skip sections it does not understand.
//! * A **subsection** carries optional state, written only when needed (a FIFO that holds
//!   data, a feature in use). A loader takes the subsections it knows; one it does not know
//!   is an error naming it, while a known one that is absent is fine. This lets a newer
//!   build add state without breaking streams that do not need it.
//! * **RAM** is a sequence of passes. A pass holds page runs: runs of zero pages are a
//!   count without data, the rest go as whole 4 KiB pages, up to [`MAX_DATA_RUN`] per
//!   record. A later pass overwrites pages of an earlier one: that is the iterative
//!   pre-copy of live migration, where pass 1 sends all of RAM and each later pass the
//!   pages dirtied meanwhile. A zero run in a later pass must clear pages that held data.
//! * The **footer** CRC-32 covers everything before it and is computed as the bytes go by,
//!   so neither side needs the whole stream in memory.
//! * The **trailer** is a JSON description of what the stream holds ([`Description`]) for
//!   tools that do not speak this format. It is derived entirely from the stream, so a
//!   reader recomputes it and checks that the two agree.
//!
//! # Loading safely
//!
//! The incoming stream is treated as hostile: every length is capped before anything is
//! allocated ([`MAX_SECTION_LEN`], [`MAX_NAME_LEN`], ...), every field is validated, and a
//! corrupt or truncated stream yields an [`Error`], never a panic. A component's `load`
//! decodes into a fresh value, validates it and only then commits, so a failed load leaves
//! it unchanged. At the stream level, [`StreamReader::read_all`] buffers the (small)
//! section bodies, sends RAM to the caller's sink, and returns only once the checksum and
//! trailer have been verified; then [`Verified::load_into`] checks that the sections and
//! the registered components match one to one before it hands any section to its loader.
//! A caller that must not be left half-loaded points the loaders at temporary components
//! and swaps them in once everything succeeded.

mod behind;
mod codec;
mod error;
mod format;
mod io;
mod ram;
mod reader;
mod state;
pub mod testing;
mod writer;

pub use behind::{sink_behind, write_behind, SinkBehind, WriteBehind};
pub use codec::{Decoder, Encoder};
pub use error::{Error, Result};
pub use format::{
    json_str, valid_name, Config, Description, RamPassInfo, SectionInfo, SubsectionInfo, FLAG_LIVE,
    FORMAT_VERSION, MAGIC, MAX_CONFIG_LEN, MAX_CONFIG_STR, MAX_DATA_RUN, MAX_NAME_LEN,
    MAX_SECTIONS, MAX_SECTION_LEN, MAX_TRAILER_LEN, PAGE_SIZE,
};
pub use ram::{is_zero_page, Announce, DiscardRam, PageSource, RamSink};
pub use reader::{inspect, verify, Record, SectionData, StreamReader, Verified};
pub use state::{Loaders, VmState};
pub use writer::StreamWriter;
