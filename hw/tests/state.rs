//! The whole machine's state: snapshots taken at random points of deterministic guest runs
//! and restored into fresh machines finish exactly like uninterrupted runs; the digest
//! tells runs apart exactly when their state differs; every refused stream leaves the
//! machine as it was, running on as if nothing had happened.

mod common;

use std::io::{Cursor, Read};

use hw::clock::ClockMode;
use hw::rtc::RtcBase;
use hw::snapshot::{snapshot_clock, DeviceState};
use hw::{MachineConfig, PcMachine, RunEvent, StateError};
use savevm::{Encoder, PageSource, RamSink, Record, StreamReader, StreamWriter, PAGE_SIZE};

/// Virtual time per instruction: coarse enough that the RTC guest, which waits for a
/// whole second to pass, runs in a few million instructions.
const NS_PER_INSN: u64 = 100;
const RAM: u64 = 32 << 20;

fn machine_with(name: &str, ram_size: u64, debugcon: bool) -> PcMachine {
    PcMachine::new(MachineConfig {
        ram_size,
        boot: common::multiboot(name),
        debugcon_port: debugcon.then_some(0xE9),
        clock: ClockMode::Deterministic {
            ns_per_insn: NS_PER_INSN,
        },
        rtc_base: RtcBase::Fixed(946_684_800),
        no_reboot: true,
    })
    .expect("machine")
}

fn machine(name: &str) -> PcMachine {
    machine_with(name, RAM, true)
}

/// A fixed pseudo-random function of `x` (splitmix64): the same on every host and run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a run is driven: the budget of its `i`-th call to `PcMachine::run`. Machines that
/// are to be compared are driven by the same calls, so that they can be compared call by
/// call (the run itself does not depend on how it is sliced into calls).
#[derive(Clone, Copy)]
struct Driver {
    seed: u64,
    max_budget: u64,
}

impl Driver {
    fn budget(&self, call: u64) -> u64 {
        1 + mix(self.seed ^ call.wrapping_mul(0x1_0000_0001)) % self.max_budget
    }

    /// Runs calls `from..to` (or until the guest exits); returns the call after the last
    /// one made and the exit status if the guest exited.
    fn run(&self, m: &mut PcMachine, from: u64, to: u64, out: &mut Vec<u8>) -> (u64, Option<i32>) {
        for call in from..to {
            let ev = m.run(self.budget(call));
            out.extend(m.take_serial_output());
            match ev {
                RunEvent::Ran => {}
                RunEvent::Exit(code) => return (call + 1, Some(code)),
                other => panic!("call {call}: unexpected {other:?}"),
            }
        }
        (to, None)
    }

    fn run_to_exit(&self, m: &mut PcMachine, from: u64, out: &mut Vec<u8>) -> (u64, i32) {
        match self.run(m, from, 10_000_000, out) {
            (calls, Some(code)) => (calls, code),
            (_, None) => panic!("guest did not finish"),
        }
    }
}

fn snapshot(m: &mut PcMachine) -> Vec<u8> {
    let mut v = Vec::new();
    m.save_snapshot(&mut v).expect("save");
    v
}

struct Reference {
    out: Vec<u8>,
    code: i32,
    calls: u64,
    icount: u64,
    digest: [u8; 32],
}

fn reference(guest: &str, d: Driver) -> Reference {
    let mut m = machine(guest);
    let mut out = Vec::new();
    let (calls, code) = d.run_to_exit(&mut m, 0, &mut out);
    assert_eq!(code, 1, "{guest}: {}", String::from_utf8_lossy(&out));
    Reference {
        out,
        code,
        calls,
        icount: m.icount(),
        digest: m.digest(),
    }
}

