//! Monitor connections: the stdio monitor and clients of unix/TCP monitor sockets, each
//! speaking the human monitor's lines or QMP ([`super::qmp`]).
//!
//! Every connection has its own line buffer and its own output queue, so a reply goes only
//! to the connection whose line produced it and a half-sent line from one client never
//! mixes with another's. Sockets are non-blocking: replies that do not fit in the socket
//! buffer wait in the queue and are sent when the registry reports the socket writable.
//! Bad input never closes a connection; only end-of-file, a socket error, or a client that
//! stops reading while its queue grows past [`MAX_QUEUED`] does.

use std::collections::HashMap;
use std::io::{self, Write};

use super::human::{parse_human, render, render_error, BANNER, PROMPT};
use super::qmp::{self, QmpSession};
use super::{execute, Reply};
use crate::registry::{Io, Key, Registry};
use crate::vm::{Vm, VmEvent};

/// Longest accepted command line. Longer lines are discarded up to their newline and
/// answered with an error; this bounds what a client can make tern buffer.
pub const MAX_LINE: usize = 64 * 1024;
/// Replies queued for a client that does not read them; past this it is disconnected.
const MAX_QUEUED: usize = 4 << 20;

/// Where a connection's replies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Stdout,
    /// The same socket the input comes from.
    Socket,
}

/// The language a connection speaks.
pub enum Protocol {
    Human,
    Qmp(QmpSession),
}

struct Client {
    output: Output,
    protocol: Protocol,
    /// A human `migrate` without `-d` runs: this monitor prints nothing more (and runs
    /// no further lines) until the migration ends; input waits in `line`/`held`.
    waiting_migration: bool,
    held: Vec<u8>,
    line: Vec<u8>,
    /// The current line overflowed [`MAX_LINE`]: drop bytes until its newline.
    discarding: bool,
    queued: Vec<u8>,
}

/// All open monitor connections, keyed by their input source in the registry.
#[derive(Default)]
pub struct Monitors {
    clients: HashMap<Key, Client>,
}

