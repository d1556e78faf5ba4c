//! Writing a stream on a second core: the producer (copying RAM, finding zero pages,
//! checksumming) and the host's `write` (copying into the page cache or a socket) take
//! about as long as each other for a large guest, so running them side by side halves a
//! save.
//!
//! ```text
//!   producer thread                        writer thread (scoped)
//!   ┌──────────────┐  full chunk (1 MiB)   ┌─────────────────┐
//!   │ WriteBehind  │ ───── filled ───────► │ out.write_all() │
//!   │  .write(..)  │ ◄──── empty ───────── │                 │
//!   └──────────────┘   (recycled buffer)   └─────────────────┘
//! ```
//! At most [`DEPTH`] chunks are in flight, so memory stays bounded however fast the
//! producer is. The first write error stops the writer; the producer's next write or
//! flush then fails as a broken pipe, and [`write_behind`] returns the error the host
//! gave (so a full disk still reads as one).

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};

/// Bytes gathered before a chunk is handed to the writer thread.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued for the writer thread at most.
pub const DEPTH: usize = 3;

enum Job {
    Data(Vec<u8>),
    /// Reply once every chunk sent before has been written and `out` flushed.
    Flush(SyncSender<io::Result<()>>),
}

/// The producer's end: an `io::Write` whose bytes a second thread writes out.
pub struct WriteBehind {
    jobs: Option<SyncSender<Job>>,
    empty: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// Buffers created so far; at most `DEPTH + 2` ever exist.
    made: usize,
}

/// Runs `f` with a [`WriteBehind`] whose bytes go to `out` on another thread; returns
/// what `f` returned and `out` once every byte has been written, or the first write error.
///
/// Whatever `f` leaves unflushed is written before this returns.
pub fn write_behind<W, T>(out: W, f: impl FnOnce(&mut WriteBehind) -> T) -> (T, io::Result<W>)
where
    W: Write + Send,
{
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let writer = s.spawn(move || write_jobs(out, jobs_rx, empty_tx));
        let mut wb = WriteBehind {
            jobs: Some(jobs_tx),
            empty: empty_rx,
            buf: Vec::with_capacity(CHUNK),
            made: 1,
        };
        let value = f(&mut wb);
        let sent = wb.send_buf();
        // Closing the channel ends the writer once it has written what is queued.
        drop(wb.jobs.take());
        let out = match writer.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the stream writer thread failed")),
        };
        (value, sent.and(out))
    })
}

fn write_jobs<W: Write>(
    mut out: W,
    jobs: Receiver<Job>,
    empty: mpsc::Sender<Vec<u8>>,
) -> io::Result<W> {
    for job in jobs {
        match job {
            Job::Data(mut b) => {
                // On error the channels close with this return, and the producer's next
                // write or flush fails at once instead of producing the rest for nothing.
                out.write_all(&b)?;
                b.clear();
                // The producer may be gone already; the buffer is then simply freed.
                let _ = empty.send(b);
            }
            Job::Flush(reply) => {
                let r = out.flush();
                let failed = r
                    .as_ref()
                    .err()
                    .map(|e| io::Error::new(e.kind(), e.to_string()));
                let _ = reply.send(r);
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
    }
    out.flush().map(|()| out)
}

impl WriteBehind {
    fn disconnected() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "the stream writer has stopped")
    }

    /// Hands the current chunk to the writer and takes an empty one.
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = match self.empty.try_recv() {
            Ok(b) => b,
            Err(_) if self.made < DEPTH + 2 => {
                self.made += 1;
                Vec::with_capacity(CHUNK)
            }
            // Every buffer is queued or being written: wait for one.
            Err(_) => self.empty.recv().map_err(|_| Self::disconnected())?,
        };
        let full = std::mem::replace(&mut self.buf, next);
        let jobs = self.jobs.as_ref().ok_or_else(Self::disconnected)?;
        jobs.send(Job::Data(full)).map_err(|_| Self::disconnected())
    }
}

impl Write for WriteBehind {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    /// Waits until everything written so far has reached `out` and `out` is flushed:
    /// a caller that paces or times its output sees what really left.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()?;
        let (tx, rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(Self::disconnected)?;
        jobs.send(Job::Flush(tx))
            .map_err(|_| Self::disconnected())?;
        rx.recv().map_err(|_| Self::disconnected())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order() {
        let data: Vec<u8> = (0..5 * CHUNK + 123)
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        let (n, out) = write_behind(Vec::new(), |w| {
            for piece in data.chunks(333_333) {
                w.write_all(piece).unwrap();
            }
            w.flush().unwrap();
            w.write_all(b"tail").unwrap();
            7
        });
        assert_eq!(n, 7);
        let out = out.unwrap();
        assert_eq!(out.len(), data.len() + 4);
        assert!(out[..data.len()] == data[..]);
        assert_eq!(&out[data.len()..], b"tail");
    }

    /// Accepts `limit` bytes, then fails as a full disk does.
    #[derive(Debug)]
    struct Full {
        limit: usize,
        got: usize,
    }

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.got + b.len() > self.limit {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.got += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_reaches_the_producer() {
        let (seen, out) = write_behind(
            Full {
                limit: 2 * CHUNK,
                got: 0,
            },
            |w| {
                let chunk = vec![1u8; CHUNK];
                // The writer fails on the third chunk; the producer learns of it at a
                // later write (when it waits for a buffer) or at the latest on flush.
                for _ in 0..(DEPTH + 4) {
                    if let Err(e) = w.write_all(&chunk) {
                        return Some(e);
                    }
                }
                w.flush().err()
            },
        );
        let seen = seen.expect("the producer sees the error");
        assert_eq!(seen.kind(), io::ErrorKind::BrokenPipe, "{seen}");
        let out = out.expect_err("the result carries the host's error");
        assert_eq!(out.raw_os_error(), Some(28));
    }
}
