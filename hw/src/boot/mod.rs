//! Boot loaders: put a kernel or firmware image into guest memory before the CPU starts.
//!
//! tern boots a guest in one of two ways:
//!
//! * `--kernel FILE`: a Multiboot v1 kernel ([`multiboot`]) is loaded straight into RAM,
//!   the Multiboot information structure is built next to it, and the CPU starts in
//!   32-bit protected mode at the kernel's entry point. No firmware runs.
//! * `--bios FILE`: a firmware ROM image ([`bios`]) is mapped at the top of the 4 GiB
//!   address space with its last 128 KiB aliased below 1 MiB, and the CPU starts at
//!   the reset vector.
//!
//! The loaders never touch the memory crate directly; they write through the small
//! [`GuestLoader`] trait so that they can be tested against a plain byte vector and so
//! that the board decides how RAM is backed.
//!
//! Guest RAM as the loaders see it (the PC hole is not RAM; writes there are refused):
//!
//! ```text
//! 0x0000_0000 +----------------------+
//!             | conventional RAM     |  640 KiB
//! 0x000A_0000 +----------------------+
//!             | PC hole: VGA, option |  not RAM
//!             | ROMs, BIOS shadow    |
//! 0x0010_0000 +----------------------+
//!             | extended RAM         |  up to ram_size
//!   ram_size  +----------------------+
//! ```

pub mod bios;
pub mod elf;
pub mod linux;
pub mod multiboot;

pub use bios::{validate_bios, BiosLayout};
pub use linux::{load_linux, LinuxEntry, LinuxError};
pub use multiboot::{is_multiboot, load_multiboot, MultibootEntry};

use thiserror::Error;

/// Start of the PC hole (VGA memory, option ROMs, BIOS shadow): not RAM.
pub const PC_HOLE_START: u32 = 0xA_0000;
/// End (exclusive) of the PC hole: extended RAM starts here.
pub const PC_HOLE_END: u32 = 0x10_0000;

/// Where a boot loader writes: guest RAM, seen as physical addresses.
pub trait GuestLoader {
    /// RAM size in bytes (RAM is contiguous from 0, minus the PC hole 0xA0000..0x100000
    /// which is not RAM).
    fn ram_size(&self) -> u64;
    /// Copies `data` into guest RAM at `addr`. Loaders only call this for ranges that
    /// lie wholly inside RAM, so an error here means the implementation disagrees with
    /// its own `ram_size`.
    fn write_phys(&mut self, addr: u32, data: &[u8]) -> Result<(), BootError>;
}

/// Why an image could not be loaded. The messages are meant to be shown to the user
/// as they are, after the file name.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BootError {
    #[error("not a Multiboot kernel: no header in the first 8192 bytes")]
    NoMultibootHeader,
    #[error("Multiboot header at file offset {offset:#x} has a bad checksum")]
    BadChecksum { offset: usize },
    #[error(
        "Multiboot header asks for features tern does not provide (flags {flags:#010x}, \
         unsupported required bits {unsupported:#06x})"
    )]
    UnsupportedFlags { flags: u32, unsupported: u32 },
    #[error("Multiboot header is truncated: the file ends inside the address fields")]
    TruncatedHeader,
    #[error("invalid Multiboot address fields: {0}")]
    BadAddressFields(&'static str),
    #[error("Multiboot header has no address fields (flag bit 16 clear) and the file is not ELF")]
    NotElf,
    #[error("64-bit ELF kernel: Multiboot v1 loads 32-bit ELF only (link it as elf32-i386)")]
    Elf64,
    #[error("ELF kernel is for machine type {0} (tern's Multiboot loader takes i386, type 3)")]
    ElfMachine(u16),
    #[error("malformed ELF: {0}")]
    BadElf(&'static str),
    #[error("ELF kernel has no loadable (PT_LOAD) segments")]
    NoLoadableSegments,
    #[error("segment at {addr:#x} (size {size:#x}) lies outside guest RAM ({ram_mib} MiB)")]
    OutsideRam { addr: u64, size: u64, ram_mib: u64 },
    #[error(
        "kernel at {start:#x}..{end:#x} overlaps the Multiboot information area at \
         {info_start:#x}..{info_end:#x}"
    )]
    OverlapsInfo {
        start: u64,
        end: u64,
        info_start: u32,
        info_end: u32,
    },
    #[error("guest RAM ({ram_mib} MiB) is too small to boot a Multiboot kernel (need 2 MiB)")]
    RamTooSmall { ram_mib: u64 },
    #[error("BIOS image is empty")]
    BiosEmpty,
    #[error("BIOS image is {size} bytes; its size must be a multiple of 64 KiB")]
    BiosSize { size: usize },
    #[error("BIOS image is {size} bytes; tern maps at most 16 MiB of firmware")]
    BiosTooLarge { size: usize },
    #[error("guest write of {len} bytes at {addr:#x} failed")]
    GuestWrite { addr: u32, len: usize },
}

/// What a file handed to tern looks like, so the frontend can explain a refusal
/// ("FILE is an ELF without a Multiboot header; --kernel takes Multiboot kernels").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Has a valid Multiboot v1 header (whatever its container format).
    Multiboot,
    /// An ELF file without a Multiboot header.
    Elf,
    /// A Linux x86 boot-protocol image (bzImage): "HdrS" at offset 0x202.
    LinuxBzImage,
    /// None of the above.
    Unknown,
}

