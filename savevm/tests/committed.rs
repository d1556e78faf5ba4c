//! The committed version-1 snapshot (`testdata/snapshots/counter-v1.tern`): it verifies as it
//! is, and a change of any single byte anywhere in it is detected.

use savevm::verify;

fn committed() -> Vec<u8> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/snapshots/counter-v1.tern"
    );
    std::fs::read(p).expect("the committed snapshot")
}

#[test]
fn the_committed_snapshot_verifies() {
    let d = verify(&committed()[..]).expect("intact");
    assert_eq!(d.format_version, 1);
    assert!(d.checksum_ok && d.trailer_ok);
    assert!(d.sections.iter().any(|s| s.name == "cpu"));
}

#[test]
fn any_changed_byte_of_it_is_detected() {
    let good = committed();
    let mut bad = good.clone();
    for i in 0..good.len() {
        // A different value at each offset, never the original.
        bad[i] = good[i] ^ (1 << (i % 8));
        assert!(
            verify(&bad[..]).is_err(),
            "byte {i} of {} changed and the stream still verifies",
            good.len()
        );
        bad[i] = good[i];
    }
}
