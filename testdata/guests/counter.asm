; counter: a guest for snapshot and migration tests.  PIT channel 0 at 1 kHz;
; every EVERY ticks the foreground prints the next line of
;     count 000001 pit 0871
;     count 000002 pit 0112
;     ...
; where the second number is PIT channel 0's count as the foreground last read
; it (once per sweep, see below) before the line became due,
; and in between it adds a running sweep number into every page of a region
; of RAM at 2 MiB, over and over, so that a live migration always finds dirty
; pages.  The line numbers let a tool check that two pieces of the output
; (before and after a migration, a savevm and a loadvm) join without a gap or a
; repeat.  The PIT count is read in the middle of whatever the emulator is
; doing, so with --clock deterministic it shows whether guest time depends
; only on the instructions executed: then the whole run, RAM included, is the
; same on every run, however the emulator slices it.
;
; Multiboot command line (after the kernel path), all optional:
;     exit=N    after line N, report PASS and exit (status 1); default: never
;     every=N   timer ticks per line (1..), default 10
;     pages=N   pages of the region, default 1024 (4 MiB), at most what RAM holds
%define TEST_NAME "counter"
%include "head.inc"
%include "pic.inc"

REGION equ 0x200000
DEFAULT_EVERY equ 10
DEFAULT_PAGES equ 1024

test_main:
    mov dword [every], DEFAULT_EVERY
    mov dword [pages], DEFAULT_PAGES
    mov esi, [mb_info]
    test dword [esi], 4             ; command line present?
    jz .opts_done
    mov edi, [esi+16]
    mov esi, k_exit
    call option
    jc .no_exit
    mov [limit], eax
.no_exit:
    mov esi, k_every
    call option
    jc .no_every
    test eax, eax
    jz .no_every
    mov [every], eax
.no_every:
    mov esi, k_pages
    call option
    jc .opts_done
    mov [pages], eax
.opts_done:
    ; Clamp the region to RAM: mem_upper is KiB of RAM from 1 MiB.
    mov esi, [mb_info]
    xor ecx, ecx
    test dword [esi], 1
    jz .clamp
    mov eax, [esi+8]
    shl eax, 10
    add eax, 0x100000               ; end of RAM
    sub eax, REGION
    jbe .clamp
    shr eax, 12
    mov ecx, eax
.clamp:
    cmp [pages], ecx
    jbe .sized
    mov [pages], ecx
.sized:
    mov eax, [every]
    mov [countdown], eax

    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; IRQ0 only
    mov ah, 0xFF
    call pic_init
    mov al, 0x34                    ; channel 0, lo/hi, mode 2
    mov bx, 1193                    ; 1193182 / 1193 = 1 kHz
    call pit_ch0
    xor ebx, ebx                    ; sweep number
    sti

main_loop:
    mov eax, [printed]
    cmp eax, [due]
    je .sweep
    inc eax
    mov [printed], eax
    call print_line
    cmp eax, [limit]
    je .done
.sweep:
    ; One dword per page, at an offset that moves with each sweep, gets the sweep
    ; number added: every write ever made shows in the final contents, so a write
    ; that a migration lost cannot be hidden by a later one.
    call pit_read0
    mov [pit_seen], ax
    mov ecx, [pages]
    test ecx, ecx
    jz main_loop
    mov edi, REGION
    mov edx, ebx
    shl edx, 2
    and edx, 0xFFC
.page:
    add [edi+edx], ebx
    add edi, 4096
    dec ecx
    jnz .page
    inc ebx
    jmp main_loop
.done:
    cli
    ret                             ; PASS counter

; print_line: eax = line number, as "count 000123 pit 0456"
print_line:
    pushad
    mov esi, s_count
    call puts
    mov ecx, 6
    call putfixed
    mov esi, s_pit
    call puts
    movzx eax, word [pit_seen]
    mov ecx, 4
    call putfixed
    mov al, 10
    call putc
    popad
    ret

%include "cmdline.inc"

irq0:
    push eax
    dec dword [countdown]
    jnz .eoi
    mov eax, [every]
    mov [countdown], eax
    inc dword [due]
.eoi:
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

section .data
k_exit: db "exit=", 0
k_every: db "every=", 0
k_pages: db "pages=", 0
s_count: db "count ", 0
s_pit: db " pit ", 0

section .bss
limit: resd 1
every: resd 1
pages: resd 1
countdown: resd 1
due: resd 1
printed: resd 1
pit_seen: resd 1
section .text
%include "tail.inc"
