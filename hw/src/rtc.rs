//! The Motorola MC146818 real-time clock and the PC's CMOS RAM.
//!
//! ```text
//!   port 0x70 (write)   bit 7: NMI disable   bits 6-0: register index
//!   port 0x71           the indexed register
//!
//!   index  register                    index      CMOS RAM as a PC BIOS reads it
//!   0x00   seconds                     0x0E-0x13  (zero: no diagnostics, no floppy, no disk)
//!   0x01   seconds alarm               0x14       equipment byte
//!   0x02   minutes                     0x15-0x16  base memory, KiB (640)
//!   0x03   minutes alarm               0x17-0x18  extended memory above 1 MiB, KiB (max 0xFFFF)
//!   0x04   hours (bit 7 = PM in 12h)   0x2E-0x2F  checksum of 0x10-0x2D (big endian)
//!   0x05   hours alarm                 0x30-0x31  copy of 0x17-0x18
//!   0x06   day of week (1 = Sunday)    0x32       century
//!   0x07   day of month                0x34-0x35  memory above 16 MiB, 64 KiB units
//!   0x08   month                       0x5B-0x5D  memory above 4 GiB, 64 KiB units (0)
//!   0x09   year (two digits)
//!   0x0A   A: UIP | DV2-0 | RS3-0      divider and periodic rate
//!   0x0B   B: SET PIE AIE UIE SQWE DM 24/12 DSE
//!   0x0C   C: IRQF PF AF UF (read-only; a read clears it)
//!   0x0D   D: VRT (always 1)
//! ```
//!
//! The RTC's interrupt output drives IRQ 8 on the slave PIC. IRQF, and with it the line, is
//! `PF & PIE | AF & AIE | UF & UIE`: the line stays high until the guest reads register C,
//! so a guest that never reads C gets one interrupt, as on real hardware.
//!
//! Time is kept as a calendar value in seconds since 1970-01-01 00:00:00 UTC (the century
//! register at 0x32 extends the two-digit year, as QEMU's RTC does), and the divider chain as
//! the cycle number of the next update, counted in 32.768 kHz cycles of *virtual* time. Every
//! access first brings the device forward to the current virtual time: updates that happened
//! since (UF, AF), periodic ticks (PF). Nothing is stepped per tick, so a halted machine
//! sleeps until [`Rtc::next_irq_deadline`], and the device never reads the host clock: the
//! board hands the starting date to [`Rtc::new`].
//!
//! Timing follows QEMU's RTC: UIP reads 1 during the 244 us before an update, the time
//! registers change and UF is set at the update; after a divider reset (DV = 11x) is lifted
//! the first update comes 500 ms later; periodic ticks are aligned to the divider and, as
//! in QEMU and Bochs, PF is only set while PIE is on. Setting SET clears UIE and inhibits
//! updates (the time registers hold what the guest writes); clearing it starts the clock
//! from the written values at the divider's current phase.
//!
//! One addition keeps pollers from missing updates: a guest that waits for an update by
//! polling UIP must see it rise, but 244 us is less than a host may take to schedule the
//! emulator's thread again, so a realtime guest can step over the whole window. A read of
//! register A therefore also shows UIP if an update has happened since the previous read
//! of A, that read came less than [`UIP_POLL_GAP_CYCLES`] before the update (the guest is
//! polling), and UIP has not been shown for that update yet. The guest sees the update a
//! little late, as if it had been slow itself; the next read shows UIP clear.
//!
//! Not emulated: the 4.194304 MHz and 1.048576 MHz time bases (every DV value other than
//! 11x runs the clock at 32.768 kHz, as in QEMU), daylight saving (DSE is stored, nothing
//! more), the square-wave pin (SQWE is stored; nothing is wired to it on a PC), and the day
//! of week as an independent counter (it is derived from the date when read).

use thiserror::Error;

/// Index/NMI-mask port.
pub const RTC_INDEX_PORT: u16 = 0x70;
/// Data port.
pub const RTC_DATA_PORT: u16 = 0x71;
/// The PIC input the RTC drives.
pub const RTC_IRQ: u8 = 8;
/// Bytes of CMOS, clock registers included.
pub const CMOS_SIZE: usize = 128;

pub const REG_SECONDS: u8 = 0x00;
pub const REG_SECONDS_ALARM: u8 = 0x01;
pub const REG_MINUTES: u8 = 0x02;
pub const REG_MINUTES_ALARM: u8 = 0x03;
pub const REG_HOURS: u8 = 0x04;
pub const REG_HOURS_ALARM: u8 = 0x05;
pub const REG_DAY_OF_WEEK: u8 = 0x06;
pub const REG_DAY_OF_MONTH: u8 = 0x07;
pub const REG_MONTH: u8 = 0x08;
pub const REG_YEAR: u8 = 0x09;
pub const REG_A: u8 = 0x0A;
pub const REG_B: u8 = 0x0B;
pub const REG_C: u8 = 0x0C;
pub const REG_D: u8 = 0x0D;

/// Register A: update in progress (read-only).
pub const REG_A_UIP: u8 = 0x80;
/// Register A: divider-chain select, bits 6-4.
pub const REG_A_DV: u8 = 0x70;
/// Register A: both of these DV bits set hold the divider chain in reset.
pub const REG_A_DV_RESET: u8 = 0x60;
/// Register A: periodic rate select.
pub const REG_A_RS: u8 = 0x0F;
/// Register B: inhibit updates, let software set the time.
pub const REG_B_SET: u8 = 0x80;
/// Register B: periodic interrupt enable.
pub const REG_B_PIE: u8 = 0x40;
/// Register B: alarm interrupt enable.
pub const REG_B_AIE: u8 = 0x20;
/// Register B: update-ended interrupt enable.
pub const REG_B_UIE: u8 = 0x10;
/// Register B: square-wave enable.
pub const REG_B_SQWE: u8 = 0x08;
/// Register B: data mode binary (clear: BCD).
pub const REG_B_DM: u8 = 0x04;
/// Register B: 24-hour mode (clear: 12-hour with bit 7 of the hour as PM).
pub const REG_B_24H: u8 = 0x02;
/// Register B: daylight saving enable.
pub const REG_B_DSE: u8 = 0x01;
/// Register C: interrupt request flag.
pub const REG_C_IRQF: u8 = 0x80;
/// Register C: periodic interrupt flag.
pub const REG_C_PF: u8 = 0x40;
/// Register C: alarm flag.
pub const REG_C_AF: u8 = 0x20;
/// Register C: update-ended flag.
pub const REG_C_UF: u8 = 0x10;
/// Register D: valid RAM and time (the battery is good).
pub const REG_D_VRT: u8 = 0x80;
/// An alarm register with both top bits set matches any value.
pub const ALARM_DONT_CARE: u8 = 0xC0;

