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

/// Jump-cache slots: 64 groups of 64, the group chosen by the linear page, so that INVLPG
/// can empty the slots of one page (and of the page before it) without a full flush.
const JUMP_GROUP_BITS: u32 = 6;
const JUMP_CACHE: usize = 1 << (2 * JUMP_GROUP_BITS);
const JUMP_GROUP: usize = 1 << JUMP_GROUP_BITS;

/// A jump-cache entry: the block that runs at linear address `lin` in mode `mode`.
#[derive(Clone)]
struct Jump {
    lin: u32,
    mode: u32,
    block: Rc<Block>,
}

#[derive(Default)]
pub struct BlockCache {
    map: HashMap<(u32, u32), Rc<Block>>,
    by_page: HashMap<u32, Vec<Rc<Block>>>,
    jump: Vec<Option<Jump>>,
}

impl BlockCache {
    #[inline(always)]
    fn group(lin: u32) -> usize {
        ((lin >> 12) as usize) & (JUMP_GROUP - 1)
    }

    #[inline(always)]
    fn slot(lin: u32) -> usize {
        (Self::group(lin) << JUMP_GROUP_BITS) | ((lin ^ (lin >> 6)) as usize & (JUMP_GROUP - 1))
    }

    #[inline(always)]
    pub fn lookup_jump(&self, lin: u32, mode: u32) -> Option<&Rc<Block>> {
        match self.jump.get(Self::slot(lin)) {
            Some(Some(j)) if j.lin == lin && j.mode == mode && j.block.valid.get() => {
                Some(&j.block)
            }
            _ => None,
        }
    }

    /// The block translated from physical address `phys` in `mode`, if any. Blocks are
    /// EIP-relative, so one serves every linear address (CS base, page alias) of the code.
    pub fn find(&self, phys: u32, mode: u32) -> Option<Rc<Block>> {
        self.map.get(&(phys, mode)).cloned()
    }

    /// Remembers that `b` runs at linear address `lin`.
    pub fn link_jump(&mut self, lin: u32, b: &Rc<Block>) {
        if self.jump.is_empty() {
            self.jump = vec![None; JUMP_CACHE];
        }
        self.jump[Self::slot(lin)] = Some(Jump {
            lin,
            mode: b.mode,
            block: b.clone(),
        });
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
    }

    /// Empties the jump-cache slots that may hold code reached through `lin`'s page: its
    /// own group and the previous page's (a block there may run into this page).
    pub fn flush_jump_page(&mut self, lin: u32) {
        if self.jump.is_empty() {
            return;
        }
        for l in [lin, lin.wrapping_sub(0x1000)] {
            let g = Self::group(l) << JUMP_GROUP_BITS;
            self.jump[g..g + JUMP_GROUP]
                .iter_mut()
                .for_each(|e| *e = None);
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
