//! The link between a migration thread and the VM thread (the frontend's event loop, which
//! owns the machine and runs the vCPU in slices of about a millisecond).
//!
//! A migration thread never touches the CPU or the devices: whatever must happen between
//! two vCPU slices it asks for with a [`VmRequest`] and, where it needs an answer, waits on
//! the [`Reply`] inside. It calls the frontend's [`Waker`] after each request so the event
//! loop wakes up; the loop then drains [`VmLink::try_recv`] before it runs the next slice.
//!
//! ```text
//!  migration thread                   channel                 VM thread (event loop)
//!  ────────────────                   ───────                 ──────────────────────
//!  send(req) + waker() ──────────────► VmRequest ──► try_recv() between two slices
//!  wait on reply  ◄────────────────── Reply<T> ◄─── handle it, reply.send(answer)
//! ```
//!
//! # What the VM thread does, per request
//!
//! All of it between two slices, never while guest code runs.
//!
//! * [`VmRequest::EnableDirtyLog`]: `memory.dirty_enable(DirtyClient::Migration)`, then
//!   reply. Enabling moves the dirty epoch; the vCPU compares the epoch before every block
//!   and drops its TLB write entries when it moved, so the first store of the next slice
//!   already takes the logged slow path. Done from another thread while a block runs, a
//!   store through a still-armed entry could escape the log after the sender copied
//!   the page.
//! * [`VmRequest::Harvest`]: in one step between two slices, (1) make the vCPU drop its
//!   TLB write entries (`Cpu::rearm_dirty_tracking`), (2) reply
//!   `memory.dirty_take(DirtyClient::Migration)`. A write entry exists only for a page
//!   logged since the last harvest, and a store through it sets no bit. If one survived
//!   the take, the guest's next store to that page would leave no trace in the log, and
//!   the sender, which copies only pages whose bit it took, would never send it. With the
//!   entries gone, every later store takes the logged path. (Between slices no guest
//!   instruction runs, so taking first is equivalent: the take moves the dirty epoch and
//!   the vCPU re-arms before its next block.) Device DMA done by the VM thread goes
//!   through `GuestMemory::write_phys`, which logs.
//! * [`VmRequest::StopForCompletion`]: remember whether the guest was running, stop the
//!   vCPU and guest time (the run state becomes `finish-migrate`), complete pending device
//!   I/O (DMA, disk writes) so nothing changes RAM or device state afterwards, take the
//!   last dirty log as for `Harvest`, encode every device's section, and reply a
//!   [`Completion`]. The stop must come before the take: a page written in between would
//!   be in neither this harvest nor any later one.
//! * [`VmRequest::Finished`]: `memory.dirty_disable(DirtyClient::Migration)`, set the
//!   throttle back to none, then: `ok` → the guest stays stopped (QEMU's `postmigrate`;
//!   the destination runs it now); not `ok` → resume the guest if and only if this
//!   migration's `StopForCompletion` stopped a running guest (a guest the user had stopped
//!   stays stopped; a failure before the stop changes nothing). Reply once done. Every
//!   migration ends with exactly one `Finished`, even after a cancel that did not wait for
//!   an earlier reply, and it is queued after every request before it.
//! * [`VmRequest::IncomingReady`] (destination): the stream arrived whole and verified; RAM
//!   is already in guest memory. Load the sections into fresh device models
//!   ([`savevm::Verified::load_into`]), commit them only if all loaded, drop translated
//!   code (RAM changed under it), start the guest, reply `Ok`. On a load error reply
//!   `Err(text)` and do not start the guest.
//! * [`VmRequest::Event`]: nothing to answer; turn it into the QMP `MIGRATION` or
//!   `MIGRATION_PASS` event.
//!
//! A VM thread that goes away drops its [`VmLink`]; a migration waiting on it then fails
//! with [`crate::MigrationError::VmGone`].

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::time::Duration;

use memory::DirtyBitmap;
use savevm::{Encoder, Verified, VmState};

use crate::stats::MigrationStatus;

/// Called by a migration thread whenever the VM thread has something to look at. It may
/// be called with the migration's own lock held: it must only wake the event loop (e.g.
/// `Poller::notify`), never call back into the migration.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// Where the VM thread sends its answer to one request. Sending never blocks; an answer
/// nobody waits for any more (the migration was cancelled meanwhile) is dropped.
#[derive(Debug)]
pub struct Reply<T>(SyncSender<T>);

impl<T> Reply<T> {
    pub fn send(self, answer: T) {
        let _ = self.0.send(answer);
    }
}

/// One device's state, encoded on the VM thread for the stream.
#[derive(Debug)]
pub struct DeviceSection {
    pub name: String,
    pub instance: u32,
    pub version: u32,
    pub state: Encoder,
}

impl DeviceSection {
    /// The section `T::NAME` at `T::VERSION` holding `state`'s current state.
    pub fn of<T: VmState>(instance: u32, state: &T) -> Self {
        let mut enc = Encoder::new();
        state.save(&mut enc);
        Self {
            name: T::NAME.to_string(),
            instance,
            version: T::VERSION,
            state: enc,
        }
    }
}

