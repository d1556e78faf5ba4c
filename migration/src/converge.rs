//! When to stop copying, and how hard to throttle the guest meanwhile.
//!
//! After every harvest the sender knows how many pages are dirty (what the next pass, or
//! the stop-and-copy, must send), how many bytes it sent since the previous harvest, and
//! the measured bandwidth. From that, one decision per harvest:
//!
//! ```text
//!  expected downtime = (dirty pages × 4096 + bytes still queued) / bandwidth
//!  complete          = nothing dirty, or expected downtime <= downtime-limit
//!  high              = dirty bytes > ½ × bytes sent since the previous harvest
//!                      (QEMU's rule: the guest re-dirties more than half of what went out)
//!  not converging    = not complete, and the last two harvests were high
//!  throttle          = auto-converge off: 0
//!                      on, not complete, the last harvest high (QEMU: two in a row):
//!                          0 → cpu-throttle-initial, then + cpu-throttle-increment per
//!                          further high harvest, up to 99 %; then, beyond QEMU, the
//!                          guest's remaining share of time halves per further high
//!                          harvest, down to 1/100 000 (99.999 %);
//!                          and at once as far as the measurement says it takes: the
//!                          guest keeps share × (bandwidth × downtime-limit) / dirty
//!                          bytes of its time, if that is less than the step gives
//!                          (that ratio squared when the last raise left the dirty set
//!                          as large as before: the guest rewrites all of it in a pass
//!                          and the count understates how fast)
//! ```
//!
//! QEMU stops at 99 %, and a guest that rewrites its memory fast enough outpaces the link
//! even at 1 % of its speed (64 MiB rewritten continuously never fits 300 ms at 100 MiB/s).
//! An interpreter can slow its guest as far as it likes and keep timers and monitors
//! alive, so tern goes on: the throttle is kept in parts per million, and the
//! `cpu-throttle-percentage` QEMU's tools read stays at 99 past that point.
//!
//! The bandwidth is the one measured on the link while pages went out (rate-limit pauses
//! included). Before anything could be timed it is `max-bandwidth`; with no limit either,
//! the link is taken to be as fast as what has been sent so far, i.e. the rest fits.
//! Every parameter is read afresh at each decision, so a new `downtime-limit` decides the
//! very next harvest.

use crate::params::{ParamValues, MAX_THROTTLE};

/// The throttle's unit: parts per million of the vCPU's time given up.
pub const PPM: u32 = 1_000_000;
/// The strongest throttle: the guest keeps 10 ppm of its time.
pub const MAX_THROTTLE_PPM: u32 = PPM - 10;

const PAGE_SIZE: u64 = savevm::PAGE_SIZE as u64;

/// What one harvest measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyncFacts {
    /// Pages the harvest returned.
    pub dirty_pages: u64,
    /// Bytes sent since the previous harvest.
    pub transferred: u64,
    /// Measured bytes per second, if anything has been timed.
    pub bandwidth: Option<f64>,
    /// Stream bytes produced but not yet on the link (queued for the transport's
    /// thread): they go before the last pages do.
    pub queued: u64,
}

/// The decision for one harvest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub complete: bool,
    pub expected_downtime_ms: u64,
    pub not_converging: bool,
    /// The share of its time the vCPU must give up from now on, in [`PPM`].
    pub throttle_ppm: u32,
}

/// The state carried from one harvest to the next.
#[derive(Debug, Default)]
pub(crate) struct Convergence {
    high_in_a_row: u32,
    throttle_ppm: u32,
    /// What the previous harvest found dirty, and whether it raised the throttle.
    last_dirty: u64,
    raised: bool,
}

