use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[test]
fn pc_layout() {
    let mut m = GuestMemory::new(16 << 20).unwrap();
    assert_eq!(m.classify(GuestPhysAddr(0x1234)), Region::Ram(0x1234));
    assert_eq!(m.classify(GuestPhysAddr(0xB8000)), Region::Unassigned);
    assert_eq!(m.classify(GuestPhysAddr(0x100000)), Region::Ram(0x100000));
    assert_eq!(m.classify(GuestPhysAddr(16 << 20)), Region::Unassigned);
    let rom: Arc<[u8]> = vec![0xEA; 0x10000].into();
    m.add_rom("bios", 0xF0000, rom.clone(), 0).unwrap();
    m.add_rom("bios-high", 0xFFFF_0000, rom, 0).unwrap();
    assert_eq!(
        m.classify(GuestPhysAddr(0xFFFF0)),
        Region::Rom {
            rom: 0,
            offset: 0xFFF0
        }
    );
    assert_eq!(
        m.classify(GuestPhysAddr(0xFFFF_FFF0)),
        Region::Rom {
            rom: 0,
            offset: 0xFFF0
        }
    );
    assert_eq!(m.classify(GuestPhysAddr(0xE0000)), Region::Unassigned);
    m.add_mmio("dev", 0xFEC0_0000, 0x1000, 7).unwrap();
    assert_eq!(
        m.classify(GuestPhysAddr(0xFEC0_0010)),
        Region::Mmio {
            id: 7,
            offset: 0x10
        }
    );
    assert!(m.add_mmio("clash", 0xFEC0_0800, 0x1000, 8).is_err());
    assert!(m.add_mmio("wrap", 0xFFFF_F000, 0x2000, 9).is_err());
    let mut b = [0u8; 4];
    m.read_phys(GuestPhysAddr(0xFFFFE), &mut b);
    assert_eq!(b, [0xEA, 0xEA, 0, 0]); // RAM resumes at 1 MiB
    m.read_phys(GuestPhysAddr(0xEFFFE), &mut b);
    assert_eq!(b, [0xFF, 0xFF, 0xEA, 0xEA]);
    // ROM ignores writes.
    m.write_phys(GuestPhysAddr(0xFFFF0), &[1, 2]);
    m.read_phys(GuestPhysAddr(0xFFFF0), &mut b[..2]);
    assert_eq!(b[..2], [0xEA, 0xEA]);
}

#[test]
fn a20_wraps() {
    let m = GuestMemory::new(4 << 20).unwrap();
    m.write_phys(GuestPhysAddr(0x10_0010), &[0x55]);
    m.set_a20(false);
    assert_eq!(m.classify(GuestPhysAddr(0x10_0010)), Region::Ram(0x10));
    m.set_a20(true);
    let mut b = [0];
    m.read_phys(GuestPhysAddr(0x10_0010), &mut b);
    assert_eq!(b[0], 0x55);
}

#[test]
fn sizes_are_checked() {
    assert!(matches!(
        GuestMemory::new(0),
        Err(MemoryError::BadRamSize(0))
    ));
    assert!(matches!(
        GuestMemory::new(4097),
        Err(MemoryError::BadRamSize(_))
    ));
    let e = GuestMemory::new(4 << 30).err().unwrap();
    assert!(
        e.to_string()
            .contains("more than a 32-bit guest can address"),
        "{e}"
    );
}

#[test]
fn dirty_clients_are_independent() {
    let m = GuestMemory::new(1 << 20).unwrap();
    m.write_phys(GuestPhysAddr(0x3000), &[1]);
    m.dirty_enable(DirtyClient::Migration);
    let e0 = m.dirty_epoch();
    m.write_phys(GuestPhysAddr(0x5000), &[1]);
    m.dirty_enable(DirtyClient::Snapshot);
    m.write_phys(GuestPhysAddr(0x7fff), &[1, 2]);
    let mig = m.dirty_take(DirtyClient::Migration);
    assert_ne!(m.dirty_epoch(), e0);
    assert_eq!(mig.pages().collect::<Vec<_>>(), vec![5, 7, 8]);
    let snap = m.dirty_take(DirtyClient::Snapshot);
    assert_eq!(snap.pages().collect::<Vec<_>>(), vec![7, 8]);
    assert_eq!(m.dirty_take(DirtyClient::Migration).count(), 0);
    m.dirty_disable(DirtyClient::Migration);
    m.write_phys(GuestPhysAddr(0x9000), &[1]);
    assert_eq!(m.dirty_take(DirtyClient::Migration).count(), 0);
}

#[test]
fn dma_to_code_page_is_reported() {
    let m = GuestMemory::new(1 << 20).unwrap();
    m.code_mark(2);
    assert!(!m.smc_pending());
    m.write_phys(GuestPhysAddr(0x1ffe), &[0x90; 4]);
    assert!(m.smc_pending());
    assert_eq!(m.take_smc().pages().collect::<Vec<_>>(), vec![2]);
    assert!(!m.smc_pending());
}

