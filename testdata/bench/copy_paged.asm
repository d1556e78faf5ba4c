; bench copy_paged: bench copy (MOV-loop copies of 4 KiB blocks) with paging
; on: the first 16 MiB identity-mapped with 4 KiB pages (include/paging.inc).
; Same kernel, instruction count and checksum; every access is translated.
%define TEST_NAME "bench-copy-paged"
%define PAGED
%include "copy.asm"
