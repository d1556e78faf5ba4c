//! The virtual machine as the monitor and the event loop see it: the board plus the
//! run state that belongs to the frontend (running or stopped, exit requested), and the
//! events that state changes produce for the JSON monitors.

use hw::PcMachine;

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
}

pub struct Vm {
    pub machine: PcMachine,
    running: bool,
    exit: Option<i32>,
    events: Vec<VmEvent>,
}

impl Vm {
    /// Wraps a freshly built machine; `paused` starts it stopped (`--paused`) with its
    /// clock frozen, so no timer interrupts pile up before the first `cont`.
    pub fn new(mut machine: PcMachine, paused: bool) -> Self {
        if paused {
            machine.pause_clock();
        }
        Self {
            machine,
            running: !paused,
            exit: None,
            events: Vec::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the vCPU and guest time. Idempotent.
    pub fn stop(&mut self) {
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

    /// Records an event for the monitors (the event loop delivers it).
    pub fn event(&mut self, e: VmEvent) {
        self.events.push(e);
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<VmEvent> {
        std::mem::take(&mut self.events)
    }
}
