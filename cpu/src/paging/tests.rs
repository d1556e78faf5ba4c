//! Page walks, permissions, the TLB sets and code under paging, on a bare CPU.
//!
//! ```text
//!  0x0002_0000  page directory: PDE 0 -> PT0, PDE 1 -> PT1 (both P, R/W, U/S)
//!  0x0002_1000  PT0: linear 0-4 MiB identity-mapped, P R/W U/S
//!  0x0002_2000  PT1: linear 4-8 MiB, empty until a test maps pages
//! ```
//! There is no IDT: a fault ends a run with a triple fault, and the CPU state shows where.

use std::sync::Arc;

use memory::{DirtyClient, GuestMemory, GuestPhysAddr};

use super::*;
use crate::exception::Exception;
use crate::ops::system::{CR4_PGE, CR4_PSE};
use crate::state::*;
use crate::width::{W16, W32, W8};
use crate::{Exit, NullBus};

const PD: u32 = 0x2_0000;
const PT0: u32 = 0x2_1000;
const PT1: u32 = 0x2_2000;
/// A linear page in the 4-8 MiB region, mapped per test.
const L: u32 = 0x40_0000;
const RWU: u32 = PTE_P | PTE_RW | PTE_US;

struct Rig {
    mem: Arc<GuestMemory>,
    cpu: Cpu,
}

impl Rig {
    fn new() -> Self {
        let mem = Arc::new(GuestMemory::new(8 << 20).expect("8 MiB of RAM"));
        let w = |a: u32, v: u32| mem.write_phys(GuestPhysAddr(u64::from(a)), &v.to_le_bytes());
        w(PD, PT0 | RWU);
        w(PD + 4, PT1 | RWU);
        for i in 0..1024 {
            w(PT0 + 4 * i, (i << 12) | RWU);
        }
        let mut cpu = Cpu::new(mem.clone());
        let mut s = CpuState::reset();
        s.cr0 |= CR0_PE | CR0_PG;
        s.cr3 = PD;
        s.idtr = TableReg { base: 0, limit: 0 };
        for (i, seg) in s.seg.iter_mut().enumerate() {
            *seg = Segment {
                selector: if i == CS { 0x08 } else { 0x10 },
                base: 0,
                limit: u32::MAX,
                attr: ATTR_P
                    | ATTR_S
                    | ATTR_RW
                    | ATTR_ACCESSED
                    | ATTR_DB
                    | ATTR_G
                    | if i == CS { ATTR_CODE } else { 0 },
                usable: true,
            };
        }
        s.gpr[ESP] = 0x3_0000;
        cpu.set_state(s);
        Self { mem, cpu }
    }

    fn w32(&self, phys: u32, v: u32) {
        self.mem
            .write_phys(GuestPhysAddr(u64::from(phys)), &v.to_le_bytes());
    }

    fn r32(&self, phys: u32) -> u32 {
        let mut b = [0u8; 4];
        self.mem.read_phys(GuestPhysAddr(u64::from(phys)), &mut b);
        u32::from_le_bytes(b)
    }

    fn bytes(&self, phys: u32, data: &[u8]) {
        self.mem.write_phys(GuestPhysAddr(u64::from(phys)), data);
    }

    /// The PT1 entry of `lin` (4-8 MiB).
    fn pte_addr(lin: u32) -> u32 {
        assert_eq!(lin >> 22, 1);
        PT1 + ((lin >> 12) & 0x3FF) * 4
    }

    fn map(&self, lin: u32, pte: u32) {
        self.w32(Self::pte_addr(lin), pte);
    }

    fn pte(&self, lin: u32) -> u32 {
        self.r32(Self::pte_addr(lin))
    }

    fn set_pde(&self, lin: u32, v: u32) {
        self.w32(PD + (lin >> 22) * 4, v);
    }

    fn pde(&self, lin: u32) -> u32 {
        self.r32(PD + (lin >> 22) * 4)
    }

    fn set_cpl(&mut self, cpl: u8) {
        let mut cs = self.cpu.s.seg[CS];
        cs.selector = 0x08 | u16::from(cpl);
        cs.attr = (cs.attr & !(3 << ATTR_DPL_SHIFT)) | (u16::from(cpl) << ATTR_DPL_SHIFT);
        self.cpu.set_segment(CS, cs);
        assert_eq!(self.cpu.s.cpl, cpl);
    }

    fn read(&mut self, lin: u32) -> Result<u32> {
        self.cpu.read_lin::<W32>(&mut NullBus, lin)
    }

    fn write(&mut self, lin: u32, v: u32) -> Result<()> {
        self.cpu.write_lin::<W32>(&mut NullBus, lin, v)
    }

