//! The source side (`migrate URI`): iterative pre-copy of RAM on a thread of its own, then a
//! short stop-and-copy.
//!
//! ```text
//!  VM thread (event loop)               migration thread                     destination
//!  ──────────────────────               ────────────────                     ───────────
//!  OutgoingMigration::start ──────────► setup   connect, header + config ──► check config
//!        EnableDirtyLog ◄─────────────
//!  dirty_enable, reply ───────────────► active  pass 1: every page ────────► write pages
//!        Harvest ◄────────────────────          (rate-limited; zero pages as counts)
//!  dirty_take, reply ─────────────────►         decide (see `converge`):
//!          ...                                    go on: pass n = dirty pages ──► write
//!        StopForCompletion ◄──────────            stop: ↓
//!  stop vCPU, drain I/O, dirty_take,
//!  encode sections, reply ────────────► device  last pages (no rate limit),
//!                                               sections, END + checksum ──► verify
//!                                               transport finish
//!        Finished{ok} ◄───────────────
//!  disable log; ok: stay stopped,       completed | failed | cancelled
//!  else resume if it was running
//! ```
//!
//! Status (QEMU's names; every change is also a [`MigrationEvent::Status`]):
//!
//! ```text
//!  setup ──► active ──► device ──► completed
//!    └──────────┴──────────┴─────► failed                 any error; the source runs as before
//!    └──────────┴──────────┴─────► cancelling ──► cancelled   migrate_cancel
//! ```
//!
//! The thread reads RAM straight from the shared [`GuestMemory`] while the guest runs: a
//! page that changes while being read was logged by that write and goes again later.
//! Cancel is prompt at every stage: a connect runs on a helper thread that is abandoned, a
//! sender blocked on a peer that stopped reading is unblocked by the transport's
//! [`Canceller`], a paused sender wakes at least every [`crate::rate::MAX_PAUSE`], and a
//! wait for the VM thread is given up. Once the transport has finished the stream is the
//! destination's, and a late cancel no longer changes the outcome.
//!
//! Cleanup is the same on every path: the throttle goes back to 0, a [`VmRequest::Finished`]
//! lets the VM thread disable the dirty log and resume the guest if this migration stopped
//! it, and only then does the status become final. A `file:` destination leaves no file
//! behind unless completed, an `exec:` command is killed.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use memory::{DirtyBitmap, GuestMemory};
use savevm::{Config, Description, StreamWriter, FLAG_LIVE};

use crate::converge::{Convergence, SyncFacts, PPM};
use crate::error::MigrationError;
use crate::link::{AskError, MigrationEvent, VmLink, VmPort, VmRequest, Waker};
use crate::lock;
use crate::params::{MigrationParams, MAX_THROTTLE};
use crate::ram::RamSource;
use crate::rate::{BandwidthEstimate, RateLimiter, MAX_PAUSE};
use crate::run_state::RunState;
use crate::stats::{MigrationInfo, MigrationStatus, RamStats};
use crate::transport::{Canceller, FdLookup, Outgoing, TransportError};
use crate::uri::MigrationUri;

const PAGE_SIZE: u64 = savevm::PAGE_SIZE as u64;
/// Pages put into the stream between two hand-overs to the transport's thread and looks
/// at the rate limiter (a cancel is checked more often): one full RAM run.
const CHUNK_PAGES: u64 = savevm::MAX_DATA_RUN as u64;
/// Bandwidth is measured over windows of at least this long (and at the end of a pass).
const WINDOW: Duration = Duration::from_millis(100);
/// How often a sender waiting for a connect checks for a cancel.
const POLL: Duration = Duration::from_millis(20);

/// What [`OutgoingMigration::start`] needs.
pub struct OutgoingSetup {
    pub uri: MigrationUri,
    /// The configuration section: the machine's type, RAM size and CPU model.
    pub config: Config,
    pub memory: Arc<GuestMemory>,
    pub params: Arc<MigrationParams>,
    /// Called whenever the VM thread has a request or an event on its [`VmLink`].
    pub waker: Waker,
}

