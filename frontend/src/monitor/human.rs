//! The human monitor's language: QEMU HMP command lines in, QEMU-styled text out.
//!
//! Parsing needs no VM (a line is checked completely before anything runs), and
//! rendering needs only the [`Reply`], so both are plain functions that the tests call
//! directly.

use std::fmt::{self, Write as _};

use cpu::state::*;

use super::{
    AddressSpace, Command, CommandError, DumpFormat, DumpRequest, MemoryDump, RegisterDump, Reply,
};

/// Greeting sent when a monitor connection opens.
pub const BANNER: &str = "tern monitor - type 'help' for more information\n";
pub const PROMPT: &str = "(tern) ";

/// A line that is not a valid command; the message is shown to the user as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// Parses one monitor line (without its line terminator).
pub fn parse_human(line: &str) -> Result<Command, ParseError> {
    let line = line.trim();
    let (name, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    };
    // QEMU accepts the format glued to the command: `x/4xw 0x1000`.
    let (name, rest) = match name.find('/') {
        Some(i) if name.starts_with('x') => (&name[..i], &line[i..]),
        _ => (name, rest),
    };
    let no_args = |cmd: Command| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            err(format!("{name}: unexpected argument '{rest}'"))
        }
    };
    match name {
        "" => err("empty command"),
        "help" | "?" => Ok(Command::Help),
        "info" => match rest {
            "status" => Ok(Command::InfoStatus),
            "registers" => Ok(Command::InfoRegisters),
            "digest" => Ok(Command::InfoDigest),
            "snapshots" => Ok(Command::InfoSnapshots),
            "migrate" => Ok(Command::InfoMigrate),
            "migrate_parameters" => Ok(Command::InfoMigrateParameters),
            "migrate_capabilities" => Ok(Command::InfoMigrateCapabilities),
            "" => err(format!("info: missing subcommand ({INFO_TOPICS})")),
            other => err(format!(
                "info: unknown subcommand '{other}' ({INFO_TOPICS})"
            )),
        },
        "savevm" => match rest {
            "" => Ok(Command::Savevm(None)),
            tag => one_word(name, tag).map(|t| Command::Savevm(Some(t))),
        },
        "loadvm" => one_word(name, rest).map(Command::Loadvm),
        "delvm" => one_word(name, rest).map(Command::Delvm),
        "migrate" => {
            let (detach, uri) = match rest.strip_prefix("-d") {
                Some(u) if u.is_empty() || u.starts_with(char::is_whitespace) => (true, u.trim()),
                _ => (false, rest),
            };
            if uri.is_empty() {
                return err("migrate: missing URI");
            }
            Ok(Command::Migrate {
                uri: uri.to_string(),
                detach,
            })
        }
        "migrate_incoming" => one_word(name, rest).map(Command::MigrateIncoming),
        "migrate_cancel" => no_args(Command::MigrateCancel),
        "migrate_set_speed" => Ok(Command::MigrateSetParameter {
            name: "max-bandwidth".into(),
            value: parse_size(rest)?,
        }),
        "migrate_set_downtime" => Ok(Command::MigrateSetParameter {
            name: "downtime-limit".into(),
            value: parse_downtime_ms(rest)?,
        }),
        "migrate_set_parameter" => {
            let (param, value) = two_words(name, rest)?;
            let value = if param == "max-bandwidth" {
                parse_size(&value)?
            } else {
                value
                    .parse()
                    .or_else(|_| err(format!("{param}: invalid value '{value}'")))?
            };
            Ok(Command::MigrateSetParameter { name: param, value })
        }
        "migrate_set_capability" => {
            let (cap, state) = two_words(name, rest)?;
            let on = match state.as_str() {
                "on" | "true" => true,
                "off" | "false" => false,
                _ => return err(format!("{cap}: expected on or off, not '{state}'")),
            };
            Ok(Command::MigrateSetCapability { name: cap, on })
        }
        "getfd" => one_word(name, rest).map(Command::Getfd),
        "closefd" => one_word(name, rest).map(Command::Closefd),
        "x" => parse_dump(AddressSpace::Linear, rest),
        "xp" => parse_dump(AddressSpace::Physical, rest),
        "stop" => no_args(Command::Stop),
        "cont" | "c" => no_args(Command::Cont),
        "system_reset" => no_args(Command::SystemReset),
        "quit" | "q" => no_args(Command::Quit),
        _ => err(format!("unknown command: '{name}'")),
    }
}

