//! Parsers for the values of `tern run` options: memory sizes, character-device specs, the
//! clock mode and the RTC's starting date.
//!
//! They follow QEMU's spelling where tern has the same option (`-m 128M`, `-serial
//! unix:PATH`, `-monitor tcp:127.0.0.1:4444`), so command lines carry over. Each returns a
//! `String` error because that is what `argh`'s `from_str_fn` reports to the user.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use hw::clock::{ClockMode, DEFAULT_NS_PER_INSN};
use hw::rtc::{days_from_civil, seconds_from_civil, RtcBase};

/// The largest guest RAM: everything above 3.5 GiB of the 32-bit physical address space
/// belongs to the PCI hole and the firmware, and tern has no RAM above 4 GiB.
pub const MAX_MEMORY_MIB: u64 = 3584;

/// Guest RAM is managed in 4 KiB pages; sizes are rounded up to a whole page, as QEMU
/// rounds `-m` up to its own alignment.
const PAGE: u64 = 4096;

/// Parses `--memory`: a number with an optional `B`/`K`/`M`/`G`/`T` suffix (any case), a
/// plain number meaning MiB as with QEMU's `-m`. Returns bytes, rounded up to 4 KiB.
pub fn parse_memory_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "b" => 0,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "invalid memory size '{s}': unknown suffix '{suffix}' (use K, M or G)"
            ))
        }
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!(
            "invalid memory size '{s}': expected a number such as 128M or 1G"
        ));
    }
    // Integer arithmetic on the fraction keeps "1.5G" exact; 9 digits are plenty.
    if frac.len() > 9 {
        return Err(format!(
            "invalid memory size '{s}': too many decimal places"
        ));
    }
    let too_large =
        || format!("memory size '{s}' is more than the maximum of {MAX_MEMORY_MIB} MiB");
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let frac_v: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_large())?
    };
    let scale = 10u64.pow(frac.len() as u32);
    let bytes = int_v
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_v))
        .and_then(|v| (u128::from(v) << shift).checked_div(u128::from(scale)))
        .ok_or_else(too_large)?;
    if bytes == 0 {
        return Err(format!(
            "invalid memory size '{s}': guest RAM cannot be empty"
        ));
    }
    if bytes > u128::from(MAX_MEMORY_MIB) << 20 {
        return Err(too_large());
    }
    let bytes = bytes as u64;
    Ok(bytes.div_ceil(PAGE) * PAGE)
}

/// Where the guest's COM1 goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialSpec {
    /// Output to stdout, input from stdin (unless a monitor owns stdin).
    Stdio,
    /// Output appended to a fresh file; no input.
    File(PathBuf),
    /// A listening unix socket serving one client at a time.
    Unix(PathBuf),
    /// Disconnected.
    None,
}

/// Where the debug console (`--debugcon-port`) goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugconSpec {
    Stdio,
    File(PathBuf),
    None,
}

/// One human monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorSpec {
    Stdio,
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Drops QEMU's socket flags (`,server`, `,nowait`, ...): tern's sockets always listen and
/// never wait for a client, which is what those flags ask for.
fn strip_server_flags(mut s: &str) -> &str {
    const FLAGS: [&str; 5] = ["server", "nowait", "server=on", "wait=off", "telnet=off"];
    while let Some((head, tail)) = s.rsplit_once(',') {
        if !FLAGS.contains(&tail) {
            break;
        }
        s = head;
    }
    s
}

fn path_arg(kind: &str, p: &str) -> Result<PathBuf, String> {
    if p.is_empty() {
        Err(format!("'{kind}:' needs a path"))
    } else {
        Ok(PathBuf::from(p))
    }
}

/// Parses `--serial stdio|file:PATH|unix:PATH|none`.
pub fn parse_serial(s: &str) -> Result<SerialSpec, String> {
    match s.split_once(':') {
        None if s == "stdio" => Ok(SerialSpec::Stdio),
        None if s == "none" || s == "null" => Ok(SerialSpec::None),
        Some(("file", p)) => Ok(SerialSpec::File(path_arg("file", p)?)),
        Some(("unix", p)) => Ok(SerialSpec::Unix(path_arg("unix", strip_server_flags(p))?)),
        _ => Err(format!(
            "invalid serial backend '{s}' (expected stdio, file:PATH, unix:PATH or none)"
        )),
    }
}

/// Parses `--debugcon stdio|file:PATH|none`.
pub fn parse_debugcon(s: &str) -> Result<DebugconSpec, String> {
    match s.split_once(':') {
        None if s == "stdio" => Ok(DebugconSpec::Stdio),
        None if s == "none" || s == "null" => Ok(DebugconSpec::None),
        Some(("file", p)) => Ok(DebugconSpec::File(path_arg("file", p)?)),
        _ => Err(format!(
            "invalid debugcon backend '{s}' (expected stdio, file:PATH or none)"
        )),
    }
}

