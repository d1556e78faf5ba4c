; bcd: DAA/DAS/AAA/AAS/AAM/AAD: hand-worked packed/unpacked BCD arithmetic,
; then table vectors (tools/gen_bcd.py, SDM pseudo-code) with AF/CF inputs,
; AAM/AAD with bases 10, 16, 7, 255; AAM 0 raises #DE (saved EIP = the AAM).
%define TEST_NAME "bcd"
%include "head.inc"

test_main:
    mov eax, 0x38
    add al, 0x45                    ; 0x7D
    daa
    GETF
    CHK eax, 0x83, "38+45 daa = 83"
    CHKF F_CF, 0, "daa no carry"
    mov eax, 0x99
    add al, 0x01
    daa
    GETF
    CHK eax, 0x00, "99+01 daa = 00 carry"
    CHKF F_CF|F_ZF, F_CF|F_ZF, "daa carry+zero"
    mov eax, 0x42
    sub al, 0x15                    ; 0x2D
    das
    CHK eax, 0x27, "42-15 das = 27"
    mov eax, 0x10
    sub al, 0x20
    das
    GETF
    CHK eax, 0x90, "10-20 das = 90 borrow"
    CHKF F_CF, F_CF, "das borrow"
    mov eax, 0x0008
    add al, 0x09                    ; 0x11, AF=1
    aaa
    CHK eax, 0x0107, "8+9 aaa = 0107"
    mov eax, 0x0203
    sub al, 0x05                    ; 0xFE, AF=1
    aas
    CHK eax, 0x0108, "23-5 aas = 0108"
    mov eax, 0x0C8B                 ; AL = 139
    aam
    CHK eax, 0x0D09, "aam 139 = 0D09"
    mov eax, 0x0907
    aad
    CHK eax, 0x0061, "aad 0907 = 97"
    mov eax, 0x123456FF
    db 0xD4, 0x10                   ; aam 16
    CHK eax, 0x12340F0F, "aam 16 (nibble split)"
    mov eax, 0x0F0F
    db 0xD5, 0x10                   ; aad 16
    CHK eax, 0xFF, "aad 16"

    mov eax, 0x1234
    TRY
    db 0xD4, 0x00                   ; aam 0
    CATCH 0, NOERR, "aam 0 -> #DE"
    CHK eax, 0x1234, "ax unchanged after aam 0"
    mov eax, 0x0102
    db 0xD5, 0x00                   ; aad 0 is fine: AL = AL
    CHK eax, 0x02, "aad 0"

    call run_bcd_vectors
    ret

%include "bcd_vectors.inc"
%include "tail.inc"
