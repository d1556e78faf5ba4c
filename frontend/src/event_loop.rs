//! The main loop: the vCPU and every host source on one thread.
//!
//! Each turn polls the host sources, handles what is ready (monitor lines, serial input,
//! new connections), then runs the vCPU for one slice and
//! writes the guest's output. How long the poll may sleep is what keeps an idle guest
//! from costing host CPU:
//!
//! * running: zero timeout, so host input is looked at between slices but never waited
//!   for (slices are sized to about a millisecond of host time);
//! * halted (`HLT` with nothing pending): sleep until the next timer deadline the board
//!   reports, converted to host time by the clock, or until input arrives; with no timer
//!   armed, until input;
//! * stopped (`stop`, `--paused`): sleep until input.
//!
//! Any handled event or delivered serial byte ends the halted wait early, since it may
//! have raised an interrupt, and the next slice finds out.
//!
//! With a deterministic clock (`--clock deterministic`) the slice length only decides how
//! often the loop looks at the host: the board ends its CPU slices at device deadlines and
//! timer accesses by the instruction count, and skips halts ahead to the next deadline
//! itself, so no host timing reaches the guest. It reports a halt only when no timer is
//! armed, and then the loop waits for input as in realtime mode. Input (serial bytes,
//! monitor commands) still reaches the machine between slices, whenever the host delivers
//! it: a run is repeatable for guests that take no input, or the same input at the same
//! instruction counts.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hw::RunEvent;

use crate::chardev::{bind_unix, Serial, SerialOut, Sink};
use crate::monitor::server::Monitors;
use crate::options::{DebugconSpec, MonitorSpec, SerialSpec};
use crate::registry::{Io, Ready, Registry};
use crate::vm::{Vm, VmEvent};

/// Instructions in the first vCPU slice. Slices then adapt so that each takes about
/// [`SLICE_TARGET`] of host time: with a realtime clock the board raises timer interrupts
/// at slice boundaries, so the slice length is the guest's interrupt latency, and it is
/// also how long a monitor line waits. A fixed count would make both depend on how fast
/// the host (and the build) interprets.
const SLICE_START: u64 = 20_000;
/// Small, because a string instruction counts once however many elements it moves: a
/// guest filling memory with `rep stosd` does megabytes in a thousand instructions, and
/// at a floor of ten thousand monitor replies waited 4-11 ms (now under 1 ms).
const SLICE_MIN: u64 = 1_000;
const SLICE_MAX: u64 = 2_000_000;
const SLICE_TARGET: Duration = Duration::from_millis(1);
/// Longest wait a throttled vCPU makes at once: monitors and the migration thread are
/// served in between.
const THROTTLE_PAUSE: Duration = Duration::from_millis(20);
/// A throttle (in parts per million) from which the vCPU runs minimal slices.
const THROTTLE_SHORT_SLICES: u64 = 990_000;

/// What a registered source is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Goes to the monitor if one is on stdio, else to the serial port.
    Stdin,
    SerialListener,
    SerialClient,
    MonitorListener,
    MonitorClient,
    QmpListener,
    QmpClient,
}

/// The host side of the machine's devices, as chosen on the command line.
pub struct Backends {
    pub serial: SerialSpec,
    pub debugcon: DebugconSpec,
    pub monitors: Vec<MonitorSpec>,
    /// JSON (QMP) monitors.
    pub qmp: Vec<MonitorSpec>,
    /// `--incoming URI`: wait for a migration stream before running.
    pub incoming: Option<String>,
    /// `--digest-on-exit`: print the machine digest on stderr when tern ends.
    pub digest_on_exit: bool,
}

pub struct EventLoop {
    reg: Registry<Role>,
    vm: Vm,
    serial: Serial,
    debugcon: Sink,
    monitors: Monitors,
    stdin_to_monitor: bool,
    /// Unix socket files to remove on exit.
    socket_paths: Vec<std::path::PathBuf>,
    digest_on_exit: bool,
}

impl EventLoop {
    /// Opens every backend: files are created, sockets bound and listening.
    pub fn new(mut vm: Vm, b: Backends) -> Result<Self> {
        let mut reg = Registry::new().context("cannot create the event poller")?;
        // Migration threads wake the loop through the poller.
        let poller = reg.notifier();
        vm.set_waker(std::sync::Arc::new(move || {
            let _ = poller.notify();
        }));
        if let Some(uri) = &b.incoming {
            vm.start_incoming(uri)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("cannot wait for a migration on {uri}"))?;
        }
        let mut socket_paths = Vec::new();
        let stdio_monitors = b
            .monitors
            .iter()
            .chain(&b.qmp)
            .filter(|m| **m == MonitorSpec::Stdio)
            .count();
        if stdio_monitors > 1 {
            anyhow::bail!("only one monitor can use stdio");
        }
        let stdin_qmp = b.qmp.contains(&MonitorSpec::Stdio);
        let stdin_to_monitor = stdio_monitors == 1;
        let stdin_key = if stdin_to_monitor || b.serial == SerialSpec::Stdio {
            // Stdin is read through its own unbuffered descriptor, so that what the poller
            // reports and what a read returns agree (std's `Stdin` buffers).
            let fd = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot duplicate stdin")?;
            Some(
                reg.add(Io::Stdin(fd.into()), Role::Stdin)
                    .context("cannot watch stdin")?,
            )
        } else {
            None
        };

