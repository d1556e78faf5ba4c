#!/usr/bin/env python3
"""Generate guests/shift_vectors.inc for shift.asm: SHL/SHR/SAR/ROL/ROR/RCL/RCR
(by CL, by 1, by immediates) and SHLD/SHRD, 8/16/32 bits, register and memory.
Each vector carries the mask of flags that are architecturally defined for its
count (Intel SDM): count&31 == 0 -> no flag changes; OF only for count 1;
shifts: AF undefined, CF undefined for SHL/SHR counts >= width; rotates keep
SF/ZF/PF/AF.  SHLD/SHRD 16-bit counts > 16 are undefined and not generated.
Deterministic; cross-checked under QEMU TCG."""
import random
R = random.Random(99)
CF, PF, AF, ZF, SF, OF = 1, 4, 0x10, 0x40, 0x80, 0x800
ARITH = CF | PF | AF | ZF | SF | OF

def szp(r, w):
    f = 0
    if r == 0: f |= ZF
    if r >> (w - 1) & 1: f |= SF
    if bin(r & 0xFF).count("1") % 2 == 0: f |= PF
    return f

def model(op, a, c_raw, fin, w, src=0):
    m = (1 << w) - 1
    msb = lambda x: x >> (w - 1) & 1
    c = c_raw & 31
    cf_in = fin & CF
    if c == 0:
        return a, fin & ARITH, ARITH
    if op in ("shl", "shr", "sar"):
        if op == "shl":
            r = (a << c) & m
            cf = (a >> (w - c)) & 1 if c <= w else 0
        elif op == "shr":
            r = a >> c if c < w else 0
            cf = (a >> (c - 1)) & 1 if c <= w else 0
        else:
            sa = a - (1 << w) if msb(a) else a
            r = (sa >> c) & m
            cf = (sa >> (c - 1)) & 1
        f = szp(r, w) | (CF if cf else 0)
        mask = CF | PF | ZF | SF
        if op != "sar" and c >= w: mask &= ~CF
        if c == 1:
            mask |= OF
            if op == "shl" and (msb(r) ^ cf): f |= OF
            if op == "shr" and msb(a): f |= OF
        return r, f & mask, mask
    if op in ("rol", "ror"):
        k = c % w
        r = ((a << k) | (a >> (w - k))) & m if op == "rol" else ((a >> k) | (a << (w - k))) & m
        f = fin & (PF | ZF | SF | AF)
        cf = (r & 1) if op == "rol" else msb(r)
        if cf: f |= CF
        mask = CF | PF | ZF | SF | AF
        if c == 1:
            mask |= OF
            if op == "rol": o = msb(r) ^ cf
            else: o = msb(r) ^ (r >> (w - 2) & 1)
            if o: f |= OF
        return r, f, mask
    if op in ("rcl", "rcr"):
        k = c % (w + 1)
        v = (cf_in << w) | a           # w+1 bit quantity, CF on top
        n = w + 1
        if op == "rcl":
            v = ((v << k) | (v >> (n - k))) & ((1 << n) - 1) if k else v
        else:
            v = ((v >> k) | (v << (n - k))) & ((1 << n) - 1) if k else v
        r, cf = v & m, v >> w
        f = fin & (PF | ZF | SF | AF) | (CF if cf else 0)
        mask = CF | PF | ZF | SF | AF
        if c == 1:
            mask |= OF
            o = (msb(r) ^ cf) if op == "rcl" else (msb(r) ^ (r >> (w - 2) & 1))
            if o: f |= OF
        return r, f, mask
    if op in ("shld", "shrd"):
        if op == "shld":
            r = ((a << c) | (src >> (w - c))) & m
            cf = (a >> (w - c)) & 1
        else:
            r = ((a >> c) | (src << (w - c))) & m
            cf = (a >> (c - 1)) & 1
        f = szp(r, w) | (CF if cf else 0)
        mask = CF | PF | ZF | SF
        if c == 1:
            mask |= OF
            if msb(r) ^ msb(a): f |= OF
        return r, f & mask, mask
    raise ValueError(op)