/// Register A as a PC BIOS leaves it: 32.768 kHz time base, 1024 Hz periodic rate.
pub const REG_A_DEFAULT: u8 = 0x26;
/// Register B as a PC BIOS leaves it: 24-hour BCD, no interrupts.
pub const REG_B_DEFAULT: u8 = REG_B_24H;

pub const CMOS_EQUIPMENT: u8 = 0x14;
pub const CMOS_BASE_MEM_LO: u8 = 0x15;
pub const CMOS_BASE_MEM_HI: u8 = 0x16;
pub const CMOS_EXT_MEM_LO: u8 = 0x17;
pub const CMOS_EXT_MEM_HI: u8 = 0x18;
pub const CMOS_CHECKSUM_HI: u8 = 0x2E;
pub const CMOS_CHECKSUM_LO: u8 = 0x2F;
pub const CMOS_EXT_MEM2_LO: u8 = 0x30;
pub const CMOS_EXT_MEM2_HI: u8 = 0x31;
pub const CMOS_CENTURY: u8 = 0x32;
pub const CMOS_HIGH_MEM_LO: u8 = 0x34;
pub const CMOS_HIGH_MEM_HI: u8 = 0x35;
pub const CMOS_ABOVE_4G_LO: u8 = 0x5B;

/// The RTC's time base.
pub const RTC_FREQ_HZ: u64 = 32_768;
/// UIP rises this many cycles (244 us) before an update.
const UIP_CYCLES: u64 = 8;
/// A read of register A this close (100 ms) before an update it did not see counts as
/// polling: the next read shows the update's UIP late. See the module documentation.
pub const UIP_POLL_GAP_CYCLES: u64 = RTC_FREQ_HZ / 10;
/// After a divider reset the first update comes half a second later.
const FIRST_UPDATE_CYCLES: u64 = RTC_FREQ_HZ / 2;

const SECS_PER_DAY: i64 = 86_400;
/// 2000-01-01T00:00:00: where a deterministic machine's clock starts unless told otherwise.
pub const DEFAULT_BASE_SECONDS: i64 = 946_684_800;
/// Calendar range a saved state may hold: year 0 to the largest year a century register and
/// a year register can express (165 * 100 + 165 with BCD digits of 15).
const MIN_SECONDS: i64 = -62_167_219_200;
const MAX_SECONDS: i64 = 461_701_324_800;

/// Where the RTC's calendar starts when the machine is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcBase {
    /// The host's UTC time at that moment: the one reading of the host clock a machine
    /// makes, and the usual choice with a realtime clock.
    HostUtc,
    /// A fixed date and time, in seconds since 1970-01-01T00:00:00 UTC, starting at the
    /// beginning of that second.
    Fixed(i64),
}

/// Guest-visible state of the RTC and CMOS RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtcState {
    /// CMOS contents. Registers A and B as written (UIP is not stored), C holds the PF, AF
    /// and UF flags, D is always VRT. The time registers (0x00, 0x02, 0x04, 0x06-0x09) and
    /// the century (0x32) hold the guest's values only while SET is on; otherwise the time
    /// is `seconds`.
    pub cmos: [u8; CMOS_SIZE],
    /// Register selected through port 0x70, 0-127.
    pub index: u8,
    /// Bit 7 of the last write to port 0x70.
    pub nmi_disabled: bool,
    /// The time shown while SET is off: seconds since 1970-01-01T00:00:00.
    pub seconds: i64,
    /// The 32.768 kHz cycle of virtual time at which the next update happens (meaningful
    /// while the divider runs).
    pub next_update: u64,
    /// The cycle up to which updates and periodic ticks have been accounted for.
    pub synced: u64,
    /// The cycle of the last read of register A.
    pub last_a_read: u64,
    /// The update (by its cycle) for which UIP has last been shown.
    pub uip_shown: u64,
}

/// An [`RtcState`] that the device could not have reached.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RtcStateError {
    #[error("register index {0:#04x} is beyond the 128 bytes of CMOS")]
    Index(u8),
    #[error("register {reg:#04x} holds {value:#04x}, which has bits the device never stores")]
    Register { reg: u8, value: u8 },
    #[error("calendar time {0} s lies outside years 0 to 16599")]
    Seconds(i64),
    #[error("next update at cycle {next_update} is not within one second after cycle {synced}")]
    Phase { next_update: u64, synced: u64 },
    #[error("cycle {0} lies beyond the end of virtual time")]
    Cycle(u64),
}

/// The last 32.768 kHz cycle of virtual time (`u64::MAX` ns).
const MAX_CYCLE: u64 = (u64::MAX as u128 * RTC_FREQ_HZ as u128 / 1_000_000_000) as u64;

/// Cycles of the divider chain completed by virtual time `ns`.
pub fn ns_to_cycle(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(RTC_FREQ_HZ) / 1_000_000_000) as u64
}

/// The first virtual ns at which cycle `c` has been reached.
pub fn cycle_to_ns(c: u64) -> u64 {
    let ns = (u128::from(c) * 1_000_000_000).div_ceil(u128::from(RTC_FREQ_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Months outside 1-12 and days
/// outside the month carry over, as `mktime` normalises them.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let m0 = month - 1;
    let y = year + m0.div_euclid(12);
    let m = m0.rem_euclid(12) + 1;
    // March-based year, so February's length only matters at the end of it.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// The date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since 1970-01-01T00:00:00 of a date and time.
pub fn seconds_from_civil(year: i64, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> i64 {
    days_from_civil(year, i64::from(month), i64::from(day)) * SECS_PER_DAY
        + i64::from(hour) * 3600
        + i64::from(min) * 60
        + i64::from(sec)
}

/// A broken-down calendar time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub min: u8,
    pub sec: u8,
    /// 1 = Sunday ... 7 = Saturday, the RTC's numbering.
    pub weekday: u8,
}

impl DateTime {
    pub fn from_seconds(s: i64) -> Self {
        let days = s.div_euclid(SECS_PER_DAY);
        let tod = s.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (tod / 3600) as u8,
            min: (tod / 60 % 60) as u8,
            sec: (tod % 60) as u8,
            // 1970-01-01 was a Thursday.
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
        }
    }
}

fn bin_to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

/// BCD digits to binary; digits above 9 are taken at face value, as the hardware's
/// counters would carry them.
fn bcd_to_bin(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0F)
}

/// One alarm register as a condition on a time field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AlarmField {
    Any,
    Is(u8),
    /// A value the time register can never show.
    Never,
}

impl AlarmField {
    fn matches(self, v: u8) -> bool {
        match self {
            AlarmField::Any => true,
            AlarmField::Is(x) => x == v,
            AlarmField::Never => false,
        }
    }

    /// The smallest value >= `from` (and below `limit`) this field accepts.
    fn first_from(self, from: u8, limit: u8) -> Option<u8> {
        match self {
            AlarmField::Any if from < limit => Some(from),
            AlarmField::Is(x) if x >= from && x < limit => Some(x),
            _ => None,
        }
    }
}

