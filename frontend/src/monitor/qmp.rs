//! QMP, the JSON monitor protocol of QEMU, over the same command model as the human monitor.
//!
//! ```text
//! server: {"QMP": {"version": {...}, "capabilities": []}}          greeting on connect
//! client: {"execute": "qmp_capabilities"}                           negotiation first
//! server: {"return": {}}
//! client: {"execute": "query-status", "id": 7}
//! server: {"return": {"status": "running", "running": true}, "id": 7}
//! client: {"execute": "nonsense"}
//! server: {"error": {"class": "CommandNotFound", "desc": "The command nonsense has not been found"}}
//! server: {"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}
//! ```
//!
//! Messages are JSON objects, one after another, not necessarily one per line. A client
//! sees asynchronous events only after negotiation. Malformed JSON, a message that is not
//! an object, one larger than [`MAX_MESSAGE`], or an unknown command each get an error
//! reply; the connection stays open and the guest runs on, as with QEMU.
//!
//! Each QMP command is translated into the shared [`Command`] (or answered here, for the
//! protocol's own queries), run with [`execute`], and its [`Reply`] rendered as the JSON
//! QEMU would return. `human-monitor-command` runs a human-monitor line through the human
//! parser and returns its text, so nothing is implemented twice.

use serde_json::{json, Map, Value};

use super::human::{parse_human, render, render_error};
use super::{execute, Command, CommandError, Reply};
use crate::vm::{Vm, VmEvent};

/// Largest accepted message; beyond it the input is discarded up to the next newline.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The QEMU release whose QMP schema tern follows for the commands it implements.
const QEMU_VERSION: (u32, u32, u32) = (8, 2, 0);

/// QMP error classes (QEMU's `QapiErrorClass`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    GenericError,
    CommandNotFound,
}

impl ErrorClass {
    fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
        }
    }
}

/// A QMP failure: its class and human-readable description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpError {
    pub class: ErrorClass,
    pub desc: String,
}

impl QmpError {
    pub fn generic(desc: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::GenericError,
            desc: desc.into(),
        }
    }
}

impl From<CommandError> for QmpError {
    fn from(e: CommandError) -> Self {
        QmpError::generic(e.to_string())
    }
}

/// The QMP commands tern answers, for `query-commands`.
pub const QMP_COMMANDS: &[&str] = &[
    "closefd",
    "cont",
    "getfd",
    "human-monitor-command",
    "job-dismiss",
    "migrate",
    "migrate-incoming",
    "migrate-set-capabilities",
    "migrate-set-parameters",
    "migrate_cancel",
    "qmp_capabilities",
    "query-commands",
    "query-jobs",
    "query-migrate",
    "query-migrate-capabilities",
    "query-migrate-parameters",
    "query-status",
    "query-version",
    "quit",
    "snapshot-delete",
    "snapshot-load",
    "snapshot-save",
    "stop",
    "system_reset",
];

/// The greeting sent when a client connects.
pub fn greeting() -> String {
    let (major, minor, micro) = QEMU_VERSION;
    let v = json!({
        "QMP": {
            "version": {
                "qemu": {"major": major, "minor": minor, "micro": micro},
                "package": format!("tern {}", env!("CARGO_PKG_VERSION")),
            },
            "capabilities": [],
        }
    });
    line(&v)
}

/// An asynchronous event, stamped with the host's wall-clock time as QEMU does.
pub fn event(name: &str, data: Value, now: std::time::SystemTime) -> String {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("event".into(), Value::from(name));
    if !data.is_null() {
        m.insert("data".into(), data);
    }
    m.insert(
        "timestamp".into(),
        json!({"seconds": t.as_secs(), "microseconds": t.subsec_micros()}),
    );
    line(&Value::Object(m))
}

