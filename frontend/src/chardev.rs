//! Host ends of the guest's character devices: where serial and debug-console output
//! goes, and the unix-socket serial backend with its input path.
//!
//! Output is written synchronously after every vCPU slice. A unix-socket client is
//! non-blocking: bytes it does not take at once are queued (up to [`MAX_QUEUED`], beyond
//! which new output is dropped, as a disconnected serial line would lose it) and sent when
//! the socket becomes writable. Input is read into a pending buffer and fed to the UART
//! FIFO as it has room; while the buffer is full the source is not read at all, so a guest
//! that does not drain its FIFO throttles the sender instead of making tern buffer or spin.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::registry::{Io, Key, Registry};
use crate::vm::Vm;

/// Output queued for a slow serial socket client before output is dropped.
const MAX_QUEUED: usize = 1 << 20;
/// Input read ahead of the UART FIFO.
const MAX_PENDING: usize = 4096;

/// A byte sink for device output.
pub enum Sink {
    Stdout,
    File(File),
    Null,
}

impl Sink {
    pub fn file(path: &Path) -> io::Result<Self> {
        File::create(path).map(Sink::File)
    }

    /// Writes everything; a failing sink is reported and then treated as disconnected, so
    /// a closed stdout does not flood the log or stop the guest.
    pub fn write(&mut self, bytes: &[u8], what: &str) {
        if bytes.is_empty() {
            return;
        }
        let r = match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Sink::File(f) => f.write_all(bytes),
            Sink::Null => Ok(()),
        };
        if let Err(e) = r {
            log::error!("{what} output failed, discarding further output: {e}");
            *self = Sink::Null;
        }
    }
}

/// Where serial output goes.
pub enum SerialOut {
    Sink(Sink),
    /// To the current unix-socket client, if any.
    Socket,
}

/// The serial port's host side.
pub struct Serial {
    out: SerialOut,
    /// The unix listener, if the backend is `unix:`.
    listener: Option<Key>,
    /// The connected unix client.
    client: Option<Key>,
    /// Stdin, when the serial port owns it.
    stdin: Option<Key>,
    pending: Vec<u8>,
    queued: Vec<u8>,
}

impl Serial {
    pub fn new(out: SerialOut, listener: Option<Key>, stdin: Option<Key>) -> Self {
        Self {
            out,
            listener,
            client: None,
            stdin,
            pending: Vec::new(),
            queued: Vec::new(),
        }
    }

    /// Accepts a client on the listener. One at a time: while a client is connected the
    /// listener is not watched, and further clients wait in the backlog.
    pub fn accept<R: Copy>(&mut self, reg: &mut Registry<R>, client_role: R) {
        let Some(l) = self.listener else {
            return;
        };
        if self.client.is_some() {
            return;
        }
        let accepted = match reg.get_mut(l) {
            Some(e) => e.io.accept(),
            None => return,
        };
        match accepted {
            Ok(Some(io)) => match reg.add(io, client_role) {
                Ok(k) => {
                    log::info!("serial client connected");
                    self.client = Some(k);
                    self.queued.clear();
                    if let Err(e) = reg.set_interest(l, false, false) {
                        log::warn!("serial listener: {e}");
                    }
                }
                Err(e) => log::warn!("cannot watch the serial client: {e}"),
            },
            Ok(None) => {}
            Err(e) => log::warn!("accepting a serial client: {e}"),
        }
    }

    /// Handles readiness of the serial input source (stdin or the socket client).
    pub fn ready<R: Copy>(
        &mut self,
        reg: &mut Registry<R>,
        key: Key,
        readable: bool,
        writable: bool,
    ) {
        if writable && Some(key) == self.client {
            self.flush(reg);
        }
        if !readable || self.pending.len() >= MAX_PENDING {
            return;
        }
        let mut buf = [0u8; MAX_PENDING];
        let room = MAX_PENDING - self.pending.len();
        let r = match reg.get_mut(key) {
            Some(e) => e.io.read(&mut buf[..room]),
            None => return,
        };
        match r {
            Ok(0) => self.disconnect(reg, key),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                self.update_interest(reg);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                log::info!("serial input error: {e}");
                self.disconnect(reg, key);
            }
        }
    }

    /// End of input: stdin is done for good; a socket client leaves room for the next one.
    fn disconnect<R: Copy>(&mut self, reg: &mut Registry<R>, key: Key) {
        drop(reg.remove(key));
        if Some(key) == self.stdin {
            self.stdin = None;
        }
        if Some(key) == self.client {
            log::info!("serial client disconnected");
            self.client = None;
            self.queued.clear();
            if let Some(l) = self.listener {
                if let Err(e) = reg.set_interest(l, true, false) {
                    log::warn!("serial listener: {e}");
                }
            }
        }
    }

    /// Feeds pending input to the UART FIFO. Returns whether any byte went in.
    pub fn deliver<R: Copy>(&mut self, reg: &mut Registry<R>, vm: &mut Vm) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let n = vm.machine.serial_input(&self.pending);
        self.pending.drain(..n);
        self.update_interest(reg);
        n > 0
    }

    /// Reads from the input source only while there is room to keep what is read.
    fn update_interest<R: Copy>(&mut self, reg: &mut Registry<R>) {
        let want_read = self.pending.len() < MAX_PENDING;
        if let Some(k) = self.stdin {
            let _ = reg.set_interest(k, want_read, false);
        }
        if let Some(k) = self.client {
            let _ = reg.set_interest(k, want_read, !self.queued.is_empty());
        }
    }

    /// Sends guest output to the backend.
    pub fn output<R: Copy>(&mut self, reg: &mut Registry<R>, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.out {
            SerialOut::Sink(s) => s.write(bytes, "serial"),
            SerialOut::Socket => {
                if self.client.is_none() {
                    return;
                }
                let room = MAX_QUEUED.saturating_sub(self.queued.len());
                if room < bytes.len() {
                    log::debug!("serial client is not reading; dropping output");
                }
                self.queued
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
                self.flush(reg);
            }
        }
    }

    fn flush<R: Copy>(&mut self, reg: &mut Registry<R>) {
        let Some(k) = self.client else {
            return;
        };
        let mut sent = 0;
        let mut gone = false;
        if let Some(e) = reg.get_mut(k) {
            while sent < self.queued.len() {
                match e.io.write(&self.queued[sent..]) {
                    Ok(0) => {
                        gone = true;
                        break;
                    }
                    Ok(n) => sent += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => {
                        log::info!("serial client gone: {err}");
                        gone = true;
                        break;
                    }
                }
            }
        }
        self.queued.drain(..sent);
        if gone {
            self.disconnect(reg, k);
        } else {
            self.update_interest(reg);
        }
    }
}

/// Binds a unix listening socket at `path`, replacing a stale socket file left by an
/// earlier run (as QEMU does) but never any other kind of file.
pub fn bind_unix(path: &Path) -> io::Result<Io> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if md.file_type().is_socket() {
            std::fs::remove_file(path)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
    }
    // Owner-only from the first moment: the socket is made in a private directory, its
    // mode set, and only then renamed into place (a monitor socket can stop, reset and
    // read the machine).
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let private = parent.join(format!(".tern-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let result = (|| -> io::Result<std::os::unix::net::UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(l)
    })();
    let _ = std::fs::remove_dir_all(&private);
    let l = result?;
    l.set_nonblocking(true)?;
    Ok(Io::UnixListener(l))
}
