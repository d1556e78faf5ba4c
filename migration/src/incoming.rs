//! The destination side (`--incoming URI`, `migrate_incoming URI`).
//!
//! ```text
//!  VM thread (guest not running)        incoming thread                        source
//!  ─────────────────────────────        ───────────────                        ──────
//!  IncomingMigration::listen ─────────► setup   bound (tcp port 0 resolved)
//!                                               accept one stream ◄─────────── connect
//!                                       active  header + config: refuse a
//!                                               mismatch before anything loads
//!                                               RAM passes ──► guest memory ◄── pages
//!                                               sections kept, END, checksum,
//!                                               trailer, end of stream
//!        IncomingReady{verified} ◄────
//!  load sections, start guest,
//!  reply Ok ──────────────────────────► completed
//!  (or reply Err: guest not started) ─► failed
//! ```
//!
//! RAM pages land in guest memory as they arrive, before the checksum at the end is
//! known: harmless, because the guest is not running and a stream that fails or does not
//! verify never produces an `IncomingReady`, so that guest never runs. The status is
//! `failed` with the error; the frontend decides what happens next (QEMU exits).

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use memory::GuestMemory;
use savevm::{Announce, Config, StreamReader};

use crate::error::MigrationError;
use crate::link::{MigrationEvent, VmLink, VmPort, VmRequest, Waker};
use crate::lock;
use crate::ram::RamLoader;
use crate::stats::{MigrationInfo, MigrationStatus, RamStats};
use crate::transport::{FdLookup, Incoming};
use crate::uri::MigrationUri;

const BUFFER: usize = 256 << 10;

/// What [`IncomingMigration::listen`] needs.
pub struct IncomingSetup {
    /// This machine's configuration: a stream from any other is refused.
    pub config: Config,
    /// Guest memory of the machine that will run the guest.
    pub memory: Arc<GuestMemory>,
    pub waker: Waker,
}

/// One incoming migration: listening, then receiving on a thread of its own.
pub struct IncomingMigration {
    shared: Arc<Shared>,
    address: Option<MigrationUri>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    status: MigrationStatus,
    started: Instant,
    ended: Option<Instant>,
    ram: RamStats,
    error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    received: Arc<AtomicU64>,
    port: VmPort,
}

impl Shared {
    fn set_status(&self, to: MigrationStatus) {
        let mut st = lock(&self.state);
        if st.status != to {
            st.status = to;
            self.port
                .notify(VmRequest::Event(MigrationEvent::Status(to)));
        }
    }
}

/// Counts the bytes read, for `ram.transferred`.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl IncomingMigration {
    /// Binds `uri` now (an error here is the caller's to report) and waits for the stream
    /// on a thread.
    pub fn listen(
        uri: &MigrationUri,
        fds: FdLookup,
        setup: IncomingSetup,
    ) -> Result<(IncomingMigration, VmLink), MigrationError> {
        let actual = setup.memory.ram_size();
        if setup.config.ram_size != actual {
            return Err(MigrationError::RamSize {
                config: setup.config.ram_size,
                actual,
            });
        }
        let listener = Incoming::listen(uri, fds)?;
        let address = listener.address();
        let (port, link) = VmPort::new(setup.waker);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                status: MigrationStatus::None,
                started: Instant::now(),
                ended: None,
                ram: RamStats {
                    total: actual,
                    page_size: savevm::PAGE_SIZE as u64,
                    ..RamStats::default()
                },
                error: None,
            }),
            received: Arc::new(AtomicU64::new(0)),
            port,
        });
        shared.set_status(MigrationStatus::Setup);
        let sh = shared.clone();
        let thread = thread::Builder::new()
            .name("migration-in".into())
            .spawn(move || run(&sh, listener, &setup.config, &setup.memory))
            .map_err(MigrationError::Thread)?;
        Ok((
            IncomingMigration {
                shared,
                address,
                thread: Some(thread),
            },
            link,
        ))
    }

    /// Where the source should connect: a TCP port chosen by the system is filled in.
    /// `None` for transports nobody connects to (`exec:`, `fd:`, `file:`).
    pub fn address(&self) -> Option<&MigrationUri> {
        self.address.as_ref()
    }

    pub fn status(&self) -> MigrationStatus {
        lock(&self.shared.state).status
    }

    pub fn error(&self) -> Option<String> {
        lock(&self.shared.state).error.clone()
    }

    /// `query-migrate` on the destination.
    pub fn info(&self) -> MigrationInfo {
        let st = lock(&self.shared.state);
        let end = st.ended.unwrap_or_else(Instant::now);
        let total = end.saturating_duration_since(st.started).as_millis() as u64;
        let mut ram = st.ram.clone();
        ram.transferred = self.shared.received.load(Ordering::Relaxed);
        match st.status {
            MigrationStatus::Active | MigrationStatus::Completed => MigrationInfo {
                status: st.status,
                total_time_ms: Some(total),
                ram: Some(ram),
                ..MigrationInfo::default()
            },
            MigrationStatus::Failed => MigrationInfo {
                status: st.status,
                error_desc: st.error.clone(),
                ..MigrationInfo::default()
            },
            status => MigrationInfo {
                status,
                ..MigrationInfo::default()
            },
        }
    }

    /// Whether the incoming thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

fn run(shared: &Shared, listener: Incoming, config: &Config, memory: &GuestMemory) {
    let result = receive(shared, listener, config, memory);
    let status = {
        let mut st = lock(&shared.state);
        st.ended = Some(Instant::now());
        match result {
            Ok(()) => MigrationStatus::Completed,
            Err(e) => {
                log::warn!("incoming migration failed: {e}");
                st.error = Some(e.to_string());
                MigrationStatus::Failed
            }
        }
    };
    shared.set_status(status);
}

fn receive(
    shared: &Shared,
    listener: Incoming,
    config: &Config,
    memory: &GuestMemory,
) -> Result<(), MigrationError> {
    let stream = listener.accept()?;
    shared.set_status(MigrationStatus::Active);
    let input = BufReader::with_capacity(
        BUFFER,
        Counting {
            inner: stream,
            count: shared.received.clone(),
        },
    );
    // The socket and the checksum on this thread, the page faults and copies into guest
    // RAM on another: a gigabyte arrives in about half the time.
    // And the first touches of fresh RAM, most of that time, on prefault threads that
    // work on the runs ahead (see `memory::with_prefault`).
    let (read, _, stored) = savevm::sink_behind(RamLoader(memory), |sink| {
        memory::with_prefault(memory, memory::PREFAULT_THREADS, |pf| {
            let mut sink = Announce {
                sink,
                announce: |first, count| pf.coming(first, count),
            };
            let mut reader = StreamReader::new(input, config)?;
            let verified = reader.read_all(&mut sink)?;
            // The stream must end here: for `exec:` this is also where the command's exit
            // status is checked.
            reader.expect_eof()?;
            Ok::<_, savevm::Error>(verified)
        })
    });
    stored?;
    let verified = read?;
    {
        let d = &verified.description;
        let mut st = lock(&shared.state);
        st.ram.duplicate = d.zero_pages();
        st.ram.normal = d.data_pages();
        st.ram.normal_bytes = d.data_pages() * savevm::PAGE_SIZE as u64;
        st.ram.dirty_sync_count = d.ram_passes.len() as u64;
    }
    let loaded = shared
        .port
        .ask(
            |reply| VmRequest::IncomingReady {
                stream: Box::new(verified),
                reply,
            },
            || false,
        )
        .map_err(|_| MigrationError::VmGone)?;
    loaded.map_err(MigrationError::Load)
}