impl Monitors {
    /// Starts a monitor on a registered source (stdin or an accepted socket) and greets it.
    pub fn open<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key, stdio: bool, qmp: bool) {
        let output = if stdio {
            Output::Stdout
        } else {
            Output::Socket
        };
        let (protocol, greeting) = if qmp {
            (Protocol::Qmp(QmpSession::new()), qmp::greeting())
        } else {
            (Protocol::Human, format!("{BANNER}{PROMPT}"))
        };
        self.clients.insert(
            key,
            Client {
                output,
                protocol,
                waiting_migration: false,
                held: Vec::new(),
                line: Vec::new(),
                discarding: false,
                queued: Vec::new(),
            },
        );
        self.send(reg, key, greeting.as_bytes());
    }

    /// Sends VM events to every QMP client that has negotiated.
    pub fn broadcast<R: Copy>(&mut self, reg: &mut Registry<R>, events: &[VmEvent]) {
        if events.is_empty() {
            return;
        }
        let now = std::time::SystemTime::now();
        let text: String = events.iter().map(|e| qmp::vm_event(e, now)).collect();
        let keys: Vec<Key> = self
            .clients
            .iter()
            .filter(|(_, c)| matches!(&c.protocol, Protocol::Qmp(q) if q.wants_events()))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.send(reg, k, text.as_bytes());
        }
    }

    /// Accepts every waiting client on a monitor listener.
    pub fn accept<R: Copy>(
        &mut self,
        reg: &mut Registry<R>,
        listener: Key,
        client_role: R,
        qmp: bool,
    ) {
        // A bounded batch per wake-up: a flood of connections cannot starve the vCPU.
        for _ in 0..16 {
            let accepted = match reg.get_mut(listener) {
                Some(e) => e.io.accept(),
                None => return,
            };
            match accepted {
                Ok(Some(io)) => match reg.add(io, client_role) {
                    Ok(key) => {
                        log::info!("monitor client connected");
                        self.open(reg, key, false, qmp);
                    }
                    Err(e) => log::warn!("cannot watch a monitor client: {e}"),
                },
                Ok(None) => return,
                Err(e) => {
                    log::warn!("accepting a monitor client: {e}");
                    return;
                }
            }
        }
    }

    /// Handles readiness of a monitor connection: reads what arrived, runs every complete
    /// line, and sends queued replies.
    pub fn ready<R: Copy>(
        &mut self,
        reg: &mut Registry<R>,
        key: Key,
        readable: bool,
        writable: bool,
        vm: &mut Vm,
    ) {
        if writable {
            self.flush(reg, key);
        }
        if !readable || !self.clients.contains_key(&key) {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut fds = Vec::new();
        let n = match reg
            .get_mut(key)
            .map(|e| e.io.read_with_fds(&mut buf, &mut fds))
        {
            Some(Ok(n)) => n,
            Some(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return
            }
            Some(Err(e)) => {
                log::info!("monitor connection error: {e}");
                self.close(reg, key);
                return;
            }
            None => return,
        };
        if n == 0 {
            // A last line without its newline still counts (`echo -n quit | tern ...`).
            let rest = self
                .clients
                .get_mut(&key)
                .filter(|c| matches!(c.protocol, Protocol::Human))
                .map(|c| (std::mem::take(&mut c.line), c.discarding));
            if let Some((rest, false)) = rest {
                if !rest.is_empty() {
                    let (reply, _) = run_line(vm, &rest);
                    self.send(reg, key, reply.as_bytes());
                }
            }
            self.close(reg, key);
            return;
        }
        vm.offered_fds = fds;
        self.input(reg, key, &buf[..n], vm);
        // A descriptor not claimed by a `getfd` in this message is closed.
        vm.offered_fds.clear();
    }

    /// Lets human monitors that wait for a migration (`migrate` without `-d`) go on once
    /// it has ended: the outcome, the prompt, then the lines typed meanwhile.
    pub fn migration_progress<R: Copy>(&mut self, reg: &mut Registry<R>, vm: &Vm) {
        if vm.migration.outgoing_active() {
            return;
        }
        let waiting: Vec<Key> = self
            .clients
            .iter()
            .filter(|(_, c)| c.waiting_migration)
            .map(|(k, _)| *k)
            .collect();
        for k in waiting {
            let info = vm.migration.info();
            let mut text = String::new();
            if let Some(e) = info.error_desc {
                text.push_str(&format!("Error: {e}\n"));
            } else if info.status != migration::MigrationStatus::Completed {
                text.push_str(&format!("migration {}\n", info.status.as_str()));
            }
            text.push_str(PROMPT);
            self.send(reg, k, text.as_bytes());
            if let Some(c) = self.clients.get_mut(&k) {
                c.waiting_migration = false;
            }
        }
    }

    /// Runs lines that arrived while a monitor was waiting for a migration.
    pub fn resume_held<R: Copy>(&mut self, reg: &mut Registry<R>, vm: &mut Vm) {
        let ready: Vec<(Key, Vec<u8>)> = self
            .clients
            .iter_mut()
            .filter(|(_, c)| !c.waiting_migration && !c.held.is_empty())
            .map(|(k, c)| (*k, std::mem::take(&mut c.held)))
            .collect();
        for (k, bytes) in ready {
            self.input(reg, k, &bytes, vm);
        }
    }

    fn input<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key, mut bytes: &[u8], vm: &mut Vm) {
        if let Some(Client {
            protocol: Protocol::Qmp(q),
            ..
        }) = self.clients.get_mut(&key)
        {
            let reply = q.input(bytes, vm);
            self.send(reg, key, reply.as_bytes());
            return;
        }
        while !bytes.is_empty() {
            if vm.exit_request().is_some() {
                return;
            }
            let Some(c) = self.clients.get_mut(&key) else {
                return;
            };
            if c.waiting_migration {
                if c.held.len() + bytes.len() <= MAX_LINE {
                    c.held.extend_from_slice(bytes);
                }
                return;
            }
            let (chunk, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len() + usize::from(complete)..];
            if !c.discarding {
                c.line.extend_from_slice(chunk);
                if c.line.len() > MAX_LINE {
                    c.line = Vec::new();
                    c.discarding = true;
                }
            }
            if !complete {
                continue;
            }
            let reply = if c.discarding {
                c.discarding = false;
                format!("Error: line too long (more than {MAX_LINE} bytes)\n{PROMPT}")
            } else {
                let line = std::mem::take(&mut c.line);
                let (mut reply, wait) = run_line(vm, &line);
                if wait {
                    if let Some(c) = self.clients.get_mut(&key) {
                        c.waiting_migration = true;
                    }
                } else if vm.exit_request().is_none() {
                    reply.push_str(PROMPT);
                }
                reply
            };
            self.send(reg, key, reply.as_bytes());
        }
    }

    /// Queues `bytes` for the connection and sends as much as the socket takes now.
    fn send<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key, bytes: &[u8]) {
        let Some(c) = self.clients.get_mut(&key) else {
            return;
        };
        match c.output {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
                    log::warn!("writing monitor output to stdout: {e}");
                }
            }
            Output::Socket => {
                c.queued.extend_from_slice(bytes);
                self.flush(reg, key);
            }
        }
    }

    fn flush<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key) {
        let Some(c) = self.clients.get_mut(&key) else {
            return;
        };
        if c.output != Output::Socket {
            return;
        }
        let mut sent = 0;
        let mut failed = false;
        if let Some(e) = reg.get_mut(key) {
            while sent < c.queued.len() {
                match e.io.write(&c.queued[sent..]) {
                    Ok(0) => {
                        failed = true;
                        break;
                    }
                    Ok(n) => sent += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => {
                        log::info!("monitor client gone: {err}");
                        failed = true;
                        break;
                    }
                }
            }
        }
        c.queued.drain(..sent);
        if failed || c.queued.len() > MAX_QUEUED {
            self.close(reg, key);
            return;
        }
        let want_write = !c.queued.is_empty();
        if let Err(e) = reg.set_interest(key, true, want_write) {
            log::warn!("monitor client: {e}");
            self.close(reg, key);
        }
    }

    /// Ends a connection. Closing the stdio monitor stops reading stdin; the VM goes on.
    pub fn close<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key) {
        if self.clients.remove(&key).is_some() {
            log::info!("monitor connection closed");
        }
        let io: Option<Io> = reg.remove(key);
        drop(io);
    }

    /// Sends every queued reply that the sockets take without blocking (before exit).
    pub fn flush_all<R: Copy>(&mut self, reg: &mut Registry<R>) {
        let keys: Vec<Key> = self.clients.keys().copied().collect();
        for k in keys {
            self.flush(reg, k);
        }
    }
}

/// Runs one line and returns the text to show, without the prompt, and whether the
/// monitor must now wait for a migration to end.
fn run_line(vm: &mut Vm, line: &[u8]) -> (String, bool) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(text) = std::str::from_utf8(line) else {
        return (
            "Error: the command line is not valid UTF-8\n".to_string(),
            false,
        );
    };
    if text.trim().is_empty() {
        return (String::new(), false);
    }
    match parse_human(text) {
        Ok(cmd) => match execute(vm, cmd) {
            Ok(Reply::MigrationStarted { wait }) => (String::new(), wait),
            Ok(reply) => (render(&reply), false),
            Err(e) => (render_error(&e), false),
        },
        Err(e) => (format!("{e}\n"), false),
    }
}
