//! The virtual machine as the monitor and the event loop see it: the board plus the
//! run state that belongs to the frontend (running or stopped, exit requested), and the
//! events that state changes produce for the JSON monitors.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use hw::PcMachine;

use crate::migrate::MigrationCtl;
use crate::snapshots::SnapshotStore;

/// Something monitors are told about without asking (QMP events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEvent {
    Stop,
    Resume,
    /// `guest`: the guest asked for it (not a monitor); `reason` as QEMU names it.
    Reset {
        guest: bool,
        reason: &'static str,
    },
    Shutdown {
        guest: bool,
        reason: &'static str,
    },
    /// A migration's new status (QMP `MIGRATION`).
    Migration(&'static str),
    /// A migration started RAM pass N (QMP `MIGRATION_PASS`).
    MigrationPass(u32),
    /// A job (QMP `snapshot-save` and friends) changed status (`JOB_STATUS_CHANGE`).
    Job {
        id: String,
        status: &'static str,
    },
}

/// The run state of a VM stopped by `stop` or `--paused`.
pub const PAUSED: &str = "paused";

/// A QMP job, kept until `job-dismiss` as QEMU keeps snapshot jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// `snapshot-save`, `snapshot-load` or `snapshot-delete`.
    pub kind: String,
    pub status: &'static str,
    pub error: Option<String>,
}

pub struct Vm {
    pub machine: PcMachine,
    running: bool,
    /// While stopped, QEMU's name for why (see [`Vm::status`]).
    stopped_state: &'static str,
    exit: Option<i32>,
    events: Vec<VmEvent>,
    pub snapshots: SnapshotStore,
    pub migration: MigrationCtl,
    /// Descriptors that came with the monitor message being handled (for `getfd`).
    pub offered_fds: Vec<OwnedFd>,
    pub jobs: Vec<Job>,
}

impl Vm {
    /// Wraps a freshly built machine; `paused` starts it stopped (`--paused`) with its
    /// clock frozen, so no timer interrupts pile up before the first `cont`.
    pub fn new(mut machine: PcMachine, paused: bool, snapshots: SnapshotStore) -> Self {
        if paused {
            machine.pause_clock();
        }
        Self {
            machine,
            running: !paused,
            stopped_state: PAUSED,
            exit: None,
            events: Vec::new(),
            snapshots,
            migration: MigrationCtl::new(Arc::new(|| {})),
            offered_fds: Vec::new(),
            jobs: Vec::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// QEMU's run state: `running`, or why the guest is stopped: `paused` (`stop`,
    /// `--paused`), `inmigrate` (waiting for an incoming migration), `finish-migrate` (the
    /// source's stop-and-copy), `postmigrate` (the source of a completed migration).
    /// Management tools tell a migrated-away guest from a paused one by it.
    pub fn status(&self) -> &'static str {
        if self.running {
            "running"
        } else {
            self.stopped_state
        }
    }

    /// Stops the vCPU and guest time (`stop`). Idempotent: a guest stopped for another
    /// reason keeps it, as in QEMU.
    pub fn stop(&mut self) {
        if self.running {
            self.stop_for(PAUSED);
        }
    }

    /// Stops the vCPU and guest time, or keeps them stopped, for the reason `state` (a
    /// [`Vm::status`] name).
    pub fn stop_for(&mut self, state: &'static str) {
        self.stopped_state = state;
        if self.running {
            self.running = false;
            self.machine.pause_clock();
            self.events.push(VmEvent::Stop);
        }
    }

    /// Lets the vCPU and guest time run again. Idempotent.
    pub fn cont(&mut self) {
        if !self.running {
            self.running = true;
            self.machine.resume_clock();
            self.events.push(VmEvent::Resume);
        }
    }

    /// Asks the event loop to end the process with `status` once the current event is
    /// handled.
    pub fn request_exit(&mut self, status: i32) {
        self.exit.get_or_insert(status);
    }

    pub fn exit_request(&self) -> Option<i32> {
        self.exit
    }

    /// Stops the vCPU and guest time for an operation on the whole machine (savevm,
    /// loadvm), without telling the monitors: the guest did not stop as far as they know.
    pub fn pause_quietly(&mut self) {
        if self.running {
            self.machine.pause_clock();
        }
    }

    /// Undoes [`Vm::pause_quietly`].
    pub fn resume_quietly(&mut self) {
        if self.running {
            self.machine.resume_clock();
        }
    }

    /// Runs `cmd` as a job with QEMU's life cycle (created, running, waiting, pending,
    /// concluded), reporting each step; the job's outcome is in `query-jobs`. Snapshot
    /// jobs complete before the command returns: the machine is stopped meanwhile anyway.
    pub fn run_job(
        &mut self,
        id: &str,
        kind: &str,
        cmd: crate::monitor::Command,
    ) -> Result<(), String> {
        if self.jobs.iter().any(|j| j.id == id) {
            return Err(format!("Job ID '{id}' already in use"));
        }
        self.jobs.push(Job {
            id: id.to_string(),
            kind: kind.to_string(),
            status: "created",
            error: None,
        });
        let step = |vm: &mut Vm, status: &'static str| {
            if let Some(j) = vm.jobs.iter_mut().find(|j| j.id == id) {
                j.status = status;
            }
            vm.event(VmEvent::Job {
                id: id.to_string(),
                status,
            });
        };
        step(self, "created");
        step(self, "running");
        let result = crate::monitor::execute(self, cmd);
        step(self, "waiting");
        step(self, "pending");
        if let (Err(e), Some(j)) = (result, self.jobs.iter_mut().find(|j| j.id == id)) {
            j.error = Some(e.to_string());
        }
        step(self, "concluded");
        Ok(())
    }

    pub fn dismiss_job(&mut self, id: &str) -> Result<(), String> {
        match self.jobs.iter().position(|j| j.id == id) {
            Some(i) if self.jobs[i].status == "concluded" => {
                self.jobs.remove(i);
                self.event(VmEvent::Job {
                    id: id.to_string(),
                    status: "null",
                });
                Ok(())
            }
            Some(_) => Err(format!(
                "Job '{id}' in state 'running' cannot accept command verb 'dismiss'"
            )),
            None => Err(format!("Job not found: {id}")),
        }
    }

    /// Sets how migration threads wake the thread that serves the VM.
    pub fn set_waker(&mut self, waker: Arc<dyn Fn() + Send + Sync>) {
        self.migration = MigrationCtl::new(waker);
    }

    /// Records an event for the monitors (the event loop delivers it).
    pub fn event(&mut self, e: VmEvent) {
        self.events.push(e);
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<VmEvent> {
        std::mem::take(&mut self.events)
    }
}
