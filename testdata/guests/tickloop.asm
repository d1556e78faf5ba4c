; tickloop: output that depends on exactly when timer interrupts arrive.  PIT
; channel 0 at 1 kHz (IRQ0) and the RTC's periodic interrupt at 1024 Hz
; (IRQ8) run while the foreground increments a counter without pause; each
; IRQ0 records how many increments happened since the previous one.  After 32
; ticks it prints the 32 counts, the number of RTC interrupts, the TSC delta
; and the RTC's date and time, e.g.
;     loops per tick: 5012 9913 9911 ...
;     rtc interrupts: 33, tsc delta: 6403321
;     rtc: 2000-01-01 00:00:00
; With a deterministic clock two runs print the same bytes; with a realtime
; clock (or on QEMU) every run differs.  Passes if the foreground ran and the
; RTC interrupted.
%define TEST_NAME "tickloop"
%include "head.inc"
%include "pic.inc"

TICKS equ 32

test_main:
    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov eax, 0x28
    mov ebx, irq8
    call set_gate
    mov al, 0xFA                    ; IRQ0 and the cascade
    mov ah, 0xFE                    ; IRQ8
    call pic_init
    mov al, RTC_A
    mov ah, 0x26                    ; 1024 Hz
    call rtc_write
    mov al, RTC_B
    mov ah, 0x42                    ; PIE, 24-hour BCD
    call rtc_write
    mov al, RTC_C
    call rtc_read
    rdtsc
    mov [tsc0], eax
    mov [tsc0+4], edx
    mov al, 0x34
    mov bx, 1193                    ; 1 kHz
    call pit_ch0
    sti
.spin:
    inc dword [loops]
    cmp dword [ticks], TICKS
    jb .spin
    cli
    rdtsc
    sub eax, [tsc0]
    sbb edx, [tsc0+4]
    mov [tsc0], eax
    mov al, RTC_B
    mov ah, 0x02
    call rtc_write
    mov al, 0xFF
    out 0x21, al
    out 0xA1, al

    mov esi, s_loops
    call puts
    xor ebx, ebx
.print:
    mov eax, [counts + ebx*4]
    add [sum], eax
    call putdec
    mov al, ' '
    call putc
    inc ebx
    cmp ebx, TICKS
    jb .print
    mov al, 10
    call putc
    mov esi, s_rtc_irqs
    call puts
    mov eax, [rtc_irqs]
    call putdec
    mov esi, s_tsc
    call puts
    mov eax, [tsc0]
    call putdec
    mov al, 10
    call putc
    call rtc_uip_clear
    mov esi, s_rtc
    call puts
    mov al, RTC_CENTURY
    call rtc_read
    call putbcd
    mov al, RTC_YEAR
    call rtc_read
    call putbcd
    mov al, '-'
    call putc
    mov al, RTC_MONTH
    call rtc_read
    call putbcd
    mov al, '-'
    call putc
    mov al, RTC_DAY
    call rtc_read
    call putbcd
    mov al, ' '
    call putc
    mov al, RTC_HOUR
    call rtc_read
    call putbcd
    mov al, ':'
    call putc
    mov al, RTC_MIN
    call rtc_read
    call putbcd
    mov al, ':'
    call putc
    mov al, RTC_SEC
    call rtc_read
    call putbcd
    mov al, 10
    call putc

    cmp dword [sum], 0
    jne .ran
    FAIL "the foreground never ran between ticks"
.ran:
    cmp dword [rtc_irqs], 0
    jne .rtc_ok
    FAIL "no RTC periodic interrupt"
.rtc_ok:
    ret

irq0:
    push eax
    push ebx
    mov ebx, [ticks]
    cmp ebx, TICKS
    jae .eoi
    mov eax, [loops]
    mov [counts + ebx*4], eax
    mov dword [loops], 0
    inc dword [ticks]
.eoi:
    mov al, 0x20
    out 0x20, al
    pop ebx
    pop eax
    iretd

irq8:
    push eax
    mov al, RTC_C
    out 0x70, al
    in al, 0x71
    inc dword [rtc_irqs]
    mov al, 0x20
    out 0xA0, al
    out 0x20, al
    pop eax
    iretd

%include "rtc.inc"

section .data
s_loops: db "loops per tick: ", 0
s_rtc_irqs: db "rtc interrupts: ", 0
s_tsc: db ", tsc delta: ", 0
s_rtc: db "rtc: ", 0

section .bss
ticks: resd 1
loops: resd 1
rtc_irqs: resd 1
sum: resd 1
tsc0: resd 2
counts: resd TICKS
section .text
%include "tail.inc"
