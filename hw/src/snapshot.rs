//! The whole machine as one state: saved to a stream, loaded from one, and digested.
//!
//! A snapshot (`savevm`) is one `savevm` stream:
//!
//! ```text
//!  ┌──────────────────────────────────────────────────────────────────────────────────┐
//!  │ header │ config: machine "tern-pc", RAM size, CPU model "pentium-pro"            │
//!  ├──────────────────────────────────────────────────────────────────────────────────┤
//!  │ cpu │ clock │ pic │ pit │ rtc │ i8042 │ uart │ debug-exit │ [debugcon] │ board     │ device sections
//!  ├──────────────────────────────────────────────────────────────────────────────────┤
//!  │ RAM pass 1: every page by RAM offset, runs of zero pages as counts               │
//!  ├──────────────────────────────────────────────────────────────────────────────────┤
//!  │ END │ CRC-32 │ JSON description                                                  │
//!  └──────────────────────────────────────────────────────────────────────────────────┘
//! ```
//! The device sections come first, so a tool that lists snapshots finds the guest's
//! virtual time ([`snapshot_clock`]) at the head of the file without reading RAM. Pages
//! go by RAM offset, not physical address, so RAM that a hole shadows (under the VGA
//! window and the BIOS area) is saved too and the A20 gate does not fold pages together.
//!
//! # All or nothing
//!
//! A load that fails leaves the machine exactly as it was, down to its digest:
//!
//! ```text
//!  read    the stream once: RAM straight into guest memory, the old contents of each
//!          page it changes kept in an undo log, sections kept aside; then the end
//!          marker, footer, trailer, nothing after them, every page present
//!                                                               ──► undo RAM, refuse
//!  stage   copies of the CPU state and devices; every section loaded into them,
//!          each validated by its device                         ──► undo RAM, refuse
//!  commit  staged devices swapped in, CPU caches and translated code dropped
//! ```
//! One pass, because a snapshot is mostly RAM and reading a gigabyte twice costs twice;
//! a damaged file is the rare case, and the undo log makes it safe. The log holds the
//! old contents of the pages the load changes; a page that was zero costs nothing, and
//! one never written since the machine was created is not even read. So a load into a
//! fresh machine (`--loadvm`) needs almost no extra memory, and a load over a busy guest
//! up to the RAM it used.
//!
//! Live migration streams RAM itself, in passes, while the guest runs; only the devices
//! come from here, at switch-over ([`PcMachine::device_states`]) and on arrival
//! ([`PcMachine::load_devices`]).
//!
//! # Digest
//!
//! [`PcMachine::digest`] is SHA-256 over a canonical encoding of everything the guest can
//! observe, so two runs are the same run exactly when their digests match:
//!
//! ```text
//!  "tern machine digest v1\0"
//!  config    machine str │ ram_size u64 │ cpu_model str             (str = u32 len, bytes)
//!  RAM       per page, in RAM order: 0x00 (all zero) | 0x01 and its 4096 bytes
//!  sections  count u32, then per section in the order above:
//!            name str │ instance u32 │ version u32 │ fields_len u32 │ body len u32 │ body
//! ```
//! Every integer is little-endian and the sections are the stream's own encodings, so
//! the digest does not depend on the host. Data on its way to the host (serial bytes the
//! frontend has not taken, debug console output) is not guest state and is left out.

use std::io::{self, BufReader, Read, Write};

use cpu::{CpuModel, CpuState};
use memory::GuestMemory;
use savevm::{
    Announce, Config, Description, DiscardRam, Encoder, Loaders, PageSource, RamSink, Record,
    SectionData, StreamReader, StreamWriter, Verified, VmState, PAGE_SIZE,
};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::clock::{ClockMode, ClockState, VirtualClock};
use crate::debugport::{DebugCon, DebugExit};
use crate::i8042::I8042;
use crate::machine::PcMachine;
use crate::pic::Pic;
use crate::pit::Pit;
use crate::rtc::Rtc;
use crate::uart::Uart;
use crate::vmstate::board::BoardState;

/// The machine type in a stream's config: a stream for another type is refused.
pub const MACHINE_TYPE: &str = "tern-pc";

/// What goes first into the digest: names the encoding, so a change of it changes every
/// digest instead of colliding with the old ones.
const DIGEST_DOMAIN: &[u8] = b"tern machine digest v1\0";

static ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// Why a machine's state could not be saved or loaded. A failed load changed nothing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    /// The stream was saved from a machine configured differently (machine type, RAM
    /// size, CPU model) and was refused before anything else was read.
    #[error("the state belongs to another machine: {0}")]
    Mismatch(#[source] savevm::Error),
    /// The stream is intact but holds what this build cannot load: a format or section
    /// version it does not read, a section this machine has no device for, or none for
    /// a device it has.
    #[error("the state cannot be loaded by this build: {0}")]
    Incompatible(#[source] savevm::Error),
    /// The stream is damaged: truncated, checksum wrong, a malformed record (the error
    /// gives the offset), or a device state no device could be in (it names the section).
    #[error("corrupt machine state: {0}")]
    Corrupt(#[source] savevm::Error),
    /// Reading, writing or seeking the stream failed.
    #[error("I/O error on the machine state: {0}")]
    Io(#[source] savevm::Error),
    /// The stream does not hold every page of RAM.
    #[error("the state holds no contents for {missing} of {pages} RAM pages (the first is page {first:#x})")]
    IncompleteRam {
        first: u64,
        missing: u64,
        pages: u64,
    },
    /// The stream could not be written.
    #[error("cannot save the machine state: {0}")]
    Save(#[source] savevm::Error),
}

impl From<savevm::Error> for StateError {
    /// Sorts a reader's error by what the user can do about it.
    fn from(e: savevm::Error) -> Self {
        use savevm::Error as E;
        match e {
            E::ConfigMismatch { .. } => StateError::Mismatch(e),
            E::UnsupportedVersion { .. }
            | E::UnknownFlags { .. }
            | E::UnknownSection { .. }
            | E::MissingSection { .. }
            | E::SectionVersion { .. }
            | E::SubsectionVersion { .. }
            | E::UnknownSubsection { .. } => StateError::Incompatible(e),
            E::Io { .. } => StateError::Io(e),
            _ => StateError::Corrupt(e),
        }
    }
}

/// One device's state encoded for the stream: what a migration sender puts out with
/// [`savevm::StreamWriter::put_encoded`].
#[derive(Debug)]
pub struct DeviceState {
    pub name: &'static str,
    pub instance: u32,
    pub version: u32,
    pub state: Encoder,
}

impl DeviceState {
    fn of<T: VmState>(instance: u32, component: &T) -> Self {
        let mut state = Encoder::new();
        component.save(&mut state);
        DeviceState {
            name: T::NAME,
            instance,
            version: T::VERSION,
            state,
        }
    }
}

/// Lowercase hex of a digest, as `info digest` prints it.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The config and virtual clock of a snapshot, read from the head of the stream without
/// reading RAM or checking the checksum (for listings; a load verifies everything).
pub fn snapshot_clock(input: impl Read) -> Result<(Config, ClockState), StateError> {
    let mut r = StreamReader::open_unchecked(BufReader::new(input))?;
    loop {
        match r.next_record(&mut DiscardRam)? {
            Record::Section(s) if s.name == VirtualClock::NAME && s.instance == 0 => {
                if !(VirtualClock::MIN_VERSION..=VirtualClock::VERSION).contains(&s.version) {
                    return Err(StateError::Incompatible(savevm::Error::SectionVersion {
                        section: s.name,
                        version: s.version,
                        min: VirtualClock::MIN_VERSION,
                        max: VirtualClock::VERSION,
                    }));
                }
                let mut clock = VirtualClock::new(ClockMode::Deterministic { ns_per_insn: 1 });
                clock.load(&mut s.decoder(), s.version)?;
                return Ok((r.config().clone(), clock.state()));
            }
            Record::Section(_) => {}
            // Devices come before RAM: a stream without a clock there has none.
            _ => {
                return Err(StateError::Incompatible(savevm::Error::MissingSection {
                    name: VirtualClock::NAME.into(),
                    instance: 0,
                }))
            }
        }
    }
}

/// Guest RAM by RAM offset, for the writer.
struct RamPages<'a>(&'a GuestMemory);

impl PageSource for RamPages<'_> {
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()> {
        read_page(self.0, page, out)
    }

    fn known_zero(&mut self, first: u64, end: u64) -> u64 {
        self.0.unwritten_run(first, end)
    }
}

fn read_page(mem: &GuestMemory, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()> {
    let ok = page
        .checked_mul(PAGE_SIZE as u64)
        .is_some_and(|off| mem.ram().read_slice(off, out));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("page {page:#x} is outside guest RAM"),
        ))
    }
}

