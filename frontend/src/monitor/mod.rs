//! The monitor's command model, shared by every monitor front end.
//!
//! A front end turns its wire format into a [`Command`] (the human monitor with
//! [`human::parse_human`]), runs it with [`execute`], and renders the structured [`Reply`]
//! in its own style (the human monitor as QEMU's HMP text). Keeping parsing, execution and
//! rendering apart is what lets a JSON (QMP-style) monitor reuse the same commands later.
//!
//! * [`human`]: the line syntax and the text rendering.
//! * [`server`]: connections: stdio and socket clients, line assembly, prompts.

pub mod human;
pub mod qmp;
pub mod server;

use std::fmt;

use cpu::CpuState;
use memory::GuestPhysAddr;

use migration::{MigrationInfo, ParamValues};

use crate::snapshots::SnapshotInfo;
use crate::vm::{Vm, VmEvent};

/// The most bytes one `x`/`xp` may dump: bounds the reply a single line can produce.
pub const MAX_DUMP_BYTES: u64 = 64 * 1024;

/// One monitor command, independent of how it was spelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    InfoStatus,
    InfoRegisters,
    /// `x` (linear address) or `xp` (physical address).
    MemoryDump(DumpRequest),
    Stop,
    Cont,
    SystemReset,
    Quit,
    /// `info digest`: SHA-256 of the guest-visible machine state.
    InfoDigest,
    /// `savevm [TAG]` (QEMU names an untagged snapshot after the date).
    Savevm(Option<String>),
    Loadvm(String),
    Delvm(String),
    InfoSnapshots,
    /// `migrate [-d] URI`: without `-d` the issuing human monitor waits for the end.
    Migrate {
        uri: String,
        detach: bool,
    },
    MigrateIncoming(String),
    MigrateCancel,
    /// `migrate_set_parameter`, and `migrate_set_speed`/`migrate_set_downtime` as the
    /// `max-bandwidth`/`downtime-limit` parameters.
    MigrateSetParameter {
        name: String,
        value: u64,
    },
    MigrateSetCapability {
        name: String,
        on: bool,
    },
    InfoMigrate,
    InfoMigrateParameters,
    InfoMigrateCapabilities,
    /// `getfd NAME`: keep the descriptor sent with this command under NAME.
    Getfd(String),
    Closefd(String),
}

/// Which address space a dump reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSpace {
    /// Through segmentation-free linear addresses (the CPU's translation).
    Linear,
    Physical,
}

/// How each unit of a dump is printed (QEMU's `/FMT` letters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFormat {
    /// `x`
    Hex,
    /// `d`
    Signed,
    /// `u`
    Unsigned,
    /// `o`
    Octal,
    /// `c`: one byte at a time, as a quoted character.
    Char,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpRequest {
    pub space: AddressSpace,
    pub addr: u64,
    pub count: u64,
    pub format: DumpFormat,
    /// Unit size in bytes: 1, 2, 4 or 8.
    pub unit: u8,
}

/// Name, argument synopsis and description of each command, for `help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    pub name: &'static str,
    pub args: &'static str,
    pub help: &'static str,
}

pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "cont|c",
        args: "",
        help: "resume emulation",
    },
    CommandInfo {
        name: "help|?",
        args: "",
        help: "show the help",
    },
    CommandInfo {
        name: "info",
        args: "status|registers",
        help: "show the VM status or the CPU registers",
    },
    CommandInfo {
        name: "quit|q",
        args: "",
        help: "quit the emulator",
    },
    CommandInfo {
        name: "stop",
        args: "",
        help: "stop emulation",
    },
    CommandInfo {
        name: "system_reset",
        args: "",
        help: "reset the system",
    },
    CommandInfo {
        name: "x",
        args: "/fmt addr",
        help: "virtual memory dump starting at 'addr'",
    },
    CommandInfo {
        name: "xp",
        args: "/fmt addr",
        help: "physical memory dump starting at 'addr'",
    },
];

/// The CPU state for `info registers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterDump {
    pub state: CpuState,
    pub a20: bool,
}

/// Bytes read for `x`/`xp`, with the request that shapes their printing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryDump {
    pub request: DumpRequest,
    /// `request.count * request.unit` bytes from `request.addr`, or fewer when the range
    /// ran into memory that cannot be read; then `unreadable` is set.
    pub data: Vec<u8>,
    pub unreadable: bool,
}

