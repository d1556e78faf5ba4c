//! What `info migrate` and `query-migrate` report: a status and, depending on it, times,
//! RAM counters and the error. Field names are QEMU's (`total-time`, `ram.normal-bytes`,
//! ...) so tools written against QEMU read ours.
//!
//! ```text
//!  status      shown besides the status
//!  ─────────── ─────────────────────────────────────────────────────────────────────
//!  none        nothing
//!  setup       nothing (connecting, writing the config, enabling the dirty log)
//!  active      total-time setup-time expected-downtime ram [cpu-throttle-percentage]
//!  device      (the same: the guest is stopped, the last pages are going out)
//!  cancelling  (the same)
//!  completed   total-time setup-time downtime ram
//!  failed      error-desc
//!  cancelled   nothing
//! ```
//!
//! Times are milliseconds, `ram.mbps` is megabits per second, rates are per second.
//! `not-converging` is ours: `true` while the guest dirties memory faster than the link
//! drains it and no throttle makes up for it, so the pre-copy would iterate forever.

use std::fmt::Write as _;

/// The state of one migration, under QEMU's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MigrationStatus {
    /// No migration has been started.
    #[default]
    None,
    /// Connecting and setting up; incoming: listening.
    Setup,
    /// Copying RAM while the guest runs; incoming: receiving.
    Active,
    /// The guest is stopped; the last pages and the device state are being sent.
    Device,
    Completed,
    Failed,
    /// `migrate_cancel` was asked; the sender is cleaning up.
    Cancelling,
    Cancelled,
}

impl MigrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::None => "none",
            MigrationStatus::Setup => "setup",
            MigrationStatus::Active => "active",
            MigrationStatus::Device => "device",
            MigrationStatus::Completed => "completed",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Cancelling => "cancelling",
            MigrationStatus::Cancelled => "cancelled",
        }
    }

    /// Whether a migration in this state is over (another may be started).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MigrationStatus::None
                | MigrationStatus::Completed
                | MigrationStatus::Failed
                | MigrationStatus::Cancelled
        )
    }
}

impl std::fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `ram` object of `query-migrate`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RamStats {
    /// Bytes handed to the transport (stream framing included).
    pub transferred: u64,
    /// Bytes of RAM still to send in the current pass (dirty pages not yet sent).
    pub remaining: u64,
    /// Guest RAM size in bytes.
    pub total: u64,
    /// Zero pages, sent as a count without data.
    pub duplicate: u64,
    /// Pages sent with their contents.
    pub normal: u64,
    pub normal_bytes: u64,
    /// Pages dirtied per second, measured between the last two harvests.
    pub dirty_pages_rate: u64,
    /// Measured throughput, megabits per second.
    pub mbps: f64,
    /// Dirty-log harvests so far, the enabling of the log counting as the first: equal to
    /// the number of RAM passes.
    pub dirty_sync_count: u64,
    pub pages_per_second: u64,
    pub page_size: u64,
}

/// One answer to `query-migrate`. `None` fields are not shown for the status (see the
/// module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MigrationInfo {
    pub status: MigrationStatus,
    pub total_time_ms: Option<u64>,
    pub setup_time_ms: Option<u64>,
    /// The guest's real stop time, once completed.
    pub downtime_ms: Option<u64>,
    /// The stop time the remaining dirty pages would take at the measured bandwidth.
    pub expected_downtime_ms: Option<u64>,
    pub ram: Option<RamStats>,
    /// The auto-converge throttle, while it is above zero.
    pub cpu_throttle_percentage: Option<u8>,
    /// The same, exact, in parts per million (tern's own field: past 99 % the percentage
    /// stays at 99 while the throttle goes on).
    pub cpu_throttle_ppm: Option<u32>,
    pub not_converging: bool,
    pub error_desc: Option<String>,
}

