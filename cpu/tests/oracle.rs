//! Differential test of the interpreter against the host CPU.
//!
//! Each instruction under test is written once, as Intel-syntax assembly text, and the
//! `op!` macro turns it into two things:
//!
//! * a native runner: inline assembly that loads RAX, RCX, RDX, RSI, RDI and RFLAGS,
//!   executes the instruction in 64-bit mode, and reads them back;
//! * the instruction's 32-bit encoding, assembled by the same assembler under `.code32`
//!   into a read-only section, which `run_snippet32` executes in the interpreter.
//!
//! 8-, 16- and 32-bit operand-size register forms behave the same in 64-bit mode as in
//! 32-bit mode (a 32-bit write zero-extends, which only the upper halves we never compare
//! see), so the native result is the reference. Memory forms and string instructions get
//! a buffer: natively RSI/RDI point into a host buffer, in the interpreter ESI/EDI point
//! into the data area at 0x10000; the pointers are compared as offsets.
//!
//! Only the flags the Intel SDM defines for an instruction are compared; the others are
//! masked per instruction (and per count, for shifts). A #DE would be a SIGFPE natively,
//! so divisions that must fault are predicted from the operands and checked only on the
//! interpreter side. BCD instructions do not exist in 64-bit mode: they are checked
//! against a table of vectors worked out from the SDM pseudo-code.
//!
//! Every run is reproducible: operands come from a fixed-seed xorshift generator.

#![cfg(target_arch = "x86_64")]

use std::arch::asm;
use std::fmt::Write as _;

use cpu::testing::{run_snippet32, SnippetEnd, SnippetState, DATA_BASE};

// ---------------------------------------------------------------------------------------
// Flags

const CF: u32 = 1 << 0;
const PF: u32 = 1 << 2;
const AF: u32 = 1 << 4;
const ZF: u32 = 1 << 6;
const SF: u32 = 1 << 7;
const DF: u32 = 1 << 10;
const OF: u32 = 1 << 11;
const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
/// Every flag an instruction under test may read or write.
const ALL: u32 = ARITH | DF;
const FIXED1: u32 = 1 << 1;

