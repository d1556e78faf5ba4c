//! `tern`: the command-line front end of the tern PC emulator.
//!
//! `tern run` builds a [`hw::PcMachine`] from the options, opens the host backends (serial,
//! debug console, monitors) and hands everything to the [`event_loop`]. Errors are reported
//! as `tern: error: ...` with exit status 2; otherwise the exit status is the guest's
//! debug-exit status, or 0 after `quit` or a `--no-reboot` shutdown.
//!
//! Modules:
//! * [`options`]: parsers for option values (sizes, backend specs);
//! * [`event_loop`]: the single-threaded loop running the vCPU and the host I/O;
//! * [`registry`]: ownership of the polled host sources (the only `unsafe`);
//! * [`chardev`]: serial and debug-console backends;
//! * [`monitor`]: the command model, the human monitor language and its connections;
//! * [`vm`]: the machine plus its run state.

mod chardev;
mod event_loop;
mod migrate;
mod monitor;
mod options;
mod registry;
mod snapshots;
mod vm;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use argh::FromArgs;
use hw::boot::{detect, ImageKind};
use hw::clock::ClockMode;
use hw::rtc::{RtcBase, DEFAULT_BASE_SECONDS};
use hw::{BootSource, MachineConfig, PcMachine};

use crate::event_loop::{Backends, EventLoop};
use crate::options::{DebugconSpec, MonitorSpec, SerialSpec};

/// The guest booted when neither --kernel nor --bios is given.
static DEMO_GUEST: &[u8] = include_bytes!("../../testdata/guests/demo.bin");

/// Exit status for errors detected by tern itself (bad options, unreadable files).
pub(crate) const ERROR_STATUS: i32 = 2;