const INFO_TOPICS: &str =
    "status, registers, digest, snapshots, migrate, migrate_parameters, migrate_capabilities";

fn one_word(cmd: &str, rest: &str) -> Result<String, ParseError> {
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [w] => Ok(w.to_string()),
        [] => err(format!("{cmd}: missing argument")),
        _ => err(format!("{cmd}: too many arguments")),
    }
}

fn two_words(cmd: &str, rest: &str) -> Result<(String, String), ParseError> {
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [a, b] => Ok((a.to_string(), b.to_string())),
        _ => err(format!("{cmd}: expected two arguments")),
    }
}

/// A byte count with an optional B/K/M/G/T suffix (powers of 1024), as QEMU's size
/// arguments take it.
fn parse_size(s: &str) -> Result<u64, ParseError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .or_else(|_| err(format!("invalid size '{s}'")))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return err(format!("invalid size suffix in '{s}' (B, K, M, G, T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| ParseError(format!("size '{s}' is too large")))
}

/// `migrate_set_downtime`: seconds, or a number with s/ms/us/ns; the result in ms.
fn parse_downtime_ms(s: &str) -> Result<u64, ParseError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .or_else(|_| err(format!("invalid downtime '{s}'")))?;
    let ms = match unit {
        "" | "s" => v * 1000.0,
        "ms" => v,
        "us" => v / 1000.0,
        "ns" => v / 1_000_000.0,
        _ => return err(format!("invalid downtime unit in '{s}' (s, ms, us, ns)")),
    };
    if !ms.is_finite() || ms < 0.0 {
        return err(format!("invalid downtime '{s}'"));
    }
    Ok(ms.round() as u64)
}

/// `[/[count][format][size]] addr`, with QEMU's defaults: one unit, hex, 32-bit words.
fn parse_dump(space: AddressSpace, args: &str) -> Result<Command, ParseError> {
    let mut req = DumpRequest {
        space,
        addr: 0,
        count: 1,
        format: DumpFormat::Hex,
        unit: 4,
    };
    let mut args = args.trim();
    if let Some(f) = args.strip_prefix('/') {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        parse_format(&f[..end], &mut req)?;
        args = f[end..].trim_start();
    }
    if args.is_empty() {
        return err("missing address");
    }
    if args.contains(char::is_whitespace) {
        return err(format!("unexpected argument after the address: '{args}'"));
    }
    req.addr = parse_number(args)?;
    Ok(Command::MemoryDump(req))
}

fn parse_format(f: &str, req: &mut DumpRequest) -> Result<(), ParseError> {
    let digits = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
    if digits > 0 {
        req.count = f[..digits]
            .parse()
            .or_else(|_| err(format!("invalid count '{}'", &f[..digits])))?;
    }
    // Letters may come in any order; a later one overrides an earlier one, as in QEMU.
    for c in f[digits..].chars() {
        match c {
            'x' => req.format = DumpFormat::Hex,
            'd' => req.format = DumpFormat::Signed,
            'u' => req.format = DumpFormat::Unsigned,
            'o' => req.format = DumpFormat::Octal,
            'c' => req.format = DumpFormat::Char,
            'b' => req.unit = 1,
            'h' => req.unit = 2,
            'w' => req.unit = 4,
            'g' => req.unit = 8,
            'i' | 's' | 't' | 'a' => {
                return err(format!(
                    "format '{c}' is not supported (use x, d, u, o or c)"
                ))
            }
            _ => return err(format!("invalid char in format: '{c}'")),
        }
    }
    Ok(())
}

/// A hexadecimal (`0x` prefix) or decimal number.
fn parse_number(s: &str) -> Result<u64, ParseError> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.or_else(|_| err(format!("invalid address '{s}'")))
}