/// Saves `guest` after `at` calls, restores into a fresh machine and finishes there; the
/// saved machine finishes too. Both must end like the reference.
fn save_restore_finish(guest: &str, d: Driver, r: &Reference, at: u64, also_continue: bool) {
    let mut a = machine(guest);
    let mut out = Vec::new();
    let (next, exited) = d.run(&mut a, 0, at, &mut out);
    assert_eq!(exited, None, "{guest}: exited before call {at}");
    let before = a.digest();
    let stream = snapshot(&mut a);
    assert_eq!(a.digest(), before, "{guest}: saving changed the machine");
    let (config, clock) = snapshot_clock(stream.as_slice()).unwrap();
    assert_eq!(config, a.state_config());
    assert_eq!(clock, a.clock_state());

    let mut b = machine(guest);
    b.load_snapshot(Cursor::new(&stream)).unwrap();
    assert_eq!(
        b.digest(),
        before,
        "{guest}: restored state differs at call {at}"
    );
    let mut b_out = out.clone();
    // Sliced otherwise after the restore: a deterministic run does not depend on it.
    let other = Driver {
        seed: mix(d.seed),
        max_budget: d.max_budget * 3 + 7,
    };
    let (_, code) = other.run_to_exit(&mut b, next, &mut b_out);
    let what = format!("{guest} restored after call {at} (icount {})", a.icount());
    assert_eq!(
        String::from_utf8_lossy(&b_out),
        String::from_utf8_lossy(&r.out),
        "{what}"
    );
    assert_eq!(code, r.code, "{what}");
    assert_eq!(b.icount(), r.icount, "{what}");
    assert_eq!(b.digest(), r.digest, "{what}: final digest");

    if also_continue {
        let (_, code) = d.run_to_exit(&mut a, next, &mut out);
        assert_eq!(
            (code, a.digest()),
            (r.code, r.digest),
            "{guest}: saved machine"
        );
        assert_eq!(out, r.out);
    }
}

#[test]
fn guests_restored_at_random_points_finish_like_uninterrupted_runs() {
    for (i, (guest, max_budget)) in [
        ("timer", 4096),
        ("rtc", 16_384),
        ("tickloop", 1024),
        ("i8042", 512),
        ("task", 256),
        ("v86", 256),
    ]
    .into_iter()
    .enumerate()
    {
        let d = Driver {
            seed: mix(i as u64 + 1),
            max_budget,
        };
        let r = reference(guest, d);
        // A deterministic call runs at least to the next multiple of the quantum, so the
        // short guests (task, v86) give only a few points to save at.
        assert!(r.calls >= 2, "{guest}: only {} calls", r.calls);
        for j in 0..3u64 {
            let at = 1 + mix(d.seed + j) % (r.calls - 1);
            save_restore_finish(guest, d, &r, at, j == 0);
        }
    }
}

/// A machine whose translated code, TLB and devices came from another guest takes a
/// snapshot over all of it: nothing of the old guest survives.
#[test]
fn a_machine_that_ran_another_guest_takes_the_snapshot_whole() {
    let d = Driver {
        seed: 7,
        max_budget: 4096,
    };
    let r = reference("timer", d);
    let mut a = machine("timer");
    let mut out = Vec::new();
    let (next, _) = d.run(&mut a, 0, r.calls / 2, &mut out);
    let stream = snapshot(&mut a);

    // Same load address, other code: stale blocks would run the wrong instructions.
    let mut b = machine("v86");
    let mut junk = Vec::new();
    d.run_to_exit(&mut b, 0, &mut junk);
    assert!(b.cpu.translated_blocks() > 0);
    b.load_snapshot(Cursor::new(&stream)).unwrap();
    assert_eq!(b.cpu.translated_blocks(), 0);
    assert_eq!(b.digest(), a.digest());
    let (_, code) = d.run_to_exit(&mut b, next, &mut out);
    assert_eq!((code, b.digest()), (r.code, r.digest));
    assert_eq!(out, r.out);
}

#[test]
fn the_digest_follows_the_guest_visible_state() {
    let d = Driver {
        seed: 11,
        max_budget: 4096,
    };
    let r1 = reference("timer", d);
    let r2 = reference("timer", d);
    assert_eq!(r1.digest, r2.digest, "two identical runs");
    assert_ne!(r1.digest, reference("task", d).digest);

    let mut m = machine("timer");
    let mut out = Vec::new();
    d.run(&mut m, 0, 40, &mut out);
    let base = m.digest();
    assert_eq!(base, m.digest());

    // One byte of RAM, above the first megabyte (A20 matters there) and in the middle.
    let addr = memory::GuestPhysAddr(0x1F_0000);
    let mut b = [0u8];
    m.memory().read_phys(addr, &mut b);
    m.memory().write_phys(addr, &[b[0] ^ 0x01]);
    assert_ne!(m.digest(), base, "one RAM byte");
    m.memory().write_phys(addr, &b);
    assert_eq!(m.digest(), base, "the byte written back");

    // One register.
    m.cpu.s.gpr[cpu::state::ESI] ^= 0x8000_0000;
    assert_ne!(m.digest(), base, "one register");
    m.cpu.s.gpr[cpu::state::ESI] ^= 0x8000_0000;
    assert_eq!(m.digest(), base);

    // One CMOS byte, through the ports as the guest would write it.
    use cpu::Bus;
    m.board.io_write(0x70, 1, 0x45);
    let selected = m.digest();
    assert_ne!(selected, base, "the RTC index register");
    m.board.io_write(0x71, 1, 0x99);
    assert_ne!(m.digest(), selected, "an RTC register");
}

