; realmode: a 64 KiB BIOS ROM image (F0000-FFFFF, reset vector F000:FFF0),
; run with  qemu-system-i386 -machine pc -bios realmode.rom ...
; No BIOS runs first: this ROM initialises COM1 itself.
; Real mode: segment:offset arithmetic (aliases, 64 KiB offset wrap with
; 16-bit addressing), 16-bit ALU/flags, MUL/DIV, shifts, IVT handlers for
; INT 0x80 (frame FLAGS/CS/IP, IF cleared, IRET), #DE (saved IP = the DIV)
; and #UD (saved IP = the UD2), 0x66/0x67 prefixes (32-bit registers,
; 32-bit addressing), then LGDT + CR0.PE + far JMP to 32-bit protected mode,
; checks there (flat data sees real-mode writes, 32-bit arithmetic, CS), and
; back to real mode through a 16-bit segment (CR0.PE cleared, far JMP).
; Result on COM1 ("PASS realmode") and isa-debug-exit port 0xF4.

ROMBASE equ 0xF0000
COM1 equ 0x3F8
bits 16
org 0

%assign CHECKNO 0
; CHK16 a, b   - 16/32-bit compare in real mode
%macro CHK16 2
  %assign CHECKNO CHECKNO+1
    cmp %1, %2
    je %%ok
    mov ax, CHECKNO
    jmp fail16
%%ok:
%endmacro
%macro CHK32 2
  %assign CHECKNO CHECKNO+1
    cmp %1, %2
    je %%ok
    mov eax, CHECKNO
    jmp fail32
%%ok:
%endmacro

start:
    cli
    cld
    xor ax, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ds, ax
    mov es, ax
    call serial_init16

    ; ---- segment:offset arithmetic ----
    mov ax, 0x1234
    mov ds, ax
    mov word [0x10], 0xBEEF         ; linear 0x12350
    mov ax, 0x1235
    mov es, ax
    CHK16 word [es:0x0000], 0xBEEF
    mov ax, 0x1000
    mov es, ax
    CHK16 word [es:0x2350], 0xBEEF  ; 0x1000:0x2350 = 0x12350
    mov ax, 0x2000
    mov ds, ax
    mov byte [0x0000], 0x5A         ; linear 0x20000
    mov ax, 0x1FFF
    mov es, ax
    CHK16 byte [es:0x0010], 0x5A
    mov ax, 0x1000
    mov ds, ax
    mov byte [0x0001], 0x77         ; linear 0x10001
    mov bx, 0xFFFF
    mov si, 2
    CHK16 byte [bx+si], 0x77        ; offset wraps to 0x0001
    mov bp, 0xFFF0
    mov ax, 0x1000
    mov ss, ax
    mov word [bp+0x12], 0x1357      ; SS:0x0002 -> linear 0x10002
    xor ax, ax
    mov ss, ax
    CHK16 word [0x0002], 0x1357 ; (DS = 0x1000)
    xor ax, ax
    mov ds, ax
    mov es, ax

    ; ---- 16-bit ALU ----
    mov ax, 0x7FFF
    add ax, 1
    pushf
    pop dx
    CHK16 ax, 0x8000
    and dx, 0x8D5
    CHK16 dx, 0x894                 ; OF SF AF PF
    mov ax, 0x0001
    sub ax, 2
    sbb bx, bx                      ; CF=1 -> bx = -1
    CHK16 ax, 0xFFFF
    CHK16 bx, 0xFFFF
    mov ax, 300
    mov cx, 300
    mul cx
    CHK16 ax, 0x5F90
    CHK16 dx, 0x0001
    mov dx, 1
    mov ax, 0x0005                  ; 65541 / 10
    mov cx, 10
    div cx
    CHK16 ax, 6554
    CHK16 dx, 1
    mov ax, 0x8001
    rol ax, 4
    CHK16 ax, 0x0018
    mov ax, 0x00F0
    sar ax, 4
    CHK16 ax, 0x000F
    mov ax, 0x1234
    xchg ah, al
    CHK16 ax, 0x3412

    ; ---- IVT: INT 0x80, #DE, #UD ----
    mov word [0x80*4], int80_handler
    mov word [0x80*4+2], 0xF000
    mov word [0*4], de_handler
    mov word [0*4+2], 0xF000
    mov word [6*4], ud_handler
    mov word [6*4+2], 0xF000
    sti
    mov ax, 0x1111
    mov [frame_sp], sp
    int 0x80
