//! Whole-stream tests: golden bytes, round trips with several sections, subsections and
//! RAM passes, and every way a stream can be damaged.

use std::io::{self, Read};

use savevm::*;

/// A device with a FIFO that goes in a subsection only when it holds data.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dev {
    reg: u32,
    label: String,
    fifo: Vec<u8>,
}

impl VmState for Dev {
    const NAME: &'static str = "dev";
    const VERSION: u32 = 2;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u32(self.reg);
        enc.str(&self.label, 16);
        if !self.fifo.is_empty() {
            enc.subsection("fifo", 1, |s| s.bytes(&self.fifo, 16));
        }
    }

    fn load(&mut self, dec: &mut Decoder<'_>, version: u32) -> Result<()> {
        let reg = dec.u32("reg")?;
        // Version 1 had no label.
        let label = if version >= 2 {
            dec.str("label", 16)?
        } else {
            String::new()
        };
        let fifo = dec
            .subsection("fifo", 1..=1, |s, _| s.bytes("fifo", 16))?
            .unwrap_or_default();
        dec.finish()?;
        *self = Dev { reg, label, fifo };
        Ok(())
    }
}

/// A device whose state has an invalid range, checked on load.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Timer {
    mode: u8,
    ticks: u64,
}

impl VmState for Timer {
    const NAME: &'static str = "timer";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u8(self.mode);
        enc.u64(self.ticks);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> Result<()> {
        let mode = dec.u8_max("mode", 5)?;
        let ticks = dec.u64("ticks")?;
        dec.finish()?;
        *self = Timer { mode, ticks };
        Ok(())
    }
}

fn dev(reg: u32, label: &str, fifo: &[u8]) -> Dev {
    Dev {
        reg,
        label: label.into(),
        fifo: fifo.to_vec(),
    }
}

const PAGES: u64 = 40;

fn config() -> Config {
    Config {
        machine: "pc".into(),
        ram_size: PAGES * PAGE_SIZE as u64,
        cpu_model: "pentium-pro".into(),
    }
}

/// RAM with a recognisable pattern on some pages and zero elsewhere.
fn ram_pass1() -> Vec<u8> {
    let mut ram = vec![0u8; PAGES as usize * PAGE_SIZE];
    for p in [1usize, 2, 3, 10, 30, 31, 39] {
        for (i, b) in ram[p * PAGE_SIZE..(p + 1) * PAGE_SIZE]
            .iter_mut()
            .enumerate()
        {
            *b = (p * 7 + i) as u8 | 1;
        }
    }
    ram
}

struct Written {
    stream: Vec<u8>,
    ram_final: Vec<u8>,
    desc: Description,
}

/// A stream as a migration writes it: all RAM, then the pages dirtied meanwhile (one of
/// which became zero), then the devices.
fn write_stream() -> Written {
    let mut ram = ram_pass1();
    let mut w = StreamWriter::new(Vec::new(), &config(), FLAG_LIVE).unwrap();
    w.put_section(0, &dev(0x11, "early", &[])).unwrap();
    assert_eq!(w.begin_ram_pass().unwrap(), 1);
    w.put_ram(ram.as_mut_slice(), 0..PAGES).unwrap();
    // The guest runs on: page 2 is cleared, page 5 and 6 written.
    ram[2 * PAGE_SIZE..3 * PAGE_SIZE].fill(0);
    ram[5 * PAGE_SIZE + 100] = 0xAA;
    ram[6 * PAGE_SIZE] = 0x55;
    assert_eq!(w.begin_ram_pass().unwrap(), 2);
    w.put_ram_ranges(ram.as_mut_slice(), [2..3, 5..7]).unwrap();
    w.put_section(1, &dev(0x22, "com2", b"queued")).unwrap();
    w.put_section(
        0,
        &Timer {
            mode: 3,
            ticks: 1 << 40,
        },
    )
    .unwrap();
    let (stream, desc) = w.finish().unwrap();
    Written {
        stream,
        ram_final: ram,
        desc,
    }
}