#[test]
fn host_side_output_is_not_in_the_digest() {
    let d = Driver {
        seed: 3,
        max_budget: 4096,
    };
    // `a`'s serial output waits for the host; `b`'s is taken after every call.
    let mut a = machine("timer");
    let mut b = machine("timer");
    for call in 0.. {
        let (ea, eb) = (a.run(d.budget(call)), b.run(d.budget(call)));
        b.take_serial_output();
        b.take_debugcon_output();
        assert_eq!(ea, eb);
        if ea != RunEvent::Ran {
            break;
        }
    }
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.take_serial_output(), b"PASS timer\r\n");
    assert_eq!(
        a.save_snapshot(Vec::new()).unwrap(),
        b.save_snapshot(Vec::new()).unwrap(),
        "the snapshots hold the same"
    );
}

/// A stream built from `m` with `edit` applied to its device sections and RAM pages
/// `ram` (all of them in a snapshot).
fn stream_with(
    m: &PcMachine,
    ram: std::ops::Range<u64>,
    edit: impl FnOnce(&mut Vec<DeviceState>),
) -> Vec<u8> {
    let mut image = vec![0u8; m.memory().ram_size() as usize];
    assert!(m.memory().ram().read_slice(0, &mut image));
    let mut devices = m.device_states();
    edit(&mut devices);
    let mut w = StreamWriter::new(Vec::new(), &m.state_config(), 0).unwrap();
    for s in &devices {
        w.put_encoded(s.name, s.instance, s.version, &s.state)
            .unwrap();
    }
    w.begin_ram_pass().unwrap();
    w.put_ram(image.as_mut_slice(), ram).unwrap();
    w.finish().unwrap().0
}

/// The offsets just past the last RAM data record and the last byte of section `name`.
fn offsets(stream: &[u8], name: &str) -> (u64, u64) {
    let mut r = StreamReader::open_unchecked(stream).unwrap();
    let (mut ram_end, mut section_end) = (0, 0);
    loop {
        match r.next_record(&mut savevm::DiscardRam).unwrap() {
            Record::RamData { .. } => ram_end = r.offset(),
            Record::Section(s) if s.name == name => section_end = r.offset(),
            Record::End => return (ram_end, section_end),
            _ => {}
        }
    }
}

/// Loads `bad` into a timer guest mid-run: the load must fail as `expect` says, and the
/// machine must keep its digest and finish exactly like a twin that never tried.
fn refused(what: &str, bad: impl Read, expect: impl Fn(&StateError) -> bool) {
    let d = Driver {
        seed: 5,
        max_budget: 4096,
    };
    let mut m = machine("timer");
    let mut twin = machine("timer");
    let (mut out, mut twin_out) = (Vec::new(), Vec::new());
    let (next, _) = d.run(&mut m, 0, 60, &mut out);
    d.run(&mut twin, 0, 60, &mut twin_out);
    let before = m.digest();
    let err = m.load_snapshot(bad).expect_err(what);
    assert!(expect(&err), "{what}: {err:?}");
    assert!(!err.to_string().is_empty());
    assert_eq!(m.digest(), before, "{what}: the machine changed");
    let (_, code) = d.run_to_exit(&mut m, next, &mut out);
    let (_, twin_code) = d.run_to_exit(&mut twin, next, &mut twin_out);
    assert_eq!((code, m.digest()), (twin_code, twin.digest()), "{what}");
    assert_eq!(out, twin_out, "{what}");
}

/// A state unlike the timer guest's at call 60, so that any part of it loaded shows.
fn other_state() -> PcMachine {
    let mut m = machine("i8042");
    let d = Driver {
        seed: 9,
        max_budget: 512,
    };
    d.run(&mut m, 0, 5, &mut Vec::new());
    m
}

