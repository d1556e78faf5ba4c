; bench copy: explicit MOV load/store copy of 4 KiB blocks (1024 dwords),
; ping-ponging between two buffers; each block copy is followed by one
; read-modify-write so the result depends on every pass.
; Kernel (from "mov ebp, R" to the last jnz):
;     instructions = 1 + R * (2 * (3 + 6 * 1024 + 1) + 2) = 1 + 12,298 * R
;     R = 40,000  ->  491,920,001 instructions, 81,920,000 dwords copied
; Checksum (sum of buffer A) and count: tools/bench_model.py copy.
%ifndef TEST_NAME
%define TEST_NAME "bench-copy"
%endif
%include "head.inc"
BENCH_EXPECTED equ 0x5ED5C680            ; tools/bench_model.py copy
%ifndef R
%define R 40000
%endif
test_main:
    xor ecx, ecx
.init:
    mov eax, ecx
    imul eax, eax, 0x9E3779B9
    mov [bufA + ecx*4], eax
    inc ecx
    cmp ecx, 1024
    jb .init

..@kernel_start:
    mov ebp, R
.outer:
    mov esi, bufA
    mov edi, bufB
    mov ecx, 1024
.c1:
    mov eax, [esi]
    mov [edi], eax
    add esi, 4
    add edi, 4
    dec ecx
    jnz .c1
    add dword [bufB], 1
    mov esi, bufB
    mov edi, bufA
    mov ecx, 1024
.c2:
    mov eax, [esi]
    mov [edi], eax
    add esi, 4
    add edi, 4
    dec ecx
    jnz .c2
    add dword [bufA], 1
    dec ebp
    jnz .outer

..@kernel_end:
    xor eax, eax
    xor ecx, ecx
.sum:
    add eax, [bufA + ecx*4]
    inc ecx
    cmp ecx, 1024
    jb .sum
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret
%include "bench.inc"
section .bss
alignb 4096
bufA: resb 4096
bufB: resb 4096
section .text
%include "tail.inc"