    /// Runs from `eip` until HLT or a triple fault.
    fn run_at(&mut self, eip: u32) -> Exit {
        self.cpu.s.eip = eip;
        self.cpu.s.halted = false;
        self.cpu.s.shutdown = false;
        self.cpu.last_exception = None;
        self.cpu.run(&mut NullBus, 100_000)
    }
}

fn bit(on: bool, b: u32) -> u32 {
    if on {
        b
    } else {
        0
    }
}

fn pf(error: u32) -> Exception {
    Exception::with_error(crate::exception::PF, error)
}

/// What the SDM allows (32-bit paging, no SMEP/SMAP), by the combined U/S and R/W bits:
/// [user read, user write, supervisor read, supervisor write with WP=0, with WP=1].
const SDM_RULE: [[bool; 5]; 4] = [
    /* U/S=0 R/W=0 */ [false, false, true, true, false],
    /* U/S=0 R/W=1 */ [false, false, true, true, true],
    /* U/S=1 R/W=0 */ [true, false, true, true, false],
    /* U/S=1 R/W=1 */ [true, true, true, true, true],
];

fn sdm_allows(us: bool, rw: bool, user: bool, write: bool, wp: bool) -> bool {
    let row = SDM_RULE[usize::from(us) * 2 + usize::from(rw)];
    match (user, write, wp) {
        (true, false, _) => row[0],
        (true, true, _) => row[1],
        (false, false, _) => row[2],
        (false, true, false) => row[3],
        (false, true, true) => row[4],
    }
}

