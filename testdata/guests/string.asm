; string: MOVS/STOS/LODS/CMPS/SCAS in byte/word/dword with DF=0 and DF=1,
; REP/REPE/REPNE (incl. ECX=0: nothing happens, flags untouched; early
; termination counts), 16-bit address size (0x67: SI/DI/CX used, upper
; halves untouched, 64 KiB wrap), segment override on the source (FS/GS with
; a non-zero base; the ES destination cannot be overridden), INS/OUTS
; through the 16550 scratch register 0x3FF.
%define TEST_NAME "string"
%include "head.inc"

SEG_SEL equ 0x28                    ; data, base 0x2000

test_main:
    mov eax, 0x2000
    mov ebx, 0xFFFFF
    mov cx, 0x0C92
    mov edx, 5
    call set_desc

    ; fill src with 0..255
    xor eax, eax
.fill:
    mov [src+eax], al
    inc eax
    cmp eax, 256
    jb .fill

    ; ---- MOVS DF=0 ----
    call clear_dst
    mov esi, src
    mov edi, dst
    movsb
    movsw
    movsd
    CHK esi, src+7, "movs b/w/d esi"
    CHK edi, dst+7, "movs b/w/d edi"
    CHK dword [dst], 0x03020100, "movs data 0"
    CHK dword [dst+4], 0x00060504, "movs data 1"
    ; ---- MOVS DF=1 ----
    call clear_dst
    std
    mov esi, src+0x13
    mov edi, dst+0x13
    movsb
    movsw                           ; word at 0x12 (esi 0x12 -> 0x10)
    movsd                           ; dword at 0x10 (esi 0x10 -> 0x0C)
    cld
    CHK esi, src+0x0C, "movs DF=1 esi"
    CHK edi, dst+0x0C, "movs DF=1 edi"
    CHK dword [dst+0x10], 0x13121110, "movs DF=1 data"
    CHK dword [dst+0x0C], 0, "movs DF=1 nothing below"

    ; ---- REP MOVSD, ECX=0 ----
    call clear_dst
    mov esi, src
    mov edi, dst
    xor ecx, ecx
    rep movsd
    CHK ecx, 0, "rep movsd ecx=0 count"
    CHK esi, src, "rep movsd ecx=0 esi"
    CHK dword [dst], 0, "rep movsd ecx=0 no write"
    mov ecx, 10
    rep movsd
    CHK ecx, 0, "rep movsd 10 ecx"
    CHK edi, dst+40, "rep movsd 10 edi"
    CHK dword [dst+36], 0x27262524, "rep movsd 10 last"
    CHK dword [dst+40], 0, "rep movsd 10 stops"
    std
    mov esi, src+255
    mov edi, dst+255
    mov ecx, 16
    rep movsb
    cld
    CHK edi, dst+239, "rep movsb DF=1 edi"
    CHK dword [dst+252], 0xFFFEFDFC, "rep movsb DF=1 data"
    CHK dword [dst+236], 0, "rep movsb DF=1 stops"

    ; ---- STOS / LODS ----
    call clear_dst
    mov edi, dst
    mov eax, 0x11223344
    stosb
    stosw
    stosd
    CHK edi, dst+7, "stos b/w/d edi"
    CHK dword [dst], 0x44334444, "stos data 0"
    CHK dword [dst+4], 0x00112233, "stos data 1"
    mov edi, dst+16
    mov ecx, 5
    mov al, 0xAB
    rep stosb
    CHK dword [dst+16], 0xABABABAB, "rep stosb"
    CHK dword [dst+20], 0x000000AB, "rep stosb end"
    std
    mov edi, dst+64
    mov ecx, 3
    mov ax, 0x5566
    rep stosw
    cld
    CHK edi, dst+58, "rep stosw DF=1 edi"
    CHK dword [dst+60], 0x55665566, "rep stosw DF=1 data"
    mov esi, src+0x40
    mov eax, 0xFFFFFFFF
    lodsb
    CHK eax, 0xFFFFFF40, "lodsb"
    lodsw
    CHK eax, 0xFFFF4241, "lodsw"
    lodsd
    CHK eax, 0x46454443, "lodsd"
    CHK esi, src+0x47, "lods esi"
    std
    lodsw
    cld
    CHK eax, 0x46454847, "lodsw DF=1"
    CHK esi, src+0x45, "lodsw DF=1 esi"

    ; ---- CMPS ----
    call clear_dst
    mov esi, src
    mov edi, dst
    mov ecx, 32
    rep movsb                       ; dst = 0..31
    mov byte [dst+20], 0x99
    mov esi, src
    mov edi, dst
    mov ecx, 32
    repe cmpsb                      ; stops after comparing index 20
    GETF
    CHK ecx, 11, "repe cmpsb ecx"
    CHK esi, src+21, "repe cmpsb esi"
    CHKF F_ZF|F_CF|F_SF, F_CF, "repe cmpsb flags (0x14-0x99)"
    mov esi, src
    mov edi, dst
    mov ecx, 5
    repe cmpsd                      ; all equal
    GETF
    CHK ecx, 0, "repe cmpsd equal ecx"
    CHKF F_ZF, F_ZF, "repe cmpsd equal ZF"
    SETF F_CF|F_OF
    xor ecx, ecx
    SETF F_CF|F_OF
    repe cmpsb                      ; ECX=0: flags untouched
    GETF
    CHKF F_ARITH, F_CF|F_OF, "repe cmpsb ecx=0 flags"
    mov esi, src+1
    mov edi, dst
    cmpsw                           ; 0x0201 - 0x0100
    GETF
    CHKF F_ZF|F_CF|F_SF, 0, "cmpsw greater"
    mov esi, src
    mov edi, dst
    mov ecx, 8
    repne cmpsb                     ; first compare already equal
    CHK ecx, 7, "repne cmpsb stops at once"

    ; ---- SCAS ----
    mov edi, src
    mov ecx, 256
    mov al, 0x37
    repne scasb
    GETF
    CHK edi, src+0x38, "repne scasb edi"
    CHK ecx, 256-0x38, "repne scasb ecx"
    CHKF F_ZF, F_ZF, "repne scasb found"
    mov edi, src
    mov ecx, 16
    mov al, 0xEE
    repne scasb                     ; not in the first 16
    GETF
    CHK ecx, 0, "repne scasb not found ecx"
    CHKF F_ZF, 0, "repne scasb not found ZF"
    mov dword [dst], 0x12345678
    mov dword [dst+4], 0x12345678
    mov dword [dst+8], 0x0
    mov edi, dst
    mov eax, 0x12345678
    mov ecx, 10
    repe scasd
    CHK ecx, 7, "repe scasd ecx"
    CHK edi, dst+12, "repe scasd edi"
    std
    mov edi, src+0x10
    mov ax, 0x0F0E
    scasw
    cld
    GETF
    CHKF F_ZF, 0, "scasw DF=1 (0x0F0E vs 0x1110)"
    CHK edi, src+0x0E, "scasw DF=1 edi"

    ; ---- 16-bit address size ----
    mov byte [0xFFFF], 0x5A
    mov esi, 0xABCDFFFF
    mov edi, 0x12347000
    a16 movsb
    CHK esi, 0xABCD0000, "a16 movsb SI wraps, upper ESI kept"
    CHK edi, 0x12347001, "a16 movsb DI"
    movzx eax, byte [0x7000]
    CHK eax, 0x5A, "a16 movsb data"
    mov edi, 0x99997100
    mov ecx, 0x55550004
    mov al, 0xC3
    a16 rep stosb
    CHK ecx, 0x55550000, "a16 rep stosb CX only"
    CHK edi, 0x99997104, "a16 rep stosb DI"
    CHK dword [0x7100], 0xC3C3C3C3, "a16 rep stosb data"
    mov edi, 0x0000FFFE             ; wraps to 0x0000.. writes 0xFFFE,0xFFFF,0x0000,0x0001
    mov dword [0], 0x11111111
    mov ecx, 2
    mov ax, 0x7788
    a16 rep stosw
    CHK edi, 0x00000002, "a16 rep stosw DI wrap"
    CHK dword [0], 0x11117788, "a16 rep stosw wrapped write"
    mov ecx, 0x10000                ; CX = 0: nothing
    mov esi, 0x1000
    mov edi, 0x2000
    a16 rep movsb
    CHK ecx, 0x10000, "a16 rep movsb CX=0"
    CHK edi, 0x2000, "a16 rep movsb CX=0 DI"

    ; ---- segment override on the source ----
    mov dword [0x2000 + 0x100], 0xFEEDF00D
    mov ax, SEG_SEL
    mov fs, ax
    mov gs, ax
    mov esi, 0x100
    mov edi, dst
    fs movsd                        ; source fs:0x100 = linear 0x2100
    CHK dword [dst], 0xFEEDF00D, "fs movsd"
    mov esi, 0x100
    gs lodsd
    CHK eax, 0xFEEDF00D, "gs lodsd"
    mov esi, 0x100
    mov edi, 0x100
    fs cmpsd                        ; fs:0x100 vs es:0x100 (linear 0x100)
    GETF
    mov eax, [0x100]
    cmp eax, 0xFEEDF00D
    je .same                        ; (cannot be: then the test is meaningless)
    CHKF F_ZF, 0, "fs cmpsd compares against ES, not FS"
