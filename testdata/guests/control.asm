; control: JMP short/near/indirect (reg, mem, jump table), Jcc for all 16
; conditions taken and not taken in rel8 and rel32 forms, LOOP/LOOPE/LOOPNE
; (flags untouched, ZF termination), JECXZ and JCXZ (0x67), CALL rel32 /
; reg / mem, RET, RET imm16, far JMP/CALL/RETF/RETF imm16 (direct and
; indirect through memory) to a second code segment whose base is 0x10000,
; checking CS and the seg-relative EIP pushed there.
%define TEST_NAME "control"
%include "head.inc"

FAR_SEL equ 0x30
FAR_BASE equ 0x10000

; JT cc, flags, taken
%macro JT 3
  %defstr %%cc %1
  %strcat %%m1 "j", %%cc, " short"
  %strcat %%m2 "j", %%cc, " near"
    SETF %2
    j%1 short %%t1
  %if %3
    FAIL %%m1, " not taken"
  %endif
    jmp short %%e1
%%t1:
  %if %3 == 0
    FAIL %%m1, " taken"
  %endif
%%e1:
    SETF %2
    j%1 near %%t2
  %if %3
    FAIL %%m2, " not taken"
  %endif
    times 130 nop                   ; force a real rel32 distance
    jmp near %%e2
%%t2:
  %if %3 == 0
    FAIL %%m2, " taken"
  %endif
%%e2:
%endmacro

test_main:
    mov eax, FAR_BASE
    mov ebx, 0xFFFFF
    mov cx, 0x0C9A
    mov edx, FAR_SEL >> 3
    call set_desc

    ; ---- Jcc ----
    JT o, F_OF, 1
    JT o, 0, 0
    JT no, 0, 1
    JT no, F_OF, 0
    JT b, F_CF, 1
    JT b, F_ARITH & ~F_CF, 0
    JT ae, F_ARITH & ~F_CF, 1
    JT ae, F_CF, 0
    JT e, F_ZF, 1
    JT e, F_ARITH & ~F_ZF, 0
    JT ne, 0, 1
    JT ne, F_ZF, 0
    JT be, F_CF, 1
    JT be, F_ZF, 1
    JT be, F_SF|F_OF|F_PF, 0
    JT a, 0, 1
    JT a, F_ZF, 0
    JT a, F_CF, 0
    JT s, F_SF, 1
    JT s, F_ARITH & ~F_SF, 0
    JT ns, 0, 1
    JT ns, F_SF, 0
    JT p, F_PF, 1
    JT p, 0, 0
    JT np, F_ARITH & ~F_PF, 1
    JT np, F_PF, 0
    JT l, F_SF, 1
    JT l, F_OF, 1
    JT l, F_SF|F_OF, 0
    JT l, 0, 0
    JT ge, 0, 1
    JT ge, F_SF|F_OF, 1
    JT ge, F_SF, 0
    JT le, F_ZF, 1
    JT le, F_OF, 1
    JT le, 0, 0
    JT le, F_SF|F_OF, 0
    JT g, 0, 1
    JT g, F_SF|F_OF, 1
    JT g, F_ZF|F_SF|F_OF, 0
    JT g, F_SF, 0

    ; ---- JMP backward / indirect ----
    xor ecx, ecx
    jmp short .fwd
.back:
    inc ecx
    jmp short .after_back
.fwd:
    jmp .back
.after_back:
    CHK ecx, 1, "jmp backward"
    mov eax, .ind1
    jmp eax
    FAIL "jmp eax"
.ind1:
    mov dword [mtmp], .ind2
    jmp [mtmp]
    FAIL "jmp [mem]"
.ind2:
    mov ecx, 2
    jmp [jtab + ecx*4]
    FAIL "jmp [table+ecx*4]"
.j0: FAIL "jump table entry 0"
.j1: FAIL "jump table entry 1"
.j2:

    ; ---- LOOP family ----
    mov ecx, 5
    xor eax, eax
    SETF F_ZF|F_CF
.l1:
    inc eax                         ; (INC keeps CF)
    loop .l1
    GETF
    CHK eax, 5, "loop count"
    CHK ecx, 0, "loop ecx"
    CHKF F_CF, F_CF, "loop keeps flags"
    mov ecx, 10
    xor eax, eax