#[test]
fn every_permission_combination_of_4k_pages() {
    let mut r = Rig::new();
    let data = 0x18_0000;
    let mut cases = 0;
    for bits in 0..64u32 {
        let (pde_rw, pde_us, pte_rw, pte_us) =
            (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0);
        let (pde_p, pte_p) = (bits & 16 != 0, bits & 32 != 0);
        let flags = |p: bool, rw: bool, us: bool| bit(p, PTE_P) | bit(rw, PTE_RW) | bit(us, PTE_US);
        for user in [false, true] {
            for write in [false, true] {
                for wp in [false, true] {
                    r.set_pde(L, PT1 | flags(pde_p, pde_rw, pde_us));
                    r.map(L, data | flags(pte_p, pte_rw, pte_us));
                    r.w32(data + 8, 0x1234_5678);
                    r.cpu.s.cr0 = if wp {
                        r.cpu.s.cr0 | CR0_WP
                    } else {
                        r.cpu.s.cr0 & !CR0_WP
                    };
                    r.set_cpl(0);
                    r.cpu.flush_tlb();
                    r.set_cpl(if user { 3 } else { 0 });
                    r.cpu.s.cr2 = 0;
                    let got = if write {
                        r.write(L + 8, 0xCAFE_F00D).map(|_| 0)
                    } else {
                        r.read(L + 8)
                    };
                    let present = pde_p && pte_p;
                    let allowed =
                        present && sdm_allows(pde_us && pte_us, pde_rw && pte_rw, user, write, wp);
                    let what = format!(
                        "PDE p={pde_p} rw={pde_rw} us={pde_us} PTE p={pte_p} rw={pte_rw} \
                         us={pte_us} user={user} write={write} wp={wp}"
                    );
                    if allowed {
                        let want = if write { 0 } else { 0x1234_5678 };
                        assert_eq!(got, Ok(want), "{what}");
                        assert_eq!(r.pde(L) & PTE_A, PTE_A, "PDE accessed: {what}");
                        assert_eq!(r.pte(L) & PTE_A, PTE_A, "PTE accessed: {what}");
                        let dirty = if write { PTE_D } else { 0 };
                        assert_eq!(r.pte(L) & PTE_D, dirty, "PTE dirty: {what}");
                        assert_eq!(r.pde(L) & PTE_D, 0, "PDE of a table never dirty: {what}");
                        let stored = if write { 0xCAFE_F00D } else { 0x1234_5678 };
                        assert_eq!(r.r32(data + 8), stored, "{what}");
                    } else {
                        // P in the error code: a protection fault, not a missing page.
                        let code = bit(present, PF_P) | bit(write, PF_W) | bit(user, PF_U);
                        assert_eq!(got, Err(pf(code)), "{what}");
                        assert_eq!(r.cpu.s.cr2, L + 8, "CR2: {what}");
                        assert_eq!(r.pde(L) & (PTE_A | PTE_D), 0, "PDE untouched: {what}");
                        assert_eq!(r.pte(L) & (PTE_A | PTE_D), 0, "PTE untouched: {what}");
                        assert_eq!(r.r32(data + 8), 0x1234_5678, "{what}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 512);
}

#[test]
fn every_permission_combination_of_4m_pages() {
    let mut r = Rig::new();
    r.cpu.s.cr4 |= CR4_PSE;
    for bits in 0..4u32 {
        let (rw, us) = (bits & 1 != 0, bits & 2 != 0);
        for user in [false, true] {
            for write in [false, true] {
                for wp in [false, true] {
                    // 4 MiB at linear 4 MiB -> physical 4 MiB.
                    let pde = 0x40_0000 | PTE_PS | PTE_P | bit(rw, PTE_RW);
                    r.set_pde(L, pde | bit(us, PTE_US));
                    r.w32(0x40_0000 + 0x2_3454, 0x1111_2222);
                    r.cpu.s.cr0 = if wp {
                        r.cpu.s.cr0 | CR0_WP
                    } else {
                        r.cpu.s.cr0 & !CR0_WP
                    };
                    r.set_cpl(0);
                    r.cpu.flush_tlb();
                    r.set_cpl(if user { 3 } else { 0 });
                    let lin = L + 0x2_3454;
                    let got = if write {
                        r.write(lin, 7).map(|_| 0)
                    } else {
                        r.read(lin)
                    };
                    let what = format!("rw={rw} us={us} user={user} write={write} wp={wp}");
                    if sdm_allows(us, rw, user, write, wp) {
                        assert_eq!(got, Ok(if write { 0 } else { 0x1111_2222 }), "{what}");
                        let ad = PTE_A | if write { PTE_D } else { 0 };
                        assert_eq!(r.pde(L) & (PTE_A | PTE_D), ad, "{what}");
                    } else {
                        let code = PF_P | bit(write, PF_W) | bit(user, PF_U);
                        assert_eq!(got, Err(pf(code)), "{what}");
                        assert_eq!(r.cpu.s.cr2, lin, "{what}");
                        assert_eq!(r.pde(L) & (PTE_A | PTE_D), 0, "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn not_present_faults_carry_access_kind_and_cr2() {
    let mut r = Rig::new();
    // PTE not present.
    assert_eq!(r.read(L + 0x10), Err(pf(0)));
    assert_eq!(r.cpu.s.cr2, L + 0x10);
    assert_eq!(r.write(L + 0x20, 1), Err(pf(PF_W)));
    assert_eq!(r.cpu.s.cr2, L + 0x20);
    r.set_cpl(3);
    assert_eq!(r.read(L + 0x30), Err(pf(PF_U)));
    assert_eq!(r.write(L + 0x40, 1), Err(pf(PF_U | PF_W)));
    assert_eq!(r.cpu.s.cr2, L + 0x40);
    // PDE not present.
    r.set_pde(0x80_0000, 0);
    assert_eq!(r.read(0x80_0004), Err(pf(PF_U)));
    assert_eq!(r.cpu.s.cr2, 0x80_0004);
    // Not-present entries are never marked accessed.
    assert_eq!(r.pde(L) & PTE_A, 0);
}

#[test]
fn reserved_bits_of_a_4m_pde() {
    let mut r = Rig::new();
    r.cpu.s.cr4 |= CR4_PSE;
    for bit in 13..=21 {
        r.set_pde(L, 0x40_0000 | 1 << bit | PTE_PS | RWU);
        r.cpu.flush_tlb();
        assert_eq!(r.read(L + 4), Err(pf(PF_P | PF_RSVD)), "bit {bit}");
        assert_eq!(
            r.write(L + 4, 0),
            Err(pf(PF_P | PF_RSVD | PF_W)),
            "bit {bit}"
        );
        assert_eq!(r.cpu.s.cr2, L + 4);
        assert_eq!(r.pde(L) & PTE_A, 0);
    }
    // Bit 12 (PAT on later CPUs) and the available bits are not checked.
    r.set_pde(L, 0x40_0000 | 1 << 12 | 0xE00 | PTE_PS | RWU);
    r.cpu.flush_tlb();
    assert_eq!(r.read(L + 4), Ok(0));
    // Without CR4.PSE the PS bit is ignored: the PDE points at a page table.
    r.cpu.s.cr4 &= !CR4_PSE;
    r.set_pde(L, PT1 | PTE_PS | RWU);
    r.map(L, 0x18_5000 | RWU);
    r.w32(0x18_5004, 0xABCD);
    r.cpu.flush_tlb();
    assert_eq!(r.read(L + 4), Ok(0xABCD));
}

#[test]
fn dirty_bit_decides_the_write_tag() {
    let mut r = Rig::new();
    r.map(L, 0x18_0000 | RWU);
    assert_eq!(r.read(L), Ok(0));
    let e = *r.cpu.tlb.entry(L);
    assert_eq!(e.read, L);
    assert_eq!(
        e.write,
        crate::tlb::INVALID,
        "D clear: no write translation"
    );
    assert_eq!(r.pte(L) & (PTE_A | PTE_D), PTE_A);
    assert_eq!(r.write(L, 5), Ok(()));
    assert_eq!(r.pte(L) & PTE_D, PTE_D);
    assert_eq!(r.cpu.tlb.entry(L).write, L, "logged and dirty: fast stores");
    // A page whose D bit is already set gets a (slow) write translation from a read.
    r.map(L + 0x1000, 0x18_1000 | RWU | PTE_D);
    assert_eq!(r.read(L + 0x1000), Ok(0));
    assert_eq!(
        r.cpu.tlb.entry(L + 0x1000).write,
        (L + 0x1000) | crate::tlb::SLOW
    );
    // Read-only for a supervisor with WP=1: never a write translation.
    r.cpu.s.cr0 |= CR0_WP;
    r.map(L + 0x2000, 0x18_2000 | PTE_P | PTE_D);
    assert_eq!(r.read(L + 0x2000), Ok(0));
    assert_eq!(r.cpu.tlb.entry(L + 0x2000).write, crate::tlb::INVALID);
}

#[test]
fn global_pages_survive_cr3_loads_but_not_invlpg() {
    let mut r = Rig::new();
    r.cpu.s.cr4 |= CR4_PGE;
    r.w32(0x18_0000, 0xAAAA);
    r.w32(0x18_1000, 0xBBBB);
    r.map(L, 0x18_0000 | RWU | PTE_G);
    r.map(L + 0x1000, 0x18_0000 | RWU);
    assert_eq!(r.read(L), Ok(0xAAAA));
    assert_eq!(r.read(L + 0x1000), Ok(0xAAAA));
    // Remap both without telling the CPU, then reload CR3.
    r.map(L, 0x18_1000 | RWU | PTE_G);
    r.map(L + 0x1000, 0x18_1000 | RWU);
    let cr3 = r.cpu.s.cr3;
    r.cpu.set_cr3(cr3);
    assert_eq!(r.read(L), Ok(0xAAAA), "global entry kept");
    assert_eq!(r.read(L + 0x1000), Ok(0xBBBB), "non-global entry reloaded");
    r.cpu.invalidate_page(L + 0x123);
    assert_eq!(r.read(L), Ok(0xBBBB), "INVLPG drops a global entry");
    // The supervisor set is not the only one: a user entry is kept and dropped alike.
    r.set_cpl(3);
    r.map(L, 0x18_0000 | RWU | PTE_G);
    r.cpu.invalidate_page(L);
    assert_eq!(r.read(L), Ok(0xAAAA));
    r.map(L, 0x18_1000 | RWU | PTE_G);
    r.cpu.set_cr3(cr3);
    assert_eq!(r.read(L), Ok(0xAAAA));
    r.cpu.invalidate_page(L);
    assert_eq!(r.read(L), Ok(0xBBBB));
}

#[test]
fn the_g_bit_needs_cr4_pge() {
    let mut r = Rig::new();
    r.w32(0x18_0000, 0xAAAA);
    r.w32(0x18_1000, 0xBBBB);
    r.map(L, 0x18_0000 | RWU | PTE_G);
    assert_eq!(r.read(L), Ok(0xAAAA));
    r.map(L, 0x18_1000 | RWU | PTE_G);
    let cr3 = r.cpu.s.cr3;
    r.cpu.set_cr3(cr3);
    assert_eq!(r.read(L), Ok(0xBBBB), "G without PGE is not global");
    // With PGE, a global entry survives CR3 but not a PGE change.
    r.cpu.s.cr4 |= CR4_PGE;
    r.cpu.flush_tlb();
    assert_eq!(r.read(L), Ok(0xBBBB));
    r.map(L, 0x18_0000 | RWU | PTE_G);
    r.cpu.set_cr3(cr3);
    assert_eq!(r.read(L), Ok(0xBBBB));
    // mov cr4, eax (PGE off)
    r.cpu.s.gpr[EAX] = 0;
    r.bytes(0x5000, &[0x0F, 0x22, 0xE0, 0xF4]);
    assert_eq!(r.run_at(0x5000), Exit::Halted);
    assert_eq!(
        r.read(L),
        Ok(0xAAAA),
        "a CR4.PGE change flushes global entries"
    );
}

#[test]
fn invlpg_of_a_4m_page_drops_all_of_it() {
    let mut r = Rig::new();
    r.cpu.s.cr4 |= CR4_PSE;
    r.set_pde(L, 0x40_0000 | PTE_PS | RWU);
    r.w32(0x40_0000, 1);
    r.w32(0x40_5000, 2);
    assert_eq!(r.read(L), Ok(1));
    assert_eq!(r.read(L + 0x5000), Ok(2));
    // Point the 4 MiB page at 0 (identity RAM) and invalidate one address inside it.
    r.set_pde(L, PTE_PS | RWU);
    r.w32(0x5000, 0x55);
    r.cpu.invalidate_page(L + 0x3F_F000);
    assert_eq!(r.read(L + 0x5000), Ok(0x55));
    assert_eq!(r.read(L), Ok(r.r32(0)));
}

#[test]
fn tlb_sets_per_privilege() {
    let mut r = Rig::new();
    r.w32(0x18_0000, 0x5050);
    r.map(L, 0x18_0000 | PTE_P | PTE_RW);
    assert_eq!(r.read(L), Ok(0x5050));
    r.set_cpl(3);
    assert_eq!(r.read(L), Err(pf(PF_U | PF_P)), "supervisor page at CPL 3");
    // Implicit supervisor accesses (descriptor tables) at CPL 3 may read it.
    assert_eq!(r.cpu.read_sys::<W32>(&mut NullBus, L), Ok(0x5050));
    assert_eq!(r.cpu.write_sys::<W32>(&mut NullBus, L + 4, 9), Ok(()));
    assert_eq!(r.r32(0x18_0004), 9);
    // Back at CPL 0 the supervisor entry was kept: a remap without INVLPG is not seen.
    r.map(L, 0x18_1000 | PTE_P | PTE_RW);
    r.set_cpl(0);
    assert_eq!(r.read(L), Ok(0x5050));
    // CPL 1 and 2 are supervisor too and share the set.
    r.set_cpl(1);
    assert_eq!(r.read(L), Ok(0x5050));
    // User entries are kept across a round trip through the kernel as well.
    r.map(L + 0x1000, 0x18_2000 | RWU);
    r.w32(0x18_2000, 0x6060);
    r.set_cpl(3);
    assert_eq!(r.read(L + 0x1000), Ok(0x6060));
    r.map(L + 0x1000, 0x18_3000 | RWU);
    r.set_cpl(0);
    r.set_cpl(3);
    assert_eq!(r.read(L + 0x1000), Ok(0x6060));
    assert!(r.cpu.tlb_user);
}

#[test]
fn crossing_accesses_check_both_pages_first() {
    let mut r = Rig::new();
    r.map(L, 0x18_0000 | RWU);
    r.w32(0x18_0FFC, 0x4433_2211);
    // Second page not present: nothing is written, CR2 names the second page.
    assert_eq!(r.write(L + 0xFFE, 0xDDCC_BBAA), Err(pf(PF_W)));
    assert_eq!(r.cpu.s.cr2, L + 0x1000);
    assert_eq!(r.r32(0x18_0FFC), 0x4433_2211);
    assert_eq!(r.read(L + 0xFFD), Err(pf(0)));
    assert_eq!(r.cpu.s.cr2, L + 0x1000);
    assert_eq!(
        r.pte(L) & (PTE_A | PTE_D),
        0,
        "first page not even marked accessed"
    );
    assert!(!r.cpu.tlb.entry(L).reads(L), "nor cached");
    assert_eq!(r.cpu.probe_write(L + 0xFFF, 2), Err(pf(PF_W)));
    assert_eq!(r.cpu.probe_write(L + 0xFFC, 4), Ok(()));
    assert_eq!(r.pte(L) & (PTE_A | PTE_D), 0, "a probe sets no bit");
    // Second page read-only with WP=1: the same, as a protection fault.
    r.cpu.s.cr0 |= CR0_WP;
    r.map(L + 0x1000, 0x18_5000 | PTE_P | PTE_US);
    r.w32(0x18_5000, 0x8877_6655);
    assert_eq!(
        r.cpu.write_lin::<W16>(&mut NullBus, L + 0xFFF, 0xEEFF),
        Err(pf(PF_W | PF_P))
    );
    assert_eq!(r.r32(0x18_0FFC), 0x4433_2211);
    assert_eq!(r.r32(0x18_5000), 0x8877_6655);
    // Reads may cross into it, and writes once it is writable; the pages are not
    // physically adjacent.
    assert_eq!(r.read(L + 0xFFE), Ok(0x6655_4433));
    r.map(L + 0x1000, 0x18_5000 | RWU);
    r.cpu.invalidate_page(L + 0x1000);
    assert_eq!(r.write(L + 0xFFD, 0xDDCC_BBAA), Ok(()));
    assert_eq!(r.r32(0x18_0FFC), 0xCCBB_AA11);
    assert_eq!(r.r32(0x18_5000), 0x8877_66DD);
    assert_eq!(r.pte(L + 0x1000) & PTE_D, PTE_D);
}

#[test]
fn tables_outside_ram_read_as_the_memory_map_says() {
    let mut r = Rig::new();
    // CR3 in unassigned space: every entry reads all-ones (present, R/W, U/S, PS).
    r.cpu.set_cr3(0xF000_0000);
    assert_eq!(
        r.read(0x1234),
        Ok(u32::MAX),
        "PTE points at unassigned space"
    );
    assert_eq!(r.write(0x1234, 0), Ok(()));
    r.cpu.s.cr4 |= CR4_PSE;
    r.cpu.flush_tlb();
    assert_eq!(r.read(0x1234), Err(pf(PF_P | PF_RSVD)));
    // A page table in the VGA hole.
    r.cpu.s.cr4 &= !CR4_PSE;
    r.cpu.set_cr3(PD);
    r.set_pde(L, 0xA_0000 | RWU);
    r.cpu.flush_tlb();
    assert_eq!(r.cpu.read_lin::<W8>(&mut NullBus, L + 3), Ok(0xFF));
}

#[test]
fn translate_debug_has_no_side_effects() {
    let r = Rig::new();
    r.map(L + 0x3000, 0x18_7000 | PTE_P);
    assert_eq!(r.cpu.translate_debug(L + 0x3456), Some(0x18_7456));
    assert_eq!(r.cpu.translate_debug(L + 0x4000), None);
    assert_eq!(r.pte(L + 0x3000) & PTE_A, 0);
    assert_eq!(r.cpu.translate_debug(0x1234), Some(0x1234));
}

#[test]
fn dirty_log_sees_writes_and_a_d_updates_through_paging() {
    let mut r = Rig::new();
    r.map(L, 0x18_0000 | RWU);
    r.map(L + 0x1000, 0x18_0000 | RWU); // an alias of the same page
    r.mem.dirty_enable(DirtyClient::Migration);
    r.cpu.rearm_dirty_tracking();
    assert_eq!(r.write(L + 8, 1), Ok(()));
    let log = r.mem.dirty_take(DirtyClient::Migration);
    assert!(log.is_set(0x180), "data page");
    assert!(log.is_set(u64::from(PT1 >> 12)), "page table (A and D set)");
    assert!(log.is_set(u64::from(PD >> 12)), "page directory (A set)");
    assert_eq!(log.count(), 3);
    // Fast stores until the harvest; after it, the first store is logged again.
    assert_eq!(r.cpu.tlb.entry(L).write, L);
    r.cpu.rearm_dirty_tracking();
    assert_eq!(r.write(L + 12, 2), Ok(()));
    let log = r.mem.dirty_take(DirtyClient::Migration);
    assert!(log.is_set(0x180));
    assert_eq!(
        log.count(),
        1,
        "A/D already set: the tables are not written"
    );
    // Through the alias (its first write sets that PTE's A and D).
    r.cpu.rearm_dirty_tracking();
    assert_eq!(r.write(L + 0x1010, 3), Ok(()));
    let log = r.mem.dirty_take(DirtyClient::Migration);
    assert!(log.is_set(0x180));
    assert!(log.is_set(u64::from(PT1 >> 12)));
    assert_eq!(r.r32(0x18_0010), 3);
}

#[test]
fn pg_with_pe_clear_is_gp_and_pg_changes_flush() {
    let mut r = Rig::new();
    r.w32(0x18_0000, 0xAAAA);
    r.w32(0x40_0000, 0xBBBB);
    r.map(L, 0x18_0000 | RWU);
    assert_eq!(r.read(L), Ok(0xAAAA));
    // mov eax, cr0; and eax, 0x7FFFFFFF; mov cr0, eax; hlt
    r.bytes(
        0x5000,
        &[
            0x0F, 0x20, 0xC0, 0x25, 0xFF, 0xFF, 0xFF, 0x7F, 0x0F, 0x22, 0xC0, 0xF4,
        ],
    );
    assert_eq!(r.run_at(0x5000), Exit::Halted);
    assert_eq!(r.cpu.s.cr0 & CR0_PG, 0);
    assert_eq!(r.read(L), Ok(0xBBBB), "unpaged again");
    // mov eax, 0x80000010 (PG, ET, no PE); mov cr0, eax
    r.bytes(0x5000, &[0xB8, 0x10, 0, 0, 0x80, 0x0F, 0x22, 0xC0, 0xF4]);
    r.run_at(0x5000);
    assert_eq!(r.cpu.last_exception, Some(Exception::gp(0)));
}

/// `mov esi, SRC; mov edi, DST; mov ecx, COUNT; rep movsd; hlt`; the `rep movsd` is
/// at byte 15.
fn rep_movsd(src: u32, dst: u32, count: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(18);
    for (opcode, imm) in [(0xBE, src), (0xBF, dst), (0xB9, count)] {
        v.push(opcode);
        v.extend_from_slice(&imm.to_le_bytes());
    }
    v.extend_from_slice(&[0xF3, 0xA5, 0xF4]);
    v
}

#[test]
fn rep_movsd_faults_mid_way_and_resumes() {
    let mut r = Rig::new();
    let code = 0x6000;
    r.bytes(code, &rep_movsd(0x40_5000, 0x40_6FF8, 6));
    r.map(0x40_5000, 0x18_5000 | RWU);
    r.map(0x40_6000, 0x18_6000 | RWU);
    for k in 0..6 {
        r.w32(0x18_5000 + 4 * k, 0x100 + k);
    }
    assert_eq!(r.run_at(code), Exit::Shutdown);
    assert_eq!(r.cpu.last_exception, Some(pf(PF_W)));
    assert_eq!(r.cpu.s.cr2, 0x40_7000);
    assert_eq!(r.cpu.s.eip, code + 15, "EIP at the REP MOVSD");
    assert_eq!(r.cpu.s.gpr[ESI], 0x40_5008);
    assert_eq!(r.cpu.s.gpr[EDI], 0x40_7000);
    assert_eq!(r.cpu.s.gpr[ECX], 4);
    assert_eq!(r.r32(0x18_6FF8), 0x100);
    assert_eq!(r.r32(0x18_6FFC), 0x101);
    // What a #PF handler would do: map the page, return to the instruction.
    r.map(0x40_7000, 0x18_1000 | RWU);
    let eip = r.cpu.s.eip;
    assert_eq!(r.run_at(eip), Exit::Halted);
    assert_eq!(r.cpu.last_exception, None);
    assert_eq!(r.cpu.s.gpr[ECX], 0);
    assert_eq!(r.cpu.s.gpr[ESI], 0x40_5018);
    assert_eq!(r.cpu.s.gpr[EDI], 0x40_7010);
    for k in 0..4 {
        assert_eq!(r.r32(0x18_1000 + 4 * k), 0x102 + k);
    }
}

#[test]
fn rep_movsd_element_crossing_into_a_missing_page_writes_nothing_of_it() {
    let mut r = Rig::new();
    let code = 0x6000;
    r.bytes(code, &rep_movsd(0x40_5000, 0x40_6FF6, 3));
    r.map(0x40_5000, 0x18_5000 | RWU);
    r.map(0x40_6000, 0x18_6000 | RWU);
    for k in 0..3 {
        r.w32(0x18_5000 + 4 * k, 0x1111_1111 * (k + 1));
    }
    assert_eq!(r.run_at(code), Exit::Shutdown);
    assert_eq!(r.cpu.last_exception, Some(pf(PF_W)));
    assert_eq!(r.cpu.s.cr2, 0x40_7000);
    assert_eq!(r.cpu.s.gpr[EDI], 0x40_6FFE);
    assert_eq!(r.cpu.s.gpr[ECX], 1);
    assert_eq!(r.r32(0x18_6FFC), 0x0000_2222, "element 2 not half-written");
}

#[test]
fn code_modified_through_an_alias_is_retranslated() {
    let mut r = Rig::new();
    // Physical page 0x188000 at linear 4 MiB (code) and 4 MiB + 4 KiB (data alias).
    r.map(L, 0x18_8000 | RWU);
    r.map(L + 0x1000, 0x18_8000 | RWU);
    // Written through the alias first, so that its TLB entry takes fast stores.
    assert_eq!(r.write(L + 0x1000, 0x0000_01B8), Ok(())); // mov eax, 1 ...
    assert_eq!(r.write(L + 0x1004, 0x0000_F400), Ok(())); // ... hlt
    assert_eq!(r.cpu.tlb.entry(L + 0x1000).write, L + 0x1000);
    assert_eq!(r.run_at(L), Exit::Halted);
    assert_eq!(r.cpu.s.gpr[EAX], 1);
    assert_eq!(r.run_at(L), Exit::Halted, "hot: from the jump cache");
    // mov byte [0x401001], 2; mov ecx, 0x400000; jmp ecx
    r.bytes(
        0x7000,
        &[
            0xC6, 0x05, 0x01, 0x10, 0x40, 0x00, 0x02, 0xB9, 0x00, 0x00, 0x40, 0x00, 0xFF, 0xE1,
        ],
    );
    assert_eq!(r.run_at(0x7000), Exit::Halted);
    assert_eq!(
        r.cpu.s.gpr[EAX], 2,
        "the store through the alias reached the code"
    );
}

#[test]
fn instruction_crossing_pages_fetches_both_through_translation() {
    let mut r = Rig::new();
    let x = L + 0x3000;
    r.map(x, 0x18_2000 | RWU);
    r.map(x + 0x1000, 0x18_3000 | RWU);
    r.bytes(0x18_2FFF, &[0xB8]); // mov eax, imm32 ...
    r.bytes(0x18_3000, &[0x11, 0x22, 0x33, 0x44, 0xF4]); // ... imm32; hlt
    r.bytes(0x18_4000, &[0x55, 0x66, 0x77, 0x88, 0xF4]);
    assert_eq!(r.run_at(x + 0xFFF), Exit::Halted);
    assert_eq!(r.cpu.s.gpr[EAX], 0x4433_2211);
    // Remap the second page: INVLPG of it forgets the cached block.
    r.map(x + 0x1000, 0x18_4000 | RWU);
    r.cpu.invalidate_page(x + 0x1000);
    assert_eq!(r.run_at(x + 0xFFF), Exit::Halted);
    assert_eq!(r.cpu.s.gpr[EAX], 0x8877_6655);
    // And back, with a CR3 reload: the block map still has the block, which must not
    // serve because its second page now maps elsewhere.
    r.map(x + 0x1000, 0x18_3000 | RWU);
    let cr3 = r.cpu.s.cr3;
    r.cpu.set_cr3(cr3);
    assert_eq!(r.run_at(x + 0xFFF), Exit::Halted);
    assert_eq!(r.cpu.s.gpr[EAX], 0x4433_2211);
    // Second page not present: #PF (instruction fetch, not present) at that page.
    r.map(x + 0x1000, 0);
    r.cpu.invalidate_page(x + 0x1000);
    assert_eq!(r.run_at(x + 0xFFF), Exit::Shutdown);
    assert_eq!(r.cpu.last_exception, Some(pf(0)));
    assert_eq!(r.cpu.s.cr2, x + 0x1000);
    assert_eq!(r.cpu.s.eip, x + 0xFFF);
    // Instructions before a crossing one run from their own block without touching the
    // next page: nop; nop; then mov eax, imm32 across.
    r.bytes(0x18_2FFD, &[0x90, 0x90, 0xB8]);
    let before = r.cpu.icount();
    assert_eq!(r.run_at(x + 0xFFD), Exit::Shutdown);
    assert_eq!(r.cpu.s.eip, x + 0xFFF);
    assert_eq!(r.cpu.icount() - before, 2, "the two NOPs ran");
}

#[test]
fn user_code_needs_a_user_page() {
    let mut r = Rig::new();
    r.map(L, 0x18_9000 | PTE_P | PTE_RW); // supervisor only
    r.bytes(0x18_9000, &[0x90, 0xF4]);
    r.set_cpl(3);
    assert_eq!(r.run_at(L), Exit::Shutdown);
    assert_eq!(r.cpu.last_exception, Some(pf(PF_U | PF_P)));
    assert_eq!(r.cpu.s.cr2, L);
}

#[test]
fn invlpg_instruction_uses_the_segment_base() {
    let mut r = Rig::new();
    r.w32(0x18_0000, 0xAAAA);
    r.w32(0x18_1000, 0xBBBB);
    r.map(L, 0x18_0000 | RWU);
    assert_eq!(r.read(L), Ok(0xAAAA));
    r.map(L, 0x18_1000 | RWU);
    // DS base 0x100000; invlpg [0x300000]; hlt
    let mut ds = r.cpu.s.seg[DS];
    ds.base = 0x10_0000;
    r.cpu.set_segment(DS, ds);
    r.bytes(0x5000, &[0x0F, 0x01, 0x3D, 0x00, 0x00, 0x30, 0x00, 0xF4]);
    assert_eq!(r.run_at(0x5000), Exit::Halted);
    assert_eq!(r.read(L), Ok(0xBBBB));
}

#[test]
fn mov_cr3_flushes_non_global_entries() {
    let mut r = Rig::new();
    r.w32(0x18_0000, 0xAAAA);
    r.w32(0x18_1000, 0xBBBB);
    r.map(L, 0x18_0000 | RWU);
    assert_eq!(r.read(L), Ok(0xAAAA));
    r.map(L, 0x18_1000 | RWU);
    // mov eax, cr3; mov cr3, eax; mov ebx, cr3; hlt
    r.bytes(
        0x5000,
        &[0x0F, 0x20, 0xD8, 0x0F, 0x22, 0xD8, 0x0F, 0x20, 0xDB, 0xF4],
    );
    assert_eq!(r.run_at(0x5000), Exit::Halted);
    assert_eq!(r.cpu.s.gpr[EBX], PD);
    assert_eq!(r.read(L), Ok(0xBBBB));
}
