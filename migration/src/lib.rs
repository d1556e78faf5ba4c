//! Live migration: moving a running guest's state stream from one tern process to another.
//!
//! This crate knows nothing of the PC board or the CPU (DESIGN.md, "Crates"): it moves the
//! `savevm` stream between processes, reads and writes guest RAM through `memory`, and
//! asks the thread that owns the machine for everything else over a [`VmLink`].
//!
//! - [`uri`]: the addresses a user names (`tcp:`, `unix:`, `exec:`, `fd:`, `file:`);
//! - [`transport`]: turning an address into a byte stream, outgoing or incoming;
//! - [`rate`]: the token-bucket rate limiter and the bandwidth estimate;
//! - [`params`]: `max-bandwidth`, `downtime-limit`, `auto-converge` and the throttle steps;
//! - [`outgoing`]: the pre-copy sender (`migrate`), on its own thread;
//! - [`incoming`]: the receiver (`--incoming`, `migrate_incoming`), on its own thread;
//! - [`link`]: the requests a migration thread makes of the VM thread, and what the VM
//!   thread must do for each;
//! - [`stats`]: `query-migrate` / `info migrate` and the status names.
//!
//! # Wiring it into a frontend
//!
//! ```text
//!              ┌──────────────────────── event loop (VM thread) ───────────────────────┐
//!  monitors ──►│ migrate URI ─► OutgoingMigration::start(setup) ─► (handle, VmLink)   │
//!              │ info migrate ─► handle.info().to_json() / render                      │
//!              │ migrate_cancel ─► handle.cancel()                                     │
//!              │ migrate_set_parameter ─► params.set(name, value)   (Arc, any time)     │
//!              │                                                                       │
//!  waker() ───►│ each turn: while let Ok(req) = link.try_recv() { serve(req) }         │
//!              │            run a vCPU slice, then idle slice × p / (100 - p)          │
//!              │            where p = handle.cpu_throttle_percentage()                 │
//!              └───────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! A sketch of the source's event loop (`serve` does what [`link`] documents):
//!
//! ```text
//! let (mig, link) = OutgoingMigration::start(OutgoingSetup {
//!     uri, config, memory: machine.memory().clone(), params: params.clone(),
//!     waker: Box::new(move || poller.notify()),
//! }, &mut |name| fds.take(name))?;
//! loop {
//!     poll events (monitors, chardevs; the waker makes this return);
//!     while let Ok(req) = link.try_recv() {
//!         match req {
//!             VmRequest::EnableDirtyLog(r) => { mem.dirty_enable(Migration); r.send(()) }
//!             VmRequest::Harvest(r) => r.send(mem.dirty_take(Migration)),
//!             VmRequest::StopForCompletion(r) => {
//!                 stopped_for_migration = vm.is_running(); vm.stop(); drain_io();
//!                 r.send(Completion { dirty: mem.dirty_take(Migration),
//!                                     sections: machine.device_sections(),
//!                                     running: stopped_for_migration });
//!             }
//!             VmRequest::Finished { ok, reply } => {
//!                 mem.dirty_disable(Migration);
//!                 if !ok && stopped_for_migration { vm.cont() }
//!                 stopped_for_migration = false; reply.send(());
//!             }
//!             VmRequest::Event(e) => emit the QMP event,
//!             VmRequest::IncomingReady { .. } => unreachable on the source,
//!         }
//!     }
//!     run a slice unless stopped; sleep per the throttle percentage;
//! }
//! ```
//!
//! The destination is the same with [`IncomingMigration::listen`] and one request,
//! `IncomingReady`: load the sections, start the guest, reply.

mod converge;
pub mod error;
pub mod incoming;
pub mod link;
pub mod outgoing;
pub mod params;
pub mod ram;
pub mod rate;
mod run_state;
pub mod stats;
pub mod transport;
pub mod uri;

pub use converge::{MAX_THROTTLE_PPM, PPM};
pub use error::MigrationError;
pub use incoming::{IncomingMigration, IncomingSetup};
pub use link::{Completion, DeviceSection, MigrationEvent, Reply, VmLink, VmRequest, Waker};
pub use outgoing::{OutgoingMigration, OutgoingSetup};
pub use params::{MigrationParams, ParamError, ParamValues};
pub use ram::{RamLoader, RamSource};
pub use rate::{BandwidthEstimate, RateLimiter};
pub use run_state::{take_run_state, RunState};
pub use stats::{MigrationInfo, MigrationStatus, RamStats};
pub use transport::{Incoming, TransportError};
pub use uri::{MigrationUri, UriError};

/// Locks `m`, also after a thread panicked while holding it: the migration state it
/// guards stays meaningful (each field is written whole), and the migration must still
/// report and clean up.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
