//! The conformance test every [`VmState`] implementation runs: one generic check, stamped
//! out per component in that component's tests, so a new device gets the same scrutiny
//! as the old ones by writing two states.

use crate::codec::{parse_subsections, Encoder};
use crate::error::Error;
use crate::format::{valid_name, Config};
use crate::reader::{SectionData, StreamReader};
use crate::state::{Loaders, VmState};
use crate::writer::StreamWriter;
use crate::DiscardRam;

/// The section body `state` saves to.
pub fn encode<T: VmState>(state: &T) -> Encoder {
    let mut e = Encoder::new();
    state.save(&mut e);
    e
}

/// The section body `state` saves to, as bytes.
pub fn save_bytes<T: VmState>(state: &T) -> Vec<u8> {
    encode(state).into_bytes()
}

/// Loads `section` into `target` through the same routing a stream uses.
pub fn load_section<T: VmState>(target: &mut T, section: &SectionData) -> Result<(), Error> {
    let mut loaders = Loaders::new();
    loaders.add(section.instance, target);
    loaders.load(std::slice::from_ref(section))
}

/// Loads the body `enc` (written at `T::VERSION`) into `target`.
pub fn load_encoded<T: VmState>(target: &mut T, enc: &Encoder) -> Result<(), Error> {
    let s = SectionData::from_encoder(T::NAME, 0, T::VERSION, enc)?;
    load_section(target, &s)
}

fn config() -> Config {
    Config {
        machine: "conformance".into(),
        ram_size: 0,
        cpu_model: "none".into(),
    }
}

