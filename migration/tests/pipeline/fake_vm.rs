//! A stand-in for the frontend's VM thread: it owns guest memory, runs a "vCPU" that
//! writes sequence numbers into pages in slices of a millisecond through the logged DMA
//! path, obeys the throttle, and serves the migration's requests between slices exactly
//! as `migration::link` tells a VM thread to. It records what it was asked and did.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memory::{DirtyClient, GuestMemory, GuestPhysAddr};
use migration::{Completion, DeviceSection, MigrationEvent, VmLink, VmRequest, Waker};
use savevm::{Decoder, Description, Encoder, Loaders, VmState};

pub const PAGE: u64 = 4096;
const SLICE: Duration = Duration::from_millis(1);

/// The one device of the fake machine: the vCPU's write counter at the stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestDev {
    pub seq: u64,
}

impl VmState for TestDev {
    const NAME: &'static str = "test-dev";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u64(self.seq);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let seq = dec.u64("seq")?;
        dec.finish()?;
        self.seq = seq;
        Ok(())
    }
}

/// What the test can change while the fake VM runs.
#[derive(Default)]
pub struct Knobs {
    /// Pages the vCPU writes per slice (0: it runs but writes nothing).
    pub pages_per_slice: AtomicU64,
    /// The pages it writes: `first + (random % count) * stride`.
    pub set_first: AtomicU64,
    pub set_count: AtomicU64,
    pub set_stride: AtomicU64,
    /// Idle after each slice as the migration's throttle says.
    pub obey_throttle: AtomicBool,
    /// Leave an `EnableDirtyLog` unanswered (the VM thread busy) until cleared.
    pub hold_enable: AtomicBool,
    /// Pages that pending device I/O writes when the guest is stopped for completion.
    pub final_burst: AtomicU64,
    /// Refuse to load an incoming stream's devices.
    pub refuse_load: AtomicBool,
    /// While the guest runs, answer at most one `Harvest` per vCPU slice, as an event
    /// loop that runs a slice every turn does (so a harvest is never empty only because
    /// the sender asked twice between two slices).
    pub one_harvest_per_slice: AtomicBool,
}

/// What the fake VM did.
#[derive(Debug, Default)]
pub struct Record {
    pub running: bool,
    pub events: Vec<MigrationEvent>,
    pub harvests: u32,
    pub stops: u32,
    pub resumed: u32,
    pub finished: Vec<bool>,
    /// Writes so far.
    pub seq: u64,
    pub seq_at_stop: Option<u64>,
    /// Every throttle value seen, in order, without repeats.
    pub throttles: Vec<u8>,
    /// The incoming stream's description and loaded device, once started from it.
    pub loaded: Option<(Description, TestDev)>,
    pub incoming_requests: u32,
    pub enable_held: bool,
}

pub type Throttle = Box<dyn Fn() -> u8 + Send>;

struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

