//! Multiboot v1 loader (Multiboot Specification 0.6.96), mirroring QEMU's `-kernel`.
//!
//! A Multiboot kernel carries a header somewhere in its first 8192 bytes, 4-byte
//! aligned. QEMU scans offsets below 8192 - 48 (room for the longest header) and so
//! does tern:
//!
//! ```text
//! offset  field           meaning
//! +0      magic           0x1BADB002
//! +4      flags           bits 0-15 required features, 16-31 optional
//! +8      checksum        magic + flags + checksum == 0 (mod 2^32)
//! --- present when flags bit 16 (the "a.out kludge") is set: ---
//! +12     header_addr     physical address this header is loaded to
//! +16     load_addr       physical address of the first byte loaded
//! +20     load_end_addr   end of the bytes taken from the file (0: to end of file)
//! +24     bss_end_addr    end of the zeroed area after them (0: no bss)
//! +28     entry_addr      where the CPU starts
//! --- present when flags bit 2 is set (tern, like QEMU, ignores them): ---
//! +32     mode_type, width, height, depth
//! ```
//!
//! Without bit 16 the file must be an i386 ELF32 executable; its `PT_LOAD` segments
//! go to their physical addresses and the ELF entry point is used unchanged.
//!
//! Required flag bits: 0 (page-align modules; there are no modules) and 1 (memory
//! information; always given) are honoured. Bit 2 (video mode) is accepted with a
//! warning, as QEMU does ("multiboot knows VBE. we don't."). Any other bit in 0-15 is
//! refused, as the specification demands of a loader that does not know it; QEMU
//! ignores such bits instead.
//!
//! # Where things go (same addresses as QEMU)
//!
//! ```text
//! 0x9000  memory map: 6 entries of 24 bytes (size=20, base u64, length u64, type u32)
//! 0x9500  information structure, 88 bytes; EBX points here
//!         flags        0x24F: MEM | BOOT_DEVICE | CMDLINE | MODS | MMAP | LOADER_NAME
//!   +4    mem_lower    639 (KiB below the EBDA at 0x9FC00)
//!   +8    mem_upper    KiB of contiguous RAM from 1 MiB
//!   +12   boot_device  0x8000FFFF (first BIOS disk, no partition)
//!   +16   cmdline      -> command line
//!   +20   mods_count   0
//!   +24   mods_addr    -> end of kernel, page aligned (empty module list)
//!   +44   mmap_length  144
//!   +48   mmap_addr    0x9000
//!   +64   boot_loader_name -> "tern"
//!         every other field is 0
//!
//! kernel_low                    lowest loaded address of the kernel
//! kernel_low + page_align(size) command line, NUL, "tern", NUL
//! ```
//!
//! The memory map is the one SeaBIOS hands a kernel under QEMU, so a kernel that prints
//! it sees the same thing under both:
//!
//! ```text
//! 0x0000_0000 .. 0x0009_FC00  available   conventional RAM
//! 0x0009_FC00 .. 0x000A_0000  reserved    EBDA
//! 0x000F_0000 .. 0x0010_0000  reserved    BIOS ROM shadow
//! 0x0010_0000 .. top          available   extended RAM, top = ram_size - 128 KiB
//! top         .. ram_size     reserved    SeaBIOS high tables under QEMU
//! 0xFFFC_0000 .. 4 GiB        reserved    BIOS ROM (256 KiB)
//! ```
//!
//! Any part of a kernel that falls into the PC hole (0xA0000..0x100000) is not RAM and
//! is skipped with a warning: GNU ld commonly emits a read-only segment holding the ELF
//! headers just below a kernel linked at 1 MiB, and QEMU boots such kernels. Anything
//! above the end of RAM is refused.

use super::{check_ram_range, elf, zero_fill, BootError, GuestLoader, PC_HOLE_END, PC_HOLE_START};

/// Magic number at the start of a Multiboot header.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// EAX at kernel entry, telling the kernel a Multiboot loader started it.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The header must lie in the first this-many bytes of the file.
pub const SEARCH_LIMIT: usize = 8192;
/// Longest header (with the video fields): the scan stops this far before the limit.
const HEADER_MAX_LEN: usize = 48;

