//! Live migration on the frontend side: the monitor commands' state and the VM half of the
//! migration link.
//!
//! The migration threads (crate `migration`) never touch the machine. They ask, and this
//! module answers between two vCPU slices, in [`Vm::serve_migration`] (the event loop calls
//! it every turn; the threads wake the loop through its poller):
//!
//! ```text
//!  monitor: migrate tcp:H:P ──► MigrationCtl::start_outgoing ──► sender thread
//!                                                                  │ requests
//!  event loop turn: serve_migration ◄──────────────────────────────┘
//!     EnableDirtyLog  dirty_enable(Migration)
//!     Harvest         cpu.rearm_dirty_tracking(); dirty_take(Migration)
//!     StopForCompletion  stop (remember if running), last harvest, device sections
//!     Finished{ok}    dirty_disable; ok: stay stopped ("postmigrate"); else resume if we
//!                     stopped it
//!     IncomingReady   load devices all-or-nothing, then run the guest if it ran on the
//!                     source (unless `stop` came while it waited: `cont`/`stop` then
//!                     only set `autostart`)
//!     Event           QMP MIGRATION / MIGRATION_PASS
//! ```
//!
//! With auto-converge the sender publishes a throttle percentage; the event loop then idles
//! the vCPU for `slice_time * p / (100 - p)` after each slice.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use memory::DirtyClient;
use migration::{
    Completion, DeviceSection, IncomingMigration, IncomingSetup, MigrationEvent, MigrationInfo,
    MigrationParams, MigrationStatus, MigrationUri, OutgoingMigration, OutgoingSetup, VmLink,
    VmRequest, Waker,
};

use crate::vm::{Vm, VmEvent};

struct Outgoing {
    mig: OutgoingMigration,
    link: Option<VmLink>,
    /// This migration's stop-and-copy stopped a running guest.
    stopped_running: bool,
}

struct IncomingState {
    mig: IncomingMigration,
    link: Option<VmLink>,
}

/// Migration state of one VM: parameters, the current or last migration each way, and
/// the descriptors handed over with `getfd`.
pub struct MigrationCtl {
    pub params: Arc<MigrationParams>,
    outgoing: Option<Outgoing>,
    incoming: Option<IncomingState>,
    pub fds: HashMap<String, OwnedFd>,
    /// Whether the guest starts when an incoming migration has loaded. `stop` and `cont`
    /// on a destination that waits for its stream set this instead of running the guest,
    /// whose RAM is still being written (QEMU's `autostart`).
    pub autostart: bool,
    waker: Arc<dyn Fn() + Send + Sync>,
}

impl MigrationCtl {
    pub fn new(waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            params: Arc::new(MigrationParams::new()),
            outgoing: None,
            incoming: None,
            fds: HashMap::new(),
            autostart: true,
            waker,
        }
    }

    fn waker(&self) -> Waker {
        let w = self.waker.clone();
        Box::new(move || w())
    }

    /// An outgoing migration has started and not reached a final status.
    pub fn outgoing_active(&self) -> bool {
        self.outgoing
            .as_ref()
            .is_some_and(|o| !o.mig.status().is_final())
    }

    /// The destination is waiting for or loading a stream.
    pub fn incoming_active(&self) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|i| !i.mig.status().is_final())
    }

    /// `info migrate` / `query-migrate`: the outgoing migration if there was one, else
    /// the incoming one.
    pub fn info(&self) -> MigrationInfo {
        if let Some(o) = &self.outgoing {
            let mut i = o.mig.info();
            let t = o.mig.cpu_throttle_ppm();
            if t > 0 {
                i.cpu_throttle_percentage = Some(o.mig.cpu_throttle_percentage());
                i.cpu_throttle_ppm = Some(t);
            }
            i
        } else if let Some(i) = &self.incoming {
            i.mig.info()
        } else {
            MigrationInfo::default()
        }
    }

    pub fn incoming_status(&self) -> Option<(MigrationStatus, Option<String>)> {
        self.incoming
            .as_ref()
            .map(|i| (i.mig.status(), i.mig.error()))
    }

    /// Where the incoming side listens (a `tcp:...:0` resolved to its port).
    pub fn incoming_address(&self) -> Option<MigrationUri> {
        self.incoming
            .as_ref()
            .and_then(|i| i.mig.address().cloned())
    }

    /// The auto-converge throttle in parts per million of the vCPU's time
    /// ([`migration::PPM`]), 0 when there is none.
    pub fn throttle_ppm(&self) -> u32 {
        self.outgoing
            .as_ref()
            .filter(|o| !o.mig.status().is_final())
            .map_or(0, |o| o.mig.cpu_throttle_ppm())
    }

    pub fn cancel(&self) {
        if let Some(o) = &self.outgoing {
            o.mig.cancel();
        }
    }

    fn take_fd(&mut self, name: &str) -> Option<OwnedFd> {
        self.fds.remove(name)
    }
}

