//! The CPU object: architectural state plus the caches derived from it.

use std::sync::Arc;

use memory::GuestMemory;

use crate::block::BlockCache;
use crate::state::{CpuState, SegBounds, CS, SS};
use crate::tlb::Tlb;

/// Which CPU tern presents (CPUID, reset signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CpuModel {
    /// A Pentium Pro class integer CPU (family 6): what the interpreter implements.
    #[default]
    PentiumPro,
}

pub struct Cpu {
    pub s: CpuState,
    pub model: CpuModel,
    pub(crate) mem: Arc<GuestMemory>,
    /// The TLB entries of the current privilege: user permissions at CPL 3, supervisor
    /// ones at CPL 0-2 (see `paging`).
    pub(crate) tlb: Tlb,
    /// The entries of the other privilege, kept warm across privilege changes.
    pub(crate) tlb_alt: Tlb,
    /// Whether `tlb` holds the user entries.
    pub(crate) tlb_user: bool,
    /// 4 MiB regions (bit = region % 64) from which code was fetched through a 4 MiB
    /// page since the jump cache was last emptied: INVLPG there empties it again.
    pub(crate) jump_large: u64,
    pub(crate) cache: BlockCache,
    /// Segment checks for the fast path, derived from `s.seg`.
    pub(crate) bounds: [SegBounds; 6],
    /// The dirty-log epoch the TLB's write entries belong to.
    pub(crate) dirty_epoch: u64,
    /// Set when the running block must stop after the current op: its code was written,
    /// or the CPU mode changed under it.
    pub(crate) stop_block: bool,
    /// The last exception delivered (monitor `info registers`, tests).
    pub last_exception: Option<crate::Exception>,
}

impl Cpu {
    pub fn new(mem: Arc<GuestMemory>) -> Self {
        let s = CpuState::reset();
        let mut cpu = Self {
            s,
            model: CpuModel::PentiumPro,
            dirty_epoch: mem.dirty_epoch(),
            mem,
            tlb: Tlb::default(),
            tlb_alt: Tlb::default(),
            tlb_user: false,
            jump_large: 0,
            cache: BlockCache::default(),
            bounds: [SegBounds {
                lo: 0,
                hi: 0,
                read: false,
                write: false,
            }; 6],
            stop_block: false,
            last_exception: None,
        };
        cpu.state_changed();
        cpu
    }

    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    /// Back to the state after RESET (RAM untouched).
    pub fn reset(&mut self) {
        self.s = CpuState::reset();
        self.state_changed();
    }

    /// Replaces the architectural state (a snapshot load, a boot loader's entry state) and
    /// drops everything derived from the old one.
    pub fn set_state(&mut self, s: CpuState) {
        self.s = s;
        self.state_changed();
    }

    /// Recomputes derived state after `s` changed wholesale or in mode-relevant ways.
    pub fn state_changed(&mut self) {
        self.s.gpr[crate::state::ZERO] = 0;
        self.sync_segs();
        self.flush_tlb();
        self.sync_tlb_privilege();
        self.stop_block = true;
    }

    pub(crate) fn sync_segs(&mut self) {
        for i in 0..6 {
            self.bounds[i] = self.s.seg[i].bounds();
        }
    }

    /// The mode bits a translated block depends on.
    #[inline]
    pub(crate) fn mode_key(&self) -> u32 {
        u32::from(self.s.protected())
            | u32::from(self.s.seg[CS].big()) << 1
            | u32::from(self.s.seg[SS].big()) << 2
            | u32::from(self.s.v86()) << 3
            | u32::from(self.s.cpl) << 4
    }

    /// Drops translated blocks on RAM page `page` after a write to it.
    pub(crate) fn invalidate_code_page(&mut self, page: u64) {
        self.cache.invalidate_page(page as u32);
        self.mem.code_clear(page);
        self.stop_block = true;
    }

    /// Drops every translated block (a test or a loader rewrote memory wholesale).
    pub fn flush_code(&mut self) {
        self.cache.flush_all(&self.mem);
        self.stop_block = true;
    }

    /// Drops TLB write entries so every page's next store is logged again: the vCPU half of
    /// a dirty-log harvest.
    pub fn rearm_dirty_tracking(&mut self) {
        self.flush_tlb_writes();
        self.dirty_epoch = self.mem.dirty_epoch();
    }

    /// Total instructions executed since reset.
    pub fn icount(&self) -> u64 {
        self.s.icount
    }

    /// Number of blocks currently translated (for statistics and tests).
    pub fn translated_blocks(&self) -> usize {
        self.cache.len()
    }
}