impl Convergence {
    pub fn decide(&mut self, f: &SyncFacts, p: &ParamValues) -> Verdict {
        let dirty_bytes = f.dirty_pages * PAGE_SIZE;
        let bandwidth = f
            .bandwidth
            .filter(|b| *b > 0.0)
            .or((p.max_bandwidth > 0).then_some(p.max_bandwidth as f64));
        let expected_downtime_ms = match bandwidth {
            Some(b) => ((dirty_bytes + f.queued) as f64 * 1000.0 / b).ceil() as u64,
            None => 0,
        };
        let complete = dirty_bytes == 0 || expected_downtime_ms <= p.downtime_limit_ms;
        if dirty_bytes > f.transferred / 2 {
            self.high_in_a_row += 1;
        } else {
            self.high_in_a_row = 0;
        }
        let stuck = !complete && self.high_in_a_row >= 2;
        let pct = |p: u8| u32::from(p) * (PPM / 100);
        let max_pct = pct(MAX_THROTTLE);
        // QEMU waits for a second high harvest before it throttles; tern acts on the
        // first, because for a guest that rewrites gigabytes a harvest is a gigabyte sent
        // in vain. Only "not converging" waits for two.
        if !p.auto_converge {
            self.throttle_ppm = 0;
        } else if !complete && self.high_in_a_row >= 1 {
            let step = match self.throttle_ppm {
                0 => pct(p.cpu_throttle_initial),
                t if t < max_pct => (t + pct(p.cpu_throttle_increment)).min(max_pct),
                // Past QEMU's ceiling: halve what the guest keeps.
                t => PPM - (PPM - t) / 2,
            };
            // What would fit at once: the guest keeps the share of its time that dirties
            // no more than the link carries within the downtime limit.
            let fits = bandwidth.map_or(0.0, |b| b * p.downtime_limit_ms as f64 / 1000.0);
            let mut factor = fits / dirty_bytes as f64;
            // A raised throttle that left the dirty set as large as before means the
            // guest rewrites that whole set within a pass even at its new speed: the
            // count is saturated and understates the rate. Aim twice as far.
            if self.raised && dirty_bytes >= self.last_dirty / 10 * 9 {
                factor *= factor;
            }
            let keeps = f64::from(PPM - self.throttle_ppm) * factor;
            let aimed = PPM - (keeps as u32).min(PPM);
            let next = step.max(aimed).min(MAX_THROTTLE_PPM);
            self.raised = next > self.throttle_ppm;
            self.throttle_ppm = next;
        } else {
            self.raised = false;
        }
        self.last_dirty = dirty_bytes;
        Verdict {
            complete,
            expected_downtime_ms,
            not_converging: stuck,
            throttle_ppm: self.throttle_ppm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::MigrationParams;

    fn params() -> ParamValues {
        MigrationParams::new().values()
    }

    fn facts(dirty_pages: u64, transferred: u64, bandwidth: f64) -> SyncFacts {
        SyncFacts {
            dirty_pages,
            transferred,
            bandwidth: Some(bandwidth),
            queued: 0,
        }
    }

    const MB: f64 = 1_000_000.0;

    #[test]
    fn completes_when_the_rest_fits_the_downtime_limit() {
        let mut c = Convergence::default();
        // 1000 pages at 40.96 MB/s: 100 ms.
        let v = c.decide(&facts(1000, 100 << 20, 40_960_000.0), &params());
        assert_eq!(v.expected_downtime_ms, 100);
        assert!(v.complete && !v.not_converging);
        let v = c.decide(&facts(0, 0, 1.0), &params());
        assert!(v.complete);
        assert_eq!(v.expected_downtime_ms, 0);
    }

    #[test]
    fn a_new_downtime_limit_decides_the_next_harvest() {
        let mut c = Convergence::default();
        let mut p = params();
        p.downtime_limit_ms = 50;
        let f = facts(1000, 100 << 20, 40_960_000.0);
        assert!(!c.decide(&f, &p).complete);
        p.downtime_limit_ms = 100;
        assert!(c.decide(&f, &p).complete);
    }

    #[test]
    fn without_a_measurement_the_limit_stands_in() {
        let mut c = Convergence::default();
        let mut p = params();
        p.max_bandwidth = 4096 * 10; // ten pages a second
        let f = SyncFacts {
            dirty_pages: 5,
            transferred: 0,
            bandwidth: None,
            queued: 0,
        };
        let v = c.decide(&f, &p);
        assert_eq!(v.expected_downtime_ms, 500);
        assert!(!v.complete);
        p.max_bandwidth = 0;
        assert!(c.decide(&f, &p).complete);
    }

    #[test]
    fn a_guest_outpacing_the_link_is_reported_but_not_throttled_by_default() {
        let mut c = Convergence::default();
        let p = params();
        // 1 GB dirtied per harvest at 10 MB/s: never fits 300 ms.
        let f = facts(250_000, 1 << 30, 10.0 * MB);
        let first = c.decide(&f, &p);
        assert!(!first.complete && !first.not_converging);
        for _ in 0..5 {
            let v = c.decide(&f, &p);
            assert!(!v.complete && v.not_converging);
            assert_eq!(v.throttle_ppm, 0);
        }
        // The guest calms down: no longer reported.
        let v = c.decide(&facts(250_000, 4 << 30, 10.0 * MB), &p);
        assert!(!v.not_converging);
    }

    #[test]
    fn auto_converge_starts_at_initial_and_steps_to_the_cap() {
        let mut c = Convergence::default();
        let mut p = params();
        p.auto_converge = true;
        // Dirty just past what fits (300 ms of 10 MB/s is 732.4 pages), so QEMU's steps
        // are the stronger rule.
        let f = facts(740, 4096, 10.0 * MB);
        let steps: Vec<u32> = (0..12).map(|_| c.decide(&f, &p).throttle_ppm).collect();
        assert_eq!(
            steps,
            [
                200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 900_000, 990_000,
                995_000, 997_500, 998_750
            ]
        );
        // Past 99 % the guest's share keeps halving, down to the floor.
        let last = (0..30).map(|_| c.decide(&f, &p).throttle_ppm).last();
        assert_eq!(last, Some(MAX_THROTTLE_PPM));
        // A calm harvest keeps the throttle where it is; turning the capability off
        // lifts it.
        let calm = facts(10, 1 << 30, 10.0 * MB);
        assert_eq!(c.decide(&calm, &p).throttle_ppm, MAX_THROTTLE_PPM);
        p.auto_converge = false;
        assert_eq!(c.decide(&f, &p).throttle_ppm, 0);
    }

    #[test]
    fn throttle_steps_follow_changed_parameters() {
        let mut c = Convergence::default();
        let mut p = params();
        p.auto_converge = true;
        p.cpu_throttle_initial = 50;
        p.cpu_throttle_increment = 30;
        let f = facts(740, 4096, 10.0 * MB);
        let steps: Vec<u32> = (0..5).map(|_| c.decide(&f, &p).throttle_ppm).collect();
        assert_eq!(steps, [500_000, 800_000, 990_000, 995_000, 997_500]);
    }

    #[test]
    fn a_far_too_busy_guest_is_throttled_as_far_as_it_takes_at_once() {
        let mut c = Convergence::default();
        let mut p = params();
        p.auto_converge = true;
        // 100 000 pages (409.6 MB) dirty, 300 ms of 100 MB/s (30 MB) fits: the guest
        // may keep 30 / 409.6 of its time, about 7.3 %.
        let f = facts(100_000, 200 << 20, 100.0 * MB);
        let t = c.decide(&f, &p).throttle_ppm;
        assert_eq!(t, PPM - 73_242);
        // The raise left as much dirty as before: the set is saturated, so the guest keeps
        // 7.3 % of (7.3 % squared) of its time.
        let t = c.decide(&f, &p).throttle_ppm;
        assert_eq!(t, PPM - 392);
        // Now it dirties half as much: the plain ratio again (30 / 204.8 of 392 ppm).
        let t = c
            .decide(&facts(50_000, 200 << 20, 100.0 * MB), &p)
            .throttle_ppm;
        assert_eq!(t, PPM - 57);
    }
}