        let (out, listener) = match &b.serial {
            SerialSpec::Stdio => (SerialOut::Sink(Sink::Stdout), None),
            SerialSpec::None => (SerialOut::Sink(Sink::Null), None),
            SerialSpec::File(p) => {
                let s = Sink::file(p)
                    .with_context(|| format!("cannot create serial output file {}", p.display()))?;
                (SerialOut::Sink(s), None)
            }
            SerialSpec::Unix(p) => {
                let io = bind_unix(p)
                    .with_context(|| format!("cannot listen on serial socket {}", p.display()))?;
                socket_paths.push(p.clone());
                (SerialOut::Socket, Some(reg.add(io, Role::SerialListener)?))
            }
        };
        let serial_stdin = if stdin_to_monitor { None } else { stdin_key };
        let serial = Serial::new(out, listener, serial_stdin);

        let debugcon = match &b.debugcon {
            DebugconSpec::Stdio => Sink::Stdout,
            DebugconSpec::None => Sink::Null,
            DebugconSpec::File(p) => Sink::file(p)
                .with_context(|| format!("cannot create debugcon output file {}", p.display()))?,
        };

        let mut monitors = Monitors::default();
        let specs = b.monitors.iter().map(|m| (m, Role::MonitorListener));
        for (m, role) in specs.chain(b.qmp.iter().map(|m| (m, Role::QmpListener))) {
            let what = if role == Role::QmpListener {
                "QMP"
            } else {
                "monitor"
            };
            match m {
                MonitorSpec::Stdio => {}
                MonitorSpec::Unix(p) => {
                    let io = bind_unix(p).with_context(|| {
                        format!("cannot listen on {what} socket {}", p.display())
                    })?;
                    socket_paths.push(p.clone());
                    reg.add(io, role)?;
                }
                MonitorSpec::Tcp(a) => {
                    let l = TcpListener::bind(a)
                        .with_context(|| format!("cannot listen on {what} address {a}"))?;
                    l.set_nonblocking(true)?;
                    log::info!("{what} listening on tcp:{}", l.local_addr()?);
                    reg.add(Io::TcpListener(l), role)?;
                }
            }
        }
        if let (true, Some(k)) = (stdin_to_monitor, stdin_key) {
            monitors.open(&mut reg, k, true, stdin_qmp);
        }
        Ok(Self {
            reg,
            vm,
            serial,
            debugcon,
            monitors,
            stdin_to_monitor,
            socket_paths,
            digest_on_exit: b.digest_on_exit,
        })
    }

    /// Runs until the guest or a monitor ends the session; returns the exit status.
    pub fn run(mut self) -> Result<i32> {
        // Where the last slice left the CPU: `Some(deadline)` while halted.
        let mut halted: Option<Option<u64>> = None;
        let mut slice = SLICE_START;
        // Auto-converge: host time the vCPU still owes for the time it ran.
        let mut throttle_debt = Duration::ZERO;
        loop {
            if self.serial.deliver(&mut self.reg, &mut self.vm) {
                halted = None;
            }
            let timeout = if !self.vm.is_running() {
                None
            } else {
                match halted {
                    None => Some(Duration::ZERO),
                    Some(None) => None,
                    // A deterministic clock does not move by waiting (the board skips
                    // ahead itself): look at the host and run on.
                    Some(Some(deadline)) => Some(
                        self.vm
                            .machine
                            .board
                            .clock
                            .host_delay_until(deadline)
                            .unwrap_or(Duration::ZERO),
                    ),
                }
            };
            // A throttled vCPU pays its debt here, where host events still wake the loop.
            let timeout = if throttle_debt.is_zero() || !self.vm.is_running() {
                timeout
            } else {
                let pay = throttle_debt.min(THROTTLE_PAUSE);
                Some(timeout.map_or(pay, |t| t.max(pay)))
            };
            let waited_from = Instant::now();
            let ready = self.reg.wait(timeout).context("waiting for host events")?;
            throttle_debt = throttle_debt.saturating_sub(waited_from.elapsed());
            if !ready.is_empty() {
                halted = None;
            }
            for r in ready {
                self.dispatch(r);
                if self.vm.exit_request().is_some() {
                    break;
                }
            }
            self.vm.serve_migration();
            self.after_migration_events();
            self.deliver_events();
            if let Some(status) = self.vm.exit_request() {
                return Ok(self.finish(status));
            }
            if !self.vm.is_running() {
                continue;
            }
            // Auto-converge: the vCPU gives up that share of its time, so the guest
            // dirties less.
            let throttle = u64::from(self.vm.migration.throttle_ppm());
            if throttle == 0 {
                throttle_debt = Duration::ZERO;
            } else if !throttle_debt.is_zero() {
                continue;
            } else if throttle >= THROTTLE_SHORT_SLICES {
                // Short slices, so the guest moves in small steps rather than in a
                // burst followed by a long sleep.
                slice = SLICE_MIN;
            }
            let started = Instant::now();
            let event = self.vm.machine.run(slice);
            let took = started.elapsed();
            if throttle > 0 {
                let ppm = u64::from(migration::PPM);
                throttle_debt += took.mul_f64(throttle as f64 / (ppm - throttle) as f64);
            }
            if took > SLICE_TARGET * 2 {
                slice = (slice / 2).max(SLICE_MIN);
            } else if took < SLICE_TARGET / 2 && event == RunEvent::Ran {
                // Only a slice that used its whole budget says the budget was too small.
                slice = (slice * 2).min(SLICE_MAX);
            }
            halted = match event {
                RunEvent::Ran => None,
                RunEvent::Halted { deadline_ns } => Some(deadline_ns),
                RunEvent::Exit(status) => {
                    log::info!("guest requested exit with status {status}");
                    self.vm.request_exit(status);
                    None
                }
                RunEvent::Reset => {
                    log::info!("guest reset");
                    self.vm.event(VmEvent::Reset {
                        guest: true,
                        reason: "guest-reset",
                    });
                    None
                }
                RunEvent::Shutdown => {
                    log::info!("guest shut down (--no-reboot)");
                    self.vm.event(VmEvent::Shutdown {
                        guest: true,
                        reason: "guest-reset",
                    });
                    self.vm.request_exit(0);
                    None
                }
            };
            self.drain_output();
            self.deliver_events();
            if let Some(status) = self.vm.exit_request() {
                return Ok(self.finish(status));
            }
        }
    }

    fn dispatch(&mut self, r: Ready) {
        let Some(role) = self.reg.role(r.key) else {
            // Removed by an earlier event in the same batch.
            return;
        };
        match role {
            Role::Stdin if self.stdin_to_monitor => {
                self.monitors
                    .ready(&mut self.reg, r.key, r.readable, r.writable, &mut self.vm)
            }
            Role::Stdin | Role::SerialClient => {
                self.serial
                    .ready(&mut self.reg, r.key, r.readable, r.writable)
            }
            Role::SerialListener => self.serial.accept(&mut self.reg, Role::SerialClient),
            Role::MonitorListener => {
                self.monitors
                    .accept(&mut self.reg, r.key, Role::MonitorClient, false)
            }
            Role::QmpListener => self
                .monitors
                .accept(&mut self.reg, r.key, Role::QmpClient, true),
            Role::MonitorClient | Role::QmpClient => {
                self.monitors
                    .ready(&mut self.reg, r.key, r.readable, r.writable, &mut self.vm)
            }
        }
    }

    /// Tells the QMP monitors what happened to the VM.
    fn deliver_events(&mut self) {
        let events = self.vm.take_events();
        self.monitors.broadcast(&mut self.reg, &events);
    }

    fn drain_output(&mut self) {
        let out = self.vm.machine.take_serial_output();
        self.serial.output(&mut self.reg, &out);
        let dbg = self.vm.machine.take_debugcon_output();
        self.debugcon.write(&dbg, "debugcon");
    }

    /// Sends what can still be sent and releases the sockets.
    /// What a migration's end means for the process: an incoming migration that failed
    /// leaves nothing to run, so tern ends with an error status.
    fn after_migration_events(&mut self) {
        self.monitors.migration_progress(&mut self.reg, &self.vm);
        self.monitors.resume_held(&mut self.reg, &mut self.vm);
        if let Some((migration::MigrationStatus::Failed, err)) = self.vm.migration.incoming_status()
        {
            eprintln!(
                "tern: incoming migration failed: {}",
                err.unwrap_or_else(|| "unknown error".into())
            );
            self.vm.request_exit(crate::ERROR_STATUS);
        }
    }

    fn finish(mut self, status: i32) -> i32 {
        self.drain_output();
        self.deliver_events();
        if self.digest_on_exit {
            eprintln!("digest: {}", hw::snapshot::hex(&self.vm.machine.digest()));
        }
        self.monitors.flush_all(&mut self.reg);
        for p in &self.socket_paths {
            let _ = std::fs::remove_file(p);
        }
        status
    }
}