#[test]
fn round_trip_with_sections_subsections_and_two_ram_passes() {
    let Written {
        stream,
        ram_final,
        desc,
    } = write_stream();

    // RAM as the destination starts it: garbage that the stream must overwrite.
    let mut ram = vec![0xEEu8; PAGES as usize * PAGE_SIZE];
    let mut r = StreamReader::new(stream.as_slice(), &config()).unwrap();
    let v = r.read_all(ram.as_mut_slice()).unwrap();
    r.expect_eof().unwrap();
    assert!(ram == ram_final, "RAM differs after two passes");
    assert_eq!(v.description, desc);

    let mut d0 = dev(0, "", b"old");
    let mut d1 = dev(0, "", &[]);
    let mut t = Timer { mode: 0, ticks: 0 };
    let mut loaders = Loaders::new();
    loaders.add(0, &mut d0).add(1, &mut d1).add(0, &mut t);
    v.load_into(&mut loaders).unwrap();
    assert_eq!(
        d0,
        dev(0x11, "early", &[]),
        "an absent subsection clears the FIFO"
    );
    assert_eq!(d1, dev(0x22, "com2", b"queued"));
    assert_eq!(
        t,
        Timer {
            mode: 3,
            ticks: 1 << 40
        }
    );

    // The description the writer returned.
    assert_eq!(desc.flags, FLAG_LIVE);
    assert_eq!(desc.sections.len(), 3);
    assert_eq!(desc.sections[1].subsections[0].name, "fifo");
    assert_eq!(desc.sections[1].subsections[0].size, 4 + 6);
    assert_eq!(desc.ram_passes.len(), 2);
    assert_eq!(desc.ram_passes[0].data_pages, 7);
    assert_eq!(desc.ram_passes[0].zero_pages, PAGES - 7);
    assert_eq!(desc.ram_passes[1].zero_pages, 1);
    assert_eq!(desc.ram_passes[1].data_pages, 2);
    assert_eq!(desc.ram_pages(), PAGES + 3);
    assert_eq!(
        desc.stream_len,
        stream.len() as u64 - 4 - 4 - desc.to_json().len() as u64 - 4
    );
}

#[test]
fn trailer_is_json_that_describes_the_stream() {
    let Written { stream, desc, .. } = write_stream();
    let json = desc.to_json();
    let tail = &stream[stream.len() - 4 - json.len()..stream.len() - 4];
    assert_eq!(tail, json.as_bytes());
    let v: serde_json::Value = serde_json::from_slice(tail).unwrap();
    assert_eq!(v["format"], "tern-vmstate");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["config"]["machine"], "pc");
    assert_eq!(v["config"]["ram_size"], PAGES * PAGE_SIZE as u64);
    assert_eq!(v["sections"][1]["name"], "dev");
    assert_eq!(v["sections"][1]["instance"], 1);
    assert_eq!(v["sections"][1]["version"], 2);
    assert_eq!(v["sections"][1]["subsections"][0]["name"], "fifo");
    assert_eq!(v["sections"][2]["name"], "timer");
    assert_eq!(v["sections"][2]["size"], 9);
    assert_eq!(v["ram"]["passes"][1]["pages"], 3);
    assert_eq!(v["ram"]["pages"], PAGES + 3);
    assert_eq!(v["ram"]["data_pages"], 9);
    assert_eq!(v["stream_len"], desc.stream_len);
    assert_eq!(
        v["checksum"]["value"],
        format!("{:08x}", desc.checksum).as_str()
    );
}