/// The QMP event for a VM state change.
pub fn vm_event(e: &VmEvent, now: std::time::SystemTime) -> String {
    match e {
        VmEvent::Stop => event("STOP", Value::Null, now),
        VmEvent::Resume => event("RESUME", Value::Null, now),
        VmEvent::Reset { guest, reason } => {
            event("RESET", json!({"guest": guest, "reason": reason}), now)
        }
        VmEvent::Shutdown { guest, reason } => {
            event("SHUTDOWN", json!({"guest": guest, "reason": reason}), now)
        }
        VmEvent::Migration(status) => event("MIGRATION", json!({"status": status}), now),
        VmEvent::MigrationPass(pass) => event("MIGRATION_PASS", json!({"pass": pass}), now),
        VmEvent::Job { id, status } => event(
            "JOB_STATUS_CHANGE",
            json!({"id": id, "status": status}),
            now,
        ),
    }
}

fn line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push_str("\r\n");
    s
}

/// One client's protocol state.
#[derive(Default)]
pub struct QmpSession {
    buf: Vec<u8>,
    /// Input past [`MAX_MESSAGE`] is dropped until the next newline.
    discarding: bool,
    negotiated: bool,
}

impl QmpSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this client has finished negotiation and so receives events.
    pub fn wants_events(&self) -> bool {
        self.negotiated
    }

    /// Takes bytes from the client; returns the replies to send, in order.
    pub fn input(&mut self, mut bytes: &[u8], vm: &mut Vm) -> String {
        let mut out = String::new();
        if self.discarding {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    bytes = &bytes[i + 1..];
                    self.discarding = false;
                }
                None => return out,
            }
        }
        self.buf.extend_from_slice(bytes);
        loop {
            if vm.exit_request().is_some() {
                self.buf.clear();
                break;
            }
            let start = self
                .buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.buf.len());
            self.buf.drain(..start);
            if self.buf.is_empty() {
                break;
            }
            let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    let used = stream.byte_offset();
                    self.buf.drain(..used);
                    out.push_str(&self.message(v, vm));
                }
                Some(Err(e)) if e.is_eof() => {
                    if self.buf.len() > MAX_MESSAGE {
                        self.overflow(&mut out);
                    }
                    break;
                }
                Some(Err(e)) => {
                    out.push_str(&error_reply(
                        &QmpError::generic(format!("JSON parse error, {e}")),
                        None,
                    ));
                    // Resynchronise at the next line, as a client that sent garbage
                    // most likely ends it with a newline.
                    match self.buf.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            self.buf.drain(..=i);
                        }
                        None => self.buf.clear(),
                    }
                }
                None => break,
            }
        }
        out
    }

    fn overflow(&mut self, out: &mut String) {
        out.push_str(&error_reply(
            &QmpError::generic(format!(
                "JSON message too large (more than {MAX_MESSAGE} bytes)"
            )),
            None,
        ));
        self.discarding = !self.buf.contains(&b'\n');
        self.buf.clear();
    }

    /// Handles one complete JSON value.
    fn message(&mut self, v: Value, vm: &mut Vm) -> String {
        let Value::Object(mut m) = v else {
            return error_reply(&QmpError::generic("QMP input must be a JSON object"), None);
        };
        let id = m.remove("id");
        let reply = self.request(&mut m, vm);
        match reply {
            Ok(ret) => {
                let mut r = Map::new();
                r.insert("return".into(), ret);
                if let Some(id) = id {
                    r.insert("id".into(), id);
                }
                line(&Value::Object(r))
            }
            Err(e) => error_reply(&e, id),
        }
    }

    fn request(&mut self, m: &mut Map<String, Value>, vm: &mut Vm) -> Result<Value, QmpError> {
        let name = match m.remove("execute") {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(QmpError::generic(
                    "QMP input member 'execute' must be a string",
                ))
            }
            None => return Err(QmpError::generic("QMP input lacks member 'execute'")),
        };
        let args = match m.remove("arguments") {
            None => Map::new(),
            Some(Value::Object(a)) => a,
            Some(_) => {
                return Err(QmpError::generic(
                    "QMP input member 'arguments' must be an object",
                ))
            }
        };
        if let Some(k) = m.keys().next() {
            return Err(QmpError::generic(format!(
                "QMP input member '{k}' is unexpected"
            )));
        }
        if name == "qmp_capabilities" {
            if self.negotiated {
                return Err(QmpError {
                    class: ErrorClass::CommandNotFound,
                    desc: "Capabilities negotiation is already complete, command ignored".into(),
                });
            }
            let mut a = Args::new(&name, args);
            if let Some(enable) = a.take("enable") {
                if enable.as_array().is_some_and(|v| !v.is_empty()) {
                    return Err(QmpError::generic(format!(
                        "Capability '{}' not available",
                        enable[0].as_str().unwrap_or("?")
                    )));
                }
            }
            a.done()?;
            self.negotiated = true;
            return Ok(json!({}));
        }
        if !self.negotiated {
            return Err(QmpError {
                class: ErrorClass::CommandNotFound,
                desc: "Expecting capabilities negotiation with 'qmp_capabilities'".into(),
            });
        }
        run_command(&name, Args::new(&name, args), vm)
    }
}

