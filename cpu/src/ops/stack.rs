//! The stack: PUSH, POP, PUSHA/POPA, PUSHF/POPF, ENTER, LEAVE, and BOUND.
//!
//! Operand size (16 or 32 bits) decides how much is pushed or popped; the stack size
//! (SS.B) decides whether SP or ESP moves, which `Cpu::push`/`pop`/`set_esp` handle.
//! Segment-register pushes and pops belong to the system group.
//!
//! Multi-value operations save ESP (and EBP) and put them back when a later access faults,
//! so a fault leaves the registers as they were. The memory written below ESP before the
//! fault is not architectural state: nothing may rely on what lies below the stack pointer.

use iced_x86::{Code, Instruction, Mnemonic, OpKind};

use crate::block::{Handler, Op};
use crate::exception::{Exception, Result};
use crate::mem::RamAccess;
use crate::state::*;
use crate::translate::gpr;
use crate::width::{W16, W32};
use crate::{by_width_16_32, Bus, Cpu};

fn push_r<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    // PUSH ESP pushes the value before the push: read it before `push` moves ESP.
    let v = W::get(&cpu.s, op.r);
    cpu.push::<W>(bus, v)
}

/// PUSH imm: `imm` is already sign-extended from an imm8 by the translator.
fn push_i<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    cpu.push::<W>(bus, op.imm & W::MASK)
}

fn push_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = cpu.read_op::<W>(bus, op)?;
    cpu.push::<W>(bus, v)
}

/// POP r. For POP ESP / POP SP the popped value wins over the increment, as the register
/// write comes last.
fn pop_r<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let v = cpu.pop::<W>(bus)?;
    W::set(&mut cpu.s, op.r, v);
    Ok(())
}

/// POP [m]: the SDM has the effective address computed with ESP already incremented (it
/// matters for `pop [esp+n]`), so ESP moves first and moves back if the store faults.
fn pop_m<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let esp = cpu.s.gpr[ESP];
    let v = cpu.stack_peek::<W>(bus, 0)?;
    cpu.set_esp(esp.wrapping_add(W::BYTES));
    if let Err(e) = cpu.write_op::<W>(bus, op, v) {
        cpu.s.gpr[ESP] = esp;
        return Err(e);
    }
    Ok(())
}

/// PUSHA/PUSHAD: EAX ECX EDX EBX (original ESP) EBP ESI EDI.
fn pusha<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    let esp = cpu.s.gpr[ESP];
    let g = cpu.s.gpr;
    for v in [g[EAX], g[ECX], g[EDX], g[EBX], esp, g[EBP], g[ESI], g[EDI]] {
        if let Err(e) = cpu.push::<W>(bus, v & W::MASK) {
            cpu.s.gpr[ESP] = esp;
            return Err(e);
        }
    }
    Ok(())
}

/// POPA/POPAD: all eight values are read before any register changes; the ESP image is
/// skipped.
fn popa<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    let mut v = [0u32; 8];
    for (k, slot) in v.iter_mut().enumerate() {
        *slot = cpu.stack_peek::<W>(bus, k as u32 * W::BYTES)?;
    }
    let esp = cpu.s.gpr[ESP];
    for (k, r) in [EDI, ESI, EBP, ESP, EBX, EDX, ECX, EAX]
        .into_iter()
        .enumerate()
    {
        if r != ESP {
            W::set(&mut cpu.s, r as u8, v[k]);
        }
    }
    cpu.set_esp(esp.wrapping_add(8 * W::BYTES));
    Ok(())
}

fn iopl(cpu: &Cpu) -> u32 {
    (cpu.s.eflags & IOPL) >> 12
}

/// PUSHF/PUSHFD: the image has VM and RF clear. In V86 mode (no VME) it is IOPL-sensitive.
fn pushf<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    if cpu.s.v86() && iopl(cpu) < 3 {
        return Err(Exception::gp(0));
    }
    let f = cpu.eflags() & !(VM | RF);
    cpu.push::<W>(bus, f & W::MASK)
}

