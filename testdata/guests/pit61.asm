; pit61: PIT channel 2 through system control port B (0x61), the way BIOSes
; and Linux calibrate their delay loops.  Channel 0 runs free in mode 2 with
; the full count (interrupts masked) as the reference clock: the difference of
; two latched counts is the elapsed PIT ticks.
;   - port 0x61 bits 0 (GATE2) and 1 (speaker data) read back as written;
;   - channel 2 in mode 0 with the gate high, count 11932 (10 ms): OUT2 (bit 5)
;     reads 0 after programming and 1 once the count has run out, which takes
;     10 ms (checked against channel 0: at least 90 % of 11932 ticks, and at
;     most 3 times that, for a busy host); the refresh bit (bit 4) keeps
;     toggling meanwhile; OUT2 then stays high;
;   - channel 2's latched count goes down while it counts;
;   - a rising gate restarts a mode 2 count.  (Mode 1, the gate-triggered
;     one-shot, is left out: QEMU's OUT2 in mode 1 is inverted.)
; Prints the calibration: "ch2 10 ms = N ch0 ticks, P polls".
%define TEST_NAME "pit61"
%include "head.inc"
%include "pic.inc"

CAL equ 11932                       ; 10 ms

test_main:
    mov al, 0xFF
    out 0x21, al
    out 0xA1, al
    mov al, 0x34                    ; channel 0, lo/hi, mode 2, count 65536
    xor bx, bx
    call pit_ch0

    ; ---- port 0x61 gate and speaker bits ----
    in al, 0x61
    and al, 0x0C                    ; keep the parity/channel check enables
    or al, 0x01                     ; GATE2 on, speaker data off
    out 0x61, al
    in al, 0x61
    and eax, 0x03
    CHK eax, 0x01, "port 0x61: gate on, speaker data off"

    ; ---- channel 2 mode 0, 10 ms ----
    mov bx, CAL
    mov al, 0xB0                    ; channel 2, lo/hi, mode 0, binary
    call pit_ch2
    in al, 0x61
    and eax, 0x20
    CHK eax, 0, "OUT2 low after programming mode 0"
    call pit_read0
    mov [c0], ax
    in al, 0x61
    and al, 0x10
    mov bl, al                      ; refresh bit
    xor esi, esi                    ; toggles
    xor edi, edi                    ; polls
.poll:
    in al, 0x61
    inc edi
    mov ah, al
    and ah, 0x10
    cmp ah, bl
    je .same
    mov bl, ah
    inc esi
.same:
    test al, 0x20
    jnz .done
    cmp edi, 0x40000000
    jb .poll
    FAIL "OUT2 never went high"
.done:
    call pit_read0
    mov cx, [c0]
    sub cx, ax
    movzx eax, cx
    mov [elapsed], eax
    mov [polls], edi
    mov [toggles], esi
    mov esi, s_cal
    call puts
    call putdec
    mov esi, s_cal2
    call puts
    mov eax, [polls]
    call putdec
    mov esi, s_cal3
    call puts
    mov eax, [elapsed]
    cmp eax, CAL * 9 / 10
    jb .cal_bad
    cmp eax, CAL * 3                ; (a busy host may be late to read channel 0)
    jbe .cal_ok
.cal_bad:
    CHK dword [elapsed], CAL, "channel 0 ticks while channel 2 counted 10 ms"
.cal_ok:
    cmp dword [toggles], 2
    jae .refresh_ok
    FAIL "refresh bit (0x61 bit 4) did not toggle"
.refresh_ok:
    mov ecx, 10000
.stays:
    in al, 0x61
    test al, 0x20
    jnz .high
    FAIL "OUT2 fell again after the terminal count"
.high:
    loop .stays

    ; ---- speaker data bit (counter stopped high: no tone) ----
    in al, 0x61
    or al, 0x02
    out 0x61, al
    in al, 0x61
    and eax, 0x03
    CHK eax, 0x03, "port 0x61: speaker data on"
    in al, 0x61
    and al, 0xFD
    out 0x61, al

    ; ---- the channel 2 count goes down ----
    mov bx, CAL
    mov al, 0xB0
    call pit_ch2
    call pit_read2
    movzx ebx, ax
    call delay_1ms
    call pit_read2
    movzx eax, ax
    cmp eax, ebx
    jb .down
    CHK eax, -1, "channel 2 count did not go down"
.down:

    ; ---- a rising gate restarts a mode 2 count ----
    mov bx, 0xFFFF
    mov al, 0xB4                    ; channel 2, lo/hi, mode 2
    call pit_ch2
    call delay_1ms
    call delay_1ms
    call delay_1ms
    call pit_read2
    movzx ebx, ax                   ; about 0xFFFF - 3579
    cmp ebx, 0xFFFF - 3000
    jb .ran
    CHK ebx, 0xFFFF - 3579, "mode 2 count after 3 ms"
.ran:
    in al, 0x61
    and al, 0xFC                    ; gate off ...
    out 0x61, al
    or al, 0x01                     ; ... and on: trigger
    out 0x61, al
    call delay_1ms                  ; (the reload waits for the next clock)
    call pit_read2
    movzx eax, ax
    cmp eax, ebx
    ja .restarted
    CHK eax, 0xFFFF, "mode 2 count after a rising gate"
.restarted:
    in al, 0x61
    and al, 0xFC
    out 0x61, al
    ret

; pit_ch2: al = control word, bx = count
pit_ch2:
    out 0x43, al
    mov al, bl
    out 0x42, al
    mov al, bh
    out 0x42, al
    ret

; pit_read2: ax = channel 2 count (counter latch)
pit_read2:
    mov al, 0x80
    out 0x43, al
    in al, 0x42
    mov ah, al
    in al, 0x42
    xchg al, ah
    ret

; delay_1ms: waits for 1193 channel 0 ticks
delay_1ms:
    pushad
    call pit_read0
    mov bx, ax
.w: call pit_read0
    mov cx, bx
    sub cx, ax
    cmp cx, 1193
    jb .w
    popad
    ret

section .data
s_cal: db "ch2 10 ms = ", 0
s_cal2: db " ch0 ticks, ", 0
s_cal3: db " polls", 10, 0

section .bss
c0: resw 1
elapsed: resd 1
polls: resd 1
toggles: resd 1
section .text
%include "tail.inc"