/// Classifies a kernel image the way QEMU's `-kernel` does: the Linux boot-protocol
/// signature is checked first (a bzImage that also carries a Multiboot header boots as
/// Linux under QEMU), then the Multiboot header, then the ELF magic.
pub fn detect(image: &[u8]) -> ImageKind {
    if image.get(0x202..0x206) == Some(b"HdrS") {
        ImageKind::LinuxBzImage
    } else if is_multiboot(image) {
        ImageKind::Multiboot
    } else if elf::is_elf(image) {
        ImageKind::Elf
    } else {
        ImageKind::Unknown
    }
}

/// Checks that `[addr, addr + size)` is guest RAM: inside conventional memory or inside
/// extended memory below `ram_size`, never touching the PC hole.
pub(crate) fn check_ram_range(addr: u64, size: u64, ram_size: u64) -> Result<(), BootError> {
    let end = addr.saturating_add(size);
    let low_ok = end <= u64::from(PC_HOLE_START);
    let high_ok = addr >= u64::from(PC_HOLE_END) && end <= ram_size;
    if size == 0 || low_ok || high_ok {
        Ok(())
    } else {
        Err(BootError::OutsideRam {
            addr,
            size,
            ram_mib: ram_size >> 20,
        })
    }
}

/// Writes `len` zero bytes at `addr` (bss), in page-sized pieces so a large bss does not
/// need a large host buffer.
pub(crate) fn zero_fill(
    loader: &mut dyn GuestLoader,
    addr: u32,
    len: u32,
) -> Result<(), BootError> {
    const ZEROS: [u8; 4096] = [0; 4096];
    let mut done = 0u32;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u32);
        loader.write_phys(addr + done, &ZEROS[..n as usize])?;
        done += n;
    }
    Ok(())
}

/// A guest RAM backed by a byte vector, with the PC hole refused, for the loader tests.
#[cfg(test)]
pub(crate) mod testram {
    use super::{BootError, GuestLoader, PC_HOLE_END, PC_HOLE_START};

    pub struct TestRam {
        pub bytes: Vec<u8>,
        /// Every write as (address, length), to check what the loader touched.
        pub writes: Vec<(u32, usize)>,
    }

    impl TestRam {
        pub fn new(size: usize) -> Self {
            TestRam {
                bytes: vec![0; size],
                writes: Vec::new(),
            }
        }

        pub fn u32_at(&self, addr: u32) -> u32 {
            let a = addr as usize;
            u32::from_le_bytes(self.bytes[a..a + 4].try_into().unwrap())
        }

        pub fn u64_at(&self, addr: u32) -> u64 {
            let a = addr as usize;
            u64::from_le_bytes(self.bytes[a..a + 8].try_into().unwrap())
        }

        /// The NUL-terminated string at `addr`.
        pub fn cstr_at(&self, addr: u32) -> String {
            let a = addr as usize;
            let len = self.bytes[a..].iter().position(|&b| b == 0).unwrap();
            String::from_utf8(self.bytes[a..a + len].to_vec()).unwrap()
        }
    }

    impl GuestLoader for TestRam {
        fn ram_size(&self) -> u64 {
            self.bytes.len() as u64
        }

        fn write_phys(&mut self, addr: u32, data: &[u8]) -> Result<(), BootError> {
            let start = addr as usize;
            let end = start + data.len();
            let in_hole = start < PC_HOLE_END as usize && end > PC_HOLE_START as usize;
            if in_hole || end > self.bytes.len() {
                return Err(BootError::GuestWrite {
                    addr,
                    len: data.len(),
                });
            }
            self.bytes[start..end].copy_from_slice(data);
            self.writes.push((addr, data.len()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_ranges() {
        let ram = 16 << 20;
        assert!(check_ram_range(0, 0xA_0000, ram).is_ok());
        assert!(check_ram_range(0x10_0000, 0xF0_0000, ram).is_ok());
        assert!(check_ram_range(0x9_F000, 0x2000, ram).is_err());
        assert!(check_ram_range(0xF_F000, 0x2000, ram).is_err());
        assert!(check_ram_range(0xFF_F000, 0x2000, ram).is_err());
        assert!(check_ram_range(0xFFFF_F000, 0x2000, ram).is_err());
    }

    #[test]
    fn detect_kinds() {
        let mut linux = vec![0u8; 0x400];
        linux[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(detect(&linux), ImageKind::LinuxBzImage);

        let mut elf = vec![0u8; 0x100];
        elf[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(detect(&elf), ImageKind::Elf);

        let mut mb = elf.clone();
        let flags = 0u32;
        mb[0x40..0x44].copy_from_slice(&0x1BAD_B002u32.to_le_bytes());
        mb[0x44..0x48].copy_from_slice(&flags.to_le_bytes());
        let sum = 0u32.wrapping_sub(0x1BAD_B002).wrapping_sub(flags);
        mb[0x48..0x4C].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(detect(&mb), ImageKind::Multiboot);

        assert_eq!(detect(b"MZ\x90\x00"), ImageKind::Unknown);
        assert_eq!(detect(&[]), ImageKind::Unknown);
    }

    #[test]
    fn error_messages_read_well() {
        let e = BootError::OutsideRam {
            addr: 0x800_0000,
            size: 0x1000,
            ram_mib: 64,
        };
        assert_eq!(
            e.to_string(),
            "segment at 0x8000000 (size 0x1000) lies outside guest RAM (64 MiB)"
        );
        assert_eq!(
            BootError::NoMultibootHeader.to_string(),
            "not a Multiboot kernel: no header in the first 8192 bytes"
        );
    }
}