/// The EFLAGS bits POPF may change in the current mode and privilege, and whether RF is
/// cleared (SDM POPF: outside V86 mode RF is cleared; VM, VIF, VIP are never touched).
fn popf_mask(cpu: &Cpu) -> Result<u32> {
    let common = ARITH | TF | DF | NT | AC | ID;
    let iopl = iopl(cpu);
    if cpu.s.v86() {
        // Without VME, IOPL 3 is the only way V86 code may touch EFLAGS; IOPL stays put.
        if iopl < 3 {
            return Err(Exception::gp(0));
        }
        return Ok(common | IF);
    }
    let cpl = if cpu.s.protected() {
        u32::from(cpu.s.cpl)
    } else {
        0
    };
    let mut mask = common | RF;
    if cpl == 0 {
        mask |= IOPL;
    }
    // A CPL above IOPL leaves IF unchanged silently (no fault), as the SDM specifies.
    if cpl <= iopl {
        mask |= IF;
    }
    Ok(mask)
}

fn popf<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    let mut mask = popf_mask(cpu)?;
    if W::BITS == 16 {
        mask &= 0xFFFF;
    }
    let v = cpu.pop::<W>(bus)?;
    cpu.set_eflags(v & !RF, mask);
    // IF or TF may have changed: interrupts and traps are looked at between blocks.
    cpu.stop_block = true;
    Ok(())
}

/// ENTER imm16, imm8: `imm` is the frame size, `imm2` the nesting level (taken mod 32).
fn enter<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let (esp, ebp) = (cpu.s.gpr[ESP], cpu.s.gpr[EBP]);
    let r = enter_frame::<W>(cpu, bus, op.imm & 0xFFFF, op.imm2 & 31);
    if r.is_err() {
        cpu.s.gpr[ESP] = esp;
        cpu.s.gpr[EBP] = ebp;
    }
    r
}

/// The SDM's ENTER pseudo-code; the caller restores ESP and EBP on a fault.
fn enter_frame<W: RamAccess>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    alloc: u32,
    level: u32,
) -> Result<()> {
    let mask = cpu.stack_mask();
    let ebp = cpu.s.gpr[EBP];
    cpu.push::<W>(bus, ebp & W::MASK)?;
    // FrameTemp: ESP for a 32-bit operand, SP for a 16-bit one (W::set keeps the width).
    let frame = cpu.s.gpr[ESP];
    if level > 0 {
        // The display: the enclosing frames' pointers, copied from below the old frame
        // pointer. The SDM decrements (E)BP as it goes; the final EBP overwrites it, so a
        // local pointer does.
        let mut p = ebp;
        for _ in 1..level {
            p = (p & !mask) | (p.wrapping_sub(W::BYTES) & mask);
            let v = cpu.read::<W>(bus, SS, p & mask)?;
            cpu.push::<W>(bus, v)?;
        }
        cpu.push::<W>(bus, frame & W::MASK)?;
    }
    let new_esp = cpu.s.gpr[ESP].wrapping_sub(alloc);
    // #SS if the new stack pointer is outside the stack segment (SDM ENTER exceptions).
    cpu.seg_check(SS, new_esp & mask, 1, true)?;
    W::set(&mut cpu.s, EBP as u8, frame);
    cpu.set_esp(new_esp);
    Ok(())
}

/// LEAVE: (E)SP = (E)BP by stack size, then pop (E)BP by operand size; the pop is read
/// first so a fault changes nothing.
fn leave<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Op) -> Result<()> {
    let ebp = cpu.s.gpr[EBP];
    let v = cpu.read::<W>(bus, SS, ebp & cpu.stack_mask())?;
    cpu.set_esp(ebp.wrapping_add(W::BYTES));
    W::set(&mut cpu.s, EBP as u8, v);
    Ok(())
}

/// BOUND r, m: #BR unless lower <= r <= upper, all signed; the bounds are two consecutive
/// values of the operand width.
fn bound<W: RamAccess>(cpu: &mut Cpu, bus: &mut dyn Bus, op: &Op) -> Result<()> {
    let ea = op.ea(cpu);
    let lo = cpu.read::<W>(bus, op.seg(), ea)?;
    let hi = cpu.read::<W>(bus, op.seg(), ea.wrapping_add(W::BYTES) & op.amask)?;
    let idx = W::sext(W::get(&cpu.s, op.r)) as i32;
    if idx < W::sext(lo) as i32 || idx > W::sext(hi) as i32 {
        return Err(Exception::br());
    }
    Ok(())
}

