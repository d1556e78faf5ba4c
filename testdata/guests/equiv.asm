; equiv: a guest for the savevm/loadvm equivalence test, built so that a
; stop lands often at each of four named points:
;
;   irq      inside the IRQ0 handler, before its EOI (PIC ISR bit 0 set): the
;            handler checksums 2400 dwords of the copy's destination, which
;            the interrupted foreground may be half-way through writing;
;   rep      in the middle of a 1 MiB `rep movsd` (EIP at the instruction, ECX
;            neither the full count nor zero);
;   fifo     with four bytes waiting in COM1's receive FIFO: the UART is put in
;            loopback, four bytes are transmitted (they come back to its own
;            receiver), some work is done, then they are read back and checked;
;   pit      with PIT channel 2 mid-count: a mode 0 one-shot is started
;            through port 0x61 (gate on), work shorter than the count is done
;            with interrupts off, then OUT2 is polled until it rises.
;
; Each round of the foreground does the four phases in that order (copy SRC to
; DST, FIFO window, PIT window, then one dword of SRC changes), and every
; ROUNDS rounds it prints
;     equiv 000001 sum 89ABCDEF
; where sum is a checksum of what the windows' work read from DST.  Nothing
; of it depends on timing, so the output is the same under any emulator at
; any speed.  With `ticks=1` the line goes on with what does depend on timing:
;     equiv 000001 sum 89ABCDEF ticks 000123 irq 01234567 pit 0456
; the IRQ0 count, the handler's running checksum and PIT channel 0's count as
; the foreground read it just before printing.  With --clock deterministic
; these are a pure function of the instruction count, so they show whether a
; run that was saved and restored went on exactly like one that was not.
;
; The `points` table in .data (found by its magic string) gives the addresses
; of the four points, so a test can tell from EIP and ECX where a stop landed.
;
; Multiboot command line (after the kernel path), all optional:
;     exit=N    after line N, report PASS and exit (status 1); default 3
;     rounds=N  rounds per line (1..), default 4
;     div=N     PIT channel 0 divisor (2..65535), default 1193 (1 kHz)
;     ticks=1   print the timing-dependent fields
%define TEST_NAME "equiv"
%include "head.inc"
%include "pic.inc"

