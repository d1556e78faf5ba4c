; bench sieve: byte-array sieve of Eratosthenes, R1 times over 8 KiB
; (primes < 8192: 1028) and R2 times over 1 MiB (primes < 2^20: 82025).
; Checksum = R1 * 1028 + R2 * 82025 (mod 2^32).
; Kernel (from "mov ebp, R1" to "mov eax, [total]"), per sieve call of size N:
;     S(N) = 6 + sum over i = 2.. while i*i < N of (8 + 4 * [i prime] * #{j = i*i, i*i+i, .. < N})
;            + 4 + 3 + 5 * (N - 2)                       (exact: tools/bench_model.py sieve)
;     instructions = 3 + R1 * (S(8192) + 5) + R2 * (S(2^20) + 5)
;     R1 = 4000, R2 = 12  ->  556,463,059 instructions
%ifndef TEST_NAME
%define TEST_NAME "bench-sieve"
%endif
%include "head.inc"
BENCH_EXPECTED equ 0x004DC36C            ; tools/bench_model.py sieve
%ifndef R1
%define R1 4000
%endif
%ifndef SIZE2
%define SIZE2 (1 << 20)
%endif
%ifndef R2
%define R2 12
%endif
test_main:
..@kernel_start:
    mov ebp, R1
.o1:
    mov edx, 8192
    call sieve_fn
    add [total], eax
    dec ebp
    jnz .o1
    mov ebp, R2
.o2:
    mov edx, SIZE2
    call sieve_fn
    add [total], eax
    dec ebp
    jnz .o2
    mov eax, [total]
..@kernel_end:
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret

; edx = N (multiple of 4); returns eax = number of primes < N
sieve_fn:
    mov edi, flags
    mov ecx, edx
    shr ecx, 2
    mov eax, 0x01010101
    rep stosd
    mov ebx, 2
.i:
    mov eax, ebx
    imul eax, ebx
    cmp eax, edx
    jae .count
    cmp byte [flags + ebx], 0
    je .nexti
.j:
    mov byte [flags + eax], 0
    add eax, ebx
    cmp eax, edx
    jb .j
.nexti:
    inc ebx
    jmp .i
.count:
    xor eax, eax
    mov ecx, 2
.c:
    movzx esi, byte [flags + ecx]
    add eax, esi
    inc ecx
    cmp ecx, edx
    jb .c
    ret
%include "bench.inc"
section .bss
total: resd 1
alignb 4096
flags: resb 1 << 20
section .text
%include "tail.inc"
