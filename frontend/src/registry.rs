//! The set of host file descriptors the event loop waits on, and their registration with
//! the `polling` crate.
//!
//! `Poller::add` is `unsafe` because the poller holds on to the raw descriptor: closing it
//! while still registered would leave epoll watching whatever file reuses the number. The
//! [`Registry`] makes that impossible by owning every source it registers. A source leaves
//! only through [`Registry::remove`] (or the registry's `Drop`), both of which delete it
//! from the poller before handing it back or dropping it. This is the frontend's only
//! `unsafe` code.
//!
//! Sources are registered level-triggered, so a source that still has data is reported
//! again on the next wait and no readiness is lost if a handler reads only part of it.
//! Files that epoll refuses (a regular file or `/dev/null` as stdin) are kept unpolled and
//! reported ready on every wait, which is true of them: reads never block.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

/// Identifies a registered source; never reused within one registry.
pub type Key = usize;

/// A host source the event loop reads from, writes to, or accepts on.
pub enum Io {
    /// A duplicate of stdin, read unbuffered so that readiness and data agree.
    Stdin(File),
    UnixListener(UnixListener),
    TcpListener(TcpListener),
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Io {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Io::Stdin(f) => f.as_fd(),
            Io::UnixListener(l) => l.as_fd(),
            Io::TcpListener(l) => l.as_fd(),
            Io::Unix(s) => s.as_fd(),
            Io::Tcp(s) => s.as_fd(),
        }
    }

    /// Accepts one connection on a listener, in non-blocking mode. `Ok(None)` when no
    /// client is waiting.
    pub fn accept(&self) -> io::Result<Option<Io>> {
        let r = match self {
            Io::UnixListener(l) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(true)?;
                Ok(Io::Unix(s))
            }),
            Io::TcpListener(l) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(true)?;
                // Monitor replies are small and interactive.
                s.set_nodelay(true)?;
                Ok(Io::Tcp(s))
            }),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a listener",
                ))
            }
        };
        match r {
            Ok(io) => Ok(Some(io)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Stdin(f) => f.read(buf),
            Io::Unix(s) => {
                // Descriptors that arrive unasked are closed (dropped) right here.
                let mut fds = Vec::new();
                read_with_fds(s, buf, &mut fds)
            }
            Io::Tcp(s) => s.read(buf),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot read a listener",
            )),
        }
    }
}

impl Io {
    /// Reads like `read`, and collects descriptors sent along (SCM_RIGHTS) on a unix
    /// socket: a monitor client hands one over before `getfd NAME`.
    pub fn read_with_fds(&mut self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        match self {
            Io::Unix(s) => read_with_fds(s, buf, fds),
            other => other.read(buf),
        }
    }
}

/// `recvmsg` with room for a few descriptors; they come back owned and close-on-exec.
fn read_with_fds(s: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg(s, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC)?;
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        log::warn!("monitor client sent more descriptors than one message takes");
    }
    Ok(msg.bytes)
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Unix(s) => s.write(buf),
            Io::Tcp(s) => s.write(buf),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a writable stream",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A registered source with the role its owner gave it.
pub struct Entry<R> {
    pub io: Io,
    pub role: R,
    /// False for files epoll refuses; see the module documentation.
    polled: bool,
    readable: bool,
    writable: bool,
}

/// One readiness report from [`Registry::wait`].
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    pub key: Key,
    pub readable: bool,
    /// Also set on hang-up and errors, so that a writer notices a dead peer.
    pub writable: bool,
}

/// Owns the poller and every source registered with it. `R` is the caller's tag for what a
/// source is for.
pub struct Registry<R> {
    /// Shared so that other threads (migration) can wake a waiting loop.
    poller: Arc<Poller>,
    entries: HashMap<Key, Entry<R>>,
    next_key: Key,
    events: Events,
}

impl<R: Copy> Registry<R> {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            poller: Arc::new(Poller::new()?),
            entries: HashMap::new(),
            next_key: 0,
            events: Events::new(),
        })
    }

    /// A handle another thread can use to end the current (or next) wait early.
    pub fn notifier(&self) -> Arc<Poller> {
        self.poller.clone()
    }

    /// Registers `io` for readability and takes ownership of it.
    pub fn add(&mut self, io: Io, role: R) -> io::Result<Key> {
        let key = self.next_key;
        self.next_key += 1;
        let interest = Event::readable(key);
        // SAFETY: the poller requires the descriptor to stay open until it is deleted from
        // the poller. `io` owns the descriptor and moves into `self.entries` right below; it
        // leaves the map only through `remove` and `Drop`, which both call
        // `Poller::delete` before the `Io` can be dropped. If `add` fails nothing was
        // registered and dropping `io` is fine.
        let r = unsafe {
            self.poller
                .add_with_mode(io.fd().as_raw_fd(), interest, PollMode::Level)
        };
        let polled = match r {
            Ok(()) => true,
            // epoll refuses regular files and /dev/null with EPERM; they are always ready.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && matches!(io, Io::Stdin(_)) => {
                false
            }
            Err(e) => return Err(e),
        };
        self.entries.insert(
            key,
            Entry {
                io,
                role,
                polled,
                readable: true,
                writable: false,
            },
        );
        Ok(key)
    }

    /// Changes what the source at `key` is watched for (a reader applying back-pressure
    /// turns readability off; a writer with queued bytes turns writability on).
    pub fn set_interest(&mut self, key: Key, readable: bool, writable: bool) -> io::Result<()> {
        let Some(e) = self.entries.get_mut(&key) else {
            return Ok(());
        };
        if e.readable == readable && e.writable == writable {
            return Ok(());
        }
        e.readable = readable;
        e.writable = writable;
        if e.polled {
            let ev = Event::new(key, readable, writable);
            self.poller
                .modify_with_mode(e.io.fd(), ev, PollMode::Level)?;
        }
        Ok(())
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut Entry<R>> {
        self.entries.get_mut(&key)
    }

    pub fn role(&self, key: Key) -> Option<R> {
        self.entries.get(&key).map(|e| e.role)
    }

    /// Unregisters the source at `key` and hands it back (dropping it closes it).
    pub fn remove(&mut self, key: Key) -> Option<Io> {
        let e = self.entries.remove(&key)?;
        if e.polled {
            if let Err(err) = self.poller.delete(e.io.fd()) {
                log::warn!("removing a source from the poller: {err}");
            }
        }
        Some(e.io)
    }

    /// Waits up to `timeout` (`None`: forever) for a source to become ready.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Vec<Ready>> {
        let mut ready: Vec<Ready> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.polled && e.readable)
            .map(|(&key, _)| Ready {
                key,
                readable: true,
                writable: false,
            })
            .collect();
        let timeout = if ready.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            let hup = ev.is_err() == Some(true);
            ready.push(Ready {
                key: ev.key,
                readable: ev.readable || hup,
                writable: ev.writable || hup,
            });
        }
        Ok(ready)
    }
}

impl<R> Drop for Registry<R> {
    fn drop(&mut self) {
        for (_, e) in self.entries.drain() {
            if e.polled {
                let _ = self.poller.delete(e.io.fd());
            }
        }
    }
}