/// The text a human monitor prints for a successful command.
pub fn render(reply: &Reply) -> String {
    match reply {
        Reply::Done => String::new(),
        Reply::Help(cmds) => {
            let mut s = String::new();
            for c in cmds.iter() {
                let usage = if c.args.is_empty() {
                    c.name.to_string()
                } else {
                    format!("{} {}", c.name, c.args)
                };
                let _ = writeln!(s, "{usage} -- {}", c.help);
            }
            s
        }
        // As QEMU's HMP: the run state in parentheses unless it is plain `paused`.
        Reply::Status { running: true, .. } => "VM status: running\n".to_string(),
        Reply::Status { status, .. } if *status == crate::vm::PAUSED => {
            "VM status: paused\n".to_string()
        }
        Reply::Status { status, .. } => format!("VM status: paused ({status})\n"),
        Reply::Registers(r) => render_registers(r),
        Reply::Memory(m) => render_memory(m),
        Reply::Digest(d) => format!("{}\n", hw::snapshot::hex(d)),
        Reply::Snapshots(list) => render_snapshots(list),
        Reply::Migration(m) => render_migration(m),
        Reply::MigrationParameters(p) => format!(
            "max-bandwidth: {} bytes/second\ndowntime-limit: {} ms\n\
             cpu-throttle-initial: {}\ncpu-throttle-increment: {}\n",
            p.max_bandwidth, p.downtime_limit_ms, p.cpu_throttle_initial, p.cpu_throttle_increment
        ),
        Reply::MigrationCapabilities(caps) => caps
            .iter()
            .map(|(n, on)| format!("{n}: {}\n", if *on { "on" } else { "off" }))
            .collect(),
        Reply::MigrationStarted { .. } => String::new(),
    }
}

fn render_snapshots(list: &[crate::snapshots::SnapshotInfo]) -> String {
    use crate::snapshots::{format_date, format_vm_clock};
    if list.is_empty() {
        return "There is no snapshot available.\n".into();
    }
    let mut o = String::from("List of snapshots present on all disks:\n");
    let _ = writeln!(
        o,
        "{:<24} {:>10} {:<19} {:>15}",
        "TAG", "VM SIZE", "DATE", "VM CLOCK"
    );
    for s in list {
        let size = if s.size >= 10 << 20 {
            format!("{} MiB", s.size >> 20)
        } else {
            format!("{} KiB", s.size.div_ceil(1024))
        };
        let clock = s.vm_clock_ns.map_or("-".into(), format_vm_clock);
        let _ = writeln!(
            o,
            "{:<24} {:>10} {:<19} {:>15}",
            s.tag,
            size,
            format_date(s.date),
            clock
        );
    }
    o
}

/// `info migrate`, in the order and units QEMU's HMP uses.
fn render_migration(m: &migration::MigrationInfo) -> String {
    let mut o = String::new();
    if m.status == migration::MigrationStatus::None {
        return o;
    }
    let _ = writeln!(o, "Migration status: {}", m.status.as_str());
    if let Some(e) = &m.error_desc {
        let _ = writeln!(o, "error description: {e}");
    }
    if let Some(t) = m.total_time_ms {
        let _ = writeln!(o, "total time: {t} ms");
    }
    if let Some(t) = m.expected_downtime_ms {
        let _ = writeln!(o, "expected downtime: {t} ms");
    }
    if let Some(t) = m.downtime_ms {
        let _ = writeln!(o, "downtime: {t} ms");
    }
    if let Some(t) = m.setup_time_ms {
        let _ = writeln!(o, "setup: {t} ms");
    }
    if let Some(r) = &m.ram {
        let _ = writeln!(o, "transferred ram: {} kbytes", r.transferred >> 10);
        let _ = writeln!(o, "throughput: {:.2} mbps", r.mbps);
        let _ = writeln!(o, "remaining ram: {} kbytes", r.remaining >> 10);
        let _ = writeln!(o, "total ram: {} kbytes", r.total >> 10);
        let _ = writeln!(o, "duplicate: {} pages", r.duplicate);
        let _ = writeln!(o, "normal: {} pages", r.normal);
        let _ = writeln!(o, "normal bytes: {} kbytes", r.normal_bytes >> 10);
        let _ = writeln!(o, "dirty sync count: {}", r.dirty_sync_count);
        let _ = writeln!(o, "page size: {} kbytes", r.page_size >> 10);
        let _ = writeln!(o, "dirty pages rate: {} pages", r.dirty_pages_rate);
    }
    match (m.cpu_throttle_percentage, m.cpu_throttle_ppm) {
        // Past 99 % the exact figure says how far the throttle has gone.
        (Some(p), Some(ppm)) if ppm > u32::from(p) * 10_000 => {
            let _ = writeln!(
                o,
                "cpu throttle percentage: {p} (exactly {:.4} %)",
                f64::from(ppm) / 10_000.0
            );
        }
        (Some(p), _) => {
            let _ = writeln!(o, "cpu throttle percentage: {p}");
        }
        _ => {}
    }
    if m.not_converging {
        let _ = writeln!(
            o,
            "not converging: the guest dirties memory faster than it is sent"
        );
    }
    o
}