#[derive(FromArgs, Debug)]
/// tern: a pure-software x86 PC emulator.
struct Tern {
    #[argh(subcommand)]
    command: Subcommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Subcommand {
    Run(RunArgs),
    Snapshot(SnapshotArgs),
}

#[derive(FromArgs, Debug)]
/// Examine a snapshot or migration stream file without running it.
#[argh(subcommand, name = "snapshot")]
struct SnapshotArgs {
    #[argh(subcommand)]
    command: SnapshotCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum SnapshotCommand {
    Inspect(InspectArgs),
    Verify(VerifyArgs),
}

#[derive(FromArgs, Debug)]
/// Print the sections, versions and sizes a stream holds.
#[argh(subcommand, name = "inspect")]
struct InspectArgs {
    /// print the description as JSON
    #[argh(switch)]
    json: bool,
    /// the snapshot file
    #[argh(positional)]
    file: PathBuf,
}

#[derive(FromArgs, Debug)]
/// Check a stream's checksum and structure; exit status 0 only if it is intact.
#[argh(subcommand, name = "verify")]
struct VerifyArgs {
    /// the snapshot file
    #[argh(positional)]
    file: PathBuf,
}

#[derive(FromArgs, Debug)]
/// Boot a guest. Without --kernel or --bios, boots the built-in demo guest.
#[argh(subcommand, name = "run")]
struct RunArgs {
    /// kernel to boot: a Multiboot kernel or a Linux bzImage
    #[argh(option)]
    kernel: Option<PathBuf>,
    /// initial ramdisk for a Linux kernel
    #[argh(option)]
    initrd: Option<PathBuf>,
    /// kernel command line (passed after the kernel's path, as QEMU does)
    #[argh(option)]
    append: Option<String>,
    /// firmware image to start at the reset vector
    #[argh(option)]
    bios: Option<PathBuf>,
    /// guest RAM size: a number with K/M/G suffix, plain numbers in MiB (default 128M)
    #[argh(option, from_str_fn(options::parse_memory_size))]
    memory: Option<u64>,
    /// serial port backend: stdio, file:PATH, unix:PATH or none (default stdio)
    #[argh(option, from_str_fn(options::parse_serial))]
    serial: Option<SerialSpec>,
    /// debug console backend: stdio, file:PATH or none (default none)
    #[argh(option, from_str_fn(options::parse_debugcon))]
    debugcon: Option<DebugconSpec>,
    /// debug console I/O port (default 0xe9)
    #[argh(option, from_str_fn(options::parse_port))]
    debugcon_port: Option<u16>,
    /// human monitor: stdio, unix:PATH or tcp:[HOST]:PORT (repeatable; TCP without a host
    /// listens on 127.0.0.1)
    #[argh(option, from_str_fn(options::parse_monitor))]
    monitor: Vec<MonitorSpec>,
    /// JSON (QMP) monitor: unix:PATH, tcp:[HOST]:PORT or stdio (repeatable; TCP without a
    /// host listens on 127.0.0.1; unix sockets are owner-only)
    #[argh(option, from_str_fn(options::parse_monitor))]
    qmp: Vec<MonitorSpec>,
    /// start with the CPU stopped (resume with the monitor's `cont`)
    #[argh(switch)]
    paused: bool,
    /// end the emulator instead of resetting on a guest reset or triple fault
    #[argh(switch)]
    no_reboot: bool,
    /// guest time: realtime (follows the host clock, the default) or deterministic (a fixed
    /// time per instruction; the same image and input give the same run)
    #[argh(option, from_str_fn(options::parse_clock))]
    clock: Option<ClockMode>,
    /// date and time the RTC starts from: utc (or now) for the host's UTC time, or
    /// YYYY-MM-DDTHH:MM:SS (default utc with a realtime clock, 2000-01-01T00:00:00 with a
    /// deterministic one)
    #[argh(option, from_str_fn(options::parse_rtc_base))]
    rtc_base: Option<RtcBase>,
    /// directory of named snapshots (default $XDG_DATA_HOME/tern/snapshots)
    #[argh(option)]
    snapshot_dir: Option<PathBuf>,
    /// start from the named snapshot instead of booting
    #[argh(option)]
    loadvm: Option<String>,
    /// wait for a migration stream on URI (tcp:HOST:PORT, unix:PATH, exec:CMD, fd:NAME,
    /// file:PATH) and run the guest it brings; `defer` waits for migrate_incoming
    #[argh(option)]
    incoming: Option<String>,
    /// print the SHA-256 digest of the machine state (as `info digest`) on stderr at exit
    #[argh(switch)]
    digest_on_exit: bool,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = split_equals(std::env::args().collect());
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmd = Path::new(strs.first().copied().unwrap_or("tern"))
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("tern");
    let tern = match Tern::from_args(&[cmd], strs.get(1..).unwrap_or(&[])) {
        Ok(t) => t,
        Err(early) => {
            // `--help` is not an error; a bad option is.
            if early.status.is_ok() {
                println!("{}", early.output);
                std::process::exit(0);
            }
            eprintln!("tern: error: {}", early.output.trim_end());
            std::process::exit(ERROR_STATUS);
        }
    };
    let status = match run(tern) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tern: error: {e:#}");
            ERROR_STATUS
        }
    };
    std::process::exit(status);
}

/// Turns `--option=value` into `--option value`: argh only knows the second spelling, and
/// the first is what most command-line tools accept. Arguments after `--` are left alone.
fn split_equals(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut literal = false;
    for a in args {
        if a == "--" {
            literal = true;
        }
        match a.split_once('=') {
            Some((opt, val)) if !literal && opt.starts_with("--") && opt.len() > 2 => {
                out.push(opt.to_string());
                out.push(val.to_string());
            }
            _ => out.push(a),
        }
    }
    out
}

fn run(tern: Tern) -> Result<i32> {
    let args = match tern.command {
        Subcommand::Run(args) => args,
        Subcommand::Snapshot(s) => return snapshot_tool(s),
    };
    let boot = boot_source(&args)?;
    let debugcon = args.debugcon.clone().unwrap_or(DebugconSpec::None);
    let clock = args.clock.unwrap_or(ClockMode::Realtime);
    let config = MachineConfig {
        ram_size: args.memory.unwrap_or(128 << 20),
        boot,
        debugcon_port: match debugcon {
            DebugconSpec::None => None,
            _ => Some(args.debugcon_port.unwrap_or(0xE9)),
        },
        clock,
        rtc_base: args.rtc_base.unwrap_or(match clock {
            ClockMode::Realtime => RtcBase::HostUtc,
            ClockMode::Deterministic { .. } => RtcBase::Fixed(DEFAULT_BASE_SECONDS),
        }),
        no_reboot: args.no_reboot,
    };
    let what = match (&args.kernel, &args.bios) {
        (Some(k), _) => format!("cannot boot {}", k.display()),
        (None, Some(b)) => format!("cannot start firmware {}", b.display()),
        (None, None) => "cannot boot the built-in demo guest".to_string(),
    };
    let machine = PcMachine::new(config).context(what)?;
    let store = snapshots::SnapshotStore::new(
        args.snapshot_dir
            .clone()
            .unwrap_or_else(snapshots::SnapshotStore::default_dir),
    );
    let paused = args.paused || args.incoming.is_some();
    let mut vm = vm::Vm::new(machine, paused, store);
    if let Some(tag) = &args.loadvm {
        vm.loadvm(tag).map_err(anyhow::Error::msg)?;
    }
    let backends = Backends {
        serial: args.serial.clone().unwrap_or(SerialSpec::Stdio),
        debugcon,
        monitors: args.monitor.clone(),
        qmp: args.qmp.clone(),
        incoming: args.incoming.clone().filter(|u| u != "defer"),
        digest_on_exit: args.digest_on_exit,
    };
    EventLoop::new(vm, backends)?.run()
}

/// `tern snapshot inspect|verify FILE`.
fn snapshot_tool(s: SnapshotArgs) -> Result<i32> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .with_context(|| format!("cannot open {}", p.display()))
    };
    match s.command {
        SnapshotCommand::Inspect(a) => {
            let d = savevm::inspect(open(&a.file)?)
                .with_context(|| format!("{} is not a readable tern stream", a.file.display()))?;
            if a.json {
                println!("{}", snapshots::describe_json(&d));
            } else {
                print!("{}", snapshots::describe(&d));
            }
            Ok(0)
        }
        SnapshotCommand::Verify(a) => match savevm::verify(open(&a.file)?) {
            Ok(d) => {
                println!(
                    "{}: intact ({} sections, {} RAM pages, checksum ok)",
                    a.file.display(),
                    d.sections.len(),
                    d.ram_pages()
                );
                Ok(0)
            }
            Err(e) => {
                println!("{}: damaged: {e}", a.file.display());
                Ok(1)
            }
        },
    }
}

