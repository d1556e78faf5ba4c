//! The virtual clock: the single source of time for every device.
//!
//! Devices never look at the host clock; they are handed `now_ns`, the virtual nanoseconds
//! since machine start, and compute their own deadlines from it. This module decides what
//! `now_ns` means:
//!
//! * [`ClockMode::Realtime`]: guest time follows host time (`std::time::Instant`), minus
//!   every interval spent paused, so a stopped machine does not find a burst of overdue
//!   timer interrupts when it is resumed.
//! * [`ClockMode::Deterministic`]: guest time is a pure function of the instruction count
//!   (`ns_per_insn` each), plus explicit jumps when the CPU halts ([`VirtualClock::skip_to`]
//!   the next device deadline). Two runs of the same guest see identical timing, which is
//!   what record/replay-free debugging and reproducible tests need.
//!
//! The guest-visible part of the clock is [`ClockState`] (mode and current time); a
//! restored realtime clock continues from the saved time, not from the host's.

use std::time::{Duration, Instant};

use thiserror::Error;

/// `ClockState::mode` tag for [`ClockMode::Realtime`].
pub const CLOCK_MODE_REALTIME: u8 = 0;
/// `ClockState::mode` tag for [`ClockMode::Deterministic`].
pub const CLOCK_MODE_DETERMINISTIC: u8 = 1;

/// Nanoseconds per instruction of a deterministic clock unless the machine is told
/// otherwise: a virtual 200 MIPS, near what the interpreter reaches on common hosts, so
/// guest time in a compute-bound deterministic run passes at roughly the speed of the
/// host's wall clock.
pub const DEFAULT_NS_PER_INSN: u64 = 5;

/// How virtual time advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// Follow the host's monotonic clock while the machine runs.
    Realtime,
    /// Advance by `ns_per_insn` for every retired instruction; jump on halt.
    Deterministic { ns_per_insn: u64 },
}

/// Saved form of a [`VirtualClock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockState {
    /// [`CLOCK_MODE_REALTIME`] or [`CLOCK_MODE_DETERMINISTIC`].
    pub mode: u8,
    /// Virtual nanoseconds since machine start.
    pub ns: u64,
    /// Nanoseconds per instruction in deterministic mode; 0 in realtime mode.
    pub ns_per_insn: u64,
}

/// A [`ClockState`] that cannot describe a clock.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ClockStateError {
    #[error("unknown clock mode tag {0}")]
    BadMode(u8),
    #[error("deterministic clock needs a non-zero ns_per_insn")]
    ZeroNsPerInsn,
    #[error("realtime clock state carries ns_per_insn {0}, expected 0")]
    StrayNsPerInsn(u64),
}

/// The machine's virtual clock. See the module documentation.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    mode: ClockMode,
    /// Deterministic: the current time. Realtime: the time accumulated up to `running_since`
    /// (or up to the pause, while paused).
    base_ns: u64,
    /// Realtime only: the host instant at which the clock last started running; `None`
    /// while paused.
    running_since: Option<Instant>,
}

impl VirtualClock {
    /// A clock at time 0. A realtime clock starts running immediately.
    pub fn new(mode: ClockMode) -> Self {
        Self::with_time(mode, 0)
    }