#[test]
fn inspect_and_verify() {
    let Written { stream, desc, .. } = write_stream();
    let d = inspect(stream.as_slice()).unwrap();
    assert!(d.checksum_ok && d.trailer_ok);
    assert_eq!(d, desc);
    assert_eq!(verify(stream.as_slice()).unwrap(), desc);

    // Damage in RAM data: the structure is intact, the checksum is not.
    let mut bad = stream.clone();
    let page_byte = stream.len() / 3;
    bad[page_byte] ^= 0x10;
    let d = inspect(bad.as_slice()).unwrap();
    assert!(!d.checksum_ok);
    assert!(d.trailer_ok, "the trailer itself is intact");
    assert!(matches!(
        verify(bad.as_slice()),
        Err(Error::ChecksumMismatch { .. })
    ));

    // Damage in the JSON: the stream checks out, its description does not.
    let mut bad = stream.clone();
    let n = bad.len();
    bad[n - 10] ^= 0x01;
    let d = inspect(bad.as_slice()).unwrap();
    assert!(d.checksum_ok);
    assert!(!d.trailer_ok);
    assert!(matches!(
        verify(bad.as_slice()),
        Err(Error::TrailerMismatch { .. })
    ));

    // A file holds one stream and nothing after it.
    let mut longer = stream.clone();
    longer.push(0);
    assert!(matches!(
        verify(longer.as_slice()),
        Err(Error::TrailingGarbage { .. })
    ));
}

#[test]
fn a_socket_reader_stops_after_the_trailer() {
    let Written { stream, .. } = write_stream();
    let mut more = stream.clone();
    more.extend_from_slice(b"next");
    let mut r = StreamReader::new(more.as_slice(), &config()).unwrap();
    r.read_all(&mut DiscardRam).unwrap();
    let rest = r.into_inner();
    assert_eq!(rest, b"next");
}

/// Hands out one byte per read, like a slow socket.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

#[test]
fn reads_from_a_byte_at_a_time_stream() {
    let Written {
        stream, ram_final, ..
    } = write_stream();
    let mut ram = vec![0u8; PAGES as usize * PAGE_SIZE];
    let mut r = StreamReader::new(Trickle(&stream), &config()).unwrap();
    r.read_all(ram.as_mut_slice()).unwrap();
    r.expect_eof().unwrap();
    assert!(ram == ram_final);
}

/// Counts how far a reader got.
struct Counting<'a> {
    data: &'a [u8],
    consumed: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.consumed);
        buf[..n].copy_from_slice(&self.data[self.consumed..self.consumed + n]);
        self.consumed += n;
        Ok(n)
    }
}

#[test]
fn config_mismatch_is_refused_before_any_record() {
    let Written { stream, .. } = write_stream();
    let header_and_config = 16 + 4 + (4 + 2) + 8 + (4 + 11);
    for (field, other) in [
        (
            "machine type",
            Config {
                machine: "q35".into(),
                ..config()
            },
        ),
        (
            "RAM size",
            Config {
                ram_size: 2 * PAGES * PAGE_SIZE as u64,
                ..config()
            },
        ),
        (
            "CPU model",
            Config {
                cpu_model: "486".into(),
                ..config()
            },
        ),
    ] {
        let mut input = Counting {
            data: &stream,
            consumed: 0,
        };
        match StreamReader::new(&mut input, &other) {
            Err(Error::ConfigMismatch { field: f, .. }) => assert_eq!(f, field),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("{field}: mismatch accepted"),
        }
        assert_eq!(
            input.consumed, header_and_config,
            "nothing past the config is read"
        );
    }
}

