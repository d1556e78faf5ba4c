//! Byte streams for the migration addresses of [`crate::uri`].
//!
//! Outgoing, the sender writes the stream into an [`Outgoing`] and calls
//! [`Outgoing::finish`], which reports whether the other end really got it: the socket was
//! flushed, the `exec:` command exited with status 0, the `file:` was fsynced and renamed
//! into place. [`Outgoing::abort`] (failure or cancel) leaves nothing behind: the command is
//! killed, the temporary file removed. A [`Canceller`] taken before the transfer unblocks a
//! writer stuck on a peer that stopped reading.
//!
//! Incoming, [`Incoming::listen`] binds at once (so `tcp:127.0.0.1:0` has a real port to
//! report) and [`Incoming::accept`] waits for the one stream.
//!
//! Sockets are made with `socket2`: TCP keepalive (a peer that vanished fails the transfer
//! instead of hanging it), no Nagle delay, a connect timeout.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use crate::uri::MigrationUri;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, io::Error),
    #[error("{0}: a regular file is in the way of the socket")]
    NotASocket(PathBuf),
    #[error("cannot start `{0}`: {1}")]
    Spawn(String, io::Error),
    #[error("`{0}` exited with {1}")]
    CommandFailed(String, std::process::ExitStatus),
    #[error("no descriptor named `{0}` (hand one over with getfd first)")]
    NoFd(String),
    #[error("{0}: {1}")]
    File(PathBuf, io::Error),
    #[error("migration stream: {0}")]
    Io(#[from] io::Error),
}

/// Looks up a descriptor handed over with `getfd NAME`, taking it.
pub type FdLookup<'a> = &'a mut dyn FnMut(&str) -> Option<OwnedFd>;

enum Sink {
    Tcp(TcpStream),
    Unix(UnixStream),
    Exec {
        command: String,
        /// Shared with the [`Canceller`], which kills it.
        child: Arc<Mutex<Child>>,
        stdin: Option<ChildStdin>,
    },
    Fd(File),
    File {
        file: File,
        tmp: PathBuf,
        dest: PathBuf,
    },
}

/// The sending end of a migration.
pub struct Outgoing {
    sink: Sink,
}

/// Unblocks a sender from another thread.
pub enum Canceller {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Killing the command makes the next write fail.
    Exec(Arc<Mutex<Child>>),
    /// A handed-over descriptor: shut down if it is a socket (a pipe cannot be).
    Fd(File),
    None,
}

impl Canceller {
    pub fn cancel(&self) {
        match self {
            Canceller::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Canceller::Unix(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Canceller::Exec(child) => {
                let _ = lock(child).kill();
            }
            Canceller::Fd(f) => {
                let _ = socket2::SockRef::from(f).shutdown(Shutdown::Both);
            }
            Canceller::None => {}
        }
    }
}

fn keepalive(sock: &Socket) -> io::Result<()> {
    sock.set_keepalive(true)?;
    let ka = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    sock.set_tcp_keepalive(&ka)
}

fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let name = format!("{host}:{port}");
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| TransportError::Resolve(name.clone(), e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addrs {
        let sock = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
        match sock.connect_timeout(&SockAddr::from(a), CONNECT_TIMEOUT) {
            Ok(()) => {
                sock.set_nodelay(true)?;
                keepalive(&sock)?;
                return Ok(sock.into());
            }
            Err(e) => last = e,
        }
    }
    Err(TransportError::Connect(name, last))
}

fn sh(command: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(command);
    c
}

impl Outgoing {
    /// Opens the sending end of `uri`.
    pub fn connect(uri: &MigrationUri, fds: FdLookup) -> Result<Self, TransportError> {
        let sink = match uri {
            MigrationUri::Tcp { host, port } => Sink::Tcp(tcp_connect(host, *port)?),
            MigrationUri::Unix(path) => Sink::Unix(
                UnixStream::connect(path)
                    .map_err(|e| TransportError::Connect(path.display().to_string(), e))?,
            ),
            MigrationUri::Exec(command) => {
                let mut child = sh(command)
                    .stdin(Stdio::piped())
                    .spawn()
                    .map_err(|e| TransportError::Spawn(command.clone(), e))?;
                let stdin = child.stdin.take();
                Sink::Exec {
                    command: command.clone(),
                    child: Arc::new(Mutex::new(child)),
                    stdin,
                }
            }
            MigrationUri::Fd(name) => Sink::Fd(File::from(
                fds(name).ok_or_else(|| TransportError::NoFd(name.clone()))?,
            )),
            MigrationUri::File(dest) => {
                let tmp = temp_path(dest);
                let file = File::create(&tmp).map_err(|e| TransportError::File(tmp.clone(), e))?;
                Sink::File {
                    file,
                    tmp,
                    dest: dest.clone(),
                }
            }
        };
        Ok(Self { sink })
    }

