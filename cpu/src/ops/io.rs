//! Port I/O: IN and OUT, and the I/O permission check INS/OUTS share.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::mem::RamAccess;
use crate::state::{EAX, EDX, IOPL};
use crate::width::W16;
use crate::{by_width, Bus, Cpu};

/// Offset in a 32-bit TSS of the word holding the I/O bitmap's offset.
const TSS_IOMAP_BASE: u32 = 0x66;

/// Whether `size` bytes of port I/O at `port` are allowed: always in real mode and at
/// CPL <= IOPL; otherwise (and always in V86 mode) the TSS I/O bitmap decides, every bit
/// of the access having to be clear.
pub fn io_allowed(cpu: &mut Cpu, bus: &mut dyn Bus, port: u16, size: u8) -> Result<()> {
    if !cpu.s.protected() {
        return Ok(());
    }
    let iopl = ((cpu.s.eflags & IOPL) >> 12) as u8;
    if !cpu.s.v86() && cpu.s.cpl <= iopl {
        return Ok(());
    }
    let tr = cpu.s.tr;
    // Only a 32-bit TSS (available 9 or busy 11) has a bitmap, and it must be large enough
    // to hold the bitmap offset.
    let ty = tr.attr & 0x1F;
    if !tr.usable || (ty != 0x9 && ty != 0xB) || tr.limit < TSS_IOMAP_BASE + 1 {
        return Err(Exception::gp(0));
    }
    let map = cpu.read_sys::<W16>(bus, tr.base.wrapping_add(TSS_IOMAP_BASE))?;
    // The CPU always reads two bitmap bytes (an access of up to four ports starting late in
    // a byte reaches into the next), and both must lie within the TSS limit.
    let at = map + u32::from(port >> 3);
    if at + 1 > tr.limit {
        return Err(Exception::gp(0));
    }
    let bits = cpu.read_sys::<W16>(bus, tr.base.wrapping_add(at))?;
    let want = ((1u32 << size) - 1) << (port & 7);
    if bits & want != 0 {
        return Err(Exception::gp(0));
    }
    Ok(())
}

/// The port of an IN/OUT: DX when `x` is set, else the imm8.
#[inline(always)]
fn port(cpu: &Cpu, op: &Op) -> u16 {
    if op.x != 0 {
        cpu.s.gpr[EDX] as u16
    } else {
        op.imm as u16
    }
}

fn in_<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let p = port(cpu, op);
    io_allowed(cpu, bus, p, W::BYTES as u8)?;
    bus.sync_icount(cpu.s.icount);
    let v = bus.io_read(p, W::BYTES as u8);
    W::set(&mut cpu.s, EAX as u8, v);
    Ok(())
}

