; demo: the default guest that `tern run` boots with no arguments.
; Prints a banner, then once a second (PIT channel 0 at 100 Hz, IRQ0 on the
; remapped PIC counts ticks) a line such as
;     uptime 00:00:07  primes found: 12345  largest: 123457
; The foreground never halts: it searches for primes by trial division
; without pause; the IRQ0 handler only counts ticks and raises a flag that
; makes the foreground print.  It runs until the emulator is told to quit
; (from the monitor), which makes it a good subject for savevm/loadvm and
; migration: the uptime and the prime count carry on where they were.
%define TEST_NAME "demo"
%include "head.inc"
%include "pic.inc"

HZ equ 100

test_main:
    mov esi, banner
    call puts
    mov eax, 0x20
    mov ebx, irq0
    mov cl, 0x8E
    call set_gate
    mov al, 0xFE                    ; IRQ0 only
    mov ah, 0xFF
    call pic_init
    mov al, 0x34                    ; channel 0, lo/hi, mode 2
    mov bx, 11932                   ; 1193182 / 11932 = 100 Hz
    call pit_ch0
    mov dword [count], 1            ; 2 is prime
    mov dword [largest], 2
    mov ebx, 3                      ; candidate
    sti

search:
    cmp byte [print_flag], 0
    je .test
    mov byte [print_flag], 0
    call report
.test:
    ; trial division of ebx by odd ecx while ecx*ecx <= ebx
    mov ecx, 3
.div:
    mov eax, ecx
    mul ecx
    cmp eax, ebx
    ja .prime
    mov eax, ebx
    xor edx, edx
    div ecx
    test edx, edx
    jz .next
    add ecx, 2
    jmp .div
.prime:
    inc dword [count]
    mov [largest], ebx
.next:
    add ebx, 2
    jnc search
    mov ebx, 3                      ; (after 2^32: start over)
    mov dword [count], 1
    jmp search

report:
    pushad
    mov esi, s_uptime
    call puts
    mov eax, [ticks]
    xor edx, edx
    mov ebx, HZ
    div ebx                         ; eax = seconds
    xor edx, edx
    mov ebx, 3600
    div ebx                         ; eax = hours, edx = rest
    call putdec2
    mov al, ':'
    call putc
    mov eax, edx
    xor edx, edx
    mov ebx, 60
    div ebx
    call putdec2
    mov al, ':'
    call putc
    mov eax, edx
    call putdec2
    mov esi, s_primes
    call puts
    mov eax, [count]
    call putdec
    mov esi, s_largest
    call puts
    mov eax, [largest]
    call putdec
    mov al, 10
    call putc
    popad
    ret

irq0:
    push eax
    push edx
    mov eax, [ticks]
    inc eax
    mov [ticks], eax
    xor edx, edx
    push ecx
    mov ecx, HZ
    div ecx
    pop ecx
    test edx, edx
    jnz .eoi
    mov byte [print_flag], 1
.eoi:
    mov al, 0x20
    out 0x20, al
    pop edx
    pop eax
    iretd

section .data
banner:
    db 10
    db "tern: a pure-software x86 PC emulator", 10
    db "This guest is here to be snapshotted and moved: savevm/loadvm and", 10
    db "live migration are what tern is for. Save it, restore it elsewhere,", 10
    db "and the uptime and the prime search below carry on where they were.", 10
    db 10, 0
s_uptime: db "uptime ", 0
s_primes: db "  primes found: ", 0
s_largest: db "  largest: ", 0
section .bss
ticks: resd 1
count: resd 1
largest: resd 1
print_flag: resb 1
section .text
%include "tail.inc"
