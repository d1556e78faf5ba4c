; stack: PUSH/POP reg/mem/imm8/imm32/segment forms, PUSH ESP (old value),
; POP ESP, POP [ESP] (address computed after the increment), PUSHAD/POPAD
; and the 16-bit PUSHA/POPA, PUSHFD/POPFD (which EFLAGS bits can change at
; CPL 0: AC/ID/NT/IOPL yes, reserved bits/VM/RF no), 16-bit PUSHF/POPF,
; ENTER with nesting levels 0, 1 and 3 (exact frame contents) and LEAVE,
; BOUND in range and out of range (#BR, saved EIP = the BOUND), 0x66
; 16-bit pushes and pops.
%define TEST_NAME "stack"
%include "head.inc"

test_main:
    mov [saved_esp], esp
    ; ---- PUSH immediates ----
    mov ebx, esp
    push byte -2
    CHK dword [esp], 0xFFFFFFFE, "push imm8 sign-extends"
    push dword 0x12345678
    CHK dword [esp], 0x12345678, "push imm32"
    mov eax, ebx
    sub eax, esp
    CHK eax, 8, "push imm: esp -= 4 each"
    push word 0xBEEF                ; 66 68 iw
    mov eax, ebx
    sub eax, esp
    CHK eax, 10, "push word imm: esp -= 2"
    movzx eax, word [esp]
    CHK eax, 0xBEEF, "push word imm value"
    mov esp, ebx

    ; ---- PUSH ESP / POP ESP / POP [ESP] ----
    push esp
    pop eax
    CHK eax, ebx, "push esp pushes the old value"
    push dword 0x1000
    pop esp                         ; esp = popped value, no increment after
    mov eax, esp
    mov esp, ebx
    CHK eax, 0x1000, "pop esp"
    push dword 0x22
    push dword 0x11
    pop dword [esp]                 ; writes to the slot of 0x22
    CHK dword [esp], 0x11, "pop [esp]: address after increment"
    mov eax, ebx
    sub eax, esp
    CHK eax, 4, "pop [esp] esp"
    mov esp, ebx
    mov dword [mtmp], 0xA5A5A5A5
    push dword [mtmp]
    pop dword [mtmp+4]
    CHK dword [mtmp+4], 0xA5A5A5A5, "push m32/pop m32"

    ; ---- segment registers ----
    mov dword [esp-4], 0xFFFFFFFF
    push ds
    movzx eax, word [esp]
    CHK eax, DATA_SEL, "push ds value"
    lea eax, [esp+4]
    CHK eax, ebx, "push ds: esp -= 4"
    pop es
    lea eax, [esp]
    CHK eax, ebx, "pop es: esp += 4"
    mov eax, es
    CHK eax, DATA_SEL, "pop es value"
    push fs
    pop gs
    mov eax, gs
    CHK eax, DATA_SEL, "push fs / pop gs"

    ; ---- 16-bit pushes/pops ----
    mov eax, 0xAAAA1234
    push ax
    lea ecx, [esp+2]
    CHK ecx, ebx, "push ax: esp -= 2"
    mov edx, 0xFFFFFFFF
    pop dx
    CHK edx, 0xFFFF1234, "pop dx keeps upper half"
    CHK esp, ebx, "pop dx: esp += 2"
    mov word [mtmp], 0x4321
    push word [mtmp]
    pop word [mtmp+2]
    CHK dword [mtmp], 0x43214321, "push m16 / pop m16"
    push ds
    pop ds
    CHK esp, ebx, "push ds/pop ds balanced"

    ; ---- PUSHAD / POPAD ----
    mov eax, 1
    mov ecx, 2
    mov edx, 3
    mov ebx, 4
    mov ebp, 6
    mov esi, 7
    mov edi, 8
    mov [esp_before], esp
    pushad
    CHK dword [esp+28], 1, "pushad eax"
    CHK dword [esp+24], 2, "pushad ecx"
    CHK dword [esp+20], 3, "pushad edx"
    CHK dword [esp+16], 4, "pushad ebx"
    mov eax, [esp_before]
    CHK dword [esp+12], eax, "pushad original esp"
    CHK dword [esp+8], 6, "pushad ebp"
    CHK dword [esp+4], 7, "pushad esi"
    CHK dword [esp], 8, "pushad edi"
    mov dword [esp+12], 0x5555      ; ignored by popad
    mov dword [esp+28], 0x11
    xor eax, eax
    xor edi, edi
    popad
    CHK eax, 0x11, "popad eax"
    CHK edi, 8, "popad edi"
    CHK esp, [esp_before], "popad skips esp"
    mov eax, 0xFFFF0001
    mov ebx, 0xFFFF0004
    pushaw                          ; 16 bytes
    mov ecx, [esp_before]
    sub ecx, esp
    CHK ecx, 16, "pushaw size"
    movzx ecx, word [esp+14]
    CHK ecx, 1, "pushaw ax"
    movzx ecx, word [esp+8]
    CHK ecx, 4, "pushaw bx"
    mov ecx, [esp_before]
    movzx ecx, cx
    movzx edx, word [esp+6]
    CHK edx, ecx, "pushaw sp"
    mov word [esp+14], 0x7777
    mov eax, 0x12340000
    popaw
    CHK eax, 0x12347777, "popaw ax, upper kept"
    CHK esp, [esp_before], "popaw esp"

    ; ---- PUSHF / POPF ----
    push dword 0xFFFFFCFF           ; everything except TF and IF
    popfd
    pushfd
    pop eax
    push dword 2
    popfd
    CHK eax, 0x00247CD7, "popfd: settable bits at CPL0"
    push dword 0x00020002           ; VM cannot be set by POPFD
    popfd
    pushfd
    pop eax
    CHK eax, 0x00000002, "popfd: VM unaffected"
    mov eax, 0xFFFF08D5
    push ax
    popfw                           ; 66 9D: upper half untouched
    pushfd
    pop ecx
    CHK ecx, 0x000008D7, "popf (16-bit)"
    SETF F_CF|F_ZF
    mov ecx, esp
    pushfw                          ; 66 9C
    sub ecx, esp
    CHK ecx, 2, "pushfw size"
    movzx eax, word [esp]
    add esp, 2
    CHK eax, 0x43, "pushf (16-bit)"
    SETF 0

    ; ---- ENTER / LEAVE ----
    mov ebp, 0xBB000000
    mov ebx, esp
    enter 16, 0
    lea eax, [ebx-4]
    CHK ebp, eax, "enter 16,0 ebp"
    lea eax, [ebx-20]
    CHK esp, eax, "enter 16,0 esp"
    CHK dword [ebx-4], 0xBB000000, "enter 16,0 saved ebp"
    leave
    CHK esp, ebx, "leave esp"
    CHK ebp, 0xBB000000, "leave ebp"
    ; level 1: push ebp; push frame pointer
    enter 8, 1
    lea eax, [ebx-4]
    CHK ebp, eax, "enter 8,1 ebp"
    lea eax, [ebx-16]
    CHK esp, eax, "enter 8,1 esp"
    lea eax, [ebx-4]
    CHK dword [ebx-8], eax, "enter 8,1 frame ptr pushed"
    leave
    CHK esp, ebx, "leave after enter 8,1"
    ; level 3: copies 2 outer frame pointers from the old ebp chain
    mov ebp, fake_frame+8
    mov dword [fake_frame+4], 0xF1F1F1F1   ; [ebp-4]
    mov dword [fake_frame], 0xF2F2F2F2     ; [ebp-8]
    enter 4, 3
    lea eax, [ebx-4]
    CHK ebp, eax, "enter 4,3 ebp"
    CHK dword [ebx-4], fake_frame+8, "enter 4,3 saved ebp"
    CHK dword [ebx-8], 0xF1F1F1F1, "enter 4,3 outer frame 1"
    CHK dword [ebx-12], 0xF2F2F2F2, "enter 4,3 outer frame 2"
    lea eax, [ebx-4]
    CHK dword [ebx-16], eax, "enter 4,3 own frame"
    lea eax, [ebx-20]
    CHK esp, eax, "enter 4,3 esp"
    leave
    CHK ebp, fake_frame+8, "leave restores ebp"
    CHK esp, ebx, "leave esp 3"

    ; ---- BOUND ----
    mov dword [bounds], -10
    mov dword [bounds+4], 20
    mov eax, -10
    bound eax, [bounds]
    mov eax, 20
    bound eax, [bounds]
    mov eax, 21
    TRY
    bound eax, [bounds]
    CATCH 5, NOERR, "bound 21 > 20 -> #BR"
    mov eax, -11
    TRY
    bound eax, [bounds]
    CATCH 5, NOERR, "bound -11 < -10 -> #BR"
    mov word [bounds], 0x8000       ; 16-bit: -32768 .. 5
    mov word [bounds+2], 5
    mov eax, 0x7FFF0000
    bound ax, [bounds]
    mov eax, 6
    TRY
    bound ax, [bounds]
    CATCH 5, NOERR, "bound ax 6 > 5 -> #BR"

    mov esp, [saved_esp]
    ret

section .bss
saved_esp: resd 1
esp_before: resd 1
bounds: resd 2
fake_frame: resd 4
section .text
%include "tail.inc"
