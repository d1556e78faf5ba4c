//! The CPU's section of the machine-state stream (`cpu`).
//!
//! Version 1, every field little-endian:
//!
//! ```text
//!  gpr      8 × u32   EAX ECX EDX EBX ESP EBP ESI EDI
//!  eip      u32
//!  eflags   u32       as the guest reads it: status flags included
//!  seg      6 × seg   ES CS SS DS FS GS
//!  gdtr     u32 base │ u16 limit
//!  idtr     u32 base │ u16 limit
//!  ldtr     seg
//!  tr       seg
//!  cr0 cr2 cr3 cr4    4 × u32
//!  dr       8 × u32   DR0-DR7
//!  cpl      u8
//!  halted, inhibit_irq, shutdown   3 × bool
//!  icount   u64
//!  tsc_offset u64
//!  sysenter_cs sysenter_esp sysenter_eip   3 × u32 (MSRs 0x174-0x176)
//!  fpu      8 × (significand u64 │ sign+exponent u16)   R0..R7 (physical order)
//!           cw sw tw u16 │ fip u32 │ fcs u16 │ fop u16 │ fdp u32 │ fds u16
//!
//!  seg = selector u16 │ base u32 │ limit u32 (bytes) │ attr u16 │ usable bool
//! ```
//!
//! The status flags are saved materialized, not as the lazy record behind them: the record
//! (operation, width, operands) is how this interpreter happens to defer the work, and it
//! may change with the interpreter; the six flags are the architectural state, and they
//! determine every later flag read exactly. Loading sets them as `POPF` would.
//!
//! Adding state: append the fields to `save`, read them in `load` only
//! `if version >= N`, and raise `VERSION` to N (older streams then load with the new
//! fields at their reset values); state that is usually at its reset value can go in a
//! subsection instead. Segment descriptor caches are saved as loaded, not re-read from the
//! GDT, because a guest may have changed the table since (real hardware keeps the cache).

use savevm::{Decoder, Encoder, VmState};

use crate::cpu::Cpu;
use crate::state::*;

/// EFLAGS bits that always read zero (3, 5, 15, 22-31).
const EFLAGS_RESERVED: u32 = 1 << 3 | 1 << 5 | 1 << 15 | 0xFFC0_0000;
/// CR4 bits architecturally defined up to the P6 generation (VME through OSXMMEXCPT).
/// Higher bits are reserved on every CPU tern models.
const CR4_DEFINED: u32 = 0x7FF;
/// Segment attribute bits 8-11 hold nothing: the descriptor's limit 19:16 sits there.
const ATTR_UNUSED: u16 = 0x0F00;

/// Field names for each segment register, for error messages.
const SEG_FIELDS: [[&str; 5]; 8] = [
    ["es.selector", "es.base", "es.limit", "es.attr", "es.usable"],
    ["cs.selector", "cs.base", "cs.limit", "cs.attr", "cs.usable"],
    ["ss.selector", "ss.base", "ss.limit", "ss.attr", "ss.usable"],
    ["ds.selector", "ds.base", "ds.limit", "ds.attr", "ds.usable"],
    ["fs.selector", "fs.base", "fs.limit", "fs.attr", "fs.usable"],
    ["gs.selector", "gs.base", "gs.limit", "gs.attr", "gs.usable"],
    [
        "ldtr.selector",
        "ldtr.base",
        "ldtr.limit",
        "ldtr.attr",
        "ldtr.usable",
    ],
    ["tr.selector", "tr.base", "tr.limit", "tr.attr", "tr.usable"],
];
const LDTR: usize = 6;
const TR: usize = 7;

fn save_segment(enc: &mut Encoder, s: &Segment) {
    enc.u16(s.selector);
    enc.u32(s.base);
    enc.u32(s.limit);
    enc.u16(s.attr);
    enc.bool(s.usable);
}

fn load_segment(dec: &mut Decoder<'_>, which: usize) -> savevm::Result<Segment> {
    let [selector, base, limit, attr, usable] = SEG_FIELDS[which];
    let s = Segment {
        selector: dec.u16(selector)?,
        base: dec.u32(base)?,
        limit: dec.u32(limit)?,
        attr: dec.u16(attr)?,
        usable: dec.bool(usable)?,
    };
    if s.attr & ATTR_UNUSED != 0 {
        return Err(dec.out_of_range(attr, u64::from(s.attr)));
    }
    Ok(s)
}

