; fpu: the x87 as a program sees it. FNINIT state; correctly rounded division
; and square root at 64-bit precision and with precision control 24 / toward
; zero; FLDPI to double; integer and packed BCD stores with rounding; FPREM's
; quotient bits; FCOMI flags; FXAM; transcendentals (FSIN, FPATAN, F2XM1,
; FYL2X) within 1e-15; an FSAVE/FRSTOR round trip (FSAVE leaves the FPU
; initialised, FRSTOR brings every byte back); an unmasked zero divide that
; stays pending until the next waiting instruction and is then reported as
; #MF (CR0.NE=1) to the harness's handler; #NM from CR0.TS, and from WAIT
; only with CR0.MP.
%define TEST_NAME "fpu"
%include "head.inc"

CR0_MP equ 0x02
CR0_EM equ 0x04
CR0_TS equ 0x08
CR0_NE equ 0x20
SW_C0 equ 0x0100
SW_C1 equ 0x0200
SW_C2 equ 0x0400
SW_C3 equ 0x4000

; |st0 - [expected]| < 1e-15, popping st0
%macro NEAR 2
    fsub qword [%1]
    fabs
    fcomp qword [eps]
    fnstsw ax
    and eax, SW_C0 | SW_C2 | SW_C3
    CHK eax, SW_C0, %2
%endmacro

