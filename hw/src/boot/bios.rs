//! Firmware ROM image checks and placement, following QEMU's `x86_bios_rom_init`.
//!
//! The whole image is mapped read-only so that it ends at 4 GiB, which puts its last 16
//! bytes at the reset vector 0xFFFFFFF0. Its last 128 KiB (or all of it, if smaller)
//! are also visible just below 1 MiB, where real-mode code after reset runs
//! (CS base 0xF0000):
//!
//! ```text
//! image:   0                       isa_offset                 size
//!          +-----------------------+--------------------------+
//!          |                       |   last min(size,128K)    |
//!          +-----------------------+--------------------------+
//!          |                       |                          |
//! 4 GiB:   high_base = 4G - size   ...                        4G (reset vector at 4G-16)
//!                                  |                          |
//! 1 MiB:                           isa_base = 1M - isa_len    1M
//! ```
//!
//! Like QEMU, tern accepts only a non-empty image whose size is a multiple of 64 KiB;
//! it additionally caps the image at 16 MiB, the largest firmware flash a PC maps
//! below 4 GiB without colliding with the APIC and other MMIO.

use super::BootError;

/// Granularity QEMU demands of a BIOS image.
pub const BIOS_SIZE_GRANULE: usize = 64 << 10;
/// Largest image tern maps.
pub const BIOS_MAX_SIZE: usize = 16 << 20;
/// Largest part of the image aliased below 1 MiB.
pub const ISA_BIOS_MAX: usize = 128 << 10;

/// Where a validated BIOS image goes in the guest physical address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BiosLayout {
    /// Base of the full image, so that it ends at 4 GiB: `4 GiB - size`.
    pub high_base: u32,
    /// Base of the alias below 1 MiB: `1 MiB - isa_len`.
    pub isa_base: u32,
    /// Offset in the image of the aliased part: `size - isa_len`.
    pub isa_offset: usize,
    /// Length of the aliased part: `min(size, 128 KiB)`.
    pub isa_len: usize,
}

/// Checks a BIOS image's size and computes where it is mapped.
pub fn validate_bios(image: &[u8]) -> Result<BiosLayout, BootError> {
    let size = image.len();
    if size == 0 {
        return Err(BootError::BiosEmpty);
    }
    if size % BIOS_SIZE_GRANULE != 0 {
        return Err(BootError::BiosSize { size });
    }
    if size > BIOS_MAX_SIZE {
        return Err(BootError::BiosTooLarge { size });
    }
    let isa_len = size.min(ISA_BIOS_MAX);
    Ok(BiosLayout {
        high_base: ((1u64 << 32) - size as u64) as u32,
        isa_base: (0x10_0000 - isa_len) as u32,
        isa_offset: size - isa_len,
        isa_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sizes_and_layout() {
        let l = validate_bios(&vec![0; 64 << 10]).unwrap();
        assert_eq!(
            l,
            BiosLayout {
                high_base: 0xFFFF_0000,
                isa_base: 0xF_0000,
                isa_offset: 0,
                isa_len: 64 << 10
            }
        );
        let l = validate_bios(&vec![0; 128 << 10]).unwrap();
        assert_eq!(
            l,
            BiosLayout {
                high_base: 0xFFFE_0000,
                isa_base: 0xE_0000,
                isa_offset: 0,
                isa_len: 128 << 10
            }
        );
        // SeaBIOS's usual 256 KiB build: only the top half is seen below 1 MiB.
        let l = validate_bios(&vec![0; 256 << 10]).unwrap();
        assert_eq!(
            l,
            BiosLayout {
                high_base: 0xFFFC_0000,
                isa_base: 0xE_0000,
                isa_offset: 128 << 10,
                isa_len: 128 << 10
            }
        );
        let l = validate_bios(&vec![0; 16 << 20]).unwrap();
        assert_eq!(l.high_base, 0xFF00_0000);
    }

    #[test]
    fn refused_sizes() {
        assert_eq!(validate_bios(&[]), Err(BootError::BiosEmpty));
        assert_eq!(
            validate_bios(&[0; 1000]),
            Err(BootError::BiosSize { size: 1000 })
        );
        assert_eq!(
            validate_bios(&vec![0; 100 << 10]),
            Err(BootError::BiosSize { size: 100 << 10 })
        );
        assert_eq!(
            validate_bios(&vec![0; (16 << 20) + (64 << 10)]),
            Err(BootError::BiosTooLarge {
                size: (16 << 20) + (64 << 10)
            })
        );
    }

    #[test]
    fn reset_vector_is_in_both_mappings() {
        // The byte at 0xFFFFFFF0 and at 0xFFFF0 must be the same image byte.
        let l = validate_bios(&vec![0; 256 << 10]).unwrap();
        let via_high = (0xFFFF_FFF0u64 - u64::from(l.high_base)) as usize;
        let via_isa = l.isa_offset + (0xF_FFF0 - l.isa_base) as usize;
        assert_eq!(via_high, via_isa);
    }
}