fn save_table(enc: &mut Encoder, t: &TableReg) {
    enc.u32(t.base);
    enc.u16(t.limit);
}

fn load_table(
    dec: &mut Decoder<'_>,
    base: &'static str,
    limit: &'static str,
) -> savevm::Result<TableReg> {
    Ok(TableReg {
        base: dec.u32(base)?,
        limit: dec.u16(limit)?,
    })
}

impl VmState for CpuState {
    const NAME: &'static str = "cpu";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u32s(&self.gpr[..8]);
        enc.u32(self.eip);
        enc.u32(self.flags());
        for s in &self.seg {
            save_segment(enc, s);
        }
        save_table(enc, &self.gdtr);
        save_table(enc, &self.idtr);
        save_segment(enc, &self.ldtr);
        save_segment(enc, &self.tr);
        enc.u32(self.cr0);
        enc.u32(self.cr2);
        enc.u32(self.cr3);
        enc.u32(self.cr4);
        enc.u32s(&self.dr);
        enc.u8(self.cpl);
        enc.bool(self.halted);
        enc.bool(self.inhibit_irq);
        enc.bool(self.shutdown);
        enc.u64(self.icount);
        enc.u64(self.tsc_offset);
        enc.u32(self.sysenter_cs);
        enc.u32(self.sysenter_esp);
        enc.u32(self.sysenter_eip);
        let f = &self.fpu;
        for r in &f.regs {
            enc.u64(r.sig);
            enc.u16(r.se);
        }
        enc.u16(f.cw);
        enc.u16(f.sw);
        enc.u16(f.tw);
        enc.u32(f.fip);
        enc.u16(f.fcs);
        enc.u16(f.fop);
        enc.u32(f.fdp);
        enc.u16(f.fds);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        // Fields not in the stream keep what `self` has, so a newer CpuState loads an
        // older stream with its added fields as they were.
        let mut s = self.clone();
        let gpr: [u32; 8] = dec.u32s("gpr")?;
        s.gpr[..8].copy_from_slice(&gpr);
        s.gpr[ZERO] = 0;
        s.eip = dec.u32("eip")?;
        let eflags = dec.u32("eflags")?;
        if eflags & EFLAGS_RESERVED != 0 || eflags & FIXED1 == 0 {
            return Err(dec.out_of_range("eflags", u64::from(eflags)));
        }
        s.eflags = eflags & !ARITH;
        s.lazy.set_flags(eflags);
        for (i, seg) in s.seg.iter_mut().enumerate() {
            *seg = load_segment(dec, i)?;
        }
        s.gdtr = load_table(dec, "gdtr.base", "gdtr.limit")?;
        s.idtr = load_table(dec, "idtr.base", "idtr.limit")?;
        s.ldtr = load_segment(dec, LDTR)?;
        s.tr = load_segment(dec, TR)?;
        s.cr0 = dec.u32("cr0")?;
        let cr0_valid = s.cr0 & !CR0_DEFINED == 0
            && s.cr0 & CR0_ET != 0
            && (s.cr0 & CR0_PG == 0 || s.cr0 & CR0_PE != 0)
            && (s.cr0 & CR0_NW == 0 || s.cr0 & CR0_CD != 0);
        if !cr0_valid {
            return Err(dec.out_of_range("cr0", u64::from(s.cr0)));
        }
        s.cr2 = dec.u32("cr2")?;
        // CR3's reserved bits depend on the paging mode (PAE), so they are left to it.
        s.cr3 = dec.u32("cr3")?;
        s.cr4 = dec.u32("cr4")?;
        if s.cr4 & !CR4_DEFINED != 0 {
            return Err(dec.out_of_range("cr4", u64::from(s.cr4)));
        }
        s.dr = dec.u32s("dr")?;
        s.cpl = dec.u8_max("cpl", 3)?;
        s.halted = dec.bool("halted")?;
        s.inhibit_irq = dec.bool("inhibit_irq")?;
        s.shutdown = dec.bool("shutdown")?;
        s.icount = dec.u64("icount")?;
        s.tsc_offset = dec.u64("tsc_offset")?;
        s.sysenter_cs = dec.u32("sysenter_cs")?;
        s.sysenter_esp = dec.u32("sysenter_esp")?;
        s.sysenter_eip = dec.u32("sysenter_eip")?;
        for r in s.fpu.regs.iter_mut() {
            r.sig = dec.u64("fpu.sig")?;
            r.se = dec.u16("fpu.se")?;
        }
        s.fpu.cw = dec.u16("fpu.cw")?;
        s.fpu.sw = dec.u16("fpu.sw")?;
        s.fpu.tw = dec.u16("fpu.tw")?;
        s.fpu.fip = dec.u32("fpu.fip")?;
        s.fpu.fcs = dec.u16("fpu.fcs")?;
        s.fpu.fop = dec.u16("fpu.fop")?;
        if s.fpu.fop > 0x7FF {
            return Err(dec.out_of_range("fpu.fop", u64::from(s.fpu.fop)));
        }
        s.fpu.fdp = dec.u32("fpu.fdp")?;
        s.fpu.fds = dec.u16("fpu.fds")?;
        dec.finish()?;
        *self = s;
        Ok(())
    }
}

