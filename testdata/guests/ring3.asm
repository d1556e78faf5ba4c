; ring3: drop to ring 3 with IRET and come back through gates.
;   - IRETD to ring 3 loads CS/SS with RPL 3 and nulls DS/ES/FS/GS (DPL 0)
;   - INT 0x80 through a DPL-3 interrupt gate: the handler runs at ring 0 on
;     SS0:ESP0 from the TSS, with the old SS:ESP, EFLAGS, CS, EIP on it; its
;     IRETD returns to ring 3 with the value it put in EAX
;   - CLI at ring 3 with IOPL 0: #GP(0) to a ring-0 handler (24-byte frame with
;     error code, EIP of the CLI), which skips it and returns
;   - INT 0x81 through a DPL-0 gate: #GP(0x81*8+2)
;   - HLT at ring 3: #GP(0); that handler comes back to the ring-0 test
%define TEST_NAME "ring3"
%include "head.inc"
%include "prot.inc"

test_main:
    call prot_init
    IDTGATE 0x80, CODE_SEL, int80, 0xEE
    IDTGATE 0x81, CODE_SEL, int80, 0x8E
    IDTGATE 13, CODE_SEL, gp_handler, 0x8E
    mov eax, ring3_code
    call to_ring3
    ; back in ring 0 through come_back
    mov eax, cs
    CHK eax, CODE_SEL, "back at ring 0"

    ; ---- what ring 3 saw ----
    CHK dword [r3_cs], R3_CODE, "CS in ring 3"
    CHK dword [r3_ss], R3_DATA, "SS in ring 3"
    CHK dword [r3_ds], 0, "IRET to ring 3 nulled DS (DPL 0)"
    CHK dword [r3_es], 0, "IRET to ring 3 nulled ES"
    CHK dword [r3_esp], r3_top, "ESP in ring 3"
    CHK dword [r3_eax], 0x600D, "EAX set by the INT 0x80 handler"

    ; ---- the INT 0x80 handler's view ----
    CHK dword [h_cs], CODE_SEL, "handler CS"
    CHK dword [h_ss], DATA_SEL, "handler SS = SS0 from the TSS"
    CHK dword [h_esp], r0_top - 20, "handler ESP = ESP0 - 5 dwords"
    CHK dword [h_frame], int80_ret, "frame: EIP after INT 0x80"
    CHK dword [h_frame+4], R3_CODE, "frame: CS"
    mov eax, [h_frame+8]
    and eax, 0x3002
    CHK eax, 0x0002, "frame: EFLAGS (IOPL 0)"
    CHK dword [h_frame+12], r3_top, "frame: ring-3 ESP"
    CHK dword [h_frame+16], R3_DATA, "frame: ring-3 SS"

    ; ---- the #GP handler's view ----
    CHK dword [gp_count], 3, "three #GP from ring 3"
    CHK dword [gp_err], 0, "CLI: #GP(0)"
    CHK dword [gp_eip], r3_cli, "CLI: saved EIP"
    CHK dword [gp_cs], R3_CODE, "CLI: saved CS"
    CHK dword [gp_esp], r0_top - 24, "CLI: handler ESP (frame with error code)"
    CHK dword [gp_err+4], 0x81*8+2, "INT 0x81 (gate DPL 0): #GP(vector*8+2)"
    CHK dword [gp_eip+4], r3_int81, "INT 0x81: saved EIP"
    CHK dword [gp_err+8], 0, "HLT: #GP(0)"
    CHK dword [gp_eip+8], r3_hlt, "HLT: saved EIP"
    CHK dword [gp_ss3], R3_DATA, "HLT: ring-3 SS in the frame"
    CHK dword [gp_esp3], r3_top, "HLT: ring-3 ESP in the frame"
    ret

; ---- ring 3 ----
ring3_code:
    mov ebx, ds
    mov ecx, es
    mov edx, esp
    mov eax, 1
    int 0x80
int80_ret:
    mov esi, R3_DATA
    mov ds, si
    mov [r3_eax], eax
    mov [r3_ds], ebx
    mov [r3_es], ecx
    mov [r3_esp], edx
    mov eax, cs
    mov [r3_cs], eax
    mov eax, ss
    mov [r3_ss], eax
r3_cli:
    cli
r3_int81:
    int 0x81
r3_hlt:
    hlt
    jmp r3_hlt

; ---- ring-0 handlers ----
; INT 0x80: record the entry state and the frame, return 0x600D in EAX.
int80:
    mov [ss:h_esp], esp
    mov [ss:h_ss], ss
    push eax
    push esi
    push edi
    push ecx
    push ds
    push es
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov eax, cs
    mov [h_cs], eax
    lea esi, [esp + 24]
    mov edi, h_frame
    mov ecx, 5
    cld
    rep movsd
    pop es
    pop ds
    pop ecx
    pop edi
    pop esi
    pop eax
    mov eax, 0x600D
    iretd

; #GP: record error code and EIP; the first two are skipped, the third (HLT)
; ends the ring-3 part.
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
    cmp ebx, 0
    jne .not_first
    lea eax, [esp + 12]
    mov [gp_esp], eax
    mov eax, [esp + 20]
    mov [gp_cs], eax
    inc dword [esp + 16]            ; skip the CLI
    jmp .resume
.not_first:
    cmp ebx, 1
    jne .done
    add dword [esp + 16], 2         ; skip the INT 0x81
.resume:
    pop ds
    pop ebx
    pop eax
    add esp, 4                      ; the error code
    iretd
.done:
    mov eax, [esp + 28]
    mov [gp_esp3], eax
    mov eax, [esp + 32]
    mov [gp_ss3], eax
    jmp come_back

section .bss
r3_cs: resd 1
r3_ss: resd 1
r3_ds: resd 1
r3_es: resd 1
r3_esp: resd 1
r3_eax: resd 1
h_cs: resd 1
h_ss: resd 1
h_esp: resd 1
h_frame: resd 5
gp_count: resd 1
gp_err: resd 3
gp_eip: resd 3
gp_cs: resd 1
gp_esp: resd 1
gp_ss3: resd 1
gp_esp3: resd 1
section .text

%include "tail.inc"
