; bench sieve_paged: bench sieve (byte sieve over 8 KiB and 1 MiB) with
; paging on: the first 16 MiB identity-mapped with 4 KiB pages
; (include/paging.inc).  Same kernel, instruction count and checksum; every
; access is translated, and the 1 MiB array spans 256 pages.
%define TEST_NAME "bench-sieve-paged"
%define PAGED
%include "sieve.asm"
