//! Translated blocks and their cache.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use memory::GuestMemory;

use crate::exception::Result;
use crate::{Bus, Cpu};

/// An op's handler, chosen at translation time for the instruction's form and width.
pub type Handler = fn(&mut Cpu, &mut dyn Bus, &Op) -> Result<()>;

/// One pre-decoded instruction.
///
/// Memory operand: `ea = (gpr[base] + (gpr[index] << scale) + disp) & amask` in segment
/// `seg`; a missing base or index is the always-zero register 8. Handlers read the other
/// fields as their instruction needs (documented at each handler).
#[derive(Clone, Copy)]
pub struct Op {
    pub f: Handler,
    /// Instruction length: EIP advances by this before the handler runs.
    pub len: u8,
    /// Register operands (x86 numbering for the operand's width).
    pub r: u8,
    pub rm: u8,
    pub seg: u8,
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    /// Instruction-specific small value (condition code, segment register, repeat kind).
    pub x: u8,
    pub disp: u32,
    pub amask: u32,
    pub imm: u32,
    pub imm2: u32,
}

impl Op {
    /// Effective address of the memory operand.
    #[inline(always)]
    pub fn ea(&self, cpu: &Cpu) -> u32 {
        let g = &cpu.s.gpr;
        g[usize::from(self.base)]
            .wrapping_add(g[usize::from(self.index)] << self.scale)
            .wrapping_add(self.disp)
            & self.amask
    }

    #[inline(always)]
    pub fn seg(&self) -> usize {
        usize::from(self.seg)
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("len", &self.len)
            .field("r", &self.r)
            .field("rm", &self.rm)
            .finish()
    }
}

pub struct Block {
    /// Linear address of the first instruction (cs.base + eip) when it was translated.
    pub lin: u32,
    pub phys: u32,
    pub mode: u32,
    pub ops: Box<[Op]>,
    /// RAM pages the code bytes came from (one or two).
    pub pages: [Option<u32>; 2],
    /// For a block whose (single) instruction crosses into the next linear page: the
    /// physical page that next page mapped to. The block may serve again only while it
    /// still does.
    pub next_phys: Option<u32>,
    pub valid: Cell<bool>,
}

const JUMP_CACHE: usize = 4096;
/// Bits in the filter of linear pages that may have jump-cache entries.
const PAGE_FILTER: usize = 4096;

/// Translated blocks by (physical address, mode), by RAM page (for invalidation), and the
/// jump cache: a direct-mapped table by linear address in front of the map, looked up once
/// per block run. INVLPG must drop the jump entries reached through the page it names;
/// rather than give the hot lookup a page-grouped hash, a small filter of linear pages
/// (hashed, never cleared but by a full flush) tells INVLPG of a data page, the common
/// case, that there is nothing to drop, and otherwise the table is scanned.
#[derive(Default)]
pub struct BlockCache {
    map: HashMap<(u32, u32), Rc<Block>>,
    by_page: HashMap<u32, Vec<Rc<Block>>>,
    jump: Vec<Option<Rc<Block>>>,
    jump_pages: Vec<u64>,
}

impl BlockCache {
    #[inline(always)]
    fn slot(lin: u32) -> usize {
        ((lin ^ (lin >> 12)) as usize) & (JUMP_CACHE - 1)
    }

    fn filter_bit(lin: u32) -> (usize, u64) {
        let p = (lin >> 12) as usize % PAGE_FILTER;
        (p / 64, 1 << (p % 64))
    }

    fn may_have_page(&self, lin: u32) -> bool {
        let (w, b) = Self::filter_bit(lin);
        self.jump_pages.get(w).is_some_and(|v| v & b != 0)
    }

    #[inline(always)]
    pub fn lookup_jump(&self, lin: u32, mode: u32) -> Option<&Rc<Block>> {
        match self.jump.get(Self::slot(lin)) {
            Some(Some(b)) if b.lin == lin && b.mode == mode && b.valid.get() => Some(b),
            _ => None,
        }
    }

    /// The block translated from physical address `phys` in `mode`, if any. Blocks are
    /// EIP-relative, so one serves every linear address (CS base, page alias) of the code.
    pub fn find(&self, phys: u32, mode: u32) -> Option<Rc<Block>> {
        self.map.get(&(phys, mode)).cloned()
    }

