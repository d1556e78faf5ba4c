; rtc: the MC146818 RTC and CMOS RAM.  PIT channel 0 runs at 100 Hz (IRQ0
; counts ticks: the time base for timeouts and rates); the RTC's IRQ 8 handler
; reads register C and counts the flags it finds.  Checks:
;   - CMOS memory size bytes agree with the Multiboot memory size: base 640 KiB
;     (0x15), extended KiB (0x17 = 0x30, capped at 0xFFFF, or 0xFC00 by some
;     BIOSes), 64 KiB units above
;     16 MiB (0x34), nothing above 4 GiB (0x5B-0x5D); register D's VRT bit;
;   - the date and time right after an update are valid BCD in range and
;     printed; the same fields read in binary mode (B.DM) and the hour in
;     12-hour mode (PM in bit 7) agree with them;
;   - waiting for UIP to rise and fall: the seconds move on by one; UF is set
;     (without UIE) and a read of C clears it;
;   - update-ended interrupts (UIE): two of them, 100 +- 10 ticks apart;
;   - periodic interrupts (PIE) at rate 9 = 128 Hz: 128 +- 16 in 100 ticks;
;   - alarm interrupt (AIE) with the hour and minute alarms "don't care"
;     (0xC0-0xFF) and the second alarm 2 s ahead: it comes 150-250 ticks later,
;     with the seconds equal to the alarm value.
%define TEST_NAME "rtc"
%include "head.inc"
%include "pic.inc"

; CHKBCD byte-var, lo, hi, "what": valid BCD within lo..hi (BCD bounds)
%macro CHKBCD 4
    mov al, %1
    mov bl, %2
    mov bh, %3
    call valid_bcd
    jnc %%ok
    movzx eax, byte %1
    CHK eax, -1, %4
%%ok:
%endmacro

; WAIT_FOR var, n, "what": halts until var != 0, failing after n ticks
%macro WAIT_FOR 3
    mov edx, [ticks]
    add edx, %2
%%w:
    cmp dword %1, 0
    jne %%done
    cmp [ticks], edx
    jb %%h
    FAIL %3
%%h:
    sti
    hlt
    cli
    jmp %%w
%%done:
%endmacro

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
    mov al, RTC_B
    mov ah, 0x02                    ; 24-hour BCD, no interrupts
    call rtc_write
    mov al, RTC_A
    mov ah, 0x26                    ; 32.768 kHz, rate 6
    call rtc_write
    mov al, RTC_C
    call rtc_read
    mov al, 0x34
    mov bx, 11932                   ; 100 Hz
    call pit_ch0

    ; ---- CMOS configuration ----
    mov al, 0x15
    call cmos_word
    CHK eax, 640, "base memory KiB (0x15-0x16)"
    mov al, 0x17
    call cmos_word
    mov ebx, eax
    mov al, 0x30
    call cmos_word
    CHK eax, ebx, "extended memory 0x30-0x31 equals 0x17-0x18"
    mov esi, [mb_info]
    test dword [esi], 1             ; flags: mem_lower/mem_upper valid?
    jz .hi_ok                       ; (a loader without them: nothing to compare)
    mov edx, [esi+8]                ; mem_upper: KiB from 1 MiB to the first hole
    cmp eax, 0xFC00                 ; capped (QEMU: 0xFFFF, Bochs: 0xFC00)?
    jb .ext_exact
    cmp edx, eax
    jae .ext_ok
.ext_exact:
    cmp eax, edx
    jb .ext_bad
    sub eax, edx
    cmp eax, 1024
    jbe .ext_ok
.ext_bad:
    FAIL "extended memory (0x30) disagrees with mem_upper"
.ext_ok:
    mov al, 0x34
    call cmos_word
    shl eax, 6                      ; KiB above 16 MiB
    lea ecx, [edx + 1024 - 16384]
    test ecx, ecx
    jns .hi_cmp
    CHK eax, 0, "0x34: no memory above 16 MiB"
    jmp .hi_ok
.hi_cmp:
    sub eax, ecx
    jns .hi_abs
    neg eax
.hi_abs:
    cmp eax, 1024
    jbe .hi_ok
    FAIL "memory above 16 MiB (0x34-0x35) disagrees with mem_upper"
.hi_ok:
    mov al, 0x5B
    call rtc_read
    mov bl, al
    mov al, 0x5C
    call rtc_read
    or bl, al
    mov al, 0x5D
    call rtc_read
    or bl, al
    movzx eax, bl
    CHK eax, 0, "memory above 4 GiB (0x5B-0x5D)"
    mov al, RTC_D
    call rtc_read
    and eax, 0x80
    CHK eax, 0x80, "register D: VRT"

    ; ---- the date, in BCD, binary and 12-hour forms ----
    call rtc_wait_update
    jnc .upd1
    FAIL "no update seen (UIP)"