#[test]
fn damaged_streams_are_refused_and_change_nothing() {
    let mut o = other_state();
    let good = snapshot(&mut o);
    // The good stream loads (into something else than the refusing machines).
    machine("timer").load_snapshot(Cursor::new(&good)).unwrap();
    let (ram_end, cpu_end) = offsets(&good, "cpu");
    let corrupt = |e: &StateError| matches!(e, StateError::Corrupt(_));

    let mut c = good.clone();
    c[ram_end as usize - 1] ^= 0x10;
    refused("a RAM byte flipped", Cursor::new(c), |e| {
        matches!(
            e,
            StateError::Corrupt(savevm::Error::ChecksumMismatch { .. })
        )
    });
    let mut c = good.clone();
    c[cpu_end as usize - 1] ^= 0x01;
    refused("a CPU section byte flipped", Cursor::new(c), corrupt);
    for cut in [good.len() / 2, ram_end as usize - 100, cpu_end as usize, 20] {
        let c = good[..cut].to_vec();
        refused(&format!("cut at {cut}"), Cursor::new(c), |e| {
            matches!(e, StateError::Corrupt(savevm::Error::Truncated { .. }))
        });
    }
    let mut c = good.clone();
    c.push(0);
    refused("a byte after the end", Cursor::new(c), corrupt);

    // An intact stream whose RTC state no RTC could be in: the sections before it were
    // loaded (into copies) when it is refused.
    let bad_rtc = stream_with(&o, 0..RAM / PAGE_SIZE as u64, |devs| {
        let rtc = devs.iter_mut().find(|s| s.name == "rtc").unwrap();
        let mut body = rtc.state.as_bytes().to_vec();
        body[0x0D] = 0; // register D without VRT
        let mut e = Encoder::new();
        for b in body {
            e.u8(b);
        }
        rtc.state = e;
    });
    savevm::verify(bad_rtc.as_slice()).unwrap();
    refused(
        "an invalid RTC state",
        Cursor::new(bad_rtc),
        |e| matches!(e, StateError::Corrupt(savevm::Error::Invalid { section, .. }) if section == "rtc"),
    );

    // Half of RAM missing.
    let half = stream_with(&o, 0..RAM / PAGE_SIZE as u64 / 2, |_| {});
    refused("half of RAM", Cursor::new(half), |e| {
        matches!(
            e,
            StateError::IncompleteRam {
                first: 0x1000,
                missing: 0x1000,
                ..
            }
        )
    });
}

#[test]
fn streams_for_another_machine_are_refused_and_change_nothing() {
    let mut big = machine_with("i8042", 64 << 20, true);
    big.run(1000);
    let s = snapshot(&mut big);
    refused("64 MiB of RAM", Cursor::new(s), |e| match e {
        StateError::Mismatch(inner) => {
            let m = e.to_string();
            assert!(
                m.contains("RAM size") && m.contains(&(64u64 << 20).to_string()),
                "{m}"
            );
            matches!(inner, savevm::Error::ConfigMismatch { .. })
        }
        _ => false,
    });

    let o = other_state();
    let extra = stream_with(&o, 0..RAM / PAGE_SIZE as u64, |devs| {
        let mut e = Encoder::new();
        e.u32(1);
        devs.push(DeviceState {
            name: "zz-extra",
            instance: 0,
            version: 1,
            state: e,
        });
    });
    refused(
        "an unknown section",
        Cursor::new(extra),
        |e| matches!(e, StateError::Incompatible(savevm::Error::UnknownSection { name, .. }) if name == "zz-extra"),
    );

    // Saved without a debug console: this machine has one the stream does not fill.
    let mut plain = machine_with("i8042", RAM, false);
    plain.run(1000);
    let s = snapshot(&mut plain);
    refused(
        "no debug console",
        Cursor::new(s),
        |e| matches!(e, StateError::Incompatible(savevm::Error::MissingSection { name, .. }) if name == "debugcon"),
    );

    let newer = stream_with(&o, 0..RAM / PAGE_SIZE as u64, |devs| {
        devs.iter_mut().find(|s| s.name == "pit").unwrap().version = 99;
    });
    refused("a newer PIT section", Cursor::new(newer), |e| {
        matches!(
            e,
            StateError::Incompatible(savevm::Error::SectionVersion { version: 99, .. })
        )
    });
}