/// Parses `--monitor stdio|unix:PATH|tcp:[HOST]:PORT`. A TCP monitor without a host binds
/// to loopback only: the monitor can stop, reset and read the machine, so exposing it on
/// other interfaces must be an explicit choice.
pub fn parse_monitor(s: &str) -> Result<MonitorSpec, String> {
    match s.split_once(':') {
        None if s == "stdio" => Ok(MonitorSpec::Stdio),
        Some(("unix", p)) => Ok(MonitorSpec::Unix(path_arg("unix", strip_server_flags(p))?)),
        Some(("tcp", rest)) => parse_tcp(strip_server_flags(rest)).map(MonitorSpec::Tcp),
        _ => Err(format!(
            "invalid monitor backend '{s}' (expected stdio, unix:PATH or tcp:[HOST]:PORT)"
        )),
    }
}

fn parse_tcp(rest: &str) -> Result<SocketAddr, String> {
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("", rest),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid TCP port '{port}' in 'tcp:{rest}'"))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve host '{host}' in 'tcp:{rest}'"))
}

/// Parses `--debugcon-port`: decimal or `0x` hexadecimal.
pub fn parse_port(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("invalid I/O port '{s}' (expected 0..=0xffff, e.g. 0xe9)"))
}

/// Parses `--clock realtime|deterministic`.
pub fn parse_clock(s: &str) -> Result<ClockMode, String> {
    match s {
        "realtime" => Ok(ClockMode::Realtime),
        "deterministic" => Ok(ClockMode::Deterministic {
            ns_per_insn: DEFAULT_NS_PER_INSN,
        }),
        _ => Err(format!(
            "invalid clock '{s}' (expected realtime or deterministic)"
        )),
    }
}