.upd1:
    mov edi, bcd_time
    call read_time
    CHKBCD [bcd_time+0], 0x00, 0x59, "seconds"
    CHKBCD [bcd_time+1], 0x00, 0x59, "minutes"
    CHKBCD [bcd_time+2], 0x00, 0x23, "hours"
    CHKBCD [bcd_time+3], 0x01, 0x31, "day of month"
    CHKBCD [bcd_time+4], 0x01, 0x12, "month"
    CHKBCD [bcd_time+5], 0x00, 0x99, "year"
    CHKBCD [bcd_time+6], 0x19, 0x21, "century"
    mov al, RTC_B
    mov ah, 0x06                    ; 24-hour binary
    call rtc_write
    mov edi, bin_time
    call read_time
    mov ecx, 7
    xor esi, esi
.cmp_bin:
    mov al, [bcd_time+esi]
    call bcd2bin
    cmp al, [bin_time+esi]
    je .bin_next
    movzx eax, byte [bin_time+esi]
    CHK eax, -1, "binary mode field differs from BCD"
.bin_next:
    inc esi
    loop .cmp_bin
    mov al, RTC_B
    mov ah, 0x00                    ; 12-hour BCD
    call rtc_write
    mov al, RTC_HOUR
    call rtc_read
    movzx ebx, al
    mov al, [bcd_time+2]
    call bcd2bin
    xor ecx, ecx
    cmp al, 12
    jb .am
    mov ecx, 0x80
    sub al, 12
.am:
    test al, al
    jnz .h12
    mov al, 12
.h12:
    call bin2bcd
    movzx eax, al
    or eax, ecx
    CHK ebx, eax, "12-hour hour register"
    mov al, RTC_B
    mov ah, 0x02
    call rtc_write

    mov esi, s_date
    call puts
    mov al, [bcd_time+6]
    call putbcd
    mov al, [bcd_time+5]
    call putbcd
    mov al, '-'
    call putc
    mov al, [bcd_time+4]
    call putbcd
    mov al, '-'
    call putc
    mov al, [bcd_time+3]
    call putbcd
    mov al, ' '
    call putc
    mov al, [bcd_time+2]
    call putbcd
    mov al, ':'
    call putc
    mov al, [bcd_time+1]
    call putbcd
    mov al, ':'
    call putc
    mov al, [bcd_time+0]
    call putbcd
    mov al, 10
    call putc

    ; ---- the next update: seconds + 1, UF set, C cleared by reading ----
    mov al, RTC_SEC
    call rtc_read
    call bcd2bin
    inc al
    cmp al, 60
    jb .nowrap
    xor al, al
.nowrap:
    call bin2bcd
    movzx ebx, al
    mov al, RTC_C
    call rtc_read
    call rtc_wait_update
    jnc .upd2
    FAIL "no second update seen (UIP)"
.upd2:
    mov al, RTC_SEC
    call rtc_read
    movzx eax, al
    CHK eax, ebx, "seconds after the update"
    mov al, RTC_C
    call rtc_read
    and eax, 0xD0                   ; (AF too if the alarm registers match)
    CHK eax, 0x10, "register C after an update: UF, no IRQF or PF"
    mov al, RTC_C
    call rtc_read
    and eax, 0xF0
    CHK eax, 0, "register C cleared by the previous read"

    ; ---- update-ended interrupts ----
    mov dword [uf_count], 0
    mov byte [c_seen], 0
    mov al, RTC_B
    mov ah, 0x12                    ; UIE
    call rtc_write
    WAIT_FOR [uf_count], 300, "no update-ended interrupt"
    mov eax, [uf_tick]
    mov [uf_tick0], eax
    mov dword [uf_count], 0
    WAIT_FOR [uf_count], 200, "no second update-ended interrupt"
    mov al, RTC_B
    mov ah, 0x02
    call rtc_write
    mov eax, [uf_tick]
    sub eax, [uf_tick0]
    mov [dt], eax
    cmp eax, 90
    jb .uf_bad
    cmp eax, 110
    jbe .uf_ok
.uf_bad:
    CHK dword [dt], 100, "ticks between update-ended interrupts"
.uf_ok:
    movzx eax, byte [c_seen]
    and eax, 0x90
    CHK eax, 0x90, "IRQF and UF seen in C"

    ; ---- periodic interrupts at 128 Hz ----
    mov al, RTC_A
    mov ah, 0x29                    ; rate 9: 7.8125 ms
    call rtc_write
    mov al, RTC_C
    call rtc_read
    mov byte [c_seen], 0
    mov eax, [ticks]
.edge:
    sti
    hlt
    cli
    cmp [ticks], eax
    je .edge
    mov dword [pf_count], 0
    mov edx, [ticks]
    add edx, 100
    mov al, RTC_B
    mov ah, 0x42                    ; PIE
    call rtc_write
