//! A guest that keeps writing is migrated over every transport; the destination must end
//! with the source's RAM as of the stop, byte for byte, and its device state.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use memory::DirtyClient;
use migration::{
    IncomingMigration, IncomingSetup, MigrationEvent, MigrationStatus, MigrationUri,
    OutgoingMigration, OutgoingSetup,
};

use crate::fake_vm::{FakeVm, PAGE};
use crate::*;

/// A source with data in every eighth page and a vCPU writing 4 pages a slice over 512
/// pages spread across all of RAM (so pages pass 1 already sent get dirty again).
fn busy_source(ram: u64) -> FakeVm {
    let src = FakeVm::new(ram, true);
    let pages = ram / PAGE;
    fill(&src, (0..pages).step_by(8));
    src.writer(4, 0, 512, pages / 512);
    src
}

/// Checks everything a completed live migration promises.
fn check_completed(src: &FakeVm, dst: &FakeVm, out: &OutgoingMigration, inc: &IncomingMigration) {
    assert_eq!(
        out.status(),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    assert_eq!(
        inc.status(),
        MigrationStatus::Completed,
        "{:?}",
        inc.error()
    );
    src.wait_status(MigrationStatus::Completed);
    dst.wait_status(MigrationStatus::Completed);
    let s = src.rec();
    let d = dst.rec();
    // The source stays stopped (postmigrate); nothing wrote after the stop.
    assert!(!s.running);
    assert_eq!((s.stops, s.resumed), (1, 0));
    assert_eq!(s.finished, [true]);
    let at_stop = s.seq_at_stop.unwrap();
    assert_eq!(s.seq, at_stop);
    assert!(
        at_stop > 20,
        "the guest wrote only {at_stop} times while migrating"
    );
    assert!(!src.memory.dirty_enabled(DirtyClient::Migration));
    // The destination runs, with the device state as of the stop.
    assert!(d.running);
    let (desc, dev) = d.loaded.as_ref().expect("destination started");
    assert_eq!(dev.seq, at_stop);
    // Every pass announced, and counted alike on both sides.
    let passes = s
        .events
        .iter()
        .filter(|e| matches!(e, MigrationEvent::Pass(_)))
        .count();
    assert!(passes >= 2);
    assert_eq!(desc.ram_passes.len(), passes);
    let info = out.info();
    let ram = info.ram.clone().unwrap();
    assert_eq!(ram.dirty_sync_count, passes as u64);
    // Pages the guest wrote after pass 1 sent them went again.
    assert!(ram.duplicate + ram.normal > ram.total / PAGE, "{ram:?}");
    assert_eq!(
        s.events.first(),
        Some(&MigrationEvent::Status(MigrationStatus::Setup))
    );
    assert_eq!(
        s.events.last(),
        Some(&MigrationEvent::Status(MigrationStatus::Completed))
    );
    assert!(info.downtime_ms.is_some() && info.setup_time_ms.is_some());
    assert_eq!(inc.info().ram.unwrap().dirty_sync_count, passes as u64);
    drop((s, d));
    assert_same_ram(src, dst);
}

fn live(ram: u64, listen: &MigrationUri, connect: Option<&MigrationUri>) {
    let mut src = busy_source(ram);
    let mut dst = FakeVm::new(ram, false);
    let inc = listen_in(&mut dst, listen);
    let target = inc.address().or(connect).unwrap().clone();
    let out = start_out(&mut src, &target, &params(64 * MIB, 10));
    wait_out(&out);
    wait_in(&inc);
    check_completed(&src, &dst, &out, &inc);
}

#[test]
fn tcp_loopback_misses_no_write() {
    let listen = MigrationUri::parse("tcp:127.0.0.1:0").unwrap();
    let mut dst = FakeVm::new(64 * MIB, false);
    let inc = listen_in(&mut dst, &listen);
    // The port the system chose is reported.
    match inc.address() {
        Some(MigrationUri::Tcp { port, .. }) => assert_ne!(*port, 0),
        other => panic!("{other:?}"),
    }
    let mut src = busy_source(64 * MIB);
    let out = start_out(&mut src, inc.address().unwrap(), &params(64 * MIB, 10));
    wait_out(&out);
    wait_in(&inc);
    check_completed(&src, &dst, &out, &inc);
}

#[test]
fn unix_socket() {
    let dir = scratch("unix");
    live(16 * MIB, &MigrationUri::Unix(dir.join("m.sock")), None);
}

#[test]
fn exec_commands_joined_by_a_fifo() {
    let dir = scratch("exec");
    let fifo = dir.join("pipe");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let f = fifo.display();
    live(
        16 * MIB,
        &MigrationUri::Exec(format!("cat '{f}'")),
        Some(&MigrationUri::Exec(format!("cat > '{f}'"))),
    );
}

#[test]
fn file_then_incoming_from_the_file() {
    let dir = scratch("file");
    let path = dir.join("vm.state");
    let uri = MigrationUri::File(path.clone());
    let mut src = busy_source(16 * MIB);
    let out = start_out(&mut src, &uri, &params(64 * MIB, 10));
    assert_eq!(
        wait_out(&out),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    // Only the finished file is left.
    assert_eq!(files_in(&dir), ["vm.state"]);
    savevm::verify(std::fs::File::open(&path).unwrap()).unwrap();
    let mut dst = FakeVm::new(16 * MIB, false);
    let inc = listen_in(&mut dst, &uri);
    assert_eq!(inc.address(), None);
    wait_in(&inc);
    check_completed(&src, &dst, &out, &inc);
}

#[test]
fn handed_over_descriptors() {
    let (a, b) = UnixStream::pair().unwrap();
    let ram = 16 * MIB;
    let mut dst = FakeVm::new(ram, false);
    let mut slot_b = Some(OwnedFd::from(b));
    let (inc, link) = IncomingMigration::listen(
        &MigrationUri::Fd("in".into()),
        &mut |n| if n == "in" { slot_b.take() } else { None },
        IncomingSetup {
            config: config(ram),
            memory: dst.memory.clone(),
            waker: dst.waker(),
        },
    )
    .unwrap();
    dst.serve(link, None);
    let mut src = busy_source(ram);
    let mut slot_a = Some(OwnedFd::from(a));
    let (out, link) = OutgoingMigration::start(
        OutgoingSetup {
            uri: MigrationUri::Fd("out".into()),
            config: config(ram),
            memory: src.memory.clone(),
            params: params(64 * MIB, 10),
            waker: src.waker(),
        },
        &mut |n| if n == "out" { slot_a.take() } else { None },
    )
    .unwrap();
    let out = Arc::new(out);
    src.serve(link, None);
    wait_out(&out);
    wait_in(&inc);
    check_completed(&src, &dst, &out, &inc);
}

#[test]
fn an_unknown_descriptor_is_refused_at_once() {
    let src = FakeVm::new(MIB, true);
    let e = OutgoingMigration::start(
        OutgoingSetup {
            uri: MigrationUri::Fd("nope".into()),
            config: config(MIB),
            memory: src.memory.clone(),
            params: params(0, 300),
            waker: src.waker(),
        },
        &mut no_fds,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("getfd"), "{e}");
    let e = OutgoingMigration::start(
        OutgoingSetup {
            uri: MigrationUri::File("/dev/null".into()),
            config: config(2 * MIB),
            memory: src.memory.clone(),
            params: params(0, 300),
            waker: src.waker(),
        },
        &mut no_fds,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("RAM"), "{e}");
}