fn error_reply(e: &QmpError, id: Option<Value>) -> String {
    let mut r = Map::new();
    r.insert(
        "error".into(),
        json!({"class": e.class.as_str(), "desc": e.desc}),
    );
    if let Some(id) = id {
        r.insert("id".into(), id);
    }
    line(&Value::Object(r))
}

/// A command's arguments, checked as QEMU checks them: every member must be used.
struct Args<'a> {
    command: &'a str,
    m: Map<String, Value>,
}

impl<'a> Args<'a> {
    fn new(command: &'a str, m: Map<String, Value>) -> Self {
        Self { command, m }
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.m.remove(key)
    }

    fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, QmpError> {
        match self.m.remove(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| QmpError::generic(format!("Parameter '{key}' expects a number"))),
        }
    }

    fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, QmpError> {
        match self.m.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(QmpError::generic(format!(
                "Parameter '{key}' expects a boolean"
            ))),
        }
    }

    fn string(&mut self, key: &str) -> Result<String, QmpError> {
        match self.m.remove(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(QmpError::generic(format!(
                "Parameter '{key}' expects a string"
            ))),
            None => Err(QmpError::generic(format!("Parameter '{key}' is missing"))),
        }
    }

    /// Fails on any argument the command does not take.
    fn done(self) -> Result<(), QmpError> {
        match self.m.keys().next() {
            Some(k) => Err(QmpError::generic(format!(
                "Parameter '{k}' is unexpected (command {})",
                self.command
            ))),
            None => Ok(()),
        }
    }
}