.after_int:
    cli
    CHK16 ax, 0x2222                ; handler ran
    CHK16 word [saved_ip], .after_int
    CHK16 word [saved_cs], 0xF000
    mov ax, [saved_fl]
    and ax, 0x200
    CHK16 ax, 0x200                 ; IF was set in the pushed FLAGS
    CHK16 word [inner_if], 0        ; and clear inside the handler
    mov ax, [frame_sp]
    sub ax, [handler_sp]
    CHK16 ax, 6                     ; 3 words pushed

    mov word [resume], .de_resume
    mov ax, 0x1234
    xor bl, bl
.de_insn:
    div bl
    mov ax, 99                      ; (skipped by the handler)
.de_resume:
    CHK16 word [fault_ip], .de_insn
    CHK16 word [fault_vec], 0
    CHK16 ax, 0x1234
    mov word [resume], .ud_resume
.ud_insn:
    ud2
.ud_resume:
    CHK16 word [fault_ip], .ud_insn
    CHK16 word [fault_vec], 6

    ; ---- 0x66 / 0x67 prefixes in real mode ----
    mov eax, 0x12345678
    mov ebx, 0x11111111
    add eax, ebx
    CHK16 eax, 0x23456789
    push eax
    pop dx
    pop cx
    CHK16 dx, 0x6789
    CHK16 cx, 0x2345
    mov dword [0x600], 0xCAFEBABE
    mov ebx, 0x500
    mov ecx, 0x40
    mov eax, [ebx+ecx*4]            ; 67: 32-bit addressing
    CHK16 eax, 0xCAFEBABE
    mov edx, 0xFFFF0000
    shld edx, eax, 16
    CHK16 edx, 0x0000CAFE
    movzx esi, word [0x600]
    CHK16 esi, 0xBABE

    ; ---- to protected mode ----
    mov si, gdt_rom
    mov di, 0x800
    mov cx, gdt_rom_len
    cs rep movsb                    ; GDT into RAM at 0x800
    lgdt [cs:gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:(ROMBASE + pm32)

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7C00
    CHK32 word [0x12350], 0xBEEF    ; written in real mode via 1234:0010
    CHK32 dword [0x600], 0xCAFEBABE
    mov eax, cs
    CHK32 eax, 0x08
    mov eax, 0xFFFFFFFF
    add eax, 2
    CHK32 eax, 1
    mov ecx, 0x10000
    imul ecx, ecx
    CHK32 ecx, 0
    mov eax, cr0
    and eax, 1
    CHK32 eax, 1
    mov dword [0x12350], 0x600DF00D
    ; ---- back to real mode ----
    mov ax, 0x20                    ; 16-bit data, 64 KiB limit
    mov ds, ax
    mov es, ax
    mov ss, ax
    jmp 0x18:rm16                   ; 16-bit code segment, base 0xF0000
bits 16
rm16:
    mov eax, cr0
    and al, 0xFE
    mov cr0, eax
    jmp 0xF000:rm_back
rm_back:
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ax, 0x1235
    mov es, ax
    CHK16 dword [es:0], 0x600DF00D  ; seen through real-mode segments again
    mov ax, cs
    CHK16 ax, 0xF000
    int 0x80                        ; IVT still works
    CHK16 ax, 0x2222

    mov si, msg_pass
    call puts16
    xor al, al
    out 0xF4, al
.h: hlt
    jmp .h

fail16:
    push ax
    mov si, msg_fail
    call puts16
    pop ax
    push ax
    call putdec16
    mov si, msg_nl
    call puts16
    pop ax
    out 0xF4, al
.h: hlt
    jmp .h

int80_handler:
    mov [handler_sp], sp
    push bp
    mov bp, sp
    mov ax, [bp+2]
    mov [saved_ip], ax
    mov ax, [bp+4]
    mov [saved_cs], ax
    mov ax, [bp+6]
    mov [saved_fl], ax
    pushf
    pop ax
    and ax, 0x200
    mov [inner_if], ax
    pop bp
    mov ax, 0x2222
    iret

de_handler:
    push bp
    mov bp, sp
    push ax
    mov word [fault_vec], 0
    jmp fault_common
ud_handler:
    push bp
    mov bp, sp
    push ax
    mov word [fault_vec], 6
fault_common:
    mov ax, [bp+2]
    mov [fault_ip], ax
    mov ax, [resume]
    mov [bp+2], ax
    pop ax
    pop bp
    iret

serial_init16:
    mov dx, COM1+1
    xor al, al
    out dx, al
    mov dx, COM1+3
    mov al, 0x80
    out dx, al
    mov dx, COM1
    mov al, 1
    out dx, al
    mov dx, COM1+1
    xor al, al
    out dx, al
    mov dx, COM1+3
    mov al, 3
    out dx, al
    mov dx, COM1+2
    mov al, 7
    out dx, al
    mov dx, COM1+4
    mov al, 3
    out dx, al
    ret
putc16:
    push dx
    push ax
    mov dx, COM1+5
.w: in al, dx
    test al, 0x20
    jz .w
    pop ax
    mov dx, COM1
    out dx, al
    pop dx
    ret
puts16:                             ; cs:si
.l: cs lodsb
    test al, al
    jz .d
    call putc16
    jmp .l
.d: ret
putdec16:                           ; ax
    mov bx, 10
    xor cx, cx
.d: xor dx, dx
    div bx
    push dx
    inc cx
    test ax, ax
    jnz .d
.p: pop ax
    add al, '0'
    call putc16
    loop .p
    ret

bits 32
fail32:
    push eax
    mov esi, ROMBASE + msg_fail
    call puts32
    pop eax
    push eax
    mov ebx, 10
    xor ecx, ecx
.d: xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .d
.p: pop eax
    add al, '0'
    call putc32
    loop .p
    mov al, 13
    call putc32
    mov al, 10
    call putc32
    pop eax
    out 0xF4, al
.h: hlt
    jmp .h
puts32:
.l: lodsb
    test al, al
    jz .d
    call putc32
    jmp .l
.d: ret
putc32:
    push eax
    mov dx, COM1+5
.w: in al, dx
    test al, 0x20
    jz .w
    pop eax
    mov dx, COM1
    out dx, al
    ret
bits 16

msg_pass: db "PASS realmode", 13, 10, 0
msg_fail: db "FAIL realmode: check ", 0
msg_nl: db 13, 10, 0

align 8
gdt_rom:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08 code32 flat
    dq 0x00CF92000000FFFF           ; 0x10 data32 flat
    dq 0x00009A0F0000FFFF           ; 0x18 code16 base 0xF0000, 64 KiB
    dq 0x000092000000FFFF           ; 0x20 data16 base 0, 64 KiB
gdt_rom_len equ $ - gdt_rom
gdtr:
    dw gdt_rom_len - 1
    dd 0x800

; RAM variables (segment 0)
saved_ip equ 0x500
saved_cs equ 0x502
saved_fl equ 0x504
inner_if equ 0x506
frame_sp equ 0x508
handler_sp equ 0x50A
fault_ip equ 0x50C
fault_vec equ 0x50E
resume equ 0x510

    times 0xFFF0 - ($ - $$) db 0xFF
reset_vector:                       ; F000:FFF0
    jmp 0xF000:start
    times 0x10000 - ($ - $$) db 0xFF
