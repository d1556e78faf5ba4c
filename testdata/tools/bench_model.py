#!/usr/bin/env python3
"""Reference model for the benchmark guests in bench/: expected checksums and
exact instruction counts of the timed kernels (harness setup and printing
excluded: < 10,000 instructions).  Usage: bench_model.py [name]"""
import sys, zlib
M = 0xFFFFFFFF

def alu(N=50_000_000):
    a, b, d, s = 0x12345678, 0x9ABCDEF0, 0x0F1E2D3C, 0x55AA55AA
    for i in range(N):
        c = N - i                    # ecx during iteration i
        a = (a + b) & M; b ^= c; d = (d << 1) & M; d = (d - a) & M; b = (b + 1) & M; s ^= d
    return a ^ b ^ d ^ s, 8 * N + 8

def copy(R=40000):
    A = [(i * 0x9E3779B9) & M for i in range(1024)]
    A[0] = (A[0] + 2 * R) & M
    return sum(A) & M, R * (2 * (3 + 6 * 1024 + 1) + 2) + 1

def repmovsd(R=5000):
    A = [(i * 0x01000193) & M for i in range(16384)]
    A[0] = (A[0] + R) & M
    return sum(A) & M, R * 11 + 1, R * 2 * 16384

def sieve_count(N):
    flags = bytearray([1]) * N
    ins = 5 + 1                      # rep stosd setup (5) + mov ebx,2
    i = 2
    while True:
        ins += 4
        if i * i >= N: break
        ins += 2
        if flags[i]:
            for j in range(i * i, N, i):
                flags[j] = 0
                ins += 4
        ins += 2
        i += 1
    ins += 2 + 5 * (N - 2) + 1       # count loop + ret
    return sum(flags[2:]), ins

def sieve(R1=4000, R2=12):
    c1, i1 = sieve_count(8192)
    c2, i2 = sieve_count(1 << 20)
    # per call: mov edx,N / call (2) + body; per outer rep: add, dec, jnz (3)
    return (R1 * c1 + R2 * c2) & M, R1 * (i1 + 5) + R2 * (i2 + 5) + 3, (c1, c2)

def crc32(R=300):
    x, buf = 1, bytearray(65536)
    for i in range(65536):
        x = (x * 1103515245 + 12345) & M
        buf[i] = (x >> 16) & 0xFF
    crc = zlib.crc32(bytes(buf) * R) & M
    return crc, R * (65536 * 11 + 4) + 3

def bytecode(N=1_500_000):
    r0, r1, r2 = N, 0, 1
    while True:
        r1 = (r1 + r2 * r2) & M
        r2 = (r2 + 3) & 0xFFFF
        r0 = (r0 - 1) & M
        if r0 == 0: break
    return r1, 131 * N + 50, 18 * N + 7

def expected(name):
    return globals()[name]()[0]

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--expected":
        print("0x%08X" % expected(sys.argv[2])); sys.exit(0)
    for name in sys.argv[1:] or ["alu", "copy", "repmovsd", "sieve", "crc32", "bytecode"]:
        r = globals()[name]()
        print(name, "checksum 0x%08X" % r[0], "instructions", *r[1:])