/// Checks the properties every component's state must have, given two different valid
/// states `a` and `b` of it:
///
/// * save, load into a component holding the other state, save again: same bytes, both
///   directly and through a whole stream;
/// * a version outside `MIN_VERSION..=VERSION`, an unknown subsection, a field too many,
///   and the body cut at every length are refused, leaving the target as it was;
/// * every single-bit corruption of the body is either refused, leaving the target as it
///   was, or loaded such that saving gives back exactly the corrupted bytes (no state is
///   silently dropped or normalised).
///
/// # Panics
/// On the first property that does not hold: this is a test helper.
pub fn check_state<T: VmState + Clone>(a: &T, b: &T) {
    assert!(valid_name(T::NAME), "bad section name {:?}", T::NAME);
    assert!(T::MIN_VERSION <= T::VERSION);
    let enc_a = encode(a);
    let bytes_a = enc_a.as_bytes().to_vec();
    let bytes_b = save_bytes(b);
    assert_ne!(
        bytes_a,
        bytes_b,
        "{}: the two states must differ for the round trip to prove anything",
        T::NAME
    );
    let unchanged = |t: &T, what: &str| {
        assert_eq!(
            save_bytes(t),
            bytes_b,
            "{}: a refused load ({what}) changed the target",
            T::NAME
        );
    };

    // Round trip, directly.
    let mut t = b.clone();
    load_encoded(&mut t, &enc_a).unwrap_or_else(|e| panic!("{}: load: {e}", T::NAME));
    assert_eq!(
        save_bytes(&t),
        bytes_a,
        "{}: load then save differs",
        T::NAME
    );

    // Round trip through a whole stream.
    let mut w = StreamWriter::new(Vec::new(), &config(), 0).unwrap();
    w.put_section(3, a).unwrap();
    let (stream, desc) = w.finish().unwrap();
    assert_eq!(desc.sections[0].size as usize, bytes_a.len());
    let mut r = StreamReader::new(stream.as_slice(), &config()).unwrap();
    let v = r.read_all(&mut DiscardRam).unwrap();
    let mut t = b.clone();
    let mut loaders = Loaders::new();
    loaders.add(3, &mut t);
    v.load_into(&mut loaders)
        .unwrap_or_else(|e| panic!("{}: stream load: {e}", T::NAME));
    assert_eq!(
        save_bytes(&t),
        bytes_a,
        "{}: stream round trip differs",
        T::NAME
    );

    // Versions the loader does not accept.
    let mut bad_versions = vec![T::VERSION + 1];
    if T::MIN_VERSION > 0 {
        bad_versions.push(T::MIN_VERSION - 1);
    }
    for version in bad_versions {
        let s = SectionData::from_encoder(T::NAME, 0, version, &enc_a).unwrap();
        let mut t = b.clone();
        let r = load_section(&mut t, &s);
        assert!(
            matches!(r, Err(Error::SectionVersion { .. })),
            "{}: version {version}: {r:?}",
            T::NAME
        );
        unchanged(&t, "bad version");
    }

    // A subsection the loader does not know.
    let mut e = encode(a);
    e.subsection("zz-unknown", 1, |s| s.u8(0));
    let mut t = b.clone();
    match load_encoded(&mut t, &e) {
        Err(Error::UnknownSubsection {
            section,
            subsection,
        }) => {
            assert_eq!(section, T::NAME);
            assert_eq!(subsection, "zz-unknown");
        }
        other => panic!("{}: unknown subsection: {other:?}", T::NAME),
    }
    unchanged(&t, "unknown subsection");

    // A field more than the version has.
    let fields = enc_a.fields_len();
    let mut longer = bytes_a[..fields].to_vec();
    longer.push(0);
    longer.extend_from_slice(&bytes_a[fields..]);
    let s = SectionData::from_parts(T::NAME, 0, T::VERSION, longer, fields as u32 + 1).unwrap();
    let mut t = b.clone();
    let r = load_section(&mut t, &s);
    assert!(
        matches!(r, Err(Error::TrailingFields { .. })),
        "{}: extra field: {r:?}",
        T::NAME
    );
    unchanged(&t, "extra field");

    // The fields cut short anywhere.
    for n in 0..fields {
        let mut c = bytes_a[..n].to_vec();
        c.extend_from_slice(&bytes_a[fields..]);
        let s = SectionData::from_parts(T::NAME, 0, T::VERSION, c, n as u32).unwrap();
        let mut t = b.clone();
        let r = load_section(&mut t, &s);
        assert!(r.is_err(), "{}: fields cut at {n} loaded", T::NAME);
        unchanged(&t, "truncated fields");
    }

    // Each subsection's fields cut short anywhere, with its framing kept intact.
    let subs = parse_subsections(&bytes_a[fields..], fields).unwrap();
    for (i, sub) in subs.iter().enumerate() {
        for m in 0..sub.range.len() {
            let mut c = bytes_a[..fields].to_vec();
            for (k, other) in subs.iter().enumerate() {
                let body = &bytes_a[other.range.clone()];
                let body = if k == i { &body[..m] } else { body };
                c.extend_from_slice(&(other.name.len() as u32).to_le_bytes());
                c.extend_from_slice(other.name.as_bytes());
                c.extend_from_slice(&other.version.to_le_bytes());
                c.extend_from_slice(&(body.len() as u32).to_le_bytes());
                c.extend_from_slice(body);
            }
            let s = SectionData::from_parts(T::NAME, 0, T::VERSION, c, fields as u32).unwrap();
            let mut t = b.clone();
            let r = load_section(&mut t, &s);
            assert!(
                r.is_err(),
                "{}: subsection {} cut at {m} loaded",
                T::NAME,
                sub.name
            );
            unchanged(&t, "truncated subsection");
        }
    }

    // Every single-bit corruption.
    for bit in 0..bytes_a.len() * 8 {
        let mut c = bytes_a.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        let Ok(s) = SectionData::from_parts(T::NAME, 0, T::VERSION, c.clone(), fields as u32)
        else {
            continue;
        };
        let mut t = b.clone();
        match load_section(&mut t, &s) {
            Err(_) => unchanged(&t, "bit flip"),
            Ok(()) => assert_eq!(
                save_bytes(&t),
                c,
                "{}: bit {bit} flipped loads but does not save back the same",
                T::NAME
            ),
        }
    }
}