/// The text a human monitor prints for a failed command.
pub fn render_error(e: &CommandError) -> String {
    format!("Error: {e}\n")
}

/// `info registers` in the layout of QEMU's i386 CPU dump.
fn render_registers(r: &RegisterDump) -> String {
    let s = &r.state;
    let g = &s.gpr;
    let fl = s.flags();
    let bit = |m: u32, c: char| if fl & m != 0 { c } else { '-' };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "EAX={:08x} EBX={:08x} ECX={:08x} EDX={:08x}",
        g[EAX], g[EBX], g[ECX], g[EDX]
    );
    let _ = writeln!(
        o,
        "ESI={:08x} EDI={:08x} EBP={:08x} ESP={:08x}",
        g[ESI], g[EDI], g[EBP], g[ESP]
    );
    let _ = writeln!(
        o,
        "EIP={:08x} EFL={:08x} [{}{}{}{}{}{}{}] CPL={} II={} A20={} SMM=0 HLT={}",
        s.eip,
        fl,
        bit(DF, 'D'),
        bit(OF, 'O'),
        bit(SF, 'S'),
        bit(ZF, 'Z'),
        bit(AF, 'A'),
        bit(PF, 'P'),
        bit(CF, 'C'),
        s.cpl,
        u8::from(s.inhibit_irq),
        u8::from(r.a20),
        u8::from(s.halted)
    );
    for (name, seg) in SEG_NAMES.iter().zip(s.seg.iter()) {
        segment_line(&mut o, name, seg, s.protected());
    }
    segment_line(&mut o, "LDT", &s.ldtr, s.protected());
    segment_line(&mut o, "TR", &s.tr, s.protected());
    let _ = writeln!(o, "GDT=     {:08x} {:08x}", s.gdtr.base, s.gdtr.limit);
    let _ = writeln!(o, "IDT=     {:08x} {:08x}", s.idtr.base, s.idtr.limit);
    let _ = writeln!(
        o,
        "CR0={:08x} CR2={:08x} CR3={:08x} CR4={:08x}",
        s.cr0, s.cr2, s.cr3, s.cr4
    );
    let _ = writeln!(
        o,
        "DR0={:08x} DR1={:08x} DR2={:08x} DR3={:08x} ",
        s.dr[0], s.dr[1], s.dr[2], s.dr[3]
    );
    let _ = writeln!(o, "DR6={:08x} DR7={:08x}", s.dr[6], s.dr[7]);
    let _ = writeln!(o, "ICOUNT={}", s.icount);
    o
}

/// One `NAME=sel base limit flags [description]` line. QEMU shows the descriptor's flag
/// word as it sits in the descriptor's high dword (access byte in bits 8-15, G/DB/L/AVL
/// in 20-23); tern keeps the access byte in bits 0-7 and the flags in 12-15.
fn segment_line(o: &mut String, name: &str, seg: &Segment, protected: bool) {
    let a = u32::from(seg.attr);
    let flags = ((a & 0xFF) << 8) | (((a >> 12) & 0xF) << 20);
    let _ = write!(
        o,
        "{name:<3}={:04x} {:08x} {:08x} {:08x}",
        seg.selector, seg.base, seg.limit, flags
    );
    if protected && seg.attr & ATTR_P != 0 {
        let _ = write!(o, " DPL={} ", seg.dpl());
        if seg.attr & ATTR_S != 0 {
            let f = |m: u16, c: char| if seg.attr & m != 0 { c } else { '-' };
            if seg.is_code() {
                let size = if seg.big() { "CS32" } else { "CS16" };
                let _ = write!(o, "{size} [{}{}", f(ATTR_DC, 'C'), f(ATTR_RW, 'R'));
            } else {
                let size = if seg.big() { "DS  " } else { "DS16" };
                let _ = write!(o, "{size} [{}{}", f(ATTR_DC, 'E'), f(ATTR_RW, 'W'));
            }
            let _ = write!(o, "{}]", f(ATTR_ACCESSED, 'A'));
        } else {
            const SYS: [&str; 16] = [
                "Reserved",
                "TSS16-avl",
                "LDT",
                "TSS16-busy",
                "CallGate16",
                "TaskGate",
                "IntGate16",
                "TrapGate16",
                "Reserved",
                "TSS32-avl",
                "Reserved",
                "TSS32-busy",
                "CallGate32",
                "Reserved",
                "IntGate32",
                "TrapGate32",
            ];
            o.push_str(SYS[usize::from(seg.attr & 0xF)]);
        }
    }
    o.push('\n');
}

