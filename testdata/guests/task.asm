; task: hardware task switches.
;   - JMP to a TSS: the new task runs with TR = its selector and NT clear, the
;     old TSS is no longer busy and the new one is; the old TSS holds the EIP
;     after the JMP and the registers; JMP back resumes there
;   - CALL through a task gate in the GDT: NT set, back link = the caller's TSS,
;     both TSSs busy; IRET in the called task returns (NT clear again, the
;     called TSS available, its saved EFLAGS without NT)
;   - INT through a task gate in the IDT, twice (the task resumes after its IRET)
;   - #GP through a task gate: the error code is on the new task's stack, the
;     faulting EIP in the old TSS, which the handler task edits to skip it
;   - a 16-bit (286) TSS: AX from the TSS, FS null, the outgoing 16-bit state
;     (IP, CS) saved in it
%define TEST_NAME "task"
%include "head.inc"
%include "prot.inc"

TSSB_SEL  equ 0x40                  ; GDT 8
TGATE_SEL equ 0x48                  ; GDT 9: task gate -> TSS B
TSSC_SEL  equ 0x50                  ; GDT 10: INT 0x90's task
TSSD_SEL  equ 0x58                  ; GDT 11: #GP's task
TSSE_SEL  equ 0x60                  ; GDT 12: 16-bit TSS
CODEE_SEL equ 0x68                  ; GDT 13: code based at task_e
F_NT      equ 0x4000

test_main:
    call prot_init
    DESC 8, tss_b, 0x67, 0x89, 0x0
    GDTGATE 9, TSSB_SEL, 0, 0x85, 0
    DESC 10, tss_c, 0x67, 0x89, 0x0
    DESC 11, tss_d, 0x67, 0x89, 0x0
    DESC 12, tss_e, 0x2B, 0x81, 0x0
    DESC 13, task_e, 0xFFFF, 0x9A, 0x4
    TSS32 tss_b, task_b, stack_b_top
    TSS32 tss_c, task_c, stack_c_top
    TSS32 tss_d, task_d, stack_d_top
    ; the 286 TSS: IP 0 in CODEE_SEL, FLAGS 2, AX 0x1234, ES/SS/DS flat data
    mov word [tss_e + 0x0E], 0
    mov word [tss_e + 0x10], 0x2
    mov word [tss_e + 0x12], 0x1234
    mov word [tss_e + 0x1A], 0xFFF0
    mov word [tss_e + 0x22], DATA_SEL
    mov word [tss_e + 0x24], CODEE_SEL
    mov word [tss_e + 0x26], DATA_SEL
    mov word [tss_e + 0x28], DATA_SEL

    ; ---- JMP to a TSS and back ----
    mov eax, 0xA1A1A1A1
    jmp TSSB_SEL:0
after_jmp:
    CHK eax, 0xA1A1A1A1, "registers restored from the TSS"
    CHK dword [b1_tr], TSSB_SEL, "STR in the task jumped to"
    CHK dword [b1_nt], 0, "JMP: NT clear"
    CHK dword [b1_acc_a], 0x89, "JMP: the old TSS is available"
    CHK dword [b1_acc_b], 0x8B, "JMP: the new TSS is busy"
    CHK dword [b1_saved_eip], after_jmp, "old TSS: EIP after the JMP"
    CHK dword [b1_saved_eax], 0xA1A1A1A1, "old TSS: EAX"
    movzx eax, word [tss_b]
    CHK eax, 0, "JMP: no back link"
    str eax
    CHK eax, TSS_SEL, "back in the main task"
    movzx eax, byte [gdt + TSS_SEL + 5]
    CHK eax, 0x8B, "main TSS busy again"
    movzx eax, byte [gdt + TSSB_SEL + 5]
    CHK eax, 0x89, "TSS B available again"

    ; ---- CALL through a task gate, IRET back ----
    call TGATE_SEL:0
after_call:
    GETF
    CHKF F_NT, 0, "NT clear after IRET"
    CHK dword [b2_nt], F_NT, "CALL: NT set in the called task"
    CHK dword [b2_link], TSS_SEL, "CALL: back link = caller"
    CHK dword [b2_acc_a], 0x8B, "CALL: the caller stays busy"
    CHK dword [b2_acc_b], 0x8B, "CALL: the called task is busy"
    movzx eax, byte [gdt + TSSB_SEL + 5]
    CHK eax, 0x89, "IRET: the called TSS is available"
    mov eax, [tss_b + 0x24]
    and eax, F_NT
    CHK eax, 0, "IRET: saved EFLAGS without NT"

    ; ---- INT through a task gate in the IDT ----
    IDTGATE 0x90, TSSC_SEL, 0, 0x85
    int 0x90
    int 0x90
    CHK dword [c_count], 2, "the INT 0x90 task ran twice"
    CHK dword [c_link], TSS_SEL, "INT: back link"
    CHK dword [c_nt], F_NT, "INT: NT set"
    movzx eax, byte [gdt + TSSC_SEL + 5]
    CHK eax, 0x89, "INT task available after IRET"

    ; ---- #GP through a task gate ----
    IDTGATE 13, TSSD_SEL, 0, 0x85
    mov eax, 0x1230                 ; beyond the GDT
gp_insn:
    mov ds, ax
    FAIL "mov ds, 0x1230 did not fault"
after_gp:
    mov eax, 13
    mov ebx, exc_stubs + 13*16
    mov cl, 0x8E
    call set_gate
    CHK dword [d_err], 0x1230, "#GP error code on the handler task's stack"
    CHK dword [d_eip], gp_insn, "faulting EIP in the old TSS"
    CHK dword [d_link], TSS_SEL, "#GP task back link"

    ; ---- a 16-bit TSS ----
    jmp TSSE_SEL:0
    CHK dword [e_ax], 0x1234, "286 TSS: AX"
    CHK dword [e_fs], 0, "286 TSS: FS null"
    CHK dword [e_tr], TSSE_SEL, "286 TSS: STR"
    movzx eax, word [tss_e + 0x0E]
    CHK eax, e_after - task_e, "286 TSS: IP saved"
    movzx eax, word [tss_e + 0x24]
    CHK eax, CODEE_SEL, "286 TSS: CS saved"
    ret

; ---- task B: entered by JMP, then by CALL ----
task_b:
    str eax
    mov [b1_tr], eax
    pushfd
    pop eax
    and eax, F_NT
    mov [b1_nt], eax
    movzx eax, byte [gdt + TSS_SEL + 5]
    mov [b1_acc_a], eax
    movzx eax, byte [gdt + TSSB_SEL + 5]
    mov [b1_acc_b], eax
    mov eax, [main_tss + 0x20]
    mov [b1_saved_eip], eax
    mov eax, [main_tss + 0x28]
    mov [b1_saved_eax], eax
    mov eax, 0xB2B2B2B2
    jmp TSS_SEL:0
    pushfd
    pop eax
    and eax, F_NT
    mov [b2_nt], eax
    movzx eax, word [tss_b]
    mov [b2_link], eax
    movzx eax, byte [gdt + TSS_SEL + 5]
    mov [b2_acc_a], eax
    movzx eax, byte [gdt + TSSB_SEL + 5]
    mov [b2_acc_b], eax
    iretd
    FAIL "task B resumed a third time"

; ---- task C: INT 0x90 ----
task_c:
    inc dword [c_count]
    movzx eax, word [tss_c]
    mov [c_link], eax
    pushfd
    pop eax
    and eax, F_NT
    mov [c_nt], eax
    iretd
    jmp task_c

; ---- task D: #GP ----
task_d:
    pop eax
    mov [d_err], eax
    movzx eax, word [tss_d]
    mov [d_link], eax
    mov eax, [main_tss + 0x20]
    mov [d_eip], eax
    mov dword [main_tss + 0x20], after_gp
    iretd
    jmp task_d

; ---- task E: a 286 TSS, CS based here ----
task_e:
    mov [e_ax], ax
    mov eax, fs
    mov [e_fs], eax
    str eax
    mov [e_tr], eax
    jmp TSS_SEL:0
e_after:
    FAIL "task E resumed"

section .data
align 16
tss_b: times 0x68 db 0
tss_c: times 0x68 db 0
tss_d: times 0x68 db 0
tss_e: times 0x2C db 0
section .bss
b1_tr: resd 1
b1_nt: resd 1
b1_acc_a: resd 1
b1_acc_b: resd 1
b1_saved_eip: resd 1
b1_saved_eax: resd 1
b2_nt: resd 1
b2_link: resd 1
b2_acc_a: resd 1
b2_acc_b: resd 1
c_count: resd 1
c_link: resd 1
c_nt: resd 1
d_err: resd 1
d_link: resd 1
d_eip: resd 1
e_ax: resd 1
e_fs: resd 1
e_tr: resd 1
alignb 16
resb 1024
stack_b_top:
resb 1024
stack_c_top:
resb 1024
stack_d_top:
section .text

%include "tail.inc"