/// What a command produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Success with nothing to show.
    Done,
    Help(&'static [CommandInfo]),
    Status {
        running: bool,
        /// QEMU's run state name ([`Vm::status`]).
        status: &'static str,
    },
    Registers(Box<RegisterDump>),
    Memory(MemoryDump),
    Digest([u8; 32]),
    Snapshots(Vec<SnapshotInfo>),
    Migration(Box<MigrationInfo>),
    MigrationParameters(ParamValues),
    MigrationCapabilities(Vec<(&'static str, bool)>),
    /// A migration started; a human monitor without `-d` waits for it to end.
    MigrationStarted {
        wait: bool,
    },
}

/// A command that parsed but could not be carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    TooLarge {
        bytes: u64,
    },
    Reset(String),
    /// Anything else, with QEMU-like wording.
    Failed(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::TooLarge { bytes } => {
                write!(
                    f,
                    "dump of {bytes} bytes is too large (at most {MAX_DUMP_BYTES} at a time)"
                )
            }
            CommandError::Reset(e) => write!(f, "system reset failed: {e}"),
            CommandError::Failed(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for CommandError {}

/// Runs one command against the VM.
pub fn execute(vm: &mut Vm, cmd: Command) -> Result<Reply, CommandError> {
    match cmd {
        Command::Help => Ok(Reply::Help(COMMANDS)),
        Command::InfoStatus => Ok(Reply::Status {
            running: vm.is_running(),
            status: vm.status(),
        }),
        Command::InfoRegisters => Ok(Reply::Registers(Box::new(RegisterDump {
            state: vm.machine.cpu.s.clone(),
            a20: vm.machine.memory().a20(),
        }))),
        Command::MemoryDump(req) => dump(vm, req).map(Reply::Memory),
        // A destination waiting for its stream must not run: these only say whether it
        // starts once the stream has loaded, as in QEMU.
        Command::Stop if vm.migration.incoming_active() => {
            vm.migration.autostart = false;
            Ok(Reply::Done)
        }
        Command::Cont if vm.migration.incoming_active() => {
            vm.migration.autostart = true;
            Ok(Reply::Done)
        }
        Command::Stop => {
            vm.stop();
            Ok(Reply::Done)
        }
        Command::Cont => {
            vm.cont();
            Ok(Reply::Done)
        }
        Command::SystemReset => {
            vm.machine
                .reset()
                .map_err(|e| CommandError::Reset(e.to_string()))?;
            vm.event(VmEvent::Reset {
                guest: false,
                reason: "host-qmp-system-reset",
            });
            Ok(Reply::Done)
        }
        Command::Quit => {
            vm.event(VmEvent::Shutdown {
                guest: false,
                reason: "host-qmp-quit",
            });
            vm.request_exit(0);
            Ok(Reply::Done)
        }
        Command::InfoDigest => Ok(Reply::Digest(vm.machine.digest())),
        Command::Savevm(tag) => vm
            .savevm(tag)
            .map(|_| Reply::Done)
            .map_err(CommandError::Failed),
        Command::Loadvm(tag) => vm
            .loadvm(&tag)
            .map(|()| Reply::Done)
            .map_err(CommandError::Failed),
        Command::Delvm(tag) => vm
            .snapshots
            .delete(&tag)
            .map(|()| Reply::Done)
            .map_err(|e| CommandError::Failed(e.to_string())),
        Command::InfoSnapshots => vm
            .snapshots
            .list()
            .map(Reply::Snapshots)
            .map_err(|e| CommandError::Failed(e.to_string())),
        Command::Migrate { uri, detach } => {
            vm.start_migration(&uri).map_err(CommandError::Failed)?;
            Ok(Reply::MigrationStarted { wait: !detach })
        }
        Command::MigrateIncoming(uri) => vm
            .start_incoming(&uri)
            .map(|()| Reply::Done)
            .map_err(CommandError::Failed),
        Command::MigrateCancel => {
            vm.migration.cancel();
            Ok(Reply::Done)
        }
        Command::MigrateSetParameter { name, value } => vm
            .migration
            .params
            .set(&name, value)
            .map(|()| Reply::Done)
            .map_err(|e| CommandError::Failed(e.to_string())),
        Command::MigrateSetCapability { name, on } => {
            if vm.migration.outgoing_active() {
                return Err(CommandError::Failed(
                    "There's a migration process in progress".into(),
                ));
            }
            vm.migration
                .params
                .set_capability(&name, on)
                .map(|()| Reply::Done)
                .map_err(|e| CommandError::Failed(e.to_string()))
        }
        Command::InfoMigrate => Ok(Reply::Migration(Box::new(vm.migration.info()))),
        Command::InfoMigrateParameters => {
            Ok(Reply::MigrationParameters(vm.migration.params.values()))
        }
        Command::InfoMigrateCapabilities => Ok(Reply::MigrationCapabilities(
            vm.migration.params.capabilities(),
        )),
        Command::Getfd(name) => {
            let fd = vm.offered_fds.pop().ok_or_else(|| {
                CommandError::Failed("No file descriptor supplied via SCM_RIGHTS".into())
            })?;
            vm.migration.fds.insert(name, fd);
            Ok(Reply::Done)
        }
        Command::Closefd(name) => match vm.migration.fds.remove(&name) {
            Some(_) => Ok(Reply::Done),
            None => Err(CommandError::Failed(format!(
                "File descriptor named '{name}' not found"
            ))),
        },
    }
}

/// The largest physical address + 1: the CPU has 32 address lines (no PAE).
const PHYS_LIMIT: u64 = 1 << 32;
const PAGE: u64 = 4096;

fn dump(vm: &Vm, req: DumpRequest) -> Result<MemoryDump, CommandError> {
    let unit = if req.format == DumpFormat::Char {
        1
    } else {
        u64::from(req.unit)
    };
    let len = req.count.saturating_mul(unit);
    if len > MAX_DUMP_BYTES {
        return Err(CommandError::TooLarge { bytes: len });
    }
    let mem = vm.machine.memory();
    let mut data = Vec::with_capacity(len as usize);
    let mut unreadable = false;
    // Page by page: linear pages need not be physically contiguous once paging exists.
    while (data.len() as u64) < len {
        let a = req.addr + data.len() as u64;
        let n = (PAGE - a % PAGE).min(len - data.len() as u64);
        let phys = match req.space {
            AddressSpace::Physical => Some(a),
            AddressSpace::Linear => u32::try_from(a)
                .ok()
                .and_then(|lin| vm.machine.cpu.translate_debug(lin)),
        };
        let Some(phys) = phys.filter(|&p| p < PHYS_LIMIT && PHYS_LIMIT - p >= n) else {
            unreadable = true;
            break;
        };
        let start = data.len();
        data.resize(start + n as usize, 0);
        mem.read_phys(GuestPhysAddr(phys), &mut data[start..]);
    }
    Ok(MemoryDump {
        request: DumpRequest {
            unit: unit as u8,
            ..req
        },
        data,
        unreadable,
    })
}