fn flag_names(f: u32) -> String {
    let mut s = String::new();
    for (bit, name) in [
        (CF, "CF"),
        (PF, "PF"),
        (AF, "AF"),
        (ZF, "ZF"),
        (SF, "SF"),
        (DF, "DF"),
        (OF, "OF"),
    ] {
        if f & bit != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(name);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

// ---------------------------------------------------------------------------------------
// Deterministic operands

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// A generator of its own for each instruction, so that adding one does not change
    /// the operands of the others.
    fn for_name(name: &str) -> Self {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        Rng::new(h)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// An operand of `w` bits biased towards the edges where flags change, placed in a
    /// random 32-bit value (the bits above `w` must be kept by 8- and 16-bit forms).
    fn operand(&mut self, w: u32) -> u32 {
        let m = mask(w);
        let sign = 1u32 << (w - 1);
        let v = match self.below(8) {
            0 => [0, 1, 2, m, m - 1, sign, sign - 1, sign + 1][self.below(8) as usize],
            1 => self.below(16),
            2 => m - self.below(16),
            3 => sign.wrapping_add(self.below(16)).wrapping_sub(8),
            4 => 1u32.wrapping_shl(self.below(w)) ^ (self.below(2) * m),
            5 => self.u32() & 0x0F0F_0F0F,
            _ => self.u32(),
        } & m;
        (self.u32() & !m) | v
    }

    /// Random CF PF AF ZF SF OF.
    fn flags(&mut self) -> u32 {
        self.u32() & ARITH
    }
}

fn mask(w: u32) -> u32 {
    if w >= 32 {
        u32::MAX
    } else {
        (1u32 << w) - 1
    }
}

// ---------------------------------------------------------------------------------------
// Instructions

/// RAX, RCX, RDX, RSI, RDI and RFLAGS around one native run.
#[derive(Clone, Copy, Debug, Default)]
struct Regs {
    r: [u64; 5],
    f: u64,
}

const REG_NAMES: [&str; 5] = ["eax", "ecx", "edx", "esi", "edi"];
/// Where those registers sit in `SnippetState::gpr`.
const GPR_INDEX: [usize; 5] = [0, 1, 2, 6, 7];

#[derive(Clone, Copy)]
struct Insn {
    text: &'static str,
    exec: fn(&mut Regs),
    code: fn() -> &'static [u8],
}

/// `op!("text")`: an instruction (or several, separated by `\n`) whose text means the
/// same in 64-bit and 32-bit mode. `op!("native", "guest")`: different texts (memory
/// operands: `[rsi]` natively, `[esi]` in the guest).
macro_rules! op {
    ($text:expr) => {
        op!($text, $text)
    };
    ($native:expr, $guest:expr) => {{
        fn exec(r: &mut Regs) {
            // SAFETY: the instruction touches only the registers listed here, RFLAGS and
            // (for memory forms) the buffer RSI/RDI point into; DF is cleared on exit.
            unsafe {
                asm!(
                    "push {f}",
                    "popfq",
                    $native,
                    "pushfq",
                    "pop {f}",
                    "cld",
                    f = inout(reg) r.f,
                    inout("rax") r.r[0],
                    inout("rcx") r.r[1],
                    inout("rdx") r.r[2],
                    inout("rsi") r.r[3],
                    inout("rdi") r.r[4],
                );
            }
        }
        fn code() -> &'static [u8] {
            let p: usize;
            let q: usize;
            // SAFETY: only computes the addresses of bytes placed in a read-only section.
            unsafe {
                asm!(
                    ".pushsection .rodata.tern_oracle,\"a\"",
                    ".code32",
                    "2:",
                    $guest,
                    "3:",
                    ".code64",
                    ".popsection",
                    "lea {p}, [rip + 2b]",
                    "lea {q}, [rip + 3b]",
                    p = out(reg) p,
                    q = out(reg) q,
                    options(pure, nomem, nostack, preserves_flags),
                );
                std::slice::from_raw_parts(p as *const u8, q - p)
            }
        }
        Insn {
            text: $guest,
            exec,
            code,
        }
    }};
}

// ---------------------------------------------------------------------------------------
// The harness

/// One case: the five registers and the flags going in, and for memory forms a buffer
/// (then ESI and EDI hold offsets into it).
#[derive(Clone, Debug, Default)]
struct Input {
    r: [u32; 5],
    flags: u32,
    mem: Vec<u8>,
    ptrs: bool,
}

/// What to compare for one case.
#[derive(Clone, Copy, Debug)]
struct Judge {
    /// The flags whose value the SDM defines (after the instruction).
    flags: u32,
    /// Bits of each register to compare.
    regs: [u32; 5],
    /// The instruction must raise #DE (not run natively).
    de: bool,
}

impl Judge {
    fn flags(flags: u32) -> Self {
        Judge {
            flags,
            regs: [u32::MAX; 5],
            de: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    r: [u32; 5],
    flags: u32,
    mem: Vec<u8>,
}

const JUNK_EBX: u32 = 0x5EB0_5EB0;
const JUNK_EBP: u32 = 0x5EB0_0BB0;
const STACK_TOP: u32 = 0x3_0000;

fn run_native(insn: &Insn, input: &Input) -> Outcome {
    let mut mem = input.mem.clone();
    // Spare room so that a wrong offset shows up as a mismatch rather than a crash.
    let base = mem.as_mut_ptr() as u64;
    let mut regs = Regs {
        r: input.r.map(u64::from),
        f: u64::from((input.flags & ALL) | FIXED1),
    };
    if input.ptrs {
        regs.r[3] = base + u64::from(input.r[3]);
        regs.r[4] = base + u64::from(input.r[4]);
    }
    (insn.exec)(&mut regs);
    let mut r = regs.r.map(|v| v as u32);
    if input.ptrs {
        r[3] = regs.r[3].wrapping_sub(base) as u32;
        r[4] = regs.r[4].wrapping_sub(base) as u32;
    }
    Outcome {
        r,
        flags: regs.f as u32 & ALL,
        mem,
    }
}

fn run_interp(code: &[u8], input: &Input) -> (SnippetEnd, Outcome, [u32; 3]) {
    let mut gpr = [0u32; 8];
    for (i, &g) in GPR_INDEX.iter().enumerate() {
        gpr[g] = input.r[i];
    }
    if input.ptrs {
        gpr[6] = DATA_BASE.wrapping_add(input.r[3]);
        gpr[7] = DATA_BASE.wrapping_add(input.r[4]);
    }
    gpr[3] = JUNK_EBX;
    gpr[4] = STACK_TOP;
    gpr[5] = JUNK_EBP;
    let mut s = SnippetState {
        gpr,
        eflags: (input.flags & ALL) | FIXED1,
        data: input.mem.clone(),
        ..SnippetState::default()
    };
    let end = run_snippet32(code, &mut s);
    let mut r = [0u32; 5];
    for (i, &g) in GPR_INDEX.iter().enumerate() {
        r[i] = s.gpr[g];
    }
    if input.ptrs {
        r[3] = r[3].wrapping_sub(DATA_BASE);
        r[4] = r[4].wrapping_sub(DATA_BASE);
    }
    (
        end,
        Outcome {
            r,
            flags: s.eflags & ALL,
            mem: s.data,
        },
        [s.gpr[3], s.gpr[4], s.gpr[5]],
    )
}

fn describe_input(input: &Input) -> String {
    let mut s = String::new();
    for (i, name) in REG_NAMES.iter().enumerate() {
        let _ = write!(s, "{name}={:08x} ", input.r[i]);
    }
    let _ = write!(
        s,
        "flags={:03x} [{}]",
        input.flags & ALL,
        flag_names(input.flags & ALL)
    );
    if input.ptrs {
        let _ = write!(
            s,
            " (esi/edi: offsets into a {}-byte buffer)",
            input.mem.len()
        );
    }
    s
}

/// Failures of one family, at most `MAX_REPORT` lines per instruction.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    failed_insns: Vec<(String, usize, usize)>,
}

const MAX_REPORT: usize = 20;

impl Report {
    fn finish(self, family: &str) {
        if self.failed_insns.is_empty() {
            return;
        }
        let mut s = format!("{family}: interpreter disagrees with the host CPU\n");
        for (name, bad, total) in &self.failed_insns {
            let _ = writeln!(s, "  {name:<32} {bad} of {total} cases");
        }
        s.push('\n');
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        panic!("{s}");
    }

    fn add(&mut self, insn: &str, bad: usize, total: usize, lines: Vec<String>) {
        if bad > 0 {
            self.failed_insns.push((show(insn), bad, total));
            self.lines.extend(lines);
        }
    }
}

/// Compares one case; returns a description of the mismatch.
fn compare(insn: &Insn, code: &[u8], input: &Input, judge: &Judge) -> Option<String> {
    let (end, got, [ebx, esp, ebp]) = run_interp(code, input);
    let head = format!("{} | in: {}", show(insn.text), describe_input(input));
    if judge.de {
        return match end {
            SnippetEnd::Exception(e) if e.vector == 0 => {
                if got.r != input.r {
                    Some(format!(
                        "{head}\n    #DE raised but registers changed: {}",
                        fmt_regs(&got.r)
                    ))
                } else {
                    None
                }
            }
            other => Some(format!(
                "{head}\n    expected #DE (vector 0), interpreter: {other:?} {} flags={:03x}",
                fmt_regs(&got.r),
                got.flags
            )),
        };
    }
    let want = run_native(insn, input);
    let mut diffs = Vec::new();
    if end != SnippetEnd::Done {
        diffs.push(format!("interpreter ended with {end:?}"));
    }
    for (i, &m) in judge.regs.iter().enumerate() {
        if (want.r[i] ^ got.r[i]) & m != 0 {
            diffs.push(format!(
                "{}: native {:08x} interp {:08x}{}",
                REG_NAMES[i],
                want.r[i],
                got.r[i],
                if m == u32::MAX {
                    String::new()
                } else {
                    format!(" (compared bits {m:08x})")
                }
            ));
        }
    }
    let fm = judge.flags & ALL;
    if (want.flags ^ got.flags) & fm != 0 {
        diffs.push(format!(
            "flags: native {:03x} [{}] interp {:03x} [{}] compared {:03x}: wrong {}",
            want.flags,
            flag_names(want.flags),
            got.flags,
            flag_names(got.flags),
            fm,
            flag_names((want.flags ^ got.flags) & fm)
        ));
    }
    if want.mem != got.mem {
        let first = want
            .mem
            .iter()
            .zip(&got.mem)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let end = (first + 16).min(want.mem.len());
        diffs.push(format!(
            "memory differs from offset {first:#x}: native {:02x?} interp {:02x?}",
            &want.mem[first..end],
            &got.mem[first..end.min(got.mem.len())]
        ));
    }
    if ebx != JUNK_EBX || esp != STACK_TOP || ebp != JUNK_EBP {
        diffs.push(format!(
            "untouched registers changed: ebx={ebx:08x} esp={esp:08x} ebp={ebp:08x}"
        ));
    }
    if diffs.is_empty() {
        None
    } else {
        Some(format!(
            "{head}\n    native: {}flags={:03x}\n    interp: {}flags={:03x}\n    {}",
            fmt_regs(&want.r),
            want.flags,
            fmt_regs(&got.r),
            got.flags,
            diffs.join("\n    ")
        ))
    }
}

/// An instruction text on one line.
fn show(text: &str) -> String {
    text.replace('\n', "; ")
}

fn fmt_regs(r: &[u32; 5]) -> String {
    let mut s = String::new();
    for (i, name) in REG_NAMES.iter().enumerate() {
        let _ = write!(s, "{name}={:08x} ", r[i]);
    }
    s
}

/// Runs `n` random cases of each instruction; `gen` makes the input, `judge` says what
/// to compare. `T` is whatever per-instruction detail the two need.
fn check<T>(
    report: &mut Report,
    items: &[(Insn, T)],
    n: usize,
    gen: impl Fn(&mut Rng, &T) -> Input,
    judge: impl Fn(&T, &Input) -> Judge,
) {
    for (insn, t) in items {
        let code = (insn.code)();
        assert!(!code.is_empty(), "{}: no code", insn.text);
        let mut rng = Rng::for_name(insn.text);
        let mut bad = 0;
        let mut lines = Vec::new();
        for _ in 0..n {
            let input = gen(&mut rng, t);
            let j = judge(t, &input);
            if let Some(line) = compare(insn, code, &input, &j) {
                bad += 1;
                if lines.len() < MAX_REPORT {
                    lines.push(line);
                }
            }
        }
        report.add(insn.text, bad, n, lines);
    }
}

/// Random registers: each an operand of width `w` (the bits above kept random).
fn regs_input(rng: &mut Rng, w: u32) -> Input {
    let mut r = [0u32; 5];
    for v in &mut r {
        *v = rng.operand(w);
    }
    Input {
        r,
        flags: rng.flags(),
        mem: Vec::new(),
        ptrs: false,
    }
}

const N: usize = 2000;

/// Random registers and a buffer of `len` bytes of random operands; ESI and EDI hold
/// the offsets `si` and `di` into it.
fn mem_input(rng: &mut Rng, w: u32, len: usize, si: u32, di: u32) -> Input {
    let mut input = regs_input(rng, w);
    let mut mem = Vec::with_capacity(len);
    while mem.len() < len {
        mem.extend_from_slice(&rng.operand(w).to_le_bytes()[..(w / 8) as usize]);
    }
    mem.truncate(len);
    input.mem = mem;
    input.ptrs = true;
    input.r[3] = si;
    input.r[4] = di;
    input
}

/// Instruction detail shared by the simple families: operand width and whether the
/// form has a memory operand (at `[esi]`, in a 16-byte buffer with ESI at offset 4).
#[derive(Clone, Copy)]
struct Form {
    w: u32,
    mem: bool,
}

const R8: Form = Form { w: 8, mem: false };
const R16: Form = Form { w: 16, mem: false };
const R32: Form = Form { w: 32, mem: false };
const M8: Form = Form { w: 8, mem: true };
const M16: Form = Form { w: 16, mem: true };
const M32: Form = Form { w: 32, mem: true };

fn form_input(rng: &mut Rng, f: &Form) -> Input {
    if f.mem {
        mem_input(rng, f.w, 16, 4, 0)
    } else {
        regs_input(rng, f.w)
    }
}

// ---------------------------------------------------------------------------------------
// Self-check of the harness: the native side really runs what it says, and the guest
// bytes are the 32-bit encoding of the same text.

#[test]
fn harness_native_side() {
    let add = op!("add eax, ecx");
    let mut r = Regs {
        r: [0xFFFF_FFFF, 1, 0, 0, 0],
        f: 0x2,
    };
    (add.exec)(&mut r);
    assert_eq!(r.r[0] as u32, 0);
    assert_eq!(r.f as u32 & ARITH, CF | ZF | PF | AF);
    assert_eq!((add.code)(), &[0x01, 0xC8]);
    let inc = op!("inc eax");
    assert_eq!((inc.code)(), &[0x40], "32-bit encodings come from .code32");
    let mem = op!("add dword ptr [rsi], ecx", "add dword ptr [esi], ecx");
    assert_eq!((mem.code)(), &[0x01, 0x0E]);
    let movs = op!("rep movsd");
    assert_eq!((movs.code)(), &[0xF3, 0xA5]);
    // Flags in and out: every arithmetic flag and DF survive the round trip.
    let nop = op!("nop");
    let mut r = Regs {
        r: [0; 5],
        f: u64::from(ALL | FIXED1),
    };
    (nop.exec)(&mut r);
    assert_eq!(r.f as u32 & ALL, ALL);
}

/// The comparison catches a wrong flag: a fake "interpreter" outcome with one defined
/// flag flipped is reported, one with only an undefined flag flipped is not.
#[test]
fn harness_catches_a_wrong_flag() {
    let insn = op!("add eax, ecx");
    let input = Input {
        r: [0x7FFF_FFFF, 1, 0, 0, 0],
        flags: 0,
        mem: Vec::new(),
        ptrs: false,
    };
    let native = run_native(&insn, &input);
    assert_eq!(native.flags & ARITH, OF | SF | AF | PF);
    for bit in [CF, PF, AF, ZF, SF, OF] {
        let wrong = native.flags ^ bit;
        assert_ne!((native.flags ^ wrong) & ARITH, 0);
        assert_eq!((native.flags ^ wrong) & (ARITH & !bit), 0);
    }
}

/// The whole path, `check` included: a guest that gets one defined flag wrong (CMC after
/// the ADD) is reported; the same mistake in a flag masked as undefined is not; a guest
/// doing the same thing as the host passes.
#[test]
fn harness_reports_mismatches() {
    let fails = |items: Vec<(Insn, u32)>| {
        std::panic::catch_unwind(move || {
            let mut rep = Report::default();
            check(
                &mut rep,
                &items,
                200,
                |rng, _| regs_input(rng, 32),
                |&m, _| Judge::flags(m),
            );
            rep.finish("self-test");
        })
        .is_err()
    };
    assert!(fails(vec![(
        op!("add eax, ecx", "add eax, ecx\ncmc"),
        ARITH
    )]));
    assert!(!fails(vec![(
        op!("add eax, ecx", "add eax, ecx\ncmc"),
        ARITH & !CF
    )]));
    assert!(fails(vec![(op!("add eax, ecx", "adc eax, ecx"), ARITH)]));
    assert!(fails(vec![(op!("add eax, ecx", "add eax, edx"), 0)]));
    assert!(!fails(vec![(
        op!("add eax, ecx", "add eax, ecx\nnop"),
        ARITH
    )]));
}

// ---------------------------------------------------------------------------------------
// ADD ADC SUB SBB AND OR XOR CMP TEST

macro_rules! alu_forms {
    ($m:literal) => {
        vec![
            (op!(concat!($m, " al, cl")), R8),
            (op!(concat!($m, " ax, cx")), R16),
            (op!(concat!($m, " eax, ecx")), R32),
            (op!(concat!($m, " ah, dl")), R8),
            (op!(concat!($m, " dh, ch")), R8),
            (op!(concat!($m, " cl, cl")), R8),
            (op!(concat!($m, " dx, dx")), R16),
            (op!(concat!($m, " edx, edx")), R32),
            (op!(concat!($m, " al, 0x81")), R8),
            (op!(concat!($m, " dl, 0x7f")), R8),
            (op!(concat!($m, " ax, -2")), R16),
            (op!(concat!($m, " cx, 0x8001")), R16),
            (op!(concat!($m, " eax, -128")), R32),
            (op!(concat!($m, " ecx, 0x7fffffff")), R32),
            (op!(concat!($m, " edx, 0x80000000")), R32),
            (op!(concat!($m, " esi, 1")), R32),
            (
                op!(
                    concat!($m, " byte ptr [rsi], cl"),
                    concat!($m, " byte ptr [esi], cl")
                ),
                M8,
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi+2], cx"),
                    concat!($m, " word ptr [esi+2], cx")
                ),
                M16,
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi], ecx"),
                    concat!($m, " dword ptr [esi], ecx")
                ),
                M32,
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi+4], -5"),
                    concat!($m, " dword ptr [esi+4], -5")
                ),
                M32,
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi], 0x1234"),
                    concat!($m, " word ptr [esi], 0x1234")
                ),
                M16,
            ),
            (
                op!(
                    concat!($m, " byte ptr [rsi+3], 0x80"),
                    concat!($m, " byte ptr [esi+3], 0x80")
                ),
                M8,
            ),
        ]
    };
    ($m:literal, rm) => {{
        let mut v = alu_forms!($m);
        v.push((
            op!(
                concat!($m, " ecx, dword ptr [rsi+4]"),
                concat!($m, " ecx, dword ptr [esi+4]")
            ),
            M32,
        ));
        v.push((
            op!(
                concat!($m, " dl, byte ptr [rsi+1]"),
                concat!($m, " dl, byte ptr [esi+1]")
            ),
            M8,
        ));
        v.push((
            op!(
                concat!($m, " ax, word ptr [rsi+6]"),
                concat!($m, " ax, word ptr [esi+6]")
            ),
            M16,
        ));
        v
    }};
}

