; bench bytecode: a small stack-machine interpreter; every VM operation is
; dispatched through a jump table (movzx / inc / jmp [table + op*4]).
; VM program (r0 = N, r1 = 0, r2 = 1):
;     loop: r1 += r2 * r2 ; r2 = (r2 + 3) & 0xFFFF ; r0 -= 1 ; if r0 != 0 goto loop
; Result = r1 (mod 2^32).  x86 instructions per VM op (incl. 3 for dispatch):
;     PUSH 7, LOAD 8, STORE 8, ADD/SUB/AND/DUP 6, MUL 7, JNZ 9 taken / 8 not, HALT 1
; one loop iteration = 18 VM ops = 131 x86 instructions, so the kernel (from
; "mov esi, prog" to HALT) executes exactly
;     instructions = 131 * N + 50        N = 1,500,000  ->  196,500,050
;     VM operations = 18 * N + 7
; Checksum and count: tools/bench_model.py bytecode.
%define TEST_NAME "bench-bytecode"
%include "head.inc"
BENCH_EXPECTED equ 0x9155F850            ; tools/bench_model.py bytecode
%ifndef N
%define N 1500000
%endif

OP_HALT  equ 0
OP_PUSH  equ 1
OP_LOAD  equ 2
OP_STORE equ 3
OP_ADD   equ 4
OP_SUB   equ 5
OP_MUL   equ 6
OP_AND   equ 7
OP_DUP   equ 8
OP_JNZ   equ 9

%macro NEXT 0
    movzx eax, byte [esi]
    inc esi
    jmp [optable + eax*4]
%endmacro

test_main:
..@kernel_start:
    mov esi, prog
    mov edi, vmstack
    NEXT
vm_done:
..@kernel_end:
    mov eax, [regs + 4]
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret

op_halt:
    jmp vm_done
op_push:
    mov eax, [esi]
    add esi, 4
    add edi, 4
    mov [edi], eax
    NEXT
op_load:
    movzx eax, byte [esi]
    inc esi
    mov eax, [regs + eax*4]
    add edi, 4
    mov [edi], eax
    NEXT
op_store:
    movzx eax, byte [esi]
    inc esi
    mov edx, [edi]
    sub edi, 4
    mov [regs + eax*4], edx
    NEXT
op_add:
    mov eax, [edi]
    sub edi, 4
    add [edi], eax
    NEXT
op_sub:
    mov eax, [edi]
    sub edi, 4
    sub [edi], eax
    NEXT
op_mul:
    mov eax, [edi]
    sub edi, 4
    imul eax, [edi]
    mov [edi], eax
    NEXT
op_and:
    mov eax, [edi]
    sub edi, 4
    and [edi], eax
    NEXT
op_dup:
    mov eax, [edi]
    add edi, 4
    mov [edi], eax
    NEXT
op_jnz:
    mov eax, [edi]
    sub edi, 4
    test eax, eax
    jz .nt
    movzx eax, word [esi]
    lea esi, [prog + eax]
    NEXT
.nt:
    add esi, 2
    NEXT

%include "bench.inc"
section .data
align 4
optable:
    dd op_halt, op_push, op_load, op_store, op_add, op_sub, op_mul, op_and, op_dup, op_jnz
prog:
    db OP_PUSH
    dd N
    db OP_STORE, 0
    db OP_PUSH
    dd 0
    db OP_STORE, 1
    db OP_PUSH
    dd 1
    db OP_STORE, 2
.loop:
    db OP_LOAD, 2, OP_LOAD, 2, OP_MUL, OP_LOAD, 1, OP_ADD, OP_STORE, 1
    db OP_LOAD, 2, OP_PUSH
    dd 3
    db OP_ADD, OP_PUSH
    dd 0xFFFF
    db OP_AND, OP_STORE, 2
    db OP_LOAD, 0, OP_PUSH
    dd 1
    db OP_SUB, OP_DUP, OP_STORE, 0
    db OP_JNZ
    dw .loop - prog
    db OP_HALT
section .bss
regs: resd 4
vmstack: resd 64
section .text
%include "tail.inc"
