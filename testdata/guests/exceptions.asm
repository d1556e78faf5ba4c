; exceptions: each fault is caught by the test's handler, which checks the
; vector, the error code and that the saved EIP is the faulting instruction
; (execution then resumes after it):
;   #UD: UD2, 0F FF, LOCK NOP, LOCK with a register destination, MOV CS
;   #GP: null/over-limit/RPL-carrying/LDT-without-LDT selectors,
;        execute-only code into DS, non-writable segments and null into SS,
;        far JMP to a data segment; the segment register is unchanged after
;   #NP: not-present data segment (error = selector), not-present IDT gate
;        (error = vector*8+2); #SS: not-present segment loaded into SS
;   #DE: DIV by zero.
; Faults raised by the *use* of a segment (limits, read-only, null) are in
; seglimits.asm, because QEMU TCG does not check them.
%define TEST_NAME "exceptions"
%include "head.inc"

SEL_RO   equ 0x38                   ; read-only data, flat
SEL_LIM  equ 0x40                   ; data base 0x200000, limit 0xFFF (bytes)
SEL_NP   equ 0x48                   ; data, not present
SEL_XO   equ 0x50                   ; execute-only code
SEL_NULL equ 0x58                   ; all-zero descriptor
SEL_SS   equ 0x60                   ; stack, limit 0x1FFFFF (4K granular)

%macro DESC 5 ; index, base, limit, access, flags
    mov eax, %2
    mov ebx, %3
    mov cl, %4
    mov ch, %5
    mov edx, %1
    call set_desc
%endmacro

test_main:
    DESC 7, 0, 0xFFFFF, 0x90, 0xC
    DESC 8, 0x200000, 0xFFF, 0x92, 0x4
    DESC 9, 0, 0xFFFFF, 0x12, 0xC
    DESC 10, 0, 0xFFFFF, 0x98, 0xC
    DESC 12, 0, 0x1FF, 0x92, 0xC

    ; ---- #UD ----
    TRY
    ud2
    CATCH 6, NOERR, "ud2"
    TRY
    db 0x0F, 0xFF                   ; UD0 / reserved
    CATCH 6, NOERR, "0F FF"
    TRY
    db 0xF0, 0x90                   ; lock nop
    CATCH 6, NOERR, "lock nop"
    TRY
    db 0xF0, 0x01, 0xD8             ; lock add eax, ebx
    CATCH 6, NOERR, "lock add reg,reg"
    TRY
    db 0x8E, 0xC8                   ; mov cs, ax
    CATCH 6, NOERR, "mov cs, ax"

    ; ---- #GP on selector loads ----
    mov eax, SEL_NULL
    TRY
    mov ds, ax
    CATCH 13, SEL_NULL, "mov ds, null descriptor"
    mov eax, ds
    CHK eax, DATA_SEL, "ds unchanged after #GP"
    mov eax, SEL_NULL | 3
    TRY
    mov es, ax
    CATCH 13, SEL_NULL, "error code drops RPL"
    mov eax, 0x1000                 ; beyond the GDT limit
    TRY
    mov fs, ax
    CATCH 13, 0x1000, "selector beyond GDT limit"
    xor eax, eax
    lldt ax                         ; LDTR = null (the reset-state LDTR is a
    mov eax, 0x0C                   ; valid base 0/limit FFFF table!)
    TRY
    mov gs, ax
    CATCH 13, 0x0C, "LDT selector without LDT"
    mov eax, SEL_XO
    TRY
    mov ds, ax
    CATCH 13, SEL_XO, "execute-only code into DS"
    mov eax, SEL_RO
    TRY
    mov ss, ax
    CATCH 13, SEL_RO, "read-only data into SS"
    mov eax, CODE_SEL
    TRY
    mov ss, ax
    CATCH 13, CODE_SEL, "code into SS"
    xor eax, eax
    TRY
    mov ss, ax
    CATCH 13, 0, "null into SS"
    mov eax, SEL_RO
    mov ds, ax                      ; readable data into DS: fine
    mov eax, DATA_SEL
    mov ds, ax
    TRY
    jmp DATA_SEL:0
    CATCH 13, DATA_SEL, "far jmp to a data segment"

    ; ---- #NP / #SS for not-present segments ----
    mov eax, SEL_NP
    TRY
    mov ds, ax
    CATCH 11, SEL_NP, "not-present segment into DS"
    TRY
    mov gs, ax
    CATCH 11, SEL_NP, "not-present segment into GS"
    TRY
    mov ss, ax
    CATCH 12, SEL_NP, "not-present segment into SS -> #SS"
    ; not-present IDT gate
    mov eax, 0x80
    mov ebx, exc_stub_generic
    mov cl, 0x0E                    ; P=0
    call set_gate
    TRY
    int 0x80
    CATCH 11, 0x80*8 + 2, "int to a not-present gate"

    ; ---- #DE ----
    xor ecx, ecx
    TRY
    div ecx
    CATCH 0, NOERR, "div by zero"

    CHK dword [exc_cs], CODE_SEL, "saved CS"
    ret

%include "tail.inc"