/// Parses `--rtc-base`: `utc` or `now` for the host's current UTC time, or a UTC date and
/// time as QEMU's `-rtc base=` takes it, `2006-06-17T16:01:21` or `2006-06-17` (midnight);
/// a space may stand for the `T`, a trailing `Z` is allowed and the seconds may be left out.
pub fn parse_rtc_base(s: &str) -> Result<RtcBase, String> {
    let t = s.trim();
    match t {
        "utc" | "now" => return Ok(RtcBase::HostUtc),
        "localtime" => {
            return Err(
                "--rtc-base localtime is not supported (tern keeps no time zone data); use utc or a date such as 2006-06-17T16:01:21"
                    .to_string(),
            )
        }
        _ => {}
    }
    let bad =
        || format!("invalid RTC base '{s}' (expected utc, now, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)");
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let num = |f: &str, digits: usize| -> Result<u32, String> {
        if f.len() != digits || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        f.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let (year, month, day) = (num(y, 4)?, num(mo, 2)?, num(da, 2)?);
    let (hour, min, sec) = match time {
        None => (0, 0, 0),
        Some(tm) => match tm.split(':').collect::<Vec<_>>()[..] {
            [h, m] => (num(h, 2)?, num(m, 2)?, 0),
            [h, m, sec] => (num(h, 2)?, num(m, 2)?, num(sec, 2)?),
            _ => return Err(bad()),
        },
    };
    let days_in_month = if (1..=12).contains(&month) {
        days_from_civil(i64::from(year), i64::from(month) + 1, 1)
            - days_from_civil(i64::from(year), i64::from(month), 1)
    } else {
        0
    };
    if day == 0 || i64::from(day) > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return Err(format!("RTC base '{s}' is not a valid date and time"));
    }
    Ok(RtcBase::Fixed(seconds_from_civil(
        i64::from(year),
        month as u8,
        day as u8,
        hour as u8,
        min as u8,
        sec as u8,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_size("128"), Ok(128 << 20));
        assert_eq!(parse_memory_size("128M"), Ok(128 << 20));
        assert_eq!(parse_memory_size("128m"), Ok(128 << 20));
        assert_eq!(parse_memory_size("2G"), Ok(2 << 30));
        assert_eq!(parse_memory_size("1.5G"), Ok(1536 << 20));
        assert_eq!(parse_memory_size("65536K"), Ok(64 << 20));
        assert_eq!(parse_memory_size("3584M"), Ok(3584 << 20));
        assert_eq!(parse_memory_size("3.5G"), Ok(3584 << 20));
        // Rounded up to a page.
        assert_eq!(parse_memory_size("5000B"), Ok(8192));
        assert_eq!(parse_memory_size("1K"), Ok(4096));
    }

    #[test]
    fn memory_size_errors() {
        for bad in ["", "M", "abc", "12Q", "1.2.3", ".", "-5", "12 M x"] {
            assert!(parse_memory_size(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_memory_size("0").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = parse_memory_size("5G").unwrap_err();
        assert!(e.contains("3584"), "{e}");
        assert!(parse_memory_size("3585").is_err());
        assert!(parse_memory_size("99999999999999999999999T").is_err());
        assert!(parse_memory_size("18446744073709551615T").is_err());
    }

    #[test]
    fn chardev_specs() {
        assert_eq!(parse_serial("stdio"), Ok(SerialSpec::Stdio));
        assert_eq!(parse_serial("none"), Ok(SerialSpec::None));
        assert_eq!(
            parse_serial("file:/tmp/x"),
            Ok(SerialSpec::File("/tmp/x".into()))
        );
        assert_eq!(
            parse_serial("unix:/tmp/s,server,nowait"),
            Ok(SerialSpec::Unix("/tmp/s".into()))
        );
        assert!(parse_serial("file:").is_err());
        assert!(parse_serial("tcp:1234").is_err());
        assert_eq!(
            parse_debugcon("file:d.log"),
            Ok(DebugconSpec::File("d.log".into()))
        );
        assert!(parse_debugcon("unix:/x").is_err());
    }

    #[test]
    fn monitor_specs() {
        assert_eq!(parse_monitor("stdio"), Ok(MonitorSpec::Stdio));
        assert_eq!(
            parse_monitor("unix:/tmp/m"),
            Ok(MonitorSpec::Unix("/tmp/m".into()))
        );
        assert_eq!(
            parse_monitor("tcp:127.0.0.1:4444"),
            Ok(MonitorSpec::Tcp("127.0.0.1:4444".parse().unwrap()))
        );
        // No host: loopback, never all interfaces.
        assert_eq!(
            parse_monitor("tcp::4444"),
            Ok(MonitorSpec::Tcp("127.0.0.1:4444".parse().unwrap()))
        );
        assert_eq!(
            parse_monitor("tcp:4444"),
            Ok(MonitorSpec::Tcp("127.0.0.1:4444".parse().unwrap()))
        );
        assert_eq!(
            parse_monitor("tcp:[::1]:5"),
            Ok(MonitorSpec::Tcp("[::1]:5".parse().unwrap()))
        );
        assert!(parse_monitor("tcp:127.0.0.1:99999").is_err());
        assert!(parse_monitor("vc").is_err());
    }

    #[test]
    fn clocks() {
        assert_eq!(parse_clock("realtime"), Ok(ClockMode::Realtime));
        assert_eq!(
            parse_clock("deterministic"),
            Ok(ClockMode::Deterministic {
                ns_per_insn: DEFAULT_NS_PER_INSN
            })
        );
        assert!(parse_clock("host").unwrap_err().contains("realtime"));
    }

    #[test]
    fn rtc_bases() {
        assert_eq!(parse_rtc_base("utc"), Ok(RtcBase::HostUtc));
        assert_eq!(parse_rtc_base("now"), Ok(RtcBase::HostUtc));
        let y2k = RtcBase::Fixed(946_684_800);
        assert_eq!(parse_rtc_base("2000-01-01T00:00:00"), Ok(y2k));
        assert_eq!(parse_rtc_base("2000-01-01"), Ok(y2k));
        assert_eq!(parse_rtc_base("2000-01-01 00:00"), Ok(y2k));
        assert_eq!(parse_rtc_base("2000-01-01T00:00:00Z"), Ok(y2k));
        assert_eq!(
            parse_rtc_base("2006-06-17T16:01:21"),
            Ok(RtcBase::Fixed(1_150_560_081))
        );
        assert_eq!(
            parse_rtc_base("2024-02-29T23:59:59"),
            Ok(RtcBase::Fixed(1_709_251_199))
        );
        assert_eq!(
            parse_rtc_base("1969-12-31T23:59:59"),
            Ok(RtcBase::Fixed(-1))
        );
        for bad in [
            "",
            "yesterday",
            "2000-1-1",
            "2000-01-01T",
            "2000-01-01T24:00:00",
            "2000-01-01T12:60",
            "2000-01-01T12:00:60",
            "2023-02-29",
            "2000-13-01",
            "2000-00-10",
            "2000-01-00",
            "2000-01-01T00:00:00:00",
            "+200-01-01",
        ] {
            assert!(parse_rtc_base(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_rtc_base("localtime")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("0xe9"), Ok(0xE9));
        assert_eq!(parse_port("233"), Ok(233));
        assert!(parse_port("0x10000").is_err());
        assert!(parse_port("e9").is_err());
    }
}