impl MigrationInfo {
    /// The `query-migrate` return value, one line of JSON.
    pub fn to_json(&self) -> String {
        let mut j = String::from("{\"status\":");
        json_str(&mut j, self.status.as_str());
        let num = |j: &mut String, k: &str, v: Option<u64>| {
            if let Some(v) = v {
                let _ = write!(j, ",\"{k}\":{v}");
            }
        };
        num(&mut j, "total-time", self.total_time_ms);
        num(&mut j, "setup-time", self.setup_time_ms);
        num(&mut j, "downtime", self.downtime_ms);
        num(&mut j, "expected-downtime", self.expected_downtime_ms);
        num(
            &mut j,
            "cpu-throttle-percentage",
            self.cpu_throttle_percentage.map(u64::from),
        );
        num(
            &mut j,
            "cpu-throttle-ppm",
            self.cpu_throttle_ppm.map(u64::from),
        );
        if self.not_converging {
            j.push_str(",\"not-converging\":true");
        }
        if let Some(r) = &self.ram {
            let _ = write!(
                j,
                ",\"ram\":{{\"transferred\":{},\"remaining\":{},\"total\":{},\"duplicate\":{},\
                 \"normal\":{},\"normal-bytes\":{},\"dirty-pages-rate\":{},\"mbps\":{},\
                 \"dirty-sync-count\":{},\"pages-per-second\":{},\"page-size\":{}}}",
                r.transferred,
                r.remaining,
                r.total,
                r.duplicate,
                r.normal,
                r.normal_bytes,
                r.dirty_pages_rate,
                json_f64(r.mbps),
                r.dirty_sync_count,
                r.pages_per_second,
                r.page_size
            );
        }
        if let Some(e) = &self.error_desc {
            j.push_str(",\"error-desc\":");
            json_str(&mut j, e);
        }
        j.push('}');
        j
    }
}

/// A finite number as JSON (which has no NaN or infinity).
fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "0".into()
    }
}

pub(crate) use savevm::json_str;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_qemus_field_names() {
        let info = MigrationInfo {
            status: MigrationStatus::Active,
            total_time_ms: Some(1200),
            setup_time_ms: Some(3),
            expected_downtime_ms: Some(250),
            cpu_throttle_percentage: Some(30),
            not_converging: true,
            ram: Some(RamStats {
                transferred: 1 << 20,
                remaining: 4096,
                total: 64 << 20,
                duplicate: 16000,
                normal: 200,
                normal_bytes: 200 * 4096,
                dirty_pages_rate: 1500,
                mbps: 268.5,
                dirty_sync_count: 3,
                pages_per_second: 8000,
                page_size: 4096,
            }),
            ..MigrationInfo::default()
        };
        let v: serde_json::Value = serde_json::from_str(&info.to_json()).unwrap();
        assert_eq!(v["status"], "active");
        assert_eq!(v["total-time"], 1200);
        assert_eq!(v["setup-time"], 3);
        assert_eq!(v["expected-downtime"], 250);
        assert_eq!(v["cpu-throttle-percentage"], 30);
        assert_eq!(v["not-converging"], true);
        assert!(v.get("downtime").is_none());
        assert!(v.get("error-desc").is_none());
        let ram = &v["ram"];
        assert_eq!(ram["transferred"], 1 << 20);
        assert_eq!(ram["normal-bytes"], 200 * 4096);
        assert_eq!(ram["dirty-pages-rate"], 1500);
        assert_eq!(ram["mbps"], 268.5);
        assert_eq!(ram["dirty-sync-count"], 3);
        assert_eq!(ram["pages-per-second"], 8000);
        assert_eq!(ram["duplicate"], 16000);
    }

    #[test]
    fn a_failure_shows_its_error_escaped() {
        let info = MigrationInfo {
            status: MigrationStatus::Failed,
            error_desc: Some("`cat \"x\"` exited\n".into()),
            ram: Some(RamStats {
                mbps: f64::NAN,
                ..RamStats::default()
            }),
            ..MigrationInfo::default()
        };
        let v: serde_json::Value = serde_json::from_str(&info.to_json()).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error-desc"], "`cat \"x\"` exited\n");
        assert_eq!(v["ram"]["mbps"], 0);
        let none: serde_json::Value =
            serde_json::from_str(&MigrationInfo::default().to_json()).unwrap();
        assert_eq!(none, serde_json::json!({"status": "none"}));
    }

    #[test]
    fn final_states() {
        use MigrationStatus::*;
        for s in [None, Completed, Failed, Cancelled] {
            assert!(s.is_final(), "{s}");
        }
        for s in [Setup, Active, Device, Cancelling] {
            assert!(!s.is_final(), "{s}");
        }
    }
}