#[test]
fn a_bad_checksum_means_nothing_is_loaded() {
    let Written { stream, .. } = write_stream();
    // Damage in the last section's body: its bytes still decode to a valid state.
    let mut bad = stream.clone();
    let json_len = write_stream().desc.to_json().len();
    let ticks_byte = stream.len() - 4 - json_len - 4 - 4 - 1 - 2;
    bad[ticks_byte] ^= 0x01;
    let mut d0 = dev(9, "keep", &[]);
    let mut d1 = dev(9, "keep", &[]);
    let mut t = Timer { mode: 1, ticks: 1 };
    let res = StreamReader::new(bad.as_slice(), &config()).and_then(|mut r| {
        let v = r.read_all(&mut DiscardRam)?;
        let mut l = Loaders::new();
        l.add(0, &mut d0).add(1, &mut d1).add(0, &mut t);
        v.load_into(&mut l)
    });
    assert!(
        matches!(res, Err(Error::ChecksumMismatch { .. })),
        "{res:?}"
    );
    assert_eq!(t, Timer { mode: 1, ticks: 1 });
    assert_eq!(d0, dev(9, "keep", &[]));

    // The same damage with the checksum patched up loads: the section was valid.
    let crc_at = stream.len() - 4 - json_len - 4 - 4;
    let fixed = crc32_ieee(&bad[..crc_at]);
    bad[crc_at..crc_at + 4].copy_from_slice(&fixed.to_le_bytes());
    let d = inspect(bad.as_slice()).unwrap();
    assert!(d.checksum_ok, "patched checksum");
    assert!(!d.trailer_ok, "the trailer still names the old checksum");
}

