//! `savevm` at named points, `loadvm` in a fresh process: with `--clock deterministic`, a
//! guest that uses timers, the UART and memory is saved
//!
//! * `irq`: inside its IRQ0 handler, before the EOI (the PIC has IRQ0 in service);
//! * `rep`: in the middle of a 1 MiB `rep movsd` (EIP at the instruction, ECX neither the
//!   full count nor zero);
//! * `fifo`: with bytes waiting in the UART's receive FIFO (sent to itself in loopback);
//! * `pit`: with PIT channel 2 counting down a one-shot that has not expired;
//!
//! plus a few other points, and each snapshot, started with `tern run --loadvm TAG` in a
//! new process, must finish with exactly the serial output that followed the save in an
//! uninterrupted run (no gap, no repeat) and the same machine digest at exit.
//!
//! The guest is `testdata/guests/equiv.bin`. Its `points` table gives the addresses of the
//! four points, so a stop is classified from `info registers` (EIP, ECX). The test then
//! reads each saved file back into a machine of its own and asks the devices whether the
//! point is what the registers said: the PIC's in-service bit, the copy's progress in
//! ESI/EDI, the bytes in the receive FIFO, OUT2 still low.
//!
//! Where a stop lands: with a deterministic clock the machine ends its CPU slices at
//! multiples of `hw::machine::DETERMINISTIC_QUANTUM` (4096) instructions and at timer
//! deadlines, and the event loop reads the monitor only between runs of at least 10,000
//! instructions, so a stop can only fall at a slice's end. The guest is shaped for that. A
//! round (copy, FIFO window, PIT window) is about 1,100 instructions, the copy's 64 pieces
//! of 4096 dwords (the interpreter runs a repeated string instruction in such pieces and
//! counts each as one instruction) among them, so stops fall at ever different places in
//! the rounds. Its IRQ0 handler (about 12,000 instructions every 48,000) is longer than a
//! quantum: a handler that starts at its deadline and ends before the next multiple of the
//! quantum could never hold a stop.

mod common;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hw::clock::{ClockMode, DEFAULT_NS_PER_INSN};
use hw::rtc::{RtcBase, DEFAULT_BASE_SECONDS};
use hw::{BootSource, MachineConfig, PcMachine};
use memory::GuestPhysAddr;

/// The guest's options: the timing-dependent fields on every line, a PIT tick every
/// 240 us of guest time (divisor 287), 20 rounds per line and 60 lines, about two
/// seconds of host time.
const APPEND: &str = "ticks=1 exit=60 rounds=20 div=287";
const LINES: usize = 60;
/// Monitored runs started at most, each with at most `TRIES` stops, before the test gives
/// up on a point it never saw.
const PROCESSES: usize = 3;
const TRIES: usize = 400;
/// Stops saved that are none of the named points.
const OTHERS: usize = 2;
/// Restored runs at a time.
const PARALLEL: usize = 2;
const RAM: u64 = 128 << 20;
const MCR_LOOP: u8 = 0x10;

/// The guest's `points` table (see `testdata/guests/equiv.asm`).
#[derive(Debug)]
struct Points {
    irq: (u32, u32),
    rep: u32,
    rep_count: u32,
    fifo: (u32, u32),
    pit: (u32, u32),
    fifo_sent: u32,
    fifo_bytes: u32,
    src: u32,
    dst: u32,
}

const MAGIC: &[u8] = b"equiv points v1\0";
/// Where a Multiboot kernel of the a.out kind is loaded: its file offset 0.
const LOAD_ADDR: u32 = 0x10_0000;

fn points() -> Points {
    let image = std::fs::read(guest("equiv.bin")).expect("read equiv.bin");
    let at = find(&image, MAGIC).expect("the points table in equiv.bin") + MAGIC.len();
    let d = |i: usize| {
        let o = at + 4 * i;
        u32::from_le_bytes(image[o..o + 4].try_into().unwrap())
    };
    let p = Points {
        irq: (d(0), d(1)),
        rep: d(2),
        rep_count: d(3),
        fifo: (d(4), d(5)),
        pit: (d(6), d(7)),
        fifo_sent: d(8),
        fifo_bytes: d(9),
        src: d(10),
        dst: d(11),
    };
    // The code addresses lie in the image.
    let end = LOAD_ADDR + image.len() as u32;
    for a in [
        p.irq.0, p.irq.1, p.rep, p.fifo.0, p.fifo.1, p.pit.0, p.pit.1,
    ] {
        assert!((LOAD_ADDR..end).contains(&a), "{p:x?}");
    }
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Irq,
    Rep,
    Fifo,
    Pit,
    Other,
}

