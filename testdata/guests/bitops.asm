; bitops: BT/BTS/BTR/BTC (register; memory with register offsets far outside
; the addressed dword, negative offsets, 16-bit offsets; immediate offsets
; masked), BSF/BSR (incl. zero source -> ZF=1), BSWAP, XADD, CMPXCHG (8/32,
; equal and not equal), CMPXCHG8B, CMOVcc and SETcc for all 16 conditions
; (taken and not taken, register and memory), MOVZX/MOVSX, XCHG, XLAT,
; LAHF/SAHF, CBW/CWDE/CWD/CDQ.
%define TEST_NAME "bitops"
%include "head.inc"

; CC cc, flags, expected (1 = condition true)
%macro CC 3
  %defstr %%cc %1
  %strcat %%m1 "cmov", %%cc, " r32"
  %strcat %%m2 "cmov", %%cc, " m16"
  %strcat %%m3 "set", %%cc, " r8"
  %strcat %%m4 "set", %%cc, " m8"
    mov eax, 0x11111111
    mov ebx, 0x22222222
    mov ecx, 0xAAAAAA55
    mov dword [mtmp], 0x33333333
    SETF %2
    cmov%1 eax, ebx
    cmov%1 bx, word [mtmp]
    set%1 cl
  %if %3
    CHK eax, 0x22222222, %%m1
    CHK ebx, 0x22223333, %%m2
    CHK ecx, 0xAAAAAA01, %%m3
  %else
    CHK eax, 0x11111111, %%m1
    CHK ebx, 0x22222222, %%m2
    CHK ecx, 0xAAAAAA00, %%m3
  %endif
    mov byte [mtmp], 0x77
    SETF %2
    set%1 byte [mtmp]
    movzx eax, byte [mtmp]
    CHK eax, %3, %%m4
%endmacro

