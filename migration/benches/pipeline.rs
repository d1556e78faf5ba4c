//! The migration pipeline alone, no CPU: a source and a destination in one process
//! (threads, fake VM threads that serve the migration link), over loopback TCP with
//! unlimited bandwidth. What it measures is what the sender, the transport and the
//! receiver can move; the whole-emulator figures, next to QEMU's, come from the frontend's
//! `migrate` bench.
//!
//! `cargo bench -p migration --bench pipeline`; `TERN_BENCH_RUNS` (default 3) runs per
//! case, median printed.

#[path = "../tests/pipeline/fake_vm.rs"]
#[allow(dead_code)]
mod fake_vm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_vm::{FakeVm, PAGE};
use migration::{
    IncomingMigration, IncomingSetup, MigrationParams, MigrationStatus, MigrationUri,
    OutgoingMigration, OutgoingSetup,
};
use savevm::Config;

const RAM: u64 = 2 << 30;

fn config() -> Config {
    Config {
        machine: "pc".into(),
        ram_size: RAM,
        cpu_model: "test".into(),
    }
}

/// What the fake VM expects of its crate.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait(what, cond)
}

fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One migration of a stopped 2 GiB guest with `nonzero` bytes of data; returns seconds
/// and bytes sent.
fn migrate(nonzero: u64) -> (f64, u64) {
    let mut src = FakeVm::new(RAM, false);
    let mut dst = FakeVm::new(RAM, false);
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .collect();
    let mut at = 16 << 20;
    while at < (16 << 20) + nonzero {
        src.memory.write_ram(at, &chunk);
        at += chunk.len() as u64;
    }
    let (incoming, link) = IncomingMigration::listen(
        &MigrationUri::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        },
        &mut |_| None,
        IncomingSetup {
            config: config(),
            memory: dst.memory.clone(),
            waker: dst.waker(),
        },
    )
    .expect("listen");
    dst.serve(link, None);
    let uri = incoming.address().expect("bound").clone();
    let params = Arc::new(MigrationParams::new());
    params.set_max_bandwidth(0);
    let t = Instant::now();
    let (out, link) = OutgoingMigration::start(
        OutgoingSetup {
            uri,
            config: config(),
            memory: src.memory.clone(),
            params,
            waker: src.waker(),
        },
        &mut |_| None,
    )
    .expect("start");
    src.serve(link, None);
    wait("the migration", || out.status().is_final());
    wait("the destination", || incoming.status().is_final());
    let took = t.elapsed().as_secs_f64();
    assert_eq!(
        out.status(),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    assert_eq!(incoming.status(), MigrationStatus::Completed);
    let sent = out.info().ram.map_or(0, |r| r.transferred);
    let mut a = vec![0u8; PAGE as usize];
    let mut b = vec![0u8; PAGE as usize];
    let first = (16 << 20) / PAGE;
    for p in [
        first,
        first + 100,
        first + (nonzero / PAGE).saturating_sub(1),
    ] {
        src.memory.ram().read_slice(p * PAGE, &mut a);
        dst.memory.ram().read_slice(p * PAGE, &mut b);
        assert!(a == b, "page {p:#x} differs");
    }
    (took, sent)
}

fn main() {
    let runs: usize = std::env::var("TERN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!(
        "{:<24} {:>10} {:>14} {:>14}",
        "case", "seconds", "bytes sent", "payload GB/s"
    );
    for (name, nonzero) in [("idle 2 GiB", 0u64), ("2 GiB, 1 GiB non-zero", 1 << 30)] {
        let mut v: Vec<(f64, u64)> = (0..runs).map(|_| migrate(nonzero)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (t, sent) = v[v.len() / 2];
        println!(
            "{:<24} {:>10.3} {:>14} {:>14.2}",
            name,
            t,
            sent,
            nonzero as f64 / t / 1e9
        );
    }
}
