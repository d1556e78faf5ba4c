//! Section `clock`: the virtual clock's mode and current time.
//!
//! ```text
//!  version 1: mode u8 (0 realtime, 1 deterministic) │ ns u64 │ ns_per_insn u64
//! ```
//! A realtime clock continues from the saved virtual time, not from the host's. A clock
//! that was paused when the state is loaded stays paused: the machine is stopped while it
//! loads and resumes its clock itself.

use savevm::{Decoder, Encoder, VmState};

use crate::clock::{ClockState, VirtualClock};

impl VmState for VirtualClock {
    const NAME: &'static str = "clock";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        enc.u8(s.mode);
        enc.u64(s.ns);
        enc.u64(s.ns_per_insn);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = ClockState {
            mode: dec.u8("mode")?,
            ns: dec.u64("ns")?,
            ns_per_insn: dec.u64("ns_per_insn")?,
        };
        dec.finish()?;
        let new = if self.is_paused() {
            VirtualClock::from_state_paused(&state)
        } else {
            VirtualClock::from_state(&state)
        };
        *self = new.map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::{Encoder, Error};

    use super::*;
    use crate::clock::ClockMode;

    fn deterministic(ns_per_insn: u64, insns: u64) -> VirtualClock {
        let mut c = VirtualClock::new(ClockMode::Deterministic { ns_per_insn });
        c.advance_insns(insns);
        c
    }

    #[test]
    fn conformance() {
        // Realtime time moves while the test runs, so the byte-exact checks use
        // deterministic clocks; realtime loading is checked below.
        check_state(&deterministic(3, 1_000_000_007), &deterministic(1, 5));
    }

    #[test]
    fn realtime_continues_from_the_saved_time() {
        let mut saved = VirtualClock::new(ClockMode::Realtime);
        saved.pause();
        let then = saved.now_ns();
        let mut target = VirtualClock::new(ClockMode::Realtime);
        target.pause();
        load_encoded(&mut target, &encode(&deterministic(7, 1 << 40))).unwrap();
        assert_eq!(target.mode(), ClockMode::Deterministic { ns_per_insn: 7 });
        load_encoded(&mut target, &encode(&saved)).unwrap();
        assert_eq!(target.mode(), ClockMode::Realtime);
        assert!(target.now_ns() >= then);
        let mut running = deterministic(1, 0);
        load_encoded(&mut running, &encode(&saved)).unwrap();
        assert!(!running.is_paused());
        assert!(running.now_ns() >= then);
    }

    #[test]
    fn a_paused_target_stays_paused() {
        let mut target = VirtualClock::new(ClockMode::Realtime);
        target.pause();
        let mut source = VirtualClock::new(ClockMode::Realtime);
        source.pause();
        std::thread::sleep(std::time::Duration::from_millis(2));
        load_encoded(&mut target, &encode(&source)).unwrap();
        assert!(target.is_paused());
        // Not a nanosecond later: time does not run between building and pausing.
        assert_eq!(target.state(), source.state());
    }

    #[test]
    fn bad_modes_are_refused() {
        for (mode, npi) in [(2u8, 1u64), (0, 5), (1, 0)] {
            let mut enc = Encoder::new();
            enc.u8(mode);
            enc.u64(10);
            enc.u64(npi);
            let mut c = deterministic(2, 3);
            assert!(
                matches!(load_encoded(&mut c, &enc), Err(Error::Invalid { .. })),
                "mode {mode} ns_per_insn {npi}"
            );
            assert_eq!(c.state(), deterministic(2, 3).state());
        }
    }
}
