; muldiv: MUL and IMUL (one-, two- and three-operand, imm8 and imm32) and
; DIV/IDIV in 8/16/32 bits, register and memory operands, results and CF/OF;
; #DE on divide by zero and on quotient overflow (incl. the -2^(n-1)/-1 case
; and the largest legal negative quotient), caught by this test's own #DE
; handler which checks that the saved EIP is the faulting DIV/IDIV and CS is
; ours, then resumes after it; operands are unchanged after a #DE.
%define TEST_NAME "muldiv"
%include "head.inc"

%macro DE_CASE 2+
    mov dword [de_expect], %%i
    mov dword [de_next], %%n
    mov dword [de_hits], 0
%%i: %1
%%n:
    CHK dword [de_hits], 1, %2
%endmacro

test_main:
    mov eax, 0
    mov ebx, de_handler
    mov cl, 0x8E
    call set_gate

    ; ---- MUL ----
    mov eax, 0xAAAA0080
    mov bl, 2
    SETF 0
    mul bl
    GETF
    CHK eax, 0xAAAA0100, "mul bl 0x80*2"
    CHKF F_CF|F_OF, F_CF|F_OF, "mul bl CF/OF set"
    mov eax, 0xAAAA0010
    mov bl, 0x0F
    SETF F_CF|F_OF
    mul bl
    GETF
    CHK eax, 0xAAAA00F0, "mul bl 0x10*0x0F"
    CHKF F_CF|F_OF, 0, "mul bl CF/OF clear"
    mov eax, 0x1234FFFF
    mov edx, 0x5678AAAA
    mov cx, 0xFFFF
    mul cx
    GETF
    CHK eax, 0x12340001, "mul cx: ax"
    CHK edx, 0x5678FFFE, "mul cx: dx"
    CHKF F_CF|F_OF, F_CF|F_OF, "mul cx flags"
    mov eax, 0xFFFFFFFF
    mov ecx, 0xFFFFFFFF
    mul ecx
    CHK eax, 1, "mul ecx: eax"
    CHK edx, 0xFFFFFFFE, "mul ecx: edx"
    mov dword [mtmp], 0x10
    mov eax, 0x12345678
    mul dword [mtmp]
    GETF
    CHK eax, 0x23456780, "mul m32: eax"
    CHK edx, 1, "mul m32: edx"
    CHKF F_CF|F_OF, F_CF|F_OF, "mul m32 flags"
    mov eax, 0x10000
    mov edx, 0x99
    mov ecx, 0x100
    mul ecx
    GETF
    CHK edx, 0, "mul ecx small: edx cleared"
    CHKF F_CF|F_OF, 0, "mul ecx small flags"

    ; ---- IMUL one operand ----
    mov eax, 0x000000FE             ; -2
    mov bl, 3
    imul bl
    GETF
    CHK eax, 0x0000FFFA, "imul bl -2*3"
    CHKF F_CF|F_OF, 0, "imul bl fits"
    mov eax, 0x40
    mov bl, 2
    imul bl
    GETF
    CHK eax, 0x0080, "imul bl 0x40*2"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul bl overflow"
    mov eax, -1
    mov ecx, -1
    imul ecx
    GETF
    CHK eax, 1, "imul ecx -1*-1 eax"
    CHK edx, 0, "imul ecx -1*-1 edx"
    CHKF F_CF|F_OF, 0, "imul ecx fits"
    mov eax, 0x80000000
    mov ecx, 2
    imul ecx
    GETF
    CHK eax, 0, "imul ecx min*2 eax"
    CHK edx, 0xFFFFFFFF, "imul ecx min*2 edx"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul ecx overflow"
    mov eax, 0x7FFF
    mov edx, 0x12345678
    mov cx, 2
    imul cx
    GETF
    CHK eax, 0xFFFE, "imul cx ax"
    CHK edx, 0x12340000, "imul cx dx"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul cx overflow"
    mov word [mtmp], 0xFFFF
    mov eax, 0x00000005
    imul word [mtmp]
    CHK eax, 0xFFFB, "imul m16 ax"
    CHK edx, 0x1234FFFF, "imul m16 dx"

    ; ---- IMUL two operand ----
    mov eax, 0x10000
    mov ebx, 0x10000
    imul eax, ebx
    GETF
    CHK eax, 0, "imul eax,ebx 2^32"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul eax,ebx overflow"
    mov eax, -3
    mov ebx, 7
    imul eax, ebx
    GETF
    CHK eax, -21, "imul eax,ebx -3*7"
    CHKF F_CF|F_OF, 0, "imul eax,ebx fits"
    mov eax, 0xABCD012C             ; ax = 300
    mov bx, 300
    imul ax, bx
    GETF
    CHK eax, 0xABCD5F90, "imul ax,bx 300*300"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul ax,bx overflow"
    mov dword [mtmp], -1000
    mov ecx, 1000
    imul ecx, [mtmp]
    CHK ecx, -1000000, "imul ecx,m32"

    ; ---- IMUL three operand ----
    mov ebx, -5
    imul eax, ebx, 10               ; 6B
    GETF
    CHK eax, -50, "imul eax,ebx,imm8"
    CHKF F_CF|F_OF, 0, "imul imm8 fits"
    mov ebx, 50000
    imul eax, ebx, 100000           ; 69: 5,000,000,000
    GETF
    CHK eax, 0x2A05F200, "imul eax,ebx,imm32"
    CHKF F_CF|F_OF, F_CF|F_OF, "imul imm32 overflow"
    mov word [mtmp], 0x4000
    mov ecx, 0xEEEEEEEE
    imul cx, word [mtmp], -2
    GETF
    CHK ecx, 0xEEEE8000, "imul cx,m16,-2"
    CHKF F_CF|F_OF, 0, "imul cx,m16,-2 fits exactly"
    mov word [mtmp], 0x4000
    imul cx, word [mtmp], 2
    GETF
    CHKF F_CF|F_OF, F_CF|F_OF, "imul cx,m16,2 overflows"

    ; ---- DIV ----
    mov eax, 0x12340100             ; ax = 256
    mov bl, 3
    div bl
    CHK eax, 0x12340155, "div bl 256/3"
    mov eax, 0x77770000
    mov edx, 0x88880001             ; dx:ax = 65536
    mov cx, 0x100
    div cx
    CHK eax, 0x77770100, "div cx quotient"
    CHK edx, 0x88880000, "div cx remainder"
    mov edx, 1
    mov eax, 0
    mov ecx, 0x10
    div ecx
    CHK eax, 0x10000000, "div ecx 2^32/16"
    CHK edx, 0, "div ecx rem"
    mov edx, 0
    mov eax, 100
    mov ecx, 7
    div ecx
    CHK eax, 14, "div ecx 100/7"
    CHK edx, 2, "div ecx 100%7"
    mov dword [mtmp], 0x10
    mov edx, 5
    mov eax, 0x12345678
    div dword [mtmp]
    CHK eax, 0x51234567, "div m32 quotient"
    CHK edx, 8, "div m32 remainder"
    mov edx, 0xFFFFFFFE
    mov eax, 0xFFFFFFFF
    mov ecx, 0xFFFFFFFF
    div ecx                         ; largest legal quotient
    CHK eax, 0xFFFFFFFF, "div max quotient"
    CHK edx, 0xFFFFFFFE, "div max remainder"

    ; ---- IDIV ----
    mov eax, 0xFFF9                 ; -7
    mov bl, 2
    idiv bl
    CHK eax, 0xFFFD, "idiv bl -7/2 (al=-3 ah=-1)"
    mov eax, 0xFC18                 ; -1000
    mov edx, 0xFFFF
    mov cx, -7
    idiv cx
    CHK eax, 0x008E, "idiv cx -1000/-7"
    CHK edx, 0xFFFA, "idiv cx rem -6"
    mov eax, -100
    cdq
    mov ecx, 7
    idiv ecx
    CHK eax, -14, "idiv ecx -100/7"
    CHK edx, -2, "idiv ecx rem"
    mov eax, 100
    cdq
    mov ecx, -7
    idiv ecx
    CHK eax, -14, "idiv ecx 100/-7"
    CHK edx, 2, "idiv ecx rem +"
    mov eax, 0xFF00                 ; -256 / 2 = -128: legal
    mov bl, 2
    idiv bl
    CHK eax, 0x0080, "idiv bl -128 quotient"
    mov dword [mtmp], -3
    mov eax, 0x80000000
    cdq
    idiv dword [mtmp]
    CHK eax, 0x2AAAAAAA, "idiv m32 min/-3"
    CHK edx, -2, "idiv m32 min%-3"

    ; ---- #DE ----
    mov eax, 0x1234
    mov bl, 0
    DE_CASE div bl, "div bl by zero"
    CHK eax, 0x1234, "ax unchanged after #DE"
    mov eax, 0x55
    mov edx, 0x66
    xor ecx, ecx
    DE_CASE div ecx, "div ecx by zero"
    CHK eax, 0x55, "eax unchanged after #DE"
    CHK edx, 0x66, "edx unchanged after #DE"
    mov dword [mtmp], 0
    DE_CASE idiv dword [mtmp], "idiv m32 by zero"
    mov eax, 0x1000
    mov bl, 0x10
    DE_CASE div bl, "div bl quotient overflow"
    mov edx, 1
    mov eax, 0
    mov ecx, 1
    DE_CASE div ecx, "div ecx quotient overflow"
    mov dx, 0x10
    mov ax, 0
    mov cx, 0x10
    DE_CASE div cx, "div cx quotient overflow"
    mov eax, 0xFF80                 ; -128 / -1 = 128
    mov bl, -1
    DE_CASE idiv bl, "idiv bl -128/-1"
    mov eax, 0x0100                 ; 256 / 2 = 128 > 127
    mov bl, 2
    DE_CASE idiv bl, "idiv bl 256/2"
    mov eax, 0x80000000
    cdq
    mov ecx, -1
    DE_CASE idiv ecx, "idiv ecx min/-1"
    mov dx, 0xFFFF
    mov ax, 0x8000
    mov cx, -1
    DE_CASE idiv cx, "idiv cx min/-1"
    ; generic harness path too (restore the harness stub for vector 0)
    mov eax, 0
    mov ebx, exc_stubs
    mov cl, 0x8E
    call set_gate
    xor ecx, ecx
    TRY
    div ecx
    CATCH 0, NOERR, "div ecx #DE via harness"
    ret

; #DE handler: must see CS:EIP of the faulting instruction; resumes after it.
de_handler:
    push eax
    mov eax, [esp+4]
    cmp eax, [de_expect]
    jne .bad
    cmp dword [esp+8], CODE_SEL
    jne .bad
    inc dword [de_hits]
    jmp .out
.bad:
    add dword [de_hits], 0x100
.out:
    mov eax, [de_next]
    mov [esp+4], eax
    pop eax
    iretd

section .bss
de_expect: resd 1
de_next: resd 1
de_hits: resd 1
section .text
%include "tail.inc"
