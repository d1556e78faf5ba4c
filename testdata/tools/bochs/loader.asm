; Option-ROM Multiboot loader for running the test kernels under Bochs
; (a second reference next to QEMU; see run-bochs.sh).  mkoptrom.py appends
; the kernel image and fixes the size byte and checksum.  The BIOS calls
; the ROM's init entry during POST; we never return: enable A20, enter
; protected mode, copy the kernel to its load address, clear its BSS and jump
; to its entry with EAX=0x2BADB002 and EBX pointing to a zeroed info block.
ROMSEG equ 0xD000
ROMBASE equ ROMSEG * 16
bits 16
org 0
    db 0x55, 0xAA, 0                ; size patched by mkoptrom.py
    jmp init
init:
    cli
    in al, 0x92
    or al, 2
    and al, 0xFE
    out 0x92, al
    lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(ROMBASE + pm)
bits 32
pm:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    mov ebx, ROMBASE + kernel
    ; find the header in the first 8 KiB
    mov esi, ebx
.find:
    cmp dword [esi], 0x1BADB002
    je .found
    add esi, 4
    jmp .find
.found:
    mov edi, [esi+16]               ; load_addr
    mov ecx, [esi+20]               ; load_end_addr
    sub ecx, edi
    mov edx, esi
    sub edx, ebx                    ; header offset in the file
    mov eax, [esi+12]               ; header_addr
    sub eax, edi                    ; header offset in the image
    sub edx, eax
    push esi
    lea esi, [ebx + edx]
    cld
    rep movsb
    pop esi
    mov ecx, [esi+24]               ; bss_end_addr
    sub ecx, edi
    jbe .nobss
    xor eax, eax
    rep stosb
.nobss:
    mov edi, 0x9000                 ; zeroed Multiboot info
    mov ecx, 128
    xor eax, eax
    rep stosb
    mov eax, 0x2BADB002
    mov ebx, 0x9000
    jmp [esi+28]
align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr:
    dw 23
    dd ROMBASE + gdt
align 16
kernel:
