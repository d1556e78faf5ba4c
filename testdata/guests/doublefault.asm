; doublefault: #DF through a task gate.
;   - #NP while delivering #NP (the #NP handler's code segment is not present):
;     #DF, error code 0, reaches its own task through an IDT task gate; the
;     faulting task's TSS holds the EIP of the instruction that began it; the
;     #DF task edits that EIP and returns with IRET (NT, back link)
;   - a #GP at ring 3 whose ring-0 handler has no usable stack (SS0 not
;     present): a contributory fault while delivering a contributory one is
;     #DF again; this time the #DF task checks what it got and reports PASS
%define TEST_NAME "doublefault"
%include "head.inc"
%include "prot.inc"

DFTSS_SEL equ 0x40                  ; GDT 8: the #DF task
NPDATA    equ 0x48                  ; GDT 9: data, not present
NPCODE    equ 0x50                  ; GDT 10: code, not present
F_NT      equ 0x4000

test_main:
    call prot_init
    DESC 8, df_tss, 0x67, 0x89, 0x0
    DESC 9, 0, 0xFFFFF, 0x12, 0xC
    DESC 10, 0, 0xFFFFF, 0x1A, 0xC
    TSS32 df_tss, df_task, df_stack_top
    IDTGATE 8, DFTSS_SEL, 0, 0x85

    ; ---- #NP inside #NP ----
    IDTGATE 11, NPCODE, exc_stubs + 11*16, 0x8E
    mov eax, NPDATA
np_insn:
    mov ds, ax
    FAIL "loading a not-present segment did not fault"
after_np:
    mov eax, 11
    mov ebx, exc_stubs + 11*16
    mov cl, 0x8E
    call set_gate
    CHK dword [df_count], 1, "one #DF"
    CHK dword [df1_err], 0, "#DF error code"
    CHK dword [df1_link], TSS_SEL, "#DF task back link"
    CHK dword [df1_eip], np_insn, "the faulting EIP in the old TSS"
    CHK dword [df1_nt], F_NT, "NT in the #DF task"
    mov eax, ds
    CHK eax, DATA_SEL, "DS as it was before the fault"

    ; ---- a ring-3 #GP with SS0 not present ----
    mov word [main_tss + 8], NPDATA
    mov eax, ring3_hlt
    call to_ring3
    FAIL "back from ring 3 without a #DF"

ring3_hlt:
    hlt
    jmp ring3_hlt

; ---- the #DF task ----
df_task:
    inc dword [df_count]
    pop dword [df1_err]
    movzx eax, word [df_tss]
    mov [df1_link], eax
    mov eax, [main_tss + 0x20]
    mov [df1_eip], eax
    pushfd
    pop eax
    and eax, F_NT
    mov [df1_nt], eax
    mov dword [main_tss + 0x20], after_np
    iretd
    ; the second #DF
    inc dword [df_count]
    pop eax
    CHK eax, 0, "second #DF error code"
    CHK dword [df_count], 2, "two #DF"
    movzx eax, word [df_tss]
    CHK eax, TSS_SEL, "second #DF: back link"
    CHK dword [main_tss + 0x20], ring3_hlt, "second #DF: EIP of the HLT"
    movzx eax, word [main_tss + 0x4C]
    CHK eax, R3_CODE, "second #DF: the interrupted task was at ring 3"
    movzx eax, byte [gdt + TSS_SEL + 5]
    CHK eax, 0x8B, "the interrupted task stays busy"
    movzx eax, byte [gdt + DFTSS_SEL + 5]
    CHK eax, 0x8B, "the #DF task is busy"
    str eax
    CHK eax, DFTSS_SEL, "running in the #DF task"
    jmp test_passed

section .data
align 16
df_tss: times 0x68 db 0
section .bss
df_count: resd 1
df1_err: resd 1
df1_link: resd 1
df1_eip: resd 1
df1_nt: resd 1
alignb 16
resb 2048
df_stack_top:
section .text

%include "tail.inc"