impl Vm {
    /// `migrate URI`: starts sending this VM.
    pub fn start_migration(&mut self, uri: &str) -> Result<(), String> {
        if self.migration.outgoing_active() {
            return Err("There's a migration process in progress".into());
        }
        if self.migration.incoming_active() {
            return Err("Guest is waiting for an incoming migration".into());
        }
        let uri = MigrationUri::parse(uri).map_err(|e| e.to_string())?;
        let setup = OutgoingSetup {
            uri,
            config: self.machine.state_config(),
            memory: self.machine.memory().clone(),
            params: self.migration.params.clone(),
            waker: self.migration.waker(),
        };
        let ctl = &mut self.migration;
        let mut fds = HashMap::new();
        std::mem::swap(&mut fds, &mut ctl.fds);
        let mut lookup = |n: &str| fds.remove(n);
        let started = OutgoingMigration::start(setup, &mut lookup);
        std::mem::swap(&mut fds, &mut ctl.fds);
        let (mig, link) = started.map_err(|e| e.to_string())?;
        ctl.outgoing = Some(Outgoing {
            mig,
            link: Some(link),
            stopped_running: false,
        });
        Ok(())
    }

    /// `--incoming URI` / `migrate_incoming URI`: waits for a stream. The guest must not
    /// run meanwhile; it starts when the stream has loaded and verified.
    pub fn start_incoming(&mut self, uri: &str) -> Result<(), String> {
        if self.migration.incoming_active() || self.migration.outgoing_active() {
            return Err("a migration is already in progress".into());
        }
        let uri = MigrationUri::parse(uri).map_err(|e| e.to_string())?;
        let setup = IncomingSetup {
            config: self.machine.state_config(),
            memory: self.machine.memory().clone(),
            waker: self.migration.waker(),
        };
        let ctl = &mut self.migration;
        let mut lookup = |n: &str| ctl.take_fd(n);
        let (mig, link) =
            IncomingMigration::listen(&uri, &mut lookup, setup).map_err(|e| e.to_string())?;
        self.migration.incoming = Some(IncomingState {
            mig,
            link: Some(link),
        });
        self.stop_for("inmigrate");
        if let Some(a) = self.migration.incoming_address() {
            log::info!("waiting for an incoming migration on {a}");
        }
        Ok(())
    }

    /// Answers every request the migration threads have made. Called between slices.
    pub fn serve_migration(&mut self) {
        while let Some(req) = next_request(self.migration.outgoing.as_mut().map(|o| &mut o.link)) {
            self.serve_outgoing(req);
        }
        while let Some(req) = next_request(self.migration.incoming.as_mut().map(|i| &mut i.link)) {
            self.serve_incoming(req);
        }
    }