/// Runs one negotiated command.
fn run_command(name: &str, mut a: Args, vm: &mut Vm) -> Result<Value, QmpError> {
    let shared = |cmd: Command, a: Args, vm: &mut Vm| -> Result<Reply, QmpError> {
        a.done()?;
        Ok(execute(vm, cmd)?)
    };
    Ok(match name {
        "query-version" => {
            a.done()?;
            let (major, minor, micro) = QEMU_VERSION;
            json!({
                "qemu": {"major": major, "minor": minor, "micro": micro},
                "package": format!("tern {}", env!("CARGO_PKG_VERSION")),
            })
        }
        "query-commands" => {
            a.done()?;
            Value::Array(QMP_COMMANDS.iter().map(|n| json!({"name": n})).collect())
        }
        "query-status" => match shared(Command::InfoStatus, a, vm)? {
            Reply::Status { running, status } => json!({
                "running": running,
                "status": status,
            }),
            _ => return Err(QmpError::generic("unexpected reply")),
        },
        "stop" => done(shared(Command::Stop, a, vm)?),
        "cont" => done(shared(Command::Cont, a, vm)?),
        "system_reset" => done(shared(Command::SystemReset, a, vm)?),
        "quit" => done(shared(Command::Quit, a, vm)?),
        "query-migrate" => match shared(Command::InfoMigrate, a, vm)? {
            Reply::Migration(m) => parse_json(&m.to_json())?,
            _ => return Err(QmpError::generic("unexpected reply")),
        },
        "migrate" => {
            let uri = a.string("uri")?;
            // QEMU's QMP migrate never blocks; `detach` is accepted and ignored as there.
            a.opt_bool("detach")?;
            if a.opt_bool("resume")? == Some(true) {
                return Err(QmpError::generic("postcopy resume is not supported"));
            }
            done(shared(Command::Migrate { uri, detach: true }, a, vm)?)
        }
        "migrate-incoming" => {
            let uri = a.string("uri")?;
            done(shared(Command::MigrateIncoming(uri), a, vm)?)
        }
        "migrate_cancel" => done(shared(Command::MigrateCancel, a, vm)?),
        "migrate-set-parameters" => {
            // All checked before any is set, as QEMU does.
            let mut sets = Vec::new();
            for name in [
                "max-bandwidth",
                "downtime-limit",
                "cpu-throttle-initial",
                "cpu-throttle-increment",
            ] {
                if let Some(v) = a.opt_u64(name)? {
                    sets.push((name, v));
                }
            }
            a.done()?;
            let check = migration::MigrationParams::new();
            for &(name, v) in &sets {
                check
                    .set(name, v)
                    .map_err(|e| QmpError::generic(e.to_string()))?;
            }
            for (name, value) in sets {
                execute(
                    vm,
                    Command::MigrateSetParameter {
                        name: name.into(),
                        value,
                    },
                )?;
            }
            json!({})
        }
        "query-migrate-parameters" => match shared(Command::InfoMigrateParameters, a, vm)? {
            Reply::MigrationParameters(p) => json!({
                "max-bandwidth": p.max_bandwidth,
                "downtime-limit": p.downtime_limit_ms,
                "cpu-throttle-initial": p.cpu_throttle_initial,
                "cpu-throttle-increment": p.cpu_throttle_increment,
            }),
            _ => return Err(QmpError::generic("unexpected reply")),
        },
        "migrate-set-capabilities" => {
            let caps = a
                .take("capabilities")
                .and_then(|v| v.as_array().cloned())
                .ok_or_else(|| QmpError::generic("Parameter 'capabilities' is missing"))?;
            a.done()?;
            for c in caps {
                let name = c["capability"]
                    .as_str()
                    .ok_or_else(|| QmpError::generic("Parameter 'capability' expects a string"))?;
                let on = c["state"]
                    .as_bool()
                    .ok_or_else(|| QmpError::generic("Parameter 'state' expects a boolean"))?;
                execute(
                    vm,
                    Command::MigrateSetCapability {
                        name: name.into(),
                        on,
                    },
                )?;
            }
            json!({})
        }
        "query-migrate-capabilities" => match shared(Command::InfoMigrateCapabilities, a, vm)? {
            Reply::MigrationCapabilities(caps) => Value::Array(
                caps.iter()
                    .map(|(n, on)| json!({"capability": n, "state": on}))
                    .collect(),
            ),
            _ => return Err(QmpError::generic("unexpected reply")),
        },
        "getfd" => {
            let name = a.string("fdname")?;
            done(shared(Command::Getfd(name), a, vm)?)
        }
        "closefd" => {
            let name = a.string("fdname")?;
            done(shared(Command::Closefd(name), a, vm)?)
        }
        "snapshot-save" | "snapshot-load" | "snapshot-delete" => {
            let id = a.string("job-id")?;
            let tag = a.string("tag")?;
            // Disk lists name where QEMU would put each part; tern keeps one file per
            // snapshot, so they are accepted and not used.
            a.take("vmstate");
            a.take("devices");
            a.done()?;
            let cmd = match name {
                "snapshot-save" => Command::Savevm(Some(tag)),
                "snapshot-load" => Command::Loadvm(tag),
                _ => Command::Delvm(tag),
            };
            vm.run_job(&id, name, cmd).map_err(QmpError::generic)?;
            json!({})
        }
        "query-jobs" => {
            a.done()?;
            Value::Array(vm.jobs.iter().map(job_json).collect())
        }
        "job-dismiss" => {
            let id = a.string("id")?;
            a.done()?;
            vm.dismiss_job(&id).map_err(QmpError::generic)?;
            json!({})
        }
        "human-monitor-command" => {
            let line = a.string("command-line")?;
            // QEMU accepts a CPU index; tern has one CPU.
            if let Some(cpu) = a.take("cpu-index") {
                if cpu.as_u64() != Some(0) {
                    return Err(QmpError::generic("Parameter 'cpu-index' expects 0"));
                }
            }
            a.done()?;
            Value::String(human_line(&line, vm))
        }
        _ => {
            return Err(QmpError {
                class: ErrorClass::CommandNotFound,
                desc: format!("The command {name} has not been found"),
            })
        }
    })
}