/// The first time of day (seconds since midnight) at or after `from` that matches all three
/// alarm fields.
fn first_alarm_from(from: u32, h: AlarmField, m: AlarmField, s: AlarmField) -> Option<u32> {
    let (fh, fm, fs) = (
        (from / 3600) as u8,
        (from / 60 % 60) as u8,
        (from % 60) as u8,
    );
    for hour in fh..24 {
        if !h.matches(hour) {
            continue;
        }
        let m0 = if hour == fh { fm } else { 0 };
        let mut minute = m0;
        while let Some(mm) = m.first_from(minute, 60) {
            let s0 = if hour == fh && mm == fm { fs } else { 0 };
            if let Some(ss) = s.first_from(s0, 60) {
                return Some(u32::from(hour) * 3600 + u32::from(mm) * 60 + u32::from(ss));
            }
            minute = mm + 1;
        }
    }
    None
}

/// The MC146818 with its CMOS RAM. See the module documentation.
#[derive(Clone, Debug)]
pub struct Rtc {
    s: RtcState,
}

impl Rtc {
    /// A clock showing `seconds` (since 1970) at virtual time `now_ns`, whose next update is
    /// `to_next_update_ns` later (the fraction of the current second still to run). Registers
    /// A and B are as a BIOS sets them; the rest of the CMOS is zero.
    pub fn new(seconds: i64, to_next_update_ns: u64, now_ns: u64) -> Self {
        let mut cmos = [0u8; CMOS_SIZE];
        cmos[usize::from(REG_A)] = REG_A_DEFAULT;
        cmos[usize::from(REG_B)] = REG_B_DEFAULT;
        cmos[usize::from(REG_D)] = REG_D_VRT;
        let now = ns_to_cycle(now_ns);
        let next = ns_to_cycle(now_ns.saturating_add(to_next_update_ns.min(1_000_000_000)));
        let seconds = seconds.clamp(MIN_SECONDS, MAX_SECONDS);
        Rtc {
            s: RtcState {
                cmos,
                index: 0,
                nmi_disabled: false,
                seconds,
                next_update: next.max(now + 1),
                synced: now,
                last_a_read: 0,
                uip_shown: 0,
            },
        }
    }

    /// Fills the CMOS bytes a PC BIOS reads for the memory size and equipment, as a PC's
    /// firmware setup leaves them, and their checksum.
    pub fn set_pc_config(&mut self, ram_size: u64) {
        let kib = ram_size >> 10;
        let ext = kib.saturating_sub(1024).min(0xFFFF) as u16;
        let high = (ram_size.min(1 << 32).saturating_sub(16 << 20) >> 16).min(0xFFFF) as u16;
        let above_4g = ram_size.saturating_sub(1 << 32) >> 16;
        let c = &mut self.s.cmos;
        // No FPU (the CPU model has none), no floppy drives, display "EGA/VGA or none".
        c[usize::from(CMOS_EQUIPMENT)] = 0x00;
        c[usize::from(CMOS_BASE_MEM_LO)..=usize::from(CMOS_BASE_MEM_HI)]
            .copy_from_slice(&640u16.to_le_bytes());
        c[usize::from(CMOS_EXT_MEM_LO)..=usize::from(CMOS_EXT_MEM_HI)]
            .copy_from_slice(&ext.to_le_bytes());
        c[usize::from(CMOS_EXT_MEM2_LO)..=usize::from(CMOS_EXT_MEM2_HI)]
            .copy_from_slice(&ext.to_le_bytes());
        c[usize::from(CMOS_HIGH_MEM_LO)..=usize::from(CMOS_HIGH_MEM_HI)]
            .copy_from_slice(&high.to_le_bytes());
        let a4 = above_4g.to_le_bytes();
        c[usize::from(CMOS_ABOVE_4G_LO)..usize::from(CMOS_ABOVE_4G_LO) + 3]
            .copy_from_slice(&a4[..3]);
        let sum: u16 = c[0x10..=0x2D].iter().map(|&b| u16::from(b)).sum();
        c[usize::from(CMOS_CHECKSUM_HI)] = (sum >> 8) as u8;
        c[usize::from(CMOS_CHECKSUM_LO)] = sum as u8;
    }

    /// The RESET pin (a system reset): interrupt enables and flags clear, time and CMOS
    /// RAM kept (the chip runs on its battery).
    pub fn reset(&mut self, now_ns: u64) {
        self.sync(now_ns);
        self.s.cmos[usize::from(REG_B)] &= !(REG_B_PIE | REG_B_AIE | REG_B_UIE | REG_B_SQWE);
        self.s.cmos[usize::from(REG_C)] = 0;
    }

    fn reg(&self, r: u8) -> u8 {
        self.s.cmos[usize::from(r)]
    }

    fn running(&self) -> bool {
        self.reg(REG_A) & REG_A_DV_RESET != REG_A_DV_RESET
    }

    fn set_mode(&self) -> bool {
        self.reg(REG_B) & REG_B_SET != 0
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & REG_B_DM != 0
    }

    /// Periodic interval in divider cycles, if the rate select gives one.
    fn period(&self) -> Option<u64> {
        match self.reg(REG_A) & REG_A_RS {
            0 => None,
            1 => Some(128),
            2 => Some(256),
            rs => Some(1 << (rs - 1)),
        }
    }

    fn periodic_active(&self) -> Option<u64> {
        if self.running() && self.reg(REG_B) & REG_B_PIE != 0 {
            self.period()
        } else {
            None
        }
    }

    /// The offset that puts periodic ticks on multiples of the period, counted from the
    /// divider phase (every period divides half a second, so the phase of the next update
    /// fixes them all).
    fn periodic_offset(&self, p: u64) -> u64 {
        (p - self.s.next_update % p) % p
    }

    /// Brings flags and time forward to virtual time `now_ns`.
    pub fn sync(&mut self, now_ns: u64) {
        let b = ns_to_cycle(now_ns);
        let a = self.s.synced;
        if b <= a {
            return;
        }
        if let Some(p) = self.periodic_active() {
            let o = self.periodic_offset(p);
            if (b + o) / p > (a + o) / p {
                self.s.cmos[usize::from(REG_C)] |= REG_C_PF;
            }
        }
        if self.running() && self.s.next_update <= b {
            let n = (b - self.s.next_update) / RTC_FREQ_HZ + 1;
            if !self.set_mode() {
                let old = self.s.seconds;
                let new = old.saturating_add(n as i64).min(MAX_SECONDS);
                let mut flags = REG_C_UF;
                if self.next_alarm_after(old).is_some_and(|t| t <= new) {
                    flags |= REG_C_AF;
                }
                self.s.seconds = new;
                self.s.cmos[usize::from(REG_C)] |= flags;
            }
            self.s.next_update += n * RTC_FREQ_HZ;
        }
        self.s.synced = b;
    }

