//! Live migration over loopback TCP, and the snapshot to and from a file, tern beside
//! QEMU: the same guest programs, the same settings, the same QMP driver, one emulator
//! right after the other in the same run. Absolute times on a shared host drift from run
//! to run; the pair does not.
//!
//! ```text
//!   bench ──QMP──> source  (tern run | qemu-system-i386)   --serial file:src.txt
//!     │              │ migrate tcp:127.0.0.1:PORT
//!     │              v
//!     └──QMP──> destination (same command line + --incoming / -incoming)
//! ```
//!
//! For each live case and emulator: start the source, wait until its guest has reached
//! its steady state (a serial line), start the destination, set the parameters, `migrate`,
//! poll `query-migrate` until the migration ends or [`CAP`] passes (then
//! `migrate_cancel`: "did not converge"), check that the destination runs and the source
//! is `postmigrate`, quit both.
//!
//! The file cases measure `savevm` and `loadvm` to and from the page cache:
//!
//! ```text
//!   save: source, guest filled, `stop` ── migrate file:PATH       (tern) ──> PATH
//!                                       └─ migrate exec:cat > PATH (qemu) ─┘
//!   load: PATH ──> a new process: --incoming file:PATH / -incoming "exec:cat PATH"
//!                  spawn ... query-status "running"  (after a `cont`)
//! ```
//!
//! `save` stops the fill guest once it has written 1 GiB and sends its whole state to a
//! file at unlimited bandwidth. tern's `file:` transport writes a temporary file, fsyncs
//! it and renames it before it reports `completed`. QEMU 7.2 has no `file:` URI; a pipe to
//! a process that writes the file is its usual way to save to a file (libvirt's save
//! hands QEMU such a pipe too), and `completed` there means the last byte went into the
//! pipe. Reported: the total time `query-migrate` gives, the wall time from the `migrate`
//! command until `query-migrate` says `completed` (polled every [`POLL`]), the file's
//! size, and how long an fsync of the file takes afterwards, which is the writeback QEMU
//! leaves undone and next to nothing for tern.
//!
//! `load` starts a new process on that file, the source's command line plus the incoming
//! option, and times it from the spawn until `query-status` answers `running`: process
//! start-up, the QMP connection, reading and loading the whole stream and starting the
//! guest. Both keep a guest that was stopped when it was saved stopped (`paused`), so the
//! bench sends `cont` the moment it sees that, and the time includes it. The start-up alone is measured first with the
//! same command line minus the incoming option, the guest held stopped (`--paused`, `-S`)
//! as it is while a destination waits, from the spawn until QMP answers `query-status`,
//! to subtract. The loaded guest must run, still run a moment later, and
//! hold the fill pattern in the first and last page it wrote (read with `xp`); tern's
//! destination also reports the pages it received in `query-migrate`. Without `save`,
//! `load` first saves the file it loads.
//!
//! Each file step gives a process a GiB of memory it has not touched (guest RAM, page
//! cache). On a virtual host that hands free memory back to its hypervisor, that first
//! touch costs anything from a few hundred milliseconds to seconds depending on what ran
//! just before, for either emulator: compare several runs, not one. Run with
//!
//! ```text
//! cargo bench -p frontend --bench migrate [-- CASE...]
//!     CASE: idle fill dirty64m dirty1g save load
//! ```
//!
//! `TERN_QEMU` names another QEMU binary; without a working QEMU only tern runs.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// Longest a migration may run before it is cancelled.
const CAP: Duration = Duration::from_secs(60);
/// Longest wait for a process to come up, a guest to reach its steady state, a cancel.
const WAIT: Duration = Duration::from_secs(60);
/// Pause before each emulator's run. On a virtual machine whose host takes back free
/// memory (free page reporting), memory a process freed moments ago is still backed and
/// fast to touch, while memory freed seconds ago must be faulted in from the host again:
/// a gigabyte's first touch then takes from 0.2 s to over 2 s. Without a pause whichever
/// emulator runs right after the other gets the warm memory; after it, both start cold.
const SETTLE: Duration = Duration::from_secs(4);
/// Guest RAM of every case, in MiB.
const RAM_MIB: u64 = 2048;
/// QEMU has no "unlimited" bandwidth; this is far above what loopback carries.
const QEMU_UNLIMITED: u64 = 100_000_000_000;
/// How often the file cases ask for a status: the resolution of their wall times.
const POLL: Duration = Duration::from_millis(10);
const MIB: f64 = (1u64 << 20) as f64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Emu {
    Tern,
    Qemu,
}