/// Physical address of the memory map (QEMU: `MULTIBOOT_STRUCT_ADDR`).
pub const MMAP_ADDR: u32 = 0x9000;
/// Physical address of the information structure (QEMU: `ADDR_MBI`); passed in EBX.
pub const INFO_ADDR: u32 = 0x9500;
/// Size of the information structure as QEMU writes it (up to the VBE fields).
pub const INFO_SIZE: u32 = 88;
/// Boot loader name reported to the kernel.
pub const BOOTLOADER_NAME: &str = "tern";
/// BIOS drive 0x80, all partition bytes 0xFF: what QEMU reports.
pub const BOOT_DEVICE: u32 = 0x8000_FFFF;

/// Base of the extended BIOS data area SeaBIOS reserves at the top of low memory.
pub const EBDA_BASE: u32 = 0x9_FC00;
/// The BIOS ROM shadow below 1 MiB that the memory map reports reserved.
const BIOS_SHADOW_BASE: u64 = 0xF_0000;
/// RAM SeaBIOS keeps for its tables at the top of low RAM under QEMU.
const HIGH_TABLES_SIZE: u64 = 0x2_0000;
/// Base of the 256 KiB BIOS ROM mapping below 4 GiB under QEMU.
const FIRMWARE_HIGH_BASE: u64 = 0xFFFC_0000;

// Header flag bits.
const HDR_PAGE_ALIGN: u32 = 1 << 0;
const HDR_MEMORY_INFO: u32 = 1 << 1;
const HDR_VIDEO_MODE: u32 = 1 << 2;
const HDR_AOUT_KLUDGE: u32 = 1 << 16;
const HDR_REQUIRED_MASK: u32 = 0xFFFF;
const HDR_SUPPORTED: u32 = HDR_PAGE_ALIGN | HDR_MEMORY_INFO | HDR_VIDEO_MODE;

// Information structure flag bits.
pub const INFO_MEMORY: u32 = 1 << 0;
pub const INFO_BOOT_DEVICE: u32 = 1 << 1;
pub const INFO_CMDLINE: u32 = 1 << 2;
pub const INFO_MODS: u32 = 1 << 3;
pub const INFO_MMAP: u32 = 1 << 6;
pub const INFO_BOOTLOADER_NAME: u32 = 1 << 9;
/// The flags word tern (and QEMU) sets: 0x24F.
pub const INFO_FLAGS: u32 =
    INFO_MEMORY | INFO_BOOT_DEVICE | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_BOOTLOADER_NAME;

// Information structure field offsets.
const MBI_FLAGS: usize = 0;
const MBI_MEM_LOWER: usize = 4;
const MBI_MEM_UPPER: usize = 8;
const MBI_BOOT_DEVICE: usize = 12;
const MBI_CMDLINE: usize = 16;
const MBI_MODS_COUNT: usize = 20;
const MBI_MODS_ADDR: usize = 24;
const MBI_MMAP_LENGTH: usize = 44;
const MBI_MMAP_ADDR: usize = 48;
const MBI_BOOTLOADER_NAME: usize = 64;

/// Memory map entry types.
pub const MEMORY_AVAILABLE: u32 = 1;
pub const MEMORY_RESERVED: u32 = 2;
/// Value of each entry's leading `size` field: the bytes that follow it.
const MMAP_ENTRY_SIZE_FIELD: u32 = 20;
const MMAP_ENTRY_STRIDE: usize = 24;

/// How to start the CPU after [`load_multiboot`].
///
/// The specification's machine state: 32-bit protected mode, paging off, A20 on, CS a
/// flat 4 GiB execute/read code segment, DS/ES/FS/GS/SS flat 4 GiB read/write data
/// segments, EFLAGS.IF and EFLAGS.VM clear. ESP is undefined; the kernel sets up its
/// own stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootEntry {
    /// Kernel entry point.
    pub eip: u32,
    /// [`BOOTLOADER_MAGIC`] (0x2BADB002).
    pub eax: u32,
    /// Physical address of the information structure ([`INFO_ADDR`]).
    pub ebx: u32,
}

/// One entry of the memory map given to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    /// [`MEMORY_AVAILABLE`] or [`MEMORY_RESERVED`].
    pub kind: u32,
}