    pub fn canceller(&self) -> Canceller {
        match &self.sink {
            Sink::Tcp(s) => s.try_clone().map_or(Canceller::None, Canceller::Tcp),
            Sink::Unix(s) => s.try_clone().map_or(Canceller::None, Canceller::Unix),
            Sink::Exec { child, .. } => Canceller::Exec(child.clone()),
            Sink::Fd(f) => f.try_clone().map_or(Canceller::None, Canceller::Fd),
            Sink::File { .. } => Canceller::None,
        }
    }

    /// Completes the transfer; an error means the destination may not have the stream.
    pub fn finish(mut self) -> Result<(), TransportError> {
        self.flush()?;
        match self.sink {
            Sink::Tcp(s) => s.shutdown(Shutdown::Write)?,
            Sink::Unix(s) => s.shutdown(Shutdown::Write)?,
            Sink::Exec {
                command,
                child,
                stdin,
            } => {
                drop(stdin);
                // Poll rather than wait with the lock held, so a cancel can still kill a
                // command that does not exit.
                let status = loop {
                    if let Some(s) = lock(&child).try_wait()? {
                        break s;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                };
                if !status.success() {
                    return Err(TransportError::CommandFailed(command, status));
                }
            }
            Sink::Fd(f) => {
                // A pipe or socket cannot be synced; a regular file can and must be.
                match f.sync_all() {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(22) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Sink::File { file, tmp, dest } => {
                commit_file(file, &tmp, &dest).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })?;
            }
        }
        Ok(())
    }

    /// Gives up: nothing of the transfer is left behind on this side.
    pub fn abort(self) {
        match self.sink {
            Sink::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Sink::Unix(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Sink::Exec { child, stdin, .. } => {
                drop(stdin);
                let mut c = lock(&child);
                let _ = c.kill();
                let _ = c.wait();
            }
            Sink::Fd(_) => {}
            Sink::File { file, tmp, .. } => {
                drop(file);
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

fn lock(child: &Mutex<Child>) -> std::sync::MutexGuard<'_, Child> {
    child.lock().unwrap_or_else(|p| p.into_inner())
}

/// `dir/.name.tmp-PID`: in the same directory, so the rename is atomic.
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stream".into());
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// fsync the data, rename over the destination, fsync the directory: after a crash the
/// destination is either the old file or the complete new one.
pub fn commit_file(file: File, tmp: &Path, dest: &Path) -> Result<(), TransportError> {
    file.sync_all()
        .map_err(|e| TransportError::File(tmp.to_path_buf(), e))?;
    drop(file);
    std::fs::rename(tmp, dest).map_err(|e| TransportError::File(dest.to_path_buf(), e))?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Write for Outgoing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Sink::Tcp(s) => s.write(buf),
            Sink::Unix(s) => s.write(buf),
            Sink::Exec { stdin, .. } => match stdin {
                Some(s) => s.write(buf),
                None => Err(io::ErrorKind::BrokenPipe.into()),
            },
            Sink::Fd(f) => f.write(buf),
            Sink::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Tcp(s) => s.flush(),
            Sink::Unix(s) => s.flush(),
            Sink::Exec { stdin, .. } => stdin.as_mut().map_or(Ok(()), |s| s.flush()),
            Sink::Fd(f) => f.flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

/// The receiving end, bound but not yet connected.
pub enum Incoming {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
    Exec(String),
    Fd(OwnedFd),
    File(PathBuf),
}

/// A stream being received.
pub type IncomingStream = Box<dyn Read + Send>;

impl Incoming {
    pub fn listen(uri: &MigrationUri, fds: FdLookup) -> Result<Self, TransportError> {
        Ok(match uri {
            MigrationUri::Tcp { host, port } => {
                let name = format!("{host}:{port}");
                let addr = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| TransportError::Resolve(name.clone(), e))?
                    .next()
                    .ok_or_else(|| {
                        TransportError::Resolve(name.clone(), io::ErrorKind::NotFound.into())
                    })?;
                let listen = || -> io::Result<TcpListener> {
                    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
                    s.set_reuse_address(true)?;
                    s.bind(&SockAddr::from(addr))?;
                    s.listen(1)?;
                    Ok(s.into())
                };
                Incoming::Tcp(listen().map_err(|e| TransportError::Listen(name, e))?)
            }
            MigrationUri::Unix(path) => {
                // A socket left by an earlier run is replaced; anything else is not ours.
                if let Ok(m) = std::fs::symlink_metadata(path) {
                    if !m.file_type().is_socket() {
                        return Err(TransportError::NotASocket(path.clone()));
                    }
                    let _ = std::fs::remove_file(path);
                }
                let l = UnixListener::bind(path)
                    .map_err(|e| TransportError::Listen(path.display().to_string(), e))?;
                Incoming::Unix(l, path.clone())
            }
            MigrationUri::Exec(c) => Incoming::Exec(c.clone()),
            MigrationUri::Fd(name) => {
                Incoming::Fd(fds(name).ok_or_else(|| TransportError::NoFd(name.clone()))?)
            }
            MigrationUri::File(p) => Incoming::File(p.clone()),
        })
    }

    /// Where a peer should connect, with a port chosen by the system filled in.
    pub fn address(&self) -> Option<MigrationUri> {
        match self {
            Incoming::Tcp(l) => l.local_addr().ok().map(|a| MigrationUri::Tcp {
                host: a.ip().to_string(),
                port: a.port(),
            }),
            Incoming::Unix(_, p) => Some(MigrationUri::Unix(p.clone())),
            _ => None,
        }
    }

    /// Waits for the stream.
    pub fn accept(self) -> Result<IncomingStream, TransportError> {
        Ok(match self {
            Incoming::Tcp(l) => {
                let (s, _) = l.accept()?;
                let sock = Socket::from(s);
                sock.set_nodelay(true)?;
                keepalive(&sock)?;
                Box::new(TcpStream::from(sock))
            }
            Incoming::Unix(l, path) => {
                let (s, _) = l.accept()?;
                let _ = std::fs::remove_file(path);
                Box::new(s)
            }
            Incoming::Exec(command) => {
                let mut child = sh(&command)
                    .stdout(Stdio::piped())
                    .spawn()
                    .map_err(|e| TransportError::Spawn(command.clone(), e))?;
                let stdout = child.stdout.take().expect("piped stdout");
                Box::new(ExecReader {
                    command,
                    child,
                    stdout,
                })
            }
            Incoming::Fd(fd) => Box::new(File::from(fd)),
            Incoming::File(p) => {
                Box::new(File::open(&p).map_err(|e| TransportError::File(p.clone(), e))?)
            }
        })
    }
}

/// The output of an `exec:` command; at its end the command must have succeeded, or the
/// stream reports an error instead of a clean end.
struct ExecReader {
    command: String,
    child: Child,
    stdout: ChildStdout,
}

impl Read for ExecReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "`{}` exited with {status}",
                    self.command
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for ExecReader {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_fds(_: &str) -> Option<OwnedFd> {
        None
    }

    fn payload() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Sends `payload` to `uri` from a thread while this thread receives it.
    fn round_trip(uri: &MigrationUri, incoming: Option<&MigrationUri>) -> Vec<u8> {
        let inc = Incoming::listen(incoming.unwrap_or(uri), &mut no_fds).unwrap();
        let target = inc.address().unwrap_or_else(|| uri.clone());
        let sender = std::thread::spawn(move || {
            let mut out = Outgoing::connect(&target, &mut no_fds).unwrap();
            out.write_all(&payload()).unwrap();
            out.finish().unwrap();
        });
        let mut got = Vec::new();
        inc.accept().unwrap().read_to_end(&mut got).unwrap();
        sender.join().unwrap();
        got
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tern-transport-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn tcp_on_a_system_chosen_port() {
        let uri = MigrationUri::parse("tcp:127.0.0.1:0").unwrap();
        assert_eq!(round_trip(&uri, None), payload());
    }

    #[test]
    fn unix_socket_replacing_a_stale_one() {
        let p = scratch("m.sock");
        drop(UnixListener::bind(&p));
        let uri = MigrationUri::Unix(p.clone());
        assert_eq!(round_trip(&uri, None), payload());
        assert!(!p.exists(), "socket file left behind");
        std::fs::write(&p, b"x").unwrap();
        assert!(matches!(
            Incoming::listen(&uri, &mut no_fds),
            Err(TransportError::NotASocket(_))
        ));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn exec_through_gzip_and_back() {
        let f = scratch("vm.gz");
        let out = MigrationUri::Exec(format!("gzip -c > '{}'", f.display()));
        let mut o = Outgoing::connect(&out, &mut no_fds).unwrap();
        o.write_all(&payload()).unwrap();
        o.finish().unwrap();
        let inc = MigrationUri::Exec(format!("gzip -dc '{}'", f.display()));
        let mut got = Vec::new();
        Incoming::listen(&inc, &mut no_fds)
            .unwrap()
            .accept()
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, payload());
    }

    #[test]
    fn a_failing_command_fails_the_transfer() {
        let mut o = Outgoing::connect(
            &MigrationUri::Exec("cat >/dev/null; exit 3".into()),
            &mut no_fds,
        )
        .unwrap();
        o.write_all(b"data").unwrap();
        assert!(matches!(o.finish(), Err(TransportError::CommandFailed(..))));
        let mut r = Incoming::listen(&MigrationUri::Exec("echo hi; exit 4".into()), &mut no_fds)
            .unwrap()
            .accept()
            .unwrap();
        let mut v = Vec::new();
        assert!(r.read_to_end(&mut v).is_err());
    }

    #[test]
    fn file_appears_only_when_finished() {
        let dest = scratch("snap.tern");
        let _ = std::fs::remove_file(&dest);
        let uri = MigrationUri::File(dest.clone());
        let mut o = Outgoing::connect(&uri, &mut no_fds).unwrap();
        o.write_all(b"partial").unwrap();
        assert!(!dest.exists());
        o.abort();
        assert!(!dest.exists());
        assert!(!temp_path(&dest).exists());
        let mut o = Outgoing::connect(&uri, &mut no_fds).unwrap();
        o.write_all(&payload()).unwrap();
        o.finish().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), payload());
    }

    #[test]
    fn fd_names_are_looked_up() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut slot = Some(OwnedFd::from(a));
        let mut lookup = |n: &str| if n == "mig" { slot.take() } else { None };
        assert!(matches!(
            Outgoing::connect(&MigrationUri::Fd("other".into()), &mut lookup),
            Err(TransportError::NoFd(_))
        ));
        let mut o = Outgoing::connect(&MigrationUri::Fd("mig".into()), &mut lookup).unwrap();
        o.write_all(b"over a handed-over descriptor").unwrap();
        o.finish().unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"over a handed-over descriptor");
    }

    #[test]
    fn cancel_unblocks_a_stuck_writer() {
        // A peer that accepts and never reads: the sender blocks once the buffers fill.
        let inc = Incoming::listen(
            &MigrationUri::parse("tcp:127.0.0.1:0").unwrap(),
            &mut no_fds,
        )
        .unwrap();
        let addr = inc.address().unwrap();
        let mut out = Outgoing::connect(&addr, &mut no_fds).unwrap();
        let _peer = inc.accept().unwrap();
        let c = out.canceller();
        let writer = std::thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            loop {
                if let Err(e) = out.write_all(&chunk) {
                    return e;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        c.cancel();
        let e = writer.join().unwrap();
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn cancel_unblocks_a_writer_on_a_handed_over_socket() {
        let (a, _peer) = UnixStream::pair().unwrap();
        let mut slot = Some(OwnedFd::from(a));
        let mut out =
            Outgoing::connect(&MigrationUri::Fd("mig".into()), &mut |_| slot.take()).unwrap();
        let c = out.canceller();
        assert!(matches!(c, Canceller::Fd(_)));
        let writer = std::thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            loop {
                if let Err(e) = out.write_all(&chunk) {
                    return e;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        c.cancel();
        assert_eq!(writer.join().unwrap().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn connect_errors_are_clear() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = Outgoing::connect(
            &MigrationUri::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            &mut no_fds,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }
}