impl Emu {
    fn name(self) -> &'static str {
        match self {
            Emu::Tern => "tern",
            Emu::Qemu => "qemu",
        }
    }
}

/// What a case does with the guest once it has reached its steady state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Live migration over loopback TCP to a waiting destination.
    Live,
    /// `stop`, then the whole state into a file.
    Save,
    /// A new process started from the file `Save` wrote.
    Load,
}

struct Case {
    name: &'static str,
    kind: Kind,
    what: &'static str,
    guest: &'static str,
    append: &'static str,
    /// The serial text that shows the guest has reached its steady state.
    ready: &'static str,
    /// RAM page payload a complete migration must have carried, in MiB: the guest's
    /// non-zero memory.
    min_payload_mib: u64,
    /// Serial text the destination's guest prints once it runs, if it prints anything.
    dst_prints: Option<&'static str>,
    /// Bytes per second; `None` is unlimited.
    bandwidth: Option<u64>,
    auto_converge: bool,
    downtime_ms: u64,
}

const CASES: &[Case] = &[
    Case {
        name: "idle",
        kind: Kind::Live,
        min_payload_mib: 0,
        dst_prints: None,
        what: "2 GiB guest idling in a HLT loop with a 100 Hz timer",
        guest: "fill",
        append: "fill=0 idle=0",
        ready: "filled 0 MiB",
        bandwidth: None,
        auto_converge: false,
        downtime_ms: 300,
    },
    Case {
        name: "fill",
        kind: Kind::Live,
        min_payload_mib: 1024,
        dst_prints: None,
        what: "2 GiB guest, 1 GiB of it non-zero, then idling",
        guest: "fill",
        append: "fill=1024 idle=0",
        ready: "filled 1024 MiB",
        bandwidth: None,
        auto_converge: false,
        downtime_ms: 300,
    },
    Case {
        name: "dirty64m",
        kind: Kind::Live,
        min_payload_mib: 64,
        dst_prints: Some("count "),
        what: "2 GiB guest rewriting 64 MiB without pause; 100 MiB/s, auto-converge",
        guest: "counter",
        append: "pages=16384",
        ready: "count 000005",
        bandwidth: Some(100 << 20),
        auto_converge: true,
        downtime_ms: 300,
    },
    Case {
        name: "dirty1g",
        kind: Kind::Live,
        min_payload_mib: 1024,
        dst_prints: Some("count "),
        what: "2 GiB guest rewriting 1 GiB without pause; unlimited, auto-converge",
        guest: "counter",
        append: "pages=262144",
        ready: "count 000005",
        bandwidth: None,
        auto_converge: true,
        downtime_ms: 300,
    },
    Case {
        name: "save",
        kind: Kind::Save,
        min_payload_mib: 1024,
        dst_prints: None,
        what: "2 GiB guest, 1 GiB of it non-zero, stopped, saved to a file",
        guest: "fill",
        append: "fill=1024 idle=0",
        ready: "filled 1024 MiB",
        bandwidth: None,
        auto_converge: false,
        downtime_ms: 300,
    },
    Case {
        name: "load",
        kind: Kind::Load,
        min_payload_mib: 1024,
        dst_prints: None,
        what: "a new process started from the file `save` wrote, until its guest runs",
        guest: "fill",
        append: "fill=1024 idle=0",
        ready: "filled 1024 MiB",
        bandwidth: None,
        auto_converge: false,
        downtime_ms: 300,
    },
];