fn read_image(path: &Path, what: &str) -> Result<Arc<[u8]>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok(bytes.into())
}

/// Chooses what to boot, refusing kernels tern cannot start with a message that says what
/// the file is.
fn boot_source(args: &RunArgs) -> Result<BootSource> {
    match (&args.kernel, &args.bios) {
        (Some(_), Some(_)) => bail!("--kernel and --bios cannot be combined (there is no firmware interface to pass a kernel to a BIOS)"),
        (None, Some(b)) => {
            if args.append.is_some() {
                bail!("--append needs --kernel");
            }
            Ok(BootSource::Bios {
                image: read_image(b, "firmware image")?,
            })
        }
        (Some(k), None) => {
            let image = read_image(k, "kernel")?;
            let name = k.display();
            match detect(&image) {
                ImageKind::Multiboot => {}
                ImageKind::LinuxBzImage => {
                    let initrd = match &args.initrd {
                        Some(p) => Some(read_image(p, "initrd")?),
                        None => None,
                    };
                    return Ok(BootSource::Linux {
                        kernel: image,
                        initrd,
                        cmdline: args.append.clone().unwrap_or_default(),
                    });
                }
                ImageKind::Elf => bail!(
                    "{name} is an ELF file without a Multiboot header; --kernel takes Multiboot kernels and Linux bzImages"
                ),
                ImageKind::Unknown => bail!(
                    "{name} is neither a Multiboot kernel (no Multiboot header in its first 8192 bytes) nor a Linux bzImage"
                ),
            }
            if args.initrd.is_some() {
                bail!("--initrd needs a Linux kernel; {name} is a Multiboot kernel");
            }
            // QEMU passes the kernel's path as the first word of the command line.
            let cmdline = format!("{} {}", k.display(), args.append.as_deref().unwrap_or(""));
            Ok(BootSource::Multiboot { image, cmdline })
        }
        (None, None) => {
            if args.append.is_some() {
                bail!("--append needs --kernel");
            }
            Ok(BootSource::Multiboot {
                image: Arc::from(DEMO_GUEST),
                cmdline: "demo.bin ".to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_options_are_split() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_equals(v(&[
                "tern",
                "run",
                "--memory=1G",
                "--append",
                "a=b",
                "--x="
            ])),
            v(&["tern", "run", "--memory", "1G", "--append", "a=b", "--x", ""])
        );
        assert_eq!(split_equals(v(&["--", "--a=b"])), v(&["--", "--a=b"]));
    }
}