/// The answer to [`VmRequest::StopForCompletion`].
#[derive(Debug)]
pub struct Completion {
    /// Pages dirtied since the previous harvest, taken after the guest stopped.
    pub dirty: DirtyBitmap,
    /// Every device's section (CPU, board devices, clock), in any order.
    pub sections: Vec<DeviceSection>,
    /// Whether the guest was running when stopped: the destination runs it only then
    /// (see [`crate::RunState`]).
    pub running: bool,
}

/// A notification for the monitors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationEvent {
    /// QMP `MIGRATION` `{"status": ...}`.
    Status(MigrationStatus),
    /// QMP `MIGRATION_PASS` `{"pass": n}`: RAM pass `n` (1 for the first) has begun.
    Pass(u32),
}

/// What a migration thread asks of the VM thread; see the module docs for what each one
/// requires, in order.
#[derive(Debug)]
pub enum VmRequest {
    EnableDirtyLog(Reply<()>),
    Harvest(Reply<DirtyBitmap>),
    StopForCompletion(Reply<Completion>),
    Finished {
        ok: bool,
        reply: Reply<()>,
    },
    IncomingReady {
        stream: Box<Verified>,
        reply: Reply<Result<(), String>>,
    },
    Event(MigrationEvent),
}

/// The VM thread's end of the link.
#[derive(Debug)]
pub struct VmLink {
    rx: Receiver<VmRequest>,
}

impl VmLink {
    /// The next request, without blocking. `Err(Disconnected)` once the migration thread
    /// has ended and everything it sent was taken: the link can be dropped then.
    pub fn try_recv(&self) -> Result<VmRequest, TryRecvError> {
        self.rx.try_recv()
    }
}

/// Why a request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AskError {
    /// The VM thread dropped the link or the reply.
    Gone,
    /// `give_up` said so before the answer came.
    GaveUp,
}

/// The migration thread's end of the link.
pub(crate) struct VmPort {
    tx: Sender<VmRequest>,
    waker: Waker,
}

/// How often a waiting sender checks whether it should give up (a cancel).
const ASK_POLL: Duration = Duration::from_millis(20);

impl VmPort {
    pub fn new(waker: Waker) -> (Self, VmLink) {
        let (tx, rx) = mpsc::channel();
        (Self { tx, waker }, VmLink { rx })
    }

    /// Sends without waiting; a VM thread that went away is not an error here.
    pub fn notify(&self, req: VmRequest) {
        let _ = self.tx.send(req);
        (self.waker)();
    }

    /// Sends the request `make` builds around a reply and waits for the answer, checking
    /// `give_up` every few milliseconds.
    pub fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> VmRequest,
        give_up: impl Fn() -> bool,
    ) -> Result<T, AskError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(make(Reply(tx))).map_err(|_| AskError::Gone)?;
        (self.waker)();
        loop {
            match rx.recv_timeout(ASK_POLL) {
                Ok(v) => return Ok(v),
                Err(RecvTimeoutError::Disconnected) => return Err(AskError::Gone),
                Err(RecvTimeoutError::Timeout) if give_up() => return Err(AskError::GaveUp),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn port() -> (VmPort, VmLink, Arc<AtomicU32>) {
        let wakes = Arc::new(AtomicU32::new(0));
        let w = wakes.clone();
        let (p, l) = VmPort::new(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        (p, l, wakes)
    }

    #[test]
    fn requests_are_answered_in_order_and_wake_the_vm_thread() {
        let (p, link, wakes) = port();
        let vm = std::thread::spawn(move || {
            let mut seen = Vec::new();
            loop {
                match link.try_recv() {
                    Ok(VmRequest::Finished { ok, reply }) => {
                        seen.push(format!("finished {ok}"));
                        reply.send(());
                    }
                    Ok(VmRequest::Event(e)) => seen.push(format!("{e:?}")),
                    Ok(other) => panic!("{other:?}"),
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                    Err(TryRecvError::Disconnected) => return seen,
                }
            }
        });
        p.notify(VmRequest::Event(MigrationEvent::Pass(1)));
        assert_eq!(
            p.ask(|reply| VmRequest::Finished { ok: true, reply }, || false),
            Ok(())
        );
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
        drop(p);
        assert_eq!(vm.join().unwrap(), ["Pass(1)", "finished true"]);
    }

    #[test]
    fn a_waiting_sender_can_give_up() {
        let (p, link, _) = port();
        let r = p.ask(VmRequest::EnableDirtyLog, || true);
        assert_eq!(r, Err(AskError::GaveUp));
        // The request is still queued; a late answer goes nowhere and harms nothing.
        match link.try_recv() {
            Ok(VmRequest::EnableDirtyLog(reply)) => reply.send(()),
            other => panic!("{other:?}"),
        }
        drop(link);
        assert_eq!(
            p.ask(VmRequest::EnableDirtyLog, || false),
            Err(AskError::Gone)
        );
    }
}