/// A migration to another process, running on its own thread. The handle reports
/// progress and cancels; dropping it cancels a migration still running.
pub struct OutgoingMigration {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    status: MigrationStatus,
    started: Instant,
    setup_time: Option<Duration>,
    ended: Option<Instant>,
    downtime: Option<Duration>,
    expected_downtime_ms: Option<u64>,
    not_converging: bool,
    /// Everything but `transferred`, which is read live.
    ram: RamStats,
    error: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    cancel: AtomicBool,
    canceller: Mutex<Option<Canceller>>,
    /// The auto-converge throttle, in [`crate::converge::PPM`] of the vCPU's time.
    throttle_ppm: AtomicU32,
    transferred: Arc<AtomicU64>,
    port: VmPort,
}

impl Shared {
    /// Moves to `to` and tells the monitors. A cancel in progress is not overwritten by
    /// the sender moving on to the next stage; a final status always is.
    fn set_status(&self, to: MigrationStatus) {
        let mut st = lock(&self.state);
        if st.status == to || (st.status == MigrationStatus::Cancelling && !to.is_final()) {
            return;
        }
        st.status = to;
        // Sent under the lock, so events come in the order the status changed.
        self.port
            .notify(VmRequest::Event(MigrationEvent::Status(to)));
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

impl OutgoingMigration {
    /// Starts migrating to `setup.uri`; `fds` resolves an `fd:` name now, on the caller's
    /// thread. The returned link is the VM thread's to serve until it reports
    /// `Disconnected`.
    pub fn start(
        setup: OutgoingSetup,
        fds: FdLookup,
    ) -> Result<(OutgoingMigration, VmLink), MigrationError> {
        let actual = setup.memory.ram_size();
        if setup.config.ram_size != actual {
            return Err(MigrationError::RamSize {
                config: setup.config.ram_size,
                actual,
            });
        }
        let fd = match &setup.uri {
            MigrationUri::Fd(name) => {
                Some(fds(name).ok_or_else(|| TransportError::NoFd(name.clone()))?)
            }
            _ => None,
        };
        let (port, link) = VmPort::new(setup.waker);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                status: MigrationStatus::None,
                started: Instant::now(),
                setup_time: None,
                ended: None,
                downtime: None,
                expected_downtime_ms: None,
                not_converging: false,
                ram: RamStats {
                    total: actual,
                    remaining: actual,
                    page_size: PAGE_SIZE,
                    ..RamStats::default()
                },
                error: None,
            }),
            cancel: AtomicBool::new(false),
            canceller: Mutex::new(None),
            throttle_ppm: AtomicU32::new(0),
            transferred: Arc::new(AtomicU64::new(0)),
            port,
        });
        shared.set_status(MigrationStatus::Setup);
        let sender = Sender {
            limiter: RateLimiter::new(setup.params.bandwidth_handle()),
            shared: shared.clone(),
            uri: setup.uri,
            fd,
            config: setup.config,
            memory: setup.memory,
            params: setup.params,
            bandwidth: BandwidthEstimate::default(),
            converge: Convergence::default(),
            debited: 0,
            window: Window::new(Instant::now(), 0),
            last_sync: Instant::now(),
            transferred_at_sync: 0,
        };
        let thread = thread::Builder::new()
            .name("migration-out".into())
            .spawn(move || sender.run())
            .map_err(MigrationError::Thread)?;
        Ok((
            OutgoingMigration {
                shared,
                thread: Some(thread),
            },
            link,
        ))
    }

    pub fn status(&self) -> MigrationStatus {
        lock(&self.shared.state).status
    }

    /// `query-migrate`: what QEMU shows for the current status (see [`crate::stats`]).
    pub fn info(&self) -> MigrationInfo {
        let st = lock(&self.shared.state);
        let end = st.ended.unwrap_or_else(Instant::now);
        let ms = |d: Duration| d.as_millis() as u64;
        let total_time = Some(ms(end.saturating_duration_since(st.started)));
        let mut ram = st.ram.clone();
        ram.transferred = self.shared.transferred.load(Ordering::Relaxed);
        let throttle = self.cpu_throttle_percentage();
        let status = st.status;
        match status {
            MigrationStatus::Active | MigrationStatus::Device | MigrationStatus::Cancelling => {
                MigrationInfo {
                    status,
                    total_time_ms: total_time,
                    setup_time_ms: st.setup_time.map(ms),
                    expected_downtime_ms: st.expected_downtime_ms,
                    ram: Some(ram),
                    cpu_throttle_percentage: (throttle > 0).then_some(throttle),
                    cpu_throttle_ppm: (throttle > 0).then(|| self.cpu_throttle_ppm()),
                    not_converging: st.not_converging,
                    ..MigrationInfo::default()
                }
            }
            MigrationStatus::Completed => MigrationInfo {
                status,
                total_time_ms: total_time,
                setup_time_ms: st.setup_time.map(ms),
                downtime_ms: st.downtime.map(ms),
                ram: Some(ram),
                ..MigrationInfo::default()
            },
            MigrationStatus::Failed => MigrationInfo {
                status,
                error_desc: st.error.clone(),
                ..MigrationInfo::default()
            },
            MigrationStatus::None | MigrationStatus::Setup | MigrationStatus::Cancelled => {
                MigrationInfo {
                    status,
                    ..MigrationInfo::default()
                }
            }
        }
    }

    /// The error of a failed migration.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.state).error.clone()
    }

    /// The share of time (percent, 0-99) the vCPU must leave idle, as QEMU reports it
    /// (`cpu-throttle-percentage`); [`OutgoingMigration::cpu_throttle_ppm`] is exact.
    pub fn cpu_throttle_percentage(&self) -> u8 {
        let ppm = self.cpu_throttle_ppm();
        // Past 99 % (tern's own range) QEMU's figure stays at 99; a throttle that is on
        // never shows as 0.
        (ppm / (PPM / 100)).clamp(u32::from(ppm > 0), u32::from(MAX_THROTTLE)) as u8
    }

    /// The throttle in parts per million: after running for `t`, the vCPU sleeps
    /// `t × ppm / (1 000 000 - ppm)`. Read it before every slice; 0 once the migration
    /// ends.
    pub fn cpu_throttle_ppm(&self) -> u32 {
        self.shared.throttle_ppm.load(Ordering::Relaxed)
    }

    /// `migrate_cancel`: from any thread, at any stage. No effect once the migration is
    /// over. The status goes to `cancelling` at once and to `cancelled` when the sender
    /// has cleaned up.
    pub fn cancel(&self) {
        {
            // Checked and changed under one lock: a migration that completes meanwhile
            // stays completed.
            let mut st = lock(&self.shared.state);
            if st.status.is_final() {
                return;
            }
            self.shared.cancel.store(true, Ordering::Release);
            if st.status != MigrationStatus::Cancelling {
                st.status = MigrationStatus::Cancelling;
                self.shared
                    .port
                    .notify(VmRequest::Event(MigrationEvent::Status(
                        MigrationStatus::Cancelling,
                    )));
            }
        }
        if let Some(c) = lock(&self.shared.canceller).as_ref() {
            c.cancel();
        }
    }

    /// Whether the migration thread has ended (status final, VM thread told).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for OutgoingMigration {
    fn drop(&mut self) {
        // The thread finishes its cleanup on its own; nothing waits for it.
        self.cancel();
    }
}