pub struct FakeVm {
    pub memory: Arc<GuestMemory>,
    pub knobs: Arc<Knobs>,
    record: Arc<Mutex<Record>>,
    wake: Arc<Wake>,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeVm {
    pub fn new(ram: u64, running: bool) -> Self {
        let knobs = Knobs::default();
        knobs.set_count.store(ram / PAGE, Ordering::Relaxed);
        knobs.set_stride.store(1, Ordering::Relaxed);
        Self {
            memory: Arc::new(GuestMemory::new(ram).unwrap()),
            knobs: Arc::new(knobs),
            record: Arc::new(Mutex::new(Record {
                running,
                ..Record::default()
            })),
            wake: Arc::new(Wake {
                flag: Mutex::new(false),
                cv: Condvar::new(),
            }),
            quit: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// The vCPU writes `per_slice` pages per slice among `count` pages from `first`,
    /// `stride` apart.
    pub fn writer(&self, per_slice: u64, first: u64, count: u64, stride: u64) {
        self.knobs.set_first.store(first, Ordering::Relaxed);
        self.knobs.set_count.store(count, Ordering::Relaxed);
        self.knobs.set_stride.store(stride, Ordering::Relaxed);
        self.knobs
            .pages_per_slice
            .store(per_slice, Ordering::Relaxed);
    }

    pub fn waker(&self) -> Waker {
        let w = self.wake.clone();
        Box::new(move || {
            *w.flag.lock().unwrap() = true;
            w.cv.notify_one();
        })
    }

    /// Starts the VM thread serving `link`.
    pub fn serve(&mut self, link: VmLink, throttle: Option<Throttle>) {
        assert!(self.thread.is_none());
        let vm = Vm {
            memory: self.memory.clone(),
            knobs: self.knobs.clone(),
            record: self.record.clone(),
            wake: self.wake.clone(),
            quit: self.quit.clone(),
            throttle,
            link: Some(link),
            held: None,
            harvested_since_slice: false,
            stopped_for_migration: false,
            rng: 0x9E37_79B9_7F4A_7C15,
            seq: self.record.lock().unwrap().seq,
        };
        self.thread = Some(std::thread::spawn(move || vm.run()));
    }

    pub fn rec(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }

    /// Waits until the VM thread has seen the event for status `s` (the status itself
    /// changes first; its event reaches the VM thread a moment later).
    pub fn wait_status(&self, s: migration::MigrationStatus) {
        self.wait("the status event", |r| {
            r.events.last() == Some(&MigrationEvent::Status(s))
        });
    }

    /// Waits until `cond` holds of the record.
    pub fn wait(&self, what: &str, cond: impl Fn(&Record) -> bool) {
        crate::wait_until(what, || cond(&self.rec()));
    }
}

impl Drop for FakeVm {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Vm {
    memory: Arc<GuestMemory>,
    knobs: Arc<Knobs>,
    record: Arc<Mutex<Record>>,
    wake: Arc<Wake>,
    quit: Arc<AtomicBool>,
    throttle: Option<Throttle>,
    link: Option<VmLink>,
    /// A request the VM thread cannot serve yet; nothing after it is served either.
    held: Option<VmRequest>,
    harvested_since_slice: bool,
    stopped_for_migration: bool,
    rng: u64,
    seq: u64,
}

impl Vm {
    fn run(mut self) {
        let mut next_slice = Instant::now();
        while !self.quit.load(Ordering::Relaxed) {
            self.serve();
            let running = self.record.lock().unwrap().running;
            let per_slice = self.knobs.pages_per_slice.load(Ordering::Relaxed);
            let now = Instant::now();
            if running && per_slice > 0 && now >= next_slice {
                let t0 = Instant::now();
                for _ in 0..per_slice {
                    self.write_one();
                }
                self.harvested_since_slice = false;
                self.record.lock().unwrap().seq = self.seq;
                let busy = t0.elapsed();
                if busy < SLICE {
                    std::thread::sleep(SLICE - busy);
                }
                let slice = busy.max(SLICE);
                let p = match &self.throttle {
                    Some(t) if self.knobs.obey_throttle.load(Ordering::Relaxed) => t(),
                    _ => 0,
                };
                {
                    let mut r = self.record.lock().unwrap();
                    if r.throttles.last() != Some(&p) {
                        r.throttles.push(p);
                    }
                }
                // The vCPU's budget cut: idle p % of the time.
                next_slice = Instant::now() + slice * u32::from(p) / u32::from(100 - p);
            } else {
                let wait = if running && per_slice > 0 {
                    next_slice
                        .saturating_duration_since(now)
                        .min(Duration::from_millis(5))
                } else {
                    Duration::from_millis(5)
                };
                let mut f = self.wake.flag.lock().unwrap();
                if !*f {
                    f = self.wake.cv.wait_timeout(f, wait).unwrap().0;
                }
                *f = false;
            }
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// One guest store: the sequence number and the page number, somewhere in a page of
    /// the working set, through the logged DMA path.
    fn write_one(&mut self) {
        let k = &self.knobs;
        let (first, count, stride) = (
            k.set_first.load(Ordering::Relaxed),
            k.set_count.load(Ordering::Relaxed).max(1),
            k.set_stride.load(Ordering::Relaxed).max(1),
        );
        let r = self.next_rand();
        let page = first + (r % count) * stride;
        if (0xA0..0x100).contains(&page) {
            return; // the hole below 1 MiB is not RAM to the guest
        }
        let off = ((r >> 32) % (PAGE - 16)) & !7;
        self.seq += 1;
        let mut data = [0u8; 16];
        data[..8].copy_from_slice(&self.seq.to_le_bytes());
        data[8..].copy_from_slice(&page.to_le_bytes());
        self.memory
            .write_phys(GuestPhysAddr(page * PAGE + off), &data);
    }

    fn blocked(&self, req: &VmRequest) -> bool {
        let k = &self.knobs;
        match req {
            VmRequest::EnableDirtyLog(_) => k.hold_enable.load(Ordering::Relaxed),
            VmRequest::Harvest(_) => {
                k.one_harvest_per_slice.load(Ordering::Relaxed)
                    && self.harvested_since_slice
                    && self.record.lock().unwrap().running
            }
            _ => false,
        }
    }

    fn serve(&mut self) {
        if let Some(req) = self.held.take() {
            if self.blocked(&req) {
                self.held = Some(req);
                return;
            }
            self.handle(req);
        }
        while let Some(link) = &self.link {
            match link.try_recv() {
                Ok(req) if self.blocked(&req) => {
                    if matches!(req, VmRequest::EnableDirtyLog(_)) {
                        self.record.lock().unwrap().enable_held = true;
                    }
                    self.held = Some(req);
                    return;
                }
                Ok(req) => self.handle(req),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => self.link = None,
            }
        }
    }

    fn handle(&mut self, req: VmRequest) {
        match req {
            VmRequest::EnableDirtyLog(reply) => {
                self.memory.dirty_enable(DirtyClient::Migration);
                // The log starts empty: like a harvest, it waits for a slice before the
                // next harvest (pass 1 of a mostly unwritten RAM can take less than one).
                self.harvested_since_slice = true;
                self.record.lock().unwrap().enable_held = false;
                reply.send(());
            }
            VmRequest::Harvest(reply) => {
                self.harvested_since_slice = true;
                self.record.lock().unwrap().harvests += 1;
                reply.send(self.memory.dirty_take(DirtyClient::Migration));
            }
            VmRequest::StopForCompletion(reply) => {
                {
                    let mut r = self.record.lock().unwrap();
                    self.stopped_for_migration = r.running;
                    r.running = false;
                    r.stops += 1;
                    r.seq_at_stop = Some(self.seq);
                }
                // Device I/O completing after the stop still writes RAM, before the take.
                let burst = self.knobs.final_burst.load(Ordering::Relaxed);
                for p in 0..burst {
                    let page = 0x100 + p;
                    let fill = [(p as u8) | 1; PAGE as usize];
                    self.memory.write_phys(GuestPhysAddr(page * PAGE), &fill);
                }
                reply.send(Completion {
                    dirty: self.memory.dirty_take(DirtyClient::Migration),
                    sections: vec![DeviceSection::of(0, &TestDev { seq: self.seq })],
                    running: self.stopped_for_migration,
                });
            }
            VmRequest::Finished { ok, reply } => {
                self.memory.dirty_disable(DirtyClient::Migration);
                let mut r = self.record.lock().unwrap();
                if !ok && self.stopped_for_migration {
                    r.running = true;
                    r.resumed += 1;
                }
                self.stopped_for_migration = false;
                r.finished.push(ok);
                drop(r);
                reply.send(());
            }
            VmRequest::IncomingReady { mut stream, reply } => {
                self.record.lock().unwrap().incoming_requests += 1;
                let ran = match migration::take_run_state(&mut stream) {
                    Ok(ran) => ran.unwrap_or(true),
                    Err(e) => {
                        reply.send(Err(e.to_string()));
                        return;
                    }
                };
                if self.knobs.refuse_load.load(Ordering::Relaxed) {
                    reply.send(Err("the test refused the devices".into()));
                    return;
                }
                let mut dev = TestDev::default();
                let mut loaders = Loaders::new();
                loaders.add(0, &mut dev);
                match stream.load_into(&mut loaders) {
                    Ok(()) => {
                        let mut r = self.record.lock().unwrap();
                        r.loaded = Some((stream.description.clone(), dev));
                        r.running = ran;
                        drop(r);
                        reply.send(Ok(()));
                    }
                    Err(e) => reply.send(Err(e.to_string())),
                }
            }
            VmRequest::Event(e) => self.record.lock().unwrap().events.push(e),
        }
    }
}