/// A found header: its file offset and flags.
#[derive(Debug, Clone, Copy)]
struct Header {
    offset: usize,
    flags: u32,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn find_header(image: &[u8]) -> Result<Header, BootError> {
    let mut bad_checksum = None;
    for offset in (0..SEARCH_LIMIT - HEADER_MAX_LEN).step_by(4) {
        let (magic, flags, checksum) = match (
            u32_at(image, offset),
            u32_at(image, offset + 4),
            u32_at(image, offset + 8),
        ) {
            (Some(m), Some(f), Some(c)) => (m, f, c),
            _ => break,
        };
        if magic != HEADER_MAGIC {
            continue;
        }
        if magic.wrapping_add(flags).wrapping_add(checksum) == 0 {
            return Ok(Header { offset, flags });
        }
        // Keep scanning: the magic may occur by chance before the real header.
        bad_checksum.get_or_insert(offset);
    }
    Err(match bad_checksum {
        Some(offset) => BootError::BadChecksum { offset },
        None => BootError::NoMultibootHeader,
    })
}

/// True if the image has a Multiboot v1 header with a valid checksum.
pub fn is_multiboot(image: &[u8]) -> bool {
    find_header(image).is_ok()
}

/// A piece of the kernel: `file` bytes go to `addr`, then zeros up to `memsz`.
#[derive(Debug, Clone)]
struct Piece {
    addr: u32,
    file: std::ops::Range<usize>,
    memsz: u32,
}

/// What to load and where to start, before anything touches guest memory.
#[derive(Debug)]
struct Plan {
    /// Lowest loaded address and extent, as QEMU computes them (`mh_load_addr`,
    /// `mb_kernel_size`); the command line goes right after the page-aligned extent.
    low: u32,
    size: u64,
    entry: u32,
    pieces: Vec<Piece>,
}

fn plan_aout(image: &[u8], hdr: Header) -> Result<Plan, BootError> {
    let field = |k: usize| u32_at(image, hdr.offset + k).ok_or(BootError::TruncatedHeader);
    let header_addr = field(12)?;
    let load_addr = field(16)?;
    let load_end_addr = field(20)?;
    let bss_end_addr = field(24)?;
    let entry = field(28)?;

    if header_addr < load_addr {
        return Err(BootError::BadAddressFields(
            "header_addr is below load_addr",
        ));
    }
    // The header sits (header_addr - load_addr) bytes into the loaded text, so the text
    // starts that far before the header in the file.
    let header_delta = (header_addr - load_addr) as usize;
    let text_offset = hdr
        .offset
        .checked_sub(header_delta)
        .ok_or(BootError::BadAddressFields(
            "header_addr - load_addr exceeds the header's file offset",
        ))?;
    let load_size = if load_end_addr != 0 {
        if load_end_addr < load_addr {
            return Err(BootError::BadAddressFields(
                "load_end_addr is below load_addr",
            ));
        }
        u64::from(load_end_addr - load_addr)
    } else {
        (image.len() - text_offset) as u64
    };
    if text_offset as u64 + load_size > image.len() as u64 {
        return Err(BootError::BadAddressFields(
            "load_end_addr reaches past the end of the file",
        ));
    }
    if u64::from(load_addr) + load_size > 1 << 32 {
        return Err(BootError::BadAddressFields(
            "kernel does not fit below 4 GiB",
        ));
    }
    let size = if bss_end_addr != 0 {
        if u64::from(bss_end_addr) < u64::from(load_addr) + load_size {
            return Err(BootError::BadAddressFields(
                "bss_end_addr is below load_end_addr",
            ));
        }
        u64::from(bss_end_addr - load_addr)
    } else {
        load_size
    };
    Ok(Plan {
        low: load_addr,
        size,
        entry,
        pieces: vec![Piece {
            addr: load_addr,
            file: text_offset..text_offset + load_size as usize,
            memsz: size as u32,
        }],
    })
}

fn plan_elf(image: &[u8]) -> Result<Plan, BootError> {
    let parsed = elf::parse(image)?;
    let low = parsed.segments.iter().map(|s| s.paddr).min();
    let high = parsed
        .segments
        .iter()
        .map(|s| u64::from(s.paddr) + u64::from(s.memsz))
        .max();
    let (low, high) = match (low, high) {
        (Some(l), Some(h)) => (l, h),
        _ => return Err(BootError::NoLoadableSegments),
    };
    let pieces = parsed
        .segments
        .iter()
        .map(|s| Piece {
            addr: s.paddr,
            file: s.offset as usize..s.offset as usize + s.filesz as usize,
            memsz: s.memsz,
        })
        .collect();
    Ok(Plan {
        low,
        size: high - u64::from(low),
        entry: parsed.entry,
        pieces,
    })
}

/// The memory map the kernel receives for `ram_size` bytes of RAM (see the module doc).
pub fn memory_map(ram_size: u64) -> Vec<MemoryRegion> {
    let ram_top = ram_size.min(FIRMWARE_HIGH_BASE);
    let avail_top = ram_top
        .saturating_sub(HIGH_TABLES_SIZE)
        .max(u64::from(PC_HOLE_END));
    let region = |base: u64, end: u64, kind| MemoryRegion {
        base,
        len: end - base,
        kind,
    };
    let mut map = vec![
        region(0, u64::from(EBDA_BASE), MEMORY_AVAILABLE),
        region(
            u64::from(EBDA_BASE),
            u64::from(PC_HOLE_START),
            MEMORY_RESERVED,
        ),
        region(BIOS_SHADOW_BASE, u64::from(PC_HOLE_END), MEMORY_RESERVED),
        region(u64::from(PC_HOLE_END), avail_top, MEMORY_AVAILABLE),
    ];
    if ram_top > avail_top {
        map.push(region(avail_top, ram_top, MEMORY_RESERVED));
    }
    map.push(region(FIRMWARE_HIGH_BASE, 1 << 32, MEMORY_RESERVED));
    map
}

/// KiB of RAM from 1 MiB up to the first hole, computed from the map the way QEMU's
/// Multiboot option ROM computes it from the BIOS E820 map.
fn mem_upper_kib(map: &[MemoryRegion]) -> u32 {
    let mut end = u64::from(PC_HOLE_END);
    // Extend while some available region contains `end`; the map is sorted, one pass.
    for r in map {
        if r.kind == MEMORY_AVAILABLE && r.base <= end && end < r.base + r.len {
            end = r.base + r.len;
        }
    }
    ((end - u64::from(PC_HOLE_END)) >> 10) as u32
}

fn put32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Calls `f(addr, offset, len)` for each part of `[addr, addr + len)` that is not in
/// the PC hole; `offset` is the part's distance from `addr`.
fn for_each_ram_part(
    addr: u32,
    len: u32,
    mut f: impl FnMut(u32, u32, u32) -> Result<(), BootError>,
) -> Result<(), BootError> {
    let start = u64::from(addr);
    let end = start + u64::from(len);
    let parts = [
        (start, end.min(u64::from(PC_HOLE_START))),
        (start.max(u64::from(PC_HOLE_END)), end),
    ];
    for (s, e) in parts {
        if s < e {
            f(s as u32, (s - start) as u32, (e - s) as u32)?;
        }
    }
    Ok(())
}

/// Refuses a kernel piece that lies above the end of RAM or over the information area,
/// and warns about any part of it that falls in the PC hole and will be skipped.
fn check_piece(addr: u32, memsz: u32, ram_size: u64) -> Result<(), BootError> {
    let start = u64::from(addr);
    let end = start + u64::from(memsz);
    let outside = BootError::OutsideRam {
        addr: start,
        size: u64::from(memsz),
        ram_mib: ram_size >> 20,
    };
    if end > u64::from(PC_HOLE_END) && end > ram_size {
        return Err(outside);
    }
    if start < u64::from(PC_HOLE_END) && end > u64::from(PC_HOLE_START) {
        log::warn!(
            "Multiboot: kernel bytes at {:#x}..{:#x} fall in the PC hole (not RAM) and are \
             skipped",
            start.max(u64::from(PC_HOLE_START)),
            end.min(u64::from(PC_HOLE_END))
        );
    }
    check_info_overlap(start, end)
}

fn check_info_overlap(start: u64, end: u64) -> Result<(), BootError> {
    let info_end = INFO_ADDR + INFO_SIZE;
    if start < u64::from(info_end) && end > u64::from(MMAP_ADDR) {
        return Err(BootError::OverlapsInfo {
            start,
            end,
            info_start: MMAP_ADDR,
            info_end,
        });
    }
    Ok(())
}

/// Loads a Multiboot v1 kernel into guest RAM and builds its information structure.
///
/// `cmdline` is passed to the kernel as it is; to match QEMU the caller builds it as the
/// kernel's file name, a space, and the user's append string (QEMU keeps the space
/// even when the append string is empty).
///
/// Everything is validated before the first write, so on error guest RAM is untouched.
pub fn load_multiboot(
    image: &[u8],
    cmdline: &str,
    loader: &mut dyn GuestLoader,
) -> Result<MultibootEntry, BootError> {
    // RAM that would reach the firmware mapping below 4 GiB is not usable for loading.
    let ram_size = loader.ram_size().min(FIRMWARE_HIGH_BASE);
    if ram_size < 2 << 20 {
        return Err(BootError::RamTooSmall {
            ram_mib: ram_size >> 20,
        });
    }
    let hdr = find_header(image)?;
    let unsupported = hdr.flags & HDR_REQUIRED_MASK & !HDR_SUPPORTED;
    if unsupported != 0 {
        return Err(BootError::UnsupportedFlags {
            flags: hdr.flags,
            unsupported,
        });
    }
    if hdr.flags & HDR_VIDEO_MODE != 0 {
        log::warn!(
            "Multiboot kernel asks for a video mode; tern, like QEMU, passes no video \
             information and leaves the display as it is"
        );
    }
    let plan = if hdr.flags & HDR_AOUT_KLUDGE != 0 {
        plan_aout(image, hdr)?
    } else {
        plan_elf(image)?
    };

    for p in &plan.pieces {
        check_piece(p.addr, p.memsz, ram_size)?;
    }
    if !plan.pieces.iter().any(|p| {
        plan.entry >= p.addr && u64::from(plan.entry) < u64::from(p.addr) + u64::from(p.memsz)
    }) {
        log::warn!(
            "Multiboot: entry point {:#x} is outside every loaded segment",
            plan.entry
        );
    }

    // Strings after the page-aligned kernel, where QEMU puts them (its module list,
    // empty here, starts at the same address).
    let strings_addr = u64::from(plan.low) + ((plan.size + 0xFFF) & !0xFFF);
    let mut strings = Vec::with_capacity(cmdline.len() + BOOTLOADER_NAME.len() + 2);
    strings.extend_from_slice(cmdline.as_bytes());
    strings.push(0);
    let name_addr = strings_addr + strings.len() as u64;
    strings.extend_from_slice(BOOTLOADER_NAME.as_bytes());
    strings.push(0);
    let strings_end = strings_addr + strings.len() as u64;
    check_ram_range(strings_addr, strings.len() as u64, ram_size)?;
    check_info_overlap(strings_addr, strings_end)?;

    let map = memory_map(ram_size);
    let mut mmap = Vec::with_capacity(map.len() * MMAP_ENTRY_STRIDE);
    for r in &map {
        mmap.extend_from_slice(&MMAP_ENTRY_SIZE_FIELD.to_le_bytes());
        mmap.extend_from_slice(&r.base.to_le_bytes());
        mmap.extend_from_slice(&r.len.to_le_bytes());
        mmap.extend_from_slice(&r.kind.to_le_bytes());
    }
    let mut info = [0u8; INFO_SIZE as usize];
    put32(&mut info, MBI_FLAGS, INFO_FLAGS);
    put32(&mut info, MBI_MEM_LOWER, EBDA_BASE >> 10);
    put32(&mut info, MBI_MEM_UPPER, mem_upper_kib(&map));
    put32(&mut info, MBI_BOOT_DEVICE, BOOT_DEVICE);
    put32(&mut info, MBI_CMDLINE, strings_addr as u32);
    put32(&mut info, MBI_MODS_COUNT, 0);
    put32(&mut info, MBI_MODS_ADDR, strings_addr as u32);
    put32(&mut info, MBI_MMAP_LENGTH, mmap.len() as u32);
    put32(&mut info, MBI_MMAP_ADDR, MMAP_ADDR);
    put32(&mut info, MBI_BOOTLOADER_NAME, name_addr as u32);

    // All checks passed: write.
    for p in &plan.pieces {
        let data = &image[p.file.clone()];
        let filesz = data.len() as u32;
        for_each_ram_part(p.addr, p.memsz, |addr, off, len| {
            // The part of [off, off + len) backed by the file, then the zeroed rest.
            let file_end = (off + len).min(filesz);
            if off < file_end {
                loader.write_phys(addr, &data[off as usize..file_end as usize])?;
            }
            let zero_from = file_end.max(off);
            zero_fill(loader, addr + (zero_from - off), off + len - zero_from)
        })?;
    }
    loader.write_phys(strings_addr as u32, &strings)?;
    loader.write_phys(MMAP_ADDR, &mmap)?;
    loader.write_phys(INFO_ADDR, &info)?;

    log::info!(
        "Multiboot: loaded {:#x}..{:#x}, entry {:#x}, info at {:#x}",
        plan.low,
        u64::from(plan.low) + plan.size,
        plan.entry,
        INFO_ADDR
    );
    Ok(MultibootEntry {
        eip: plan.entry,
        eax: BOOTLOADER_MAGIC,
        ebx: INFO_ADDR,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testram::TestRam;
    use super::*;

    const RAM: usize = 16 << 20;

    /// A 12-byte header with `flags`, optionally followed by the five address fields.
    fn header(flags: u32, addrs: Option<[u32; 5]>) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        let sum = 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags);
        h.extend_from_slice(&sum.to_le_bytes());
        if let Some(a) = addrs {
            for v in a {
                h.extend_from_slice(&v.to_le_bytes());
            }
        }
        h
    }

    /// An ELF kernel: text at 1 MiB (starting with the Multiboot header), data at
    /// 0x200000 with a bss tail.
    fn elf_kernel() -> Vec<u8> {
        let mut text = header(HDR_PAGE_ALIGN | HDR_MEMORY_INFO, None);
        text.extend_from_slice(&[0x90; 20]); // entry at 0x10000C
        elf::build::elf32(
            0x10_000C,
            &[
                (0x10_0000, &text, text.len() as u32),
                (0x20_0000, b"DATA", 0x1000),
            ],
        )
    }

    #[test]
    fn loads_elf_segments_and_zeroes_bss() {
        let img = elf_kernel();
        assert!(is_multiboot(&img));
        let mut ram = TestRam::new(RAM);
        ram.bytes[0x20_0004..0x20_1000].fill(0xAA); // stale bytes the bss must clear
        let e = load_multiboot(&img, "k.elf foo", &mut ram).unwrap();
        assert_eq!(
            e,
            MultibootEntry {
                eip: 0x10_000C,
                eax: 0x2BAD_B002,
                ebx: 0x9500
            }
        );
        assert_eq!(ram.u32_at(0x10_0000), HEADER_MAGIC);
        assert_eq!(ram.bytes[0x10_000C], 0x90);
        assert_eq!(&ram.bytes[0x20_0000..0x20_0004], b"DATA");
        assert!(ram.bytes[0x20_0004..0x20_1000].iter().all(|&b| b == 0));
        // Extent 0x100000..0x201000 -> strings at 0x100000 + 0x101000.
        assert_eq!(ram.u32_at(INFO_ADDR + 16), 0x20_1000);
        assert_eq!(ram.cstr_at(0x20_1000), "k.elf foo");
    }

    #[test]
    fn info_structure_contents() {
        let img = elf_kernel();
        let mut ram = TestRam::new(128 << 20);
        load_multiboot(&img, "k.elf foo bar", &mut ram).unwrap();
        let info = INFO_ADDR;
        assert_eq!(ram.u32_at(info), 0x24F);
        assert_eq!(ram.u32_at(info + 4), 639);
        // QEMU with -m 128 reports 0x1FB80 (RAM minus 1 MiB minus 128 KiB of tables).
        assert_eq!(ram.u32_at(info + 8), 0x1_FB80);
        assert_eq!(ram.u32_at(info + 12), 0x8000_FFFF);
        let cmdline = ram.u32_at(info + 16);
        assert_eq!(ram.cstr_at(cmdline), "k.elf foo bar");
        assert_eq!(ram.u32_at(info + 20), 0);
        assert_eq!(ram.u32_at(info + 24), cmdline);
        assert_eq!(ram.u32_at(info + 44), 6 * 24);
        assert_eq!(ram.u32_at(info + 48), 0x9000);
        let name = ram.u32_at(info + 64);
        assert_eq!(name, cmdline + "k.elf foo bar".len() as u32 + 1);
        assert_eq!(ram.cstr_at(name), "tern");
        for off in [28, 32, 36, 40, 52, 56, 60, 68, 72, 76, 80, 84] {
            assert_eq!(ram.u32_at(info + off), 0, "field at +{off}");
        }

        // Parse the memory map back the way a kernel walks it.
        let mut entries = Vec::new();
        let mut p = ram.u32_at(info + 48);
        let end = p + ram.u32_at(info + 44);
        while p < end {
            let size = ram.u32_at(p);
            entries.push((ram.u64_at(p + 4), ram.u64_at(p + 12), ram.u32_at(p + 20)));
            p += size + 4;
        }
        assert_eq!(
            entries,
            vec![
                (0, 0x9_FC00, 1),
                (0x9_FC00, 0x400, 2),
                (0xF_0000, 0x1_0000, 2),
                (0x10_0000, 0x7EE_0000, 1),
                (0x7FE_0000, 0x2_0000, 2),
                (0xFFFC_0000, 0x4_0000, 2),
            ]
        );
    }

    #[test]
    fn loads_aout_kludge_kernel() {
        // File: 0x20 bytes of padding, then the header; text is loaded from file offset
        // 0x10 to 0x10_0000, so the header lands at 0x10_0010.
        let load = 0x10_0000;
        let mut img = vec![0xEE; 0x10];
        img.extend_from_slice(&[0x11; 0x10]);
        let hdr_addr = load + 0x10;
        img.extend_from_slice(&header(
            HDR_AOUT_KLUDGE | HDR_MEMORY_INFO,
            Some([hdr_addr, load, load + 0x40, load + 0x2000, load + 0x30]),
        ));
        img.extend_from_slice(&[0x22; 0x40]);
        let mut ram = TestRam::new(RAM);
        ram.bytes[load as usize + 0x40..load as usize + 0x2000].fill(0xAA);
        let e = load_multiboot(&img, "aout ", &mut ram).unwrap();
        assert_eq!(e.eip, load + 0x30);
        assert_eq!(&ram.bytes[load as usize..][..0x10], &[0x11; 0x10]);
        assert_eq!(ram.u32_at(hdr_addr), HEADER_MAGIC);
        assert!(ram.bytes[load as usize + 0x40..load as usize + 0x2000]
            .iter()
            .all(|&b| b == 0));
        // The file's last 0x20 bytes lie past load_end_addr: only 0x10 of them load.
        assert_eq!(ram.bytes[load as usize + 0x3F], 0x22);
        assert_eq!(ram.bytes[load as usize + 0x40], 0);
        let cmdline = ram.u32_at(INFO_ADDR + 16);
        assert_eq!(cmdline, load + 0x2000);
        assert_eq!(ram.cstr_at(cmdline), "aout ");
    }

    #[test]
    fn aout_zero_end_fields_mean_to_end_of_file_and_no_bss() {
        let load = 0x20_0000;
        let mut img = header(HDR_AOUT_KLUDGE, Some([load, load, 0, 0, load + 32]));
        img.extend_from_slice(&[0x33; 100]);
        let mut ram = TestRam::new(RAM);
        load_multiboot(&img, "", &mut ram).unwrap();
        assert_eq!(ram.bytes[load as usize + 32 + 99], 0x33);
        // Extent is the 132-byte file: strings at the next page.
        assert_eq!(ram.u32_at(INFO_ADDR + 16), load + 0x1000);
    }

    #[test]
    fn aout_bad_fields_refused() {
        let load = 0x10_0000;
        // header_addr below load_addr
        let img = header(HDR_AOUT_KLUDGE, Some([load - 4, load, 0, 0, load]));
        let mut ram = TestRam::new(RAM);
        assert!(matches!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::BadAddressFields(_))
        ));
        // load_end_addr past the end of the file
        let img = header(HDR_AOUT_KLUDGE, Some([load, load, load + 0x1000, 0, load]));
        assert!(matches!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::BadAddressFields(_))
        ));
        // truncated address fields
        let mut img = header(HDR_AOUT_KLUDGE, Some([load, load, 0, 0, load]));
        img.truncate(20);
        assert_eq!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::TruncatedHeader)
        );
        assert!(ram.writes.is_empty());
    }

    #[test]
    fn bad_checksum_and_missing_header() {
        let mut img = elf_kernel();
        assert!(is_multiboot(&img));
        let at = img
            .windows(4)
            .position(|w| w == HEADER_MAGIC.to_le_bytes())
            .unwrap();
        img[at + 8] ^= 1;
        assert!(!is_multiboot(&img));
        let mut ram = TestRam::new(RAM);
        assert_eq!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::BadChecksum { offset: at })
        );
        assert_eq!(
            load_multiboot(&[0u8; 9000], "", &mut ram),
            Err(BootError::NoMultibootHeader)
        );
        // A header past the scanned window is not found.
        let mut late = vec![0u8; 8192];
        late[8148..8160].copy_from_slice(&header(0, None));
        assert!(!is_multiboot(&late));
        late[8140..8152].copy_from_slice(&header(0, None));
        assert!(is_multiboot(&late));
    }

    #[test]
    fn elf64_and_foreign_elf_refused() {
        let mut img = elf_kernel();
        img[4] = 2;
        let mut ram = TestRam::new(RAM);
        assert_eq!(load_multiboot(&img, "", &mut ram), Err(BootError::Elf64));
        let mut img = elf_kernel();
        img[18] = 0x28;
        assert_eq!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::ElfMachine(0x28))
        );
        let mut raw = header(0, None);
        raw.extend_from_slice(&[0; 64]);
        assert_eq!(load_multiboot(&raw, "", &mut ram), Err(BootError::NotElf));
        assert!(ram.writes.is_empty());
    }

    #[test]
    fn unsupported_required_flags_refused() {
        let mut img = header(
            HDR_AOUT_KLUDGE | (1 << 5),
            Some([0x10_0000, 0x10_0000, 0, 0, 0x10_0000]),
        );
        img.extend_from_slice(&[0; 16]);
        let mut ram = TestRam::new(RAM);
        assert_eq!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::UnsupportedFlags {
                flags: HDR_AOUT_KLUDGE | (1 << 5),
                unsupported: 1 << 5
            })
        );
        // Video mode (bit 2) and unknown optional bits are accepted.
        let flags = HDR_AOUT_KLUDGE | HDR_VIDEO_MODE | (1 << 20);
        let mut img = header(flags, Some([0x10_0000, 0x10_0000, 0, 0, 0x10_0000]));
        img.extend_from_slice(&[0; 16]);
        assert!(load_multiboot(&img, "", &mut ram).is_ok());
    }

    #[test]
    fn segment_outside_ram_refused() {
        let mut text = header(0, None);
        text.extend_from_slice(&[0x90; 4]);
        let img = elf::build::elf32(
            0x10_0000,
            &[
                (0x10_0000, &text, text.len() as u32),
                (0x100_0000, b"x", 0x1000),
            ],
        );
        let mut ram = TestRam::new(RAM);
        let err = load_multiboot(&img, "", &mut ram).unwrap_err();
        assert_eq!(
            err,
            BootError::OutsideRam {
                addr: 0x100_0000,
                size: 0x1000,
                ram_mib: 16
            }
        );
        assert!(ram.writes.is_empty());
        // A bss that runs past the end of RAM is refused as well.
        let img = elf::build::elf32(0x10_0000, &[(0xFF_F000, &text, 0x2000)]);
        assert!(matches!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::OutsideRam { .. })
        ));
    }

    #[test]
    fn hole_part_skipped() {
        // Like GNU ld output: a header-only segment at 0xFF000, text at 1 MiB.
        let mut text = header(0, None);
        text.extend_from_slice(&[0x90; 4]);
        let img = elf::build::elf32(
            0x10_0000,
            &[
                (0xF_F000, &[0x7F; 0x20], 0x20),
                (0x10_0000, &text, text.len() as u32),
            ],
        );
        let mut ram = TestRam::new(RAM);
        load_multiboot(&img, "", &mut ram).unwrap();
        assert!(ram
            .writes
            .iter()
            .all(|&(a, _)| !(0xA_0000..0x10_0000).contains(&a)));
        // Extent starts at the low segment, as in QEMU: 0xFF000 + page_align(0x1010).
        assert_eq!(ram.u32_at(INFO_ADDR + 16), 0x10_1000);

        // A segment straddling 640 KiB keeps its low part.
        let mut img = header(
            HDR_AOUT_KLUDGE,
            Some([0x9_FF00, 0x9_FF00, 0, 0x10_0010, 0x9_FF00]),
        );
        img.extend_from_slice(&[0x44; 0x200]);
        let mut ram = TestRam::new(RAM);
        load_multiboot(&img, "", &mut ram).unwrap();
        assert_eq!(ram.u32_at(0x9_FF00), HEADER_MAGIC);
        assert!(ram.bytes[0x10_0000..0x10_0010].iter().all(|&b| b == 0));
    }

    #[test]
    fn overlap_with_info_area_refused() {
        let mut img = header(HDR_AOUT_KLUDGE, Some([0x8000, 0x8000, 0, 0x1_0000, 0x8000]));
        img.extend_from_slice(&[0; 16]);
        let mut ram = TestRam::new(RAM);
        assert!(matches!(
            load_multiboot(&img, "", &mut ram),
            Err(BootError::OverlapsInfo { .. })
        ));
        // Just below the map is fine.
        let mut img = header(HDR_AOUT_KLUDGE, Some([0x7000, 0x7000, 0, 0x8000, 0x7000]));
        img.extend_from_slice(&[0; 16]);
        // ...but the strings after it would land at 0x8000..: still below 0x9000.
        assert!(load_multiboot(&img, "x", &mut ram).is_ok());
    }

    #[test]
    fn memory_map_shapes() {
        let m = memory_map(64 << 20);
        assert_eq!(m.len(), 6);
        assert_eq!(mem_upper_kib(&m), 0xFB80); // QEMU -m 64
        assert_eq!(mem_upper_kib(&memory_map(1000 << 20)), 0xF_9B80); // QEMU -m 1000
        let mut ram = TestRam::new(1 << 20);
        assert_eq!(
            load_multiboot(&elf_kernel(), "", &mut ram),
            Err(BootError::RamTooSmall { ram_mib: 1 })
        );
    }
}
