; ticks: the idle-guest workload.  PIT channel 0 at 100 Hz (mode 2), and the
; CPU halts between ticks (STI; HLT) until 100 IRQ0 ticks have been counted,
; then exits.  Around the wait it reads the RTC's seconds: one second of
; ticks must move them by 1 (2 if an update fell on both ends).  Printed:
;     ticks: 100, rtc seconds 41 -> 42
; A realtime emulator takes about a second of wall time for this and should
; spend almost none of it on the host CPU.
%define TEST_NAME "ticks"
%include "head.inc"
%include "pic.inc"

TICKS equ 100

test_main:
    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; IRQ0 only
    mov ah, 0xFF
    call pic_init
    mov al, RTC_B
    mov ah, 0x02                    ; 24-hour BCD, no RTC interrupts
    call rtc_write
    call read_seconds
    mov [sec0], al
    mov al, 0x34                    ; channel 0, lo/hi, mode 2
    mov bx, 11932                   ; 100 Hz
    call pit_ch0
.wait:
    sti                             ; (STI shadow: no tick between STI and HLT)
    hlt
    cli
    cmp dword [ticks], TICKS
    jb .wait
    call read_seconds
    mov [sec1], al
    mov al, 0xFF
    out 0x21, al

    mov esi, s_ticks
    call puts
    mov eax, [ticks]
    call putdec
    mov esi, s_rtc
    call puts
    mov al, [sec0]
    call putbcd
    mov esi, s_arrow
    call puts
    mov al, [sec1]
    call putbcd
    mov al, 10
    call putc

    CHK dword [ticks], TICKS, "tick count"
    mov al, [sec1]
    call bcd2bin
    movzx ecx, al
    mov al, [sec0]
    call bcd2bin
    movzx eax, al
    sub ecx, eax
    jns .pos
    add ecx, 60
.pos:
    cmp ecx, 1
    jb .bad
    cmp ecx, 2
    jbe .ok
.bad:
    FAIL "RTC seconds did not advance by 1-2 over 100 ticks at 100 Hz"
.ok:
    ret

; read_seconds: al = RTC seconds (BCD), read outside an update
read_seconds:
    call rtc_uip_clear
    jnc .r
    FAIL "UIP never cleared"
.r: mov al, RTC_SEC
    call rtc_read
    ret

irq0:
    inc dword [ticks]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

%include "rtc.inc"

section .data
s_ticks: db "ticks: ", 0
s_rtc: db ", rtc seconds ", 0
s_arrow: db " -> ", 0

section .bss
ticks: resd 1
sec0: resb 1
sec1: resb 1
section .text
%include "tail.inc"
