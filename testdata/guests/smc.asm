; smc: self-modifying code.  Patch the immediate of a called routine
; (1 -> 2), patch its opcode (MOV EAX,imm -> ADD EAX,imm), patch the next
; instruction in straight-line code both after a JMP (architecturally
; required) and directly with no intervening branch (also honoured by
; real CPUs and QEMU), patch an instruction in a hot loop on every
; iteration, write through a segment with a non-zero base, generate code
; into a fresh buffer and rewrite it with REP MOVSB, and a STOSB that
; overwrites the instruction right after itself.
%define TEST_NAME "smc"
%include "head.inc"

ALIAS_SEL equ 0x28
ALIAS_BASE equ 0x1000

test_main:
    mov eax, ALIAS_BASE
    mov ebx, 0xFFFFF
    mov cx, 0x0C92
    mov edx, ALIAS_SEL >> 3
    call set_desc

    ; ---- patch a routine's immediate and opcode ----
    call smc_fn
    CHK eax, 1, "routine before patching"
    call smc_fn
    CHK eax, 1, "routine again (now hot)"
    mov dword [smc_fn+1], 2
    call smc_fn
    CHK eax, 2, "patched immediate"
    mov byte [smc_fn], 0x05         ; B8 (mov eax,imm32) -> 05 (add eax,imm32)
    mov eax, 10
    call smc_fn
    CHK eax, 12, "patched opcode"
    mov byte [smc_fn], 0xB8
    mov dword [smc_fn+1], 1

    ; ---- next instruction, after a JMP ----
    mov eax, 0
    mov byte [.t1+1], 0x42
    jmp .t1
.t1:
    mov al, 0x11
    CHK eax, 0x42, "patched next instruction (after jmp)"

    ; ---- next instruction, directly ----
    mov eax, 0
    mov byte [.t2+1], 0x43
.t2:
    mov al, 0x11
    CHK eax, 0x43, "patched next instruction (no jmp)"
    ; and the opcode of the next instruction: inc ecx (41) -> dec ecx (49)
    mov ecx, 5
    mov byte [.t3], 0x49
.t3:
    inc ecx
    CHK ecx, 4, "patched next opcode (no jmp)"

    ; ---- hot loop patching its own immediate ----
    xor ebx, ebx
    xor ecx, ecx
.hot:
    mov [.hot_add+2], ecx           ; imm32 of "add ebx, imm32" (81 C3 id)
.hot_add:
    add ebx, 0x7FFFFFFF
    inc ecx
    cmp ecx, 100
    jb .hot
    CHK ebx, 4950, "loop patching its own add immediate"

    ; ---- write through a segment with a non-zero base ----
    mov eax, ALIAS_SEL
    mov es, ax
    mov dword [es:smc_fn+1 - ALIAS_BASE], 77
    mov eax, DATA_SEL
    mov es, ax
    call smc_fn
    CHK eax, 77, "patched through ES with base 0x1000"

    ; ---- generated code in a buffer ----
    mov esi, gen_a
    mov edi, codebuf
    mov ecx, gen_a_len
    rep movsb
    call codebuf
    CHK eax, 0x12345678, "generated code A"
    mov esi, gen_b
    mov edi, codebuf
    mov ecx, gen_b_len
    rep movsb
    call codebuf
    CHK eax, 0xAAAA5555, "generated code B over A"
    mov byte [codebuf+1], 0x01      ; imm of B's first insn
    call codebuf
    CHK eax, 0xAAFE5555, "generated code B patched (0x5501 << 16 ^ ...)"

    ; ---- STOSB that overwrites the following instruction ----
    mov edi, .t4
    mov al, 0x90                    ; nop
    mov edx, 1
    stosb
.t4:
    inc edx                         ; replaced by NOP before it runs
    CHK edx, 1, "stosb overwrote the next instruction"
    ret

smc_fn:
    mov eax, 1                      ; B8 01 00 00 00
    ret

gen_a:
    mov eax, 0x12345678
    ret
gen_a_len equ $ - gen_a
gen_b:
    mov al, 0x55
    mov ah, 0x55
    shl eax, 16
    mov ax, 0x5555
    xor eax, 0xAAAA0000 ^ 0x55550000
    mov ecx, eax
    mov eax, ecx
    ret
gen_b_len equ $ - gen_b

section .bss
alignb 16
codebuf: resb 64
section .text
%include "tail.inc"