/// `x`/`xp` output as QEMU prints it: `addr: v v v ...`, 16 bytes a line (8 for bytes).
fn render_memory(m: &MemoryDump) -> String {
    let req = &m.request;
    let unit = usize::from(req.unit);
    let bits = unit as u32 * 8;
    let line = if unit == 1 { 8 } else { 16 };
    let width = match req.format {
        DumpFormat::Hex => (bits / 4) as usize,
        DumpFormat::Octal => bits.div_ceil(3) as usize,
        DumpFormat::Signed | DumpFormat::Unsigned => (bits * 10).div_ceil(33) as usize,
        DumpFormat::Char => 0,
    };
    let mut o = String::new();
    let mut addr = req.addr;
    for chunk in m.data.chunks(line) {
        let _ = write!(o, "{addr:08x}:");
        for u in chunk.chunks(unit) {
            let mut b = [0u8; 8];
            b[..u.len()].copy_from_slice(u);
            let v = u64::from_le_bytes(b);
            o.push(' ');
            match req.format {
                DumpFormat::Hex => {
                    let _ = write!(o, "0x{v:0width$x}");
                }
                DumpFormat::Octal => {
                    let s = if v == 0 {
                        "0".to_string()
                    } else {
                        format!("0{v:o}")
                    };
                    let _ = write!(o, "{s:>width$}");
                }
                DumpFormat::Unsigned => {
                    let _ = write!(o, "{v:>width$}");
                }
                DumpFormat::Signed => {
                    // Sign-extend from the unit size so a word of all ones reads -1.
                    let sv = ((v << (64 - bits)) as i64) >> (64 - bits);
                    let _ = write!(o, "{sv:>width$}");
                }
                DumpFormat::Char => push_char(&mut o, v as u8),
            }
        }
        o.push('\n');
        addr += chunk.len() as u64;
    }
    if m.unreadable {
        let _ = writeln!(o, "{addr:08x}: Cannot access memory");
    }
    o
}