/// Writes one page by RAM offset through the dirty log, as a device's DMA would be
/// logged. The caller drops translated code afterwards.
fn write_page(mem: &GuestMemory, page: u64, data: &[u8; PAGE_SIZE]) {
    mem.write_ram(page * PAGE_SIZE as u64, data);
}

fn is_zero(p: &[u8; PAGE_SIZE]) -> bool {
    savevm::is_zero_page(p)
}

/// Which pages the stream held.
struct Coverage {
    seen: Vec<bool>,
}

impl Coverage {
    fn mark(&mut self, first: u64, count: u64) -> io::Result<()> {
        let range = usize::try_from(first)
            .ok()
            .zip(usize::try_from(first.saturating_add(count)).ok())
            .filter(|&(_, end)| end <= self.seen.len());
        match range {
            Some((a, b)) => {
                self.seen[a..b].fill(true);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pages {first:#x}+{count} outside guest RAM"),
            )),
        }
    }

    fn check(&self) -> Result<(), StateError> {
        let missing = self.seen.iter().filter(|&&s| !s).count() as u64;
        match self.seen.iter().position(|&s| !s) {
            None => Ok(()),
            Some(first) => Err(StateError::IncompleteRam {
                first: first as u64,
                missing,
                pages: self.seen.len() as u64,
            }),
        }
    }
}

/// Writes loaded pages into guest RAM, remembers what each changed page held, and notes
/// which pages came.
struct Restore<'a> {
    mem: &'a GuestMemory,
    cover: Coverage,
    /// (page, old contents; `None` for a zero page), in the order they were changed.
    undo: Vec<(u64, Option<Box<[u8; PAGE_SIZE]>>)>,
    old: Box<[u8; PAGE_SIZE]>,
}

impl<'a> Restore<'a> {
    fn new(mem: &'a GuestMemory) -> Self {
        Restore {
            mem,
            cover: Coverage {
                seen: vec![false; (mem.ram_size() / PAGE_SIZE as u64) as usize],
            },
            undo: Vec::new(),
            old: Box::new([0; PAGE_SIZE]),
        }
    }

    fn put(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        let old = if self.mem.unwritten_run(page, page + 1) == 1 {
            // Never written: zero, and not worth a read that would map it.
            if is_zero(data) {
                return Ok(());
            }
            None
        } else {
            read_page(self.mem, page, &mut self.old)?;
            if self.old[..] == data[..] {
                return Ok(());
            }
            (!is_zero(&self.old)).then(|| self.old.clone())
        };
        self.undo.push((page, old));
        write_page(self.mem, page, data);
        Ok(())
    }

    fn zero(&mut self, first: u64, count: u64) -> io::Result<()> {
        // Pages never written are zero already.
        for page in self.mem.written_pages(first, first.saturating_add(count)) {
            self.put(page, &ZERO_PAGE)?;
        }
        Ok(())
    }

    fn run(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        for (page, d) in (first..).zip(data.chunks_exact(PAGE_SIZE)) {
            if let Some(d) = d.first_chunk::<PAGE_SIZE>() {
                self.put(page, d)?;
            }
        }
        Ok(())
    }

    /// Puts every changed page back, newest change first.
    fn undo(self) {
        for (page, old) in self.undo.into_iter().rev() {
            write_page(self.mem, page, old.as_deref().unwrap_or(&ZERO_PAGE));
        }
    }
}

impl RamSink for Restore<'_> {
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
        self.cover.mark(first, count)?;
        self.zero(first, count)
    }

    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        self.write_pages(page, data)
    }

    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        self.cover.mark(first, (data.len() / PAGE_SIZE) as u64)?;
        self.run(first, data)
    }
}

/// Copies of the machine's CPU state and devices that a stream is loaded into, so that
/// nothing of the machine changes until every section has loaded.
struct Staged {
    cpu: CpuState,
    clock: VirtualClock,
    pic: Pic,
    pit: Pit,
    rtc: Rtc,
    kbc: I8042,
    uart: Uart,
    debug_exit: DebugExit,
    debugcon: Option<DebugCon>,
    board: BoardState,
}

impl Staged {
    fn of(m: &PcMachine) -> Self {
        let b = &m.board;
        Staged {
            cpu: m.cpu.s.clone(),
            clock: b.clock.clone(),
            pic: b.pic.clone(),
            pit: b.pit.clone(),
            rtc: b.rtc.clone(),
            kbc: b.kbc.clone(),
            uart: b.uart.clone(),
            debug_exit: b.debug_exit.clone(),
            debugcon: b.debugcon.clone(),
            board: b.state(),
        }
    }

