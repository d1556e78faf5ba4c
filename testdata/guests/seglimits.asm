; seglimits: faults raised by *using* a segment (SDM vol. 3, 5.3/5.4):
;   #GP(0) for an access through a null ES, a write to a read-only data
;   segment, a write through CS, a dword read crossing a byte-granular limit,
;   a byte write past it, REP STOSD past it (EDI/ECX unchanged), offsets
;   outside an expand-down segment; #SS(0) for SS-relative accesses
;   (EBP base, ESP base) beyond the SS limit.
; NOTE: QEMU TCG does not test segment limits and access rights on memory
; accesses, so this program FAILS under QEMU (check 1: no exception) by
; design; it passes under Bochs (tools/bochs/run-bochs.sh), which does
; enforce them, as real CPUs do.
%define TEST_NAME "seglimits"
%include "head.inc"

SEL_RO   equ 0x38                   ; read-only data, flat
SEL_LIM  equ 0x40                   ; data base 0x200000, limit 0xFFF (bytes)
SEL_NP   equ 0x48                   ; data, not present
SEL_XO   equ 0x50                   ; execute-only code
SEL_NULL equ 0x58                   ; all-zero descriptor
SEL_SS   equ 0x60                   ; stack, limit 0x1FFFFF (4K granular)
SEL_ED   equ 0x68                   ; expand-down data, base 0x200000, limit 0xFFF

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
    DESC 12, 0, 0x1FF, 0x92, 0xC
    DESC 13, 0x200000, 0xFFF, 0x96, 0x0     ; expand-down, limit 0xFFF, B=0

    ; ---- #GP on accesses ----
    xor eax, eax
    mov es, ax                      ; null selector may be loaded...
    TRY
    mov eax, [es:0x1000]            ; ...but not used
    CATCH 13, 0, "access through null ES"
    mov eax, SEL_RO
    mov es, ax
    mov eax, [es:mtmp]              ; reading is fine
    TRY
    mov dword [es:mtmp], 1
    CATCH 13, 0, "write to read-only data segment"
    TRY
    inc dword [cs:mtmp]
    CATCH 13, 0, "write through CS"
    mov eax, SEL_LIM
    mov es, ax
    mov byte [es:0xFFF], 0x12       ; last byte: fine
    mov dword [es:0xFFC], 0x34      ; last dword: fine
    TRY
    mov eax, [es:0xFFE]             ; crosses the limit
    CATCH 13, 0, "dword read crossing the limit"
    TRY
    mov byte [es:0x1000], 1
    CATCH 13, 0, "byte write past the limit"
    mov edi, 0xFFE
    mov ecx, 1
    TRY
    rep stosd
    CATCH 13, 0, "rep stosd past the limit"
    CHK edi, 0xFFE, "edi unchanged after faulting stosd"
    CHK ecx, 1, "ecx unchanged after faulting stosd"
    mov eax, DATA_SEL
    mov es, ax

    ; ---- #SS: beyond the stack segment limit ----
    mov eax, SEL_SS
    mov ss, ax
    mov ebp, 0x300000
    TRY
    mov eax, [ebp]                  ; EBP base -> SS
    CATCH 12, 0, "ss:[ebp] beyond SS limit"
    TRY
    mov eax, [esp+0x200000]
    CATCH 12, 0, "ss:[esp+2M] beyond SS limit"
    mov eax, [ds:ebp]               ; same address through DS: fine
    mov eax, DATA_SEL
    mov ss, ax

    ; ---- expand-down: valid offsets are limit+1 .. 0xFFFF (B=0) ----
    mov eax, SEL_ED
    mov es, ax
    mov byte [es:0x1000], 0x5A      ; lowest valid offset
    mov byte [es:0xFFFF], 0xA5      ; highest valid offset (B=0: 64 KiB)
    movzx eax, byte [0x201000]
    CHK eax, 0x5A, "expand-down base"
    TRY
    mov byte [es:0xFFF], 1
    CATCH 13, 0, "expand-down: offset at the limit"
    TRY
    mov byte [es:0x10000], 1
    CATCH 13, 0, "expand-down (B=0): offset above 0xFFFF"
    mov eax, DATA_SEL
    mov es, ax
    ret

%include "tail.inc"