/// Bytes and pages since a moment, for the throughput figures.
struct Window {
    start: Instant,
    bytes_at_start: u64,
    pages: u64,
}

impl Window {
    fn new(start: Instant, bytes_at_start: u64) -> Self {
        Self {
            start,
            bytes_at_start,
            pages: 0,
        }
    }
}

/// Counts what reaches the transport, for `ram.transferred` and the rate limiter.
struct Counting {
    inner: Outgoing,
    count: Arc<AtomicU64>,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The migration thread's own state.
struct Sender {
    shared: Arc<Shared>,
    uri: MigrationUri,
    fd: Option<OwnedFd>,
    config: Config,
    memory: Arc<GuestMemory>,
    params: Arc<MigrationParams>,
    limiter: RateLimiter,
    bandwidth: BandwidthEstimate,
    converge: Convergence,
    /// Stream bytes produced as of the last debit of the rate limiter.
    debited: u64,
    window: Window,
    last_sync: Instant,
    transferred_at_sync: u64,
}

impl Sender {
    fn run(mut self) {
        let result = self.migrate();
        let ok = result.is_ok();
        // Nothing left for a late cancel to shut down.
        lock(&self.shared.canceller).take();
        self.shared.throttle_ppm.store(0, Ordering::Relaxed);
        // Not given up on a cancel: the status becomes final only once the VM thread has
        // disabled the log and resumed the guest, so a new migration cannot overlap this
        // one's cleanup.
        let _ = self
            .shared
            .port
            .ask(|reply| VmRequest::Finished { ok, reply }, || false);
        let final_status = {
            let mut st = lock(&self.shared.state);
            st.ended = Some(Instant::now());
            match result {
                Ok(()) => {
                    // As QEMU reports a finished migration: everything sent over the time
                    // after setup.
                    let sent = self.shared.transferred.load(Ordering::Relaxed);
                    let took = st
                        .ended
                        .unwrap_or_else(Instant::now)
                        .saturating_duration_since(st.started)
                        .saturating_sub(st.setup_time.unwrap_or_default());
                    if !took.is_zero() {
                        st.ram.mbps = sent as f64 * 8.0 / 1e6 / took.as_secs_f64();
                    }
                    MigrationStatus::Completed
                }
                Err(_) if self.shared.cancelled() => MigrationStatus::Cancelled,
                Err(e) => {
                    log::warn!("migration to {} failed: {e}", self.uri);
                    st.error = Some(e.to_string());
                    MigrationStatus::Failed
                }
            }
        };
        self.shared.set_status(final_status);
    }

