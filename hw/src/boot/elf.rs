//! Just enough ELF to load a 32-bit x86 kernel: the file header and the program headers.
//!
//! Section headers, symbols and relocations are irrelevant for loading: a boot loader
//! copies every `PT_LOAD` segment to its physical address and zero-fills the tail that
//! the file does not hold (bss).
//!
//! ```text
//! file                                     guest physical memory
//! +-------------+ 0
//! | ELF header  |  e_entry, e_phoff, e_phnum
//! +-------------+ e_phoff
//! | phdr[0..n]  |  32 bytes each
//! +-------------+
//! |     ...     |
//! +-------------+ p_offset                 +----------------+ p_paddr
//! | p_filesz    | -----------------------> | file bytes     |
//! +-------------+                          +----------------+ p_paddr + p_filesz
//!                                          | zeros (bss)    |
//!                                          +----------------+ p_paddr + p_memsz
//! ```
//!
//! All fields are little-endian; only ELFCLASS32 / ELFDATA2LSB / EM_386 is accepted.

use super::BootError;

/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of x86-64, named in the error for ELF64 kernels.
pub const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EHDR_SIZE: usize = 52;
const PHDR_SIZE: usize = 32;

/// One `PT_LOAD` program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Offset of the segment's bytes in the file.
    pub offset: u32,
    /// Physical load address: where a Multiboot loader puts the segment.
    pub paddr: u32,
    /// Bytes present in the file.
    pub filesz: u32,
    /// Bytes occupied in memory; `memsz - filesz` trailing bytes are zeroed.
    pub memsz: u32,
}

/// The parts of an ELF32 executable a loader needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf32 {
    pub entry: u32,
    /// `PT_LOAD` segments with a non-zero memory size, in file order.
    pub segments: Vec<LoadSegment>,
}

/// True if the file starts with the ELF magic, whatever its class or machine.
pub fn is_elf(image: &[u8]) -> bool {
    image.starts_with(b"\x7fELF")
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Parses an i386 ELF32 executable and checks that every segment's file bytes exist.
pub fn parse(image: &[u8]) -> Result<Elf32, BootError> {
    if !is_elf(image) {
        return Err(BootError::NotElf);
    }
    let short = BootError::BadElf("file ends inside the ELF header");
    let class = *image.get(4).ok_or(short.clone())?;
    match class {
        1 => {}
        2 => return Err(BootError::Elf64),
        _ => return Err(BootError::BadElf("unknown ELF class")),
    }
    if image.get(5) != Some(&1) {
        return Err(BootError::BadElf("not little-endian"));
    }
    if image.len() < EHDR_SIZE {
        return Err(short);
    }
    // The header is complete from here on, so the field reads cannot fail.
    let field16 = |off| u16_at(image, off).unwrap_or(0);
    let field32 = |off| u32_at(image, off).unwrap_or(0);
    let e_type = field16(16);
    let e_machine = field16(18);
    if e_machine != EM_386 {
        return Err(BootError::ElfMachine(e_machine));
    }
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(BootError::BadElf(
            "not an executable (e_type is not EXEC or DYN)",
        ));
    }
    let entry = field32(24);
    let phoff = field32(28) as usize;
    let phentsize = field16(42) as usize;
    let phnum = field16(44) as usize;
    if phnum > 0 && phentsize < PHDR_SIZE {
        return Err(BootError::BadElf("program header entries are too small"));
    }

    let mut segments = Vec::new();
    for i in 0..phnum {
        let base = phoff
            .checked_add(i * phentsize)
            .ok_or(BootError::BadElf("program header table offset overflows"))?;
        let ph = image.get(base..base + PHDR_SIZE).ok_or(BootError::BadElf(
            "program header table lies past the end of the file",
        ))?;
        let word = |off| u32_at(ph, off).unwrap_or(0);
        if word(0) != PT_LOAD {
            continue;
        }
        let seg = LoadSegment {
            offset: word(4),
            paddr: word(12),
            filesz: word(16),
            memsz: word(20),
        };
        if seg.filesz > seg.memsz {
            return Err(BootError::BadElf(
                "segment has p_filesz larger than p_memsz",
            ));
        }
        let file_end = u64::from(seg.offset) + u64::from(seg.filesz);
        if file_end > image.len() as u64 {
            return Err(BootError::BadElf(
                "segment data lies past the end of the file",
            ));
        }
        if u64::from(seg.paddr) + u64::from(seg.memsz) > 1 << 32 {
            return Err(BootError::BadElf("segment extends past 4 GiB"));
        }
        // An empty PT_LOAD loads nothing; QEMU skips it too when computing the
        // kernel's extent.
        if seg.memsz > 0 {
            segments.push(seg);
        }
    }
    Ok(Elf32 { entry, segments })
}

/// Builds ELF32 images for the loader tests.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// Returns an i386 executable with the given `(paddr, file bytes, memsz)` segments;
    /// segment data follows the headers in order.
    pub fn elf32(entry: u32, segs: &[(u32, &[u8], u32)]) -> Vec<u8> {
        let phoff = EHDR_SIZE;
        let data_start = phoff + segs.len() * PHDR_SIZE;
        let mut out = vec![0u8; data_start];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 1; // ELFCLASS32
        out[5] = 1; // little-endian
        out[6] = 1; // EV_CURRENT
        out[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        out[18..20].copy_from_slice(&EM_386.to_le_bytes());
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[24..28].copy_from_slice(&entry.to_le_bytes());
        out[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
        out[40..42].copy_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
        out[42..44].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[44..46].copy_from_slice(&(segs.len() as u16).to_le_bytes());
        for (i, (paddr, data, memsz)) in segs.iter().enumerate() {
            let offset = out.len() as u32;
            out.extend_from_slice(data);
            let ph = phoff + i * PHDR_SIZE;
            let fields = [
                PT_LOAD,
                offset,
                *paddr,
                *paddr,
                data.len() as u32,
                *memsz,
                5,
                0x1000,
            ];
            for (j, f) in fields.iter().enumerate() {
                out[ph + 4 * j..ph + 4 * j + 4].copy_from_slice(&f.to_le_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segments() {
        let img = build::elf32(
            0x10_0010,
            &[(0x10_0000, b"code", 4), (0x20_0000, b"d", 0x100)],
        );
        let elf = parse(&img).unwrap();
        assert_eq!(elf.entry, 0x10_0010);
        assert_eq!(elf.segments.len(), 2);
        assert_eq!(elf.segments[1].paddr, 0x20_0000);
        assert_eq!(elf.segments[1].filesz, 1);
        assert_eq!(elf.segments[1].memsz, 0x100);
        assert_eq!(&img[elf.segments[0].offset as usize..][..4], b"code");
    }

    #[test]
    fn refuses_other_classes_and_machines() {
        let mut img = build::elf32(0, &[(0x10_0000, b"x", 1)]);
        img[4] = 2;
        assert_eq!(parse(&img), Err(BootError::Elf64));
        let mut img = build::elf32(0, &[(0x10_0000, b"x", 1)]);
        img[18..20].copy_from_slice(&40u16.to_le_bytes()); // ARM
        assert_eq!(parse(&img), Err(BootError::ElfMachine(40)));
        assert_eq!(
            parse(b"\x7fELF\x01\x01"),
            Err(BootError::BadElf("file ends inside the ELF header"))
        );
    }

    #[test]
    fn refuses_truncated_segment() {
        let mut img = build::elf32(0, &[(0x10_0000, b"abcd", 4)]);
        img.truncate(img.len() - 1);
        assert!(matches!(parse(&img), Err(BootError::BadElf(_))));
    }
}
