//! Named snapshots as files: `savevm TAG` writes `DIR/TAG.tern`, `loadvm TAG` reads it.
//!
//! A snapshot is one savevm stream (the same format live migration sends) with the device
//! sections before the RAM, so `info snapshots` can show the guest clock by reading only the
//! head of each file. The directory is `--snapshot-dir`, by default
//! `$XDG_DATA_HOME/tern/snapshots` (`~/.local/share/tern/snapshots`), created owner-only.
//!
//! Writing never leaves a partial file under a tag: the stream goes to a temporary file in
//! the same directory, is fsynced, and is renamed over the tag; the directory is fsynced
//! after the rename. A crash or a full disk leaves the previous snapshot of that tag (or
//! none) and at worst a stale temporary file, which [`SnapshotStore::list`] ignores and the
//! next save of the same tag replaces.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use migration::transport::{commit_file, temp_path};

use crate::vm::Vm;

/// File name suffix of snapshot files.
pub const SUFFIX: &str = ".tern";
/// Longest tag accepted.
pub const MAX_TAG: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid snapshot tag '{0}': use 1 to 128 letters, digits, '-', '_', '.' or ':', not starting with '.'")]
    BadTag(String),
    #[error("snapshot '{0}' does not exist")]
    NotFound(String),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: io::Error },
    #[error("{0}")]
    Write(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |err| SnapshotError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// One entry of `info snapshots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub tag: String,
    pub size: u64,
    pub date: SystemTime,
    /// Guest time at the save, when the file's clock section could be read.
    pub vm_clock_ns: Option<u64>,
}

pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$XDG_DATA_HOME/tern/snapshots`, falling back to `~/.local/share`, then the current
    /// directory.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("tern/snapshots")
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn valid_tag(tag: &str) -> bool {
        !tag.is_empty()
            && tag.len() <= MAX_TAG
            && !tag.starts_with('.')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    }

    pub fn path(&self, tag: &str) -> Result<PathBuf, SnapshotError> {
        if !Self::valid_tag(tag) {
            return Err(SnapshotError::BadTag(tag.to_string()));
        }
        Ok(self.dir.join(format!("{tag}{SUFFIX}")))
    }

    /// Writes a snapshot through `write`; the tag's file appears only when it is complete.
    /// Returns the file's size.
    pub fn save(
        &self,
        tag: &str,
        write: impl FnOnce(&mut File) -> Result<(), String>,
    ) -> Result<u64, SnapshotError> {
        let dest = self.path(tag)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err(&self.dir))?;
        let tmp = temp_path(&dest);
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        // No buffering here: the writer gathers its output in large chunks itself.
        let result = write(&mut file)
            .and_then(|()| commit_file(file, &tmp, &dest).map_err(|e| e.to_string()));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(SnapshotError::Write(e));
        }
        Ok(fs::metadata(&dest).map_err(io_err(&dest))?.len())
    }

    /// Opens a snapshot for reading.
    pub fn open(&self, tag: &str) -> Result<BufReader<File>, SnapshotError> {
        let p = self.path(tag)?;
        match File::open(&p) {
            Ok(f) => Ok(BufReader::with_capacity(1 << 20, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(SnapshotError::NotFound(tag.to_string()))
            }
            Err(e) => Err(SnapshotError::Io { path: p, err: e }),
        }
    }

    pub fn delete(&self, tag: &str) -> Result<(), SnapshotError> {
        let p = self.path(tag)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(SnapshotError::NotFound(tag.to_string()))
            }
            Err(e) => Err(SnapshotError::Io { path: p, err: e }),
        }
    }

    /// Every snapshot in the directory, oldest first.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(SnapshotError::Io {
                    path: self.dir.clone(),
                    err: e,
                })
            }
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(tag) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            if !Self::valid_tag(tag) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            out.push(SnapshotInfo {
                tag: tag.to_string(),
                size: meta.len(),
                date: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                vm_clock_ns: File::open(e.path()).ok().and_then(read_vm_clock),
            });
        }
        out.sort_by(|a, b| a.date.cmp(&b.date).then(a.tag.cmp(&b.tag)));
        Ok(out)
    }
}

/// Reads the guest clock from the head of a snapshot (its `clock` section precedes RAM).
fn read_vm_clock(f: File) -> Option<u64> {
    hw::snapshot::snapshot_clock(f).ok().map(|(_, c)| c.ns)
}

impl Vm {
    /// `savevm [TAG]`: the machine is stopped while its state is written, then runs on as
    /// before. A failure leaves the guest as it was and no file under the tag.
    pub fn savevm(&mut self, tag: Option<String>) -> Result<String, String> {
        let tag = tag.unwrap_or_else(|| auto_tag(SystemTime::now()));
        SnapshotStore::valid_tag(&tag)
            .then_some(())
            .ok_or_else(|| SnapshotError::BadTag(tag.clone()).to_string())?;
        if self.migration.outgoing_active() || self.migration.incoming_active() {
            return Err("a migration is in progress".into());
        }
        let was_running = self.is_running();
        self.pause_quietly();
        let machine = &mut self.machine;
        let result = self.snapshots.save(&tag, |w| {
            machine
                .save_snapshot(w)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if was_running {
            self.resume_quietly();
        }
        match result {
            Ok(size) => {
                log::info!("saved snapshot '{tag}' ({size} bytes)");
                Ok(tag)
            }
            Err(e) => Err(format!("cannot save snapshot '{tag}': {e}")),
        }
    }

    /// `loadvm TAG`: replaces the whole machine state. The stream is verified completely
    /// before anything changes, so a bad file leaves the running guest as it was.
    pub fn loadvm(&mut self, tag: &str) -> Result<(), String> {
        if self.migration.outgoing_active() || self.migration.incoming_active() {
            return Err("a migration is in progress".into());
        }
        let file = self.snapshots.open(tag).map_err(|e| e.to_string())?;
        let was_running = self.is_running();
        self.pause_quietly();
        let result = self.machine.load_snapshot(file);
        // The loaded clock arrives paused; it runs again with the guest.
        if was_running {
            self.resume_quietly();
        }
        result.map_err(|e| format!("cannot load snapshot '{tag}': {e}"))
    }
}

/// `tern snapshot inspect`'s text: what the stream holds, one line per section.
pub fn describe(d: &savevm::Description) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "format version {}, machine {}, RAM {} MiB, CPU {}",
        d.format_version,
        d.config.machine,
        d.config.ram_size >> 20,
        d.config.cpu_model
    );
    let _ = writeln!(
        o,
        "{:<16} {:>8} {:>7} {:>10}",
        "SECTION", "INSTANCE", "VERSION", "BYTES"
    );
    for s in &d.sections {
        let subs: Vec<&str> = s.subsections.iter().map(|x| x.name.as_str()).collect();
        let _ = write!(
            o,
            "{:<16} {:>8} {:>7} {:>10}",
            s.name, s.instance, s.version, s.size
        );
        if !subs.is_empty() {
            let _ = write!(o, "  (subsections: {})", subs.join(", "));
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "RAM: {} passes, {} pages ({} zero, {} with data)",
        d.ram_passes.len(),
        d.ram_pages(),
        d.zero_pages(),
        d.data_pages()
    );
    let _ = writeln!(
        o,
        "stream: {} bytes, CRC-32 {:08x} {}, trailer {}",
        d.stream_len,
        d.checksum,
        if d.checksum_ok { "ok" } else { "MISMATCH" },
        if d.trailer_ok { "ok" } else { "damaged" }
    );
    o
}

/// `tern snapshot inspect --json`: the stream's description, as its own trailer spells it,
/// plus what reading it found: `checksum.ok` and `trailer_ok`. The trailer is written
/// before anything can be damaged, so it cannot say so itself, and a tool given only the
/// description would take a damaged file for a good one.
pub fn describe_json(d: &savevm::Description) -> String {
    let mut v: serde_json::Value = match serde_json::from_str(&d.to_json()) {
        Ok(v) => v,
        Err(e) => return serde_json::json!({"error": e.to_string()}).to_string(),
    };
    if let Some(c) = v.get_mut("checksum").and_then(|c| c.as_object_mut()) {
        c.insert("ok".into(), d.checksum_ok.into());
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("trailer_ok".into(), d.trailer_ok.into());
    }
    v.to_string()
}

/// QEMU's tag for a `savevm` without one: `vm-YYYYMMDDHHMMSS` (UTC here).
pub fn auto_tag(now: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc(now);
    format!("vm-{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, for `info snapshots`.
pub fn format_date(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// `HH:MM:SS.mmm` of guest time, as QEMU prints the VM clock.
pub fn format_vm_clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn utc(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = hw::rtc::civil_from_days(days);
    (
        y,
        u32::from(m),
        u32::from(d),
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn store(name: &str) -> SnapshotStore {
        let d = std::env::temp_dir().join(format!("tern-snap-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        SnapshotStore::new(d)
    }

    #[test]
    fn tags_are_checked() {
        for ok in ["a", "vm-20261125", "x.y_z:1", &"t".repeat(128)] {
            assert!(SnapshotStore::valid_tag(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "../x",
            "sp ace",
            &"t".repeat(129),
            "é",
        ] {
            assert!(!SnapshotStore::valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn save_is_all_or_nothing() {
        let s = store("atomic");
        assert!(s.list().unwrap().is_empty());
        let size = s
            .save("one", |w| w.write_all(b"first").map_err(|e| e.to_string()))
            .unwrap();
        assert_eq!(size, 5);
        // A failing writer leaves the previous snapshot untouched and no temp file.
        let e = s
            .save("one", |w| {
                w.write_all(b"half of a new one").unwrap();
                Err("disk full".into())
            })
            .unwrap_err();
        assert!(e.to_string().contains("disk full"));
        assert_eq!(fs::read(s.path("one").unwrap()).unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let l = s.list().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].tag, "one");
        assert_eq!(l[0].vm_clock_ns, None);
        s.delete("one").unwrap();
        assert!(matches!(s.delete("one"), Err(SnapshotError::NotFound(_))));
        assert!(matches!(s.open("one"), Err(SnapshotError::NotFound(_))));
        assert!(matches!(s.open("../etc"), Err(SnapshotError::BadTag(_))));
    }

    #[test]
    fn dates_and_clocks_print_like_qemu() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_564_800 + 3_723);
        assert_eq!(format_date(t), "2026-11-25 01:02:03");
        assert_eq!(auto_tag(t), "vm-20261125010203");
        assert_eq!(format_date(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_date(leap), "2000-02-29 00:00:00");
        assert_eq!(format_vm_clock(3_723_004_000_000), "01:02:03.004");
    }
}
