; segments: Multiboot entry EAX, SGDT/LGDT (move the GDT, reload every segment register, move it
; back), SIDT/LIDT (moved IDT still dispatches INT), LLDT/SLDT with an LDT
; holding a data segment (TI=1 selectors, base visible), LTR/STR (TSS type
; becomes busy in the GDT), descriptor bases visible through accesses, LSL
; with byte and 4K granularity and expand-down, LAR access rights, LSL/LAR
; on bad selectors (ZF=0), CR0 (PE set, TS/MP writable, CLTS, LMSW cannot
; clear PE, SMSW), CR2/CR3/CR4 read-back (no paging), DR0-3/DR7 read-back,
; CPUID leaf 0 (printable vendor) and leaf 1 (family >= 4; TSC, CX8, CMOV),
; RDTSC monotonic.
%define TEST_NAME "segments"
%include "head.inc"

SEL_LDT  equ 0x28                   ; GDT[5]: LDT descriptor
SEL_TSS  equ 0x30                   ; GDT[6]: 32-bit TSS
SEL_B    equ 0x38                   ; data base 0x5000, limit 0x1FF bytes
SEL_G    equ 0x40                   ; data base 0x6000, limit 1 (4K) = 0x1FFF
SEL_ED   equ 0x48                   ; expand-down data, limit 0xFFF
LSEL     equ 0x0C                   ; LDT[1], TI=1

%macro DESC 5 ; index, base, limit, access, flags
    mov eax, %2
    mov ebx, %3
    mov cl, %4
    mov ch, %5
    mov edx, %1
    call set_desc
%endmacro

test_main:
    CHK dword [mb_magic], 0x2BADB002, "Multiboot magic in EAX at entry"
    DESC 5, ldt, 15, 0x82, 0x0
    DESC 6, tss, 0x67, 0x89, 0x0
    DESC 7, 0x5000, 0x1FF, 0x92, 0x4
    DESC 8, 0x6000, 0x1, 0x92, 0xC
    DESC 9, 0x7000, 0xFFF, 0x96, 0x4
    ; LDT[1]: data, base 0x3000, limit 0xFFFF
    mov dword [ldt+8], 0x3000FFFF
    mov dword [ldt+12], 0x00409200

    ; ---- SGDT / LGDT ----
    sgdt [dtr]
    movzx eax, word [dtr]
    CHK eax, GDT_ENTRIES*8 - 1, "sgdt limit"
    CHK dword [dtr+2], gdt, "sgdt base"
    mov esi, gdt
    mov edi, gdt2
    mov ecx, GDT_ENTRIES*2
    rep movsd
    mov word [dtr], GDT_ENTRIES*8 - 1
    mov dword [dtr+2], gdt2
    mov dword [gdt2+0x20], 0        ; GDT[4] is null in the copy
    mov dword [gdt2+0x24], 0
    mov dword [gdt2+0x38], 0x0000FFFF   ; GDT[7]: flat data in the copy only
    mov dword [gdt2+0x3C], 0x00CF9200
    lgdt [dtr]
    mov eax, 0x38
    mov ds, ax
    mov es, ax
    mov ss, ax
    jmp CODE_SEL:.reloaded