    fn cancelled(&self) -> bool {
        self.shared.cancelled()
    }

    fn check_cancel(&self) -> Result<(), MigrationError> {
        if self.cancelled() {
            Err(MigrationError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn ask<T>(
        &self,
        make: impl FnOnce(crate::link::Reply<T>) -> VmRequest,
    ) -> Result<T, MigrationError> {
        self.shared
            .port
            .ask(make, || self.shared.cancelled())
            .map_err(|e| match e {
                AskError::Gone => MigrationError::VmGone,
                AskError::GaveUp => MigrationError::Cancelled,
            })
    }

    /// Opens the transport on a helper thread, so a cancel need not wait for a slow
    /// connect. A transport that arrives after the cancel is aborted by the helper.
    fn connect(&mut self) -> Result<Outgoing, MigrationError> {
        let (tx, rx) = mpsc::channel();
        let abandoned = Arc::new(Mutex::new(false));
        let uri = self.uri.clone();
        let mut fd = self.fd.take();
        let gone = abandoned.clone();
        thread::Builder::new()
            .name("migration-connect".into())
            .spawn(move || {
                let r = Outgoing::connect(&uri, &mut |_| fd.take());
                let gone = lock(&gone);
                match r {
                    Ok(out) if *gone => out.abort(),
                    r => {
                        let _ = tx.send(r);
                    }
                }
            })
            .map_err(MigrationError::Thread)?;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => return Ok(r?),
                Err(RecvTimeoutError::Timeout) if self.cancelled() => {
                    *lock(&abandoned) = true;
                    // Sent before the flag was set: ours to abort.
                    if let Ok(Ok(out)) = rx.try_recv() {
                        out.abort();
                    }
                    return Err(MigrationError::Cancelled);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(MigrationError::Thread(io::Error::other(
                        "the connecting thread ended without a result",
                    )))
                }
            }
        }
    }

    fn migrate(&mut self) -> Result<(), MigrationError> {
        let out = self.connect()?;
        *lock(&self.shared.canceller) = Some(out.canceller());
        // A cancel that came before the canceller was in place did not see it.
        if self.cancelled() {
            out.abort();
            return Err(MigrationError::Cancelled);
        }
        let counting = Counting {
            inner: out,
            count: self.shared.transferred.clone(),
        };
        // The transport's copy (into the socket, the pipe, the file) runs on a second
        // thread while this one copies, scans and checksums RAM.
        let (streamed, counting, written) = savevm::write_behind(counting, |wb| self.stream(wb));
        let out = counting.inner;
        let stopped_at = match (streamed, written) {
            (Ok(t), Ok(())) => t,
            // The transport's own error says more than the stream's "writer stopped".
            (Err(MigrationError::Stream(savevm::Error::Io { offset, .. })), Err(source)) => {
                out.abort();
                return Err(MigrationError::Stream(savevm::Error::Io { offset, source }));
            }
            (Ok(_), Err(source)) => {
                out.abort();
                let offset = self.shared.transferred.load(Ordering::Relaxed);
                return Err(MigrationError::Stream(savevm::Error::Io { offset, source }));
            }
            (Err(e), _) => {
                out.abort();
                return Err(e);
            }
        };
        if self.cancelled() {
            out.abort();
            return Err(MigrationError::Cancelled);
        }
        out.finish()?;
        lock(&self.shared.state).downtime = Some(stopped_at.elapsed());
        Ok(())
    }

    /// Everything from the header to the trailer; returns when the guest was stopped.
    fn stream(&mut self, sink: &mut impl Write) -> Result<Instant, MigrationError> {
        let mut w = StreamWriter::new(sink, &self.config, FLAG_LIVE)?;
        self.ask(VmRequest::EnableDirtyLog)?;
        let now = Instant::now();
        self.last_sync = now;
        {
            let mut st = lock(&self.shared.state);
            st.setup_time = Some(now.saturating_duration_since(st.started));
        }
        self.shared.set_status(MigrationStatus::Active);

        self.begin_pass(&mut w)?;
        let pages = self.memory.ram_size() / PAGE_SIZE;
        self.send(&mut w, &[(0, pages)], true)?;
        let mut last = loop {
            let dirty = self.ask(VmRequest::Harvest)?;
            if self.sync(&dirty, w.bytes_written()) {
                break dirty;
            }
            self.begin_pass(&mut w)?;
            self.send(&mut w, &dirty.ranges(), true)?;
        };

        let stopped_at = Instant::now();
        let done = self.ask(VmRequest::StopForCompletion)?;
        self.shared.set_status(MigrationStatus::Device);
        last.merge(&done.dirty);
        self.begin_pass(&mut w)?;
        self.send(&mut w, &last.ranges(), false)?;
        for s in &done.sections {
            self.check_cancel()?;
            w.put_encoded(&s.name, s.instance, s.version, &s.state)?;
        }
        w.put_section(
            0,
            &RunState {
                running: done.running,
            },
        )?;
        self.check_cancel()?;
        let (_, desc) = w.finish()?;
        self.publish_counts(&desc, 0);
        Ok(stopped_at)
    }

    fn begin_pass<W: Write>(&mut self, w: &mut StreamWriter<W>) -> Result<(), MigrationError> {
        let pass = w.begin_ram_pass()?;
        lock(&self.shared.state).ram.dirty_sync_count = u64::from(pass);
        self.shared
            .port
            .notify(VmRequest::Event(MigrationEvent::Pass(pass)));
        Ok(())
    }

    /// Sends the page runs `(first, count)`. Every [`CHUNK_PAGES`] pages the run so far is
    /// handed to the transport's thread; the rate limiter and the bandwidth windows count
    /// what that thread has really written. Then the sender paces if `throttled`.
    fn send<W: Write>(
        &mut self,
        w: &mut StreamWriter<W>,
        runs: &[(u64, u64)],
        throttled: bool,
    ) -> Result<(), MigrationError> {
        let mut remaining: u64 = runs.iter().map(|r| r.1).sum();
        self.window = Window::new(
            Instant::now(),
            self.shared.transferred.load(Ordering::Relaxed),
        );
        let mut unflushed = 0;
        for &(first, count) in runs {
            let end = first + count;
            let mut page = first;
            while page < end {
                self.check_cancel()?;
                let n = (end - page).min(CHUNK_PAGES - unflushed);
                w.put_ram(&mut RamSource(&self.memory), page..page + n)?;
                page += n;
                remaining -= n;
                unflushed += n;
                self.window.pages += n;
                if unflushed == CHUNK_PAGES {
                    unflushed = 0;
                    self.chunk_done(w, remaining, throttled)?;
                }
            }
        }
        self.chunk_done(w, remaining, throttled)?;
        self.close_window();
        self.publish_counts(w.description(), remaining);
        Ok(())
    }

    fn chunk_done<W: Write>(
        &mut self,
        w: &mut StreamWriter<W>,
        remaining: u64,
        throttled: bool,
    ) -> Result<(), MigrationError> {
        // Handed to the transport's thread, not waited for.
        w.flush()?;
        if throttled {
            self.pace(w.bytes_written())?;
        }
        if self.window.start.elapsed() >= WINDOW {
            self.close_window();
        }
        self.publish_counts(w.description(), remaining);
        Ok(())
    }

    /// Debits what was produced since the last call (`produced` bytes of stream so far)
    /// and sleeps as the limiter says, in slices short enough to notice a cancel or a
    /// raised limit. Pacing what is produced, not what the transport's thread has
    /// written, keeps the queue between the two short: at most a chunk or so is in flight
    /// at a limited rate, and the transport's thread sends at the link's speed.
    fn pace(&mut self, produced: u64) -> Result<(), MigrationError> {
        let mut pause = self
            .limiter
            .debit(Instant::now(), produced.saturating_sub(self.debited));
        self.debited = produced;
        while !pause.is_zero() {
            self.check_cancel()?;
            thread::sleep(pause.min(MAX_PAUSE));
            pause = self.limiter.debit(Instant::now(), 0);
        }
        Ok(())
    }

    /// Folds the current window into the bandwidth estimate and starts a new one.
    fn close_window(&mut self) {
        let now = Instant::now();
        let sent = self.shared.transferred.load(Ordering::Relaxed);
        let took = now.saturating_duration_since(self.window.start);
        self.bandwidth
            .record(sent.saturating_sub(self.window.bytes_at_start), took);
        if took >= Duration::from_millis(1) {
            let pps = self.window.pages as f64 / took.as_secs_f64();
            lock(&self.shared.state).ram.pages_per_second = pps as u64;
        }
        self.window = Window::new(now, sent);
    }

    fn publish_counts(&self, desc: &Description, remaining_pages: u64) {
        let mut st = lock(&self.shared.state);
        st.ram.duplicate = desc.zero_pages();
        st.ram.normal = desc.data_pages();
        st.ram.normal_bytes = desc.data_pages() * PAGE_SIZE;
        st.ram.remaining = remaining_pages * PAGE_SIZE;
        st.ram.mbps = self.bandwidth.bytes_per_sec().unwrap_or(0.0) * 8.0 / 1e6;
    }

    /// Measures a harvest and decides; `true` when it is time to stop and copy.
    fn sync(&mut self, dirty: &DirtyBitmap, produced: u64) -> bool {
        let now = Instant::now();
        let sent = self.shared.transferred.load(Ordering::Relaxed);
        let period = now.saturating_duration_since(self.last_sync);
        let facts = SyncFacts {
            dirty_pages: dirty.count(),
            transferred: sent.saturating_sub(self.transferred_at_sync),
            bandwidth: self.bandwidth.bytes_per_sec(),
            queued: produced.saturating_sub(sent),
        };
        self.last_sync = now;
        self.transferred_at_sync = sent;
        let verdict = self.converge.decide(&facts, &self.params.values());
        self.shared
            .throttle_ppm
            .store(verdict.throttle_ppm, Ordering::Relaxed);
        let mut st = lock(&self.shared.state);
        if period >= Duration::from_millis(1) {
            st.ram.dirty_pages_rate = (facts.dirty_pages as f64 / period.as_secs_f64()) as u64;
        }
        st.ram.remaining = facts.dirty_pages * PAGE_SIZE;
        st.expected_downtime_ms = Some(verdict.expected_downtime_ms);
        st.not_converging = verdict.not_converging;
        verdict.complete
    }
}