/// One thread writes a sequence number into random pages without pause; another harvests
/// the log and copies the pages it names into a shadow. After the writer stops and one last
/// harvest, the shadow must equal RAM: a write lost between harvests would leave a stale page.
#[test]
fn no_write_is_lost_between_harvests() {
    const PAGES: u64 = 512;
    let m = Arc::new(GuestMemory::new(PAGES * PAGE_SIZE).unwrap());
    m.dirty_enable(DirtyClient::Migration);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (m, stop, progress) = (m.clone(), stop.clone(), progress.clone());
        std::thread::spawn(move || {
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let page = x % PAGES;
                if (0xA0..0x100).contains(&page) {
                    continue; // the PC hole below 1 MiB is not RAM
                }
                let off = (x >> 20) % (PAGE_SIZE - 8);
                n += 1;
                m.write_phys(GuestPhysAddr(page * PAGE_SIZE + off), &n.to_le_bytes());
                progress.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let mut shadow = vec![0u8; (PAGES * PAGE_SIZE) as usize];
    let mut harvests = 0;
    let mut copied = 0u64;
    // The writer runs until told to stop, so on a loaded host the loop simply takes longer
    // to see both many writes and harvests that overlap them.
    while progress.load(Ordering::Relaxed) < 300_000 || harvests <= 10 || copied == 0 {
        for p in m.dirty_take(DirtyClient::Migration).pages() {
            let s = (p * PAGE_SIZE) as usize;
            m.ram()
                .read_slice(p * PAGE_SIZE, &mut shadow[s..s + PAGE_SIZE as usize]);
            copied += 1;
        }
        harvests += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    for p in m.dirty_take(DirtyClient::Migration).pages() {
        let s = (p * PAGE_SIZE) as usize;
        m.ram()
            .read_slice(p * PAGE_SIZE, &mut shadow[s..s + PAGE_SIZE as usize]);
    }
    let mut ram = vec![0u8; shadow.len()];
    m.ram().read_slice(0, &mut ram);
    assert!(
        writes >= 300_000 && harvests > 10 && copied > 0,
        "{writes} {harvests} {copied}"
    );
    for p in 0..PAGES as usize {
        let r = p * PAGE_SIZE as usize..(p + 1) * PAGE_SIZE as usize;
        assert!(
            shadow[r.clone()] == ram[r],
            "page {p} differs: a write escaped the log"
        );
    }
}

#[test]
fn ram_writes_by_offset_reach_shadowed_pages_and_are_logged() {
    let m = GuestMemory::new(2 << 20).unwrap();
    m.dirty_enable(DirtyClient::Migration);
    m.code_mark(0xA0);
    // 0xA0000 is the VGA hole as a physical address, but a RAM page all the same.
    assert!(m.write_ram(0xA_0FFE, &[1, 2, 3, 4]));
    let mut b = [0u8; 4];
    assert!(m.ram().read_slice(0xA_0FFE, &mut b));
    assert_eq!(b, [1, 2, 3, 4]);
    assert_eq!(
        m.dirty_take(DirtyClient::Migration)
            .pages()
            .collect::<Vec<_>>(),
        vec![0xA0, 0xA1]
    );
    assert_eq!(m.take_smc().pages().collect::<Vec<_>>(), vec![0xA0]);
    assert!(!m.write_ram((2 << 20) - 2, &[0; 4]));
    assert!(!m.write_ram(u64::MAX, &[0]));
    assert_eq!(m.dirty_take(DirtyClient::Migration).count(), 0);
}

#[test]
fn unwritten_pages_are_known_zero() {
    let m = GuestMemory::new(1 << 20).unwrap();
    assert_eq!(m.unwritten_run(0, 256), 256);
    m.write_phys(GuestPhysAddr(0x5000), &[0]);
    m.write_ram(0x40_000, &[1; 8192]);
    // The CPU's door: it logs a page before its first store.
    m.note_write(0x90);
    assert_eq!(m.unwritten_run(0, 256), 5);
    assert_eq!(m.unwritten_run(5, 256), 0);
    assert_eq!(m.unwritten_run(6, 256), 0x40 - 6);
    assert_eq!(m.unwritten_run(0x40, 256), 0);
    assert_eq!(m.unwritten_run(0x42, 256), 0x90 - 0x42);
    assert_eq!(m.unwritten_run(0x91, 256), 256 - 0x91);
    assert_eq!(m.unwritten_run(0x91, 0x95), 4);
    let written: Vec<u64> = m.written_pages(0, 256).collect();
    assert_eq!(written, [5, 0x40, 0x41, 0x90]);
    assert_eq!(m.written_pages(6, 0x41).collect::<Vec<_>>(), [0x40]);
    assert_eq!(m.written_pages(0x91, 256).count(), 0);
    // Logging for migration or not, a write counts.
    m.dirty_enable(DirtyClient::Migration);
    m.write_phys(GuestPhysAddr(0xA_0000 - 1), &[1]);
    assert_eq!(m.unwritten_run(0x91, 256), 0x9F - 0x91);
}

#[test]
fn prefaulting_changes_no_byte() {
    let m = GuestMemory::new(8 << 20).unwrap();
    m.write_ram(0x3000, &[5; 100]);
    with_prefault(&m, 2, |p| {
        p.coming(0, 2048);
        p.coming(3, 1);
        p.coming(2040, 100); // partly outside RAM: ignored
        p.coming(u64::MAX, 2);
    });
    let mut page = [0u8; 4096];
    m.ram().read_slice(0x3000, &mut page);
    assert!(page[..100].iter().all(|&b| b == 5) && page[100..].iter().all(|&b| b == 0));
    assert!((0..2048)
        .filter(|&p| p != 3)
        .all(|p| m.ram().page_is_zero(p)));
    // Populated or not, an unwritten page is still known to be zero.
    assert_eq!(m.unwritten_run(0, 2048), 3);
    assert_eq!(m.unwritten_run(4, 2048), 2044);
}
