; timer: remaps the PIC (ICW1-4, master 0x20, slave 0x28), programs PIT
; channel 0 in mode 2 at ~1 kHz (divisor 1193), STI + HLT loop until 50
; IRQ0 ticks (handler sends EOI, runs with IF=0, saw HLT's successor as the
; interrupted EIP at least once); RDTSC advanced meanwhile; the PIT count
; read through a latch stays within the divisor and moves; mode 3 via the
; read-back status byte; CLI holds a pending IRQ0 back for several PIT
; periods and STI then delivers exactly one.
%define TEST_NAME "timer"
%include "head.inc"
%include "pic.inc"

DIVISOR equ 1193

test_main:
    mov eax, 0x20
    mov ebx, irq0_handler
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; only IRQ0
    mov ah, 0xFF
    call pic_init
    mov al, 0x34                    ; ch0, lo/hi, mode 2, binary
    mov bx, DIVISOR
    call pit_ch0

    ; ---- 50 ticks with STI/HLT ----
    rdtsc
    mov [tsc0], eax
    mov [tsc0+4], edx
.wait:
    sti                             ; STI shadow: no IRQ between STI and HLT
    hlt
.after_hlt:
    cli
    cmp dword [ticks], 50
    jb .wait
    rdtsc
    sub eax, [tsc0]
    sbb edx, [tsc0+4]
    or eax, edx
    jnz .tsc_ok
    FAIL "rdtsc did not advance over 50 ticks"
.tsc_ok:
    cmp dword [ticks], 51           ; (one more may land right after IRET)
    jbe .ticks_ok
    FAIL "more ticks than HLT wake-ups allow"
.ticks_ok:
    CHK dword [if_in_handler], 0, "IF clear inside the IRQ handler"
    cmp dword [hlt_wakeups], 0
    jne .hw_ok
    FAIL "no tick interrupted the HLT (saved EIP after HLT)"
.hw_ok:

    ; ---- PIT counter reads ----
    call pit_read0
    movzx eax, ax
    cmp eax, DIVISOR
    jbe .cnt_ok
    FAIL "PIT count above divisor"
.cnt_ok:
    mov ebx, eax
    mov ecx, 1000
.spin:
    call pit_read0
    movzx eax, ax
    cmp eax, ebx
    jne .moved
    loop .spin
    FAIL "PIT count does not move"
.moved:

    ; ---- CLI holds the interrupt back ----
    mov esi, [ticks]
    mov ecx, 5                      ; wait for 5 counter reloads (5 periods)
    call pit_read0
    movzx ebx, ax
.reload_wait:
    call pit_read0
    movzx eax, ax
    cmp eax, ebx
    mov ebx, eax
    jbe .reload_wait                ; count went up: reloaded
    loop .reload_wait
    CHK [ticks], esi, "no IRQ delivered while IF=0"
    sti
    nop                             ; (STI shadow)
    nop
    cli
    inc esi
    CHK [ticks], esi, "STI delivers the one pending IRQ"

    ; ---- mode 3, read back ----
    mov al, 0x36                    ; ch0, lo/hi, mode 3
    mov bx, 0x1000
    call pit_ch0
    mov al, 0xE2                    ; read-back: status only, channel 0
    out 0x43, al
    in al, 0x40
    and eax, 0x3F                   ; access mode + mode + BCD
    CHK eax, 0x36, "read-back status: lo/hi, mode 3, binary"
    mov ecx, 100000
.m3:
    call pit_read0
    movzx eax, ax
    cmp eax, 0x1000
    ja .m3_bad
    loop .m3
    jmp .m3_ok
.m3_bad:
    FAIL "mode 3 count above divisor"
.m3_ok:
    mov al, 0xFF
    out 0x21, al
    ret

irq0_handler:
    push eax
    pushfd
    pop eax
    and eax, F_IF
    or [if_in_handler], eax
    mov eax, [esp+4]
    cmp eax, test_main.after_hlt
    jne .n
    inc dword [hlt_wakeups]
.n: inc dword [ticks]
    mov al, 0x20
    out 0x20, al                    ; EOI
    pop eax
    iretd

section .bss
ticks: resd 1
hlt_wakeups: resd 1
if_in_handler: resd 1
tsc0: resd 2
section .text
%include "tail.inc"
