//! Taking the page faults of incoming RAM on spare cores.
//!
//! A migration or snapshot landing in a fresh process writes RAM the host has never
//! backed. Each first touch is a page fault in which the host zeroes the page (and, on a
//! virtual machine whose hypervisor reclaims free memory, faults it in from the
//! hypervisor first), and that, not the copy, is most of the time of receiving a gigabyte.
//! The stream announces each data run before its bytes arrive, so a few threads can
//! populate the run's pages while the reader is still reading them and the writer is busy
//! with the previous run:
//!
//! ```text
//!   reader:   header N ─► read N ─► header N+1 ─► read N+1 ...
//!                │                     │
//!   prefault:    └─► populate N        └─► populate N+1        (threads take turns)
//!   writer:                  copy N-1 ──────────► copy N ...   (pages already backed)
//! ```
//! Populating changes no byte of RAM (a page stays zero until written) and a page that is
//! already backed is left alone, so the order of the two does not matter. A request that
//! finds its thread's queue full is dropped: the writer then takes the fault itself.

use std::sync::mpsc::{self, SyncSender};

use crate::{GuestMemory, PAGE_SIZE};

/// Requests queued per thread at most.
const QUEUE: usize = 4;
/// Prefault threads a loader uses: with the reader and the writer, enough to keep two
/// cores busy with first touches.
pub const PREFAULT_THREADS: usize = 2;

/// The handle of [`with_prefault`]: announces page runs about to be written.
pub struct Prefault {
    queues: Vec<SyncSender<(u64, u64)>>,
    next: usize,
}

impl Prefault {
    /// Pages `first..first + count` (by RAM offset) are about to be written.
    pub fn coming(&mut self, first: u64, count: u64) {
        if self.queues.is_empty() {
            return;
        }
        let q = &self.queues[self.next % self.queues.len()];
        self.next = self.next.wrapping_add(1);
        // A full queue drops the request (see the module docs).
        let _ = q.try_send((first, count));
    }
}

/// Runs `f` with a [`Prefault`] served by `threads` threads that populate the announced
/// pages of `mem`; returns what `f` returned once the threads have stopped.
pub fn with_prefault<T>(
    mem: &GuestMemory,
    threads: usize,
    f: impl FnOnce(&mut Prefault) -> T,
) -> T {
    std::thread::scope(|s| {
        let mut queues = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<(u64, u64)>(QUEUE);
            queues.push(tx);
            s.spawn(move || {
                for (first, count) in rx {
                    if let (Some(off), Some(len)) =
                        (first.checked_mul(PAGE_SIZE), count.checked_mul(PAGE_SIZE))
                    {
                        mem.ram().prefault(off, len);
                    }
                }
            });
        }
        let mut p = Prefault { queues, next: 0 };
        let value = f(&mut p);
        // Closing the queues ends the threads; the scope waits for them.
        drop(p);
        value
    })
}
