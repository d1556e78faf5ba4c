//! The counters of `query-migrate` against what the stream really carried.

use migration::{MigrationEvent, MigrationStatus, MigrationUri};

use crate::fake_vm::{FakeVm, PAGE};
use crate::*;

#[test]
fn counts_match_the_stream() {
    const RAM: u64 = 64 * MIB;
    const DATA: u64 = 100;
    let mut src = FakeVm::new(RAM, true);
    fill(&src, (0..DATA).map(|i| 0x200 + i * 7));
    let mut dst = FakeVm::new(RAM, false);
    let inc = listen_in(&mut dst, &MigrationUri::parse("tcp:127.0.0.1:0").unwrap());
    let out = start_out(&mut src, inc.address().unwrap(), &params(0, 300));
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

    let info = out.info();
    let ram = info.ram.clone().unwrap();
    let pages = RAM / PAGE;
    // Pass 1 sends every page, the data ones with their contents; nothing was written
    // meanwhile, so the final pass is empty.
    assert_eq!(ram.total, RAM);
    assert_eq!(ram.normal, DATA);
    assert_eq!(ram.normal_bytes, DATA * PAGE);
    assert_eq!(ram.duplicate, pages - DATA);
    assert_eq!(ram.remaining, 0);
    assert_eq!(ram.page_size, PAGE);
    assert_eq!(ram.dirty_sync_count, 2);
    assert!(ram.transferred >= ram.normal_bytes, "{ram:?}");
    // ... and no more than the pages with their record headers, the zero runs and the
    // framing.
    assert!(ram.transferred < ram.normal_bytes + 64 * 1024, "{ram:?}");
    let (desc, _) = dst.rec().loaded.clone().unwrap();
    assert_eq!(desc.ram_passes.len(), 2);
    assert_eq!(desc.data_pages(), DATA);
    assert_eq!(desc.zero_pages(), pages - DATA);
    // The destination read exactly what the source wrote.
    assert_eq!(inc.info().ram.unwrap().transferred, ram.transferred);
    assert!(info.downtime_ms.is_some() && info.total_time_ms.is_some());
    assert_eq!(info.expected_downtime_ms, None);
    assert_eq!(info.error_desc, None);

    use MigrationStatus as S;
    src.wait_status(S::Completed);
    dst.wait_status(S::Completed);
    assert_eq!(
        src.rec().events,
        [
            MigrationEvent::Status(S::Setup),
            MigrationEvent::Status(S::Active),
            MigrationEvent::Pass(1),
            MigrationEvent::Status(S::Device),
            MigrationEvent::Pass(2),
            MigrationEvent::Status(S::Completed),
        ]
    );
    assert_eq!(
        dst.rec().events,
        [
            MigrationEvent::Status(S::Setup),
            MigrationEvent::Status(S::Active),
            MigrationEvent::Status(S::Completed),
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&info.to_json()).unwrap();
    assert_eq!(json["status"], "completed");
    assert_eq!(json["ram"]["duplicate"], pages - DATA);
    assert_eq!(json["ram"]["dirty-sync-count"], 2);
}

#[test]
fn info_while_active_shows_progress() {
    let mut src = FakeVm::new(16 * MIB, true);
    fill(&src, 0..2048);
    // 8 MiB at 8 MiB/s: about a second in pass 1.
    let peer = Peer::new(PeerMode::ReadThenClose(u64::MAX));
    let out = start_out(&mut src, &peer.uri, &params(8 * MIB, 300));
    wait_until("some progress", || {
        out.info().ram.is_some_and(|r| r.normal > 64)
    });
    let info = out.info();
    assert_eq!(info.status, MigrationStatus::Active);
    let ram = info.ram.clone().unwrap();
    assert!(ram.remaining > 0 && ram.remaining < 16 * MIB, "{ram:?}");
    assert_eq!(ram.dirty_sync_count, 1);
    assert!(info.setup_time_ms.is_some());
    assert_eq!(info.downtime_ms, None);
    let json: serde_json::Value = serde_json::from_str(&info.to_json()).unwrap();
    assert_eq!(json["status"], "active");
    assert!(json.get("downtime").is_none());
    out.cancel();
    assert_eq!(wait_out(&out), MigrationStatus::Cancelled);
}