.pf_wait:
    sti
    hlt
    cli
    cmp [ticks], edx
    jb .pf_wait
    mov al, RTC_B
    mov ah, 0x02
    call rtc_write
    mov eax, [pf_count]
    mov [dt], eax
    mov esi, s_periodic
    call puts
    call putdec
    mov al, 10
    call putc
    mov eax, [dt]
    cmp eax, 112
    jb .pf_bad
    cmp eax, 144
    jbe .pf_ok
.pf_bad:
    CHK dword [dt], 128, "periodic interrupts in 100 ticks at 128 Hz"
.pf_ok:
    movzx eax, byte [c_seen]
    and eax, 0xC0
    CHK eax, 0xC0, "IRQF and PF seen in C"
    mov al, RTC_A
    mov ah, 0x26
    call rtc_write

    ; ---- alarm, hours and minutes "don't care", seconds 2 s ahead ----
    call rtc_wait_update
    jnc .upd3
    FAIL "no update seen before the alarm test"
.upd3:
    mov al, RTC_SEC
    call rtc_read
    call bcd2bin
    add al, 2
    cmp al, 60
    jb .a_nowrap
    sub al, 60
.a_nowrap:
    call bin2bcd
    mov [alarm], al
    mov ah, al
    mov al, RTC_SEC_ALARM
    call rtc_write
    mov al, RTC_MIN_ALARM
    mov ah, 0xFF
    call rtc_write
    mov al, RTC_HOUR_ALARM
    mov ah, 0xC0
    call rtc_write
    mov al, RTC_C
    call rtc_read
    mov dword [af_count], 0
    mov eax, [ticks]
    mov [af_tick0], eax
    mov al, RTC_B
    mov ah, 0x22                    ; AIE
    call rtc_write
    WAIT_FOR [af_count], 400, "no alarm interrupt"
    mov al, RTC_SEC
    call rtc_read
    mov ebx, eax
    mov al, RTC_B
    mov ah, 0x02
    call rtc_write
    movzx eax, bl
    movzx ecx, byte [alarm]
    CHK eax, ecx, "seconds at the alarm interrupt"
    mov eax, [af_tick]
    sub eax, [af_tick0]
    mov [dt], eax
    cmp eax, 150
    jb .af_bad
    cmp eax, 250
    jbe .af_ok
.af_bad:
    CHK dword [dt], 200, "ticks until the alarm 2 s ahead"
.af_ok:
    mov al, 0xFF
    out 0x21, al
    out 0xA1, al
    ret

; read_time: edi -> 7 bytes: sec, min, hour, day, month, year, century
read_time:
    push esi
    push eax
    mov esi, time_regs
.l: mov al, [esi]
    call rtc_read
    stosb
    inc esi
    cmp esi, time_regs + 7
    jb .l
    pop eax
    pop esi
    ret

; cmos_word: al = low index -> eax = the little-endian word at al, al+1
cmos_word:
    push ecx
    movzx ecx, al
    inc al
    call rtc_read
    mov ch, al                      ; high byte
    mov al, cl
    call rtc_read
    mov cl, al                      ; low byte
    movzx eax, cx
    pop ecx
    ret

; valid_bcd: al = value, bl = lowest, bh = highest (BCD); CF=1 if not in range
valid_bcd:
    push eax
    mov ah, al
    and ah, 0x0F
    cmp ah, 9
    ja .bad
    cmp al, 0xA0
    jae .bad
    cmp al, bl
    jb .bad
    cmp al, bh
    ja .bad
    pop eax
    clc
    ret
.bad:
    pop eax
    stc
    ret

irq0:
    inc dword [ticks]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

irq8:
    push eax
    push ebx
    mov al, RTC_C
    out 0x70, al
    in al, 0x71
    or [c_seen], al
    mov ebx, [ticks]
    test al, 0x40
    jz .no_pf
    inc dword [pf_count]
.no_pf:
    test al, 0x10
    jz .no_uf
    inc dword [uf_count]
    mov [uf_tick], ebx
.no_uf:
    test al, 0x20
    jz .no_af
    inc dword [af_count]
    mov [af_tick], ebx
.no_af:
    mov al, 0x20
    out 0xA0, al
    out 0x20, al
    pop ebx
    pop eax
    iretd

%include "rtc.inc"

section .data
time_regs: db RTC_SEC, RTC_MIN, RTC_HOUR, RTC_DAY, RTC_MONTH, RTC_YEAR, RTC_CENTURY
s_date: db "date ", 0
s_periodic: db "periodic interrupts in 100 ticks: ", 0

section .bss
ticks: resd 1
pf_count: resd 1
uf_count: resd 1
af_count: resd 1
uf_tick: resd 1
uf_tick0: resd 1
af_tick: resd 1
af_tick0: resd 1
dt: resd 1
bcd_time: resb 8
bin_time: resb 8
c_seen: resb 1
alarm: resb 1
section .text
%include "tail.inc"
