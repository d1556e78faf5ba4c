//! How fast to send, and when the rest fits the downtime limit.
//!
//! The limiter is a token bucket whose rate is read from a shared atomic on every debit, so
//! `migrate_set_speed` from a monitor takes effect at the next chunk the sender writes. The
//! bucket holds at most [`BURST`] worth of tokens: a sender that was idle does not get to
//! blast a second of traffic at once. A rate of 0 means unlimited (the final stop-and-copy
//! pass uses an unlimited limiter).
//!
//! The bandwidth estimate is an exponentially weighted average of measured intervals, so a
//! single fast or slow burst does not swing the downtime prediction.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tokens a bucket can hold, in seconds of traffic at the current rate.
pub const BURST: Duration = Duration::from_millis(100);

/// Longest single pause: a raised limit (or a cancel) is noticed at least this often.
pub const MAX_PAUSE: Duration = Duration::from_millis(50);

pub struct RateLimiter {
    limit: Arc<AtomicU64>,
    /// Bytes that may still be sent; negative while the sender is ahead of its budget.
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// A limiter that follows `limit` (bytes per second, 0 = unlimited).
    pub fn new(limit: Arc<AtomicU64>) -> Self {
        Self {
            limit,
            tokens: 0.0,
            last: None,
        }
    }

    /// Accounts for `bytes` sent at `now`; returns how long the sender should pause before
    /// it writes more (zero when it is within its budget). Callers pause at most
    /// [`MAX_PAUSE`] and then call again with 0 bytes, so a new limit applies at once.
    pub fn debit(&mut self, now: Instant, bytes: u64) -> Duration {
        let rate = self.limit.load(Ordering::Relaxed);
        if rate == 0 {
            self.tokens = 0.0;
            self.last = Some(now);
            return Duration::ZERO;
        }
        let rate = rate as f64;
        let cap = rate * BURST.as_secs_f64();
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        self.tokens = (self.tokens + elapsed * rate).min(cap);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }

    /// The limit now in force (bytes per second, 0 = unlimited).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// Smoothed transfer rate.
#[derive(Clone, Debug, Default)]
pub struct BandwidthEstimate {
    bytes_per_sec: Option<f64>,
}

impl BandwidthEstimate {
    /// Weight of the newest interval.
    const ALPHA: f64 = 0.5;

    /// Folds in an interval in which `bytes` took `time` to send. Intervals too short to
    /// time are ignored.
    pub fn record(&mut self, bytes: u64, time: Duration) {
        if time < Duration::from_micros(100) || bytes == 0 {
            return;
        }
        let r = bytes as f64 / time.as_secs_f64();
        self.bytes_per_sec = Some(match self.bytes_per_sec {
            None => r,
            Some(old) => old + Self::ALPHA * (r - old),
        });
    }

    /// Bytes per second, once anything has been measured.
    pub fn bytes_per_sec(&self) -> Option<f64> {
        self.bytes_per_sec
    }

    /// Time to send `bytes` at the measured rate (None before any measurement).
    pub fn time_for(&self, bytes: u64) -> Option<Duration> {
        self.bytes_per_sec
            .map(|r| Duration::from_secs_f64(bytes as f64 / r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u64) -> (RateLimiter, Arc<AtomicU64>) {
        let l = Arc::new(AtomicU64::new(rate));
        (RateLimiter::new(l.clone()), l)
    }

    /// Simulates a sender that writes `chunk` bytes and pauses as told, for `total` bytes;
    /// returns the simulated time taken.
    fn simulate(r: &mut RateLimiter, t0: Instant, chunk: u64, total: u64) -> Duration {
        let mut now = t0;
        let mut sent = 0;
        while sent < total {
            let mut pause = r.debit(now, chunk);
            sent += chunk;
            while !pause.is_zero() {
                now += pause.min(MAX_PAUSE);
                pause = r.debit(now, 0);
            }
        }
        now - t0
    }

    #[test]
    fn sends_at_the_limit() {
        let (mut r, _) = limiter(10 << 20);
        let t = simulate(&mut r, Instant::now(), 64 << 10, 100 << 20);
        // 100 MiB at 10 MiB/s: 10 s, less the one burst allowance the bucket may hold.
        let secs = t.as_secs_f64();
        assert!((9.8..=10.1).contains(&secs), "{secs}");
    }

    #[test]
    fn unlimited_never_pauses() {
        let (mut r, _) = limiter(0);
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(r.debit(now, 1 << 30), Duration::ZERO);
        }
    }

    #[test]
    fn a_new_limit_applies_to_the_next_debit() {
        let (mut r, l) = limiter(1 << 20);
        let t0 = Instant::now();
        let slow = r.debit(t0, 1 << 20);
        assert!(slow >= Duration::from_millis(800), "{slow:?}");
        // Raised a hundredfold while the sender is paused: its next check owes 1/100 of
        // the time.
        l.store(100 << 20, Ordering::Relaxed);
        let fast = r.debit(t0 + MAX_PAUSE, 0);
        assert!(fast < Duration::from_millis(10), "{fast:?}");
        l.store(0, Ordering::Relaxed);
        assert_eq!(r.debit(t0 + MAX_PAUSE * 2, 1 << 30), Duration::ZERO);
    }

    #[test]
    fn an_idle_sender_gets_one_burst_only() {
        let (mut r, _) = limiter(10 << 20);
        let t0 = Instant::now();
        r.debit(t0, 0);
        // Ten idle seconds must not buy 100 MiB of unthrottled traffic.
        let pause = r.debit(t0 + Duration::from_secs(10), 50 << 20);
        assert!(pause >= Duration::from_secs(4), "{pause:?}");
    }

    #[test]
    fn bandwidth_is_smoothed() {
        let mut b = BandwidthEstimate::default();
        assert_eq!(b.time_for(1), None);
        b.record(100, Duration::from_secs(1));
        assert_eq!(b.bytes_per_sec(), Some(100.0));
        b.record(300, Duration::from_secs(1));
        assert_eq!(b.bytes_per_sec(), Some(200.0));
        b.record(5, Duration::from_nanos(1));
        assert_eq!(b.bytes_per_sec(), Some(200.0));
        assert_eq!(b.time_for(400), Some(Duration::from_secs(2)));
    }
}