fn out<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let p = port(cpu, op);
    io_allowed(cpu, bus, p, W::BYTES as u8)?;
    bus.sync_icount(cpu.s.icount);
    bus.io_write(p, W::BYTES as u8, W::get(&cpu.s, EAX as u8));
    // A device may now raise (or an EOI unmask) an interrupt: ending the block lets the run
    // loop take it at the next instruction boundary, as the hardware would.
    cpu.stop_block = true;
    Ok(())
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    let (data, port_op) = match i.mnemonic() {
        Mnemonic::In => (0, 1),
        Mnemonic::Out => (1, 0),
        _ => return None,
    };
    if i.op_count() != 2 || i.op_kind(data) != OpKind::Register {
        return None;
    }
    let w = i.op_register(data).size() as u32 * 8;
    op.x = match i.op_kind(port_op) {
        OpKind::Register if i.op_register(port_op) == Register::DX => 1,
        OpKind::Immediate8 => 0,
        _ => return None,
    };
    Some(if data == 0 {
        by_width!(w, in_)
    } else {
        by_width!(w, out)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use memory::{GuestMemory, GuestPhysAddr};

    use super::*;
    use crate::state::*;
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};
    use crate::{NullBus, Segment};

    /// A CPU in protected mode at `cpl` with a 32-bit TSS at 0x2000 of limit `limit`
    /// whose bitmap (at TSS offset 0x68) allows ports 0x60..0x67 except 0x62 and 0x65.
    fn cpu_with_tss(cpl: u8, limit: u32) -> Cpu {
        let mem = Arc::new(GuestMemory::new(1 << 20).expect("RAM"));
        let mut tss = vec![0u8; 0x68 + 0x20];
        tss[0x66..0x68].copy_from_slice(&0x68u16.to_le_bytes());
        for b in tss[0x68..].iter_mut() {
            *b = 0xFF;
        }
        // Ports 0x60-0x67 are bits 0-7 of byte 0x0C.
        tss[0x68 + 0x0C] = (1 << 2) | (1 << 5);
        mem.write_phys(GuestPhysAddr(0x2000), &tss);
        let mut cpu = Cpu::new(mem);
        let mut s = CpuState::reset();
        s.cr0 |= CR0_PE;
        s.cpl = cpl;
        s.tr = Segment {
            selector: 0x18,
            base: 0x2000,
            limit,
            attr: ATTR_P | 0xB,
            usable: true,
        };
        cpu.set_state(s);
        cpu
    }

    #[test]
    fn bitmap_decides_above_iopl() {
        let mut bus = NullBus;
        let mut cpu = cpu_with_tss(3, 0x68 + 0x1F);
        let gp = Err(Exception::gp(0));
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x60, 1), Ok(()));
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x60, 2), Ok(()));
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x62, 1), gp);
        // A word at 0x61 covers 0x62.
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x61, 2), gp);
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x63, 2), Ok(()));
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x63, 4), gp);
        // 0x67 + 0x68: the dword reaches into the next (all-ones) byte.
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x66, 2), Ok(()));
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x66, 4), gp);
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x3F8, 1), gp);
        // IOPL 3 lets CPL 3 through without the bitmap.
        cpu.s.eflags |= IOPL;
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x3F8, 1), Ok(()));
        // ... but not in V86 mode, where only the bitmap counts.
        cpu.s.eflags |= VM;
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x3F8, 1), gp);
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x60, 1), Ok(()));
    }

    #[test]
    fn bitmap_beyond_limit_faults() {
        let mut bus = NullBus;
        // The limit ends at the byte of ports 0x60-0x67: the second byte read is outside.
        let mut cpu = cpu_with_tss(3, 0x68 + 0x0C);
        assert_eq!(
            io_allowed(&mut cpu, &mut bus, 0x60, 1),
            Err(Exception::gp(0))
        );
        let mut cpu = cpu_with_tss(3, 0x68 + 0x0D);
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x60, 1), Ok(()));
        // A TSS too short for the bitmap offset.
        let mut cpu = cpu_with_tss(3, 0x60);
        assert_eq!(
            io_allowed(&mut cpu, &mut bus, 0x60, 1),
            Err(Exception::gp(0))
        );
    }

    #[test]
    fn cpl0_and_real_mode_always_allowed() {
        let mut bus = NullBus;
        let mut cpu = cpu_with_tss(0, 0);
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x3F8, 4), Ok(()));
        cpu.s.cr0 &= !CR0_PE;
        cpu.s.cpl = 3;
        assert_eq!(io_allowed(&mut cpu, &mut bus, 0x3F8, 4), Ok(()));
    }

    #[test]
    fn in_reads_unclaimed_ports_as_ones() {
        // mov eax, 0x12345678; in al, 0x60; mov ebx, eax; mov dx, 0x71; in ax, dx
        // mov esi, eax; xor eax, eax; in eax, dx; out dx, al; out 0x80, eax
        let code = [
            0xB8, 0x78, 0x56, 0x34, 0x12, 0xE4, 0x60, 0x89, 0xC3, 0x66, 0xBA, 0x71, 0x00, 0x66,
            0xED, 0x89, 0xC6, 0x31, 0xC0, 0xED, 0xEE, 0xE7, 0x80,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        assert_eq!(s.gpr[EBX], 0x1234_56FF);
        assert_eq!(s.gpr[ESI], 0x1234_FFFF);
        assert_eq!(s.gpr[EAX], 0xFFFF_FFFF);
    }
}