    /// Loads every section; the sections and this machine's components must match one
    /// to one.
    fn load(&mut self, v: &Verified) -> savevm::Result<()> {
        let mut l = Loaders::new();
        l.add(0, &mut self.cpu)
            .add(0, &mut self.clock)
            .add(0, &mut self.pic)
            .add(0, &mut self.pit)
            .add(0, &mut self.rtc)
            .add(0, &mut self.kbc)
            .add(0, &mut self.uart)
            .add(0, &mut self.debug_exit);
        if let Some(d) = self.debugcon.as_mut() {
            l.add(0, d);
        }
        l.add(0, &mut self.board);
        v.load_into(&mut l)
    }
}

impl PcMachine {
    /// What a stream saved from this machine says it came from, and what a stream must
    /// say to load into it.
    pub fn state_config(&self) -> Config {
        Config {
            machine: MACHINE_TYPE.into(),
            ram_size: self.memory().ram_size(),
            cpu_model: match self.cpu.model {
                CpuModel::PentiumPro => "pentium-pro".into(),
            },
        }
    }

    /// Every device's section (CPU, clock, PIC, PIT, RTC, i8042, UART, debug ports,
    /// board), encoded, in the order a snapshot holds them. Host-side buffers are not in
    /// them.
    pub fn device_states(&self) -> Vec<DeviceState> {
        let b = &self.board;
        let mut v = vec![
            DeviceState::of(0, &self.cpu),
            DeviceState::of(0, &b.clock),
            DeviceState::of(0, &b.pic),
            DeviceState::of(0, &b.pit),
            DeviceState::of(0, &b.rtc),
            DeviceState::of(0, &b.kbc),
            DeviceState::of(0, &b.uart),
            DeviceState::of(0, &b.debug_exit),
        ];
        if let Some(d) = &b.debugcon {
            v.push(DeviceState::of(0, d));
        }
        v.push(DeviceState::of(0, &b.state()));
        v
    }

    /// [`PcMachine::device_states`] as sections, as a reader would return them.
    pub fn device_sections(&self) -> Vec<SectionData> {
        self.device_states()
            .iter()
            .map(|s| {
                SectionData::from_encoder(s.name, s.instance, s.version, &s.state)
                    .expect("the machine's own sections are well formed")
            })
            .collect()
    }

    /// Writes the whole machine to `out` as a snapshot stream (see the module docs) and
    /// returns what it holds.
    ///
    /// The machine must be stopped: no [`PcMachine::run`] in progress, and with a
    /// realtime clock the clock paused ([`PcMachine::pause_clock`]), or the saved time
    /// is not the time of the saved RAM. Saving changes nothing in the machine.
    pub fn save_snapshot<W: Write + Send>(&mut self, out: W) -> Result<Description, StateError> {
        let config = self.state_config();
        let pages = config.ram_size / PAGE_SIZE as u64;
        let states = self.device_states();
        let mem = self.memory();
        // The host's write (into the page cache, say) runs on a second thread while this
        // one copies, scans and checksums RAM: the two take about as long as each other.
        let (desc, _, written) = savevm::write_behind(out, |wb| {
            let mut w = StreamWriter::new(wb, &config, 0)?;
            for s in &states {
                w.put_encoded(s.name, s.instance, s.version, &s.state)?;
            }
            w.begin_ram_pass()?;
            w.put_ram(&mut RamPages(mem), 0..pages)?;
            w.finish().map(|(_, desc)| desc)
        });
        match (desc, written) {
            (Ok(desc), Ok(())) => Ok(desc),
            // The writer thread's error is the host's own (disk full, ...); the producer
            // saw only that the writer stopped, but knows where.
            (Err(savevm::Error::Io { offset, .. }), Err(source)) => {
                Err(StateError::Save(savevm::Error::Io { offset, source }))
            }
            (Err(e), _) => Err(StateError::Save(e)),
            (Ok(desc), Err(source)) => Err(StateError::Save(savevm::Error::Io {
                offset: desc.stream_len,
                source,
            })),
        }
    }