    /// Remembers that `b` runs at linear address `lin`. The jump cache compares the
    /// block's own linear address: a block reached through another one (a CS base or a
    /// page alias) is found in the block map each time instead.
    pub fn link_jump(&mut self, lin: u32, b: &Rc<Block>) {
        if b.lin != lin {
            return;
        }
        if self.jump.is_empty() {
            self.jump = vec![None; JUMP_CACHE];
            self.jump_pages = vec![0; PAGE_FILTER / 64];
        }
        let (word, bit) = Self::filter_bit(lin);
        self.jump_pages[word] |= bit;
        self.jump[Self::slot(lin)] = Some(b.clone());
    }

    pub fn insert(&mut self, b: Block) -> Rc<Block> {
        let b = Rc::new(b);
        if let Some(old) = self.map.insert((b.phys, b.mode), b.clone()) {
            old.valid.set(false);
        }
        for p in b.pages.iter().flatten() {
            self.by_page.entry(*p).or_default().push(b.clone());
        }
        self.link_jump(b.lin, &b);
        b
    }

    /// Drops every block with code on RAM page `page`.
    pub fn invalidate_page(&mut self, page: u32) {
        if let Some(blocks) = self.by_page.remove(&page) {
            for b in blocks {
                b.valid.set(false);
                if self
                    .map
                    .get(&(b.phys, b.mode))
                    .is_some_and(|m| Rc::ptr_eq(m, &b))
                {
                    self.map.remove(&(b.phys, b.mode));
                }
            }
        }
    }

    pub fn flush_jump_cache(&mut self) {
        self.jump.iter_mut().for_each(|e| *e = None);
        self.jump_pages.iter_mut().for_each(|w| *w = 0);
    }

    /// Drops the jump-cache entries that may hold code reached through `lin`'s page: those
    /// that start on it, and those that start on the page before (a block there may run
    /// into this page).
    pub fn flush_jump_page(&mut self, lin: u32) {
        let prev = lin.wrapping_sub(0x1000);
        if !self.may_have_page(lin) && !self.may_have_page(prev) {
            return;
        }
        let (page, prev) = (lin >> 12, prev >> 12);
        for e in self.jump.iter_mut() {
            if e.as_ref()
                .is_some_and(|j| j.lin >> 12 == page || j.lin >> 12 == prev)
            {
                *e = None;
            }
        }
    }

    pub fn flush_all(&mut self, mem: &GuestMemory) {
        for b in self.map.values() {
            b.valid.set(false);
        }
        for p in self.by_page.keys() {
            mem.code_clear(u64::from(*p));
        }
        self.map.clear();
        self.by_page.clear();
        self.flush_jump_cache();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lin: u32, phys: u32) -> Block {
        Block {
            lin,
            phys,
            mode: 0,
            ops: Box::new([]),
            pages: [None, None],
            next_phys: None,
            valid: Cell::new(true),
        }
    }

    #[test]
    fn jump_page_flush_drops_the_page_and_the_one_before() {
        let mut c = BlockCache::default();
        let lins = [0x40_0FFF, 0x40_1010, 0x40_2010, 0x140_1020, 0x40_0010];
        for (k, &lin) in lins.iter().enumerate() {
            c.insert(block(lin, 0x10_0000 * (k as u32 + 1) + (lin & 0xFFF)));
        }
        for &lin in &lins {
            assert!(c.lookup_jump(lin, 0).is_some(), "{lin:#x}");
        }
        // Nothing was ever reached through page 0x7000: nothing to do.
        c.flush_jump_page(0x7123);
        assert!(lins.iter().all(|&lin| c.lookup_jump(lin, 0).is_some()));
        c.flush_jump_page(0x40_1234);
        assert!(c.lookup_jump(0x40_0FFF, 0).is_none(), "the page before");
        assert!(c.lookup_jump(0x40_0010, 0).is_none(), "the page before");
        assert!(c.lookup_jump(0x40_1010, 0).is_none(), "the page");
        assert!(c.lookup_jump(0x40_2010, 0).is_some(), "the page after");
        assert!(
            c.lookup_jump(0x140_1020, 0).is_some(),
            "same filter bit, other page"
        );
        // The blocks themselves stay in the map (they are keyed physically).
        assert!(c.find(0x10_0FFF, 0).is_some());
        c.flush_jump_cache();
        assert!(c.lookup_jump(0x40_2010, 0).is_none());
    }
}
