//! Migration parameters and capabilities, under QEMU's names and with QEMU's defaults, so
//! `migrate_set_parameter max-bandwidth 1G` means here what it means there.
//!
//! | name                     | kind       | default     | range        |
//! |--------------------------|------------|-------------|--------------|
//! | `max-bandwidth`          | parameter  | 128 MiB/s   | bytes/s, 0 = unlimited |
//! | `downtime-limit`         | parameter  | 300 ms      | 0..=2000000 ms |
//! | `cpu-throttle-initial`   | parameter  | 20 %        | 1..=99       |
//! | `cpu-throttle-increment` | parameter  | 10 %        | 1..=99       |
//! | `auto-converge`          | capability | off         | on / off     |
//!
//! Every value is an atomic read at the moment it is used, so a monitor on another thread
//! changes a running migration at once: the rate limiter reads `max-bandwidth` at every
//! debit, the sender reads `downtime-limit` and the throttle settings at every decision.
//! One [`MigrationParams`] lives as long as the machine and is shared (`Arc`) with every
//! migration started from it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// QEMU's default transfer limit.
pub const DEFAULT_MAX_BANDWIDTH: u64 = 128 << 20;
/// QEMU's default downtime limit, in milliseconds.
pub const DEFAULT_DOWNTIME_LIMIT_MS: u64 = 300;
/// The largest downtime limit QEMU accepts (2000 s), in milliseconds.
pub const MAX_DOWNTIME_LIMIT_MS: u64 = 2_000_000;
pub const DEFAULT_THROTTLE_INITIAL: u8 = 20;
pub const DEFAULT_THROTTLE_INCREMENT: u8 = 10;
/// The highest throttle: the vCPU always keeps 1 % of its time.
pub const MAX_THROTTLE: u8 = 99;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    /// A value outside the parameter's range (QEMU's wording).
    #[error("Parameter '{name}' expects {expects}")]
    OutOfRange {
        name: &'static str,
        expects: &'static str,
    },
    #[error("Invalid parameter '{0}'")]
    UnknownParameter(String),
    #[error("Invalid capability '{0}'")]
    UnknownCapability(String),
}

/// The parameters and capabilities; see the module docs.
#[derive(Debug)]
pub struct MigrationParams {
    max_bandwidth: Arc<AtomicU64>,
    downtime_limit_ms: AtomicU64,
    auto_converge: AtomicBool,
    throttle_initial: AtomicU8,
    throttle_increment: AtomicU8,
}

/// The values at one moment, for `query-migrate-parameters` and for one decision of the
/// sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamValues {
    pub max_bandwidth: u64,
    pub downtime_limit_ms: u64,
    pub auto_converge: bool,
    pub cpu_throttle_initial: u8,
    pub cpu_throttle_increment: u8,
}

impl Default for MigrationParams {
    fn default() -> Self {
        Self::new()
    }
}

fn throttle_pct(name: &'static str, v: u64) -> Result<u8, ParamError> {
    match u8::try_from(v) {
        Ok(p) if (1..=MAX_THROTTLE).contains(&p) => Ok(p),
        _ => Err(ParamError::OutOfRange {
            name,
            expects: "an integer in the range of 1 to 99",
        }),
    }
}

impl MigrationParams {
    pub fn new() -> Self {
        Self {
            max_bandwidth: Arc::new(AtomicU64::new(DEFAULT_MAX_BANDWIDTH)),
            downtime_limit_ms: AtomicU64::new(DEFAULT_DOWNTIME_LIMIT_MS),
            auto_converge: AtomicBool::new(false),
            throttle_initial: AtomicU8::new(DEFAULT_THROTTLE_INITIAL),
            throttle_increment: AtomicU8::new(DEFAULT_THROTTLE_INCREMENT),
        }
    }

    /// Bytes per second, 0 = unlimited.
    pub fn max_bandwidth(&self) -> u64 {
        self.max_bandwidth.load(Ordering::Relaxed)
    }