    fn with_time(mode: ClockMode, ns: u64) -> Self {
        let running_since = match mode {
            ClockMode::Realtime => Some(Instant::now()),
            ClockMode::Deterministic { .. } => None,
        };
        VirtualClock {
            mode,
            base_ns: ns,
            running_since,
        }
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Virtual nanoseconds since machine start. Never decreases.
    pub fn now_ns(&self) -> u64 {
        match (self.mode, self.running_since) {
            (ClockMode::Realtime, Some(since)) => {
                let elapsed = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.base_ns.saturating_add(elapsed)
            }
            _ => self.base_ns,
        }
    }

    /// Account for `n` retired instructions. Only deterministic time depends on them.
    pub fn advance_insns(&mut self, n: u64) {
        if let ClockMode::Deterministic { ns_per_insn } = self.mode {
            self.base_ns = self.base_ns.saturating_add(n.saturating_mul(ns_per_insn));
        }
    }

    /// The CPU is halted until `deadline_ns`: deterministic time jumps there at once (never
    /// backwards). Realtime time cannot be skipped; the caller sleeps instead, for
    /// [`VirtualClock::host_delay_until`].
    pub fn skip_to(&mut self, deadline_ns: u64) {
        if let ClockMode::Deterministic { .. } = self.mode {
            self.base_ns = self.base_ns.max(deadline_ns);
        }
    }

    /// How long the host must wait for virtual time to reach `deadline_ns`: `Some` only for a
    /// running realtime clock (zero if already reached). A deterministic or paused clock
    /// does not move by waiting, so there is nothing to sleep for.
    pub fn host_delay_until(&self, deadline_ns: u64) -> Option<Duration> {
        match (self.mode, self.running_since) {
            (ClockMode::Realtime, Some(_)) => Some(Duration::from_nanos(
                deadline_ns.saturating_sub(self.now_ns()),
            )),
            _ => None,
        }
    }

    /// Stop realtime guest time (machine stopped, debugger attached, state being saved).
    /// Idempotent; no effect on a deterministic clock, which only moves with instructions.
    pub fn pause(&mut self) {
        if self.running_since.is_some() {
            self.base_ns = self.now_ns();
            self.running_since = None;
        }
    }

    /// Let realtime guest time run again from where it was paused. Idempotent.
    pub fn resume(&mut self) {
        if self.mode == ClockMode::Realtime && self.running_since.is_none() {
            self.running_since = Some(Instant::now());
        }
    }

    /// True while a realtime clock is paused.
    pub fn is_paused(&self) -> bool {
        self.mode == ClockMode::Realtime && self.running_since.is_none()
    }

    pub fn state(&self) -> ClockState {
        match self.mode {
            ClockMode::Realtime => ClockState {
                mode: CLOCK_MODE_REALTIME,
                ns: self.now_ns(),
                ns_per_insn: 0,
            },
            ClockMode::Deterministic { ns_per_insn } => ClockState {
                mode: CLOCK_MODE_DETERMINISTIC,
                ns: self.base_ns,
                ns_per_insn,
            },
        }
    }

    /// Rebuild a clock from saved state. A realtime clock comes back running, continuing
    /// from the saved virtual time.
    pub fn from_state(state: &ClockState) -> Result<Self, ClockStateError> {
        let mode = match state.mode {
            CLOCK_MODE_REALTIME => {
                if state.ns_per_insn != 0 {
                    return Err(ClockStateError::StrayNsPerInsn(state.ns_per_insn));
                }
                ClockMode::Realtime
            }
            CLOCK_MODE_DETERMINISTIC => {
                if state.ns_per_insn == 0 {
                    return Err(ClockStateError::ZeroNsPerInsn);
                }
                ClockMode::Deterministic {
                    ns_per_insn: state.ns_per_insn,
                }
            }
            other => return Err(ClockStateError::BadMode(other)),
        };
        Ok(Self::with_time(mode, state.ns))
    }

    /// Like [`VirtualClock::from_state`], but a realtime clock comes back paused at exactly
    /// the saved time: for a stopped machine loading state, whose clock must not move
    /// before the machine resumes it.
    pub fn from_state_paused(state: &ClockState) -> Result<Self, ClockStateError> {
        let mut c = Self::from_state(state)?;
        c.base_ns = state.ns;
        c.running_since = None;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::sleep;

    #[test]
    fn deterministic_counts_instructions() {
        let mut c = VirtualClock::new(ClockMode::Deterministic { ns_per_insn: 3 });
        assert_eq!(c.now_ns(), 0);
        c.advance_insns(10);
        assert_eq!(c.now_ns(), 30);
        // Host time passing changes nothing.
        sleep(Duration::from_millis(2));
        assert_eq!(c.now_ns(), 30);
        // Pause/resume are meaningless here and must not disturb time.
        c.pause();
        assert!(!c.is_paused());
        c.advance_insns(1);
        c.resume();
        assert_eq!(c.now_ns(), 33);
        assert_eq!(c.host_delay_until(1000), None);
    }

    #[test]
    fn deterministic_skip_to_only_moves_forward() {
        let mut c = VirtualClock::new(ClockMode::Deterministic { ns_per_insn: 1 });
        c.advance_insns(500);
        c.skip_to(100);
        assert_eq!(c.now_ns(), 500);
        c.skip_to(1_000_000);
        assert_eq!(c.now_ns(), 1_000_000);
        c.advance_insns(u64::MAX);
        assert_eq!(c.now_ns(), u64::MAX, "time saturates instead of wrapping");
    }

    #[test]
    fn realtime_follows_host_and_ignores_instructions() {
        let mut c = VirtualClock::new(ClockMode::Realtime);
        let t0 = c.now_ns();
        c.advance_insns(1_000_000_000);
        c.skip_to(u64::MAX);
        sleep(Duration::from_millis(5));
        let t1 = c.now_ns();
        assert!(t1 >= t0 + 5_000_000, "t0={t0} t1={t1}");
        assert!(
            t1 < 10_000_000_000,
            "instructions and skip_to must not move realtime"
        );
        let d = c.host_delay_until(t1 + 1_000_000_000).unwrap();
        assert!(d <= Duration::from_secs(1) && d > Duration::from_millis(900));
        assert_eq!(c.host_delay_until(0), Some(Duration::ZERO));
    }

    #[test]
    fn realtime_pause_stops_guest_time() {
        let mut c = VirtualClock::new(ClockMode::Realtime);
        sleep(Duration::from_millis(1));
        c.pause();
        assert!(c.is_paused());
        let paused_at = c.now_ns();
        sleep(Duration::from_millis(20));
        assert_eq!(c.now_ns(), paused_at);
        assert_eq!(c.host_delay_until(paused_at + 1), None);
        c.resume();
        assert!(!c.is_paused());
        let after = c.now_ns();
        assert!(after >= paused_at);
        assert!(
            after - paused_at < 15_000_000,
            "the 20 ms pause leaked into guest time: {}",
            after - paused_at
        );
    }

    #[test]
    fn state_round_trip() {
        let mut c = VirtualClock::new(ClockMode::Deterministic { ns_per_insn: 7 });
        c.advance_insns(1234);
        let s = c.state();
        assert_eq!(
            s,
            ClockState {
                mode: CLOCK_MODE_DETERMINISTIC,
                ns: 8638,
                ns_per_insn: 7
            }
        );
        let c2 = VirtualClock::from_state(&s).unwrap();
        assert_eq!(c2.state(), s);
        assert_eq!(c2.mode(), ClockMode::Deterministic { ns_per_insn: 7 });

        let mut r = VirtualClock::new(ClockMode::Realtime);
        r.pause();
        let rs = ClockState {
            mode: CLOCK_MODE_REALTIME,
            ns: 5_000_000_000,
            ns_per_insn: 0,
        };
        let r2 = VirtualClock::from_state(&rs).unwrap();
        assert!(
            r2.now_ns() >= 5_000_000_000,
            "restored realtime resumes from saved ns"
        );
        assert_eq!(r2.state().mode, CLOCK_MODE_REALTIME);
        assert_eq!(r.state().ns_per_insn, 0);
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let bad_mode = ClockState {
            mode: 9,
            ns: 0,
            ns_per_insn: 0,
        };
        assert_eq!(
            VirtualClock::from_state(&bad_mode).unwrap_err(),
            ClockStateError::BadMode(9)
        );
        let zero = ClockState {
            mode: CLOCK_MODE_DETERMINISTIC,
            ns: 0,
            ns_per_insn: 0,
        };
        assert_eq!(
            VirtualClock::from_state(&zero).unwrap_err(),
            ClockStateError::ZeroNsPerInsn
        );
        let stray = ClockState {
            mode: CLOCK_MODE_REALTIME,
            ns: 0,
            ns_per_insn: 4,
        };
        assert_eq!(
            VirtualClock::from_state(&stray).unwrap_err(),
            ClockStateError::StrayNsPerInsn(4)
        );
    }
}