.same:
    mov ax, DATA_SEL
    mov fs, ax
    mov gs, ax

    ; ---- INS / OUTS via the UART scratch register ----
    mov dx, 0x3FF
    mov dword [dst], 0x44332211
    mov esi, dst
    outsb
    in al, dx
    movzx eax, al
    CHK eax, 0x11, "outsb -> scratch"
    CHK esi, dst+1, "outsb esi"
    mov ecx, 3
    rep outsb
    in al, dx
    movzx eax, al
    CHK eax, 0x44, "rep outsb: last byte"
    CHK ecx, 0, "rep outsb ecx"
    mov al, 0x6C
    out dx, al
    mov edi, dst+8
    mov dword [edi], 0
    mov ecx, 3
    rep insb
    CHK dword [dst+8], 0x006C6C6C, "rep insb"
    CHK edi, dst+11, "rep insb edi"
    std
    mov al, 0x3D
    out dx, al
    mov edi, dst+20
    insb
    cld
    CHK edi, dst+19, "insb DF=1 edi"
    movzx eax, byte [dst+20]
    CHK eax, 0x3D, "insb DF=1 data"
    ret

clear_dst:
    push edi
    push ecx
    push eax
    mov edi, dst
    mov ecx, 64
    xor eax, eax
    rep stosd
    pop eax
    pop ecx
    pop edi
    ret

section .bss
alignb 16
src: resb 256
dst: resb 256
section .text
%include "tail.inc"