#[test]
fn a_snapshot_of_mostly_empty_ram_is_small() {
    let mut m = machine_with("timer", 64 << 20, true);
    let d = Driver {
        seed: 1,
        max_budget: 4096,
    };
    d.run(&mut m, 0, 100, &mut Vec::new());
    let mut stream = Vec::new();
    let desc = m.save_snapshot(&mut stream).unwrap();
    assert!(
        stream.len() < 256 << 10,
        "{} bytes for 64 MiB",
        stream.len()
    );
    assert_eq!(desc.ram_pages(), (64 << 20) / PAGE_SIZE as u64);
    assert!(desc.data_pages() < 64, "{} data pages", desc.data_pages());
    assert_eq!(
        desc.stream_len as usize + 4 + 4 + desc.to_json().len() + 4,
        stream.len()
    );
    // Device sections first, then RAM.
    let names: Vec<_> = desc.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cpu",
            "clock",
            "pic",
            "pit",
            "rtc",
            "i8042",
            "uart",
            "debug-exit",
            "debugcon",
            "board"
        ]
    );
    let mut r = StreamReader::open_unchecked(stream.as_slice()).unwrap();
    for name in names {
        match r.next_record(&mut savevm::DiscardRam).unwrap() {
            Record::Section(s) => assert_eq!(s.name, name),
            other => panic!("{other:?} before section {name}"),
        }
    }
    assert_eq!(
        r.next_record(&mut savevm::DiscardRam).unwrap(),
        Record::RamPass(1)
    );
}

/// Guest RAM by RAM offset, as an incoming migration writes it.
struct IncomingRam<'a>(&'a memory::GuestMemory);

impl RamSink for IncomingRam<'_> {
    fn zero_pages(&mut self, first: u64, count: u64) -> std::io::Result<()> {
        for p in first..first + count {
            self.write_page(p, &[0; PAGE_SIZE])?;
        }
        Ok(())
    }
    fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> std::io::Result<()> {
        self.0.store_logged(page * PAGE_SIZE as u64, *data);
        self.0.note_write(page);
        Ok(())
    }
}

struct OutgoingRam<'a>(&'a memory::GuestMemory);

impl PageSource for OutgoingRam<'_> {
    fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> std::io::Result<()> {
        self.0.ram().read_slice(page * PAGE_SIZE as u64, out);
        Ok(())
    }
}

/// Live migration's order: RAM first (here in two passes, the second re-sending pages
/// the guest dirtied), the device sections last; the destination loads them with
/// `load_devices` once the stream verified.
#[test]
fn devices_load_after_migrated_ram() {
    let d = Driver {
        seed: 21,
        max_budget: 4096,
    };
    let r = reference("timer", d);
    let mut src = machine("timer");
    let mut out = Vec::new();
    let pages = RAM / PAGE_SIZE as u64;
    let mut w = StreamWriter::new(Vec::new(), &src.state_config(), savevm::FLAG_LIVE).unwrap();
    src.memory().dirty_enable(memory::DirtyClient::Migration);
    w.begin_ram_pass().unwrap();
    w.put_ram(&mut OutgoingRam(src.memory()), 0..pages).unwrap();
    let (next, _) = d.run(&mut src, 0, r.calls / 2, &mut out);
    src.memory().bump_dirty_epoch();
    src.cpu.rearm_dirty_tracking();
    let dirty = src.memory().dirty_take(memory::DirtyClient::Migration);
    assert!(dirty.count() > 0);
    w.begin_ram_pass().unwrap();
    w.put_ram_ranges(
        &mut OutgoingRam(src.memory()),
        dirty.ranges().into_iter().map(|(a, n)| a..a + n),
    )
    .unwrap();
    let sections = src.device_sections();
    for s in src.device_states() {
        w.put_encoded(s.name, s.instance, s.version, &s.state)
            .unwrap();
    }
    let (stream, _) = w.finish().unwrap();

    let mut dst = machine("timer");
    let mem = dst.memory().clone();
    let mut rd = StreamReader::new(stream.as_slice(), &dst.state_config()).unwrap();
    let v = rd.read_all(&mut IncomingRam(&mem)).unwrap();
    assert_eq!(v.sections, sections);

    // A refused device leaves every device as it was.
    let mut broken = v.clone();
    let pic = broken
        .sections
        .iter_mut()
        .find(|s| s.name == "pic")
        .unwrap();
    let mut body = pic.body().to_vec();
    body[9] = 9; // the master's init_step
    *pic = savevm::SectionData::from_parts("pic", 0, pic.version, body, pic.fields_len() as u32)
        .unwrap();
    let before = dst.device_sections();
    assert!(matches!(
        dst.load_devices(&broken),
        Err(StateError::Corrupt(savevm::Error::Invalid { .. }))
    ));
    assert_eq!(dst.device_sections(), before);

    dst.load_devices(&v).unwrap();
    assert_eq!(dst.digest(), src.digest());
    let (_, code) = d.run_to_exit(&mut dst, next, &mut out);
    assert_eq!((code, dst.digest(), out), (r.code, r.digest, r.out));
}