    /// Level of the interrupt output (IRQF).
    pub fn irq_level(&self) -> bool {
        self.reg(REG_C) & self.reg(REG_B) & (REG_C_PF | REG_C_AF | REG_C_UF) != 0
    }

    /// The virtual time at which the interrupt output will next rise, if nothing else
    /// changes; `None` if it is already up (only a read of register C lowers it) or no
    /// enabled source is armed.
    pub fn next_irq_deadline(&mut self, now_ns: u64) -> Option<u64> {
        self.sync(now_ns);
        if self.irq_level() || !self.running() {
            return None;
        }
        let mut best: Option<u64> = None;
        let mut consider = |c: u64| best = Some(best.map_or(c, |b: u64| b.min(c)));
        if let Some(p) = self.periodic_active() {
            let o = self.periodic_offset(p);
            consider(((self.s.synced + o) / p + 1) * p - o);
        }
        let b = self.reg(REG_B);
        if !self.set_mode() {
            if b & REG_B_UIE != 0 {
                consider(self.s.next_update);
            }
            if b & REG_B_AIE != 0 {
                if let Some(t) = self.next_alarm_after(self.s.seconds) {
                    let ahead = u64::try_from(t - self.s.seconds - 1).unwrap_or(0);
                    consider(
                        self.s
                            .next_update
                            .saturating_add(ahead.saturating_mul(RTC_FREQ_HZ)),
                    );
                }
            }
        }
        best.map(cycle_to_ns)
    }

