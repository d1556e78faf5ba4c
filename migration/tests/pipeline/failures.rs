//! Failures on either side. The source then runs as before with the error kept for
//! `info migrate`; the destination never starts a guest from a stream that did not arrive
//! whole and verified.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use memory::DirtyClient;
use migration::{IncomingMigration, IncomingSetup, MigrationEvent, MigrationStatus, MigrationUri};
use savevm::Config;

use crate::fake_vm::{FakeVm, PAGE};
use crate::*;

fn assert_source_failed(vm: &FakeVm, out: &migration::OutgoingMigration, stops: u32) -> String {
    assert_eq!(out.status(), MigrationStatus::Failed);
    let info = out.info();
    let err = info.error_desc.clone().expect("error-desc");
    assert_eq!(out.error().as_deref(), Some(err.as_str()));
    assert!(info.to_json().contains("\"error-desc\""));
    vm.wait_status(MigrationStatus::Failed);
    let r = vm.rec();
    assert_eq!(r.finished, [false]);
    assert_eq!((r.stops, r.resumed), (stops, stops));
    assert!(r.running);
    assert_eq!(
        r.events.last(),
        Some(&MigrationEvent::Status(MigrationStatus::Failed))
    );
    assert!(!vm.memory.dirty_enabled(DirtyClient::Migration));
    err
}

#[test]
fn a_peer_that_hangs_up_mid_stream() {
    let mut src = FakeVm::new(64 * MIB, true);
    fill(&src, 0..8192);
    src.writer(4, 0, 64, 1);
    let peer = Peer::new(PeerMode::ReadThenClose(MIB));
    let out = start_out(&mut src, &peer.uri, &params(0, 300));
    wait_out(&out);
    let err = assert_source_failed(&src, &out, 0);
    assert!(err.contains("I/O error at stream offset"), "{err}");
}

#[test]
fn an_exec_command_that_fails() {
    let mut src = FakeVm::new(4 * MIB, true);
    fill(&src, 0..16);
    let out = start_out(
        &mut src,
        &MigrationUri::Exec("cat >/dev/null; exit 3".into()),
        &params(0, 300),
    );
    wait_out(&out);
    // The whole stream went out and the guest was stopped for it: it runs again.
    let err = assert_source_failed(&src, &out, 1);
    assert!(err.contains("exited with") && err.contains('3'), "{err}");
}

#[test]
fn a_guest_stopped_by_the_user_stays_stopped_after_a_failure() {
    let mut src = FakeVm::new(4 * MIB, false);
    let out = start_out(
        &mut src,
        &MigrationUri::Exec("cat >/dev/null; exit 1".into()),
        &params(0, 300),
    );
    assert_eq!(wait_out(&out), MigrationStatus::Failed);
    let r = src.rec();
    assert_eq!((r.stops, r.resumed), (1, 0));
    assert!(!r.running);
}

#[test]
fn an_unreachable_destination() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut src = FakeVm::new(4 * MIB, true);
    let out = start_out(
        &mut src,
        &MigrationUri::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        &params(0, 300),
    );
    wait_out(&out);
    let err = assert_source_failed(&src, &out, 0);
    assert!(err.contains("cannot connect"), "{err}");
}

/// A good stream of a 16 MiB guest, saved to a file.
fn saved_stream(dir: &Path) -> PathBuf {
    let path = dir.join("good.state");
    let mut src = FakeVm::new(16 * MIB, true);
    fill(&src, (0..4096).step_by(3));
    let out = start_out(&mut src, &MigrationUri::File(path.clone()), &params(0, 300));
    assert_eq!(
        wait_out(&out),
        MigrationStatus::Completed,
        "{:?}",
        out.error()
    );
    path
}

/// Receives `path` into a fresh guest configured as `config`; returns the error.
fn receive_file(uri: MigrationUri, config: Config, refuse: bool) -> (FakeVm, String) {
    let mut dst = FakeVm::new(config.ram_size, false);
    dst.knobs.refuse_load.store(refuse, Ordering::Relaxed);
    let (inc, link) = IncomingMigration::listen(
        &uri,
        &mut no_fds,
        IncomingSetup {
            config,
            memory: dst.memory.clone(),
            waker: dst.waker(),
        },
    )
    .unwrap();
    dst.serve(link, None);
    assert_eq!(wait_in(&inc), MigrationStatus::Failed);
    let info = inc.info();
    let err = info.error_desc.expect("error-desc");
    dst.wait_status(MigrationStatus::Failed);
    {
        let r = dst.rec();
        assert!(!r.running, "a guest was started from a bad stream");
        assert!(r.loaded.is_none());
        assert_eq!(
            r.events.last(),
            Some(&MigrationEvent::Status(MigrationStatus::Failed))
        );
    }
    (dst, err)
}

fn file(p: &Path) -> MigrationUri {
    MigrationUri::File(p.to_path_buf())
}

#[test]
fn a_truncated_stream_starts_nothing() {
    let dir = scratch("truncated");
    let good = std::fs::read(saved_stream(&dir)).unwrap();
    let cut = dir.join("cut.state");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let (dst, err) = receive_file(file(&cut), config(16 * MIB), false);
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(dst.rec().incoming_requests, 0);
}

#[test]
fn a_corrupted_stream_fails_its_checksum() {
    let dir = scratch("corrupt");
    let mut bytes = std::fs::read(saved_stream(&dir)).unwrap();
    // Inside a page of data: the records still parse, only the checksum can tell.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = dir.join("bad.state");
    std::fs::write(&bad, &bytes).unwrap();
    let (dst, err) = receive_file(file(&bad), config(16 * MIB), false);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(dst.rec().incoming_requests, 0);
}

#[test]
fn a_stream_for_another_machine_is_refused_before_loading() {
    let dir = scratch("mismatch");
    let good = saved_stream(&dir);
    let mut other = config(16 * MIB);
    other.cpu_model = "pentium-pro".into();
    let (dst, err) = receive_file(file(&good), other, false);
    assert!(
        err.contains("configuration mismatch") && err.contains("CPU model"),
        "{err}"
    );
    assert!(ram_is_zero(&dst), "RAM was loaded from a refused stream");
    let (dst, err) = receive_file(file(&good), config(32 * MIB), false);
    assert!(err.contains("RAM size"), "{err}");
    assert!(ram_is_zero(&dst));
    assert_eq!(dst.rec().incoming_requests, 0);
}

#[test]
fn devices_that_do_not_load_start_nothing() {
    let dir = scratch("refused");
    let good = saved_stream(&dir);
    let (dst, err) = receive_file(file(&good), config(16 * MIB), true);
    assert!(err.contains("the test refused the devices"), "{err}");
    assert_eq!(dst.rec().incoming_requests, 1);
    // The pages themselves did arrive.
    assert!(!dst.memory.ram().page_is_zero(3));
}

#[test]
fn an_incoming_command_that_fails_after_a_whole_stream() {
    let dir = scratch("exec-in");
    let good = saved_stream(&dir);
    let uri = MigrationUri::Exec(format!("cat '{}'; exit 3", good.display()));
    let (dst, err) = receive_file(uri, config(16 * MIB), false);
    assert!(err.contains("exited with"), "{err}");
    assert_eq!(dst.rec().incoming_requests, 0);
    assert!(dst.memory.ram_size() / PAGE > 0);
}