fn push_char(o: &mut String, c: u8) {
    o.push('\'');
    match c {
        b'\'' => o.push_str("\\'"),
        b'\\' => o.push_str("\\\\"),
        b'\n' => o.push_str("\\n"),
        b'\r' => o.push_str("\\r"),
        32..=126 => o.push(char::from(c)),
        _ => {
            let _ = write!(o, "\\x{c:02x}");
        }
    }
    o.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(space: AddressSpace, addr: u64, count: u64, format: DumpFormat, unit: u8) -> Command {
        Command::MemoryDump(DumpRequest {
            space,
            addr,
            count,
            format,
            unit,
        })
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse_human("help"), Ok(Command::Help));
        assert_eq!(parse_human("  info   status "), Ok(Command::InfoStatus));
        assert_eq!(parse_human("info registers"), Ok(Command::InfoRegisters));
        assert_eq!(parse_human("stop"), Ok(Command::Stop));
        assert_eq!(parse_human("c"), Ok(Command::Cont));
        assert_eq!(parse_human("cont"), Ok(Command::Cont));
        assert_eq!(parse_human("system_reset"), Ok(Command::SystemReset));
        assert_eq!(parse_human("q"), Ok(Command::Quit));
        assert_eq!(parse_human("quit"), Ok(Command::Quit));
    }

    #[test]
    fn bad_lines() {
        let e = parse_human("frobnicate 3").unwrap_err();
        assert_eq!(e.0, "unknown command: 'frobnicate'");
        assert!(parse_human("").is_err());
        assert!(parse_human("info").is_err());
        assert!(parse_human("info cpus").is_err());
        assert!(parse_human("stop now").is_err());
        assert!(parse_human("x").is_err());
        assert!(parse_human("x /4xw").is_err());
        assert!(parse_human("x /4q 0").is_err());
        assert!(parse_human("x /4i 0").is_err());
        assert!(parse_human("x /4x 0x").is_err());
        assert!(parse_human("x /4x 12z").is_err());
        assert!(parse_human("x /4x 1 2").is_err());
        assert!(parse_human("x /99999999999999999999x 0").is_err());
    }

    #[test]
    fn dump_formats() {
        use AddressSpace::*;
        use DumpFormat::*;
        assert_eq!(
            parse_human("x 0x100000"),
            Ok(dump(Linear, 0x100000, 1, Hex, 4))
        );
        assert_eq!(
            parse_human("x /4xw 0x100000"),
            Ok(dump(Linear, 0x100000, 4, Hex, 4))
        );
        assert_eq!(
            parse_human("x/4xw 0x100000"),
            Ok(dump(Linear, 0x100000, 4, Hex, 4))
        );
        assert_eq!(
            parse_human("xp /16b 4096"),
            Ok(dump(Physical, 4096, 16, Hex, 1))
        );
        assert_eq!(
            parse_human("xp /2dg 0"),
            Ok(dump(Physical, 0, 2, Signed, 8))
        );
        assert_eq!(
            parse_human("x /hu 0x10"),
            Ok(dump(Linear, 0x10, 1, Unsigned, 2))
        );
        assert_eq!(parse_human("x /8c 0"), Ok(dump(Linear, 0, 8, Char, 4)));
        assert_eq!(parse_human("x /3o 0"), Ok(dump(Linear, 0, 3, Octal, 4)));
        // Size before format, as QEMU allows.
        assert_eq!(parse_human("x /3bx 0"), Ok(dump(Linear, 0, 3, Hex, 1)));
    }

    fn mem(addr: u64, format: DumpFormat, unit: u8, data: &[u8], unreadable: bool) -> String {
        render(&Reply::Memory(MemoryDump {
            request: DumpRequest {
                space: AddressSpace::Physical,
                addr,
                count: (data.len() / usize::from(unit)) as u64,
                format,
                unit,
            },
            data: data.to_vec(),
            unreadable,
        }))
    }

    #[test]
    fn memory_rendering() {
        let data: Vec<u8> = (0u8..20).collect();
        assert_eq!(
            mem(0x100000, DumpFormat::Hex, 4, &data, false),
            "00100000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c\n00100010: 0x13121110\n"
        );
        assert_eq!(
            mem(0, DumpFormat::Hex, 1, &data[..9], false),
            "00000000: 0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07\n00000008: 0x08\n"
        );
        assert_eq!(
            mem(0, DumpFormat::Signed, 4, &[0xFF; 4], false),
            "00000000:         -1\n"
        );
        assert_eq!(
            mem(0, DumpFormat::Unsigned, 2, &[0xFF; 2], false),
            "00000000: 65535\n"
        );
        assert_eq!(
            mem(0, DumpFormat::Octal, 1, &[8, 0], false),
            "00000000: 010   0\n"
        );
        assert_eq!(
            mem(0, DumpFormat::Char, 1, b"A\n\x01'", false),
            "00000000: 'A' '\\n' '\\x01' '\\''\n"
        );
        assert_eq!(
            mem(0xFFFF_FFFC, DumpFormat::Hex, 4, &[0; 4], true),
            "fffffffc: 0x00000000\n100000000: Cannot access memory\n"
        );
    }

    #[test]
    fn registers_rendering() {
        let mut state = CpuState::reset();
        // Pinned here so the test does not follow changes to the reset state.
        state.seg[CS] = Segment {
            selector: 0xF000,
            base: 0xFFFF_0000,
            limit: 0xFFFF,
            attr: ATTR_P | ATTR_S | ATTR_CODE | ATTR_RW | ATTR_ACCESSED,
            usable: true,
        };
        state.gpr[EDX] = 0x611;
        let r = RegisterDump { state, a20: true };
        let text = render(&Reply::Registers(Box::new(r)));
        assert!(
            text.starts_with("EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000611\n"),
            "{text}"
        );
        assert!(text.contains("EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n"));
        assert!(
            text.contains("CS =f000 ffff0000 0000ffff 00009b00\n"),
            "{text}"
        );
        assert!(text.contains("GDT=     00000000 0000ffff\n"));
        assert!(text.contains("ICOUNT=0\n"));
    }

    #[test]
    fn status_rendering() {
        let status = |running, status| render(&Reply::Status { running, status });
        assert_eq!(status(true, "running"), "VM status: running\n");
        assert_eq!(status(false, "paused"), "VM status: paused\n");
        assert_eq!(
            status(false, "postmigrate"),
            "VM status: paused (postmigrate)\n"
        );
        assert!(render(&Reply::Help(super::super::COMMANDS))
            .contains("xp /fmt addr -- physical memory dump"));
    }
}