fn alu_family(name: &str, items: Vec<(Insn, Form)>, defined: u32) {
    // About 25 forms per mnemonic: 1000 cases each is several thousand per width.
    let mut rep = Report::default();
    check(&mut rep, &items, 1000, form_input, |_, _| {
        Judge::flags(defined)
    });
    rep.finish(name);
}

#[test]
fn alu_add_adc() {
    let mut v = alu_forms!("add", rm);
    v.extend(alu_forms!("adc", rm));
    alu_family("alu_add_adc", v, ARITH);
}

#[test]
fn alu_sub_sbb_cmp() {
    let mut v = alu_forms!("sub", rm);
    v.extend(alu_forms!("sbb", rm));
    v.extend(alu_forms!("cmp", rm));
    alu_family("alu_sub_sbb_cmp", v, ARITH);
}

#[test]
fn alu_logic() {
    // AND OR XOR TEST: OF = CF = 0, SF ZF PF from the result, AF undefined.
    let mut v = alu_forms!("and", rm);
    v.extend(alu_forms!("or", rm));
    v.extend(alu_forms!("xor", rm));
    v.extend(alu_forms!("test"));
    alu_family("alu_logic", v, ARITH & !AF);
}

// ---------------------------------------------------------------------------------------
// INC DEC NEG NOT

macro_rules! unary_forms {
    ($m:literal) => {
        vec![
            (op!(concat!($m, " al")), R8),
            (op!(concat!($m, " ch")), R8),
            (op!(concat!($m, " ax")), R16),
            (op!(concat!($m, " dx")), R16),
            (op!(concat!($m, " eax")), R32),
            (op!(concat!($m, " edi")), R32),
            (
                op!(
                    concat!($m, " byte ptr [rsi]"),
                    concat!($m, " byte ptr [esi]")
                ),
                M8,
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi+2]"),
                    concat!($m, " word ptr [esi+2]")
                ),
                M16,
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi+4]"),
                    concat!($m, " dword ptr [esi+4]")
                ),
                M32,
            ),
        ]
    };
}

#[test]
fn inc_dec_neg_not() {
    // INC/DEC keep CF; NEG sets all six; NOT changes none: all six always defined.
    let mut v = unary_forms!("inc");
    v.extend(unary_forms!("dec"));
    v.extend(unary_forms!("neg"));
    v.extend(unary_forms!("not"));
    alu_family("inc_dec_neg_not", v, ARITH);
}

// ---------------------------------------------------------------------------------------
// Flag consumers after each kind of flag producer (the lazy-flags evaluation paths)

macro_rules! per_cc {
    ($mac:ident $(, $arg:literal)*) => {
        vec![
            $mac!("o" $(, $arg)*),
            $mac!("no" $(, $arg)*),
            $mac!("b" $(, $arg)*),
            $mac!("ae" $(, $arg)*),
            $mac!("e" $(, $arg)*),
            $mac!("ne" $(, $arg)*),
            $mac!("be" $(, $arg)*),
            $mac!("a" $(, $arg)*),
            $mac!("s" $(, $arg)*),
            $mac!("ns" $(, $arg)*),
            $mac!("p" $(, $arg)*),
            $mac!("np" $(, $arg)*),
            $mac!("l" $(, $arg)*),
            $mac!("ge" $(, $arg)*),
            $mac!("le" $(, $arg)*),
            $mac!("g" $(, $arg)*),
        ]
    };
}

macro_rules! setcc_after {
    ($cc:literal, $producer:literal) => {
        op!(concat!($producer, "\nset", $cc, " dl"))
    };
}

#[test]
fn flags_consumed_after_producers() {
    // Producer then SETcc / ADC / SBB / Jcc / LAHF: every condition is evaluated from
    // what each kind of instruction recorded, not from materialised flags.
    // (form, defined flags): AF is undefined after AND/TEST, which get no LAHF.
    let mut v: Vec<(Insn, (Form, u32))> = Vec::new();
    macro_rules! producer {
        ($p:literal, $w:expr) => {
            producer!($p, $w, ARITH);
            v.push((
                op!(concat!($p, "\nlahf")),
                (Form { w: $w, mem: false }, ARITH),
            ));
        };
        ($p:literal, $w:expr, $defined:expr) => {
            let f = (Form { w: $w, mem: false }, $defined);
            for i in per_cc!(setcc_after, $p) {
                v.push((i, f));
            }
            v.push((op!(concat!($p, "\nadc edx, esi")), f));
            v.push((op!(concat!($p, "\nsbb dx, si")), f));
        };
    }
    producer!("add al, cl", 8);
    producer!("add ax, cx", 16);
    producer!("add eax, ecx", 32);
    producer!("adc eax, ecx", 32);
    producer!("adc al, cl", 8);
    producer!("sub al, cl", 8);
    producer!("sub ax, cx", 16);
    producer!("sub eax, ecx", 32);
    producer!("sbb eax, ecx", 32);
    producer!("sbb ax, cx", 16);
    producer!("cmp al, cl", 8);
    producer!("cmp ax, cx", 16);
    producer!("cmp eax, ecx", 32);
    producer!("and eax, ecx", 32, ARITH & !AF);
    producer!("test al, cl", 8, ARITH & !AF);
    producer!("inc eax", 32);
    producer!("inc al", 8);
    producer!("dec ax", 16);
    producer!("dec eax", 32);
    producer!("neg eax", 32);
    producer!("neg cl", 8);
    // Jcc after CMP (the fused fast path) and after ADD.
    macro_rules! jcc_after {
        ($cc:literal, $p:literal) => {
            op!(concat!($p, "\nj", $cc, " 4f\ninc edx\n4:"))
        };
    }
    for i in per_cc!(jcc_after, "cmp eax, ecx") {
        v.push((i, (R32, ARITH)));
    }
    for i in per_cc!(jcc_after, "cmp al, cl") {
        v.push((i, (R8, ARITH)));
    }
    for i in per_cc!(jcc_after, "add eax, ecx") {
        v.push((i, (R32, ARITH)));
    }
    let mut rep = Report::default();
    check(
        &mut rep,
        &v,
        400,
        |rng, t| form_input(rng, &t.0),
        |t, _| Judge::flags(t.1),
    );
    rep.finish("flags_consumed_after_producers");
}