/// Operand size of a push or pop, from how far it moves the stack pointer.
fn stack_width(i: &Instruction) -> u32 {
    if i.stack_pointer_increment().unsigned_abs() == 2 {
        16
    } else {
        32
    }
}

pub fn select(i: &Instruction, op: &mut Op) -> Option<Handler> {
    Some(match i.mnemonic() {
        Mnemonic::Push => {
            let w = stack_width(i);
            match i.op_kind(0) {
                OpKind::Register => {
                    let r = i.op0_register();
                    if !r.is_gpr() {
                        return None; // segment registers: the system group
                    }
                    op.r = gpr(r);
                    by_width_16_32!(w, push_r)
                }
                OpKind::Memory => by_width_16_32!(w, push_m),
                OpKind::Immediate8to16
                | OpKind::Immediate8to32
                | OpKind::Immediate16
                | OpKind::Immediate32 => by_width_16_32!(w, push_i),
                _ => return None,
            }
        }
        Mnemonic::Pop => {
            let w = stack_width(i);
            match i.op_kind(0) {
                OpKind::Register => {
                    let r = i.op0_register();
                    if !r.is_gpr() {
                        return None;
                    }
                    op.r = gpr(r);
                    by_width_16_32!(w, pop_r)
                }
                OpKind::Memory => by_width_16_32!(w, pop_m),
                _ => return None,
            }
        }
        Mnemonic::Pusha => pusha::<W16>,
        Mnemonic::Pushad => pusha::<W32>,
        Mnemonic::Popa => popa::<W16>,
        Mnemonic::Popad => popa::<W32>,
        Mnemonic::Pushf => pushf::<W16>,
        Mnemonic::Pushfd => pushf::<W32>,
        Mnemonic::Popf => popf::<W16>,
        Mnemonic::Popfd => popf::<W32>,
        Mnemonic::Enter => match i.code() {
            Code::Enterw_imm16_imm8 => enter::<W16>,
            Code::Enterd_imm16_imm8 => enter::<W32>,
            _ => return None,
        },
        Mnemonic::Leave => match i.code() {
            Code::Leavew => leave::<W16>,
            Code::Leaved => leave::<W32>,
            _ => return None,
        },
        Mnemonic::Bound => {
            if i.op_count() != 2 || i.op_kind(1) != OpKind::Memory {
                return None;
            }
            op.r = gpr(i.op0_register());
            match i.code() {
                Code::Bound_r16_m1616 => bound::<W16>,
                _ => bound::<W32>,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use memory::GuestMemory;

    use super::*;
    use crate::testing::{run_snippet32, SnippetEnd, SnippetState};

    fn dword(s: &SnippetState, off: usize) -> u32 {
        u32::from_le_bytes(s.data[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn push_pop_forms() {
        // mov ebp, 0xFFFF1234; mov eax, 0x11111111; push eax; push word 0x1234; push -2
        // push dword [0x10000]; push esp; pop ebx; pop ecx; pop edx; pop si
        // pop dword [0x10004]; push 0xAAAA5555; push 0x77; pop dword [esp]; pop edi
        // push sp; pop bp; push dword 0x2FFF0; pop esp; mov [0x10008], esp
        // mov esp, 0x30000
        let code = [
            0xBD, 0x34, 0x12, 0xFF, 0xFF, 0xB8, 0x11, 0x11, 0x11, 0x11, 0x50, 0x66, 0x68, 0x34,
            0x12, 0x6A, 0xFE, 0xFF, 0x35, 0x00, 0x00, 0x01, 0x00, 0x54, 0x5B, 0x59, 0x5A, 0x66,
            0x5E, 0x8F, 0x05, 0x04, 0x00, 0x01, 0x00, 0x68, 0x55, 0x55, 0xAA, 0xAA, 0x6A, 0x77,
            0x8F, 0x04, 0x24, 0x5F, 0x66, 0x54, 0x66, 0x5D, 0x68, 0xF0, 0xFF, 0x02, 0x00, 0x5C,
            0x89, 0x25, 0x08, 0x00, 0x01, 0x00, 0xBC, 0x00, 0x00, 0x03, 0x00,
        ];
        let mut s = SnippetState::default();
        s.data[..4].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        // PUSH ESP pushed ESP as it was before that push.
        assert_eq!(s.gpr[EBX], 0x2_FFF2);
        assert_eq!(s.gpr[ECX], 0xDEAD_BEEF);
        // PUSH imm8 is sign-extended.
        assert_eq!(s.gpr[EDX], 0xFFFF_FFFE);
        assert_eq!(s.gpr[ESI], 0x1234);
        assert_eq!(dword(&s, 4), 0x1111_1111);
        // POP [ESP] addressed with ESP already incremented.
        assert_eq!(s.gpr[EDI], 0x77);
        // PUSH SP pushed the old SP (0x0000 at ESP = 0x30000); POP BP keeps EBP's top.
        assert_eq!(s.gpr[EBP], 0xFFFF_0000);
        // POP ESP: the popped value, not the increment.
        assert_eq!(dword(&s, 8), 0x2_FFF0);
        assert_eq!(s.gpr[ESP], 0x3_0000);
    }

    #[test]
    fn pusha_popa() {
        // mov eax..edi (not esp), 1..8; pushad; copy [esp+12] (ESP image), [esp] (EDI),
        // [esp+28] (EAX) to data 0, 4, 8; mov dword [esp+12], 0x12345; zero all; popad
        // mov [0x1000C], esp; pushaw; mov [0x10010], esp; mov word [esp+8], 0x5555 (BX)
        // mov word [esp], 0xBEEF (DI); mov word [esp+14], 0xCAFE (AX)
        // mov edi, 0xFFFF0000; popaw
        let code = [
            0xB8, 0x01, 0x00, 0x00, 0x00, 0xB9, 0x02, 0x00, 0x00, 0x00, 0xBA, 0x03, 0x00, 0x00,
            0x00, 0xBB, 0x04, 0x00, 0x00, 0x00, 0xBD, 0x06, 0x00, 0x00, 0x00, 0xBE, 0x07, 0x00,
            0x00, 0x00, 0xBF, 0x08, 0x00, 0x00, 0x00, 0x60, 0x8B, 0x44, 0x24, 0x0C, 0xA3, 0x00,
            0x00, 0x01, 0x00, 0x8B, 0x04, 0x24, 0xA3, 0x04, 0x00, 0x01, 0x00, 0x8B, 0x44, 0x24,
            0x1C, 0xA3, 0x08, 0x00, 0x01, 0x00, 0xC7, 0x44, 0x24, 0x0C, 0x45, 0x23, 0x01, 0x00,
            0x31, 0xC0, 0x31, 0xC9, 0x31, 0xD2, 0x31, 0xDB, 0x31, 0xED, 0x31, 0xF6, 0x31, 0xFF,
            0x61, 0x89, 0x25, 0x0C, 0x00, 0x01, 0x00, 0x66, 0x60, 0x89, 0x25, 0x10, 0x00, 0x01,
            0x00, 0x66, 0xC7, 0x44, 0x24, 0x08, 0x55, 0x55, 0x66, 0xC7, 0x04, 0x24, 0xEF, 0xBE,
            0x66, 0xC7, 0x44, 0x24, 0x0E, 0xFE, 0xCA, 0xBF, 0x00, 0x00, 0xFF, 0xFF, 0x66, 0x61,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        assert_eq!(dword(&s, 0), 0x3_0000);
        assert_eq!(dword(&s, 4), 8);
        assert_eq!(dword(&s, 8), 1);
        // POPAD skipped the (overwritten) ESP image.
        assert_eq!(dword(&s, 0xC), 0x3_0000);
        assert_eq!(dword(&s, 0x10), 0x2_FFF0);
        assert_eq!(
            s.gpr,
            [0xCAFE, 2, 3, 0x5555, 0x3_0000, 6, 7, 0xFFFF_BEEF],
            "EAX ECX EDX EBX ESP EBP ESI EDI"
        );
    }

    #[test]
    fn pushf_popf() {
        // stc; std; pushfd; pop eax; push dword 0x0065FEFF; popfd; pushfd; pop ebx
        // push word 1; popfw; pushfd; pop ecx; pushfw; pop dx; push dword 0; popfd
        let code = [
            0xF9, 0xFD, 0x9C, 0x58, 0x68, 0xFF, 0xFE, 0x65, 0x00, 0x9D, 0x9C, 0x5B, 0x66, 0x6A,
            0x01, 0x66, 0x9D, 0x9C, 0x59, 0x66, 0x9C, 0x66, 0x5A, 0x6A, 0x00, 0x9D,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        assert_eq!(s.gpr[EAX], 0x403);
        // Reserved bits dropped, RF cleared, everything else (IOPL, NT, AC, ID) taken.
        assert_eq!(s.gpr[EBX], 0x0024_7ED7);
        // A 16-bit POPF leaves the upper half alone.
        assert_eq!(s.gpr[ECX], 0x0024_0003);
        assert_eq!(s.gpr[EDX], 0x0003);
        assert_eq!(s.eflags, FIXED1);
        assert_eq!(s.gpr[ESP], 0x3_0000);
    }

    #[test]
    fn popf_privilege_rules() {
        let mut cpu = Cpu::new(Arc::new(GuestMemory::new(1 << 20).expect("RAM")));
        cpu.s.cr0 |= CR0_PE;
        // CPL 0: IOPL and IF both writable.
        cpu.s.cpl = 0;
        let m = popf_mask(&cpu).unwrap();
        assert_eq!(m & (IOPL | IF | VM | VIF | VIP), IOPL | IF);
        // CPL 3, IOPL 0: neither IOPL nor IF, silently.
        cpu.s.cpl = 3;
        let m = popf_mask(&cpu).unwrap();
        assert_eq!(m & (IOPL | IF), 0);
        assert_ne!(m & CF, 0);
        // CPL 3, IOPL 3: IF but not IOPL.
        cpu.s.eflags |= IOPL;
        assert_eq!(popf_mask(&cpu).unwrap() & (IOPL | IF), IF);
        // V86 with IOPL 3: IF but not IOPL, VM or RF.
        cpu.s.eflags |= VM;
        assert_eq!(popf_mask(&cpu).unwrap() & (IOPL | IF | VM | RF), IF);
        // V86 with IOPL < 3: #GP(0).
        cpu.s.eflags &= !IOPL;
        assert_eq!(popf_mask(&cpu), Err(Exception::gp(0)));
        // Real mode: CPL 0 rules.
        cpu.s.eflags &= !VM;
        cpu.s.cr0 &= !CR0_PE;
        assert_eq!(popf_mask(&cpu).unwrap() & (IOPL | IF), IOPL | IF);
    }

    #[test]
    fn enter_leave() {
        // mov ebp, 0x2FF00; mov dword [0x2FEFC], 0x1111; mov dword [0x2FEF8], 0x2222
        // enter 8, 3; mov eax, esp; mov [0x10020], eax; mov ebx, ebp; mov ecx, [ebp-4]; mov edx, [ebp-8]
        // mov esi, [ebp-12]; leave; mov edi, ebp
        // o16 enter 4, 1; mov [0x10000], esp; mov [0x10004], ebp; mov ax, [0x2FFFC]
        // mov [0x10008], ax; o16 leave; mov [0x1000C], ebp; mov [0x10010], esp
        // enter 0x10, 0; mov [0x10014], esp; mov [0x10018], ebp; leave; mov [0x1001C], esp
        let code = [
            0xBD, 0x00, 0xFF, 0x02, 0x00, 0xC7, 0x05, 0xFC, 0xFE, 0x02, 0x00, 0x11, 0x11, 0x00,
            0x00, 0xC7, 0x05, 0xF8, 0xFE, 0x02, 0x00, 0x22, 0x22, 0x00, 0x00, 0xC8, 0x08, 0x00,
            0x03, 0x89, 0xE0, 0xA3, 0x20, 0x00, 0x01, 0x00, 0x89, 0xEB, 0x8B, 0x4D, 0xFC, 0x8B,
            0x55, 0xF8, 0x8B, 0x75, 0xF4, 0xC9, 0x89, 0xEF, 0x66, 0xC8, 0x04, 0x00, 0x01, 0x89,
            0x25, 0x00, 0x00, 0x01, 0x00, 0x89, 0x2D, 0x04, 0x00, 0x01, 0x00, 0x66, 0xA1, 0xFC,
            0xFF, 0x02, 0x00, 0x66, 0xA3, 0x08, 0x00, 0x01, 0x00, 0x66, 0xC9, 0x89, 0x2D, 0x0C,
            0x00, 0x01, 0x00, 0x89, 0x25, 0x10, 0x00, 0x01, 0x00, 0xC8, 0x10, 0x00, 0x00, 0x89,
            0x25, 0x14, 0x00, 0x01, 0x00, 0x89, 0x2D, 0x18, 0x00, 0x01, 0x00, 0xC9, 0x89, 0x25,
            0x1C, 0x00, 0x01, 0x00,
        ];
        let mut s = SnippetState::default();
        assert_eq!(run_snippet32(&code, &mut s), SnippetEnd::Done);
        // Level 3: old EBP, two display entries from the outer frame, then the new frame.
        assert_eq!(dword(&s, 0x20), 0x2_FFE8);
        assert_eq!(s.gpr[EBX], 0x2_FFFC);
        assert_eq!(s.gpr[ECX], 0x1111);
        assert_eq!(s.gpr[EDX], 0x2222);
        assert_eq!(s.gpr[ESI], 0x2_FFFC);
        assert_eq!(s.gpr[EDI], 0x2_FF00);
        // 16-bit operand size: words, BP = SP, EBP's top half kept.
        assert_eq!(dword(&s, 0), 0x2_FFF8);
        assert_eq!(dword(&s, 4), 0x2_FFFE);
        assert_eq!(&s.data[8..10], &[0xFE, 0xFF]);
        assert_eq!(dword(&s, 0xC), 0x2_FF00);
        assert_eq!(dword(&s, 0x10), 0x3_0000);
        // Level 0.
        assert_eq!(dword(&s, 0x14), 0x2_FFEC);
        assert_eq!(dword(&s, 0x18), 0x2_FFFC);
        assert_eq!(dword(&s, 0x1C), 0x3_0000);
    }

    #[test]
    fn bound_faults_out_of_range() {
        // dword bounds [-5, 10] at 0x10000, word bounds [-1, 1] at 0x10008
        // mov eax, -5; bound eax, [0x10000]; mov eax, 10; bound eax, [0x10000]
        // mov eax, 0x1234FFFF; bound ax, [0x10008]; mov ebx, 1; mov eax, 11
        // bound eax, [0x10000] (#BR); mov ebx, 2
        let code = [
            0xC7, 0x05, 0x00, 0x00, 0x01, 0x00, 0xFB, 0xFF, 0xFF, 0xFF, 0xC7, 0x05, 0x04, 0x00,
            0x01, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x66, 0xC7, 0x05, 0x08, 0x00, 0x01, 0x00, 0xFF,
            0xFF, 0x66, 0xC7, 0x05, 0x0A, 0x00, 0x01, 0x00, 0x01, 0x00, 0xB8, 0xFB, 0xFF, 0xFF,
            0xFF, 0x62, 0x05, 0x00, 0x00, 0x01, 0x00, 0xB8, 0x0A, 0x00, 0x00, 0x00, 0x62, 0x05,
            0x00, 0x00, 0x01, 0x00, 0xB8, 0xFF, 0xFF, 0x34, 0x12, 0x66, 0x62, 0x05, 0x08, 0x00,
            0x01, 0x00, 0xBB, 0x01, 0x00, 0x00, 0x00, 0xB8, 0x0B, 0x00, 0x00, 0x00, 0x62, 0x05,
            0x00, 0x00, 0x01, 0x00, 0xBB, 0x02, 0x00, 0x00, 0x00,
        ];
        let mut s = SnippetState::default();
        assert_eq!(
            run_snippet32(&code, &mut s),
            SnippetEnd::Exception(Exception::br())
        );
        assert_eq!(s.gpr[EBX], 1);

        // Word form: AX = 0x8000 is -32768, below -1 (EAX's top half is ignored).
        // mov word [0x10008], -1; mov word [0x1000A], 1; mov eax, 0x00018000
        // bound ax, [0x10008]; mov ebx, 2
        let code = [
            0x66, 0xC7, 0x05, 0x08, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0x66, 0xC7, 0x05, 0x0A, 0x00,
            0x01, 0x00, 0x01, 0x00, 0xB8, 0x00, 0x80, 0x01, 0x00, 0x66, 0x62, 0x05, 0x08, 0x00,
            0x01, 0x00, 0xBB, 0x02, 0x00, 0x00, 0x00,
        ];
        let mut s = SnippetState::default();
        assert_eq!(
            run_snippet32(&code, &mut s),
            SnippetEnd::Exception(Exception::br())
        );
        assert_eq!(s.gpr[EBX], 0);
    }
}