const NAMED: [Point; 4] = [Point::Irq, Point::Rep, Point::Fifo, Point::Pit];

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Irq => "irq",
            Point::Rep => "rep",
            Point::Fifo => "fifo",
            Point::Pit => "pit",
            Point::Other => "other",
        }
    }
}

/// What `info registers` said at a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Regs {
    eip: u32,
    ecx: u32,
    icount: u64,
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=");
    let at = text
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1].is_ascii_whitespace())
        .map(|(i, _)| i + key.len())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    let rest = &text[at..];
    &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())]
}

fn parse_regs(text: &str) -> Regs {
    let hex = |n: &str| u32::from_str_radix(field(text, n), 16).unwrap();
    Regs {
        eip: hex("EIP"),
        ecx: hex("ECX"),
        icount: field(text, "ICOUNT").parse().unwrap(),
    }
}

/// Which point the registers show.
fn classify(p: &Points, r: &Regs) -> Point {
    if (p.irq.0..=p.irq.1).contains(&r.eip) {
        Point::Irq
    } else if r.eip == p.rep && r.ecx > 0 && r.ecx < p.rep_count {
        Point::Rep
    } else if (p.fifo.0..p.fifo.1).contains(&r.eip) {
        Point::Fifo
    } else if (p.pit.0..p.pit.1).contains(&r.eip) {
        Point::Pit
    } else {
        Point::Other
    }
}

/// A snapshot taken at a stop.
struct Capture {
    tag: String,
    point: Point,
    regs: Regs,
    /// The serial output up to the save.
    before: String,
}

/// The reference: the whole run without a monitor.
struct Reference {
    out: String,
    digest: String,
}

fn run_args(serial: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "--kernel".into(),
        guest("equiv.bin").to_str().unwrap().into(),
        "--append".into(),
        APPEND.into(),
        "--clock".into(),
        "deterministic".into(),
        "--serial".into(),
        format!("file:{}", serial.display()),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn reference(dir: &TempDir) -> Reference {
    let (serial, stderr) = (dir.path("reference.txt"), dir.path("reference.err"));
    let status = Tern::spawn_logged(&strs(&run_args(&serial, &["--digest-on-exit"])), &stderr)
        .wait()
        .code();
    let out = file_text(&serial);
    assert_eq!(
        status,
        Some(1),
        "reference run: {out}{}",
        file_text(&stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), LINES + 1, "{out}");
    for (i, l) in lines[..LINES].iter().enumerate() {
        assert!(l.starts_with(&format!("equiv {:06} sum ", i + 1)), "{out}");
    }
    assert!(out.ends_with("\r\nPASS equiv\r\n"), "{out}");
    Reference {
        out,
        digest: exit_digest(&stderr),
    }
}

/// Whether a stop at `point` is still wanted, given what was captured.
fn wanted(point: Point, regs: &Regs, caps: &[Capture]) -> bool {
    match point {
        Point::Other => {
            caps.iter().filter(|c| c.point == Point::Other).count() < OTHERS
                && caps.iter().all(|c| c.regs.eip != regs.eip)
        }
        _ => caps.iter().all(|c| c.point != point),
    }
}

/// One monitored run: stops the guest again and again and saves where wanted, until every
/// named point is captured, `TRIES` stops were made, or the guest ends. Returns how many
/// stops landed at each point.
fn monitored_run(
    dir: &TempDir,
    run: usize,
    p: &Points,
    r: &Reference,
    caps: &mut Vec<Capture>,
) -> Vec<(Point, usize)> {
    let serial = dir.path(&format!("monitored{run}.txt"));
    let sock = dir.path(&format!("mon{run}.sock"));
    let snaps = dir.path("snaps");
    let args = run_args(
        &serial,
        &[
            "--monitor",
            &format!("unix:{}", sock.display()),
            "--snapshot-dir",
            snaps.to_str().unwrap(),
        ],
    );
    let mut tern = Tern::spawn(&strs(&args));
    let mut m = Monitor::connect(&mut tern, &sock);
    let mut seen: Vec<(Point, usize)> = Vec::new();
    let mut found_all = false;
    // Varies how long the guest runs between two stops, and so where the stops land,
    // from one run of the test to the next (xorshift, seeded from the clock).
    let mut jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() | 1);
    for _ in 0..TRIES {
        if NAMED.iter().all(|n| caps.iter().any(|c| c.point == *n)) {
            found_all = true;
            break;
        }
        let Some(reply) = m.try_cmd("stop") else {
            break;
        };
        assert_eq!(reply, "");
        let Some(text) = m.try_cmd("info registers") else {
            break;
        };
        let regs = parse_regs(&text);
        let point = classify(p, &regs);
        match seen.iter_mut().find(|(k, _)| *k == point) {
            Some((_, n)) => *n += 1,
            None => seen.push((point, 1)),
        }
        if wanted(point, &regs, caps) {
            let tag = format!("{}-{}", point.name(), caps.len());
            assert_eq!(m.try_cmd(&format!("savevm {tag}")).as_deref(), Some(""));
            // Stopped: everything the guest sent before the save is in the file.
            let before = file_text(&serial);
            assert!(
                r.out.starts_with(&before),
                "{tag}: the monitored run's output differs from the reference:\n{before}"
            );
            caps.push(Capture {
                tag,
                point,
                regs,
                before,
            });
        }
        if m.try_cmd("cont").is_none() {
            break;
        }
        jitter ^= jitter << 13;
        jitter ^= jitter >> 17;
        jitter ^= jitter << 5;
        std::thread::sleep(Duration::from_millis(u64::from(jitter % 16)));
    }
    if found_all {
        m.send(b"quit\n");
    }
    // Otherwise the guest finished, or runs to its end after the last stop.
    let status = tern.wait().code();
    let out = file_text(&serial);
    if found_all {
        assert_eq!(status, Some(0), "monitored run {run}");
        assert!(r.out.starts_with(&out), "monitored run {run}: {out}");
    } else {
        // Stops and saves do not change a deterministic run.
        assert_eq!(status, Some(1), "monitored run {run}");
        assert_eq!(out, r.out, "monitored run {run} differs from the reference");
    }
    seen
}