def vals(w):
    m = (1 << w) - 1
    return [R.randrange(m + 1), (m >> 1) + 1 | 1, m]

code, data, n = [], [], 0
def emit(lab, desc, body, w, op, counts, fixed=None, dbl=False):
    global n
    code.append(f'    VLOOP3 {lab}, "{desc}"')
    code.extend("    " + b for b in body)
    code.append("    GETF" if not any("GETF" in b for b in body) else "")
    if any(b.startswith("mov [mtmp]") for b in body):
        code.append("    mov eax, [mtmp]")
    code.append("    VEND3")
    data.append(f"{lab}:")
    m = (1 << w) - 1
    for a in vals(w):
        for c in counts:
            if dbl and w == 16 and 16 < (c & 31): continue
            src = R.randrange(m + 1)
            fin = R.choice((0, ARITH, CF, ARITH & ~CF)) | 2
            cnt = fixed if fixed is not None else c
            r, f, mask = model(op, a, cnt, fin, w, src)
            junk = R.randrange(1 << 32) & ~m
            ecx = (R.randrange(1 << 32) & ~0xFF) | c
            ebx = (R.randrange(1 << 32) & ~m) | src
            data.append(f"    dd 0x{junk|a:08X}, 0x{ebx:08X}, 0x{ecx:08X}, 0x{fin:03X}, 0x{junk|r:08X}, 0x{f:03X}, 0x{mask:03X}")
            n += 1
            if fixed is not None: break
    data.append(f"{lab}_end:")

REG = {32: ("eax", "ebx"), 16: ("ax", "bx"), 8: ("al", "bl")}
SZ = {32: "dword", 16: "word", 8: "byte"}
for op in ("shl", "shr", "sar", "rol", "ror", "rcl", "rcr"):
    for w in (32, 16, 8):
        ra = REG[w][0]
        counts = sorted({0, 1, 2, w - 1, w, w + 1, 31, 33, 255, R.randrange(1, 32)})
        emit(f"v_{op}{w}cl", f"{op}{w} r,cl", [f"{op} {ra}, cl"], w, op, counts)
        emit(f"v_{op}{w}one", f"{op}{w} r,1 (D1)", [f"{op} {ra}, 1"], w, op, [1], fixed=1)
        for imm in (0, 3, w + 1, 200):
            emit(f"v_{op}{w}i{imm}", f"{op}{w} r,imm {imm}", [f"{op} {ra}, byte {imm}"], w, op, [imm], fixed=imm)
        emit(f"v_{op}{w}m", f"{op}{w} m,cl", ["mov [mtmp], eax", f"{op} {SZ[w]} [mtmp], cl", "GETF"], w, op, [0, 1, 3, w + 1])
for op in ("shld", "shrd"):
    for w in (32, 16):
        ra, rb = REG[w]
        counts = [0, 1, 2, 7, w - 1, 16, 31, 32, 33]
        emit(f"v_{op}{w}cl", f"{op}{w} r,r,cl", [f"{op} {ra}, {rb}, cl"], w, op, counts, dbl=True)
        for imm in (1, 4, 13):
            emit(f"v_{op}{w}i{imm}", f"{op}{w} r,r,imm {imm}", [f"{op} {ra}, {rb}, {imm}"], w, op, [imm], fixed=imm, dbl=True)
        emit(f"v_{op}{w}m", f"{op}{w} m,r,cl", ["mov [mtmp], eax", f"{op} {SZ[w]} [mtmp], {rb}, cl", "GETF"], w, op, [1, 5, w - 1], dbl=True)

with open("guests/shift_vectors.inc", "w") as fh:
    fh.write(f"; generated by tools/gen_shift.py -- do not edit\n; {n} vectors\nrun_shift_vectors:\n")
    fh.write("\n".join(l for l in code if l) + "\n    ret\n\nsection .data\nalign 4\n" + "\n".join(data) + "\nsection .text\n")
print(n, "vectors")