/// The digest is SHA-256 of the encoding the `snapshot` module documents, recomputed here
/// from the machine's parts: every field little-endian, so any host gets the same value.
#[test]
fn the_digest_is_the_documented_encoding() {
    use sha2::{Digest, Sha256};
    let mut m = machine("i8042");
    m.run(20_000);
    let mut h = Sha256::new();
    h.update(b"tern machine digest v1\0");
    let c = m.state_config();
    assert_eq!(
        (c.machine.as_str(), c.cpu_model.as_str()),
        ("tern-pc", "pentium-pro")
    );
    h.update(7u32.to_le_bytes());
    h.update(b"tern-pc");
    h.update(RAM.to_le_bytes());
    h.update(11u32.to_le_bytes());
    h.update(b"pentium-pro");
    let mut ram = vec![0u8; RAM as usize];
    assert!(m.memory().ram().read_slice(0, &mut ram));
    for page in ram.chunks(PAGE_SIZE) {
        if page.iter().all(|&b| b == 0) {
            h.update([0]);
        } else {
            h.update([1]);
            h.update(page);
        }
    }
    let sections = m.device_sections();
    h.update((sections.len() as u32).to_le_bytes());
    for s in &sections {
        h.update((s.name.len() as u32).to_le_bytes());
        h.update(s.name.as_bytes());
        h.update(s.instance.to_le_bytes());
        h.update(s.version.to_le_bytes());
        h.update((s.fields_len() as u32).to_le_bytes());
        h.update((s.body().len() as u32).to_le_bytes());
        h.update(s.body());
    }
    let expect: [u8; 32] = h.finalize().into();
    assert_eq!(m.digest(), expect);
    assert_eq!(hw::snapshot::hex(&expect).len(), 64);
}

/// With a realtime clock the caller pauses it around save and load; the restored clock
/// stays paused at the saved virtual time until the caller resumes it.
#[test]
fn a_paused_realtime_clock_is_restored_paused() {
    let realtime = |name: &str| {
        PcMachine::new(MachineConfig {
            ram_size: RAM,
            boot: common::multiboot(name),
            debugcon_port: None,
            clock: ClockMode::Realtime,
            rtc_base: RtcBase::HostUtc,
            no_reboot: true,
        })
        .unwrap()
    };
    let mut a = realtime("timer");
    a.run(50_000);
    a.pause_clock();
    let stream = snapshot(&mut a);
    let mut b = realtime("timer");
    b.pause_clock();
    b.load_snapshot(Cursor::new(&stream)).unwrap();
    assert_eq!(b.clock_state(), a.clock_state());
    assert_eq!(b.digest(), a.digest());
    b.resume_clock();
    assert_eq!(b.clock_state().mode, a.clock_state().mode);
}

/// Fixed values for a fixed machine state, asserted on every host: the digest and the
/// SHA-256 of the saved stream of the `tickloop` guest (PIT, RTC, PIC, UART and the
/// CPU all busy) after a fixed number of instructions. The state is little-endian
/// everywhere, so an aarch64 or big-endian s390x host must reach the very same bytes; a
/// field encoded in host order, a `usize` in a format or a byte-order slip in the
/// interpreter's memory accesses changes these values there. If the encoding changes on
/// purpose, these values change with it (and `DIGEST_DOMAIN` or the format version
/// should too).
#[test]
fn golden_digest_and_stream_are_the_same_on_every_host() {
    use sha2::{Digest, Sha256};
    let d = Driver {
        seed: 5,
        max_budget: 20_000,
    };
    let mut m = machine("tickloop");
    let mut out = Vec::new();
    // Stops in the middle of the guest's run, with timers armed and interrupts pending.
    assert_eq!(d.run(&mut m, 0, 20, &mut out), (20, None));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let stream = snapshot(&mut m);
    assert_eq!(
        (
            m.icount(),
            hex(&m.digest()),
            stream.len(),
            hex(&Sha256::digest(&stream))
        ),
        (
            195_314,
            "950f7ecf4c7a61c788a6e8d4ce17e8841c6005e575e729164065e12cd23d2347".to_string(),
            26_800,
            "6ff762b45acf3b588bd47b96d2bac0c93fac0e83c69cca1a9e6c66596e074202".to_string()
        ),
        "serial output so far: {}",
        String::from_utf8_lossy(&out)
    );
}