/// Reads the snapshot file back into a machine of the test's own and checks that it holds
/// the point the registers showed.
fn check_saved_point(path: &Path, p: &Points, c: &Capture) {
    let image: Arc<[u8]> = std::fs::read(guest("equiv.bin")).unwrap().into();
    let mut m = PcMachine::new(MachineConfig {
        ram_size: RAM,
        boot: BootSource::Multiboot {
            image,
            cmdline: String::new(),
        },
        debugcon_port: None,
        clock: ClockMode::Deterministic {
            ns_per_insn: DEFAULT_NS_PER_INSN,
        },
        rtc_base: RtcBase::Fixed(DEFAULT_BASE_SECONDS),
        no_reboot: false,
    })
    .expect("a machine");
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m.load_snapshot(BufReader::new(file))
        .unwrap_or_else(|e| panic!("{}: {e}", c.tag));
    let s = &m.cpu.s;
    let what = format!("{} ({:x?})", c.tag, c.regs);
    assert_eq!(
        (s.eip, s.gpr[cpu::state::ECX], s.icount),
        (c.regs.eip, c.regs.ecx, c.regs.icount),
        "{what}: the saved CPU is not where the monitor showed it"
    );
    let read = |addr: u32, n: usize| {
        let mut b = vec![0; n];
        m.memory().read_phys(GuestPhysAddr(u64::from(addr)), &mut b);
        b
    };
    let dword = |addr: u32| u32::from_le_bytes(read(addr, 4).try_into().unwrap());
    let copied = |esi: u32, edi: u32, ecx: u32| {
        let done = 4 * (p.rep_count - ecx);
        esi == p.src + done && edi == p.dst + done
    };
    let isr = m.board.pic.state().master.isr;
    match c.point {
        Point::Irq => {
            assert_ne!(isr & 1, 0, "{what}: IRQ0 not in service (ISR {isr:#04x})");
        }
        Point::Rep => {
            let (esi, edi) = (s.gpr[cpu::state::ESI], s.gpr[cpu::state::EDI]);
            assert!(
                copied(esi, edi, s.gpr[cpu::state::ECX]),
                "{what}: ESI {esi:#x} EDI {edi:#x} do not match ECX"
            );
            assert_eq!(
                isr & 1,
                0,
                "{what}: in the foreground, IRQ0 is not in service"
            );
        }
        Point::Fifo => {
            let u = m.board.uart.state();
            let sent = &dword(p.fifo_sent).to_le_bytes()[..p.fifo_bytes as usize];
            assert_eq!(u.rx_fifo, sent, "{what}: the receive FIFO");
            assert_ne!(u.mcr & MCR_LOOP, 0, "{what}: not in loopback");
        }
        Point::Pit => {
            let ch2 = &m.board.pit.state().channels[2];
            let now = m.clock_state().ns;
            assert!(
                ch2.mode == 0 && ch2.gate && ch2.phase == hw::pit::PHASE_COUNTING,
                "{what}: channel 2 is not counting a one-shot: {ch2:?}"
            );
            assert!(
                !m.board.pit.out(2, now),
                "{what}: channel 2's count has expired: {ch2:?} at {now} ns"
            );
        }
        Point::Other => {}
    }
}