.reloaded:
    sgdt [dtr]
    CHK dword [dtr+2], gdt2, "lgdt moved the GDT"
    mov eax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, 0x20
    TRY
    mov fs, ax                      ; null in the new GDT
    CATCH 13, 0x20, "selector invalid in the new GDT"
    lgdt [gdt_ptr]
    mov eax, 0x20
    mov fs, ax                      ; valid again
    mov eax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov ss, ax

    ; ---- SIDT / LIDT ----
    sidt [dtr]
    movzx eax, word [dtr]
    CHK eax, 0x7FF, "sidt limit"
    CHK dword [dtr+2], idt, "sidt base"
    mov esi, idt
    mov edi, idt2
    mov ecx, 512
    rep movsd
    mov eax, 0x50
    mov ebx, int50_handler
    mov cl, 0x8E
    call set_gate                   ; in the old IDT only ...
    mov dword [dtr+2], idt2
    lidt [dtr]
    mov dword [int50_hits], 0
    TRY
    int 0x50                        ; ... so the new IDT's stub runs
    CATCHT 0xFF, "lidt: new table in use (generic stub, vector 0xFF)"
    lidt [idt_ptr]
    int 0x50
    CHK dword [int50_hits], 1, "lidt back: old table in use"

    ; ---- LLDT / SLDT ----
    mov eax, SEL_LDT
    lldt ax
    sldt eax
    CHK eax, SEL_LDT, "sldt"
    mov dword [0x3000 + 0x40], 0xC0DEC0DE
    mov eax, LSEL
    mov fs, ax
    mov eax, [fs:0x40]
    CHK eax, 0xC0DEC0DE, "LDT segment base 0x3000"
    mov eax, fs
    CHK eax, LSEL, "fs = LDT selector"
    mov eax, DATA_SEL
    mov fs, ax

    ; ---- LTR / STR ----
    movzx eax, byte [gdt + SEL_TSS + 5]
    CHK eax, 0x89, "TSS available before ltr"
    mov eax, SEL_TSS
    ltr ax
    str eax
    CHK eax, SEL_TSS, "str"
    movzx eax, byte [gdt + SEL_TSS + 5]
    CHK eax, 0x8B, "ltr marks the TSS busy"

    ; ---- base/limit through accesses, LSL, LAR ----
    mov dword [0x5010], 0
    mov eax, SEL_B
    mov es, ax
    mov dword [es:0x10], 0x11223344
    CHK dword [0x5010], 0x11223344, "byte-granular segment base 0x5000"
    mov eax, SEL_G
    mov es, ax
    mov dword [es:0x1FFC], 0x55667788
    CHK dword [0x7FFC], 0x55667788, "4K-granular segment base 0x6000"
    mov eax, SEL_ED
    mov es, ax
    mov dword [es:0x2000], 0x99AABBCC
    CHK dword [0x9000], 0x99AABBCC, "expand-down segment base 0x7000"
    mov eax, DATA_SEL
    mov es, ax
    mov ecx, SEL_B
    lsl eax, ecx
    GETF
    CHK eax, 0x1FF, "lsl byte granular"
    CHKF F_ZF, F_ZF, "lsl ZF=1"
    mov ecx, SEL_G
    lsl eax, ecx
    CHK eax, 0x1FFF, "lsl 4K granular"
    mov ecx, SEL_ED
    lsl eax, ecx
    CHK eax, 0xFFF, "lsl expand-down (raw limit)"
    mov ecx, DATA_SEL
    lsl eax, ecx
    CHK eax, 0xFFFFFFFF, "lsl flat"
    mov ecx, SEL_B
    lar eax, ecx
    CHK eax, 0x00409300, "lar data (accessed)"
    mov ecx, CODE_SEL
    lar eax, ecx
    and eax, 0x00F0FE00             ; (accessed bit may or may not be set)
    CHK eax, 0x00C09A00, "lar code"
    mov ecx, SEL_TSS
    lar eax, ecx
    CHK eax, 0x00008B00, "lar busy TSS"
    mov eax, 0x12345678
    mov ecx, 0x1000                 ; beyond the GDT
    SETF F_ZF
    lsl eax, ecx
    GETF
    CHKF F_ZF, 0, "lsl bad selector ZF=0"
    CHK eax, 0x12345678, "lsl bad selector leaves dest"
    SETF F_ZF
    mov ecx, 0x58                   ; null descriptor
    lar eax, ecx
    GETF
    CHKF F_ZF, 0, "lar null descriptor ZF=0"

    ; ---- control registers ----
    mov eax, cr0
    mov [cr0_save], eax
    and eax, 0x80000001
    CHK eax, 1, "cr0: PE=1 PG=0"
    mov eax, [cr0_save]
    or eax, 0x0A                    ; TS | MP
    mov cr0, eax
    mov eax, cr0
    and eax, 0x0A
    CHK eax, 0x0A, "cr0 TS/MP written"
    clts
    mov eax, cr0
    and eax, 0x08
    CHK eax, 0, "clts clears TS"
    smsw eax
    and eax, 0x0F
    mov ecx, [cr0_save]
    and ecx, 0x0F
    or ecx, 0x02
    CHK eax, ecx, "smsw"
    mov eax, 0x08                   ; TS set, PE clear
    lmsw ax
    mov eax, cr0
    and eax, 0x0F
    CHK eax, 0x09, "lmsw sets TS but cannot clear PE"
    mov eax, [cr0_save]
    mov cr0, eax
    mov eax, 0xDEADB000
    mov cr2, eax
    mov eax, cr2
    CHK eax, 0xDEADB000, "cr2 read-back"
    mov eax, 0x00012000
    mov cr3, eax
    mov eax, cr3
    CHK eax, 0x00012000, "cr3 read-back"
    mov eax, cr4
    mov [cr4_save], eax
    or eax, 0x10                    ; PSE
    mov cr4, eax
    mov eax, cr4
    and eax, 0x10
    CHK eax, 0x10, "cr4 PSE read-back"
    mov eax, [cr4_save]
    mov cr4, eax

    ; ---- debug registers ----
    mov eax, 0x11110000
    mov dr0, eax
    mov eax, 0x22220000
    mov dr1, eax
    mov eax, 0x33330000
    mov dr2, eax
    mov eax, 0x44440000
    mov dr3, eax
    mov eax, dr0
    CHK eax, 0x11110000, "dr0"
    mov eax, dr1
    CHK eax, 0x22220000, "dr1"
    mov eax, dr2
    CHK eax, 0x33330000, "dr2"
    mov eax, dr3
    CHK eax, 0x44440000, "dr3"
    xor eax, eax
    mov dr7, eax
    mov eax, dr7
    CHK eax, 0x400, "dr7 (bit 10 reads as 1)"

    ; ---- CPUID ----
    xor eax, eax
    cpuid
    mov [vendor], ebx
    mov [vendor+4], edx
    mov [vendor+8], ecx
    cmp eax, 1
    jae .leaf_ok
    FAIL "cpuid max leaf < 1"