    /// Replaces the whole machine with the snapshot in `input` (read from its current
    /// position to its end), all or nothing: on any error the machine is exactly as it
    /// was (see the module docs). The machine must be stopped; a paused clock stays
    /// paused. Afterwards no translation made from the old RAM or state survives.
    pub fn load_snapshot<R: Read>(&mut self, input: R) -> Result<(), StateError> {
        let config = self.state_config();
        let mem = self.memory().clone();
        // Reading and checksumming the file on this core while another takes the page
        // faults and copies into RAM halves a large load.
        // So are the first touches of fresh RAM, on prefault threads that work on the
        // runs ahead (see `memory::with_prefault`).
        let (read, restore, restored) = savevm::sink_behind(Restore::new(&mem), |sink| {
            memory::with_prefault(&mem, memory::PREFAULT_THREADS, |pf| {
                let mut sink = Announce {
                    sink,
                    announce: |first, count| pf.coming(first, count),
                };
                let mut r = StreamReader::new(BufReader::new(input), &config)?;
                let v = r.read_all(&mut sink)?;
                r.expect_eof()?;
                Ok::<_, savevm::Error>(v)
            })
        });
        let staged = restored
            .map_err(StateError::Io)
            .and_then(|()| read.map_err(StateError::from))
            .and_then(|v| {
                restore.cover.check()?;
                let mut staged = Staged::of(self);
                staged.load(&v)?;
                Ok(staged)
            });
        match staged {
            Ok(staged) => {
                self.commit(staged);
                Ok(())
            }
            Err(e) => {
                restore.undo();
                // The RAM is as it was; translations made from it are merely dropped.
                self.cpu.flush_code();
                Err(e)
            }
        }
    }

    /// Loads the device sections of an incoming migration whose RAM is already in guest
    /// memory. All or nothing: on error no device has changed (RAM, written by the
    /// stream, is the caller's to discard).
    pub fn load_devices(&mut self, verified: &Verified) -> Result<(), StateError> {
        verified
            .description
            .config
            .check_matches(&self.state_config())?;
        let mut staged = Staged::of(self);
        staged.load(verified)?;
        self.commit(staged);
        Ok(())
    }

    /// Swaps loaded devices in and drops every cache derived from the old state.
    fn commit(&mut self, s: Staged) {
        let b = &mut self.board;
        b.clock = s.clock;
        b.pic = s.pic;
        b.pit = s.pit;
        b.rtc = s.rtc;
        b.kbc = s.kbc;
        b.uart = s.uart;
        b.debug_exit = s.debug_exit;
        b.debugcon = s.debugcon;
        // After the 8042: the A20 line follows both gates.
        b.restore(&s.board);
        // TLB, jump cache and segment checks were made under the old state and A20 mask.
        self.cpu.set_state(s.cpu);
        // All of RAM may have changed under the translated code; this also clears the
        // code-page map of every page that had blocks.
        self.cpu.flush_code();
    }

    /// SHA-256 of the guest-visible machine state (see the module docs): equal for two
    /// machines exactly when they are in the same state, on any host.
    pub fn digest(&self) -> [u8; 32] {
        fn put_str(h: &mut Sha256, s: &str) {
            h.update((s.len() as u32).to_le_bytes());
            h.update(s.as_bytes());
        }
        let mut h = Sha256::new();
        h.update(DIGEST_DOMAIN);
        let config = self.state_config();
        put_str(&mut h, &config.machine);
        h.update(config.ram_size.to_le_bytes());
        put_str(&mut h, &config.cpu_model);
        let mem = self.memory();
        let mut page = Box::new([0u8; PAGE_SIZE]);
        let pages = config.ram_size / PAGE_SIZE as u64;
        let mut p = 0;
        while p < pages {
            let unwritten = mem.unwritten_run(p, pages);
            if unwritten > 0 {
                // Zero without a read; hashed as the zero pages they are.
                for _ in 0..unwritten {
                    h.update([0u8]);
                }
                p += unwritten;
                continue;
            }
            if read_page(mem, p, &mut page).is_err() || is_zero(&page) {
                h.update([0u8]);
            } else {
                h.update([1u8]);
                h.update(&page[..]);
            }
            p += 1;
        }
        let sections = self.device_states();
        h.update((sections.len() as u32).to_le_bytes());
        for s in &sections {
            put_str(&mut h, s.name);
            h.update(s.instance.to_le_bytes());
            h.update(s.version.to_le_bytes());
            h.update((s.state.fields_len() as u32).to_le_bytes());
            h.update((s.state.as_bytes().len() as u32).to_le_bytes());
            h.update(s.state.as_bytes());
        }
        h.finalize().into()
    }
}