#[test]
fn loadvm_at_named_points_finishes_like_the_uninterrupted_run() {
    let dir = TempDir::new("savevm-points");
    let p = points();
    let t0 = Instant::now();
    let r = reference(&dir);
    let t_ref = t0.elapsed();

    let t1 = Instant::now();
    let mut caps = Vec::new();
    let mut seen = Vec::new();
    for run in 0..PROCESSES {
        seen.push(monitored_run(&dir, run, &p, &r, &mut caps));
        if NAMED.iter().all(|n| caps.iter().any(|c| c.point == *n)) {
            break;
        }
    }
    let t_mon = t1.elapsed();
    for n in NAMED {
        assert!(
            caps.iter().any(|c| c.point == n),
            "no stop landed at '{}' in {PROCESSES} runs of up to {TRIES} stops; stops per \
             point in each run: {seen:?}",
            n.name()
        );
    }

    let t2 = Instant::now();
    let snaps = dir.path("snaps");
    for c in &caps {
        check_saved_point(&snaps.join(format!("{}.tern", c.tag)), &p, c);
    }
    let t_check = t2.elapsed();

    // Each snapshot in a new process that boots nothing of its own (the built-in demo,
    // replaced by the loaded state).
    let t3 = Instant::now();
    for batch in caps.chunks(PARALLEL) {
        let mut runs: Vec<(&Capture, Tern)> = batch
            .iter()
            .map(|c| {
                let serial = dir.path(&format!("{}.txt", c.tag));
                let args = [
                    "run".to_string(),
                    "--loadvm".into(),
                    c.tag.clone(),
                    "--snapshot-dir".into(),
                    snaps.to_str().unwrap().into(),
                    "--clock".into(),
                    "deterministic".into(),
                    "--serial".into(),
                    format!("file:{}", serial.display()),
                    "--digest-on-exit".into(),
                ];
                let err = dir.path(&format!("{}.err", c.tag));
                (c, Tern::spawn_logged(&strs(&args), &err))
            })
            .collect();
        for (c, tern) in &mut runs {
            let status = tern.wait().code();
            let out = file_text(&dir.path(&format!("{}.txt", c.tag)));
            let err = dir.path(&format!("{}.err", c.tag));
            let what = format!("{} (saved at {:x?})", c.tag, c.regs);
            assert_eq!(status, Some(1), "{what}: {out}{}", file_text(&err));
            assert_eq!(
                format!("{}{out}", c.before),
                r.out,
                "{what}: the output before the save and after the load"
            );
            assert_eq!(exit_digest(&err), r.digest, "{what}: machine state at exit");
        }
    }
    let t_restore = t3.elapsed();
    println!(
        "points captured: {:?}",
        caps.iter().map(|c| c.tag.as_str()).collect::<Vec<_>>()
    );
    println!("stops per point in each monitored run: {seen:?}");
    println!(
        "reference {:.2} s, monitored {:.2} s, state checks {:.2} s, {} restored runs {:.2} s",
        t_ref.as_secs_f64(),
        t_mon.as_secs_f64(),
        t_check.as_secs_f64(),
        caps.len(),
        t_restore.as_secs_f64()
    );
}
