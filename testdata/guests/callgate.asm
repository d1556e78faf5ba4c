; callgate: far CALL from ring 3 through call gates, and RETF back.
;   - a 32-bit gate (DPL 3, 2 parameters) to ring 0: the handler runs on
;     SS0:ESP0 with the caller's SS:ESP, both parameters (same order) and
;     CS:EIP on its stack; RETF 8 returns to ring 3, releases the parameters on
;     both stacks, and nulls DS, which the handler had loaded with a DPL-0 segment
;   - a call gate in the LDT
;   - a gate to a conforming ring-0 segment: no stack switch (the target stays
;     at ring 3; QEMU TCG enters it with RPL 0, so the CS value is not checked)
;   - CALL through a DPL-0 gate from ring 3: #GP(gate selector)
;   - JMP through a gate to ring 0: #GP(code selector), JMP never changes rings
%define TEST_NAME "callgate"
%include "head.inc"
%include "prot.inc"

GATE_R0   equ 0x43                  ; GDT 8: gate DPL 3 -> 0x08:cg_handler, 2 params
LDT_SEL   equ 0x48                  ; GDT 9: the LDT
LDT_GATE  equ 0x0F                  ; LDT 1: gate DPL 3 -> 0x08:ldt_handler
GATE_DPL0 equ 0x5B                  ; GDT 11: gate DPL 0 (RPL 3 in the selector)
CONF_SEL  equ 0x60                  ; GDT 12: conforming code, DPL 0
GATE_CONF equ 0x6B                  ; GDT 13: gate DPL 3 -> 0x60:conf_handler

test_main:
    call prot_init
    GDTGATE 8, CODE_SEL, cg_handler, 0xEC, 2
    DESC 9, ldt_table, 15, 0x82, 0x0
    GDTGATE 11, CODE_SEL, cg_handler, 0x8C, 0
    DESC 12, 0, 0xFFFFF, 0x9E, 0xC
    GDTGATE 13, CONF_SEL, conf_handler, 0xEC, 0
    ; LDT entry 1: a gate to ldt_handler
    mov eax, ldt_handler
    mov word [ldt_table + 8], ax
    mov word [ldt_table + 10], CODE_SEL
    mov byte [ldt_table + 12], 0
    mov byte [ldt_table + 13], 0xEC
    shr eax, 16
    mov word [ldt_table + 14], ax
    mov eax, LDT_SEL
    lldt ax
    IDTGATE 13, CODE_SEL, gp_handler, 0x8E
    mov eax, ring3_code
    call to_ring3

    CHK dword [h_cs], CODE_SEL, "gate handler CS"
    CHK dword [h_ss], DATA_SEL, "gate handler SS = SS0"
    CHK dword [h_esp], r0_top - 24, "gate handler ESP: SS, ESP, 2 params, CS, EIP"
    CHK dword [h_frame], cg_ret, "frame: return EIP"
    CHK dword [h_frame+4], R3_CODE, "frame: return CS"
    CHK dword [h_frame+8], 0x22222222, "frame: parameter 1 (last pushed)"
    CHK dword [h_frame+12], 0x11111111, "frame: parameter 2"
    CHK dword [h_frame+16], r3_top - 8, "frame: caller ESP"
    CHK dword [h_frame+20], R3_DATA, "frame: caller SS"
    CHK dword [r3_eax], 0x33333333, "handler's sum of the parameters"
    CHK dword [r3_ds_after], 0, "RETF to ring 3 nulled DS (DPL 0)"
    CHK dword [r3_esp_after], r3_top, "RETF 8 released the parameters"
    CHK dword [ldt_cs], CODE_SEL, "LDT gate handler CS"
    CHK dword [ldt_esp], r0_top - 16, "LDT gate handler ESP (no parameters)"
    CHK dword [r3_ldt_eax], 0x1D7, "LDT gate handler result"
    CHK dword [r3_conf_esp], r3_top - 8, "conforming target: CS:EIP on the ring-3 stack"
    CHK dword [gp_count], 3, "three #GP"
    CHK dword [gp_err], GATE_DPL0 & ~3, "CALL through a DPL-0 gate"
    CHK dword [gp_eip], r3_call_dpl0, "... at the CALL"
    CHK dword [gp_err+4], CODE_SEL, "JMP through a gate to ring 0"
    CHK dword [gp_eip+4], r3_jmp_gate, "... at the JMP"
    CHK dword [gp_eip+8], r3_hlt, "HLT at ring 3"
    ret

; ---- ring 3 ----
ring3_code:
    mov ax, R3_DATA
    mov ds, ax
    mov es, ax
    push dword 0x11111111
    push dword 0x22222222
    call GATE_R0:0
cg_ret:
    mov ebx, ds
    mov cx, R3_DATA
    mov ds, cx
    mov [r3_ds_after], ebx
    mov [r3_esp_after], esp
    mov [r3_eax], eax
    call LDT_GATE:0
    mov [r3_ldt_eax], eax
    call GATE_CONF:0
    mov [r3_conf_esp], eax
r3_call_dpl0:
    call GATE_DPL0:0
r3_jmp_gate:
    jmp GATE_R0:0
r3_hlt:
    hlt

; ---- targets ----
cg_handler:
    mov [ss:h_esp], esp
    mov [ss:h_ss], ss
    mov eax, cs
    mov [ss:h_cs], eax
    mov ax, DATA_SEL
    mov ds, ax                      ; DPL 0: RETF to ring 3 must null it
    mov es, ax
    mov esi, esp
    mov edi, h_frame
    mov ecx, 6
    cld
    rep movsd
    mov eax, [esp + 8]
    add eax, [esp + 12]
    retf 8

ldt_handler:
    mov [ss:ldt_esp], esp
    mov eax, cs
    mov [ss:ldt_cs], eax
    mov eax, 0x1D7
    retf

conf_handler:
    mov eax, esp
    retf

; #GP: the first two (a CALL and a JMP, 7 bytes each) are skipped; the HLT ends.
gp_handler:
    push eax
    push ebx
    push ds
    mov ax, DATA_SEL
    mov ds, ax
    mov ebx, [gp_count]
    mov eax, [esp + 12]
    mov [gp_err + ebx*4], eax
    mov eax, [esp + 16]
    mov [gp_eip + ebx*4], eax
    inc dword [gp_count]
    cmp ebx, 2
    je come_back
    add dword [esp + 16], 7
    pop ds
    pop ebx
    pop eax
    add esp, 4
    iretd

section .data
align 8
ldt_table: times 2 dq 0
section .bss
h_cs: resd 1
h_ss: resd 1
h_esp: resd 1
h_frame: resd 6
r3_eax: resd 1
r3_ds_after: resd 1
r3_esp_after: resd 1
ldt_cs: resd 1
ldt_esp: resd 1
r3_ldt_eax: resd 1
r3_conf_esp: resd 1
gp_count: resd 1
gp_err: resd 3
gp_eip: resd 3
section .text

%include "tail.inc"