.leaf_ok:
    mov esi, vendor
    mov ecx, 12
.vchk:
    lodsb
    cmp al, 0x20
    jb .vbad
    cmp al, 0x7E
    ja .vbad
    loop .vchk
    jmp .vok
.vbad:
    FAIL "cpuid vendor string not printable"
.vok:
    mov eax, 1
    cpuid
    mov ebx, eax
    shr ebx, 8
    and ebx, 0x0F
    cmp ebx, 4
    jae .fam_ok
    FAIL "cpuid family < 4"
.fam_ok:
    and edx, (1 << 4) | (1 << 8) | (1 << 15)
    CHK edx, (1 << 4) | (1 << 8) | (1 << 15), "cpuid.1 EDX: TSC, CX8, CMOV"

    ; ---- RDTSC monotonic ----
    rdtsc
    mov esi, eax
    mov edi, edx
    mov ecx, 100
    xor ebp, ebp
.tsc:
    rdtsc
    cmp edx, edi
    jb .tsc_bad
    ja .tsc_up
    cmp eax, esi
    jb .tsc_bad
    je .tsc_same
.tsc_up:
    inc ebp
.tsc_same:
    mov esi, eax
    mov edi, edx
    loop .tsc
    cmp ebp, 0
    jne .tsc_ok
    FAIL "rdtsc never advanced"
.tsc_bad:
    FAIL "rdtsc went backwards"
.tsc_ok:
    ret

int50_handler:
    inc dword [int50_hits]
    iretd

section .bss
alignb 8
dtr: resb 8
gdt2: resq GDT_ENTRIES
idt2: resq 256
ldt: resq 2
tss: resb 104
vendor: resb 12
int50_hits: resd 1
cr0_save: resd 1
cr4_save: resd 1
section .text
%include "tail.inc"
