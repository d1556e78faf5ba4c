//! A stream's two halves on two cores.
//!
//! Writing: the producer (copying RAM, finding zero pages, checksumming) and the host's
//! `write` (copying into the page cache or a socket) take about as long as each other for
//! a large guest, so running them side by side halves a save.
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
//!
//! Reading: [`sink_behind`] does the same for RAM coming out of a
//! [`crate::StreamReader`]. The reader (host `read`, checksum) stays on the caller's
//! thread, the sink (page faults in fresh guest RAM, copies) runs on a second one, and
//! runs travel between them in their own buffers, in stream order.
//!
//! ```text
//!   reader thread                          sink thread (scoped)
//!   ┌──────────────┐  run (≤ 1 MiB, owned)  ┌──────────────────┐
//!   │ SinkBehind   │ ───── RAM ops ───────► │ S: RamSink       │
//!   │ (a RamSink)  │ ◄──── empty ────────── │                  │
//!   └──────────────┘                        └──────────────────┘
//! ```

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::error::{Error, Result};
use crate::format::PAGE_SIZE;
use crate::ram::RamSink;

/// Bytes gathered before a chunk is handed to the writer thread.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued for the writer thread at most.
pub const DEPTH: usize = 3;

/// The producer's end: an `io::Write` whose bytes a second thread writes out.
pub struct WriteBehind {
    jobs: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    /// Buffers created so far; at most `DEPTH + 2` ever exist.
    made: usize,
}

