//! When the pre-copy stops: a guest that outpaces the link, with and without
//! auto-converge, and parameters changed while a migration runs. Assertions are on the
//! decisions (passes, statuses, throttle steps), never on elapsed time.

use std::sync::atomic::Ordering;

use memory::DirtyClient;
use migration::{MigrationEvent, MigrationStatus, MigrationUri};

use crate::fake_vm::FakeVm;
use crate::*;

fn passes(vm: &FakeVm) -> u32 {
    vm.rec()
        .events
        .iter()
        .filter_map(|e| match e {
            MigrationEvent::Pass(n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// 16 MiB with a vCPU rewriting 256 pages (1 MiB, spread over RAM) at 16 pages a slice,
/// some 16 000 pages a second: four times what a 4 MiB/s link carries.
fn hot_source() -> FakeVm {
    let src = FakeVm::new(16 * MIB, true);
    src.writer(16, 0, 256, 16);
    fill(&src, (0..256).map(|i| i * 16));
    src
}

#[test]
fn a_guest_outpacing_the_link_iterates_until_cancelled() {
    let mut src = hot_source();
    let peer = Peer::new(PeerMode::ReadThenClose(u64::MAX));
    let out = start_out(&mut src, &peer.uri, &params(4 * MIB, 30));
    wait_until("five passes", || passes(&src) >= 5);
    let info = out.info();
    assert_eq!(info.status, MigrationStatus::Active);
    assert!(info.not_converging, "{info:?}");
    assert!(info.expected_downtime_ms.unwrap() > 30, "{info:?}");
    assert_eq!(info.cpu_throttle_percentage, None);
    let ram = info.ram.clone().unwrap();
    assert!(ram.dirty_pages_rate > 0 && ram.mbps > 0.0, "{ram:?}");
    assert!(ram.dirty_sync_count >= 5);
    assert!(info.to_json().contains("\"not-converging\":true"));
    // The guest never stopped and was never slowed down.
    assert_eq!(src.rec().stops, 0);
    assert!(src.rec().throttles.iter().all(|&t| t == 0));
    out.cancel();
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
    let r = src.rec();
    assert!(r.running);
    assert_eq!((r.stops, r.resumed), (0, 0));
    assert_eq!(r.finished, [false]);
    assert!(!src.memory.dirty_enabled(DirtyClient::Migration));
}

#[test]
fn auto_converge_throttles_the_guest_until_it_fits() {
    let mut src = hot_source();
    src.knobs.obey_throttle.store(true, Ordering::Relaxed);
    let mut dst = FakeVm::new(16 * MIB, false);
    let inc = listen_in(&mut dst, &MigrationUri::parse("tcp:127.0.0.1:0").unwrap());
    let p = params(4 * MIB, 30);
    p.set_auto_converge(true);
    p.set_cpu_throttle_initial(40).unwrap();
    p.set_cpu_throttle_increment(20).unwrap();
    let out = start_out(&mut src, inc.address().unwrap(), &p);
    assert_eq!(
        wait_out(&out),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    assert_eq!(
        wait_in(&inc),
        MigrationStatus::Completed,
        "{:?}",
        inc.error()
    );
    // The throttle rose at least as QEMU's steps would (from the initial value by the
    // increment; further where the measurement says it takes), and went back to zero.
    let steps: Vec<u8> = src
        .rec()
        .throttles
        .iter()
        .copied()
        .filter(|&t| t > 0)
        .collect();
    assert!(!steps.is_empty());
    assert!(steps[0] >= 40, "{steps:?}");
    for w in steps.windows(2) {
        assert!(w[1] >= (w[0] + 20).min(99), "{steps:?}");
    }
    assert_eq!(out.cpu_throttle_percentage(), 0);
    assert!(src.rec().seq_at_stop.unwrap() > 0);
    assert_same_ram(&src, &dst);
}

#[test]
fn a_raised_bandwidth_limit_lets_it_converge() {
    // 512 KiB rewritten all the time: about 250 ms at 2 MiB/s, over the 100 ms limit; a
    // millisecond on an unlimited loopback.
    let mut src = FakeVm::new(16 * MIB, true);
    src.writer(16, 0, 128, 32);
    let mut dst = FakeVm::new(16 * MIB, false);
    let inc = listen_in(&mut dst, &MigrationUri::parse("tcp:127.0.0.1:0").unwrap());
    let p = params(2 * MIB, 100);
    let out = start_out(&mut src, inc.address().unwrap(), &p);
    wait_until("four passes", || passes(&src) >= 4);
    assert_eq!(out.status(), MigrationStatus::Active);
    assert!(out.info().expected_downtime_ms.unwrap() > 100);
    let at_change = passes(&src);
    p.set_max_bandwidth(0);
    assert_eq!(
        wait_out(&out),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    wait_in(&inc);
    // Done within a few passes of the change.
    assert!(
        passes(&src) <= at_change + 4,
        "{} {at_change}",
        passes(&src)
    );
    assert_same_ram(&src, &dst);
}

#[test]
fn a_raised_downtime_limit_ends_the_iteration() {
    let mut src = FakeVm::new(16 * MIB, true);
    src.writer(8, 0, 64, 64);
    src.knobs
        .one_harvest_per_slice
        .store(true, Ordering::Relaxed);
    let mut dst = FakeVm::new(16 * MIB, false);
    let inc = listen_in(&mut dst, &MigrationUri::parse("tcp:127.0.0.1:0").unwrap());
    // A limit of 0 ms allows no stop while anything is dirty: with the guest writing,
    // that is never.
    let p = params(0, 0);
    let out = start_out(&mut src, inc.address().unwrap(), &p);
    wait_until("six passes", || {
        passes(&src) >= 6 || out.status().is_final()
    });
    assert_eq!(
        out.status(),
        MigrationStatus::Active,
        "{:?} {:?}",
        out.error(),
        out.info()
    );
    assert_eq!(src.rec().stops, 0);
    p.set_downtime_limit_ms(2_000_000).unwrap();
    assert_eq!(
        wait_out(&out),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    wait_in(&inc);
    assert_same_ram(&src, &dst);
}