/// Bitwise CRC-32 (IEEE 802.3, reflected, as zlib), written out independently of the
/// crate under test.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn sections_and_loaders_must_match_one_to_one() {
    let Written { stream, .. } = write_stream();
    let v = StreamReader::new(stream.as_slice(), &config())
        .unwrap()
        .read_all(&mut DiscardRam)
        .unwrap();

    // A stream section with no component: refused before anything loads.
    let mut d0 = dev(0, "x", &[]);
    let mut t = Timer { mode: 1, ticks: 1 };
    let mut loaders = Loaders::new();
    loaders.add(0, &mut d0).add(0, &mut t);
    match v.load_into(&mut loaders) {
        Err(Error::UnknownSection { name, instance }) => {
            assert_eq!((name.as_str(), instance), ("dev", 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d0, dev(0, "x", &[]));
    assert_eq!(t, Timer { mode: 1, ticks: 1 });

    // A component with no section.
    let mut d0 = dev(0, "x", &[]);
    let mut d1 = dev(0, "x", &[]);
    let mut d2 = dev(0, "x", &[]);
    let mut t = Timer { mode: 1, ticks: 1 };
    let mut loaders = Loaders::new();
    loaders
        .add(0, &mut d0)
        .add(1, &mut d1)
        .add(2, &mut d2)
        .add(0, &mut t);
    match v.load_into(&mut loaders) {
        Err(Error::MissingSection { name, instance }) => {
            assert_eq!((name.as_str(), instance), ("dev", 2))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d0, dev(0, "x", &[]));
}

#[test]
fn old_section_versions_load() {
    // Version 1 of `dev` had only `reg`.
    let mut e = Encoder::new();
    e.u32(7);
    let s = SectionData::from_encoder("dev", 0, 1, &e).unwrap();
    let mut d = dev(1, "y", b"z");
    testing::load_section(&mut d, &s).unwrap();
    assert_eq!(d, dev(7, "", &[]));
}

#[test]
fn writer_refuses_misuse() {
    let mut ram = vec![0u8; PAGES as usize * PAGE_SIZE];
    let mut w = StreamWriter::new(Vec::new(), &config(), 0).unwrap();
    assert!(matches!(
        w.put_ram(ram.as_mut_slice(), 0..1),
        Err(Error::Usage(_))
    ));
    w.begin_ram_pass().unwrap();
    assert!(matches!(
        w.put_ram(ram.as_mut_slice(), 0..PAGES + 1),
        Err(Error::Usage(_))
    ));
    w.put_section(0, &Timer { mode: 0, ticks: 0 }).unwrap();
    assert!(matches!(
        w.put_section(0, &Timer { mode: 0, ticks: 0 }),
        Err(Error::DuplicateSection { .. })
    ));
    assert!(StreamWriter::new(Vec::new(), &config(), 0x8000).is_err());
    let odd = Config {
        ram_size: 100,
        ..config()
    };
    assert!(StreamWriter::new(Vec::new(), &odd, 0).is_err());
}

#[test]
fn data_runs_are_split_at_the_limit() {
    let pages = 600u64;
    let cfg = Config {
        ram_size: pages * PAGE_SIZE as u64,
        ..config()
    };
    let mut ram = vec![1u8; pages as usize * PAGE_SIZE];
    let mut w = StreamWriter::new(Vec::new(), &cfg, 0).unwrap();
    w.begin_ram_pass().unwrap();
    w.put_ram(ram.as_mut_slice(), 0..pages).unwrap();
    let (stream, _) = w.finish().unwrap();
    let mut r = StreamReader::new(stream.as_slice(), &cfg).unwrap();
    let mut runs = Vec::new();
    loop {
        match r.next_record(&mut DiscardRam).unwrap() {
            Record::RamData { first, count } => runs.push((first, count)),
            Record::End => break,
            _ => {}
        }
    }
    assert_eq!(runs, [(0, 256), (256, 256), (512, 88)]);
    r.finish().unwrap();
}

/// A flat image whose owner knows some pages are zero without looking.
struct Hinted<'a> {
    image: &'a mut [u8],
    known: std::ops::Range<u64>,
    reads: Vec<u64>,
}

impl PageSource for Hinted<'_> {
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> io::Result<()> {
        self.reads.push(page);
        self.image.read_page(page, out)
    }

    fn known_zero(&mut self, first: u64, end: u64) -> u64 {
        if self.known.contains(&first) {
            self.known.end.min(end) - first
        } else {
            0
        }
    }
}

#[test]
fn pages_known_to_be_zero_are_not_read_and_join_zero_runs() {
    let pages = 40u64;
    let cfg = Config {
        ram_size: pages * PAGE_SIZE as u64,
        ..config()
    };
    let mut image = vec![0u8; pages as usize * PAGE_SIZE];
    for p in [2u64, 3, 30] {
        image[p as usize * PAGE_SIZE] = p as u8;
    }
    let mut src = Hinted {
        image: image.as_mut_slice(),
        known: 10..25,
        reads: Vec::new(),
    };
    let mut w = StreamWriter::new(Vec::new(), &cfg, 0).unwrap();
    w.begin_ram_pass().unwrap();
    w.put_ram(&mut src, 0..pages).unwrap();
    let (stream, desc) = w.finish().unwrap();
    assert!(
        src.reads.iter().all(|p| !(10..25).contains(p)),
        "{:?}",
        src.reads
    );
    assert_eq!(src.reads.len(), 25);
    assert_eq!((desc.data_pages(), desc.zero_pages()), (3, 37));
    let mut r = StreamReader::new(stream.as_slice(), &cfg).unwrap();
    let mut runs = Vec::new();
    loop {
        match r.next_record(&mut DiscardRam).unwrap() {
            Record::RamData { first, count } => runs.push(('d', first, count)),
            Record::RamZero { first, count } => runs.push(('z', first, count)),
            Record::End => break,
            _ => {}
        }
    }
    // The read zero pages 4..10, the known ones 10..25 and the read ones 25..30 make
    // one run.
    assert_eq!(
        runs,
        [
            ('z', 0, 2),
            ('d', 2, 2),
            ('z', 4, 26),
            ('d', 30, 1),
            ('z', 31, 9)
        ]
    );
    let mut back = vec![7u8; pages as usize * PAGE_SIZE];
    StreamReader::new(stream.as_slice(), &cfg)
        .unwrap()
        .read_all(back.as_mut_slice())
        .unwrap();
    assert!(back == image);
}

// ---------------------------------------------------------------------------------------
// Golden bytes and damage

/// The smallest interesting stream: one section, one pass with a zero run and a data
/// page, RAM of two pages.
fn small_stream() -> Vec<u8> {
    let cfg = Config {
        machine: "pc".into(),
        ram_size: 2 * PAGE_SIZE as u64,
        cpu_model: "p6".into(),
    };
    let mut ram = vec![0u8; 2 * PAGE_SIZE];
    ram[PAGE_SIZE..].fill(0x5A);
    let mut w = StreamWriter::new(Vec::new(), &cfg, 0).unwrap();
    w.put_section(
        0,
        &Timer {
            mode: 2,
            ticks: 0x0102,
        },
    )
    .unwrap();
    w.begin_ram_pass().unwrap();
    w.put_ram(ram.as_mut_slice(), 0..2).unwrap();
    w.finish().unwrap().0
}

fn small_config() -> Config {
    Config {
        machine: "pc".into(),
        ram_size: 2 * PAGE_SIZE as u64,
        cpu_model: "p6".into(),
    }
}

#[test]
fn golden_stream() {
    let s = small_stream();
    #[rustfmt::skip]
    let head: &[u8] = &[
        // header: magic, format version 1, flags 0
        0x7F, b'T', b'E', b'R', b'N', b'V', b'M', b'\n',
        1, 0, 0, 0,
        0, 0, 0, 0,
        // config: length 20, "pc", 8192, "p6"
        20, 0, 0, 0,
        2, 0, 0, 0, b'p', b'c',
        0x00, 0x20, 0, 0, 0, 0, 0, 0,
        2, 0, 0, 0, b'p', b'6',
        // SECTION "timer" instance 0 version 1, 9 bytes, all fields
        0x01,
        5, 0, 0, 0, b't', b'i', b'm', b'e', b'r',
        0, 0, 0, 0,
        1, 0, 0, 0,
        9, 0, 0, 0,
        9, 0, 0, 0,
        2, 0x02, 0x01, 0, 0, 0, 0, 0, 0,
        // RAM_PASS 1
        0x02, 1, 0, 0, 0,
        // RAM_ZERO page 0, 1 page
        0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        // RAM_DATA page 1, 1 page, then 4096 bytes
        0x04, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    ];
    assert_eq!(&s[..head.len()], head);
    let page_end = head.len() + PAGE_SIZE;
    assert!(s[head.len()..page_end].iter().all(|&b| b == 0x5A));
    assert_eq!(s[page_end], 0xFF, "END");
    // CRC-32 (IEEE, as zlib computes it) of the 4,203 bytes before the footer, computed
    // independently of this crate.
    assert_eq!(page_end + 1, 4203);
    let crc = u32::from_le_bytes(s[page_end + 1..page_end + 5].try_into().unwrap());
    assert_eq!(crc, GOLDEN_CRC, "{crc:#010x}");
    let json_len = u32::from_le_bytes(s[page_end + 5..page_end + 9].try_into().unwrap()) as usize;
    let json = std::str::from_utf8(&s[page_end + 9..page_end + 9 + json_len]).unwrap();
    assert_eq!(
        json,
        format!(
            concat!(
                r#"{{"format":"tern-vmstate","format_version":1,"flags":0,"#,
                r#""config":{{"machine":"pc","ram_size":8192,"cpu_model":"p6"}},"#,
                r#""sections":[{{"name":"timer","instance":0,"version":1,"size":9,"subsections":[]}}],"#,
                r#""ram":{{"passes":[{{"pass":1,"pages":2,"zero_pages":1,"data_pages":1}}],"#,
                r#""pages":2,"zero_pages":1,"data_pages":1}},"#,
                r#""stream_len":4203,"checksum":{{"algorithm":"crc32","value":"{:08x}"}}}}"#
            ),
            GOLDEN_CRC
        )
    );
    assert_eq!(s.len(), page_end + 9 + json_len + 4);
}

const GOLDEN_CRC: u32 = 0x3833_bbda;

#[test]
fn truncation_at_every_offset_is_an_error() {
    let s = small_stream();
    for n in 0..s.len() {
        let cut = &s[..n];
        let r = verify(cut);
        assert!(r.is_err(), "verify accepted a stream cut at {n}");
        let r =
            StreamReader::new(cut, &small_config()).and_then(|mut r| r.read_all(&mut DiscardRam));
        assert!(
            matches!(r, Err(Error::Truncated { .. })),
            "cut at {n}: {r:?}"
        );
    }
}

#[test]
fn every_flipped_bit_is_detected() {
    let s = small_stream();
    let mut ram = vec![0u8; 2 * PAGE_SIZE];
    for bit in 0..s.len() * 8 {
        let mut c = s.clone();
        c[bit / 8] ^= 1 << (bit % 8);
        assert!(
            verify(c.as_slice()).is_err(),
            "bit {bit} flipped passed verify"
        );
        let mut t = Timer { mode: 0, ticks: 0 };
        let r = StreamReader::new(c.as_slice(), &small_config()).and_then(|mut r| {
            let v = r.read_all(ram.as_mut_slice())?;
            r.expect_eof()?;
            let mut l = Loaders::new();
            l.add(0, &mut t);
            v.load_into(&mut l)
        });
        assert!(r.is_err(), "bit {bit} flipped loaded");
        assert_eq!(
            t,
            Timer { mode: 0, ticks: 0 },
            "bit {bit}: loaded before verification"
        );
    }
}

/// `s` with the bytes at `at` replaced by `v`. The walks below stop at the end marker, so
/// the stale checksum does not hide the structural error under test.
fn patch(s: &[u8], at: usize, v: &[u8]) -> Vec<u8> {
    let mut c = s.to_vec();
    c[at..at + v.len()].copy_from_slice(v);
    c
}

#[test]
fn structural_errors() {
    let s = small_stream();
    let first = |c: &[u8]| StreamReader::open_unchecked(c).err();
    assert!(matches!(
        first(&patch(&s, 0, b"X")),
        Some(Error::BadMagic { .. })
    ));
    assert!(matches!(
        first(&patch(&s, 8, &[2])),
        Some(Error::UnsupportedVersion { found: 2, .. })
    ));
    assert!(matches!(
        first(&patch(&s, 12, &[0, 1])),
        Some(Error::UnknownFlags { unknown: 0x100, .. })
    ));
    assert!(matches!(
        first(&patch(&s, 16, &[0xFF, 0xFF])),
        Some(Error::TooLong { .. })
    ));

    let walk = |c: &[u8]| -> Result<()> {
        let mut r = StreamReader::open_unchecked(c)?;
        while !matches!(r.next_record(&mut DiscardRam)?, Record::End) {}
        Ok(())
    };
    let sec = 40; // the SECTION tag
    assert!(walk(&s).is_ok());
    // Section name too long, not a valid name.
    assert!(matches!(
        walk(&patch(&s, sec + 1, &[0xFF])),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, sec + 5, b"T")),
        Err(Error::Malformed { .. })
    ));
    // Section body beyond the cap, longer than the stream, fields beyond the body.
    assert!(matches!(
        walk(&patch(&s, sec + 18, &[0, 0, 0, 0x7F])),
        Err(Error::TooLong { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, sec + 18, &[0, 0, 0xF0, 0])),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, sec + 22, &[10])),
        Err(Error::Malformed { .. })
    ));
    let pass = sec + 35;
    // Pass out of order, unknown tag, RAM before any pass.
    assert!(matches!(
        walk(&patch(&s, pass + 1, &[2])),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, pass, &[0x09])),
        Err(Error::Malformed { .. })
    ));
    let zero = pass + 5;
    let mut no_pass = s[..pass].to_vec();
    no_pass.extend_from_slice(&s[zero..]);
    assert!(matches!(walk(&no_pass), Err(Error::Malformed { .. })));
    // Zero run of 0 pages, runs beyond RAM, data run over the limit.
    assert!(matches!(
        walk(&patch(&s, zero + 9, &[0])),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, zero + 9, &[3])),
        Err(Error::RamOutOfRange { .. })
    ));
    assert!(matches!(
        walk(&patch(&s, zero + 1, &[0xFF; 8])),
        Err(Error::RamOutOfRange { .. })
    ));
    let data = zero + 13;
    assert!(matches!(
        walk(&patch(&s, data + 9, &[1, 1])),
        Err(Error::Malformed { .. })
    ));
    // A duplicated section.
    let section = &s[sec..pass];
    let mut dup = s[..pass].to_vec();
    dup.extend_from_slice(section);
    dup.extend_from_slice(&s[pass..]);
    assert!(matches!(walk(&dup), Err(Error::DuplicateSection { .. })));
}

