; shift: SHL/SHR/SAR/ROL/ROR/RCL/RCR by 1 (D0/D1), by CL (D2/D3) and by
; immediate (C0/C1) with counts 0, 1, > width and >= 32 (masked to 5 bits),
; 8/16/32-bit register and memory forms; SHLD/SHRD by CL and immediate.
; Only architecturally defined flags are compared (per-vector masks, see
; tools/gen_shift.py).
%define TEST_NAME "shift"
%include "head.inc"

test_main:
    ; a few hand-worked cases first
    mov eax, 0x80000001
    SETF 0
    shl eax, 1                      ; -> 2, CF=1, OF = MSB^CF = 1
    GETF
    CHK eax, 2, "shl eax,1"
    CHKF F_CF|F_OF|F_ZF|F_SF|F_PF, F_CF|F_OF, "shl eax,1 flags"
    mov al, 0x81
    mov cl, 9
    SETF 0
    sar al, cl                      ; count > width: all sign, CF = sign
    GETF
    movzx eax, al
    CHK eax, 0xFF, "sar al,9"
    CHKF F_CF|F_ZF|F_SF|F_PF, F_CF|F_SF|F_PF, "sar al,9 flags"
    mov eax, 0x12345678
    mov cl, 32                      ; masked to 0: nothing changes
    SETF F_ZF|F_OF
    shr eax, cl
    GETF
    CHK eax, 0x12345678, "shr eax,32"
    CHKF F_ARITH, F_ZF|F_OF, "shr eax,32 flags unchanged"
    mov ax, 0x8001
    SETF F_CF
    rcl ax, 1                       ; 1:1000000000000001 -> 0000000000000011, CF=1
    GETF
    movzx eax, ax
    CHK eax, 3, "rcl ax,1"
    CHKF F_CF|F_OF, F_CF|F_OF, "rcl ax,1 flags"
    mov al, 0x5A
    mov cl, 9
    SETF F_CF
    rcl al, cl                      ; 9 mod 9 = 0: unchanged, CF kept
    GETF
    movzx eax, al
    CHK eax, 0x5A, "rcl al,9"
    CHKF F_CF, F_CF, "rcl al,9 CF"
    mov eax, 0x11223344
    mov edx, 0xAABBCCDD
    shld eax, edx, 8
    CHK eax, 0x223344AA, "shld eax,edx,8"
    mov eax, 0x11223344
    shrd eax, edx, 8
    CHK eax, 0xDD112233, "shrd eax,edx,8"

    call run_shift_vectors
    ret

%include "shift_vectors.inc"
%include "tail.inc"