/// How a process begins.
enum Launch<'a> {
    /// Boots the guest.
    Boot,
    /// Boots it held stopped (`--paused`, `-S`), as a destination waits for its stream.
    Stopped,
    /// A destination whose source connects to 127.0.0.1:PORT.
    FromTcp(u16),
    /// A destination that loads a file a `save` wrote.
    FromFile(&'a Path),
}

/// A QMP connection: one JSON object per line each way; events are skipped.
struct Qmp {
    r: BufReader<UnixStream>,
    w: UnixStream,
}

impl Qmp {
    /// Connects (retrying while the process starts), reads the greeting, negotiates.
    fn connect(path: &Path, proc: &mut Proc) -> Result<Qmp> {
        let deadline = Instant::now() + WAIT;
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    if let Some(st) = proc.child.try_wait()? {
                        bail!("{} exited ({st}): {}", proc.label, proc.stderr_tail());
                    }
                    if Instant::now() > deadline {
                        bail!("{}: no QMP socket: {e}", proc.label);
                    }
                    // Short: the load case's start-up time includes this wait.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        };
        s.set_read_timeout(Some(WAIT))?;
        let mut q = Qmp {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        q.cmd("qmp_capabilities", json!({}))?;
        Ok(q)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                bail!("QMP connection closed");
            }
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).context("QMP reply")?;
            if v.get("event").is_none() {
                return Ok(v);
            }
        }
    }

    fn cmd(&mut self, name: &str, args: Value) -> Result<Value> {
        let mut msg = json!({ "execute": name });
        if args.as_object().is_some_and(|a| !a.is_empty()) {
            msg["arguments"] = args;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.w.write_all(text.as_bytes())?;
        let reply = self.read()?;
        match reply.get("return") {
            Some(r) => Ok(r.clone()),
            None => Err(anyhow!("{name}: {}", reply["error"]["desc"])),
        }
    }

    fn status(&mut self) -> Result<String> {
        Ok(self.cmd("query-status", json!({}))?["status"]
            .as_str()
            .unwrap_or("?")
            .to_string())
    }
}