// ---------------------------------------------------------------------------------------
// Random damage

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, s: &mut Vec<u8>) {
    let len = s.len();
    match rng.below(6) {
        0 => {
            let i = rng.below(len);
            s[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(len);
            s[i] = rng.next() as u8;
        }
        2 => s.truncate(rng.below(len)),
        3 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(8);
            for _ in 0..n {
                s.insert(i, rng.next() as u8);
            }
        }
        4 => {
            let i = rng.below(len);
            let n = 1 + rng.below(16).min(len - i - 1);
            s.drain(i..i + n);
        }
        _ => {
            // Overwrite a length-sized word with something large.
            let i = rng.below(len.saturating_sub(4));
            s[i..i + 4].copy_from_slice(&(rng.next() as u32 | 0x0100_0000).to_le_bytes());
        }
    }
}

#[test]
fn random_mutations_never_panic_or_pass() {
    let originals = [small_stream(), write_stream().stream];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut ram = vec![0u8; PAGES as usize * PAGE_SIZE];
    for round in 0..3000 {
        let orig = &originals[round % 2];
        let mut s = orig.clone();
        for _ in 0..1 + rng.below(3) {
            if s.len() > 1 {
                mutate(&mut rng, &mut s);
            }
        }
        let changed = s != *orig;
        let v = verify(s.as_slice());
        if changed {
            assert!(v.is_err(), "round {round}: mutated stream verified");
        }
        let _ = inspect(s.as_slice());
        let mut r = match StreamReader::open_unchecked(s.as_slice()) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let loaded = r.read_all(ram.as_mut_slice()).and_then(|v| {
            r.expect_eof()?;
            let mut d = [dev(0, "", &[]), dev(0, "", &[])];
            let mut t = Timer { mode: 0, ticks: 0 };
            let mut l = Loaders::new();
            let [d0, d1] = &mut d;
            l.add(0, d0).add(1, d1).add(0, &mut t);
            v.load_into(&mut l)
        });
        if changed {
            assert!(loaded.is_err(), "round {round}: mutated stream loaded");
        }
    }
}

#[test]
fn conformance_of_the_test_devices() {
    testing::check_state(&dev(1, "a", b"xyz"), &dev(2, "bb", &[]));
    testing::check_state(&dev(1, "", &[]), &dev(2, "bb", b"q"));
    testing::check_state(&Timer { mode: 5, ticks: 9 }, &Timer { mode: 0, ticks: 1 });
}

#[test]
fn flush_pushes_gathered_pages_through_a_buffered_writer() {
    let mut buf = io::BufWriter::with_capacity(1 << 20, Vec::new());
    let mut w = StreamWriter::new(&mut buf, &config(), FLAG_LIVE).unwrap();
    w.begin_ram_pass().unwrap();
    let ram = ram_pass1();
    w.put_ram(&mut ram.clone()[..], 0..2).unwrap();
    let gathered = w.bytes_written();
    w.flush().unwrap();
    // The page of data being gathered, with its record header.
    let written = w.bytes_written();
    assert_eq!(written, gathered + 13 + PAGE_SIZE as u64);
    drop(w);
    assert!(buf.buffer().is_empty());
    assert_eq!(buf.get_ref().len() as u64, written);
}
