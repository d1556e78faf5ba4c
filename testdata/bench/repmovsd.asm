; bench repmovsd: REP MOVSD of 64 KiB blocks (16384 dwords), A->B then B->A,
; then one increment of A[0], R times.
; Kernel (from "mov ebp, R" to the last jnz):
;     instructions = 1 + 11 * R          R = 5,000  ->  55,001 instructions
;     REP iterations (dwords moved) = 2 * 16384 * R = 163,840,000
; Checksum (sum of buffer A) and counts: tools/bench_model.py repmovsd.
%define TEST_NAME "bench-repmovsd"
%include "head.inc"
BENCH_EXPECTED equ 0x97CDB388            ; tools/bench_model.py repmovsd
%ifndef R
%define R 5000
%endif
test_main:
    xor ecx, ecx
.init:
    mov eax, ecx
    imul eax, eax, 0x01000193
    mov [bufA + ecx*4], eax
    inc ecx
    cmp ecx, 16384
    jb .init

..@kernel_start:
    mov ebp, R
.outer:
    mov esi, bufA
    mov edi, bufB
    mov ecx, 16384
    rep movsd
    mov esi, bufB
    mov edi, bufA
    mov ecx, 16384
    rep movsd
    inc dword [bufA]
    dec ebp
    jnz .outer

..@kernel_end:
    xor eax, eax
    xor ecx, ecx
.sum:
    add eax, [bufA + ecx*4]
    inc ecx
    cmp ecx, 16384
    jb .sum
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret
%include "bench.inc"
section .bss
alignb 4096
bufA: resb 65536
bufB: resb 65536
section .text
%include "tail.inc"