// ---------------------------------------------------------------------------------------
// Shifts and rotates

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sh {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
}

#[derive(Clone, Copy)]
struct ShiftT {
    kind: Sh,
    form: Form,
    /// The immediate count, or None for CL.
    imm: Option<u32>,
}

/// The flags the SDM defines after a shift or rotate of width `w` by `count`.
fn shift_defined(kind: Sh, w: u32, count: u32) -> u32 {
    let c = count & 31;
    if c == 0 {
        return ARITH; // no flag is affected
    }
    let of = if c == 1 { OF } else { 0 };
    match kind {
        // CF is undefined for SHL/SHR counts >= the width; AF always undefined.
        Sh::Shl | Sh::Shr => SF | ZF | PF | of | if c < w { CF } else { 0 },
        Sh::Sar => SF | ZF | PF | CF | of,
        // Rotates leave SF ZF AF PF alone; OF defined for a masked count of 1 only.
        Sh::Rol | Sh::Ror | Sh::Rcl | Sh::Rcr => SF | ZF | AF | PF | CF | of,
    }
}

fn count_of(input: &Input, imm: Option<u32>) -> u32 {
    match imm {
        Some(c) => c,
        None => input.r[1] & 0xFF,
    }
}

fn shift_input(rng: &mut Rng, t: &ShiftT) -> Input {
    let mut input = form_input(rng, &t.form);
    if t.imm.is_none() {
        let c = if rng.below(8) == 0 {
            rng.u32() & 0xFF
        } else {
            rng.below(41)
        };
        input.r[1] = (input.r[1] & !0xFF) | c;
    }
    input
}

macro_rules! shift_forms {
    ($m:literal, $k:expr) => {
        vec![
            (
                op!(concat!($m, " al, cl")),
                ShiftT {
                    kind: $k,
                    form: R8,
                    imm: None,
                },
            ),
            (
                op!(concat!($m, " dh, cl")),
                ShiftT {
                    kind: $k,
                    form: R8,
                    imm: None,
                },
            ),
            (
                op!(concat!($m, " ax, cl")),
                ShiftT {
                    kind: $k,
                    form: R16,
                    imm: None,
                },
            ),
            (
                op!(concat!($m, " eax, cl")),
                ShiftT {
                    kind: $k,
                    form: R32,
                    imm: None,
                },
            ),
            (
                op!(concat!($m, " edx, cl")),
                ShiftT {
                    kind: $k,
                    form: R32,
                    imm: None,
                },
            ),
            (
                op!(concat!($m, " al, 1")),
                ShiftT {
                    kind: $k,
                    form: R8,
                    imm: Some(1),
                },
            ),
            (
                op!(concat!($m, " cx, 1")),
                ShiftT {
                    kind: $k,
                    form: R16,
                    imm: Some(1),
                },
            ),
            (
                op!(concat!($m, " eax, 1")),
                ShiftT {
                    kind: $k,
                    form: R32,
                    imm: Some(1),
                },
            ),
            (
                op!(concat!($m, " dl, 3")),
                ShiftT {
                    kind: $k,
                    form: R8,
                    imm: Some(3),
                },
            ),
            (
                op!(concat!($m, " cl, 9")),
                ShiftT {
                    kind: $k,
                    form: R8,
                    imm: Some(9),
                },
            ),
            (
                op!(concat!($m, " ax, 12")),
                ShiftT {
                    kind: $k,
                    form: R16,
                    imm: Some(12),
                },
            ),
            (
                op!(concat!($m, " si, 17")),
                ShiftT {
                    kind: $k,
                    form: R16,
                    imm: Some(17),
                },
            ),
            (
                op!(concat!($m, " edx, 31")),
                ShiftT {
                    kind: $k,
                    form: R32,
                    imm: Some(31),
                },
            ),
            (
                op!(concat!($m, " ecx, 8")),
                ShiftT {
                    kind: $k,
                    form: R32,
                    imm: Some(8),
                },
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi], cl"),
                    concat!($m, " dword ptr [esi], cl")
                ),
                ShiftT {
                    kind: $k,
                    form: M32,
                    imm: None,
                },
            ),
            (
                op!(
                    concat!($m, " byte ptr [rsi+1], 1"),
                    concat!($m, " byte ptr [esi+1], 1")
                ),
                ShiftT {
                    kind: $k,
                    form: M8,
                    imm: Some(1),
                },
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi+2], 5"),
                    concat!($m, " word ptr [esi+2], 5")
                ),
                ShiftT {
                    kind: $k,
                    form: M16,
                    imm: Some(5),
                },
            ),
        ]
    };
}

fn shift_family(name: &str, items: Vec<(Insn, ShiftT)>) {
    let mut rep = Report::default();
    check(&mut rep, &items, N, shift_input, |t, input| {
        Judge::flags(shift_defined(t.kind, t.form.w, count_of(input, t.imm)))
    });
    rep.finish(name);
}

#[test]
fn shift_shl_shr_sar() {
    let mut v = shift_forms!("shl", Sh::Shl);
    v.extend(shift_forms!("shr", Sh::Shr));
    v.extend(shift_forms!("sar", Sh::Sar));
    shift_family("shift_shl_shr_sar", v);
}

#[test]
fn shift_rol_ror() {
    let mut v = shift_forms!("rol", Sh::Rol);
    v.extend(shift_forms!("ror", Sh::Ror));
    shift_family("shift_rol_ror", v);
}

#[test]
fn shift_rcl_rcr() {
    let mut v = shift_forms!("rcl", Sh::Rcl);
    v.extend(shift_forms!("rcr", Sh::Rcr));
    shift_family("shift_rcl_rcr", v);
}

#[test]
fn shift_shld_shrd() {
    // (form, immediate count); the destination is EAX/AX or the dword at [esi].
    let items = vec![
        (
            op!("shld ax, dx, cl"),
            ShiftT {
                kind: Sh::Shl,
                form: R16,
                imm: None,
            },
        ),
        (
            op!("shld eax, edx, cl"),
            ShiftT {
                kind: Sh::Shl,
                form: R32,
                imm: None,
            },
        ),
        (
            op!("shrd ax, dx, cl"),
            ShiftT {
                kind: Sh::Shr,
                form: R16,
                imm: None,
            },
        ),
        (
            op!("shrd eax, edx, cl"),
            ShiftT {
                kind: Sh::Shr,
                form: R32,
                imm: None,
            },
        ),
        (
            op!("shld eax, edx, 1"),
            ShiftT {
                kind: Sh::Shl,
                form: R32,
                imm: Some(1),
            },
        ),
        (
            op!("shrd eax, edx, 1"),
            ShiftT {
                kind: Sh::Shr,
                form: R32,
                imm: Some(1),
            },
        ),
        (
            op!("shld ax, dx, 1"),
            ShiftT {
                kind: Sh::Shl,
                form: R16,
                imm: Some(1),
            },
        ),
        (
            op!("shrd ax, dx, 1"),
            ShiftT {
                kind: Sh::Shr,
                form: R16,
                imm: Some(1),
            },
        ),
        (
            op!("shld eax, edx, 12"),
            ShiftT {
                kind: Sh::Shl,
                form: R32,
                imm: Some(12),
            },
        ),
        (
            op!("shrd ax, dx, 16"),
            ShiftT {
                kind: Sh::Shr,
                form: R16,
                imm: Some(16),
            },
        ),
        (
            op!("shrd eax, edx, 31"),
            ShiftT {
                kind: Sh::Shr,
                form: R32,
                imm: Some(31),
            },
        ),
        (
            op!(
                "shld dword ptr [rsi], edx, cl",
                "shld dword ptr [esi], edx, cl"
            ),
            ShiftT {
                kind: Sh::Shl,
                form: M32,
                imm: None,
            },
        ),
        (
            op!(
                "shrd dword ptr [rsi], edx, cl",
                "shrd dword ptr [esi], edx, cl"
            ),
            ShiftT {
                kind: Sh::Shr,
                form: M32,
                imm: None,
            },
        ),
    ];
    let mut rep = Report::default();
    check(&mut rep, &items, N, shift_input, |t, input| {
        let w = t.form.w;
        let c = count_of(input, t.imm) & 31;
        if c == 0 {
            return Judge::flags(ARITH);
        }
        if c > w {
            // Result and flags undefined (16-bit counts 17..31).
            let mut j = Judge::flags(0);
            j.regs[0] = !mask(w);
            return j;
        }
        Judge::flags(SF | ZF | PF | CF | if c == 1 { OF } else { 0 })
    });
    rep.finish("shift_shld_shrd");
}

// ---------------------------------------------------------------------------------------
// MUL IMUL DIV IDIV