/// The CPU object saves its architectural state; loading also drops every cache derived
/// from the old state (TLB, jump cache, segment bounds), through [`Cpu::set_state`].
impl VmState for Cpu {
    const NAME: &'static str = CpuState::NAME;
    const VERSION: u32 = CpuState::VERSION;
    const MIN_VERSION: u32 = CpuState::MIN_VERSION;

    fn save(&self, enc: &mut Encoder) {
        self.s.save(enc);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, version: u32) -> savevm::Result<()> {
        let mut s = self.s.clone();
        s.load(dec, version)?;
        self.set_state(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use memory::{GuestMemory, GuestPhysAddr};
    use savevm::testing::{check_state, load_encoded, save_bytes};
    use savevm::Error;

    use super::*;
    use crate::flags::FlagOp;
    use crate::NullBus;

    /// A state far from reset in every field.
    fn busy() -> CpuState {
        let mut s = CpuState::reset();
        for (i, r) in s.gpr[..8].iter_mut().enumerate() {
            *r = 0x1111_1111 * (i as u32 + 1);
        }
        s.eip = 0x00C0_1234;
        s.eflags = FIXED1 | IF | DF | (2 << 12) | NT | AC | ID;
        s.lazy.set(FlagOp::Sub, 8, 0x80, 0x01, 0x7F);
        let code = Segment {
            selector: 0x1B,
            base: 0x1000,
            limit: 0xFFFF_FFFF,
            attr: ATTR_P | ATTR_S | ATTR_CODE | ATTR_RW | (3 << ATTR_DPL_SHIFT) | ATTR_DB | ATTR_G,
            usable: true,
        };
        s.seg[CS] = code;
        s.seg[SS] = Segment {
            selector: 0x23,
            attr: ATTR_P | ATTR_S | ATTR_RW | ATTR_DC | (3 << ATTR_DPL_SHIFT) | ATTR_DB,
            limit: 0xFFF,
            ..code
        };
        s.seg[FS] = Segment {
            selector: 0,
            usable: false,
            ..s.seg[FS]
        };
        s.gdtr = TableReg {
            base: 0xC000_0000,
            limit: 0x3FF,
        };
        s.idtr = TableReg {
            base: 0xC000_1000,
            limit: 0x7FF,
        };
        s.ldtr.selector = 0x28;
        s.ldtr.base = 0x5000;
        s.tr = Segment {
            selector: 0x30,
            base: 0x6000,
            limit: 0x67,
            attr: ATTR_P | 0xB,
            usable: true,
        };
        s.cr0 = CR0_PE | CR0_PG | CR0_ET | CR0_WP | CR0_NE;
        s.cr2 = 0xDEAD_B000;
        s.cr3 = 0x0012_3000;
        s.cr4 = 0x90; // PSE | PGE
        s.dr = [1, 2, 3, 4, 0xFFFF_0FF0, 0x400, 0xFFFF_4FF1, 0x0F00_0403];
        s.cpl = 3;
        s.halted = true;
        s.inhibit_irq = true;
        s.shutdown = false;
        s.icount = 0x0123_4567_89AB;
        s.tsc_offset = u64::MAX - 5;
        s.sysenter_cs = 0x10;
        s.sysenter_esp = 0xC000_8000;
        s.sysenter_eip = 0xC010_0000;
        for (i, r) in s.fpu.regs.iter_mut().enumerate() {
            r.sig = 0x8000_0000_0000_0000 | (i as u64 * 0x0101_0101);
            r.se = 0x3FFF + i as u16;
        }
        s.fpu.cw = 0x037F;
        s.fpu.sw = 0x3800 | 0x41;
        s.fpu.tw = 0x0FFF;
        s.fpu.fip = 0x1234;
        s.fpu.fcs = 0x1B;
        s.fpu.fop = 0x5D9;
        s.fpu.fdp = 0x8000;
        s.fpu.fds = 0x23;
        s
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &CpuState::reset());
        check_state(&CpuState::reset(), &busy());
    }

    /// The reset state, byte for byte: a change here breaks every saved stream.
    #[test]
    fn golden_reset_state() {
        let b = save_bytes(&CpuState::reset());
        assert_eq!(b.len(), 236 + 8 * 10 + 20);
        assert_eq!(
            &b[8..12],
            &0x633u32.to_le_bytes(),
            "EDX holds the signature"
        );
        assert_eq!(&b[32..36], &0xFFF0u32.to_le_bytes(), "EIP");
        assert_eq!(&b[36..40], &2u32.to_le_bytes(), "EFLAGS");
        // CS (second segment): selector F000, base FFFF0000, limit FFFF, attr 0x93, usable.
        assert_eq!(
            &b[53..66],
            &[0x00, 0xF0, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x93, 0x00, 0x01]
        );
        // CR0 = ET | NW | CD, after GDTR, IDTR, LDTR and TR.
        let cr0 = 40 + 6 * 13 + 2 * 6 + 2 * 13;
        assert_eq!(&b[cr0..cr0 + 4], &0x6000_0010u32.to_le_bytes());
        // DR6 and DR7 at their reset values, then cpl, flags, icount, tsc_offset and the
        // SYSENTER MSRs.
        let dr6 = cr0 + 16 + 24;
        assert_eq!(
            &b[dr6..dr6 + 8],
            &[0xF0, 0x0F, 0xFF, 0xFF, 0x00, 0x04, 0, 0]
        );
        assert_eq!(&b[dr6 + 8..dr6 + 40], &[0u8; 32]);
        // The FPU at RESET: eight +0.0 registers, CW 0x0040, tags all "zero".
        let fpu = dr6 + 40;
        assert_eq!(&b[fpu..fpu + 80], &[0u8; 80]);
        assert_eq!(&b[fpu + 80..fpu + 86], &[0x40, 0, 0, 0, 0x55, 0x55]);
    }

    /// Every flag-producing operation, saved and loaded, reads back the same six flags
    /// and answers every condition code the same.
    #[test]
    fn lazy_flags_are_exact() {
        let ops = [
            FlagOp::Add,
            FlagOp::Adc,
            FlagOp::Sub,
            FlagOp::Sbb,
            FlagOp::Logic,
            FlagOp::Inc,
            FlagOp::Dec,
            FlagOp::Explicit,
            FlagOp::Flags,
        ];
        let values = [
            0u32,
            1,
            0x7F,
            0x80,
            0xFF,
            0x7FFF,
            0x8000,
            0xFFFF_FFFF,
            0x8000_0000,
            0x1234_5678,
        ];
        let mut cases = 0;
        for op in ops {
            for w in [8u8, 16, 32] {
                for &a in &values {
                    for &b in &values {
                        let m = match w {
                            8 => 0xFF,
                            16 => 0xFFFF,
                            _ => u32::MAX,
                        };
                        let res = match op {
                            FlagOp::Add | FlagOp::Inc => a.wrapping_add(b),
                            FlagOp::Adc => a.wrapping_add(b).wrapping_add(1),
                            FlagOp::Sub | FlagOp::Dec => a.wrapping_sub(b),
                            FlagOp::Sbb => a.wrapping_sub(b).wrapping_sub(1),
                            _ => a ^ b,
                        } & m;
                        let mut s = CpuState::reset();
                        // INC/DEC carry the CF before them over.
                        s.lazy.aux = if b & 1 != 0 { CF } else { 0 };
                        let a = a & if op == FlagOp::Explicit { ARITH } else { m };
                        s.lazy.set(op, w, a, b & m, res);
                        let mut t = CpuState::reset();
                        t.load(&mut Decoder::new("cpu", &save_bytes(&s)), 1)
                            .unwrap();
                        assert_eq!(t.flags(), s.flags(), "{op:?} w{w} {a:#x} {b:#x}");
                        for cc in 0..16 {
                            assert_eq!(t.lazy.cond(cc), s.lazy.cond(cc), "{op:?} cc {cc}");
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 9 * 3 * 100);
    }

    fn refused(mutate: impl Fn(&mut CpuState), field: &str) {
        let mut bad = busy();
        mutate(&mut bad);
        // Save bypasses validation, so it can write what no CPU could hold.
        let enc = savevm::testing::encode(&bad);
        let mut t = CpuState::reset();
        match load_encoded(&mut t, &enc) {
            Err(Error::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
        assert_eq!(
            t,
            CpuState::reset(),
            "{field}: refused load changed the state"
        );
    }

    #[test]
    fn impossible_states_are_refused() {
        refused(|s| s.cpl = 4, "cpl");
        refused(|s| s.eflags |= 1 << 15, "eflags");
        refused(|s| s.eflags |= 1 << 22, "eflags");
        refused(|s| s.eflags &= !FIXED1, "eflags");
        refused(|s| s.seg[DS].attr |= 0x0100, "ds.attr");
        refused(|s| s.tr.attr |= 0x0800, "tr.attr");
        refused(|s| s.cr0 |= 1 << 6, "cr0");
        refused(|s| s.cr0 &= !CR0_ET, "cr0");
        refused(|s| s.cr0 &= !CR0_PE, "cr0"); // PG without PE
        refused(|s| s.cr0 = (s.cr0 | CR0_NW) & !CR0_CD, "cr0");
        refused(|s| s.cr4 |= 1 << 11, "cr4");
    }

    /// Code whose carry crosses block boundaries: `add` sets CF at the end of one block,
    /// `adc` reads it at the start of the next.
    const CARRY_LOOP: &[u8] = &[
        0xB9, 0xE8, 0x03, 0x00, 0x00, // mov ecx, 1000
        0x05, 0xB9, 0x79, 0x37, 0x9E, // l: add eax, 0x9E3779B9
        0xEB, 0x00, //                   jmp m (ends the block)
        0x83, 0xD3, 0x00, //             m: adc ebx, 0
        0x49, //                         dec ecx
        0x75, 0xF3, //                   jnz l
        0xF4, //                         hlt
    ];

    fn machine() -> Arc<GuestMemory> {
        let mem = Arc::new(GuestMemory::new(1 << 20).unwrap());
        mem.write_phys(GuestPhysAddr(0x1000), CARRY_LOOP);
        mem
    }

    fn start(mem: &Arc<GuestMemory>) -> Cpu {
        let mut cpu = Cpu::new(mem.clone());
        let mut s = CpuState::reset();
        s.seg[CS] = Segment::real(0);
        s.eip = 0x1000;
        s.seg[CS].attr |= ATTR_DB;
        cpu.set_state(s);
        cpu
    }

    /// A CPU saved after every block and resumed as a new CPU finishes exactly like one
    /// that ran straight through.
    #[test]
    fn resumes_from_a_save_after_every_block() {
        let mem = machine();
        let mut straight = start(&mem);
        straight.run(&mut NullBus, 1_000_000);
        assert!(straight.s.halted);
        assert!(straight.s.gpr[EBX] > 0, "the loop carried at least once");

        let mut cpu = start(&mem);
        let mut saves = 0;
        while !cpu.s.halted {
            cpu.run(&mut NullBus, 1);
            let enc = savevm::testing::encode(&cpu);
            let mut next = Cpu::new(mem.clone());
            load_encoded(&mut next, &enc).unwrap();
            cpu = next;
            saves += 1;
        }
        assert!(saves > 2000, "{saves}");
        assert_eq!(cpu.s.gpr, straight.s.gpr);
        assert_eq!(cpu.s.eip, straight.s.eip);
        assert_eq!(cpu.eflags(), straight.eflags());
        assert_eq!(cpu.icount(), straight.icount());
    }
}