.l2:
    inc eax
    cmp eax, 3
    loopne .l2                      ; stops when eax == 3 (ZF=1)
    CHK eax, 3, "loopne stops on ZF=1"
    CHK ecx, 7, "loopne ecx"
    mov ecx, 10
    xor eax, eax
.l3:
    inc eax
    cmp eax, eax
    loope .l3                       ; runs until ecx == 0
    CHK eax, 10, "loope runs while ZF=1"
    mov ecx, 10
    xor eax, eax
.l4:
    inc eax
    test eax, 4
    loope .l4                       ; ZF=1 while bit 2 clear: stops at 4
    CHK eax, 4, "loope stops on ZF=0"
    xor ecx, ecx
    jecxz .jz1
    FAIL "jecxz not taken"
.jz1:
    mov ecx, 1
    jecxz .jzbad
    mov ecx, 0x10000                ; CX = 0
    a16 jecxz .jz2                  ; jcxz
    FAIL "jcxz (CX=0, ECX!=0) not taken"
.jzbad:
    FAIL "jecxz taken with ecx=1"
.jz2:
    mov ecx, 0x10001
    a16 loop .lw                    ; CX: 1 -> 0, falls through
    CHK ecx, 0x10000, "loop with CX (0x67)"
    jmp .lw_done
.lw:
    FAIL "a16 loop taken with CX=1"
.lw_done:

    ; ---- CALL / RET ----
    mov ebx, esp
    call near_fn
.ret_addr1:
    CHK eax, .ret_addr1, "call pushes return address"
    mov ecx, near_fn
    call ecx
    CHK ebx, esp, "call reg / ret balanced"
    mov dword [mtmp], near_fn
    call [mtmp]
    CHK ebx, esp, "call [mem] / ret balanced"
    push dword 0x1111
    push dword 0x2222
    call ret8_fn
    CHK ebx, esp, "ret 8 pops arguments"
    CHK eax, 0x3333, "ret 8 fn saw arguments"

    ; ---- far JMP / CALL / RETF ----
    jmp FAR_SEL:(far_jmp_target - FAR_BASE)
    FAIL "far jmp fell through"
far_back:
    CHK eax, FAR_SEL, "far jmp: CS in the far segment"
    mov eax, cs
    CHK eax, CODE_SEL, "far jmp back: CS"
    call FAR_SEL:(far_fn - FAR_BASE)
.far_ret1:
    CHK ebx, esp, "far call/retf balanced"
    CHK eax, FAR_SEL, "far call: CS inside"
    CHK ecx, .far_ret1, "far call pushed EIP"
    CHK edx, CODE_SEL, "far call pushed CS"
    mov dword [fptr], far_fn - FAR_BASE
    mov word [fptr+4], FAR_SEL
    call far [fptr]
.far_ret2:
    CHK ecx, .far_ret2, "call far [mem] pushed EIP"
    CHK eax, FAR_SEL, "call far [mem] CS inside"
    push dword 0x77
    push dword 0x88
    call FAR_SEL:(far_fn_retf8 - FAR_BASE)
    CHK ebx, esp, "retf 8 pops arguments"
    CHK eax, 0x77 + 0x88, "retf 8 fn saw arguments"
    mov dword [fptr], far_jmp2 - FAR_BASE
    jmp far [fptr]
    FAIL "jmp far [mem] fell through"
far_back2:
    CHK eax, FAR_SEL, "jmp far [mem] CS"
    ret

near_fn:
    mov eax, [esp]
    ret

ret8_fn:
    mov eax, [esp+4]
    add eax, [esp+8]
    ret 8

; ---- code run through FAR_SEL (EIP = linear - FAR_BASE) ----
far_jmp_target:
    mov eax, cs
    jmp CODE_SEL:far_back
far_jmp2:
    mov eax, cs
    jmp CODE_SEL:far_back2
far_fn:
    mov eax, cs
    mov ecx, [esp]
    movzx edx, word [esp+4]
    call .inner                     ; near call inside the far segment
.inner_ret:
    retf
.inner:
    mov esi, [esp]
    cmp esi, .inner_ret - FAR_BASE  ; return EIP is segment-relative
    je .ok
    xor eax, eax                    ; makes the CS check fail
.ok:
    ret
far_fn_retf8:
    mov eax, [esp+8]
    add eax, [esp+12]
    retf 8

section .data
align 4
jtab: dd test_main.j0, test_main.j1, test_main.j2
section .bss
fptr: resd 2
section .text
%include "tail.inc"