/// One emulator process, killed when dropped if it is still running.
struct Proc {
    label: String,
    child: Child,
    qmp_path: PathBuf,
    serial: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    fn start(
        emu: Emu,
        qemu: &str,
        case: &Case,
        dir: &Path,
        role: &str,
        launch: Launch,
    ) -> Result<Proc> {
        let label = format!("{} {role}", emu.name());
        let qmp_path = dir.join(format!("{}-{role}.qmp", emu.name()));
        let serial = dir.join(format!("{}-{role}.txt", emu.name()));
        let stderr = dir.join(format!("{}-{role}.err", emu.name()));
        let _ = std::fs::remove_file(&qmp_path);
        let _ = std::fs::remove_file(&serial);
        let kernel = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/guests")
            .join(format!("{}.bin", case.guest));
        let mut cmd = match emu {
            Emu::Tern => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_tern"));
                c.arg("run")
                    .arg("--kernel")
                    .arg(&kernel)
                    .args(["--append", case.append])
                    .args(["--memory", "2G"])
                    .arg("--serial")
                    .arg(format!("file:{}", serial.display()))
                    .arg("--qmp")
                    .arg(format!("unix:{}", qmp_path.display()))
                    .arg("--no-reboot");
                match launch {
                    Launch::Boot => {}
                    Launch::Stopped => {
                        c.arg("--paused");
                    }
                    Launch::FromTcp(port) => {
                        c.args(["--incoming", &format!("tcp:127.0.0.1:{port}")]);
                    }
                    Launch::FromFile(path) => {
                        c.arg("--incoming").arg(format!("file:{}", path.display()));
                    }
                }
                c
            }
            Emu::Qemu => {
                // -nodefaults: no VGA or NIC, whose video RAM and option ROMs tern does
                // not have and would otherwise migrate as well.
                let mut c = Command::new(qemu);
                c.args(["-accel", "tcg", "-nodefaults", "-display", "none"])
                    .arg("-kernel")
                    .arg(&kernel)
                    .args(["-append", case.append])
                    .args(["-m", &RAM_MIB.to_string()])
                    .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
                    .arg("-serial")
                    .arg(format!("file:{}", serial.display()))
                    .arg("-qmp")
                    .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
                    .arg("-no-reboot");
                match launch {
                    Launch::Boot => {}
                    Launch::Stopped => {
                        c.arg("-S");
                    }
                    Launch::FromTcp(port) => {
                        c.args(["-incoming", &format!("tcp:127.0.0.1:{port}")]);
                    }
                    Launch::FromFile(path) => {
                        c.arg("-incoming")
                            .arg(format!("exec:cat {}", shell_quote(path)));
                    }
                }
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        Ok(Proc {
            label,
            child,
            qmp_path,
            serial,
            stderr,
        })
    }

    fn serial_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    fn stderr_tail(&self) -> String {
        let t =
            String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    fn wait_serial(&mut self, text: &str, limit: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        while !self.serial_text().contains(text) {
            if let Some(st) = self.child.try_wait()? {
                bail!("{} exited ({st}): {}", self.label, self.stderr_tail());
            }
            if t0.elapsed() > limit {
                bail!(
                    "{}: no {text:?} on the serial port in {limit:?}",
                    self.label
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(t0.elapsed())
    }

    /// `quit` over QMP, then a kill if the process lingers.
    fn quit(mut self, q: Option<&mut Qmp>) {
        if let Some(q) = q {
            let _ = q.cmd("quit", json!({}));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one migration did.
#[derive(Default)]
struct Outcome {
    /// `completed`, `did not converge in 60 s`, `failed: ...`, or an error of the bench.
    result: String,
    completed: bool,
    total_ms: Option<u64>,
    downtime_ms: Option<u64>,
    transferred: Option<u64>,
    normal_bytes: Option<u64>,
    passes: Option<u64>,
    throttle: Option<u64>,
    /// Time from start to the guest's steady state on the source.
    ready: Option<Duration>,
    /// Run states after the migration: destination, source.
    states: Option<(String, String)>,
    /// File cases: `save` from the `migrate` command until `completed`; `load` from the
    /// spawn until the guest runs.
    wall: Option<Duration>,
    /// `load`: the same process without the incoming file, from the spawn until QMP
    /// answers.
    startup: Option<Duration>,
    /// `save`: an fsync of the finished file.
    sync: Option<Duration>,
    /// Size of the file saved or loaded.
    file_bytes: Option<u64>,
}

impl Outcome {
    fn take(&mut self, info: &Value) {
        let n = |v: &Value| v.as_u64();
        if let Some(v) = n(&info["total-time"]) {
            self.total_ms = Some(v);
        }
        if let Some(v) = n(&info["downtime"]) {
            self.downtime_ms = Some(v);
        }
        if let Some(v) = n(&info["cpu-throttle-percentage"]) {
            self.throttle = Some(v);
        }
        let ram = &info["ram"];
        if let Some(v) = n(&ram["transferred"]) {
            self.transferred = Some(v);
        }
        if let Some(v) = n(&ram["normal-bytes"]) {
            self.normal_bytes = Some(v);
        }
        if let Some(v) = n(&ram["dirty-sync-count"]) {
            self.passes = Some(v);
        }
    }

    /// RAM page payload per second of the whole migration.
    fn payload_rate(&self) -> Option<f64> {
        let ms = self.total_ms.filter(|&t| t > 0)?;
        Some(self.normal_bytes? as f64 / MIB / (ms as f64 / 1000.0))
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs one case; `saved` holds the files the `save` case wrote, one per emulator.
fn run_case(
    emu: Emu,
    qemu: &str,
    case: &Case,
    dir: &Path,
    saved: &mut Vec<(Emu, PathBuf)>,
) -> Outcome {
    let mut out = Outcome::default();
    let result = match case.kind {
        Kind::Live => migrate(emu, qemu, case, dir, &mut out),
        Kind::Save => save(emu, qemu, case, dir, &mut out).map(|file| {
            saved.retain(|(e, _)| *e != emu);
            saved.push((emu, file));
        }),
        Kind::Load => saved_file(emu, qemu, case, dir, saved)
            .and_then(|file| load(emu, qemu, case, dir, &file, &mut out)),
    };
    if let Err(e) = result {
        out.result = format!("error: {e:#}");
    }
    out
}

/// The file `save` wrote for `emu`, or a new one when `save` did not run or failed.
fn saved_file(
    emu: Emu,
    qemu: &str,
    case: &Case,
    dir: &Path,
    saved: &mut Vec<(Emu, PathBuf)>,
) -> Result<PathBuf> {
    if let Some((_, f)) = saved.iter().find(|(e, _)| *e == emu) {
        return Ok(f.clone());
    }
    let file = save(emu, qemu, case, dir, &mut Outcome::default()).context("saving first")?;
    saved.push((emu, file.clone()));
    Ok(file)
}

/// Quotes a path for `sh -c` (QEMU's `exec:` runs its command through the shell).
fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The `save` case: fill, `stop`, the whole state into a file. Returns the file.
fn save(emu: Emu, qemu: &str, case: &Case, dir: &Path, out: &mut Outcome) -> Result<PathBuf> {
    let t0 = Instant::now();
    let mut src = Proc::start(emu, qemu, case, dir, "save", Launch::Boot)?;
    let mut sq = Qmp::connect(&src.qmp_path.clone(), &mut src)?;
    src.wait_serial(case.ready, WAIT)?;
    out.ready = Some(t0.elapsed());
    sq.cmd("stop", json!({}))?;
    let st = sq.status()?;
    if st != "paused" {
        bail!("source is {st} after stop, not paused");
    }

    sq.cmd(
        "migrate-set-capabilities",
        json!({"capabilities": [{"capability": "auto-converge", "state": false}]}),
    )?;
    let bandwidth = match emu {
        Emu::Tern => 0,
        Emu::Qemu => QEMU_UNLIMITED,
    };
    sq.cmd(
        "migrate-set-parameters",
        json!({"max-bandwidth": bandwidth, "downtime-limit": case.downtime_ms}),
    )?;

    let file = dir.join(format!("{}.state", emu.name()));
    let _ = std::fs::remove_file(&file);
    let uri = match emu {
        Emu::Tern => format!("file:{}", file.display()),
        Emu::Qemu => format!("exec:cat > {}", shell_quote(&file)),
    };
    let start = Instant::now();
    sq.cmd("migrate", json!({ "uri": uri }))?;
    loop {
        let info = sq.cmd("query-migrate", json!({}))?;
        let status = info["status"].as_str().unwrap_or("?").to_string();
        if status == "completed" {
            out.wall = Some(start.elapsed());
            out.take(&info);
            break;
        }
        out.take(&info);
        if status == "failed" || status == "cancelled" {
            bail!("{status}: {}", info["error-desc"].as_str().unwrap_or(""));
        }
        if start.elapsed() > CAP {
            bail!("not completed in {} s", CAP.as_secs());
        }
        std::thread::sleep(POLL);
    }
    out.completed = true;
    let src_state = sq.status()?;
    out.states = Some(("-".into(), src_state.clone()));
    // QEMU's `cat` may still be writing the pipe's last bytes when `completed` shows;
    // once the process has quit, the file is whole.
    src.quit(Some(&mut sq));

    let f = std::fs::File::open(&file).with_context(|| format!("{}", file.display()))?;
    out.file_bytes = Some(f.metadata()?.len());
    let t = Instant::now();
    f.sync_all()?;
    out.sync = Some(t.elapsed());

    let payload_mib = out.normal_bytes.unwrap_or(0) >> 20;
    let file_mib = out.file_bytes.unwrap_or(0) >> 20;
    out.result = if src_state != "postmigrate" {
        format!("saved, but the source is {src_state}")
    } else if payload_mib < case.min_payload_mib || file_mib < case.min_payload_mib {
        format!("saved, but only {payload_mib} MiB of pages, a file of {file_mib} MiB")
    } else {
        "saved".into()
    };
    Ok(file)
}

/// The first and the last page the fill guest wrote (it fills the case's payload from
/// 2 MiB) must hold its pattern: each dword its page's address plus one.
fn check_fill(q: &mut Qmp, case: &Case) -> Result<()> {
    const REGION: u64 = 0x20_0000;
    let last = REGION + (case.min_payload_mib << 20) - 4096;
    for page in [REGION, last] {
        let text = q.cmd(
            "human-monitor-command",
            json!({"command-line": format!("xp /1wx {page:#x}")}),
        )?;
        let text = text.as_str().unwrap_or("");
        let word = text
            .split_once(':')
            .and_then(|(_, v)| v.trim().strip_prefix("0x"))
            .and_then(|v| u64::from_str_radix(v, 16).ok());
        if word != Some(page + 1) {
            bail!(
                "page {page:#x} holds {:?}, not {:#x}",
                text.trim(),
                page + 1
            );
        }
    }
    Ok(())
}

/// The `load` case: the process start-up alone, then a new process on `file` until its
/// guest runs. The start-up is measured with the guest held stopped: a destination does
/// not run it before the stream has loaded either, and a guest running from the start
/// would make the first QMP replies wait for its vCPU slices.
fn load(
    emu: Emu,
    qemu: &str,
    case: &Case,
    dir: &Path,
    file: &Path,
    out: &mut Outcome,
) -> Result<()> {
    out.file_bytes = Some(std::fs::metadata(file)?.len());

    let t0 = Instant::now();
    let mut boot = Proc::start(emu, qemu, case, dir, "boot", Launch::Stopped)?;
    let mut bq = Qmp::connect(&boot.qmp_path.clone(), &mut boot)?;
    bq.status()?;
    out.startup = Some(t0.elapsed());
    boot.quit(Some(&mut bq));

    let t0 = Instant::now();
    let mut dst = Proc::start(emu, qemu, case, dir, "load", Launch::FromFile(file))?;
    let mut dq = Qmp::connect(&dst.qmp_path.clone(), &mut dst)?;
    let mut sent_cont = false;
    loop {
        let st = dq.status()?;
        match st.as_str() {
            "running" => break,
            // A guest stopped when saved arrives stopped.
            "paused" if !sent_cont => {
                dq.cmd("cont", json!({}))?;
                sent_cont = true;
                continue;
            }
            _ => {}
        }
        if t0.elapsed() > WAIT {
            let info = dq.cmd("query-migrate", json!({}))?;
            bail!("the guest is {st}, not running, after {WAIT:?}; query-migrate: {info}");
        }
        std::thread::sleep(POLL);
    }
    out.wall = Some(t0.elapsed());
    out.completed = true;

    let info = dq.cmd("query-migrate", json!({}))?;
    out.take(&info);
    let incoming = info["status"].as_str().unwrap_or("?").to_string();
    let fill = check_fill(&mut dq, case);
    // Still running a moment later: the guest did not stop or reset at once.
    std::thread::sleep(Duration::from_millis(300));
    let dst_state = dq.status()?;
    out.states = Some((dst_state.clone(), "-".into()));
    let payload_mib = out.normal_bytes.map(|b| b >> 20);
    out.result = if dst_state != "running" {
        format!("loaded, but the guest is {dst_state} 300 ms later")
    } else if let Err(e) = fill {
        format!("loaded, but {e:#}")
    } else if payload_mib.is_some_and(|m| m < case.min_payload_mib) {
        format!(
            "loaded, but only {} MiB of pages came",
            payload_mib.unwrap_or(0)
        )
    } else if emu == Emu::Tern && incoming != "completed" {
        format!("loaded, but query-migrate says {incoming}")
    } else if sent_cont {
        "loaded, running after cont".into()
    } else {
        "loaded, running".into()
    };
    dst.quit(Some(&mut dq));
    Ok(())
}

fn migrate(emu: Emu, qemu: &str, case: &Case, dir: &Path, out: &mut Outcome) -> Result<()> {
    let t0 = Instant::now();
    let mut src = Proc::start(emu, qemu, case, dir, "src", Launch::Boot)?;
    let mut sq = Qmp::connect(&src.qmp_path.clone(), &mut src)?;
    src.wait_serial(case.ready, WAIT)?;
    out.ready = Some(t0.elapsed());

    let port = free_port()?;
    let mut dst = Proc::start(emu, qemu, case, dir, "dst", Launch::FromTcp(port))?;
    let mut dq = Qmp::connect(&dst.qmp_path.clone(), &mut dst)?;
    let st = dq.status()?;
    if st != "inmigrate" {
        bail!("destination is {st}, not inmigrate");
    }

    sq.cmd(
        "migrate-set-capabilities",
        json!({"capabilities": [{"capability": "auto-converge", "state": case.auto_converge}]}),
    )?;
    let bandwidth = match (case.bandwidth, emu) {
        (Some(b), _) => b,
        (None, Emu::Tern) => 0,
        (None, Emu::Qemu) => QEMU_UNLIMITED,
    };
    sq.cmd(
        "migrate-set-parameters",
        json!({"max-bandwidth": bandwidth, "downtime-limit": case.downtime_ms}),
    )?;

    let start = Instant::now();
    sq.cmd("migrate", json!({"uri": format!("tcp:127.0.0.1:{port}")}))?;
    let status = loop {
        let info = sq.cmd("query-migrate", json!({}))?;
        out.take(&info);
        let status = info["status"].as_str().unwrap_or("?").to_string();
        match status.as_str() {
            "completed" => break status,
            "failed" | "cancelled" => {
                bail!("{status}: {}", info["error-desc"].as_str().unwrap_or(""));
            }
            _ => {}
        }
        if start.elapsed() > CAP {
            break "capped".to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    if status == "capped" {
        out.result = format!("did not converge in {} s", CAP.as_secs());
        sq.cmd("migrate_cancel", json!({}))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let s = sq.cmd("query-migrate", json!({}))?["status"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            if s == "cancelled" || s == "failed" {
                break;
            }
            if Instant::now() > deadline {
                bail!("cancel did not finish: {s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The source runs on; the destination has nothing to run.
        out.states = Some(("-".into(), sq.status()?));
        src.quit(Some(&mut sq));
        dst.quit(Some(&mut dq));
        return Ok(());
    }

    out.completed = true;
    // The destination resumes once it has loaded the device state, just after the
    // source reports completion.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dst_state = loop {
        let s = dq.status()?;
        if s == "running" || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let src_state = sq.status()?;
    let payload_mib = out.normal_bytes.unwrap_or(0) >> 20;
    let printed = match case.dst_prints {
        Some(text) => dst.wait_serial(text, Duration::from_secs(10)).is_ok(),
        None => true,
    };
    out.result = if dst_state != "running" || src_state != "postmigrate" {
        format!("completed, but dst {dst_state}, src {src_state}")
    } else if payload_mib < case.min_payload_mib {
        format!("completed, but only {payload_mib} MiB of pages went")
    } else if !printed {
        "completed, but the destination's guest printed nothing".into()
    } else {
        "completed".into()
    };
    out.states = Some((dst_state, src_state));
    src.quit(Some(&mut sq));
    dst.quit(Some(&mut dq));
    Ok(())
}

fn qemu_binary() -> Option<String> {
    let bin = std::env::var("TERN_QEMU").unwrap_or_else(|_| "qemu-system-i386".into());
    let ok = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(bin)
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn secs(d: Option<Duration>) -> String {
    opt(d.map(|d| format!("{:.3}", d.as_secs_f64())))
}

fn row(case: &str, emu: &str, o: &Outcome) -> String {
    format!(
        "{:<9} {:<5} {:>8} {:>9} {:>9} {:>7} {:>9} {:>6} {:>7} {:>7} {:>8} {:>6}  {}",
        case,
        emu,
        opt(o.total_ms.map(|t| format!("{:.2}", t as f64 / 1000.0))),
        opt(o.downtime_ms.filter(|_| o.completed)),
        opt(o.transferred.map(|b| format!("{:.0}", b as f64 / MIB))),
        opt(o.passes),
        opt(o.payload_rate().map(|r| format!("{r:.0}"))),
        opt(o.throttle),
        secs(o.wall),
        secs(o.startup),
        opt(o.file_bytes.map(|b| format!("{:.1}", b as f64 / MIB))),
        secs(o.sync),
        o.result,
    )
}

fn main() {
    // `cargo bench -p frontend --bench migrate -- idle fill` runs only those.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for o in &only {
        if !CASES.iter().any(|c| c.name == o) {
            let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
            eprintln!("unknown case {o:?}; cases: {}", names.join(" "));
            std::process::exit(2);
        }
    }
    let qemu = qemu_binary();
    let mut emus = vec![Emu::Tern];
    match &qemu {
        Some(q) => {
            emus.push(Emu::Qemu);
            let v = Command::new(q).arg("--version").output().ok();
            let v = v.map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            println!("QEMU: {}", v.unwrap_or_default());
        }
        None => println!("qemu-system-i386 not found (set TERN_QEMU): tern only"),
    }
    let qemu = qemu.unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("tern-migbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");

    let header = format!(
        "{:<9} {:<5} {:>8} {:>9} {:>9} {:>7} {:>9} {:>6} {:>7} {:>7} {:>8} {:>6}  {}",
        "case",
        "emu",
        "total s",
        "downtime",
        "sent MiB",
        "passes",
        "pay MiB/s",
        "thr %",
        "wall s",
        "start s",
        "file MiB",
        "sync s",
        "result"
    );
    let mut rows = Vec::new();
    let mut saved = Vec::new();
    for case in CASES
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.name))
    {
        let bw = case
            .bandwidth
            .map_or("unlimited".to_string(), |b| format!("{} MiB/s", b >> 20));
        let settings = match case.kind {
            Kind::Load => "from the file save wrote".to_string(),
            _ => format!(
                "max-bandwidth {bw}, downtime-limit {} ms, auto-converge {}",
                case.downtime_ms,
                if case.auto_converge { "on" } else { "off" },
            ),
        };
        println!(
            "\n{}: {}\n  guest {}.bin \"{}\", {RAM_MIB} MiB; {settings}",
            case.name, case.what, case.guest, case.append,
        );
        for &emu in &emus {
            // See SETTLE: each emulator starts on memory as cold as the other's.
            std::thread::sleep(SETTLE);
            let o = run_case(emu, &qemu, case, &dir, &mut saved);
            let detail = match case.kind {
                Kind::Live | Kind::Save => format!(
                    "guest ready after {}",
                    opt(o.ready.map(|d| format!("{:.1} s", d.as_secs_f64()))),
                ),
                Kind::Load => format!(
                    "start-up alone {} s, to running {} s",
                    secs(o.startup),
                    secs(o.wall)
                ),
            };
            println!(
                "  {:<5} {detail}; states after: {}",
                emu.name(),
                o.states
                    .as_ref()
                    .map_or("-".into(), |(d, s)| format!("dst {d}, src {s}")),
            );
            println!("  {}", row(case.name, emu.name(), &o));
            rows.push(row(case.name, emu.name(), &o));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("\n{header}");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\ntotal s and downtime (ms) as the source's query-migrate reports them; sent MiB: \
         ram.transferred; passes: ram.dirty-sync-count; pay MiB/s: ram.normal-bytes over the \
         total time; thr %: the last auto-converge throttle seen.\n\
         save: the same from the saving process; wall s: from the migrate command until \
         query-migrate says completed; file MiB: the file's size; sync s: an fsync of the \
         file afterwards (tern fsyncs before completing).\n\
         load: total s, sent MiB and pay MiB/s from the new process's query-migrate (tern \
         only); wall s: from the spawn until the guest runs (including a cont); \
         start s: the same command line without the file, guest held stopped, from the spawn \
         until QMP answers."
    );
}
