//! The Linux/x86 boot protocol, 32-bit entry: what QEMU's `-kernel bzImage -initrd F
//! -append CMDLINE` does, without running the kernel's real-mode setup code.
//!
//! ```text
//! bzImage file                                   guest RAM after loading
//! +--------------------+ 0                       0x0000_8000  boot GDT (0x10 code, 0x18 data)
//! | boot sector        |                         0x0001_0000  boot_params ("zero page", 4 KiB):
//! |  0x1F1: setup hdr  |--- copied into ------>                setup header from the image,
//! +--------------------+ 512                                   e820 map, initrd, cmdline ptr
//! | real-mode setup    | setup_sects * 512       0x0002_0000  command line (NUL-terminated)
//! +--------------------+ (setup_sects+1) * 512   0x0010_0000  protected-mode kernel
//! | protected-mode     |--- copied to --------->    ...
//! | kernel             |                         top of RAM   initrd, page aligned, below
//! +--------------------+                                      initrd_addr_max
//! ```
//!
//! At entry (boot protocol, "32-bit boot protocol"): protected mode, paging off,
//! interrupts off, CS = 0x10 and DS = ES = SS = 0x18 flat 4 GiB segments, ESI = address
//! of boot_params, EBP = EDI = EBX = 0, EIP = `code32_start`.
//!
//! Supported header versions are 2.06 (the first with `cmdline_size`, Linux 2.6.22) up to
//! 2.15; older and newer images are refused with a message that says so.

use super::multiboot::{memory_map, MEMORY_AVAILABLE};
use super::{check_ram_range, BootError, GuestLoader};

/// Oldest and newest boot protocol versions tern loads.
pub const MIN_VERSION: u16 = 0x0206;
pub const MAX_VERSION: u16 = 0x020F;

/// Where the loader puts its pieces (all in conventional memory, below the EBDA).
pub const GDT_ADDR: u32 = 0x8000;
pub const BOOT_PARAMS_ADDR: u32 = 0x1_0000;
pub const CMDLINE_ADDR: u32 = 0x2_0000;
/// The protected-mode kernel's load address (LOADED_HIGH kernels).
pub const KERNEL_ADDR: u32 = 0x10_0000;

/// Selectors the kernel expects at entry.
pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;

// Setup header fields (offsets in the image and in boot_params alike).
const SETUP_SECTS: usize = 0x1F1;
const VID_MODE: usize = 0x1FA;
const BOOT_FLAG: usize = 0x1FE;
const JUMP: usize = 0x200;
const HEADER: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const CODE32_START: usize = 0x214;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21C;
const HEAP_END_PTR: usize = 0x224;
const CMD_LINE_PTR: usize = 0x228;
const INITRD_ADDR_MAX: usize = 0x22C;
const CMDLINE_SIZE: usize = 0x238;
const INIT_SIZE: usize = 0x260;

// boot_params fields outside the setup header.
const EXT_MEM_K: usize = 0x002;
const ALT_MEM_K: usize = 0x1E0;
const E820_ENTRIES: usize = 0x1E8;
const E820_TABLE: usize = 0x2D0;
const E820_MAX: usize = 128;

const LOADED_HIGH: u8 = 1 << 0;
const CAN_USE_HEAP: u8 = 1 << 7;
/// "Undefined bootloader": tern has no assigned loader id.
const LOADER_ID: u8 = 0xFF;

/// How to start the CPU after [`load_linux`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxEntry {
    pub eip: u32,
    /// Address of boot_params.
    pub esi: u32,
    pub gdt_base: u32,
    pub gdt_limit: u16,
    /// Header version of the image, for the log.
    pub version: u16,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LinuxError {
    #[error("not a Linux bzImage: no \"HdrS\" boot header at offset 0x202")]
    NotLinux,
    #[error("bzImage is truncated ({0} bytes)")]
    Truncated(usize),
    #[error(
        "Linux boot protocol {}.{:02} is older than tern supports (2.06 or later: Linux 2.6.22+)",
        .0 >> 8, .0 & 0xFF
    )]
    TooOld(u16),
    #[error(
        "Linux boot protocol {}.{:02} is newer than tern knows (up to 2.15)",
        .0 >> 8, .0 & 0xFF
    )]
    TooNew(u16),
    #[error("zImage (not loaded high) kernels are not supported: build a bzImage")]
    NotLoadedHigh,
    #[error("command line is {len} bytes; this kernel takes at most {max}")]
    CmdlineTooLong { len: usize, max: u32 },
    #[error("guest RAM ({ram_mib} MiB) is too small: the kernel needs {need_mib} MiB")]
    RamTooSmall { ram_mib: u64, need_mib: u64 },
    #[error("initrd of {size} bytes does not fit below {max:#x} above the kernel")]
    InitrdTooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Load(#[from] BootError),
}