#[test]
fn mul_imul() {
    // CF and OF defined; SF ZF AF PF undefined.
    let items = vec![
        (op!("mul cl"), R8),
        (op!("mul cx"), R16),
        (op!("mul ecx"), R32),
        (op!("mul al"), R8),
        (op!("mul dword ptr [rsi]", "mul dword ptr [esi]"), M32),
        (op!("imul cl"), R8),
        (op!("imul ch"), R8),
        (op!("imul cx"), R16),
        (op!("imul ecx"), R32),
        (op!("imul word ptr [rsi]", "imul word ptr [esi]"), M16),
        (op!("imul ax, cx"), R16),
        (op!("imul eax, ecx"), R32),
        (op!("imul edx, esi"), R32),
        (
            op!("imul ecx, dword ptr [rsi+4]", "imul ecx, dword ptr [esi+4]"),
            M32,
        ),
        (op!("imul ax, cx, 7"), R16),
        (op!("imul ax, cx, -3"), R16),
        (op!("imul dx, ax, 0x4321"), R16),
        (op!("imul eax, ecx, 7"), R32),
        (op!("imul eax, ecx, -128"), R32),
        (op!("imul edx, edx, 0x12345678"), R32),
        (op!("imul eax, ecx, 0x80000000"), R32),
        (
            op!(
                "imul edx, dword ptr [rsi], -2",
                "imul edx, dword ptr [esi], -2"
            ),
            M32,
        ),
    ];
    let mut rep = Report::default();
    check(&mut rep, &items, N, form_input, |_, _| {
        Judge::flags(CF | OF)
    });
    rep.finish("mul_imul");
}

#[derive(Clone, Copy)]
struct DivT {
    w: u32,
    signed: bool,
    /// The divisor register (index into the five) or None for the dword/word/byte at [esi].
    src: Option<usize>,
    /// The divisor is AH (8-bit only).
    ah: bool,
}

fn sext(v: u32, w: u32) -> i64 {
    let sh = 64 - w;
    (i64::from(v) << sh) >> sh
}

/// The dividend, the divisor, and the quotient the division would produce (i128 so
/// that nothing overflows), or None for a zero divisor.
fn div_parts(t: &DivT, input: &Input) -> (i128, i128, Option<i128>) {
    let w = t.w;
    let m = u64::from(mask(w));
    let divisor_bits = match t.src {
        _ if t.ah => u64::from(input.r[0] >> 8 & 0xFF),
        Some(i) => u64::from(input.r[i]) & m,
        None => {
            let b = &input.mem[input.r[3] as usize..];
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) & m
        }
    };
    let (lo, hi) = match w {
        8 => (
            u64::from(input.r[0]) & 0xFF,
            u64::from(input.r[0] >> 8) & 0xFF,
        ),
        _ => (u64::from(input.r[0]) & m, u64::from(input.r[2]) & m),
    };
    let dividend_bits = (hi << w) | lo;
    let (n, d) = if t.signed {
        (
            i128::from(sext_wide(dividend_bits, 2 * w)),
            i128::from(sext(divisor_bits as u32, w)),
        )
    } else {
        (i128::from(dividend_bits), i128::from(divisor_bits))
    };
    if d == 0 {
        (n, d, None)
    } else {
        (n, d, Some(n / d))
    }
}

fn sext_wide(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits;
    ((v << sh) as i64) >> sh
}

fn div_de(t: &DivT, input: &Input) -> bool {
    match div_parts(t, input).2 {
        None => true,
        Some(q) => {
            if t.signed {
                let lim = 1i128 << (t.w - 1);
                q < -lim || q >= lim
            } else {
                q > i128::from(mask(t.w))
            }
        }
    }
}

fn div_input(rng: &mut Rng, t: &DivT) -> Input {
    loop {
        let mut input = if t.src.is_none() {
            mem_input(rng, t.w, 16, 4, 0)
        } else {
            regs_input(rng, t.w)
        };
        // Mostly make the quotient fit: a small high half (DIV) or a sign-extended
        // dividend (IDIV); the rest stay random and mostly fault.
        if rng.below(4) != 0 {
            let w = t.w;
            let lo = match w {
                8 => input.r[0] & 0xFF,
                _ => input.r[0] & mask(w),
            };
            let hi = if t.signed {
                if sext(lo, w) < 0 {
                    mask(w)
                } else {
                    0
                }
            } else {
                rng.below(4) & mask(w)
            };
            if w == 8 {
                input.r[0] = (input.r[0] & !0xFF00) | hi << 8;
            } else {
                input.r[2] = (input.r[2] & !mask(w)) | hi;
            }
        }
        if rng.below(16) == 0 {
            // A zero divisor.
            match t.src {
                _ if t.ah => input.r[0] &= !0xFF00,
                Some(i) => input.r[i] &= !mask(t.w),
                None => {
                    let o = input.r[3] as usize;
                    for b in &mut input.mem[o..o + (t.w / 8) as usize] {
                        *b = 0;
                    }
                }
            }
        }
        // The most negative quotient of IDIV is legal per the SDM but faulted on some
        // older processors: keep it out of the native runs (idiv_edges covers it).
        if t.signed {
            if let (_, _, Some(q)) = div_parts(t, &input) {
                if q == -(1i128 << (t.w - 1)) {
                    continue;
                }
            }
        }
        return input;
    }
}