test_main:
    ; ---- BT family, register ----
    mov eax, 0x00000020
    SETF 0
    bt eax, 5
    GETF
    CHKF F_CF, F_CF, "bt eax,5"
    mov ecx, 37                     ; register offset mod 32 = 5
    SETF F_CF
    bt eax, ecx
    GETF
    CHKF F_CF, F_CF, "bt eax,37"
    bts eax, 0
    GETF
    CHK eax, 0x21, "bts eax,0"
    CHKF F_CF, 0, "bts old bit 0"
    btr eax, 5
    GETF
    CHK eax, 0x01, "btr eax,5"
    CHKF F_CF, F_CF, "btr old bit 1"
    mov ecx, 31
    btc eax, ecx
    GETF
    CHK eax, 0x80000001, "btc eax,31"
    CHKF F_CF, 0, "btc old bit 0"
    mov eax, 0x12340000
    mov cx, 17                      ; 16-bit: offset mod 16 = 1
    bts ax, cx
    CHK eax, 0x12340002, "bts ax,17"

    ; ---- BT family, memory ----
    mov edi, bitmap
    xor eax, eax
    mov ecx, 64
    rep stosd                       ; bitmap: 256 zero bytes
    mov ecx, 1000                   ; byte 125 bit 0
    bts [bitmap], ecx
    GETF
    CHKF F_CF, 0, "bts m,1000 old"
    movzx eax, byte [bitmap+125]
    CHK eax, 1, "bts m,1000 sets byte 125 bit 0"
    bt dword [bitmap], ecx
    GETF
    CHKF F_CF, F_CF, "bt m,1000"
    mov ecx, -1                     ; bit 7 of byte before bitmap
    bts [bitmap+8], ecx
    movzx eax, byte [bitmap+7]
    CHK eax, 0x80, "bts m,-1 (negative offset)"
    mov ecx, -9
    btc [bitmap+8], ecx             ; byte 6 bit 7
    GETF
    CHKF F_CF, 0, "btc m,-9 old"
    movzx eax, byte [bitmap+6]
    CHK eax, 0x80, "btc m,-9"
    mov ecx, 1000
    btr [bitmap], ecx
    GETF
    CHKF F_CF, F_CF, "btr m,1000 old"
    CHK dword [bitmap+124], 0, "btr m,1000 cleared"
    mov cx, -1                      ; 16-bit signed offset: bit 15 of word at -2
    bts word [bitmap+32], cx
    movzx eax, word [bitmap+30]
    CHK eax, 0x8000, "bts m16,-1"
    mov dword [bitmap+40], 0
    bts dword [bitmap+40], 33       ; immediate: masked to 1
    CHK dword [bitmap+40], 2, "bts m32,imm 33"
    CHK dword [bitmap+44], 0, "bts m32,imm does not reach next dword"

    ; ---- BSF / BSR ----
    mov ebx, 0x00018000
    SETF F_ZF
    bsf eax, ebx
    GETF
    CHK eax, 15, "bsf"
    CHKF F_ZF, 0, "bsf ZF=0"
    bsr eax, ebx
    CHK eax, 16, "bsr"
    mov ebx, 0x80000000
    bsr eax, ebx
    CHK eax, 31, "bsr bit 31"
    bsf eax, ebx
    CHK eax, 31, "bsf bit 31"
    mov dword [mtmp], 1
    bsr ecx, [mtmp]
    CHK ecx, 0, "bsr m32=1"
    mov eax, 0xAAAA0000
    mov bx, 0x0600
    bsf ax, bx
    CHK eax, 0xAAAA0009, "bsf ax,bx"
    xor ebx, ebx
    SETF 0
    bsf eax, ebx
    GETF
    CHKF F_ZF, F_ZF, "bsf zero -> ZF"
    SETF 0
    bsr eax, ebx
    GETF
    CHKF F_ZF, F_ZF, "bsr zero -> ZF"

    ; ---- BSWAP ----
    mov eax, 0x12345678
    bswap eax
    CHK eax, 0x78563412, "bswap eax"
    mov edi, 0xAABBCCDD
    bswap edi
    CHK edi, 0xDDCCBBAA, "bswap edi"

    ; ---- XADD ----
    mov eax, 5
    mov ebx, 3
    xadd eax, ebx
    CHK eax, 8, "xadd sum"
    CHK ebx, 5, "xadd old"
    mov dword [mtmp], 0xFFFFFFFF
    mov ecx, 1
    SETF 0
    xadd [mtmp], ecx
    GETF
    CHK dword [mtmp], 0, "xadd m32 sum"
    CHK ecx, 0xFFFFFFFF, "xadd m32 old"
    CHKF F_CF|F_ZF, F_CF|F_ZF, "xadd flags"
    mov byte [mtmp], 0x7F
    mov dl, 1
    xadd [mtmp], dl
    GETF
    movzx eax, byte [mtmp]
    CHK eax, 0x80, "xadd m8"
    CHKF F_OF, F_OF, "xadd m8 OF"

    ; ---- CMPXCHG ----
    mov dword [mtmp], 100
    mov eax, 100
    mov ecx, 200
    cmpxchg [mtmp], ecx
    GETF
    CHKF F_ZF, F_ZF, "cmpxchg equal ZF"
    CHK dword [mtmp], 200, "cmpxchg equal stores"
    CHK eax, 100, "cmpxchg equal keeps eax"
    mov eax, 50
    cmpxchg [mtmp], ecx
    GETF
    CHKF F_ZF|F_CF, F_CF, "cmpxchg unequal flags (cmp 50,200)"
    CHK eax, 200, "cmpxchg unequal loads eax"
    mov eax, 0x11111111
    mov ebx, 0x22222222
    cmpxchg ebx, ecx                ; 0x11111111 != 0x22222222
    CHK eax, 0x22222222, "cmpxchg reg unequal"
    mov byte [mtmp], 0x42
    mov eax, 0xFFFFFF42
    mov cl, 0x99
    cmpxchg [mtmp], cl
    movzx edx, byte [mtmp]
    CHK edx, 0x99, "cmpxchg m8 equal"

    ; ---- CMPXCHG8B ----
    mov dword [q64], 0x11111111
    mov dword [q64+4], 0x22222222
    mov eax, 0x11111111
    mov edx, 0x22222222
    mov ebx, 0x33333333
    mov ecx, 0x44444444
    cmpxchg8b [q64]
    GETF
    CHKF F_ZF, F_ZF, "cmpxchg8b equal ZF"
    CHK dword [q64], 0x33333333, "cmpxchg8b stores low"
    CHK dword [q64+4], 0x44444444, "cmpxchg8b stores high"
    mov eax, 0x33333333
    mov edx, 0
    cmpxchg8b [q64]
    GETF
    CHKF F_ZF, 0, "cmpxchg8b unequal ZF"
    CHK eax, 0x33333333, "cmpxchg8b loads low"
    CHK edx, 0x44444444, "cmpxchg8b loads high"

    ; ---- CMOVcc / SETcc: all 16 conditions ----
    CC o, F_OF, 1
    CC o, 0, 0
    CC no, 0, 1
    CC no, F_OF, 0
    CC b, F_CF, 1
    CC b, F_ZF, 0
    CC ae, F_ZF, 1
    CC ae, F_CF, 0
    CC e, F_ZF, 1
    CC e, F_CF|F_SF, 0
    CC ne, F_CF, 1
    CC ne, F_ZF, 0
    CC be, F_ZF, 1
    CC be, F_CF, 1
    CC be, F_SF|F_OF, 0
    CC a, 0, 1
    CC a, F_CF, 0
    CC a, F_ZF, 0
    CC s, F_SF, 1
    CC s, F_OF, 0
    CC ns, F_OF, 1
    CC ns, F_SF, 0
    CC p, F_PF, 1
    CC p, F_ARITH & ~F_PF, 0
    CC np, 0, 1
    CC np, F_PF, 0
    CC l, F_SF, 1
    CC l, F_OF, 1
    CC l, F_SF|F_OF, 0
    CC ge, F_SF|F_OF, 1
    CC ge, F_OF, 0
    CC le, F_ZF|F_SF|F_OF, 1
    CC le, F_SF, 1
    CC le, F_SF|F_OF, 0
    CC g, F_SF|F_OF, 1
    CC g, F_ZF, 0
    CC g, F_OF, 0

    ; ---- MOVZX / MOVSX ----
    mov dword [mtmp], 0x8081F0FF
    movzx eax, byte [mtmp]
    CHK eax, 0xFF, "movzx eax,m8"
    movsx eax, byte [mtmp]
    CHK eax, 0xFFFFFFFF, "movsx eax,m8"
    movzx eax, word [mtmp+2]
    CHK eax, 0x8081, "movzx eax,m16"
    movsx eax, word [mtmp+2]
    CHK eax, 0xFFFF8081, "movsx eax,m16"
    mov ebx, 0x7F
    movsx ecx, bl
    CHK ecx, 0x7F, "movsx ecx,bl positive"
    mov ecx, 0x12345678
    mov bl, 0x90
    movsx cx, bl
    CHK ecx, 0x1234FF90, "movsx cx,bl"
    movzx cx, bl
    CHK ecx, 0x12340090, "movzx cx,bl"
    mov eax, 0x0000AB00
    movzx edx, ah
    CHK edx, 0xAB, "movzx edx,ah"

    ; ---- XCHG ----
    mov eax, 1
    mov ebx, 2
    xchg eax, ebx
    CHK eax, 2, "xchg eax,ebx a"
    CHK ebx, 1, "xchg eax,ebx b"
    mov dword [mtmp], 0xCAFE
    mov ecx, 0xBEEF
    xchg [mtmp], ecx
    CHK ecx, 0xCAFE, "xchg m,ecx reg"
    CHK dword [mtmp], 0xBEEF, "xchg m,ecx mem"
    mov eax, 0x12345678
    xchg al, ah
    CHK eax, 0x12347856, "xchg al,ah"
    mov eax, 0x11112222
    mov ecx, 0x33334444
    xchg ax, cx
    CHK eax, 0x11114444, "xchg ax,cx a"
    CHK ecx, 0x33332222, "xchg ax,cx c"
    mov edx, 0x55
    db 0x90                         ; nop = xchg eax,eax
    xchg edx, edx
    CHK edx, 0x55, "xchg edx,edx"

    ; ---- XLAT ----
    mov ebx, xlat_table
    mov eax, 0xFFFFFF05
    xlatb
    CHK eax, 0xFFFFFF50, "xlat al=5"
    mov eax, 0xF1
    xlatb
    CHK eax, 0x1F, "xlat al=F1 (unsigned index)"

    ; ---- LAHF/SAHF ----
    SETF F_ZF|F_CF
    lahf
    movzx eax, ah
    CHK eax, 0x43, "lahf ZF|CF"
    mov ah, 0xD5
    SETF 0
    sahf
    GETF
    CHKF F_ARITH, F_SF|F_ZF|F_AF|F_PF|F_CF, "sahf D5 (OF untouched)"

    ; ---- CBW / CWDE / CWD / CDQ ----
    mov eax, 0x12345680
    cbw
    CHK eax, 0x1234FF80, "cbw"
    mov eax, 0x12347F00
    cbw
    CHK eax, 0x12340000, "cbw positive"
    mov eax, 0x12348000
    cwde
    CHK eax, 0xFFFF8000, "cwde"
    mov eax, 0x8000
    mov edx, 0xABCD1234
    cwd
    CHK edx, 0xABCDFFFF, "cwd"
    mov eax, 0x80000000
    cdq
    CHK edx, 0xFFFFFFFF, "cdq negative"
    mov eax, 0x7FFFFFFF
    cdq
    CHK edx, 0, "cdq positive"
    ret

section .data
align 4
xlat_table:
%assign i 0
%rep 256
    db (i * 16 + i / 16) & 0xFF
%assign i i+1
%endrep
section .bss
alignb 8
q64: resq 1
bitmap: resb 256
section .text
%include "tail.inc"
