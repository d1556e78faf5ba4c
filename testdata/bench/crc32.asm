; bench crc32: table-driven CRC-32 (IEEE, reflected, poly 0xEDB88320) of a
; 64 KiB pseudo-random buffer processed R times as one stream; every byte
; goes through a CALL/RET helper.  Result = zlib.crc32(buffer * R).
; Kernel (from "mov edx, -1" to "not edx"; table and buffer set-up excluded):
;     instructions = 3 + R * (4 + 65536 * 11)      (5 in the loop + 6 in the helper)
;     R = 300  ->  216,270,003 instructions
%define TEST_NAME "bench-crc32"
%include "head.inc"
BENCH_EXPECTED equ 0x26971811            ; tools/bench_model.py crc32
%ifndef R
%define R 300
%endif
test_main:
    ; table
    xor ecx, ecx
.t:
    mov eax, ecx
    mov ebx, 8
.tb:
    shr eax, 1
    jnc .tn
    xor eax, 0xEDB88320
.tn:
    dec ebx
    jnz .tb
    mov [table + ecx*4], eax
    inc ecx
    cmp ecx, 256
    jb .t
    ; buffer: x = x * 1103515245 + 12345, byte = x >> 16
    mov eax, 1
    xor ecx, ecx
.f:
    imul eax, eax, 1103515245
    add eax, 12345
    mov edx, eax
    shr edx, 16
    mov [buf + ecx], dl
    inc ecx
    cmp ecx, 65536
    jb .f

..@kernel_start:
    mov edx, 0xFFFFFFFF
    mov ebp, R
.o:
    mov esi, buf
    mov ecx, 65536
.b:
    movzx eax, byte [esi]
    call crc_byte
    inc esi
    dec ecx
    jnz .b
    dec ebp
    jnz .o
    not edx

..@kernel_end:
    mov eax, edx
    mov ebx, BENCH_EXPECTED
    call bench_result
    ret

; al = byte, edx = running crc
crc_byte:
    mov ebx, edx
    xor bl, al
    movzx ebx, bl
    shr edx, 8
    xor edx, [table + ebx*4]
    ret
%include "bench.inc"
section .bss
alignb 4096
table: resd 256
buf: resb 65536
section .text
%include "tail.inc"