fn parse_json(s: &str) -> Result<Value, QmpError> {
    serde_json::from_str(s).map_err(|e| QmpError::generic(format!("internal JSON error: {e}")))
}

fn job_json(j: &crate::vm::Job) -> Value {
    let mut v = json!({
        "id": j.id,
        "type": j.kind,
        "status": j.status,
        "current-progress": 1,
        "total-progress": 1,
    });
    if let Some(e) = &j.error {
        v["error"] = Value::from(e.as_str());
    }
    v
}

fn done(r: Reply) -> Value {
    debug_assert!(matches!(r, Reply::Done | Reply::MigrationStarted { .. }));
    json!({})
}

/// A human-monitor line, run and rendered as the human monitor would.
fn human_line(line: &str, vm: &mut Vm) -> String {
    if line.trim().is_empty() {
        return String::new();
    }
    match parse_human(line) {
        Ok(cmd) => match execute(vm, cmd) {
            Ok(reply) => render(&reply),
            Err(e) => render_error(&e),
        },
        Err(e) => format!("{e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Vm;

    fn vm() -> Vm {
        let image = include_bytes!("../../../testdata/guests/demo.bin");
        let m = hw::PcMachine::new(hw::MachineConfig {
            ram_size: 16 << 20,
            boot: hw::BootSource::Multiboot {
                image: image.to_vec().into(),
                cmdline: String::new(),
            },
            debugcon_port: None,
            clock: hw::clock::ClockMode::Realtime,
            rtc_base: hw::rtc::RtcBase::HostUtc,
            no_reboot: true,
        })
        .unwrap();
        let dir = std::env::temp_dir().join(format!("tern-qmp-unit-{}", std::process::id()));
        Vm::new(m, true, crate::snapshots::SnapshotStore::new(dir))
    }

    fn replies(s: &str) -> Vec<Value> {
        s.split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn one(q: &mut QmpSession, vm: &mut Vm, input: &str) -> Value {
        let r = replies(&q.input(input.as_bytes(), vm));
        assert_eq!(r.len(), 1, "{r:?}");
        r.into_iter().next().unwrap()
    }

    fn negotiated(vm: &mut Vm) -> QmpSession {
        let mut q = QmpSession::new();
        assert_eq!(
            one(&mut q, vm, r#"{"execute":"qmp_capabilities"}"#),
            json!({"return": {}})
        );
        q
    }

    #[test]
    fn greeting_has_version_and_capabilities() {
        let g: Value = serde_json::from_str(greeting().trim_end()).unwrap();
        assert_eq!(g["QMP"]["version"]["qemu"]["major"], 8);
        assert!(g["QMP"]["capabilities"].is_array());
    }

    #[test]
    fn negotiation_comes_first_and_only_once() {
        let mut vm = vm();
        let mut q = QmpSession::new();
        assert!(!q.wants_events());
        let r = one(&mut q, &mut vm, r#"{"execute":"query-status"}"#);
        assert_eq!(r["error"]["class"], "CommandNotFound");
        let r = one(&mut q, &mut vm, r#"{"execute":"qmp_capabilities","id":1}"#);
        assert_eq!(r, json!({"return": {}, "id": 1}));
        assert!(q.wants_events());
        let r = one(&mut q, &mut vm, r#"{"execute":"qmp_capabilities"}"#);
        assert_eq!(r["error"]["class"], "CommandNotFound");
    }

    #[test]
    fn status_stop_cont_with_ids_echoed() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let r = one(&mut q, &mut vm, r#"{"execute":"query-status","id":"a"}"#);
        assert_eq!(
            r,
            json!({"return": {"running": false, "status": "paused"}, "id": "a"})
        );
        let r = one(&mut q, &mut vm, r#"{"execute":"cont","id":{"x":[1]}}"#);
        assert_eq!(r, json!({"return": {}, "id": {"x": [1]}}));
        assert!(vm.is_running());
        one(&mut q, &mut vm, r#"{"execute":"stop"}"#);
        assert!(!vm.is_running());
    }

    #[test]
    fn several_messages_in_one_read_and_one_split_across_reads() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let out = q.input(
            br#"{"execute":"query-version","id":1} {"execute":"query-commands","id":2}"#,
            &mut vm,
        );
        let r = replies(&out);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["id"], 1);
        assert!(r[1]["return"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "query-status"})));
        assert_eq!(q.input(br#"{"execute":"query-st"#, &mut vm), "");
        let r = one(&mut q, &mut vm, r#"atus"}"#);
        assert_eq!(r["return"]["status"], "paused");
    }

    #[test]
    fn errors_keep_the_session_usable() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let cases = [
            ("{\"execute\": }\n", "GenericError"),
            ("[1,2]", "GenericError"),
            (r#"{"arguments":{}}"#, "GenericError"),
            (r#"{"execute":"no-such-thing"}"#, "CommandNotFound"),
            (r#"{"execute":"stop","arguments":{"x":1}}"#, "GenericError"),
            (r#"{"execute":"stop","bogus":1}"#, "GenericError"),
            (r#"{"execute":"human-monitor-command"}"#, "GenericError"),
        ];
        for (input, class) in cases {
            let r = one(&mut q, &mut vm, input);
            assert_eq!(r["error"]["class"], class, "{input}: {r}");
            assert!(r["error"]["desc"].as_str().is_some_and(|d| !d.is_empty()));
        }
        let r = one(&mut q, &mut vm, r#"{"execute":"query-status"}"#);
        assert!(r.get("return").is_some());
    }

    #[test]
    fn oversized_message_is_refused() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let mut big = br#"{"execute":"query-status","id":""#.to_vec();
        big.resize(MAX_MESSAGE + 10, b'a');
        let r = replies(&q.input(&big, &mut vm));
        assert_eq!(r.len(), 1);
        assert!(r[0]["error"]["desc"]
            .as_str()
            .unwrap()
            .contains("too large"));
        // The rest of that message up to its newline is dropped; then all is well.
        assert_eq!(q.input(b"aaaa\"}\n", &mut vm), "");
        let r = one(&mut q, &mut vm, r#"{"execute":"query-status"}"#);
        assert!(r.get("return").is_some());
    }

    #[test]
    fn human_monitor_command_uses_the_human_monitor() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let r = one(
            &mut q,
            &mut vm,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}"#,
        );
        assert_eq!(r["return"], "VM status: paused\n");
        let r = one(
            &mut q,
            &mut vm,
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"info registers"}}"#,
        );
        assert!(r["return"].as_str().unwrap().contains("EAX="));
    }

    #[test]
    fn quit_asks_the_loop_to_exit() {
        let mut vm = vm();
        let mut q = negotiated(&mut vm);
        let r = one(&mut q, &mut vm, r#"{"execute":"quit"}"#);
        assert_eq!(r, json!({"return": {}}));
        assert_eq!(vm.exit_request(), Some(0));
    }

    #[test]
    fn events_carry_timestamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(5, 7000);
        let e: Value = serde_json::from_str(event("STOP", Value::Null, t).trim_end()).unwrap();
        assert_eq!(
            e,
            json!({"event": "STOP", "timestamp": {"seconds": 5, "microseconds": 7}})
        );
        let e: Value =
            serde_json::from_str(event("RESET", json!({"guest": true}), t).trim_end()).unwrap();
        assert_eq!(e["data"]["guest"], true);
    }
}
