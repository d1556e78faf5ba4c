; interrupts: INT n through 32-bit interrupt gates (IF cleared in the handler)
; and trap gates (IF kept); the frame the handler sees (EIP after the INT,
; CS, EFLAGS with IF); IRET restoring EFLAGS (incl. flags the handler edited
; in the frame); INT 3 (CC and CD 03), INTO with OF=0/1 (trap: EIP after);
; INT 0x0D pushes no error code; nested INT; CLI/STI; software INT with the
; PIC masked so no hardware interrupt interferes.
%define TEST_NAME "interrupts"
%include "head.inc"

%macro GATE 3 ; vector, handler, type
    mov eax, %1
    mov ebx, %2
    mov cl, %3
    call set_gate
%endmacro

test_main:
    mov al, 0xFF                    ; mask every IRQ at both PICs
    out 0x21, al
    out 0xA1, al
    GATE 0x40, rec_handler, 0x8E    ; interrupt gate
    GATE 0x41, rec_handler, 0x8F    ; trap gate
    GATE 0x0D, rec_handler, 0x8E    ; software INT 13: no error code
    GATE 3, rec_handler, 0x8F
    GATE 4, rec_handler, 0x8F
    GATE 0x42, flag_editor, 0x8E
    GATE 0x43, nest_outer, 0x8E
    GATE 0x44, nest_inner, 0x8E

    ; ---- interrupt gate ----
    sti
    mov [pre_esp], esp
    SETF F_IF|F_CF|F_ZF
    int 0x40
.r1:
    GETF
    CHK dword [h_count], 1, "int 0x40 ran"
    CHK dword [h_eip], .r1, "int 0x40 saved EIP = next insn"
    CHK dword [h_cs], CODE_SEL, "int 0x40 saved CS"
    mov eax, [h_eflags]
    and eax, F_IF|F_CF|F_ZF|F_SF
    CHK eax, F_IF|F_CF|F_ZF, "int 0x40 saved EFLAGS"
    mov eax, [h_flags]
    and eax, F_IF
    CHK eax, 0, "interrupt gate clears IF"
    CHKF F_IF|F_CF|F_ZF, F_IF|F_CF|F_ZF, "iret restores IF and flags"
    mov eax, [pre_esp]
    sub eax, [h_entry_esp]
    CHK eax, 12, "frame is 12 bytes (same privilege)"
    CHK esp, [pre_esp], "iret pops the frame"

    ; ---- trap gate ----
    SETF F_IF
    int 0x41
.r2:
    mov eax, [h_flags]
    and eax, F_IF
    CHK eax, F_IF, "trap gate keeps IF"
    CHK dword [h_eip], .r2, "int 0x41 saved EIP"
    SETF 0
    int 0x41
    mov eax, [h_flags]
    and eax, F_IF
    CHK eax, 0, "trap gate with IF=0 keeps IF=0"

    ; ---- handler edits the saved EFLAGS ----
    SETF F_IF
    int 0x42
    GETF
    CHKF F_CF|F_OF|F_IF, F_CF|F_OF, "iret loads edited EFLAGS (CF,OF set, IF clear)"
    CHK eax, 0x4242, "handler return value"

    ; ---- INT 3 / INTO ----
    mov dword [h_count], 0
    int3
.r3:
    CHK dword [h_eip], .r3, "int3 saved EIP after CC"
    int 3
.r4:
    CHK dword [h_eip], .r4, "int 3 (CD 03) saved EIP"
    CHK dword [h_count], 2, "int3 count"
    SETF 0
    into
    CHK dword [h_count], 2, "into with OF=0 does nothing"
    SETF F_OF
    into
.r5:
    CHK dword [h_count], 3, "into with OF=1 traps"
    CHK dword [h_eip], .r5, "into saved EIP after INTO"

    ; ---- INT 0x0D: software interrupt, no error code ----
    int 0x0D
.r6:
    CHK dword [h_eip], .r6, "int 0x0D frame has no error code"
    CHK dword [h_cs], CODE_SEL, "int 0x0D CS"

    ; ---- nesting ----
    mov dword [nest_log], 0
    int 0x43
    CHK dword [nest_log], 0x123, "nested int order"

    ; ---- CLI / STI ----
    cli
    pushfd
    pop eax
    and eax, F_IF
    CHK eax, 0, "cli"
    sti
    pushfd
    pop eax
    and eax, F_IF
    CHK eax, F_IF, "sti"
    cli
    ret

rec_handler:
    mov [h_entry_esp], esp
    pushfd
    pop dword [h_flags]
    push eax
    mov eax, [esp+4]
    mov [h_eip], eax
    mov eax, [esp+8]
    mov [h_cs], eax
    mov eax, [esp+12]
    mov [h_eflags], eax
    pop eax
    inc dword [h_count]
    iretd

flag_editor:
    or dword [esp+8], F_CF|F_OF
    and dword [esp+8], ~F_IF
    mov eax, 0x4242
    iretd

nest_outer:
    or dword [nest_log], 0x100
    int 0x44
    or dword [nest_log], 0x003
    iretd
nest_inner:
    or dword [nest_log], 0x020
    iretd

section .bss
h_flags: resd 1
h_eip: resd 1
h_cs: resd 1
h_eflags: resd 1
h_count: resd 1
h_entry_esp: resd 1
pre_esp: resd 1
nest_log: resd 1
section .text
%include "tail.inc"
