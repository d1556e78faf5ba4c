//! Snapshot speed and size: a 2 GiB machine, idle and with 1 GiB of non-zero RAM, saved
//! to a file and loaded back (through the page cache), as `savevm`/`loadvm` do.
//!
//! Run with `cargo bench -p hw --bench snapshot`. Prints wall-clock seconds (median of
//! `TERN_BENCH_RUNS`, default 3) and the file size. "load fresh" loads into a machine that
//! has just been created, as `tern run --loadvm` does; "load over" loads into the machine
//! that was saved, as the monitor's `loadvm` does over a running guest (with the undo log
//! that makes a failed load harmless). The last row is the host alone, for scale: 1 GiB
//! written to a new file and renamed the same way, and read back into fresh memory (on a
//! virtual machine whose host reclaims free memory, first touches of fresh pages, both
//! page cache and RAM, are most of the time, and vary from run to run).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use hw::clock::ClockMode;
use hw::rtc::RtcBase;
use hw::{BootSource, MachineConfig, PcMachine};
use memory::GuestPhysAddr;

const RAM: u64 = 2 << 30;

fn machine() -> PcMachine {
    // The demo guest, not run: the bench is about RAM and device state, not the guest.
    let image: Arc<[u8]> = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/guests/demo.bin"
    ))
    .expect("demo.bin")
    .into();
    let mut m = PcMachine::new(MachineConfig {
        ram_size: RAM,
        boot: BootSource::Multiboot {
            image,
            cmdline: String::new(),
        },
        debugcon_port: None,
        clock: ClockMode::Deterministic { ns_per_insn: 5 },
        rtc_base: RtcBase::Fixed(946_684_800),
        no_reboot: true,
    })
    .expect("machine");
    m.pause_clock();
    m
}

/// Fills `bytes` of RAM from 16 MiB with a pattern no page of which is zero.
fn fill(m: &PcMachine, bytes: u64) {
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .collect();
    let mut at = 16 << 20;
    while at < (16 << 20) + bytes {
        m.memory().write_phys(GuestPhysAddr(at), &chunk);
        at += chunk.len() as u64;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("TERN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let path = std::env::temp_dir().join(format!("tern-snapshot-bench-{}", std::process::id()));
    let tmp = path.with_extension("tmp");
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>12}",
        "case", "save s", "load fresh s", "load over s", "file bytes"
    );
    for (name, nonzero) in [("idle 2 GiB", 0u64), ("2 GiB, 1 GiB non-zero", 1 << 30)] {
        let mut m = machine();
        fill(&m, nonzero);
        let (mut saves, mut fresh, mut loads) = (Vec::new(), Vec::new(), Vec::new());
        let mut size = 0;
        for _ in 0..runs {
            // As `savevm` writes: a new file, renamed over the old one (whose pages the
            // rename frees). The fsync that `savevm` adds is the disk's time, not ours.
            let t = Instant::now();
            let f = File::create(&tmp).expect("create");
            m.save_snapshot(f).expect("save");
            std::fs::rename(&tmp, &path).expect("rename");
            saves.push(t.elapsed().as_secs_f64());
            size = std::fs::metadata(&path).expect("size").len();
            let _ = std::process::Command::new("sync").status();
            let mut new = machine();
            let t = Instant::now();
            let f = File::open(&path).expect("open");
            new.load_snapshot(BufReader::with_capacity(1 << 20, f))
                .expect("load");
            fresh.push(t.elapsed().as_secs_f64());
            if fresh.len() == 1 {
                assert!(new.digest() == m.digest(), "the loaded machine differs");
            }
            drop(new);
            let t = Instant::now();
            let f = File::open(&path).expect("open");
            m.load_snapshot(BufReader::with_capacity(1 << 20, f))
                .expect("load");
            loads.push(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<24} {:>10.3} {:>12.3} {:>12.3} {:>12}",
            name,
            median(saves),
            median(fresh),
            median(loads),
            size
        );
    }
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| i as u8 | 1).collect();
    for _ in 0..runs {
        let t = Instant::now();
        let mut f = File::create(&tmp).expect("create");
        for _ in 0..1024 {
            f.write_all(&chunk).expect("write");
        }
        drop(f);
        std::fs::rename(&tmp, &path).expect("rename");
        writes.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut back = vec![0u8; 1 << 30];
        File::open(&path)
            .and_then(|mut f| f.read_exact(&mut back))
            .expect("read");
        reads.push(t.elapsed().as_secs_f64());
        assert!(back[(1 << 30) - 1] == chunk[(1 << 20) - 1]);
    }
    println!(
        "{:<24} {:>10.3} {:>12.3} {:>12} {:>12}",
        "host: 1 GiB file",
        median(writes),
        median(reads),
        "-",
        1u64 << 30
    );
    let _ = std::fs::remove_file(&path);
}
