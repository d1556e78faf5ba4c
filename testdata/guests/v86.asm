; v86: virtual-8086 mode.
;   - IRETD from ring 0 with VM set enters V86 mode at 2000:0000 (code copied
;     below 1 MiB); segment arithmetic is the real-mode one
;   - INT 0x21 at IOPL 3 goes through the IDT to ring 0: the handler's stack is
;     SS0:ESP0 with GS, FS, DS, ES, SS, ESP, EFLAGS (VM set), CS, IP on it, and
;     DS/ES/FS/GS are null; it clears IOPL in the image and returns with IRETD
;   - CLI at IOPL 0: #GP(0), skipped by the ring-0 handler
;   - IN/OUT always consult the TSS I/O bitmap: the UART scratch register 0x3FF
;     is allowed (a byte written reads back), 0x3FE is denied (#GP(0))
;   - INT3 is not IOPL-sensitive: it reaches its ring-0 handler, which returns
;     to protected mode
%define TEST_NAME "v86"
%include "head.inc"
%include "prot.inc"

V86_SEG  equ 0x2000                 ; the code is copied to 0x20000
V86_SS   equ 0x3000
V86_SP   equ 0xFFF0
VTSS_SEL equ 0x40                   ; GDT 8: a TSS with an I/O bitmap
IOMAP    equ 0x68
F_VM     equ 0x20000
%define V(x) ((x) - v86_blob)
%define LIN(x) (V86_SEG * 16 + V(x))

test_main:
    call prot_init
    DESC 8, v86_tss, IOMAP + 0x2000, 0x89, 0x0
    mov dword [v86_tss + 4], r0_top
    mov word [v86_tss + 8], DATA_SEL
    mov word [v86_tss + 0x66], IOMAP
    mov byte [v86_tss + IOMAP + (0x3FE >> 3)], 1 << (0x3FE & 7)
    mov byte [v86_tss + IOMAP + 0x2000], 0xFF
    mov eax, VTSS_SEL
    ltr ax
    IDTGATE 0x21, CODE_SEL, int21_handler, 0xEE
    IDTGATE 3, CODE_SEL, int3_handler, 0xEE
    IDTGATE 13, CODE_SEL, gp_handler, 0x8E
    mov esi, v86_blob
    mov edi, V86_SEG * 16
    mov ecx, v86_end - v86_blob
    cld
    rep movsb
    mov word [V86_SS * 16 + 0x10], 0
    call enter_v86
    mov eax, cs
    CHK eax, CODE_SEL, "back in protected mode"

    ; ---- what the V86 code saw ----
    movzx eax, word [LIN(v_cs)]
    CHK eax, V86_SEG, "CS in V86"
    movzx eax, word [LIN(v_ss)]
    CHK eax, V86_SS, "SS in V86"
    CHK dword [LIN(v_mul)], 0x00012340, "16-bit MUL in V86"
    movzx eax, word [V86_SS * 16 + 0x10]
    CHK eax, 0xBEEF, "store through ES = 0x3000 (linear 0x30010)"
    movzx eax, word [LIN(v_int_ax)]
    CHK eax, 0x4321, "AX from the INT 0x21 handler"
    movzx eax, byte [LIN(v_in)]
    CHK eax, 0x5A, "OUT/IN at allowed port 0x3FF"

    ; ---- the INT 0x21 handler's view ----
    CHK dword [h_esp], r0_top - 36, "handler ESP = ESP0 - 9 dwords"
    CHK dword [h_ds], 0, "DS null in the handler"
    CHK dword [h_es], 0, "ES null in the handler"
    CHK dword [h_fs], 0, "FS null in the handler"
    CHK dword [h_gs], 0, "GS null in the handler"
    CHK dword [h_frame], V(v_after_int), "frame: IP after INT"
    CHK dword [h_frame+4], V86_SEG, "frame: CS"
    mov eax, [h_frame+8]
    and eax, F_VM | 0x3000
    CHK eax, F_VM | 0x3000, "frame: EFLAGS with VM and IOPL 3"
    CHK dword [h_frame+12], V86_SP, "frame: SP"
    CHK dword [h_frame+16], V86_SS, "frame: SS"
    CHK dword [h_frame+20], V86_SEG, "frame: ES"
    CHK dword [h_frame+24], V86_SEG, "frame: DS"
    CHK dword [h_frame+28], V86_SEG + 1, "frame: FS"
    CHK dword [h_frame+32], V86_SEG + 2, "frame: GS"

    ; ---- #GP in V86 ----
    CHK dword [gp_count], 2, "two #GP"
    CHK dword [gp_err], 0, "CLI at IOPL 0: #GP(0)"
    CHK dword [gp_eip], V(v_cli), "CLI: saved IP"
    CHK dword [gp_cs], V86_SEG, "CLI: saved CS"
    CHK dword [gp_err+4], 0, "OUT to a denied port: #GP(0)"
    CHK dword [gp_eip+4], V(v_out_denied), "OUT: saved IP"

    ; ---- INT3 ----
    CHK dword [i3_eip], V(v_after_int3), "INT3: IP after it"
    mov eax, [i3_flags]
    and eax, F_VM | 0x3000
    CHK eax, F_VM, "INT3: VM set, IOPL 0"
    ret

enter_v86:
    mov [r0_saved_esp], esp
    push dword V86_SEG + 2          ; GS
    push dword V86_SEG + 1          ; FS
    push dword V86_SEG              ; DS
    push dword V86_SEG              ; ES
    push dword V86_SS
    push dword V86_SP
    push dword F_VM | 0x3000 | 0x2
    push dword V86_SEG
    push dword 0
    iretd

; INT 0x21 from V86: record, clear IOPL in the image, return AX = 0x4321.
int21_handler:
    mov [ss:h_esp], esp
    mov [ss:h_ds], ds
    mov [ss:h_es], es
    mov [ss:h_fs], fs
    mov [ss:h_gs], gs
%assign i 0
%rep 9
    mov eax, [esp + i*4]
    mov [ss:h_frame + i*4], eax
%assign i i+1
%endrep
    and dword [esp + 8], ~0x3000
    mov eax, 0x4321
    iretd

; #GP from V86: record, skip the 1-byte instruction.
gp_handler:
    push eax
    push ebx
    mov ebx, [ss:gp_count]
    mov eax, [esp + 8]
    mov [ss:gp_err + ebx*4], eax
    mov eax, [esp + 12]
    mov [ss:gp_eip + ebx*4], eax
    mov eax, [esp + 16]
    mov [ss:gp_cs], eax
    inc dword [ss:gp_count]
    inc dword [esp + 12]
    pop ebx
    pop eax
    add esp, 4
    iretd

; INT3 from V86: record and leave V86 mode for good.
int3_handler:
    mov eax, [esp]
    mov [ss:i3_eip], eax
    mov eax, [esp + 8]
    mov [ss:i3_flags], eax
    jmp come_back

; ---- V86 code, copied to 2000:0000 (DS = ES = CS) ----
bits 16
v86_blob:
    mov ax, cs
    mov [V(v_cs)], ax
    mov ax, ss
    mov [V(v_ss)], ax
    mov ax, 0x1234
    mov bx, 0x10
    mul bx
    mov [V(v_mul)], ax
    mov [V(v_mul) + 2], dx
    mov ax, V86_SS
    mov es, ax
    mov word [es:0x10], 0xBEEF
    mov ax, cs
    mov es, ax
    mov ax, 0x1111
    int 0x21
v_after_int:
    mov [V(v_int_ax)], ax
v_cli:
    cli
    mov dx, 0x3FF
    mov al, 0x5A
    out dx, al
    xor al, al
    in al, dx
    mov [V(v_in)], al
    mov dx, 0x3FE
v_out_denied:
    out dx, al
    int3
v_after_int3:
    jmp v_after_int3
align 4
v_cs: dw 0
v_ss: dw 0
v_mul: dd 0
v_int_ax: dw 0
v_in: db 0
v86_end:
bits 32

section .bss
h_esp: resd 1
h_ds: resd 1
h_es: resd 1
h_fs: resd 1
h_gs: resd 1
h_frame: resd 9
gp_count: resd 1
gp_err: resd 2
gp_eip: resd 2
gp_cs: resd 1
i3_eip: resd 1
i3_flags: resd 1
alignb 16
v86_tss: resb IOMAP + 0x2000 + 1
section .text

%include "tail.inc"