/// Runs `f` with a [`WriteBehind`] whose bytes go to `out` on another thread; returns
/// what `f` returned, `out` (also after an error: a transport may need aborting), and
/// the first write error. Whatever `f` leaves unflushed is written before this returns.
pub fn write_behind<W, T>(out: W, f: impl FnOnce(&mut WriteBehind) -> T) -> (T, W, io::Result<()>)
where
    W: Write + Send,
{
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
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
        match writer.join() {
            // The writer's own error is the one worth reporting; `sent` fails only
            // because the writer stopped.
            Ok((out, r)) => (value, out, r.and(sent)),
            // Only a panic in `out` ends up here, and a panic ends the process first.
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

fn write_jobs<W: Write>(
    mut out: W,
    jobs: Receiver<Vec<u8>>,
    empty: mpsc::Sender<Vec<u8>>,
) -> (W, io::Result<()>) {
    for mut b in jobs {
        // On error the channels close with this return, and the producer's next write or
        // flush fails at once instead of producing the rest for nothing.
        if let Err(e) = out.write_all(&b) {
            return (out, Err(e));
        }
        b.clear();
        // The producer may be gone already; the buffer is then simply freed.
        let _ = empty.send(b);
    }
    let r = out.flush();
    (out, r)
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
        jobs.send(full).map_err(|_| Self::disconnected())
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

    /// Hands what has been gathered to the writer thread without waiting for it to be
    /// written (the writer flushes `out` when it is done): a sender that paces or stops
    /// does not leave a half chunk behind. What has reached `out` is for `out` to count.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// RAM on its way from the reader to the sink thread.
enum RamOp {
    Zero(u64, u64),
    Run(u64, Vec<u8>),
}

/// The reader's end of [`sink_behind`]: a [`RamSink`] that forwards, in order.
pub struct SinkBehind {
    ops: Option<SyncSender<RamOp>>,
    empty: Receiver<Vec<u8>>,
}

/// Runs `f` with a [`SinkBehind`] whose pages reach `sink` on another thread, in the order
/// they were given. Returns what `f` returned, the sink (with whatever it gathered, an
/// undo log say), and the sink's first error as [`Error::Sink`] with the page of the
/// refused run. After that error the sink gets nothing more, and `f`'s next call on the
/// [`SinkBehind`] fails.
pub fn sink_behind<S, T>(sink: S, f: impl FnOnce(&mut SinkBehind) -> T) -> (T, S, Result<()>)
where
    S: RamSink + Send,
{
    let (ops_tx, ops_rx) = mpsc::sync_channel::<RamOp>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let worker = s.spawn(move || apply_ops(sink, ops_rx, empty_tx));
        let mut sb = SinkBehind {
            ops: Some(ops_tx),
            empty: empty_rx,
        };
        let value = f(&mut sb);
        drop(sb.ops.take());
        match worker.join() {
            Ok((sink, r)) => (value, sink, r),
            // Only a panic in the sink ends up here, and a panic ends the process first.
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

fn apply_ops<S: RamSink>(
    mut sink: S,
    ops: Receiver<RamOp>,
    empty: mpsc::Sender<Vec<u8>>,
) -> (S, Result<()>) {
    for op in ops {
        let (page, r) = match op {
            RamOp::Zero(first, count) => (first, sink.zero_pages(first, count)),
            RamOp::Run(first, run) => {
                let r = sink.write_pages(first, &run);
                let _ = empty.send(run);
                (first, r)
            }
        };
        if let Err(source) = r {
            // Dropping `ops` makes the reader's next call fail.
            return (sink, Err(Error::Sink { page, source }));
        }
    }
    (sink, Ok(()))
}

impl SinkBehind {
    fn send(&self, op: RamOp) -> io::Result<()> {
        self.ops
            .as_ref()
            .and_then(|o| o.send(op).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "the RAM sink has stopped"))
    }
}

impl RamSink for SinkBehind {
    fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
        self.send(RamOp::Zero(first, count))
    }

    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
        self.send(RamOp::Run(page, data.to_vec()))
    }

    fn write_pages(&mut self, first: u64, data: &[u8]) -> io::Result<()> {
        self.send(RamOp::Run(first, data.to_vec()))
    }

    fn write_run(&mut self, first: u64, run: Vec<u8>) -> io::Result<Vec<u8>> {
        self.send(RamOp::Run(first, run))?;
        // A used buffer if one is back, else a new one: at most DEPTH + 2 are in use.
        Ok(self.empty.try_recv().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was given; fails on page `fail_at`.
    #[derive(Default)]
    struct Log {
        got: Vec<(u64, u64, u8)>,
        fail_at: Option<u64>,
    }

    impl RamSink for Log {
        fn zero_pages(&mut self, first: u64, count: u64) -> io::Result<()> {
            self.got.push((first, count, 0));
            Ok(())
        }
        fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> io::Result<()> {
            if self.fail_at == Some(page) {
                return Err(io::Error::other("bad page"));
            }
            self.got.push((page, 1, data[0]));
            Ok(())
        }
    }

    #[test]
    fn the_sink_gets_every_op_in_order() {
        let (n, log, r) = sink_behind(Log::default(), |s| {
            let mut run = vec![0u8; 3 * PAGE_SIZE];
            for i in 0..50u64 {
                run.resize(3 * PAGE_SIZE, 0);
                run[0] = i as u8;
                run[PAGE_SIZE] = i as u8 + 1;
                run[2 * PAGE_SIZE] = i as u8 + 2;
                run = s.write_run(i * 10, run).unwrap();
                s.zero_pages(i * 10 + 3, 2).unwrap();
            }
            s.write_page(999, &[9; PAGE_SIZE]).unwrap();
            5
        });
        r.unwrap();
        assert_eq!(n, 5);
        let mut want = Vec::new();
        for i in 0..50u64 {
            for k in 0..3 {
                want.push((i * 10 + k, 1, (i + k) as u8));
            }
            want.push((i * 10 + 3, 2, 0));
        }
        want.push((999, 1, 9));
        assert_eq!(log.got, want);
    }

    #[test]
    fn a_sink_error_stops_the_reader() {
        let sink = Log {
            fail_at: Some(20),
            ..Log::default()
        };
        let (stopped, log, r) = sink_behind(sink, |s| {
            (0..1000u64).find(|&p| s.write_page(p, &[1; PAGE_SIZE]).is_err())
        });
        let e = r.unwrap_err();
        assert!(matches!(e, Error::Sink { page: 20, .. }), "{e}");
        assert!(stopped.is_some_and(|p| p > 20), "{stopped:?}");
        assert_eq!(log.got.len(), 20);
    }

    #[test]
    fn bytes_arrive_in_order() {
        let data: Vec<u8> = (0..5 * CHUNK + 123)
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        let (n, out, r) = write_behind(Vec::new(), |w| {
            for piece in data.chunks(333_333) {
                w.write_all(piece).unwrap();
            }
            w.flush().unwrap();
            w.write_all(b"tail").unwrap();
            7
        });
        assert_eq!(n, 7);
        r.unwrap();
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
        let (seen, full, r) = write_behind(
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
        let e = r.expect_err("the result carries the host's error");
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(full.got, 2 * CHUNK);
    }
}