fn get16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// The flat GDT the kernel starts with: null, null, code (0x10), data (0x18).
fn boot_gdt() -> [u8; 32] {
    let mut g = [0u8; 32];
    // base 0, limit 0xFFFFF pages, G=1 D=1, present DPL0; code execute/read, data read/write.
    g[16..24].copy_from_slice(&0x00CF_9A00_0000_FFFFu64.to_le_bytes());
    g[24..32].copy_from_slice(&0x00CF_9200_0000_FFFFu64.to_le_bytes());
    g
}

/// Loads a bzImage with an optional initrd and a command line.
pub fn load_linux(
    image: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    loader: &mut dyn GuestLoader,
) -> Result<LinuxEntry, LinuxError> {
    if image.get(HEADER..HEADER + 4) != Some(b"HdrS") {
        return Err(LinuxError::NotLinux);
    }
    if image.len() < 0x1000 {
        return Err(LinuxError::Truncated(image.len()));
    }
    let version = get16(image, VERSION);
    if version < MIN_VERSION {
        return Err(LinuxError::TooOld(version));
    }
    if version > MAX_VERSION {
        return Err(LinuxError::TooNew(version));
    }
    if get16(image, BOOT_FLAG) != 0xAA55 {
        return Err(LinuxError::NotLinux);
    }
    if image[LOADFLAGS] & LOADED_HIGH == 0 {
        return Err(LinuxError::NotLoadedHigh);
    }
    let setup_sects = match image[SETUP_SECTS] {
        0 => 4,
        n => usize::from(n),
    };
    let kernel_off = (setup_sects + 1) * 512;
    let kernel = image
        .get(kernel_off..)
        .filter(|k| !k.is_empty())
        .ok_or(LinuxError::Truncated(image.len()))?;

    // The kernel decompresses in place and needs init_size bytes from its load address.
    let ram_size = loader.ram_size().min(0xFFFC_0000);
    let init_size = u64::from(get32(image, INIT_SIZE)).max(kernel.len() as u64);
    let kernel_end = u64::from(KERNEL_ADDR) + init_size;
    if kernel_end > ram_size {
        return Err(LinuxError::RamTooSmall {
            ram_mib: ram_size >> 20,
            need_mib: kernel_end.div_ceil(1 << 20),
        });
    }
    check_ram_range(u64::from(KERNEL_ADDR), kernel.len() as u64, ram_size)?;

    let max_cmdline = get32(image, CMDLINE_SIZE);
    if cmdline.len() as u64 > u64::from(max_cmdline) {
        return Err(LinuxError::CmdlineTooLong {
            len: cmdline.len(),
            max: max_cmdline,
        });
    }

    // boot_params: zero, then the image's setup header as far as the image declares it.
    let mut bp = vec![0u8; 4096];
    let hdr_end = (HEADER + usize::from(image[JUMP + 1])).clamp(HEADER + 4, 0x290);
    bp[SETUP_SECTS..hdr_end].copy_from_slice(&image[SETUP_SECTS..hdr_end]);
    put16(&mut bp, VID_MODE, 0xFFFF); // "normal": no mode switch
    bp[TYPE_OF_LOADER] = LOADER_ID;
    bp[LOADFLAGS] |= CAN_USE_HEAP;
    put16(&mut bp, HEAP_END_PTR, 0xFE00);
    put32(&mut bp, CMD_LINE_PTR, CMDLINE_ADDR);

    // The initrd goes as high as the kernel allows, page aligned, above the kernel.
    if let Some(rd) = initrd.filter(|r| !r.is_empty()) {
        let addr_max = u64::from(get32(image, INITRD_ADDR_MAX));
        let top = (addr_max + 1).min(ram_size);
        let size = rd.len() as u64;
        let base = top.checked_sub(size).map(|b| b & !0xFFF);
        let Some(base) = base.filter(|&b| b >= kernel_end) else {
            return Err(LinuxError::InitrdTooLarge { size, max: top });
        };
        loader.write_phys(base as u32, rd)?;
        put32(&mut bp, RAMDISK_IMAGE, base as u32);
        put32(&mut bp, RAMDISK_SIZE, rd.len() as u32);
    }

    // Memory sizes for kernels that look at them before the e820 map.
    let ext_kib = (ram_size.saturating_sub(1 << 20) >> 10) as u32;
    put16(&mut bp, EXT_MEM_K, ext_kib.min(0xFFFF) as u16);
    put32(&mut bp, ALT_MEM_K, ext_kib);
    let map = memory_map(ram_size);
    for (i, r) in map.iter().take(E820_MAX).enumerate() {
        let off = E820_TABLE + i * 20;
        put64(&mut bp, off, r.base);
        put64(&mut bp, off + 8, r.len);
        put32(&mut bp, off + 16, r.kind);
    }
    bp[E820_ENTRIES] = map.len().min(E820_MAX) as u8;
    debug_assert!(map.iter().any(|r| r.kind == MEMORY_AVAILABLE));

    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    loader.write_phys(CMDLINE_ADDR, &cl)?;
    loader.write_phys(BOOT_PARAMS_ADDR, &bp)?;
    loader.write_phys(GDT_ADDR, &boot_gdt())?;
    loader.write_phys(KERNEL_ADDR, kernel)?;

    Ok(LinuxEntry {
        eip: get32(image, CODE32_START),
        esi: BOOT_PARAMS_ADDR,
        gdt_base: GDT_ADDR,
        gdt_limit: 31,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ram(Vec<u8>);

    impl GuestLoader for Ram {
        fn ram_size(&self) -> u64 {
            self.0.len() as u64
        }
        fn write_phys(&mut self, addr: u32, data: &[u8]) -> Result<(), BootError> {
            let a = addr as usize;
            let dst = self
                .0
                .get_mut(a..a + data.len())
                .ok_or(BootError::GuestWrite {
                    addr,
                    len: data.len(),
                })?;
            dst.copy_from_slice(data);
            Ok(())
        }
    }

    /// A minimal bzImage: 4 setup sectors, then `kernel`.
    fn bzimage(version: u16, kernel: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 5 * 512];
        img[SETUP_SECTS] = 4;
        put16(&mut img, BOOT_FLAG, 0xAA55);
        img[JUMP] = 0xEB;
        img[JUMP + 1] = 0x66; // header ends at 0x268
        img[HEADER..HEADER + 4].copy_from_slice(b"HdrS");
        put16(&mut img, VERSION, version);
        img[LOADFLAGS] = LOADED_HIGH;
        put32(&mut img, CODE32_START, KERNEL_ADDR);
        put32(&mut img, INITRD_ADDR_MAX, 0x37FF_FFFF);
        put32(&mut img, CMDLINE_SIZE, 2047);
        put32(&mut img, INIT_SIZE, 0x20_0000);
        img.extend_from_slice(kernel);
        img.resize(img.len().max(0x1000), 0);
        img
    }

    fn ram(mib: usize) -> Ram {
        Ram(vec![0; mib << 20])
    }

    #[test]
    fn loads_kernel_initrd_cmdline_and_zero_page() {
        let kernel: Vec<u8> = (0..5000u32).map(|i| i as u8 ^ 0x5A).collect();
        let img = bzimage(0x020F, &kernel);
        let rd = vec![0xA5u8; 10_000];
        let mut r = ram(64);
        let e = load_linux(&img, Some(&rd), "console=ttyS0 panic=-1", &mut r).unwrap();
        assert_eq!(e.eip, KERNEL_ADDR);
        assert_eq!(e.esi, BOOT_PARAMS_ADDR);
        let m = &r.0;
        let k = KERNEL_ADDR as usize;
        assert_eq!(&m[k..k + kernel.len()], &kernel[..]);
        let bp = &m[BOOT_PARAMS_ADDR as usize..][..4096];
        assert_eq!(&bp[HEADER..HEADER + 4], b"HdrS");
        assert_eq!(bp[TYPE_OF_LOADER], LOADER_ID);
        assert_eq!(get32(bp, CMD_LINE_PTR), CMDLINE_ADDR);
        let c = CMDLINE_ADDR as usize;
        assert_eq!(&m[c..c + 23], b"console=ttyS0 panic=-1\0");
        // initrd: page aligned, ending at the top of RAM, contents intact.
        let base = get32(bp, RAMDISK_IMAGE) as usize;
        assert_eq!(base % 4096, 0);
        assert_eq!(get32(bp, RAMDISK_SIZE), 10_000);
        assert!(base + 10_000 <= 64 << 20 && base + 10_000 + 4096 > 64 << 20);
        assert!(m[base..base + 10_000].iter().all(|&b| b == 0xA5));
        // e820: low RAM, then RAM from 1 MiB.
        let n = usize::from(bp[E820_ENTRIES]);
        assert!(n >= 3);
        let entry = |i: usize| {
            let o = E820_TABLE + i * 20;
            (
                u64::from_le_bytes(bp[o..o + 8].try_into().unwrap()),
                u64::from_le_bytes(bp[o + 8..o + 16].try_into().unwrap()),
                get32(bp, o + 16),
            )
        };
        assert_eq!(entry(0).0, 0);
        assert_eq!(entry(0).2, 1);
        assert!((0..n).any(|i| entry(i) == (0x10_0000, entry(i).1, 1) && entry(i).1 > 60 << 20));
        // The boot GDT: flat code at 0x10, flat data at 0x18.
        let g = &m[GDT_ADDR as usize..][..32];
        assert_eq!(g[16 + 5], 0x9A);
        assert_eq!(g[24 + 5], 0x92);
    }

    #[test]
    fn refuses_what_it_cannot_boot() {
        let mut r = ram(64);
        assert_eq!(
            load_linux(&[0u8; 0x1000], None, "", &mut r),
            Err(LinuxError::NotLinux)
        );
        let e = load_linux(&bzimage(0x0204, b"k"), None, "", &mut r).unwrap_err();
        assert!(e.to_string().contains("older"), "{e}");
        let e = load_linux(&bzimage(0x0210, b"k"), None, "", &mut r).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        let mut z = bzimage(0x020F, b"k");
        z[LOADFLAGS] = 0;
        assert_eq!(
            load_linux(&z, None, "", &mut r),
            Err(LinuxError::NotLoadedHigh)
        );
        let long = "x".repeat(3000);
        assert!(matches!(
            load_linux(&bzimage(0x020F, b"k"), None, &long, &mut r),
            Err(LinuxError::CmdlineTooLong { .. })
        ));
        assert!(matches!(
            load_linux(&bzimage(0x020F, b"k"), Some(&vec![1; 70 << 20]), "", &mut r),
            Err(LinuxError::InitrdTooLarge { .. })
        ));
        let mut small = ram(2);
        assert!(matches!(
            load_linux(&bzimage(0x020F, b"k"), None, "", &mut small),
            Err(LinuxError::RamTooSmall { .. })
        ));
        let mut cut = bzimage(0x020F, b"");
        cut.truncate(0x1000);
        cut[SETUP_SECTS] = 7;
        assert!(matches!(
            load_linux(&cut, None, "", &mut r),
            Err(LinuxError::Truncated(_))
        ));
    }

    #[test]
    fn initrd_respects_initrd_addr_max() {
        let mut img = bzimage(0x020F, b"kernel");
        put32(&mut img, INITRD_ADDR_MAX, 0x00FF_FFFF);
        let mut r = ram(64);
        load_linux(&img, Some(&[7u8; 5000]), "", &mut r).unwrap();
        let bp = &r.0[BOOT_PARAMS_ADDR as usize..][..4096];
        let base = get32(bp, RAMDISK_IMAGE);
        assert!(
            base + 5000 <= 0x0100_0000 && base >= 0x00FF_0000,
            "{base:#x}"
        );
    }
}
