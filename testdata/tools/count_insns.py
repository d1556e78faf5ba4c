#!/usr/bin/env python3
"""Check the instruction-count formulas in bench/*.asm against QEMU: build a
scaled-down copy of each benchmark, run it under TCG with one instruction per
translation block and exec tracing, and count the traced executions between
the ..@kernel_start and ..@kernel_end labels.  Consecutive traces of the same
PC are counted once: a REP instruction is traced once per iteration, and
QEMU re-executes an instruction whose store hits a page holding translated
code (a spurious second trace); no kernel contains a self-looping non-REP
instruction, so the de-duplicated trace count is the instruction count.
Usage: count_insns.py [bench...]   (takes a few minutes; needs nasm, qemu)"""
import os, re, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
import bench_model as bm
HERE = os.path.dirname(os.path.abspath(__file__))
TD = os.path.dirname(HERE)

def count(name, defines):
    with tempfile.TemporaryDirectory() as t:
        log = f"{t}/q.log"
        syms = {}
        mp = f"{t}/b.map"
        src = open(f"{TD}/bench/{name}.asm").read() + "\n[map symbols " + mp + "]\n"
        open(f"{t}/m.asm", "w").write(src)
        subprocess.run(["nasm", "-f", "bin", "-I", f"{TD}/include/", "-I", f"{TD}/bench/"] + [f"-D{k}={v}" for k, v in defines.items()]
                       + ["-o", f"{t}/m.bin", f"{t}/m.asm"], check=True)
        for line in open(mp):
            m = re.match(r"\s*([0-9A-F]+)\s+([0-9A-F]+)\s+(\S+)\s*$", line)
            if m: syms[m.group(3)] = int(m.group(2), 16)
        start, end = syms["..@kernel_start"], syms["..@kernel_end"]
        subprocess.run(["timeout", "300", "qemu-system-i386", "-kernel", f"{t}/m.bin", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                        "-serial", "null", "-display", "none", "-no-reboot", "-m", "128", "-singlestep",
                        "-d", "exec,nochain", "-D", log])
        n, on, prev = 0, False, None
        pat = re.compile(rb"Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
        with open(log, "rb") as fh:
            for line in fh:
                m = pat.search(line)
                if not m: continue
                pc = int(m.group(1), 16)
                if not on and pc == start: on = True
                if on and pc == end: break
                if on and pc != prev: n += 1
                prev = pc
        return n

cases = {
    "alu": ({"N": 10}, bm.alu(10)[1]),
    "copy": ({"R": 2}, bm.copy(2)[1]),
    "repmovsd": ({"R": 2}, bm.repmovsd(2)[1]),
    "sieve": ({"R1": 2, "R2": 1, "SIZE2": 4096},
              None),
    "crc32": ({"R": 1}, bm.crc32(1)[1]),
    "bytecode": ({"N": 3}, bm.bytecode(3)[1]),
}
c1 = bm.sieve_count(8192)[1]; c2 = bm.sieve_count(4096)[1]
cases["sieve"] = (cases["sieve"][0], 3 + 2 * (c1 + 5) + (c2 + 5))
ok = True
for name in sys.argv[1:] or cases:
    d, exp = cases[name]
    got = count(name, d)
    print(f"{name:9s} {d}: traced {got}, formula {exp}", "OK" if got == exp else "MISMATCH")
    ok &= got == exp
sys.exit(0 if ok else 1)
