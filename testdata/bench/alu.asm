; bench alu: register-only ALU loop.
; Kernel (from "mov eax" to the final xor):
;     instructions = 8 * N + 8
; (5 setup movs, N x {add, xor, shl, sub, inc, xor, dec, jnz}, 3 xors).
; N = 50,000,000  ->  400,000,008 instructions.
; Checksum and count: tools/bench_model.py alu.
%define TEST_NAME "bench-alu"
%include "head.inc"
BENCH_EXPECTED equ 0x1F11DE12            ; tools/bench_model.py alu
%ifndef N
%define N 50000000
%endif
test_main:
..@kernel_start:
    mov eax, 0x12345678
    mov ebx, 0x9ABCDEF0
    mov edx, 0x0F1E2D3C
    mov esi, 0x55AA55AA
    mov ecx, N
.l: add eax, ebx
    xor ebx, ecx
    shl edx, 1
    sub edx, eax
    inc ebx
    xor esi, edx
    dec ecx
    jnz .l
    xor eax, ebx
    xor eax, edx
    xor eax, esi
..@kernel_end:
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret
%include "bench.inc"
%include "tail.inc"