#[test]
fn div_idiv() {
    let items = vec![
        (
            op!("div cl"),
            DivT {
                w: 8,
                signed: false,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("div cx"),
            DivT {
                w: 16,
                signed: false,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("div ecx"),
            DivT {
                w: 32,
                signed: false,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("div esi"),
            DivT {
                w: 32,
                signed: false,
                src: Some(3),
                ah: false,
            },
        ),
        (
            op!("div dword ptr [rsi]", "div dword ptr [esi]"),
            DivT {
                w: 32,
                signed: false,
                src: None,
                ah: false,
            },
        ),
        (
            op!("idiv cl"),
            DivT {
                w: 8,
                signed: true,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("idiv cx"),
            DivT {
                w: 16,
                signed: true,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("idiv ecx"),
            DivT {
                w: 32,
                signed: true,
                src: Some(1),
                ah: false,
            },
        ),
        (
            op!("idiv word ptr [rsi]", "idiv word ptr [esi]"),
            DivT {
                w: 16,
                signed: true,
                src: None,
                ah: false,
            },
        ),
        (
            op!("div ah"),
            DivT {
                w: 8,
                signed: false,
                src: None,
                ah: true,
            },
        ),
    ];
    // The generator must give mostly divisions that complete, and some that fault
    // (except for DIV AH, which always faults: AX / AH >= 256).
    for (insn, t) in items.iter().filter(|(_, t)| !t.ah) {
        let mut rng = Rng::for_name(insn.text);
        let de = (0..N)
            .filter(|_| div_de(t, &div_input(&mut rng, t)))
            .count();
        assert!(
            de > N / 20 && de < N / 2,
            "{}: {de} of {N} generated cases fault",
            insn.text
        );
    }
    let mut rep = Report::default();
    check(&mut rep, &items, N, div_input, |t, input| Judge {
        flags: 0,
        regs: [u32::MAX; 5],
        de: div_de(t, input),
    });
    rep.finish("div_idiv");
}

/// Hand-picked divisions: the most negative quotient (legal per the SDM) checked against
/// the SDM, and the classic #DE cases.
#[test]
fn idiv_edges() {
    // (code, eax, ecx, edx, expected eax, expected edx) or None for #DE.
    let idiv_cl = [0xF6, 0xF9];
    let idiv_ecx = [0xF7, 0xF9];
    let idiv_cx = [0x66, 0xF7, 0xF9];
    let div_ecx = [0xF7, 0xF1];
    #[allow(clippy::type_complexity)]
    let cases: [(&[u8], u32, u32, u32, Option<(u32, u32)>); 9] = [
        // -128 / 1 = -128 r 0: AL = 0x80, AH = 0
        (&idiv_cl, 0xFF80, 0x01, 0, Some((0x0080, 0))),
        // -256 / 2 = -128 r 0: AL = 0x80, AH = 0
        (&idiv_cl, 0xFF00, 0x02, 0, Some((0x0080, 0))),
        // -128 / -1 = 128: #DE
        (&idiv_cl, 0xFF80, 0xFF, 0, None),
        // 0x80000000 / -1 (EDX sign-extended): #DE
        (&idiv_ecx, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF, None),
        // -2^31 / 1 = -2^31
        (
            &idiv_ecx,
            0x8000_0000,
            1,
            0xFFFF_FFFF,
            Some((0x8000_0000, 0)),
        ),
        // -32768 / -1: #DE
        (&idiv_cx, 0x8000, 0xFFFF, 0xFFFF, None),
        // 7 / -2 = -3 r 1 (truncation toward zero)
        (&idiv_cx, 7, 0xFFFE, 0, Some((0xFFFD, 1))),
        // 2^32 / 1: #DE
        (&div_ecx, 0, 1, 1, None),
        // x / 0: #DE
        (&div_ecx, 5, 0, 0, None),
    ];
    let mut failures = Vec::new();
    for (code, eax, ecx, edx, want) in cases {
        let mut s = SnippetState {
            data: Vec::new(),
            ..SnippetState::default()
        };
        s.gpr[0] = eax;
        s.gpr[1] = ecx;
        s.gpr[2] = edx;
        let end = run_snippet32(code, &mut s);
        let ok = match want {
            None => {
                matches!(end, SnippetEnd::Exception(e) if e.vector == 0)
                    && s.gpr[0] == eax
                    && s.gpr[2] == edx
            }
            Some((a, d)) => {
                let dm = if code == idiv_cx { 0xFFFF } else { u32::MAX };
                let am = if code == idiv_cl { 0xFFFF } else { dm };
                end == SnippetEnd::Done
                    && s.gpr[0] & am == a & am
                    && (code == idiv_cl || s.gpr[2] & dm == d & dm)
            }
        };
        if !ok {
            failures.push(format!(
                "{code:02x?} eax={eax:08x} ecx={ecx:08x} edx={edx:08x}: want {want:x?}, \
                 interpreter {end:?} eax={:08x} edx={:08x}",
                s.gpr[0], s.gpr[2]
            ));
        }
    }
    assert!(failures.is_empty(), "idiv_edges:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// BT BTS BTR BTC, BSF BSR, BSWAP

#[derive(Clone, Copy)]
struct BitT {
    form: Form,
    /// A memory form with the bit offset in (E)DX: a bit string around [esi].
    reg_offset: bool,
}

fn bit_input(rng: &mut Rng, t: &BitT) -> Input {
    if !t.form.mem {
        return regs_input(rng, t.form.w);
    }
    // ESI in the middle of 256 bytes; the offset reaches 128 bytes either way.
    let mut input = mem_input(rng, t.form.w, 256, 128, 0);
    if t.reg_offset {
        let off = rng.below(2048) as i32 - 1024;
        if t.form.w == 16 {
            let off = off / 2; // 16-bit offsets address words: stay within +-64 bytes
            input.r[2] = (input.r[2] & !0xFFFF) | (off as u32 & 0xFFFF);
        } else {
            input.r[2] = off as u32;
        }
    }
    input
}

macro_rules! bt_forms {
    ($m:literal) => {
        vec![
            (
                op!(concat!($m, " cx, dx")),
                BitT {
                    form: R16,
                    reg_offset: false,
                },
            ),
            (
                op!(concat!($m, " ecx, edx")),
                BitT {
                    form: R32,
                    reg_offset: false,
                },
            ),
            (
                op!(concat!($m, " eax, eax")),
                BitT {
                    form: R32,
                    reg_offset: false,
                },
            ),
            (
                op!(concat!($m, " ecx, 35")),
                BitT {
                    form: R32,
                    reg_offset: false,
                },
            ),
            (
                op!(concat!($m, " ax, 15")),
                BitT {
                    form: R16,
                    reg_offset: false,
                },
            ),
            (
                op!(concat!($m, " edx, 31")),
                BitT {
                    form: R32,
                    reg_offset: false,
                },
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi], dx"),
                    concat!($m, " word ptr [esi], dx")
                ),
                BitT {
                    form: M16,
                    reg_offset: true,
                },
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi], edx"),
                    concat!($m, " dword ptr [esi], edx")
                ),
                BitT {
                    form: M32,
                    reg_offset: true,
                },
            ),
            (
                op!(
                    concat!($m, " dword ptr [rsi], 45"),
                    concat!($m, " dword ptr [esi], 45")
                ),
                BitT {
                    form: M32,
                    reg_offset: false,
                },
            ),
            (
                op!(
                    concat!($m, " word ptr [rsi+2], 4"),
                    concat!($m, " word ptr [esi+2], 4")
                ),
                BitT {
                    form: M16,
                    reg_offset: false,
                },
            ),
        ]
    };
}

#[test]
fn bit_test() {
    // CF = the bit; ZF unaffected; OF SF AF PF undefined.
    let mut v = bt_forms!("bt");
    v.extend(bt_forms!("bts"));
    v.extend(bt_forms!("btr"));
    v.extend(bt_forms!("btc"));
    let mut rep = Report::default();
    check(&mut rep, &v, N, bit_input, |_, _| Judge::flags(CF | ZF));
    rep.finish("bit_test");
}

#[test]
fn bit_scan() {
    // ZF = (source == 0); the rest undefined. A zero source leaves the destination as
    // it was (what every processor does; the host shows it).
    // (form, the source register for register forms)
    let items = vec![
        (op!("bsf ax, cx"), (R16, 1)),
        (op!("bsf eax, ecx"), (R32, 1)),
        (op!("bsf edx, edx"), (R32, 2)),
        (op!("bsr ax, cx"), (R16, 1)),
        (op!("bsr eax, ecx"), (R32, 1)),
        (op!("bsr ecx, eax"), (R32, 0)),
        (
            op!("bsf edx, dword ptr [rsi+4]", "bsf edx, dword ptr [esi+4]"),
            (M32, 0),
        ),
        (
            op!("bsr dx, word ptr [rsi+2]", "bsr dx, word ptr [esi+2]"),
            (M16, 0),
        ),
        (
            op!("bsr eax, dword ptr [rsi]", "bsr eax, dword ptr [esi]"),
            (M32, 0),
        ),
    ];
    let mut rep = Report::default();
    check(
        &mut rep,
        &items,
        N,
        |rng, &(f, src)| {
            let mut input = form_input(rng, &f);
            if rng.below(6) == 0 {
                if f.mem {
                    input.mem.iter_mut().for_each(|b| *b = 0);
                } else {
                    input.r[src] &= !mask(f.w);
                }
            }
            input
        },
        |_, _| Judge::flags(ZF),
    );
    rep.finish("bit_scan");
}

#[test]
fn bswap() {
    let items = vec![
        (op!("bswap eax"), R32),
        (op!("bswap ecx"), R32),
        (op!("bswap edx"), R32),
        (op!("bswap edi"), R32),
    ];
    let mut rep = Report::default();
    check(&mut rep, &items, N, form_input, |_, _| Judge::flags(ARITH));
    rep.finish("bswap");
}

// ---------------------------------------------------------------------------------------
// XADD CMPXCHG

#[derive(Clone, Copy)]
struct XT {
    form: Form,
    /// Memory forms: the destination's offset from ESI.
    off: usize,
}

#[test]
fn xadd() {
    let items = vec![
        (op!("xadd cl, dl"), XT { form: R8, off: 0 }),
        (op!("xadd ah, dl"), XT { form: R8, off: 0 }),
        (op!("xadd cx, dx"), XT { form: R16, off: 0 }),
        (op!("xadd ecx, edx"), XT { form: R32, off: 0 }),
        (
            op!("xadd byte ptr [rsi], dl", "xadd byte ptr [esi], dl"),
            XT { form: M8, off: 0 },
        ),
        (
            op!("xadd word ptr [rsi+2], dx", "xadd word ptr [esi+2], dx"),
            XT { form: M16, off: 2 },
        ),
        (
            op!("xadd dword ptr [rsi+4], edx", "xadd dword ptr [esi+4], edx"),
            XT { form: M32, off: 4 },
        ),
    ];
    let mut rep = Report::default();
    check(
        &mut rep,
        &items,
        N,
        |rng, t| form_input(rng, &t.form),
        |_, _| Judge::flags(ARITH),
    );
    rep.finish("xadd");
}

#[test]
fn cmpxchg() {
    // Flags as CMP accumulator, destination. Half the cases are made equal.
    let items = vec![
        (op!("cmpxchg cl, dl"), XT { form: R8, off: 0 }),
        (op!("cmpxchg cx, dx"), XT { form: R16, off: 0 }),
        (op!("cmpxchg ecx, edx"), XT { form: R32, off: 0 }),
        (op!("cmpxchg eax, edx"), XT { form: R32, off: 0 }),
        (
            op!("cmpxchg byte ptr [rsi], dl", "cmpxchg byte ptr [esi], dl"),
            XT { form: M8, off: 0 },
        ),
        (
            op!(
                "cmpxchg word ptr [rsi+2], dx",
                "cmpxchg word ptr [esi+2], dx"
            ),
            XT { form: M16, off: 2 },
        ),
        (
            op!(
                "cmpxchg dword ptr [rsi+4], edx",
                "cmpxchg dword ptr [esi+4], edx"
            ),
            XT { form: M32, off: 4 },
        ),
    ];
    let mut rep = Report::default();
    check(
        &mut rep,
        &items,
        N,
        |rng, t| {
            let mut input = form_input(rng, &t.form);
            if rng.below(2) == 0 {
                let m = mask(t.form.w);
                let acc = input.r[0] & m;
                if t.form.mem {
                    let o = input.r[3] as usize + t.off;
                    let n = (t.form.w / 8) as usize;
                    input.mem[o..o + n].copy_from_slice(&acc.to_le_bytes()[..n]);
                } else {
                    input.r[1] = (input.r[1] & !m) | acc;
                }
            }
            input
        },
        |_, _| Judge::flags(ARITH),
    );
    rep.finish("cmpxchg");
}

// ---------------------------------------------------------------------------------------
// CMOVcc SETcc (random input flags: every condition, both outcomes)

#[test]
fn cmovcc() {
    macro_rules! cmov {
        ($cc:literal) => {
            [
                (op!(concat!("cmov", $cc, " ax, cx")), R16),
                (op!(concat!("cmov", $cc, " eax, ecx")), R32),
                (
                    op!(
                        concat!("cmov", $cc, " edx, dword ptr [rsi+4]"),
                        concat!("cmov", $cc, " edx, dword ptr [esi+4]")
                    ),
                    M32,
                ),
            ]
        };
    }
    let items: Vec<(Insn, Form)> = per_cc!(cmov).into_iter().flatten().collect();
    let mut rep = Report::default();
    check(&mut rep, &items, 1000, form_input, |_, _| {
        Judge::flags(ARITH)
    });
    rep.finish("cmovcc");
}

#[test]
fn setcc() {
    macro_rules! set {
        ($cc:literal) => {
            [
                (op!(concat!("set", $cc, " al")), R8),
                (op!(concat!("set", $cc, " dh")), R8),
                (
                    op!(
                        concat!("set", $cc, " byte ptr [rsi+1]"),
                        concat!("set", $cc, " byte ptr [esi+1]")
                    ),
                    M8,
                ),
            ]
        };
    }
    let items: Vec<(Insn, Form)> = per_cc!(set).into_iter().flatten().collect();
    let mut rep = Report::default();
    check(&mut rep, &items, 1000, form_input, |_, _| {
        Judge::flags(ARITH)
    });
    rep.finish("setcc");
}

// ---------------------------------------------------------------------------------------
// Moves: CBW CWDE CWD CDQ, MOV, MOVZX, MOVSX, XCHG, LEA

#[test]
fn moves() {
    let items = vec![
        (op!("cbw"), R8),
        (op!("cwde"), R16),
        (op!("cwd"), R16),
        (op!("cdq"), R32),
        (op!("mov al, dh"), R8),
        (op!("mov cx, dx"), R16),
        (op!("mov edx, esi"), R32),
        (op!("mov ah, 0x5a"), R8),
        (op!("mov cx, 0x8001"), R16),
        (op!("mov edi, 0x12345678"), R32),
        (
            op!("mov ecx, dword ptr [rsi+4]", "mov ecx, dword ptr [esi+4]"),
            M32,
        ),
        (
            op!("mov word ptr [rsi+2], dx", "mov word ptr [esi+2], dx"),
            M16,
        ),
        (
            op!("mov byte ptr [rsi+1], 0x99", "mov byte ptr [esi+1], 0x99"),
            M8,
        ),
        (op!("movzx eax, cl"), R8),
        (op!("movzx ax, ch"), R8),
        (op!("movzx edx, cx"), R16),
        (op!("movsx eax, cl"), R8),
        (op!("movsx ax, dh"), R8),
        (op!("movsx edx, cx"), R16),
        (
            op!("movsx ecx, byte ptr [rsi+3]", "movsx ecx, byte ptr [esi+3]"),
            M8,
        ),
        (
            op!("movzx ecx, word ptr [rsi+2]", "movzx ecx, word ptr [esi+2]"),
            M16,
        ),
        (op!("xchg eax, ecx"), R32),
        (op!("xchg edx, edi"), R32),
        (op!("xchg cx, dx"), R16),
        (op!("xchg al, ch"), R8),
        (
            op!("xchg edx, dword ptr [rsi+4]", "xchg edx, dword ptr [esi+4]"),
            M32,
        ),
        (op!("lea eax, [ecx+edx*4+0x1234]"), R32),
        (op!("lea eax, [ecx+edx]"), R32),
        (op!("lea edx, [edx*8-5]"), R32),
        (op!("lea ecx, [esi+edi*2+0x7fffffff]"), R32),
        (op!("lea edi, [eax-0x80]"), R32),
        (op!("lea ax, [ecx+edx*2-7]"), R16),
        (op!("lea esi, [eax+ecx*1]"), R32),
    ];
    let mut rep = Report::default();
    check(&mut rep, &items, N, form_input, |_, _| Judge::flags(ARITH));
    rep.finish("moves");
}

// ---------------------------------------------------------------------------------------
// Flag instructions

#[test]
fn flag_instructions() {
    let items = vec![
        (op!("clc"), R32),
        (op!("stc"), R32),
        (op!("cmc"), R32),
        (op!("cld"), R32),
        (op!("std"), R32),
        (op!("lahf"), R32),
        (op!("sahf"), R32),
        (op!("nop"), R32),
    ];
    let mut rep = Report::default();
    check(
        &mut rep,
        &items,
        500,
        |rng, f| {
            let mut input = form_input(rng, f);
            input.flags |= rng.u32() & DF;
            input
        },
        |_, _| Judge::flags(ALL),
    );
    rep.finish("flag_instructions");
}

// ---------------------------------------------------------------------------------------
// String instructions

#[derive(Clone, Copy, PartialEq, Eq)]
enum Str {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
}

#[derive(Clone, Copy)]
struct StrT {
    kind: Str,
    size: u32,
    rep: bool,
}

const STR_LEN: u32 = 512;

fn string_input(rng: &mut Rng, t: &StrT) -> Input {
    let size = t.size;
    let df = rng.below(2) == 1;
    let count = if t.rep {
        match rng.below(8) {
            0 => 0,
            1 => 1,
            2 => rng.below(4),
            _ => rng.below(96),
        }
    } else {
        1
    };
    // Each pointer walks `span` bytes, up from its start (DF=0) or down to it (DF=1).
    let span = count.max(1) * size;
    let pick = |rng: &mut Rng| -> (u32, u32) {
        let lo = rng.below(STR_LEN - span + 1);
        (lo, if df { lo + span - size } else { lo })
    };
    let (s_lo, si) = pick(rng);
    let (d_lo, di) = pick(rng);
    let small = rng.below(2) == 0;
    let mut mem: Vec<u8> = (0..STR_LEN)
        .map(|_| {
            if small {
                rng.below(4) as u8
            } else {
                rng.u32() as u8
            }
        })
        .collect();
    let (s_lo, d_lo, span_u) = (s_lo as usize, d_lo as usize, span as usize);
    if t.kind == Str::Cmps {
        // Equal strings with a few differences, so REPE runs long.
        mem.copy_within(s_lo..s_lo + span_u, d_lo);
        for _ in 0..rng.below(3) {
            let k = d_lo + rng.below(span) as usize;
            mem[k] = rng.u32() as u8;
        }
    }
    let mut r = [rng.u32(), rng.u32(), rng.u32(), si, di];
    if t.rep {
        r[1] = count;
    }
    if t.kind == Str::Scas && rng.below(2) == 0 {
        // Look for an element that is there.
        let k = d_lo + (rng.below(count.max(1)) * size) as usize;
        let mut v = [0u8; 4];
        v[..size as usize].copy_from_slice(&mem[k..k + size as usize]);
        let m = mask(size * 8);
        r[0] = (r[0] & !m) | u32::from_le_bytes(v);
    }
    Input {
        r,
        flags: rng.flags() | if df { DF } else { 0 },
        mem,
        ptrs: true,
    }
}

#[test]
fn string_ops() {
    macro_rules! s {
        ($text:literal, $kind:expr, $size:expr, $rep:expr) => {
            (
                op!($text),
                StrT {
                    kind: $kind,
                    size: $size,
                    rep: $rep,
                },
            )
        };
    }
    let items = vec![
        s!("movsb", Str::Movs, 1, false),
        s!("movsw", Str::Movs, 2, false),
        s!("movsd", Str::Movs, 4, false),
        s!("rep movsb", Str::Movs, 1, true),
        s!("rep movsw", Str::Movs, 2, true),
        s!("rep movsd", Str::Movs, 4, true),
        s!("stosb", Str::Stos, 1, false),
        s!("stosd", Str::Stos, 4, false),
        s!("rep stosb", Str::Stos, 1, true),
        s!("rep stosw", Str::Stos, 2, true),
        s!("rep stosd", Str::Stos, 4, true),
        s!("lodsb", Str::Lods, 1, false),
        s!("lodsw", Str::Lods, 2, false),
        s!("lodsd", Str::Lods, 4, false),
        s!("cmpsb", Str::Cmps, 1, false),
        s!("cmpsd", Str::Cmps, 4, false),
        s!("repe cmpsb", Str::Cmps, 1, true),
        s!("repe cmpsw", Str::Cmps, 2, true),
        s!("repe cmpsd", Str::Cmps, 4, true),
        s!("repne cmpsb", Str::Cmps, 1, true),
        s!("scasb", Str::Scas, 1, false),
        s!("scasd", Str::Scas, 4, false),
        s!("repne scasb", Str::Scas, 1, true),
        s!("repne scasw", Str::Scas, 2, true),
        s!("repne scasd", Str::Scas, 4, true),
        s!("repe scasb", Str::Scas, 1, true),
    ];
    let mut rep = Report::default();
    // MOVS STOS LODS change no flag; CMPS SCAS set all six (none when ECX is 0).
    check(&mut rep, &items, 1500, string_input, |_, _| {
        Judge::flags(ALL)
    });
    rep.finish("string_ops");
}

// ---------------------------------------------------------------------------------------
// BCD: not encodable in 64-bit mode, so vectors worked out by hand from the SDM
// pseudo-code (Vol. 2, DAA DAS AAA AAS AAM AAD).
//
// DAA: old_AL = AL; old_CF = CF; CF = 0;
//      if (AL & 0x0F) > 9 or AF { AL += 6; CF = old_CF | carry out of AL+6; AF = 1 }
//      else AF = 0;
//      if old_AL > 0x99 or old_CF { AL += 0x60; CF = 1 } else CF = 0;
// DAS: as DAA with subtraction (CF = old_CF | borrow of AL-6), and no `else CF = 0`.
// AAA: if (AL & 0x0F) > 9 or AF { AX += 0x106; AF = CF = 1 } else AF = CF = 0;
//      AL &= 0x0F          (AX + 0x106: AL >= 0xFA carries into AH a second time)
// AAS: if (AL & 0x0F) > 9 or AF { AX -= 6; AH -= 1; AF = CF = 1 } else AF = CF = 0;
//      AL &= 0x0F          (AX - 6: AL < 6 borrows from AH a second time)
// AAM ib: AH = AL / ib; AL = AL % ib (ib = 0: #DE).  AAD ib: AL = AL + AH*ib; AH = 0.
// Defined flags: DAA/DAS all but OF; AAA/AAS only AF CF; AAM/AAD only SF ZF PF.

struct Bcd {
    code: &'static [u8],
    ax: u16,
    flags: u32,
    /// The resulting AX and flags; None: #DE.
    out: Option<(u16, u32)>,
}

const NONE: u32 = 0;
const DAA: &[u8] = &[0x27];
const DAS: &[u8] = &[0x2F];
const AAA: &[u8] = &[0x37];
const AAS: &[u8] = &[0x3F];

macro_rules! bcd {
    ($code:expr, $ax:literal, $f:expr => $out:literal, $of:expr) => {
        Bcd {
            code: $code,
            ax: $ax,
            flags: $f,
            out: Some(($out, $of)),
        }
    };
    ($code:expr, $ax:literal, $f:expr => DE) => {
        Bcd {
            code: $code,
            ax: $ax,
            flags: $f,
            out: None,
        }
    };
}

#[rustfmt::skip]
const BCD_VECTORS: &[Bcd] = &[
    // 0x79 + 0x35 = 0xAE -> 114 decimal: AL 0x14, CF AF.
    bcd!(DAA, 0x00AE, NONE => 0x0014, CF | PF | AF),
    bcd!(DAA, 0x0014, AF => 0x001A, AF),
    bcd!(DAA, 0x009A, NONE => 0x0000, CF | PF | AF | ZF),
    bcd!(DAA, 0x0099, NONE => 0x0099, PF | SF),
    bcd!(DAA, 0x0099, CF => 0x00F9, CF | PF | SF),
    bcd!(DAA, 0x0000, NONE => 0x0000, PF | ZF),
    bcd!(DAA, 0x00FF, NONE => 0x0065, CF | PF | AF),
    bcd!(DAA, 0x0012, CF | AF => 0x0078, CF | PF | AF),
    bcd!(DAA, 0x0109, AF => 0x010F, PF | AF),
    bcd!(DAA, 0x00A0, NONE => 0x0000, CF | PF | ZF),
    bcd!(DAA, 0x00FA, NONE => 0x0060, CF | PF | AF),
    bcd!(DAA, 0x0045, PF | ZF | SF | OF => 0x0045, NONE),

    bcd!(DAS, 0x0044, NONE => 0x0044, PF),
    bcd!(DAS, 0x000F, NONE => 0x0009, PF | AF),
    bcd!(DAS, 0x00A0, NONE => 0x0040, CF),
    bcd!(DAS, 0x0000, CF => 0x00A0, CF | PF | SF),
    // AL < 6 with AF: the borrow of AL-6 sets CF, and old_AL <= 0x99 leaves it set.
    bcd!(DAS, 0x0003, AF => 0x00FD, CF | AF | SF),
    bcd!(DAS, 0x0066, CF | AF => 0x0000, CF | PF | AF | ZF),
    bcd!(DAS, 0x009A, NONE => 0x0034, CF | AF),
    bcd!(DAS, 0x00FF, NONE => 0x0099, CF | PF | AF | SF),
    bcd!(DAS, 0x0010, AF => 0x000A, PF | AF),
    bcd!(DAS, 0x0099, NONE => 0x0099, PF | SF),
    bcd!(DAS, 0x0006, AF => 0x0000, PF | AF | ZF),
    bcd!(DAS, 0x0160, CF | ZF | SF | OF => 0x0100, CF | PF | ZF),

    bcd!(AAA, 0x0005, NONE => 0x0005, NONE),
    bcd!(AAA, 0x000A, NONE => 0x0100, CF | AF),
    bcd!(AAA, 0x0009, AF => 0x010F, CF | AF),
    bcd!(AAA, 0x00FA, NONE => 0x0200, CF | AF),
    bcd!(AAA, 0x0103, AF => 0x0209, CF | AF),
    bcd!(AAA, 0x0F0F, NONE => 0x1005, CF | AF),
    bcd!(AAA, 0x00F0, NONE => 0x0000, NONE),
    bcd!(AAA, 0x0039, CF => 0x0009, NONE),
    bcd!(AAA, 0x00FF, AF => 0x0205, CF | AF),
    bcd!(AAA, 0x0010, NONE => 0x0000, NONE),
    bcd!(AAA, 0xFF0B, NONE => 0x0001, CF | AF),
    bcd!(AAA, 0x0000, CF | PF | ZF | SF | OF => 0x0000, NONE),

    bcd!(AAS, 0x0005, NONE => 0x0005, NONE),
    bcd!(AAS, 0x010A, NONE => 0x0004, CF | AF),
    bcd!(AAS, 0x0203, AF => 0x000D, CF | AF),
    bcd!(AAS, 0x000F, NONE => 0xFF09, CF | AF),
    bcd!(AAS, 0x0000, AF => 0xFE0A, CF | AF),
    bcd!(AAS, 0x0005, AF => 0xFE0F, CF | AF),
    bcd!(AAS, 0x0006, AF => 0xFF00, CF | AF),
    bcd!(AAS, 0x00FF, NONE => 0xFF09, CF | AF),
    bcd!(AAS, 0x0039, CF => 0x0009, NONE),
    bcd!(AAS, 0x0010, NONE => 0x0000, NONE),
    bcd!(AAS, 0x0100, CF | AF | ZF => 0xFF0A, CF | AF),
    bcd!(AAS, 0x00F9, NONE => 0x0009, NONE),

    bcd!(&[0xD4, 10], 0x7700, NONE => 0x0000, PF | ZF),
    bcd!(&[0xD4, 10], 0x7709, NONE => 0x0009, PF),
    bcd!(&[0xD4, 10], 0x770A, NONE => 0x0100, PF | ZF),
    bcd!(&[0xD4, 10], 0x7763, SF => 0x0909, PF),
    bcd!(&[0xD4, 10], 0x77FF, NONE => 0x1905, PF),
    bcd!(&[0xD4, 10], 0x7780, ZF | PF => 0x0C08, NONE),
    bcd!(&[0xD4, 10], 0x775A, NONE => 0x0900, PF | ZF),
    bcd!(&[0xD4, 16], 0x77AB, NONE => 0x0A0B, NONE),
    bcd!(&[0xD4, 16], 0x7710, NONE => 0x0100, PF | ZF),
    bcd!(&[0xD4, 7], 0x7730, NONE => 0x0606, PF),
    bcd!(&[0xD4, 7], 0x7706, NONE => 0x0006, PF),
    bcd!(&[0xD4, 1], 0x7785, NONE => 0x8500, PF | ZF),
    bcd!(&[0xD4, 255], 0x77FE, NONE => 0x00FE, SF),
    bcd!(&[0xD4, 0], 0x1234, NONE => DE),

    bcd!(&[0xD5, 10], 0x0909, NONE => 0x0063, PF),
    bcd!(&[0xD5, 10], 0x0000, SF => 0x0000, PF | ZF),
    bcd!(&[0xD5, 10], 0x0105, NONE => 0x000F, PF),
    bcd!(&[0xD5, 10], 0x1909, NONE => 0x0003, PF),
    bcd!(&[0xD5, 10], 0xFFFF, NONE => 0x00F5, PF | SF),
    bcd!(&[0xD5, 10], 0x0C00, ZF => 0x0078, PF),
    bcd!(&[0xD5, 16], 0x0A0B, NONE => 0x00AB, SF),
    bcd!(&[0xD5, 16], 0x0F0F, NONE => 0x00FF, PF | SF),
    bcd!(&[0xD5, 7], 0x0302, NONE => 0x0017, PF),
    bcd!(&[0xD5, 0], 0x1234, NONE => 0x0034, NONE),
    bcd!(&[0xD5, 1], 0x8080, NONE => 0x0000, PF | ZF),
    bcd!(&[0xD5, 255], 0x0102, NONE => 0x0001, NONE),
];

fn bcd_defined(code: &[u8]) -> u32 {
    match code[0] {
        0x27 | 0x2F => ARITH & !OF,
        0x37 | 0x3F => AF | CF,
        _ => SF | ZF | PF,
    }
}

#[test]
fn bcd() {
    let mut failures = Vec::new();
    for (i, v) in BCD_VECTORS.iter().enumerate() {
        // The upper half of EAX and the other registers must survive.
        let eax_in = 0xA5C3_0000 | u32::from(v.ax);
        let mut s = SnippetState {
            eflags: v.flags | FIXED1,
            data: Vec::new(),
            ..SnippetState::default()
        };
        s.gpr[0] = eax_in;
        s.gpr[1] = 0x1111_1111;
        s.gpr[2] = 0x2222_2222;
        let end = run_snippet32(v.code, &mut s);
        let defined = bcd_defined(v.code);
        let ok = match v.out {
            None => matches!(end, SnippetEnd::Exception(e) if e.vector == 0) && s.gpr[0] == eax_in,
            Some((ax, f)) => {
                end == SnippetEnd::Done
                    && s.gpr[0] == (eax_in & 0xFFFF_0000) | u32::from(ax)
                    && (s.eflags ^ f) & defined == 0
            }
        };
        if !ok || s.gpr[1] != 0x1111_1111 || s.gpr[2] != 0x2222_2222 {
            let want = match v.out {
                None => "#DE".to_string(),
                Some((ax, f)) => format!("ax={ax:04x} flags={f:03x} [{}]", flag_names(f)),
            };
            failures.push(format!(
                "vector {i}: {:02x?} ax={:04x} flags={:03x} [{}]: want {want} (compared {:03x}); \
                 interpreter {end:?} eax={:08x} flags={:03x} [{}]",
                v.code,
                v.ax,
                v.flags,
                flag_names(v.flags),
                defined,
                s.gpr[0],
                s.eflags & ALL,
                flag_names(s.eflags & ALL)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "bcd: {} of {} vectors fail\n{}",
        failures.len(),
        BCD_VECTORS.len(),
        failures.join("\n")
    );
}