    /// `max-bandwidth` (also what `migrate_set_speed` sets).
    pub fn set_max_bandwidth(&self, bytes_per_sec: u64) {
        self.max_bandwidth.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// The atomic a [`crate::RateLimiter`] follows.
    pub(crate) fn bandwidth_handle(&self) -> Arc<AtomicU64> {
        self.max_bandwidth.clone()
    }

    pub fn downtime_limit_ms(&self) -> u64 {
        self.downtime_limit_ms.load(Ordering::Relaxed)
    }

    pub fn set_downtime_limit_ms(&self, ms: u64) -> Result<(), ParamError> {
        if ms > MAX_DOWNTIME_LIMIT_MS {
            return Err(ParamError::OutOfRange {
                name: "downtime-limit",
                expects: "an integer in the range of 0 to 2000000 milliseconds",
            });
        }
        self.downtime_limit_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    pub fn auto_converge(&self) -> bool {
        self.auto_converge.load(Ordering::Relaxed)
    }

    pub fn set_auto_converge(&self, on: bool) {
        self.auto_converge.store(on, Ordering::Relaxed);
    }

    pub fn cpu_throttle_initial(&self) -> u8 {
        self.throttle_initial.load(Ordering::Relaxed)
    }

    pub fn set_cpu_throttle_initial(&self, pct: u64) -> Result<(), ParamError> {
        let p = throttle_pct("cpu-throttle-initial", pct)?;
        self.throttle_initial.store(p, Ordering::Relaxed);
        Ok(())
    }

    pub fn cpu_throttle_increment(&self) -> u8 {
        self.throttle_increment.load(Ordering::Relaxed)
    }

    pub fn set_cpu_throttle_increment(&self, pct: u64) -> Result<(), ParamError> {
        let p = throttle_pct("cpu-throttle-increment", pct)?;
        self.throttle_increment.store(p, Ordering::Relaxed);
        Ok(())
    }

    /// `migrate_set_parameter NAME VALUE` for the integer parameters.
    pub fn set(&self, name: &str, value: u64) -> Result<(), ParamError> {
        match name {
            "max-bandwidth" => {
                self.set_max_bandwidth(value);
                Ok(())
            }
            "downtime-limit" => self.set_downtime_limit_ms(value),
            "cpu-throttle-initial" => self.set_cpu_throttle_initial(value),
            "cpu-throttle-increment" => self.set_cpu_throttle_increment(value),
            _ => Err(ParamError::UnknownParameter(name.to_string())),
        }
    }

    /// `migrate_set_capability NAME on|off`.
    pub fn set_capability(&self, name: &str, on: bool) -> Result<(), ParamError> {
        match name {
            "auto-converge" => {
                self.set_auto_converge(on);
                Ok(())
            }
            _ => Err(ParamError::UnknownCapability(name.to_string())),
        }
    }

    /// Every capability with its state, for `query-migrate-capabilities`.
    pub fn capabilities(&self) -> Vec<(&'static str, bool)> {
        vec![("auto-converge", self.auto_converge())]
    }

    pub fn values(&self) -> ParamValues {
        ParamValues {
            max_bandwidth: self.max_bandwidth(),
            downtime_limit_ms: self.downtime_limit_ms(),
            auto_converge: self.auto_converge(),
            cpu_throttle_initial: self.cpu_throttle_initial(),
            cpu_throttle_increment: self.cpu_throttle_increment(),
        }
    }
}

impl ParamValues {
    /// The object `query-migrate-parameters` returns (capabilities are listed apart).
    pub fn to_json(&self) -> String {
        let mut j = String::new();
        let _ = write!(
            j,
            "{{\"max-bandwidth\":{},\"downtime-limit\":{},\"cpu-throttle-initial\":{},\"cpu-throttle-increment\":{}}}",
            self.max_bandwidth,
            self.downtime_limit_ms,
            self.cpu_throttle_initial,
            self.cpu_throttle_increment
        );
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_qemus() {
        let p = MigrationParams::new();
        let v = p.values();
        assert_eq!(v.max_bandwidth, 128 << 20);
        assert_eq!(v.downtime_limit_ms, 300);
        assert!(!v.auto_converge);
        assert_eq!((v.cpu_throttle_initial, v.cpu_throttle_increment), (20, 10));
        assert_eq!(p.capabilities(), vec![("auto-converge", false)]);
        let j: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(j["max-bandwidth"], 134_217_728);
        assert_eq!(j["downtime-limit"], 300);
    }

    #[test]
    fn set_by_name_checks_ranges() {
        let p = MigrationParams::new();
        p.set("max-bandwidth", 0).unwrap();
        p.set("downtime-limit", 2_000_000).unwrap();
        p.set("cpu-throttle-initial", 99).unwrap();
        p.set("cpu-throttle-increment", 1).unwrap();
        p.set_capability("auto-converge", true).unwrap();
        assert_eq!(
            p.values(),
            ParamValues {
                max_bandwidth: 0,
                downtime_limit_ms: 2_000_000,
                auto_converge: true,
                cpu_throttle_initial: 99,
                cpu_throttle_increment: 1,
            }
        );
        for (name, bad) in [
            ("downtime-limit", 2_000_001),
            ("cpu-throttle-initial", 0),
            ("cpu-throttle-initial", 100),
            ("cpu-throttle-increment", 356),
        ] {
            let e = p.set(name, bad).unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
        // Refused values leave the old ones.
        assert_eq!(p.cpu_throttle_initial(), 99);
        assert_eq!(p.downtime_limit_ms(), 2_000_000);
        assert!(matches!(
            p.set("speed", 1),
            Err(ParamError::UnknownParameter(_))
        ));
        assert!(matches!(
            p.set_capability("xbzrle", true),
            Err(ParamError::UnknownCapability(_))
        ));
    }

    #[test]
    fn the_limiter_sees_a_new_bandwidth() {
        let p = MigrationParams::new();
        let h = p.bandwidth_handle();
        p.set_max_bandwidth(5);
        assert_eq!(h.load(Ordering::Relaxed), 5);
    }
}
