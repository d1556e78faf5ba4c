//! `migrate_cancel` at every stage: the status ends `cancelled`, the guest runs as
//! before (resumed if the migration had stopped it), the dirty log is off, and a `file:`
//! destination leaves nothing behind.

use std::sync::atomic::Ordering;

use memory::DirtyClient;
use migration::{MigrationEvent, MigrationStatus, MigrationUri};

use crate::fake_vm::FakeVm;
use crate::*;

fn assert_cancelled_cleanly(vm: &FakeVm, stops: u32) {
    vm.wait_status(MigrationStatus::Cancelled);
    let r = vm.rec();
    assert!(r.running, "the guest must run again");
    assert_eq!((r.stops, r.resumed), (stops, stops));
    assert_eq!(r.finished, [false]);
    assert_eq!(
        r.events.last(),
        Some(&MigrationEvent::Status(MigrationStatus::Cancelled))
    );
    assert!(r
        .events
        .contains(&MigrationEvent::Status(MigrationStatus::Cancelling)));
    assert!(!vm.memory.dirty_enabled(DirtyClient::Migration));
}

#[test]
fn cancel_in_setup() {
    let dir = scratch("cancel-setup");
    let mut src = FakeVm::new(4 * MIB, true);
    src.writer(4, 0, 64, 1);
    // The VM thread is busy and does not answer the request to enable the log.
    src.knobs.hold_enable.store(true, Ordering::Relaxed);
    let out = start_out(
        &mut src,
        &MigrationUri::File(dir.join("vm.state")),
        &params(0, 300),
    );
    src.wait("the enable request", |r| r.enable_held);
    assert_eq!(out.status(), MigrationStatus::Setup);
    out.cancel();
    assert_eq!(out.status(), MigrationStatus::Cancelling);
    // Once the VM thread gets to it, it enables the log and then sees Finished, in order.
    src.knobs.hold_enable.store(false, Ordering::Relaxed);
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
    assert_cancelled_cleanly(&src, 0);
    assert!(out.info().ram.is_none());
    assert_eq!(files_in(&dir), Vec::<String>::new());
    // Cancelling again, or after the end, changes nothing.
    out.cancel();
    assert_eq!(out.status(), MigrationStatus::Cancelled);
}

#[test]
fn cancel_while_blocked_on_a_peer_that_does_not_read() {
    let mut src = FakeVm::new(64 * MIB, true);
    // 32 MiB of data: far more than the socket buffers hold.
    fill(&src, 0..8192);
    src.writer(4, 0, 64, 1);
    let peer = Peer::new(PeerMode::Hold);
    let out = start_out(&mut src, &peer.uri, &params(0, 300));
    wait_until("the buffers to fill", || {
        out.info().ram.is_some_and(|r| r.transferred > MIB)
    });
    // Give the sender time to block in a write.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(out.status(), MigrationStatus::Active);
    out.cancel();
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
    assert_cancelled_cleanly(&src, 0);
    drop(peer);
}

#[test]
fn cancel_during_the_final_pass() {
    let mut src = FakeVm::new(64 * MIB, true);
    src.writer(0, 0, 1, 1);
    // Completion right after pass 1 (little to send), then 32 MiB that device I/O wrote
    // as the guest stopped, to a peer that reads nothing: the final pass blocks.
    src.knobs.final_burst.store(8192, Ordering::Relaxed);
    let peer = Peer::new(PeerMode::Hold);
    let out = start_out(&mut src, &peer.uri, &params(0, 2_000_000));
    wait_until("the final pass", || out.status() == MigrationStatus::Device);
    assert!(!src.rec().running);
    out.cancel();
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
    assert_cancelled_cleanly(&src, 1);
    drop(peer);
}

#[test]
fn a_stopped_guest_stays_stopped_after_a_cancel() {
    let mut src = FakeVm::new(64 * MIB, false);
    src.knobs.final_burst.store(8192, Ordering::Relaxed);
    let peer = Peer::new(PeerMode::Hold);
    let out = start_out(&mut src, &peer.uri, &params(0, 2_000_000));
    wait_until("the final pass", || out.status() == MigrationStatus::Device);
    out.cancel();
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
    src.wait_status(MigrationStatus::Cancelled);
    let r = src.rec();
    assert!(!r.running);
    assert_eq!((r.stops, r.resumed), (1, 0));
    assert_eq!(r.finished, [false]);
}