SRC equ 0x400000
; 1.5 MiB above SRC, not 2: a software TLB with 256 direct-mapped entries (tern's)
; would give page n of both buffers the same entry and miss on every dword.
DST equ 0x580000
COPY_BYTES equ 0x100000
COPY_DWORDS equ COPY_BYTES / 4
; The handler's and the windows' checksums read this many dwords of DST.  The
; handler's 2400 take about 12,000 instructions: an emulator that stops only
; between slices of a few thousand instructions (tern with a deterministic
; clock: multiples of 4096, and timer deadlines, which fall just before the
; handler) can stop inside it only if it is longer than a slice.
IRQ_WORK equ 2400
FIFO_WORK equ 50
PIT_WORK equ 50
; Channel 2's count: 2 PIT clocks (1.68 us), longer than PIT_WORK's loop with a
; deterministic clock (5 ns per instruction: about 270 instructions).
PIT2_COUNT equ 2
FIFO_BYTES equ 4
MCR_NORMAL equ 0x03                 ; DTR | RTS, as serial_init leaves it
MCR_LOOP equ 0x13                   ; the same plus loopback
DEFAULT_EXIT equ 3
DEFAULT_ROUNDS equ 4
DEFAULT_DIV equ 1193

; SUM_DST: eax = byte offset into DST (any value: taken modulo the first half),
; ecx = dwords; returns their checksum in eax, esi clobbered.  A macro, not a
; call, so that each phase's work has its own addresses and a stop in it says
; which phase it was.
%macro SUM_DST 0
    and eax, (COPY_BYTES / 2 - 1) & ~3
    lea esi, [DST + eax]
    xor eax, eax
%%l:
    add eax, [esi]
    rol eax, 5
    add esi, 4
    dec ecx
    jnz %%l
%endmacro

test_main:
    mov dword [limit], DEFAULT_EXIT
    mov dword [rounds], DEFAULT_ROUNDS
    mov dword [divisor], DEFAULT_DIV
    mov esi, [mb_info]
    test dword [esi], 4             ; command line present?
    jz .opts_done
    mov edi, [esi+16]
    mov esi, k_exit
    call option
    jc .no_exit
    mov [limit], eax
.no_exit:
    mov esi, k_rounds
    call option
    jc .no_rounds
    test eax, eax
    jz .no_rounds
    mov [rounds], eax
.no_rounds:
    mov esi, k_div
    call option
    jc .no_div
    cmp eax, 2
    jb .no_div
    cmp eax, 0xFFFF
    ja .no_div
    mov [divisor], eax
.no_div:
    mov esi, k_ticks
    call option
    jc .opts_done
    mov [show_ticks], eax
.opts_done:

    ; SRC: a pseudo-random pattern (the DST copies of it are what gets summed).
    mov edi, SRC
    mov ecx, COPY_DWORDS
    mov eax, 0x2545F491
.fill:
    stosd
    imul eax, eax, 1103515245
    add eax, 12345
    dec ecx
    jnz .fill

    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; IRQ0 only
    mov ah, 0xFF
    call pic_init
    mov al, 0x34                    ; channel 0, lo/hi, mode 2
    mov ebx, [divisor]
    call pit_ch0
    sti

main_loop:
    ; ---- copy: 1 MiB, interrupted and resumed as the timer pleases
    mov esi, SRC
    mov edi, DST
    mov ecx, COPY_DWORDS
copy_rep:
    rep movsd

    ; ---- FIFO window
    mov dx, COM1+4
    mov al, MCR_LOOP
    out dx, al
    mov eax, [round]                ; the bytes: round-dependent, never all equal
    imul eax, eax, 0x01010101
    add eax, 0x4D3B2917
    mov [fifo_sent], eax
    mov ecx, FIFO_BYTES
    mov ebx, eax
.send:
    mov dx, COM1+5
.thre:
    in al, dx
    test al, 0x20
    jz .thre
    mov dx, COM1
    mov al, bl
    out dx, al
    shr ebx, 8
    dec ecx
    jnz .send
fifo_begin:                         ; here to fifo_end: FIFO_BYTES bytes wait
    mov eax, [round]
    imul eax, eax, 4 * 613
    mov ecx, FIFO_WORK
    SUM_DST
    add [line_sum], eax
fifo_end:
    mov ebx, [fifo_sent]
    mov ecx, FIFO_BYTES
.recv:
    mov dx, COM1+5
    in al, dx
    test al, 0x01                   ; data ready
    jnz .ready
    FAIL "loopback byte missing"
.ready:
    mov dx, COM1
    in al, dx
    cmp al, bl
    je .same
    FAIL "loopback byte differs"
.same:
    shr ebx, 8
    dec ecx
    jnz .recv
    mov dx, COM1+5
    in al, dx
    test al, 0x01
    jz .drained
    FAIL "loopback sent more bytes than it was given"
.drained:
    mov dx, COM1+4
    mov al, MCR_NORMAL
    out dx, al

    ; ---- PIT window: channel 2 one-shot, mid-count from pit_begin to pit_end
    cli
    in al, 0x61
    and al, 0xFC                    ; speaker off
    or al, 0x01                     ; GATE2 on
    out 0x61, al
    mov al, 0xB0                    ; channel 2, lo/hi, mode 0, binary
    out 0x43, al
    mov al, PIT2_COUNT & 0xFF
    out 0x42, al
    mov al, PIT2_COUNT >> 8
    out 0x42, al
pit_begin:
    mov eax, [round]
    imul eax, eax, 4 * 1021
    add eax, 4 * 4096
    mov ecx, PIT_WORK
    SUM_DST
    add [line_sum], eax
pit_end:
    sti
.out2:
    in al, 0x61
    test al, 0x20
    jz .out2

    ; ---- SRC changes by one dword, so that every copy differs from the last
    mov eax, [round]
    imul eax, eax, 4099
    and eax, COPY_DWORDS - 1
    mov ebx, [line_sum]
    add [SRC + eax*4], ebx

    mov eax, [round]
    inc eax
    mov [round], eax
    xor edx, edx
    div dword [rounds]
    test edx, edx
    jnz main_loop
    inc dword [lines]
    call print_line
    mov eax, [lines]
    cmp eax, [limit]
    jne main_loop
    cli
    ret                             ; PASS equiv

; print_line: "equiv 000001 sum 89ABCDEF" [" ticks 000123 irq 01234567 pit 0456"]
print_line:
    pushad
    call pit_read0                  ; first: the sooner, the less it depends on
    movzx ebx, ax
    mov esi, s_equiv
    call puts
    mov eax, [lines]
    mov ecx, 6
    call putfixed
    mov esi, s_sum
    call puts
    mov eax, [line_sum]
    call puthex
    cmp dword [show_ticks], 0
    je .eol
    mov esi, s_ticks
    call puts
    mov eax, [ticks]
    mov ecx, 6
    call putfixed
    mov esi, s_irq
    call puts
    mov eax, [irq_sum]
    call puthex
    mov esi, s_pit
    call puts
    mov eax, ebx
    mov ecx, 4
    call putfixed
.eol:
    mov al, 10
    call putc
    popad
    ret

%include "cmdline.inc"

; IRQ0: count the tick and checksum IRQ_WORK dwords of DST at an offset that
; moves with the tick count.  The PIC has IRQ0 in service from the first
; instruction up to and including the EOI's OUT at irq0_eoi.
irq0:
    pushad
    mov eax, [ticks]
    inc eax
    mov [ticks], eax
    imul eax, eax, 4 * 257
    mov ecx, IRQ_WORK
    SUM_DST
    rol dword [irq_sum], 1
    xor [irq_sum], eax
    mov al, 0x20
irq0_eoi:
    out 0x20, al
    popad
    iretd

section .data
k_exit: db "exit=", 0
k_rounds: db "rounds=", 0
k_div: db "div=", 0
k_ticks: db "ticks=", 0
s_equiv: db "equiv ", 0
s_sum: db " sum ", 0
s_ticks: db " ticks ", 0
s_irq: db " irq ", 0
s_pit: db " pit ", 0
; Where the named points are, for the test that stops the guest at them.
align 4
points:
    db "equiv points v1", 0         ; 16 bytes of magic
    dd irq0, irq0_eoi               ; irq: EIP in [irq0, irq0_eoi]
    dd copy_rep, COPY_DWORDS        ; rep: EIP = copy_rep, 0 < ECX < COPY_DWORDS
    dd fifo_begin, fifo_end         ; fifo: EIP in [fifo_begin, fifo_end)
    dd pit_begin, pit_end           ; pit: EIP in [pit_begin, pit_end)
    dd fifo_sent                    ; the bytes the FIFO holds, first in the low byte
    dd FIFO_BYTES
    dd SRC, DST                     ; the copy's source and destination

section .bss
limit: resd 1
rounds: resd 1
divisor: resd 1
show_ticks: resd 1
round: resd 1
lines: resd 1
line_sum: resd 1
fifo_sent: resd 1
ticks: resd 1
irq_sum: resd 1
section .text
%include "tail.inc"