    /// Decodes a register value in the current data mode.
    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            bcd_to_bin(v)
        }
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            bin_to_bcd(v % 100)
        }
    }

    fn encode_hour(&self, h: u8) -> u8 {
        if self.reg(REG_B) & REG_B_24H != 0 {
            self.encode(h)
        } else {
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            self.encode(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    /// A 0-23 hour from a register value, if it is one the clock could show.
    fn decode_hour(&self, v: u8) -> Option<u8> {
        if self.reg(REG_B) & REG_B_24H != 0 {
            Some(self.decode(v)).filter(|&h| h < 24)
        } else {
            let h12 = self.decode(v & 0x7F);
            if !(1..=12).contains(&h12) {
                return None;
            }
            Some(h12 % 12 + if v & 0x80 != 0 { 12 } else { 0 })
        }
    }

    fn alarm_field(&self, reg: u8, limit: u8) -> AlarmField {
        let v = self.reg(reg);
        if v & ALARM_DONT_CARE == ALARM_DONT_CARE {
            return AlarmField::Any;
        }
        let decoded = if reg == REG_HOURS_ALARM {
            self.decode_hour(v)
        } else {
            Some(self.decode(v)).filter(|&x| x < limit)
        };
        decoded.map_or(AlarmField::Never, AlarmField::Is)
    }

    /// The first second after `t` whose time of day the alarm registers match.
    fn next_alarm_after(&self, t: i64) -> Option<i64> {
        let h = self.alarm_field(REG_HOURS_ALARM, 24);
        let m = self.alarm_field(REG_MINUTES_ALARM, 60);
        let s = self.alarm_field(REG_SECONDS_ALARM, 60);
        let day = t.div_euclid(SECS_PER_DAY) * SECS_PER_DAY;
        let tod = (t - day) as u32 + 1;
        if tod < SECS_PER_DAY as u32 {
            if let Some(x) = first_alarm_from(tod, h, m, s) {
                return Some(day + i64::from(x));
            }
        }
        first_alarm_from(0, h, m, s).map(|x| day + SECS_PER_DAY + i64::from(x))
    }

    fn is_time_reg(r: u8) -> bool {
        matches!(
            r,
            REG_SECONDS
                | REG_MINUTES
                | REG_HOURS
                | REG_DAY_OF_WEEK
                | REG_DAY_OF_MONTH
                | REG_MONTH
                | REG_YEAR
                | CMOS_CENTURY
        )
    }

    /// The time register `r` as the clock shows `seconds` in the current format.
    fn time_reg_value(&self, r: u8) -> u8 {
        let t = DateTime::from_seconds(self.s.seconds);
        match r {
            REG_SECONDS => self.encode(t.sec),
            REG_MINUTES => self.encode(t.min),
            REG_HOURS => self.encode_hour(t.hour),
            REG_DAY_OF_WEEK => self.encode(t.weekday),
            REG_DAY_OF_MONTH => self.encode(t.day),
            REG_MONTH => self.encode(t.month),
            REG_YEAR => self.encode(t.year.rem_euclid(100) as u8),
            _ => self.encode(t.year.div_euclid(100).rem_euclid(100) as u8),
        }
    }

    /// Copies the running time into the time registers (the clock is being stopped or
    /// one field is about to be replaced).
    fn store_time_regs(&mut self) {
        for r in [
            REG_SECONDS,
            REG_MINUTES,
            REG_HOURS,
            REG_DAY_OF_WEEK,
            REG_DAY_OF_MONTH,
            REG_MONTH,
            REG_YEAR,
            CMOS_CENTURY,
        ] {
            self.s.cmos[usize::from(r)] = self.time_reg_value(r);
        }
    }

    /// Reads the calendar time back from the time registers. Out-of-range fields carry
    /// over (second 61 is a minute and a second), as QEMU normalises them.
    fn load_time_regs(&mut self) {
        let f = |r: u8| self.decode(self.reg(r));
        let hour_raw = self.reg(REG_HOURS);
        let hour = self.decode_hour(hour_raw).unwrap_or_else(|| {
            // Not a valid hour for the mode: take the digits at face value.
            self.decode(hour_raw & 0x7F)
        });
        let year = i64::from(f(CMOS_CENTURY)) * 100 + i64::from(f(REG_YEAR));
        let s = days_from_civil(
            year,
            i64::from(f(REG_MONTH)),
            i64::from(f(REG_DAY_OF_MONTH)),
        ) * SECS_PER_DAY
            + i64::from(hour) * 3600
            + i64::from(f(REG_MINUTES)) * 60
            + i64::from(f(REG_SECONDS));
        self.s.seconds = s.clamp(MIN_SECONDS, MAX_SECONDS);
    }

    /// UIP as a read of register A at the synced time sees it (see the module doc).
    fn uip(&mut self) -> bool {
        let now = self.s.synced;
        let last_read = std::mem::replace(&mut self.s.last_a_read, now);
        if !self.running() || self.set_mode() {
            return false;
        }
        let next = self.s.next_update;
        if next - now <= UIP_CYCLES {
            self.s.uip_shown = next;
            return true;
        }
        let Some(last_update) = next.checked_sub(RTC_FREQ_HZ) else {
            return false;
        };
        if last_read < last_update
            && last_read + UIP_POLL_GAP_CYCLES >= last_update
            && self.s.uip_shown != last_update
        {
            self.s.uip_shown = last_update;
            return true;
        }
        false
    }

    /// A read of port `port` (0x70 or 0x71) at virtual time `now_ns`.
    pub fn read(&mut self, port: u16, now_ns: u64) -> u8 {
        if port != RTC_DATA_PORT {
            // The index port is write-only.
            return 0xFF;
        }
        self.sync(now_ns);
        let r = self.s.index;
        match r {
            REG_A => {
                let uip = self.uip();
                self.reg(REG_A) | if uip { REG_A_UIP } else { 0 }
            }
            REG_C => {
                let v = self.reg(REG_C) | if self.irq_level() { REG_C_IRQF } else { 0 };
                self.s.cmos[usize::from(REG_C)] = 0;
                v
            }
            REG_D => REG_D_VRT,
            r if Self::is_time_reg(r) && !self.set_mode() => self.time_reg_value(r),
            r => self.reg(r),
        }
    }

    /// A write of `v` to port `port` at virtual time `now_ns`.
    pub fn write(&mut self, port: u16, v: u8, now_ns: u64) {
        if port == RTC_INDEX_PORT {
            self.s.index = v & 0x7F;
            self.s.nmi_disabled = v & 0x80 != 0;
            return;
        }
        if port != RTC_DATA_PORT {
            return;
        }
        self.sync(now_ns);
        let r = self.s.index;
        match r {
            REG_A => {
                let was_running = self.running();
                self.s.cmos[usize::from(REG_A)] = v & !REG_A_UIP;
                if !was_running && self.running() {
                    self.s.next_update = self.s.synced + FIRST_UPDATE_CYCLES;
                }
            }
            REG_B => {
                let old = self.reg(REG_B);
                let mut v = v;
                if v & REG_B_SET != 0 {
                    v &= !REG_B_UIE;
                    if old & REG_B_SET == 0 {
                        self.store_time_regs();
                    }
                }
                self.s.cmos[usize::from(REG_B)] = v;
                if old & REG_B_SET != 0 && v & REG_B_SET == 0 {
                    // The registers were written in the format in force now.
                    self.load_time_regs();
                }
            }
            REG_C | REG_D => log::trace!("write {v:#x} to read-only RTC register {r:#x}"),
            r if Self::is_time_reg(r) => {
                if !self.set_mode() {
                    self.store_time_regs();
                    self.s.cmos[usize::from(r)] = v;
                    self.load_time_regs();
                } else {
                    self.s.cmos[usize::from(r)] = v;
                }
            }
            r => self.s.cmos[usize::from(r)] = v,
        }
    }

    /// The calendar time the clock shows at `now_ns` (while SET is on, what the guest has
    /// written so far).
    pub fn date_time(&mut self, now_ns: u64) -> DateTime {
        self.sync(now_ns);
        if self.set_mode() {
            let mut c = self.clone();
            c.load_time_regs();
            DateTime::from_seconds(c.s.seconds)
        } else {
            DateTime::from_seconds(self.s.seconds)
        }
    }

    pub fn state(&self) -> &RtcState {
        &self.s
    }

    pub fn from_state(state: RtcState) -> Result<Self, RtcStateError> {
        if usize::from(state.index) >= CMOS_SIZE {
            return Err(RtcStateError::Index(state.index));
        }
        let check = |reg: u8, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(RtcStateError::Register {
                    reg,
                    value: state.cmos[usize::from(reg)],
                })
            }
        };
        check(REG_A, state.cmos[usize::from(REG_A)] & REG_A_UIP == 0)?;
        check(
            REG_C,
            state.cmos[usize::from(REG_C)] & !(REG_C_PF | REG_C_AF | REG_C_UF) == 0,
        )?;
        check(REG_D, state.cmos[usize::from(REG_D)] == REG_D_VRT)?;
        let b = state.cmos[usize::from(REG_B)];
        check(REG_B, !(b & REG_B_SET != 0 && b & REG_B_UIE != 0))?;
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&state.seconds) {
            return Err(RtcStateError::Seconds(state.seconds));
        }
        if state.last_a_read > state.synced {
            return Err(RtcStateError::Cycle(state.last_a_read));
        }
        for c in [state.synced, state.next_update, state.uip_shown] {
            if c > MAX_CYCLE + RTC_FREQ_HZ {
                return Err(RtcStateError::Cycle(c));
            }
        }
        let running = state.cmos[usize::from(REG_A)] & REG_A_DV_RESET != REG_A_DV_RESET;
        if running
            && !(state.next_update > state.synced
                && state.next_update - state.synced <= RTC_FREQ_HZ)
        {
            return Err(RtcStateError::Phase {
                next_update: state.next_update,
                synced: state.synced,
            });
        }
        Ok(Rtc { s: state })
    }

    pub fn set_state(&mut self, state: RtcState) -> Result<(), RtcStateError> {
        *self = Self::from_state(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    /// A clock showing the given time at 0 ns, next update exactly one second later.
    fn at(y: i64, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Rtc {
        Rtc::new(seconds_from_civil(y, mo, d, h, mi, s), SEC, 0)
    }

    fn rd(r: &mut Rtc, reg: u8, now: u64) -> u8 {
        r.write(RTC_INDEX_PORT, reg, now);
        r.read(RTC_DATA_PORT, now)
    }

    fn wr(r: &mut Rtc, reg: u8, v: u8, now: u64) {
        r.write(RTC_INDEX_PORT, reg, now);
        r.write(RTC_DATA_PORT, v, now);
    }

    fn time_regs(r: &mut Rtc, now: u64) -> [u8; 8] {
        [
            REG_YEAR,
            REG_MONTH,
            REG_DAY_OF_MONTH,
            REG_HOURS,
            REG_MINUTES,
            REG_SECONDS,
            REG_DAY_OF_WEEK,
            CMOS_CENTURY,
        ]
        .map(|reg| rd(r, reg, now))
    }

    #[test]
    fn calendar_conversions() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            seconds_from_civil(2000, 1, 1, 0, 0, 0),
            DEFAULT_BASE_SECONDS
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for d in [-800_000, -1, 0, 59, 10_956, 11_016, 47_541, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(dd)), d);
        }
        // Month 13 carries into the next year.
        assert_eq!(days_from_civil(2023, 13, 1), days_from_civil(2024, 1, 1));
        let t = DateTime::from_seconds(seconds_from_civil(2024, 2, 29, 13, 5, 9));
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.min, t.sec, t.weekday),
            (2024, 2, 29, 13, 5, 9, 5),
            "2024-02-29 was a Thursday"
        );
    }

    #[test]
    fn bcd_binary_and_12_hour_formats() {
        let mut r = at(2024, 7, 4, 13, 5, 9);
        assert_eq!(
            time_regs(&mut r, 0),
            [0x24, 0x07, 0x04, 0x13, 0x05, 0x09, 0x05, 0x20]
        );
        wr(&mut r, REG_B, REG_B_24H | REG_B_DM, 0);
        assert_eq!(time_regs(&mut r, 0), [24, 7, 4, 13, 5, 9, 5, 20]);
        // 12-hour: 1 PM is 1 with the PM bit.
        wr(&mut r, REG_B, REG_B_DM, 0);
        assert_eq!(rd(&mut r, REG_HOURS, 0), 0x81);
        wr(&mut r, REG_B, 0, 0);
        assert_eq!(rd(&mut r, REG_HOURS, 0), 0x81);
        for (h, want) in [(0, 0x12), (1, 0x01), (11, 0x11), (12, 0x92), (23, 0x91)] {
            let mut r = at(2024, 7, 4, h, 0, 0);
            wr(&mut r, REG_B, 0, 0);
            assert_eq!(rd(&mut r, REG_HOURS, 0), want, "hour {h} in 12h BCD");
            // And back: writing the 12-hour value gives the same time.
            wr(&mut r, REG_HOURS, want, 0);
            assert_eq!(r.date_time(0).hour, h);
        }
        // Writing time fields in binary mode.
        let mut r = at(2024, 7, 4, 13, 5, 9);
        wr(&mut r, REG_B, REG_B_24H | REG_B_DM, 0);
        wr(&mut r, REG_MINUTES, 59, 0);
        wr(&mut r, REG_YEAR, 99, 0);
        wr(&mut r, CMOS_CENTURY, 19, 0);
        let t = r.date_time(0);
        assert_eq!((t.year, t.min, t.hour), (1999, 59, 13));
    }

    #[test]
    fn updates_and_uip() {
        let mut r = at(2024, 7, 4, 13, 5, 9);
        // UIP is up in the last 244 us before the update, and only then.
        assert_eq!(rd(&mut r, REG_A, SEC - 300_000) & REG_A_UIP, 0);
        assert_eq!(rd(&mut r, REG_A, SEC - 200_000) & REG_A_UIP, REG_A_UIP);
        assert_eq!(rd(&mut r, REG_A, SEC - 1), REG_A_DEFAULT | REG_A_UIP);
        assert_eq!(rd(&mut r, REG_SECONDS, SEC - 1), 0x09, "not updated yet");
        assert_eq!(rd(&mut r, REG_A, SEC) & REG_A_UIP, 0);
        assert_eq!(rd(&mut r, REG_SECONDS, SEC), 0x10);
        assert_eq!(rd(&mut r, REG_C, SEC), REG_C_UF, "UF without UIE, no IRQF");
        assert_eq!(rd(&mut r, REG_C, SEC), 0, "reading C cleared it");
        assert_eq!(rd(&mut r, REG_SECONDS, 51 * SEC), 0x00);
        assert_eq!(rd(&mut r, REG_MINUTES, 51 * SEC), 0x06);
        assert_eq!(rd(&mut r, REG_D, 0), REG_D_VRT);
        // The half-second first update after a divider reset.
        wr(&mut r, REG_A, 0x70, 60 * SEC + 100 * MS);
        assert_eq!(rd(&mut r, REG_SECONDS, 70 * SEC), 0x09, "held in reset");
        assert_eq!(rd(&mut r, REG_A, 70 * SEC), 0x70, "no UIP in reset");
        wr(&mut r, REG_A, REG_A_DEFAULT, 70 * SEC + 100 * MS);
        assert_eq!(rd(&mut r, REG_SECONDS, 70 * SEC + 599 * MS), 0x09);
        assert_eq!(rd(&mut r, REG_SECONDS, 70 * SEC + 601 * MS), 0x10);
        assert_eq!(rd(&mut r, REG_SECONDS, 71 * SEC + 601 * MS), 0x11);
    }

    #[test]
    fn a_poller_never_misses_uip() {
        let mut r = at(2024, 7, 4, 13, 5, 9);
        // Polling every 50 us: the window is seen on time, once.
        let mut seen = Vec::new();
        for t in (SEC - 2 * MS..SEC + 2 * MS).step_by(50_000) {
            if rd(&mut r, REG_A, t) & REG_A_UIP != 0 {
                seen.push(t);
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.iter().all(|t| (SEC - 244_141..SEC).contains(t)));
        // A poller that steps over the window (a 5 ms gap across the update) sees UIP on
        // the first read after it, once, and the new time with it.
        let t0 = 2 * SEC - 3 * MS;
        assert_eq!(rd(&mut r, REG_A, t0) & REG_A_UIP, 0);
        assert_eq!(
            rd(&mut r, REG_A, t0 + 5 * MS) & REG_A_UIP,
            REG_A_UIP,
            "late"
        );
        assert_eq!(rd(&mut r, REG_A, t0 + 5 * MS + 10_000) & REG_A_UIP, 0);
        assert_eq!(rd(&mut r, REG_SECONDS, t0 + 5 * MS + 20_000), 0x11);
        // One read long before the update is not polling: no late UIP.
        assert_eq!(rd(&mut r, REG_A, 2 * SEC + 500 * MS) & REG_A_UIP, 0);
        assert_eq!(rd(&mut r, REG_A, 3 * SEC + 500 * MS) & REG_A_UIP, 0);
        // Nor with SET on.
        wr(&mut r, REG_B, REG_B_24H | REG_B_SET, 4 * SEC - 2 * MS);
        assert_eq!(rd(&mut r, REG_A, 4 * SEC - MS) & REG_A_UIP, 0);
        assert_eq!(rd(&mut r, REG_A, 4 * SEC + MS) & REG_A_UIP, 0);
    }

    #[test]
    fn rollover_and_leap_years() {
        type Date = (i64, u8, u8);
        let cases: [(Date, Date); 6] = [
            ((2023, 12, 31), (2024, 1, 1)),
            ((2024, 2, 28), (2024, 2, 29)),
            ((2024, 2, 29), (2024, 3, 1)),
            ((2023, 2, 28), (2023, 3, 1)),
            ((2000, 2, 28), (2000, 2, 29)),
            ((2100, 2, 28), (2100, 3, 1)),
        ];
        for ((y, m, d), (y2, m2, d2)) in cases {
            let mut r = at(y, m, d, 23, 59, 59);
            let t = r.date_time(SEC);
            assert_eq!(
                (t.year, t.month, t.day, t.hour, t.min, t.sec),
                (y2, m2, d2, 0, 0, 0),
                "the second after {y}-{m}-{d} 23:59:59"
            );
        }
        // Century rollover in the registers, BCD and binary.
        let mut r = at(2099, 12, 31, 23, 59, 59);
        assert_eq!(
            time_regs(&mut r, SEC),
            [0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x06, 0x21]
        );
        wr(&mut r, REG_B, REG_B_24H | REG_B_DM, SEC);
        assert_eq!(time_regs(&mut r, SEC), [0, 1, 1, 0, 0, 0, 6, 21]);
    }

    #[test]
    fn set_bit_stops_updates_and_loads_written_time() {
        let mut r = at(2024, 7, 4, 13, 5, 9);
        wr(&mut r, REG_B, REG_B_24H | REG_B_UIE, 0);
        wr(&mut r, REG_B, REG_B_24H | REG_B_SET | REG_B_UIE, 100 * MS);
        assert_eq!(
            rd(&mut r, REG_B, 100 * MS),
            REG_B_24H | REG_B_SET,
            "SET clears UIE"
        );
        assert_eq!(
            rd(&mut r, REG_A, 5 * SEC - 1) & REG_A_UIP,
            0,
            "no UIP while SET"
        );
        assert_eq!(
            rd(&mut r, REG_SECONDS, 5 * SEC),
            0x09,
            "no updates while SET"
        );
        assert_eq!(rd(&mut r, REG_C, 5 * SEC), 0, "no UF while SET");
        wr(&mut r, REG_YEAR, 0x01, 5 * SEC);
        wr(&mut r, REG_MONTH, 0x12, 5 * SEC);
        wr(&mut r, REG_DAY_OF_MONTH, 0x31, 5 * SEC);
        wr(&mut r, REG_HOURS, 0x23, 5 * SEC);
        wr(&mut r, REG_MINUTES, 0x59, 5 * SEC);
        wr(&mut r, REG_SECONDS, 0x59, 5 * SEC);
        wr(&mut r, CMOS_CENTURY, 0x20, 5 * SEC);
        assert_eq!(
            rd(&mut r, REG_SECONDS, 5 * SEC + 1),
            0x59,
            "reads show what was written"
        );
        wr(&mut r, REG_B, REG_B_24H, 5 * SEC + 500 * MS);
        // The divider kept its phase: the next update is at 6 s.
        assert_eq!(rd(&mut r, REG_SECONDS, 6 * SEC - 1), 0x59);
        assert_eq!(
            time_regs(&mut r, 6 * SEC),
            [0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x03, 0x20]
        );
    }

    #[test]
    fn periodic_rates() {
        for (rs, per_sec) in [(1u8, 256u64), (2, 128), (3, 8192), (6, 1024), (15, 2)] {
            let mut r = at(2024, 1, 1, 0, 0, 0);
            wr(&mut r, REG_A, 0x20 | rs, 0);
            wr(&mut r, REG_B, REG_B_24H | REG_B_PIE, 0);
            let mut count = 0;
            let mut now = 0;
            while let Some(d) = r.next_irq_deadline(now) {
                if d > SEC {
                    break;
                }
                assert!(!r.irq_level());
                now = d;
                r.sync(now);
                assert!(r.irq_level(), "deadline {d} raised nothing (rs {rs})");
                // (The tick at 1 s coincides with an update: UF too.)
                assert_eq!(rd(&mut r, REG_C, now) & !REG_C_UF, REG_C_IRQF | REG_C_PF);
                count += 1;
            }
            assert_eq!(count, per_sec, "rate select {rs}");
        }
        // No PIE: neither PF nor a deadline; RS 0: nothing either.
        let mut r = at(2024, 1, 1, 0, 0, 0);
        assert_eq!(r.next_irq_deadline(0), None);
        assert_eq!(rd(&mut r, REG_C, 100 * MS), 0);
        wr(&mut r, REG_A, 0x20, 0);
        wr(&mut r, REG_B, REG_B_24H | REG_B_PIE, 0);
        assert_eq!(r.next_irq_deadline(0), None);
    }

    #[test]
    fn irq_line_stays_up_until_c_is_read() {
        let mut r = at(2024, 1, 1, 0, 0, 0);
        wr(&mut r, REG_B, REG_B_24H | REG_B_PIE, 0);
        assert_eq!(r.next_irq_deadline(0), Some(cycle_to_ns(32)), "1024 Hz");
        r.sync(10 * MS);
        assert!(r.irq_level());
        assert_eq!(r.next_irq_deadline(10 * MS), None, "line already up");
        // Enabling UIE with UF pending would raise it too (combinational IRQF).
        assert_eq!(rd(&mut r, REG_C, 10 * MS), REG_C_IRQF | REG_C_PF);
        assert!(!r.irq_level());
        wr(&mut r, REG_B, REG_B_24H, 10 * MS);
        r.sync(2 * SEC);
        assert!(!r.irq_level(), "UF set but UIE off");
        wr(&mut r, REG_B, REG_B_24H | REG_B_UIE, 2 * SEC);
        assert!(r.irq_level());
        assert_eq!(rd(&mut r, REG_C, 2 * SEC), REG_C_IRQF | REG_C_UF);
        assert_eq!(r.next_irq_deadline(2 * SEC), Some(3 * SEC));
    }

    #[test]
    fn alarm_interrupts() {
        let mut r = at(2024, 1, 1, 10, 30, 0);
        wr(&mut r, REG_SECONDS_ALARM, 0x03, 0);
        wr(&mut r, REG_MINUTES_ALARM, 0x30, 0);
        wr(&mut r, REG_HOURS_ALARM, 0x10, 0);
        wr(&mut r, REG_B, REG_B_24H | REG_B_AIE, 0);
        assert_eq!(r.next_irq_deadline(0), Some(3 * SEC), "10:30:03");
        r.sync(3 * SEC - 1);
        assert!(!r.irq_level());
        assert_eq!(rd(&mut r, REG_C, 3 * SEC), REG_C_IRQF | REG_C_AF | REG_C_UF);
        // Next match: tomorrow.
        assert_eq!(r.next_irq_deadline(3 * SEC), Some(3 * SEC + 86_400 * SEC));
        // Don't care hours and minutes: every minute at second 3.
        wr(&mut r, REG_HOURS_ALARM, 0xC0, 3 * SEC);
        wr(&mut r, REG_MINUTES_ALARM, 0xFF, 3 * SEC);
        assert_eq!(r.next_irq_deadline(3 * SEC), Some(63 * SEC));
        // All don't care: every second.
        wr(&mut r, REG_SECONDS_ALARM, 0xC5, 3 * SEC);
        assert_eq!(r.next_irq_deadline(3 * SEC), Some(4 * SEC));
        // A match skipped over in one big step still sets AF.
        let mut r = at(2024, 1, 1, 10, 30, 0);
        wr(&mut r, REG_SECONDS_ALARM, 0x45, 0);
        wr(&mut r, REG_MINUTES_ALARM, 0xC0, 0);
        wr(&mut r, REG_HOURS_ALARM, 0xC0, 0);
        assert_eq!(rd(&mut r, REG_C, 40 * SEC), REG_C_UF);
        assert_eq!(rd(&mut r, REG_C, 50 * SEC), REG_C_UF | REG_C_AF);
        // An alarm value no clock shows never matches.
        wr(&mut r, REG_SECONDS_ALARM, 0x75, 50 * SEC);
        wr(&mut r, REG_B, REG_B_24H | REG_B_AIE, 50 * SEC);
        assert_eq!(r.next_irq_deadline(50 * SEC), None);
        assert_eq!(rd(&mut r, REG_C, 500 * SEC) & REG_C_AF, 0);
        // 12-hour alarm: 1 PM is 0x81.
        let mut r = at(2024, 1, 1, 13, 0, 0);
        wr(&mut r, REG_B, REG_B_AIE, 0);
        wr(&mut r, REG_HOURS_ALARM, 0x81, 0);
        wr(&mut r, REG_MINUTES_ALARM, 0x00, 0);
        wr(&mut r, REG_SECONDS_ALARM, 0x02, 0);
        assert_eq!(r.next_irq_deadline(0), Some(2 * SEC));
    }

    #[test]
    fn reset_clears_enables_and_flags() {
        let mut r = at(2024, 1, 1, 0, 0, 0);
        wr(&mut r, REG_B, 0x7F, 0);
        r.sync(2 * SEC);
        assert!(r.irq_level());
        wr(&mut r, 0x40, 0x5A, 2 * SEC);
        r.reset(2 * SEC);
        assert!(!r.irq_level());
        assert_eq!(rd(&mut r, REG_B, 2 * SEC), REG_B_DM | REG_B_24H | REG_B_DSE);
        assert_eq!(rd(&mut r, 0x40, 2 * SEC), 0x5A, "CMOS RAM survives");
        assert_eq!(rd(&mut r, REG_SECONDS, 2 * SEC), 2, "and so does the time");
    }

    #[test]
    fn index_port_and_nmi_mask() {
        let mut r = at(2024, 1, 1, 0, 0, 0);
        r.write(RTC_INDEX_PORT, 0x80 | REG_D, 0);
        assert!(r.state().nmi_disabled);
        assert_eq!(r.read(RTC_DATA_PORT, 0), REG_D_VRT);
        assert_eq!(r.read(RTC_INDEX_PORT, 0), 0xFF);
        r.write(RTC_INDEX_PORT, 0x7F, 0);
        assert!(!r.state().nmi_disabled);
        r.write(RTC_DATA_PORT, 0x42, 0);
        assert_eq!(r.read(RTC_DATA_PORT, 0), 0x42);
    }

    #[test]
    fn pc_memory_layout() {
        let mut r = at(2024, 1, 1, 0, 0, 0);
        let word = |r: &mut Rtc, lo: u8| u16::from_le_bytes([rd(r, lo, 0), rd(r, lo + 1, 0)]);
        for (ram, ext, high) in [
            (128u64 << 20, 0xFFFFu16, 0x0700u16),
            (32 << 20, 31 * 1024, 256),
            (15 << 20, 14 * 1024, 0),
            (3584 << 20, 0xFFFF, 3568 * 16),
        ] {
            r.set_pc_config(ram);
            assert_eq!(word(&mut r, CMOS_BASE_MEM_LO), 640);
            assert_eq!(word(&mut r, CMOS_EXT_MEM_LO), ext, "{ram:#x}");
            assert_eq!(word(&mut r, CMOS_EXT_MEM2_LO), ext);
            assert_eq!(word(&mut r, CMOS_HIGH_MEM_LO), high, "{ram:#x}");
            assert_eq!(
                [
                    rd(&mut r, 0x5B, 0),
                    rd(&mut r, 0x5C, 0),
                    rd(&mut r, 0x5D, 0)
                ],
                [0, 0, 0]
            );
            let sum: u16 = (0x10..=0x2D).map(|i| u16::from(rd(&mut r, i, 0))).sum();
            assert_eq!(
                u16::from_be_bytes([rd(&mut r, 0x2E, 0), rd(&mut r, 0x2F, 0)]),
                sum
            );
        }
        assert_eq!(rd(&mut r, CMOS_CENTURY, 0), 0x20);
        assert_eq!(rd(&mut r, CMOS_EQUIPMENT, 0), 0);
    }

    #[test]
    fn state_round_trip() {
        let mut r = at(2024, 7, 4, 13, 5, 9);
        r.set_pc_config(64 << 20);
        wr(&mut r, REG_B, REG_B_24H | REG_B_PIE | REG_B_DM, 0);
        wr(&mut r, REG_SECONDS_ALARM, 0xC0, 0);
        r.sync(1500 * MS);
        r.write(RTC_INDEX_PORT, 0x80 | REG_B, 1500 * MS);
        let s = r.state().clone();
        let mut q = Rtc::from_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        // Change it, restore the saved state, save again: equal.
        wr(&mut q, REG_B, REG_B_24H | REG_B_SET, 2 * SEC);
        wr(&mut q, 0x50, 1, 2 * SEC);
        assert_ne!(q.state(), &s);
        q.set_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        // Both behave the same from here on.
        for now in [2 * SEC, 3 * SEC + 7 * MS, 90 * SEC] {
            assert_eq!(q.next_irq_deadline(now), r.next_irq_deadline(now));
            assert_eq!(rd(&mut q, REG_C, now), rd(&mut r, REG_C, now));
            assert_eq!(time_regs(&mut q, now), time_regs(&mut r, now));
        }
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let good = at(2024, 7, 4, 13, 5, 9).state().clone();
        assert!(Rtc::from_state(good.clone()).is_ok());
        let mut s = good.clone();
        s.index = 128;
        assert_eq!(Rtc::from_state(s).unwrap_err(), RtcStateError::Index(128));
        let mut s = good.clone();
        s.cmos[usize::from(REG_A)] |= REG_A_UIP;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Register { reg: REG_A, .. })
        ));
        let mut s = good.clone();
        s.cmos[usize::from(REG_C)] = REG_C_IRQF;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Register { reg: REG_C, .. })
        ));
        let mut s = good.clone();
        s.cmos[usize::from(REG_D)] = 0;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Register { reg: REG_D, .. })
        ));
        let mut s = good.clone();
        s.cmos[usize::from(REG_B)] = REG_B_SET | REG_B_UIE;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Register { reg: REG_B, .. })
        ));
        let mut s = good.clone();
        s.seconds = i64::MAX;
        assert_eq!(
            Rtc::from_state(s).unwrap_err(),
            RtcStateError::Seconds(i64::MAX)
        );
        let mut s = good.clone();
        s.next_update = s.synced;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Phase { .. })
        ));
        let mut s = good.clone();
        s.next_update = s.synced + 2 * RTC_FREQ_HZ;
        assert!(matches!(
            Rtc::from_state(s),
            Err(RtcStateError::Phase { .. })
        ));
        let mut s = good.clone();
        s.last_a_read = s.synced + 1;
        assert_eq!(
            Rtc::from_state(s.clone()).unwrap_err(),
            RtcStateError::Cycle(s.last_a_read)
        );
        let mut s = good;
        s.synced = u64::MAX;
        assert_eq!(
            Rtc::from_state(s).unwrap_err(),
            RtcStateError::Cycle(u64::MAX)
        );
    }
}
