; alu: ADD/ADC/SUB/SBB/AND/OR/XOR/CMP/TEST/INC/DEC/NEG/NOT in 8/16/32 bits,
; register, AH and memory forms (table-driven, see tools/gen_alu.py), results
; (including untouched upper register bits) and CF/PF/AF/ZF/SF/OF; immediate
; forms (04/05/80/81/82/83 encodings), LAHF, LEA with 32- and 16-bit (0x67)
; addressing, and 16-bit address wrap-around on real memory accesses.
%define TEST_NAME "alu"
%include "head.inc"

test_main:
    ; --- hand-worked immediates ---
    mov eax, 0xAAAAAA80
    SETF 0
    add al, 0x80                    ; 04 ib: 0x80+0x80 = 0x100
    GETF
    CHK eax, 0xAAAAAA00, "add al,imm8"
    CHKF F_ARITH, F_CF|F_OF|F_ZF|F_PF, "add al,imm8 flags"

    mov eax, 1
    SETF 0
    add eax, byte -1                ; 83 /0, imm8 sign-extended
    GETF
    CHK eax, 0, "add eax,-1"
    CHKF F_ARITH, F_CF|F_ZF|F_PF|F_AF, "add eax,-1 flags"

    mov eax, 0x12345678
    SETF F_ARITH
    sub eax, 0x12345678             ; 2D id
    GETF
    CHK eax, 0, "sub eax,imm32"
    CHKF F_ARITH, F_ZF|F_PF, "sub eax,imm32 flags"

    mov eax, 0x00001234
    and ax, 0xFF00                  ; 66 25 iw
    GETF
    CHK eax, 0x1200, "and ax,imm16"
    CHKF F_ARITH & ~F_AF, F_PF, "and ax,imm16 flags"

    mov eax, 0x7F
    SETF 0
    db 0x82, 0xC0, 0x01             ; 82 /0: add al,1 (alias of 80 /0)
    GETF
    CHK eax, 0x80, "82 /0 add"
    CHKF F_ARITH, F_OF|F_SF|F_AF, "82 /0 add flags"

    mov word [mtmp], 0x0001
    SETF F_CF
    adc word [mtmp], byte -1        ; 66 83 /2: 1 + 0xFFFF + 1 = 0x10001
    GETF
    movzx eax, word [mtmp]
    CHK eax, 1, "adc m16,imm8"
    CHKF F_ARITH, F_CF|F_AF, "adc m16,imm8 flags"

    mov byte [mtmp], 0x10
    SETF 0
    cmp byte [mtmp], 0x20           ; 80 /7: 0x10-0x20 = 0xF0
    GETF
    CHKF F_ARITH, F_CF|F_SF|F_PF, "cmp m8,imm8 flags"

    mov dword [mtmp], 0x80000000
    SETF 0
    sbb dword [mtmp], 1             ; 83 /3
    GETF
    CHK dword [mtmp], 0x7FFFFFFF, "sbb m32,1"
    CHKF F_ARITH, F_OF|F_AF|F_PF, "sbb m32,1 flags"

    mov eax, 0xF0000000
    SETF F_CF|F_OF
    test eax, 0x80000001            ; A9 id
    GETF
    CHKF F_ARITH & ~F_AF, F_SF|F_PF, "test eax,imm32 flags"

    mov byte [mtmp], 0x81
    test byte [mtmp], 0x7E          ; F6 /0
    GETF
    CHKF F_ZF|F_CF|F_OF|F_SF, F_ZF, "test m8,imm8 flags"

    mov ecx, 0xFFFFFFFF
    SETF F_CF
    inc ecx                         ; INC leaves CF alone
    GETF
    CHK ecx, 0, "inc ecx"
    CHKF F_ARITH, F_CF|F_ZF|F_PF|F_AF, "inc ecx flags"

    mov dx, 0x8000
    SETF 0
    dec dx
    GETF
    movzx edx, dx
    CHK edx, 0x7FFF, "dec dx"
    CHKF F_ARITH, F_OF|F_AF|F_PF, "dec dx flags"

    mov eax, 0
    SETF F_CF
    neg eax                         ; NEG 0 clears CF
    GETF
    CHKF F_ARITH, F_ZF|F_PF, "neg 0 flags"

    ; --- LAHF / SAHF layout: AH = SF ZF 0 AF 0 PF 1 CF ---
    mov eax, 0xFFFFFFFF
    SETF F_SF|F_PF|F_CF|F_OF
    lahf
    CHK eax, 0xFFFF87FF, "lahf"
    mov ah, 0xFF
    SETF F_OF
    sahf
    GETF
    CHKF 0xFFF, F_OF|F_SF|F_ZF|F_AF|F_PF|F_CF|2, "sahf"

    ; --- LEA ---
    mov ebx, 0x1000
    mov ecx, 0x20
    lea eax, [ebx+ecx*4+0x10]
    CHK eax, 0x1090, "lea base+index*4+disp8"
    lea eax, [ecx*8+0x12345678]
    CHK eax, 0x12345778, "lea index*8+disp32"
    lea eax, [ebx+ebx*2]
    CHK eax, 0x3000, "lea ebx*3"
    mov ebp, 0x500
    lea eax, [ebp-4]
    CHK eax, 0x4FC, "lea ebp-4"
    mov edx, esp
    lea eax, [esp+8]
    sub eax, edx
    CHK eax, 8, "lea esp+8"
    mov ebx, 0xFFFFFFF0
    lea eax, [ebx+0x20]
    CHK eax, 0x10, "lea wraps at 32 bits"
    mov eax, 0x12345678
    mov ebx, 0x0001FFFF
    mov ecx, 3
    lea ax, [ebx+ecx]               ; 66: 16-bit destination
    CHK eax, 0x12340002, "lea ax,[ebx+ecx]"
    ; 16-bit addressing (0x67)
    mov eax, 0xDEADBEEF
    mov ebx, 0x1234FFFF
    mov esi, 0x55550002
    lea eax, [bx+si+0x10]           ; (0xFFFF+2+0x10) & 0xFFFF
    CHK eax, 0x11, "lea eax,[bx+si+disp8] (a16)"
    mov ebp, 0x100
    mov edi, 0x1FF
    lea eax, [bp+di-1]
    CHK eax, 0x2FE, "lea eax,[bp+di-1] (a16)"
    mov esi, 0x8000
    lea eax, [si+0x9000]
    CHK eax, 0x1000, "lea eax,[si+disp16] wraps (a16)"
    lea eax, [word 0xBEEF]
    CHK eax, 0xBEEF, "lea eax,[disp16] (a16)"
    mov ebx, 0xAAAA1234
    a16 lea ax, [bx]
    CHK eax, 0x00001234, "lea ax,[bx] (a16, o16): upper half kept"

    ; 16-bit addressing on real memory accesses, incl. wrap at 64 KiB
    mov dword [0x6000], 0x12345678
    mov ebx, 0x5000
    mov esi, 0x1000
    mov eax, [bx+si]
    CHK eax, 0x12345678, "mov eax,[bx+si]"
    mov ebx, 0xF000
    mov esi, 0x7000                 ; 0x16000 wraps to 0x6000
    mov eax, [bx+si]
    CHK eax, 0x12345678, "mov eax,[bx+si] 64K wrap"
    mov ebx, 0xFFFF5000             ; upper half of EBX ignored
    add dword [bx+0x1000], 0x11111111
    CHK dword [0x6000], 0x23456789, "add [bx+disp16]"

    ; --- table-driven vectors ---
    call run_alu_vectors
    ret

%include "alu_vectors.inc"
%include "tail.inc"
