; fill: a guest with a chosen amount of live memory that then does nothing, the
; subject of the migration benchmark's idle cases.  It writes a non-zero pattern
; to FILL MiB of RAM from 2 MiB (every page different: each dword holds its
; page's address plus one), checks the first and last dword of every page,
; prints
;     filled 1024 MiB
; and then idles: PIT channel 0 at 100 Hz, the CPU halted between ticks
; (STI; HLT).  A migration of it therefore moves FILL MiB of data pages and
; finds almost nothing dirtied while it runs.  After IDLE ticks it reports
; PASS and exits, so that run without options it is an ordinary test.
;
; Multiboot command line (after the kernel path), all optional:
;     fill=N    MiB to fill, default 4, at most what RAM holds above 2 MiB
;     idle=N    timer ticks to idle before PASS, default 10; 0: idle for ever
%define TEST_NAME "fill"
%include "head.inc"
%include "pic.inc"

REGION equ 0x200000
DEFAULT_FILL equ 4
DEFAULT_IDLE equ 10

test_main:
    mov dword [fill_mib], DEFAULT_FILL
    mov dword [idle], DEFAULT_IDLE
    mov esi, [mb_info]
    test dword [esi], 4             ; command line present?
    jz .opts_done
    mov edi, [esi+16]
    mov esi, k_fill
    call option
    jc .no_fill
    mov [fill_mib], eax
.no_fill:
    mov esi, k_idle
    call option
    jc .opts_done
    mov [idle], eax
.opts_done:
    ; Clamp to RAM: mem_upper is KiB of RAM from 1 MiB.  Without a memory map
    ; there is nothing to fill.
    mov esi, [mb_info]
    xor ecx, ecx
    test dword [esi], 1
    jz .clamp
    mov eax, [esi+8]
    shr eax, 10                     ; MiB from 1 MiB
    sub eax, 1                      ; MiB from 2 MiB
    jbe .clamp
    mov ecx, eax
.clamp:
    cmp [fill_mib], ecx
    jbe .sized
    mov [fill_mib], ecx
.sized:
    mov ebx, [fill_mib]
    shl ebx, 20
    add ebx, REGION                 ; end of the region

    mov edi, REGION
.fill:
    cmp edi, ebx
    jae .check
    lea eax, [edi+1]
    mov ecx, 1024
    rep stosd
    jmp .fill

.check:
    mov edi, REGION
.page:
    cmp edi, ebx
    jae .filled
    lea eax, [edi+1]
    cmp [edi], eax
    jne .bad
    cmp [edi+4092], eax
    jne .bad
    add edi, 4096
    jmp .page
.bad:
    FAIL "a filled page does not hold its pattern"

.filled:
    mov esi, s_filled
    call puts
    mov eax, [fill_mib]
    call putdec
    mov esi, s_mib
    call puts

    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; IRQ0 only
    mov ah, 0xFF
    call pic_init
    mov al, 0x34                    ; channel 0, lo/hi, mode 2
    mov bx, 11932                   ; 100 Hz
    call pit_ch0
.wait:
    sti                             ; (STI shadow: no tick between STI and HLT)
    hlt
    cli
    mov eax, [idle]
    test eax, eax
    jz .wait
    cmp [ticks], eax
    jb .wait
    mov al, 0xFF
    out 0x21, al
    ret                             ; PASS fill

%include "cmdline.inc"

irq0:
    inc dword [ticks]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

section .data
k_fill: db "fill=", 0
k_idle: db "idle=", 0
s_filled: db "filled ", 0
s_mib: db " MiB", 10, 0

section .bss
fill_mib: resd 1
idle: resd 1
ticks: resd 1
section .text
%include "tail.inc"