    fn serve_outgoing(&mut self, req: VmRequest) {
        let mem = self.machine.memory().clone();
        match req {
            VmRequest::EnableDirtyLog(r) => {
                // Enabling moves the dirty epoch: the vCPU drops its TLB write entries
                // before its next block, so no store escapes the new log.
                mem.dirty_enable(DirtyClient::Migration);
                r.send(());
            }
            VmRequest::Harvest(r) => {
                self.machine.cpu.rearm_dirty_tracking();
                r.send(mem.dirty_take(DirtyClient::Migration));
            }
            VmRequest::StopForCompletion(r) => {
                let was_running = self.is_running();
                self.stop_for("finish-migrate");
                if let Some(o) = self.migration.outgoing.as_mut() {
                    o.stopped_running = was_running;
                }
                // Device I/O completes synchronously in this machine: nothing is in
                // flight once the vCPU is stopped between slices.
                self.machine.cpu.rearm_dirty_tracking();
                let dirty = mem.dirty_take(DirtyClient::Migration);
                let sections = self
                    .machine
                    .device_states()
                    .into_iter()
                    .map(|d| DeviceSection {
                        name: d.name.to_string(),
                        instance: d.instance,
                        version: d.version,
                        state: d.state,
                    })
                    .collect();
                r.send(Completion {
                    dirty,
                    sections,
                    running: was_running,
                });
            }
            VmRequest::Finished { ok, reply } => {
                mem.dirty_disable(DirtyClient::Migration);
                let resume = self
                    .migration
                    .outgoing
                    .as_ref()
                    .is_some_and(|o| o.stopped_running);
                if ok {
                    self.stop_for("postmigrate");
                } else if resume {
                    self.cont();
                } else if !self.is_running() {
                    // Stopped before the migration began: stopped as before.
                    self.stop_for(crate::vm::PAUSED);
                }
                reply.send(());
            }
            VmRequest::IncomingReady { reply, .. } => {
                reply.send(Err("not an incoming migration".into()));
            }
            VmRequest::Event(e) => self.migration_event(e),
        }
    }

    fn serve_incoming(&mut self, req: VmRequest) {
        match req {
            VmRequest::IncomingReady { mut stream, reply } => {
                // A guest paused on the source arrives paused, as in QEMU.
                let ran = match migration::take_run_state(&mut stream) {
                    Ok(ran) => ran.unwrap_or(true),
                    Err(e) => {
                        log::error!("incoming migration: {e}");
                        reply.send(Err(e.to_string()));
                        return;
                    }
                };
                match self.machine.load_devices(&stream) {
                    Ok(()) => {
                        reply.send(Ok(()));
                        if !ran {
                            log::info!(
                                "incoming migration loaded; the guest was paused on the source \
                                 and stays paused"
                            );
                            self.stop_for(crate::vm::PAUSED);
                        } else if self.migration.autostart {
                            log::info!("incoming migration loaded; running the guest");
                            self.cont();
                        } else {
                            log::info!("incoming migration loaded; the guest stays stopped");
                            self.stop_for(crate::vm::PAUSED);
                        }
                    }
                    Err(e) => {
                        log::error!("incoming migration: {e}");
                        reply.send(Err(e.to_string()));
                    }
                }
            }
            VmRequest::Event(e) => self.migration_event(e),
            // The receiving side never asks for these; dropping the reply tells it no.
            VmRequest::EnableDirtyLog(_)
            | VmRequest::Harvest(_)
            | VmRequest::Finished { .. }
            | VmRequest::StopForCompletion(_) => {}
        }
    }

    fn migration_event(&mut self, e: MigrationEvent) {
        match e {
            MigrationEvent::Status(s) => self.event(VmEvent::Migration(s.as_str())),
            MigrationEvent::Pass(p) => self.event(VmEvent::MigrationPass(p)),
        }
    }
}

/// The next request on a link, if any; a link whose migration thread has ended is
/// dropped.
fn next_request(link: Option<&mut Option<VmLink>>) -> Option<VmRequest> {
    let slot = link?;
    match slot.as_ref()?.try_recv() {
        Ok(r) => Some(r),
        Err(std::sync::mpsc::TryRecvError::Empty) => None,
        Err(std::sync::mpsc::TryRecvError::Disconnected) => {
            *slot = None;
            None
        }
    }
}
