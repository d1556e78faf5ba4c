//! Random bytes as guest code: whatever they decode to, the interpreter must behave as a CPU
//! (run, fault, or halt), never panic. Most random streams hit an undefined opcode quickly,
//! which must surface as #UD delivered to the guest.

use cpu::testing::{run_snippet32, SnippetEnd, SnippetState};

#[test]
fn random_code_never_panics() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ud = 0;
    let mut other_faults = 0;
    const RUNS: usize = 3000;
    for _ in 0..RUNS {
        let len = (next() % 64 + 1) as usize;
        let code: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut s = SnippetState::default();
        for r in s.gpr.iter_mut() {
            *r = next() as u32 & 0x1_FFFF; // mostly inside the 1 MiB of RAM
        }
        s.gpr[4] = 0x3_0000;
        s.max_insns = 20_000;
        match run_snippet32(&code, &mut s) {
            SnippetEnd::Exception(e) if e.vector == 6 => ud += 1,
            SnippetEnd::Exception(_) => other_faults += 1,
            SnippetEnd::Done | SnippetEnd::Timeout => {}
        }
    }
    // Random x86 code is full of undefined opcodes and bad accesses: both must have been
    // delivered as exceptions, not swallowed.
    assert!(ud > RUNS / 50, "only {ud} #UD in {RUNS} random programs");
    assert!(
        other_faults > 0,
        "no fault other than #UD in {RUNS} random programs"
    );
}
