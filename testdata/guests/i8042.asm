; i8042: the 8042 keyboard controller (ports 0x60/0x64) and its keyboard.
;   - controller self test 0xAA -> 0x55 and the SYS status flag; keyboard and
;     aux interface tests 0xAB/0xA9 -> 0;
;   - command byte write/read (0x60/0x20) and the enable/disable commands
;     0xAD/0xAE (keyboard) and 0xA7/0xA8 (aux) as seen in it;
;   - keyboard: reset 0xFF -> FA AA, identify 0xF2 -> FA AB 41 (translation
;     on), echo 0xEE, LEDs 0xED, disable/enable 0xF5/0xF4;
;   - 0xD2/0xD3 put a byte in the output buffer as keyboard/aux data (status
;     bit 5 tells them apart); 0xD0 reads the output port (A20 and reset bits);
;   - IRQ 1 when the command byte enables it, none when it does not;
;   - A20: with port 0x92's gate off, the output port (0xD1) turns A20 off and
;     1 MiB wraps (0x500000 reads and writes 0x400000), then on again.  The
;     code that runs with A20 off is copied to 0x80000 (bit 20 clear) and uses
;     no stack, since this program and its stack live at 1 MiB.
%define TEST_NAME "i8042"
%include "head.inc"
%include "pic.inc"

BLOB equ 0x80000                    ; where the A20-off code runs
RESULTS equ 0x80F00                 ; what it found

; EXPECT value, "what": the next output-buffer byte must be value
%macro EXPECT 2
    call kbc_read
    jnc %%got
    FAIL %2, ": no byte in the output buffer"
%%got:
    movzx eax, al
    CHK eax, %1, %2
%endmacro

; CTR_BIT mask, value, "what": (command byte & mask) == value
%macro CTR_BIT 3
    mov al, 0x20
    call kbc_cmd
    call kbc_read
    movzx eax, al
    and eax, %1
    CHK eax, %2, %3
%endmacro

test_main:
    mov al, 0xFF
    out 0x21, al
    out 0xA1, al
    call kbc_flush

    ; ---- controller tests ----
    mov al, 0xAA
    call kbc_cmd
    EXPECT 0x55, "controller self test"
    in al, 0x64
    and eax, 0x04
    CHK eax, 0x04, "SYS flag after the self test"
    mov al, 0xAB
    call kbc_cmd
    EXPECT 0x00, "keyboard interface test"
    mov al, 0xA9
    call kbc_cmd
    EXPECT 0x00, "aux interface test"

    ; ---- command byte ----
    mov al, 0x60
    call kbc_cmd
    mov al, 0x44                    ; SYS, translation; no interrupts
    call kbc_data
    CTR_BIT 0xFF, 0x44, "command byte read back"
    mov al, 0xAD
    call kbc_cmd
    CTR_BIT 0x10, 0x10, "0xAD disables the keyboard"
    mov al, 0xAE
    call kbc_cmd
    CTR_BIT 0x10, 0x00, "0xAE enables the keyboard"
    mov al, 0xA7
    call kbc_cmd
    CTR_BIT 0x20, 0x20, "0xA7 disables the aux port"
    mov al, 0xA8
    call kbc_cmd
    CTR_BIT 0x20, 0x00, "0xA8 enables the aux port"

    ; ---- the keyboard ----
    mov al, 0xFF
    call kbc_data
    EXPECT 0xFA, "keyboard reset: ACK"
    EXPECT 0xAA, "keyboard reset: self test passed"
    mov al, 0xF2
    call kbc_data
    EXPECT 0xFA, "identify: ACK"
    EXPECT 0xAB, "identify: first ID byte"
    EXPECT 0x41, "identify: second ID byte, translated"
    mov al, 0xEE
    call kbc_data
    EXPECT 0xEE, "echo"
    mov al, 0xED
    call kbc_data
    EXPECT 0xFA, "set LEDs: ACK"
    mov al, 0x02
    call kbc_data
    EXPECT 0xFA, "set LEDs: ACK of the LED byte"
    mov al, 0xF5
    call kbc_data
    EXPECT 0xFA, "disable scanning: ACK"
    mov al, 0xF4
    call kbc_data
    EXPECT 0xFA, "enable scanning: ACK"

    ; ---- writing the output buffer ----
    mov al, 0xD2
    call kbc_cmd
    mov al, 0x42
    call kbc_data
    call kbc_wait_obf
    in al, 0x64
    and eax, 0x21
    CHK eax, 0x01, "0xD2: keyboard data in the output buffer"
    EXPECT 0x42, "0xD2 byte"
    mov al, 0xD3
    call kbc_cmd
    mov al, 0x5A
    call kbc_data
    call kbc_wait_obf
    in al, 0x64
    and eax, 0x21
    CHK eax, 0x21, "0xD3: aux data in the output buffer"
    EXPECT 0x5A, "0xD3 byte"
    mov al, 0xD0
    call kbc_cmd
    call kbc_read
    movzx eax, al
    and eax, 0x03
    CHK eax, 0x03, "output port: A20 on, not in reset"

    ; ---- IRQ 1 ----
    mov eax, 0x21
    mov ebx, irq1
    mov cl, 0x8E
    call set_gate
    mov al, 0xFD                    ; IRQ1 only
    mov ah, 0xFF
    call pic_init
    mov al, 0x60
    call kbc_cmd
    mov al, 0x45                    ; keyboard interrupt on
    call kbc_data
    mov al, 0xD2
    call kbc_cmd
    mov al, 0x99
    call kbc_data
    sti
    mov ecx, 0x1000000