test_main:
    mov eax, cr0
    and eax, ~(CR0_EM | CR0_TS)
    or eax, CR0_MP | CR0_NE
    mov cr0, eax

    ; ---- FNINIT ----
    fninit
    fnstsw ax
    and eax, 0xFFFF
    CHK eax, 0, "fninit status word"
    fnstcw [w]
    movzx eax, word [w]
    CHK eax, 0x037F, "fninit control word"
    fnstenv [env]
    movzx eax, word [env+8]
    CHK eax, 0xFFFF, "fninit tag word (all empty)"

    ; ---- 1/3: 64 bits, nearest; then 24 bits, toward zero ----
    fld1
    fidiv dword [three]
    fnstsw ax
    and eax, 0x3F
    CHK eax, 0x20, "1/3 sets PE"
    fstp tword [ext]
    CHK dword [ext], 0xAAAAAAAB, "1/3 significand low"
    CHK dword [ext+4], 0xAAAAAAAA, "1/3 significand high"
    movzx eax, word [ext+8]
    CHK eax, 0x3FFD, "1/3 exponent"
    fldcw [cw_pc24_rz]
    fld1
    fidiv dword [three]
    fstp tword [ext]
    fldcw [cw_init]
    CHK dword [ext], 0, "1/3 at PC=24 low"
    CHK dword [ext+4], 0xAAAAAA00, "1/3 at PC=24 toward zero"
    fnclex

    ; ---- square root of 2 ----
    fld1
    fadd st0, st0
    fsqrt
    fstp tword [ext]
    CHK dword [ext], 0xF9DE6484, "sqrt 2 low"
    CHK dword [ext+4], 0xB504F333, "sqrt 2 high"
    movzx eax, word [ext+8]
    CHK eax, 0x3FFF, "sqrt 2 exponent"

    ; ---- FLDPI to double ----
    fldpi
    fstp qword [q]
    CHK dword [q], 0x54442D18, "pi as double low"
    CHK dword [q+4], 0x400921FB, "pi as double high"

    ; ---- integers: 123456789^2 to m64, rounding of halves ----
    fild dword [big]
    fimul dword [big]
    fistp qword [q]
    CHK dword [q], 0x9738A3B9, "123456789^2 low"
    CHK dword [q+4], 0x00362622, "123456789^2 high"
    fld qword [two_half]
    fistp word [w]
    movzx eax, word [w]
    CHK eax, 2, "fistp 2.5 rounds to even"
    fld qword [two_half]
    fchs
    fldcw [cw_down]
    fistp dword [q]
    fldcw [cw_init]
    CHK dword [q], -3, "fistp -2.5 rounding down"
    fld qword [bcd_val]
    fbstp [bcd]
    CHK dword [bcd], 0x00001234, "fbstp 1234.5 (to even: 1234)"
    CHK dword [bcd+4], 0, "fbstp digits 8-15"
    movzx eax, word [bcd+8]
    CHK eax, 0, "fbstp sign and top digits"
    fbld [bcd]
    fistp dword [q]
    CHK dword [q], 1234, "fbld 1234"
    fnclex

    ; ---- FPREM: 10 rem 3 = 1, quotient 3 -> C3=1 C1=1 C0=0, C2=0 ----
    fild dword [three]
    fild dword [ten]
    fprem
    fnstsw ax
    and eax, SW_C0 | SW_C1 | SW_C2 | SW_C3
    CHK eax, SW_C3 | SW_C1, "fprem quotient bits"
    fistp dword [q]
    CHK dword [q], 1, "fprem remainder"
    fstp st0

    ; ---- FCOMI and FXAM ----
    fld1
    fld qword [two_half]
    fcomi st0, st1
    GETF
    CHKF F_ZF | F_PF | F_CF, 0, "fcomi 2.5 > 1"
    fxch st1
    fcomip st0, st1
    GETF
    CHKF F_ZF | F_PF | F_CF, F_CF, "fcomip 1 < 2.5"
    fchs
    fxam
    fnstsw ax
    and eax, SW_C0 | SW_C1 | SW_C2 | SW_C3
    CHK eax, SW_C2 | SW_C1, "fxam -2.5: normal, negative"
    fstp st0
    fxam
    fnstsw ax
    and eax, SW_C0 | SW_C2 | SW_C3
    CHK eax, SW_C3 | SW_C0, "fxam of an empty register"

    ; ---- transcendentals ----
    fld qword [half]
    fsin
    NEAR sin_half, "fsin 0.5"
    fld1
    fld1
    fpatan
    fmul dword [four]
    NEAR pi_d, "4 * atan(1)"
    fld qword [half]
    f2xm1
    fld1
    faddp st1, st0
    fmul st0, st0
    NEAR two_d, "(2^0.5)^2"
    fld1
    fild dword [eight]
    fyl2x
    NEAR three_d, "log2 8"
    fnstsw ax
    shr eax, 11
    and eax, 7
    CHK eax, 0, "stack empty after the transcendentals"
    fnclex

    ; ---- FSAVE / FRSTOR ----
    fld1
    fldpi
    fld qword [two_half]
    fchs
    fldcw [cw_down]
    fsave [save1]
    fnstcw [w]
    movzx eax, word [w]
    CHK eax, 0x037F, "fsave leaves the FPU initialised (control word)"
    fnstenv [env]
    movzx eax, word [env+8]
    CHK eax, 0xFFFF, "fsave leaves the FPU initialised (tags)"
    frstor [save1]
    fsave [save2]
    mov esi, save1                  ; control, status, tag words
    mov edi, save2
    mov ecx, 12
    repe cmpsb
    CHK ecx, 0, "fsave after frstor: same environment"
    mov esi, save1 + 28             ; (pointers skipped) registers
    mov edi, save2 + 28
    mov ecx, 80
    repe cmpsb
    CHK ecx, 0, "fsave after frstor: same registers"
    frstor [save2]
    fnstcw [w]
    movzx eax, word [w]
    CHK eax, 0x077F, "frstor control word"
    fistp dword [q]
    fldcw [cw_init]
    CHK dword [q], -3, "frstor st0 (-2.5, rounded down by the restored control word)"
    fstp qword [q]
    CHK dword [q+4], 0x400921FB, "frstor st1 (pi)"
    fstp qword [q]
    CHK dword [q+4], 0x3FF00000, "frstor st2 (1)"

    ; ---- #MF: pending from FDIVP, reported at the next waiting instruction ----
    fninit
    fldcw [cw_ze]
    fld1
    fldz
    fdivp st1, st0
    fnstsw ax
    and eax, 0x80FF
    CHK eax, 0x8084, "zero divide pending: ZE, ES, B"
    TRY
    fwait
    CATCH 16, NOERR, "#MF at fwait (CR0.NE=1)"
    fnstsw ax
    and eax, 0x80FF
    CHK eax, 0x8084, "handler sees ZE and ES"
    fnclex
    fwait
    fninit

    ; ---- #NM ----
    mov eax, cr0
    or eax, CR0_TS
    mov cr0, eax
    TRY
    fld1
    CATCH 7, NOERR, "#NM: fld1 with CR0.TS"
    TRY
    fwait
    CATCH 7, NOERR, "#NM: wait with CR0.TS and MP"
    mov eax, cr0
    and eax, ~CR0_MP
    mov cr0, eax
    fwait                           ; TS without MP: WAIT runs
    clts
    fld1
    fistp dword [q]
    CHK dword [q], 1, "fld1 after clts"
    mov eax, cr0
    or eax, CR0_MP
    mov cr0, eax
    ret

section .data
align 8
two_half: dq 2.5
bcd_val: dq 1234.5
half: dq 0.5
sin_half: dq 0.479425538604203
pi_d: dq 3.141592653589793
two_d: dq 2.0
three_d: dq 3.0
eps: dq 1.0e-15
three: dd 3
ten: dd 10
four: dd 4.0
eight: dd 8
big: dd 123456789
cw_init: dw 0x037F
cw_pc24_rz: dw 0x0C7F
cw_down: dw 0x077F
cw_ze: dw 0x037B

section .bss
alignb 16
save1: resb 108
save2: resb 108
env: resb 28
ext: resb 10
bcd: resb 10
alignb 8
q: resq 1
w: resw 1

%include "tail.inc"