#[cfg(test)]
mod bitmap_tests {
    use super::*;
    use crate::state::*;
    use crate::testbed::*;

    #[test]
    fn wide_ports_spanning_two_bitmap_bytes() {
        let mut b = Bed::new();
        let map = TSS + 0x68;
        // Ports 0x68-0x77 allowed (bytes 0x0D and 0x0E clear), everything else denied.
        for n in 0..0x2000 {
            b.w8(map + n, if n == 0x0D || n == 0x0E { 0 } else { 0xFF });
        }
        b.enter_ring3(CODE);
        let gp = Err(Exception::gp(0));
        let bus = &mut b.bus;
        // A word at 0x6F and a dword at 0x6E read bytes 0x0D and 0x0E.
        assert_eq!(io_allowed(&mut b.cpu, bus, 0x6F, 2), Ok(()));
        assert_eq!(io_allowed(&mut b.cpu, bus, 0x6E, 4), Ok(()));
        // A dword at 0x76 reaches 0x78, in byte 0x0F.
        assert_eq!(io_allowed(&mut b.cpu, bus, 0x76, 4), gp);
        assert_eq!(io_allowed(&mut b.cpu, bus, 0x67, 2), gp);
        // With the limit at byte 0x0E the second byte read for port 0x77 is outside.
        b.cpu.s.tr.limit = 0x68 + 0x0E;
        assert_eq!(io_allowed(&mut b.cpu, &mut b.bus, 0x6F, 2), Ok(()));
        assert_eq!(io_allowed(&mut b.cpu, &mut b.bus, 0x77, 1), gp);
        b.cpu.s.tr.limit = 0x68 + 0x0D;
        assert_eq!(io_allowed(&mut b.cpu, &mut b.bus, 0x6F, 2), gp);
        assert_eq!(io_allowed(&mut b.cpu, &mut b.bus, 0x68, 1), gp);
        // A bitmap offset beyond the limit: no bitmap, every port denied.
        b.w16(TSS + 0x66, 0x3000);
        b.cpu.s.tr.limit = 0x2FFF;
        assert_eq!(io_allowed(&mut b.cpu, &mut b.bus, 0x0, 1), gp);
    }

    #[test]
    fn v86_out_consults_the_bitmap_even_at_iopl_3() {
        let mut b = Bed::new();
        let map = TSS + 0x68;
        b.w8(map + 0x10, 0x02); // port 0x81 denied, 0x80 allowed
        b.gate(13, CODE0, 0x1_1000, INT_GATE);
        b.write(0x1_1000, &[0xF4]);
        // mov al, 0x55; out 0x80, al; out 0x81, al
        b.write(0x1_0010, &[0xB0, 0x55, 0xE6, 0x80, 0xE6, 0x81]);
        let mut s = b.cpu.s.clone();
        s.eflags |= VM | IOPL;
        for (n, seg) in s.seg.iter_mut().enumerate() {
            *seg = Segment::v86(if n == CS { 0x1000 } else { 0x2000 });
        }
        s.cpl = 3;
        s.eip = 0x10;
        s.gpr[ESP] = 0x100;
        b.cpu.set_state(s);
        b.run_to(0x1_1000);
        assert_eq!(b.bus.writes, [(0x80, 0x55)]);
        assert_eq!(b.r32(STACK0 - 40), 0, "#GP(0)");
        assert_eq!(b.r32(STACK0 - 36), 0x14, "at the denied OUT");
    }
}