.irq_wait:
    cmp dword [irq1_count], 0
    jne .irq_got
    loop .irq_wait
.irq_got:
    cli
    CHK dword [irq1_count], 1, "IRQ 1 for a byte with the interrupt enabled"
    movzx eax, byte [irq1_byte]
    CHK eax, 0x99, "byte read by the IRQ 1 handler"
    mov al, 0x60
    call kbc_cmd
    mov al, 0x44                    ; keyboard interrupt off
    call kbc_data
    mov al, 0xD2
    call kbc_cmd
    mov al, 0x77
    call kbc_data
    sti
    mov ecx, 100000
.quiet:
    loop .quiet
    cli
    CHK dword [irq1_count], 1, "no IRQ 1 with the interrupt disabled"
    EXPECT 0x77, "byte left for polling"
    mov al, 0xFF
    out 0x21, al

    ; ---- A20 through the output port ----
    mov esi, a20_blob
    mov edi, BLOB
    mov ecx, a20_blob_end - a20_blob
    rep movsb
    mov ebp, .a20_back
    mov eax, BLOB
    jmp eax
.a20_back:
    CHK dword [RESULTS], 0x11111111, "A20 off: 0x500000 reads 0x400000"
    CHK dword [RESULTS+4], 0x33333333, "A20 off: a write to 0x500000 lands at 0x400000"
    CHK dword [RESULTS+8], 0x22222222, "A20 on again: 0x500000 is itself"
    mov eax, [RESULTS+12]
    and eax, 0x03
    CHK eax, 0x01, "output port read with A20 off"
    ret

; Runs at BLOB with A20 off part of the time: position independent, no stack,
; interrupts off.  Returns with jmp ebp.  Port 0x92's gate is turned off
; here too: an emulator where the last write to either gate wins (QEMU) turns
; A20 off at once.
a20_blob:
    in al, 0x92
    and al, 0xFC                    ; port 0x92 gate off (and no reset)
    out 0x92, al
    ; output port := A20 on (so that the 8042 alone decides from here)
.w0: in al, 0x64
    test al, 2
    jnz .w0
    mov al, 0xD1
    out 0x64, al
.w01: in al, 0x64
    test al, 2
    jnz .w01
    mov al, 0xDF
    out 0x60, al
.w02: in al, 0x64
    test al, 2
    jnz .w02
    mov dword [0x400000], 0x11111111
    mov dword [0x500000], 0x22222222
    ; output port := A20 off
.w1: in al, 0x64
    test al, 2
    jnz .w1
    mov al, 0xD1
    out 0x64, al
.w2: in al, 0x64
    test al, 2
    jnz .w2
    mov al, 0xDD
    out 0x60, al
.w3: in al, 0x64
    test al, 2
    jnz .w3
    mov eax, [0x500000]
    mov [RESULTS], eax
    mov dword [0x500000], 0x33333333
    ; read the output port
    mov al, 0xD0
    out 0x64, al
    mov ecx, 0x1000000
.w4: in al, 0x64
    test al, 1
    jnz .w5
    loop .w4
.w5: in al, 0x60
    movzx eax, al
    mov [RESULTS+12], eax
    ; output port := A20 on
.w6: in al, 0x64
    test al, 2
    jnz .w6
    mov al, 0xD1
    out 0x64, al
.w7: in al, 0x64
    test al, 2
    jnz .w7
    mov al, 0xDF
    out 0x60, al
.w8: in al, 0x64
    test al, 2
    jnz .w8
    mov eax, [0x400000]
    mov [RESULTS+4], eax
    mov eax, [0x500000]
    mov [RESULTS+8], eax
    in al, 0x92
    or al, 0x02                     ; port 0x92 gate on again
    and al, 0xFE
    out 0x92, al
    jmp ebp
a20_blob_end:

irq1:
    push eax
    in al, 0x60
    mov [irq1_byte], al
    inc dword [irq1_count]
    mov al, 0x20
    out 0x20, al
    pop eax
    iretd

; kbc_wait_ibf: waits until the controller has taken the last byte written
kbc_wait_ibf:
    push eax
    push ecx
    mov ecx, 0x1000000
.w: in al, 0x64
    test al, 0x02
    jz .ok
    loop .w
.ok:
    pop ecx
    pop eax
    ret

; kbc_wait_obf: waits until the output buffer is full (bounded)
kbc_wait_obf:
    push eax
    push ecx
    mov ecx, 0x1000000
.w: in al, 0x64
    test al, 0x01
    jnz .ok
    loop .w
.ok:
    pop ecx
    pop eax
    ret

; kbc_cmd: al = controller command
kbc_cmd:
    call kbc_wait_ibf
    out 0x64, al
    ret

; kbc_data: al = byte for port 0x60
kbc_data:
    call kbc_wait_ibf
    out 0x60, al
    ret

; kbc_read: al = next output-buffer byte; CF=1 if none arrives
kbc_read:
    push ecx
    mov ecx, 0x1000000
.w: in al, 0x64
    test al, 0x01
    jnz .got
    loop .w
    pop ecx
    stc
    ret
.got:
    in al, 0x60
    pop ecx
    clc
    ret

; kbc_flush: empties the output buffer
kbc_flush:
    push eax
    push ecx
    mov ecx, 64
.l: in al, 0x64
    test al, 0x01
    jz .done
    in al, 0x60
    loop .l
.done:
    pop ecx
    pop eax
    ret

section .bss
irq1_count: resd 1
irq1_byte: resb 1
section .text
%include "tail.inc"
