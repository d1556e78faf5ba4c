//! A page bitmap whose words are atomics, so one thread can set bits while another
//! takes them: the building block of the dirty log and the code-page map.

use std::sync::atomic::{AtomicU64, Ordering};

/// One bit per 4 KiB guest page.
pub struct AtomicBitmap {
    words: Box<[AtomicU64]>,
    bits: u64,
}

impl AtomicBitmap {
    pub fn new(bits: u64) -> Self {
        let words = bits.div_ceil(64) as usize;
        Self {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            bits,
        }
    }

    pub fn len(&self) -> u64 {
        self.bits
    }

    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// Sets bit `i`. A plain load first keeps an already-set bit from costing a locked
    /// read-modify-write: the common case for pages written over and over.
    #[inline]
    pub fn set(&self, i: u64) {
        if i >= self.bits {
            return;
        }
        let w = &self.words[(i / 64) as usize];
        let mask = 1u64 << (i % 64);
        if w.load(Ordering::Relaxed) & mask == 0 {
            // Release pairs with the Acquire of `take`: whoever takes the bit then sees
            // the data written before it was set.
            w.fetch_or(mask, Ordering::Release);
        }
    }

    #[inline]
    pub fn get(&self, i: u64) -> bool {
        i < self.bits
            && self.words[(i / 64) as usize].load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    pub fn clear(&self, i: u64) {
        if i < self.bits {
            self.words[(i / 64) as usize].fetch_and(!(1u64 << (i % 64)), Ordering::AcqRel);
        }
    }

    /// Takes every set bit and leaves the map empty, word by word: a bit set concurrently
    /// is either in the returned map or still set afterwards, never lost.
    pub fn take(&self) -> DirtyBitmap {
        DirtyBitmap {
            words: self
                .words
                .iter()
                .map(|w| w.swap(0, Ordering::AcqRel))
                .collect(),
            bits: self.bits,
        }
    }

    pub fn set_all(&self) {
        for (i, w) in self.words.iter().enumerate() {
            let first = i as u64 * 64;
            let n = (self.bits - first).min(64);
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            w.fetch_or(mask, Ordering::Release);
        }
    }

    pub fn clear_all(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Release);
        }
    }

    pub fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }

    /// The first set bit in `from..end`, or `end` if there is none: a word at a time, so
    /// a long clear stretch costs one load per 64 bits.
    pub fn next_set(&self, from: u64, end: u64) -> u64 {
        let end = end.min(self.bits);
        let mut i = from;
        while i < end {
            let w = self.words[(i / 64) as usize].load(Ordering::Acquire) >> (i % 64);
            if w != 0 {
                return (i + u64::from(w.trailing_zeros())).min(end);
            }
            i = (i / 64 + 1) * 64;
        }
        end
    }
}

/// A snapshot of a bitmap taken out of an [`AtomicBitmap`]: the pages a harvest returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirtyBitmap {
    words: Vec<u64>,
    bits: u64,
}

impl DirtyBitmap {
    pub fn is_set(&self, i: u64) -> bool {
        i < self.bits && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Page numbers of the set bits, ascending.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as u64;
                w &= w - 1;
                Some(i as u64 * 64 + b)
            })
        })
    }

    /// Set bits merged into runs `(first_page, page_count)`, the unit a sender copies.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for p in self.pages() {
            match out.last_mut() {
                Some((start, n)) if *start + *n == p => *n += 1,
                _ => out.push((p, 1)),
            }
        }
        out
    }

    pub fn merge(&mut self, other: &DirtyBitmap) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_take_ranges() {
        let b = AtomicBitmap::new(200);
        for p in [0, 1, 2, 63, 64, 65, 199, 500] {
            b.set(p);
        }
        assert!(b.get(64));
        assert_eq!(b.count(), 7);
        let t = b.take();
        assert_eq!(b.count(), 0);
        assert_eq!(t.ranges(), vec![(0, 3), (63, 3), (199, 1)]);
        assert_eq!(
            t.pages().collect::<Vec<_>>(),
            vec![0, 1, 2, 63, 64, 65, 199]
        );
    }

    #[test]
    fn next_set_scans_words() {
        let b = AtomicBitmap::new(300);
        assert_eq!(b.next_set(0, 300), 300);
        assert_eq!(b.next_set(5, 1000), 300);
        b.set(70);
        b.set(200);
        assert_eq!(b.next_set(0, 300), 70);
        assert_eq!(b.next_set(70, 300), 70);
        assert_eq!(b.next_set(71, 300), 200);
        assert_eq!(b.next_set(71, 150), 150);
        assert_eq!(b.next_set(201, 300), 300);
        assert_eq!(b.next_set(250, 100), 100);
    }

    #[test]
    fn set_all_respects_length() {
        let b = AtomicBitmap::new(70);
        b.set_all();
        assert_eq!(b.count(), 70);
    }
}
