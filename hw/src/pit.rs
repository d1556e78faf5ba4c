//! The Intel 8254 programmable interval timer, as wired on a PC.
//!
//! Three 16-bit down-counters share a 1.193182 MHz input clock ([`PIT_FREQ_HZ`]):
//!
//! | port | function                                                               |
//! |------|------------------------------------------------------------------------|
//! | 0x40 | channel 0 count: OUT0 drives IRQ 0; GATE0 tied high                     |
//! | 0x41 | channel 1 count: historically DRAM refresh; GATE1 tied high             |
//! | 0x42 | channel 2 count: OUT2 feeds the speaker and port 0x61 bit 5             |
//! | 0x43 | control word (write only): mode, access, BCD, latch and read-back cmds  |
//! | 0x61 | system control port B, the bits owned by the timer (see below)         |
//!
//! Port 0x61 bits handled here: bit 0 is GATE2, bit 1 (speaker data enable) and bits 2-3
//! (parity/channel check enables) are stored and read back, bit 4 is the refresh-request
//! toggle (flips every 15.085 us of virtual time, as on AT-class boards), bit 5 is OUT2.
//! Bits 6-7 (NMI error status) read as 0; the board can merge in its own.
//!
//! Emulated: all six counting modes with their gate behaviour, binary and BCD counting,
//! LSB / MSB / LSB-then-MSB access for reads and writes, the counter latch command, the
//! read-back command (count and status latches), the null-count flag, the one-clock delay
//! between writing a count and the counter loading it, and the mode-specific rules for a
//! count written while counting (modes 0 and 4 restart at once, modes 2 and 3 at the end
//! of the current cycle, modes 1 and 5 at the next trigger).
//!
//! Nothing is stepped per clock: each counter records the tick at which it was loaded,
//! and its value and OUT level at any virtual time are computed from `now_ns`, so a
//! halted machine can sleep until [`Pit::next_irq0_deadline`].
//!
//! Simplifications: in mode 3 a new count takes effect at the end of the full cycle
//! rather than the half cycle, and the count read back for an odd mode-3 count is the
//! even count below it (the hardware's exact sequence is not modelled). OUT transitions
//! caused by programming (a control word forcing OUT high) are not counted as IRQ 0
//! edges; only transitions produced by counting are. The speaker is not sounded.

use thiserror::Error;

/// The 8254 input clock on a PC, in Hz.
pub const PIT_FREQ_HZ: u64 = 1_193_182;

/// Channel 0 count port.
pub const PIT_CHANNEL0: u16 = 0x40;
/// Channel 1 count port.
pub const PIT_CHANNEL1: u16 = 0x41;
/// Channel 2 count port.
pub const PIT_CHANNEL2: u16 = 0x42;
/// Control word register (write only).
pub const PIT_CONTROL: u16 = 0x43;
/// System control port B.
pub const PORT_61: u16 = 0x61;

/// Control word: SC1-SC0 field (counter select; 3 = read-back command).
pub const CW_SC_SHIFT: u8 = 6;
/// Control word SC value of the read-back command.
pub const CW_SC_READBACK: u8 = 3;
/// Control word: RW1-RW0 field.
pub const CW_RW_SHIFT: u8 = 4;
/// RW value: counter latch command.
pub const RW_LATCH: u8 = 0;
/// RW value: read/write least significant byte only.
pub const RW_LSB: u8 = 1;
/// RW value: read/write most significant byte only.
pub const RW_MSB: u8 = 2;
/// RW value: least significant byte, then most significant byte.
pub const RW_LSB_MSB: u8 = 3;
/// Control word: M2-M0 field shift.
pub const CW_M_SHIFT: u8 = 1;
/// Control word: BCD counting.
pub const CW_BCD: u8 = 0x01;

/// Read-back: do NOT latch the count (active-low COUNT bit).
pub const RB_NOT_COUNT: u8 = 0x20;
/// Read-back: do NOT latch the status (active-low STATUS bit).
pub const RB_NOT_STATUS: u8 = 0x10;
/// Read-back: select counter 0 (counter 1 and 2 are the next bits up).
pub const RB_CNT0: u8 = 0x02;

/// Status byte: level of OUT.
pub const STATUS_OUTPUT: u8 = 0x80;
/// Status byte: the last count written has not been loaded into the counter yet.
pub const STATUS_NULL_COUNT: u8 = 0x40;

/// Port 0x61: GATE2.
pub const P61_GATE2: u8 = 0x01;
/// Port 0x61: speaker data enable.
pub const P61_SPKR_DATA: u8 = 0x02;
/// Port 0x61: refresh request toggle.
pub const P61_REFRESH: u8 = 0x10;
/// Port 0x61: OUT2.
pub const P61_OUT2: u8 = 0x20;
/// Port 0x61 bits stored as written.
const P61_STORED: u8 = 0x0F;
/// Period of the refresh toggle, in ns.
const REFRESH_TOGGLE_NS: u64 = 15_085;

/// `PitChannelState::phase`: control word written, no count yet.
pub const PHASE_IDLE: u8 = 0;
/// `PitChannelState::phase`: modes 1 and 5 hold a count and wait for a gate trigger.
pub const PHASE_WAIT_TRIGGER: u8 = 1;
/// `PitChannelState::phase`: the counter is loaded and counting (or gated off).
pub const PHASE_COUNTING: u8 = 2;

/// No pending period in `PitChannelState::pending_period`.
const NO_PENDING: u32 = 0;

/// Guest-visible state of one 8254 counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PitChannelState {
    /// Counting mode, 0-5.
    pub mode: u8,
    /// Access mode: [`RW_LSB`], [`RW_MSB`] or [`RW_LSB_MSB`].
    pub rw: u8,
    pub bcd: bool,
    /// Count register as last written, raw (BCD digits when `bcd`).
    pub cr: u16,
    /// LSB of a two-byte count whose MSB has not been written yet.
    pub write_lsb: u8,
    /// A two-byte count write is half done.
    pub write_msb_next: bool,
    /// An unlatched two-byte read has returned the LSB.
    pub read_msb_next: bool,
    /// Output latch holding a latched count (raw).
    pub count_latch: u16,
    /// 0 = no count latched, 1 = latched and untouched, 2 = LSB read, MSB next.
    pub latch_state: u8,
    /// Latched status byte.
    pub status_latch: u8,
    pub status_latched: bool,
    /// [`PHASE_IDLE`], [`PHASE_WAIT_TRIGGER`] or [`PHASE_COUNTING`].
    pub phase: u8,
    /// Counting element value (binary) while not counting.
    pub held: u16,
    /// Clock tick at which the counting element was loaded with `period`.
    pub load_tick: u64,
    /// Count in effect, binary, 1-65536 (0 written means the full range).
    pub period: u32,
    /// Modes 2 and 3: a count written while counting, loaded at `pending_tick`; 0 if none.
    pub pending_period: u32,
    pub pending_tick: u64,
    /// Null count is reported until this tick (`u64::MAX`: until a count is loaded).
    pub cr_load_tick: u64,
    /// GATE input level.
    pub gate: bool,
    /// Tick at which GATE last went low (meaningful while `gate` is false).
    pub gate_low_tick: u64,
}

/// Guest-visible state of the timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PitState {
    pub channels: [PitChannelState; 3],
    /// Port 0x61 bits 0-3 as last written.
    pub port61: u8,
    /// Clock tick up to which OUT0 rising edges have been counted.
    pub irq0_last_tick: u64,
    /// OUT0 rising edges counted but not yet collected by [`Pit::irq0_edges`].
    pub irq0_pending_edges: u64,
}

/// A [`PitState`] that no sequence of guest writes could produce.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PitStateError {
    #[error("channel {channel}: invalid mode {mode}")]
    Mode { channel: usize, mode: u8 },
    #[error("channel {channel}: invalid access mode {rw}")]
    Access { channel: usize, rw: u8 },
    #[error("channel {channel}: invalid phase {phase} for mode {mode}")]
    Phase { channel: usize, phase: u8, mode: u8 },
    #[error("channel {channel}: invalid latch state {latch_state}")]
    LatchState { channel: usize, latch_state: u8 },
    #[error("channel {channel}: count {period} out of range 1..=65536")]
    Period { channel: usize, period: u32 },
    #[error("channel {channel}: GATE is tied high on a PC")]
    GateTiedHigh { channel: usize },
    #[error("port 0x61 value {0:#04x} has bits the timer does not own")]
    Port61(u8),
    #[error("{field} {tick} lies beyond the last clock tick of virtual time")]
    Tick { field: &'static str, tick: u64 },
}

/// The clock tick at the end of virtual time (`u64::MAX` ns). Saved ticks beyond it are
/// corrupt, except that a load may be scheduled up to one full count plus a clock later.
const MAX_TICK: u64 = (u64::MAX as u128 * PIT_FREQ_HZ as u128 / 1_000_000_000) as u64;
const MAX_LOAD_TICK: u64 = MAX_TICK + 65_537;

fn check_tick(field: &'static str, tick: u64, limit: u64) -> Result<(), PitStateError> {
    if tick > limit {
        return Err(PitStateError::Tick { field, tick });
    }
    Ok(())
}

/// Number of input clock edges in (0, `ns`].
fn ticks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_FREQ_HZ) / 1_000_000_000) as u64
}

/// The first virtual ns at which `tick` clock edges have happened.
fn tick_time(tick: u64) -> u64 {
    let ns = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(PIT_FREQ_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn bcd_to_bin(raw: u16) -> u32 {
    (0..4)
        .rev()
        .fold(0u32, |acc, i| acc * 10 + u32::from((raw >> (4 * i)) & 0xF))
}

fn bin_to_bcd(mut v: u32) -> u16 {
    let mut raw = 0u16;
    for i in 0..4 {
        raw |= ((v % 10) as u16) << (4 * i);
        v /= 10;
    }
    raw
}

impl PitChannelState {
    /// The state QEMU and most BIOS-less setups assume: mode 3, full count, running from
    /// `k` (channel 2 held by its low gate until port 0x61 raises it).
    fn power_on(k: u64, gate: bool) -> Self {
        PitChannelState {
            mode: 3,
            rw: RW_LSB_MSB,
            bcd: false,
            cr: 0,
            write_lsb: 0,
            write_msb_next: false,
            read_msb_next: false,
            count_latch: 0,
            latch_state: 0,
            status_latch: 0,
            status_latched: false,
            phase: PHASE_COUNTING,
            held: 0,
            load_tick: k,
            period: 65_536,
            pending_period: NO_PENDING,
            pending_tick: 0,
            cr_load_tick: k,
            gate,
            gate_low_tick: k,
        }
    }

    fn validate(&self, channel: usize) -> Result<(), PitStateError> {
        if self.mode > 5 {
            return Err(PitStateError::Mode {
                channel,
                mode: self.mode,
            });
        }
        if !matches!(self.rw, RW_LSB | RW_MSB | RW_LSB_MSB) {
            return Err(PitStateError::Access {
                channel,
                rw: self.rw,
            });
        }
        let phase_ok = match self.phase {
            PHASE_IDLE | PHASE_COUNTING => true,
            PHASE_WAIT_TRIGGER => matches!(self.mode, 1 | 5),
            _ => false,
        };
        if !phase_ok {
            return Err(PitStateError::Phase {
                channel,
                phase: self.phase,
                mode: self.mode,
            });
        }
        if self.latch_state > 2 || (self.latch_state == 2 && self.rw != RW_LSB_MSB) {
            return Err(PitStateError::LatchState {
                channel,
                latch_state: self.latch_state,
            });
        }
        if self.period == 0 || self.period > 65_536 {
            return Err(PitStateError::Period {
                channel,
                period: self.period,
            });
        }
        if self.pending_period > 65_536 {
            return Err(PitStateError::Period {
                channel,
                period: self.pending_period,
            });
        }
        if channel < 2 && !self.gate {
            return Err(PitStateError::GateTiedHigh { channel });
        }
        check_tick("load_tick", self.load_tick, MAX_LOAD_TICK)?;
        check_tick("pending_tick", self.pending_tick, MAX_LOAD_TICK)?;
        check_tick("gate_low_tick", self.gate_low_tick, MAX_TICK)?;
        if self.cr_load_tick != u64::MAX {
            check_tick("cr_load_tick", self.cr_load_tick, MAX_LOAD_TICK)?;
        }
        Ok(())
    }

    fn modulus(&self) -> u64 {
        if self.bcd {
            10_000
        } else {
            65_536
        }
    }

    /// The count a raw CR value stands for; 0 is the full range.
    fn decode(&self, raw: u16) -> u32 {
        let n = if self.bcd {
            bcd_to_bin(raw)
        } else {
            u32::from(raw)
        };
        if n == 0 {
            self.modulus() as u32
        } else {
            n
        }
    }

    /// A counting-element value as the guest reads it.
    fn encode(&self, ce: u16) -> u16 {
        if self.bcd {
            bin_to_bcd(u32::from(ce) % 10_000)
        } else {
            ce
        }
    }

    /// The (load tick, count) in effect at tick `k`: a pending mode 2/3 count takes over
    /// at its tick even before anything writes it back with `settle`.
    fn segment(&self, k: u64) -> (u64, u32) {
        if self.pending_period != NO_PENDING && k >= self.pending_tick {
            (self.pending_tick, self.pending_period)
        } else {
            (self.load_tick, self.period)
        }
    }

    /// Modes 0, 2, 3 and 4 stop counting while GATE is low: time stands still for them.
    fn gated_tick(&self, k: u64) -> u64 {
        if !self.gate && matches!(self.mode, 0 | 2 | 3 | 4) {
            k.min(self.gate_low_tick)
        } else {
            k
        }
    }

    /// Counting-element value (binary) at tick `k`.
    fn ce(&self, k: u64) -> u16 {
        if self.phase != PHASE_COUNTING {
            return self.held;
        }
        let k = self.gated_tick(k);
        let (load, n) = self.segment(k);
        let n = u64::from(n);
        let d = k.saturating_sub(load);
        let v = match self.mode {
            2 => n - d % n,
            3 => {
                let p = d % n;
                let high = n.div_ceil(2);
                let h = if p < high { p } else { p - high };
                (n & !1).saturating_sub(2 * h)
            }
            _ => {
                let m = self.modulus();
                (n + m - d % m) % m
            }
        };
        v as u16
    }

    /// Level of OUT at tick `k`.
    fn out(&self, k: u64) -> bool {
        match self.phase {
            PHASE_IDLE => self.mode != 0,
            PHASE_WAIT_TRIGGER => true,
            _ => {
                if !self.gate && matches!(self.mode, 2 | 3) {
                    return true;
                }
                let k = self.gated_tick(k);
                let (load, n) = self.segment(k);
                let n = u64::from(n);
                let d = k.saturating_sub(load);
                match self.mode {
                    0 | 1 => d >= n,
                    2 => d % n != n - 1,
                    3 => d % n < n.div_ceil(2),
                    _ => d != n,
                }
            }
        }
    }

    /// Rising OUT edges produced by counting in ticks (`a`, `b`], for a counter whose
    /// gate stays high (channels 0 and 1).
    fn rising_edges(&self, a: u64, b: u64) -> u64 {
        if self.phase != PHASE_COUNTING || b <= a {
            return 0;
        }
        if self.pending_period != NO_PENDING && a < self.pending_tick && self.pending_tick <= b {
            let split = self.pending_tick;
            self.segment_edges(self.load_tick, self.period, a, split)
                + self.segment_edges(split, self.pending_period, split, b)
        } else {
            let (load, n) = self.segment(b);
            self.segment_edges(load, n, a, b)
        }
    }

    fn segment_edges(&self, load: u64, n: u32, a: u64, b: u64) -> u64 {
        let n = u64::from(n);
        match self.mode {
            2 | 3 => {
                // Cycle m (m >= 1) ends with a rising edge at load + m*n.
                let cycles = |x: u64| x.saturating_sub(load) / n;
                cycles(b) - cycles(a)
            }
            _ => {
                let edge = self.one_shot_edge(load, n);
                u64::from(a < edge && edge <= b)
            }
        }
    }

    /// The tick at which a one-shot mode's OUT rises: the end of the low phase in modes 0
    /// and 1, the end of the one-clock strobe in modes 4 and 5.
    fn one_shot_edge(&self, load: u64, n: u64) -> u64 {
        match self.mode {
            0 | 1 => load + n,
            _ => load + n + 1,
        }
    }

    /// The first tick after `k` with a rising OUT edge, for a gate that stays high.
    fn next_rising_edge(&self, k: u64) -> Option<u64> {
        if self.phase != PHASE_COUNTING {
            return None;
        }
        let (load, n) = self.segment(k);
        let n = u64::from(n);
        match self.mode {
            2 | 3 => Some(if k < load {
                load + n
            } else {
                load + ((k - load) / n + 1) * n
            }),
            _ => Some(self.one_shot_edge(load, n)).filter(|&e| e > k),
        }
    }

    /// Fold a pending count that has taken effect by tick `k` into the current segment.
    fn settle(&mut self, k: u64) {
        if self.pending_period != NO_PENDING && k >= self.pending_tick {
            self.load_tick = self.pending_tick;
            self.period = self.pending_period;
            self.pending_period = NO_PENDING;
        }
    }

    fn null_count(&self, k: u64) -> bool {
        k < self.cr_load_tick
    }

    fn status(&self, k: u64) -> u8 {
        let mut s = (self.rw << CW_RW_SHIFT) | (self.mode << CW_M_SHIFT);
        if self.bcd {
            s |= CW_BCD;
        }
        if self.out(k) {
            s |= STATUS_OUTPUT;
        }
        if self.null_count(k) {
            s |= STATUS_NULL_COUNT;
        }
        s
    }

    fn control_word(&mut self, val: u8, k: u64) {
        self.held = self.ce(k);
        let mode = (val >> CW_M_SHIFT) & 7;
        // Modes 6 and 7 are aliases of 2 and 3 (M2 is a don't-care for them).
        self.mode = if mode > 5 { mode & 3 } else { mode };
        self.rw = (val >> CW_RW_SHIFT) & 3;
        self.bcd = val & CW_BCD != 0;
        self.phase = PHASE_IDLE;
        self.pending_period = NO_PENDING;
        self.cr_load_tick = u64::MAX;
        self.write_msb_next = false;
        self.read_msb_next = false;
        self.latch_state = 0;
        self.status_latched = false;
    }

    fn latch_count(&mut self, k: u64) {
        // A second latch before the first is read is ignored, so the value stays coherent.
        if self.latch_state == 0 {
            self.count_latch = self.encode(self.ce(k));
            self.latch_state = 1;
        }
    }

    fn latch_status(&mut self, k: u64) {
        if !self.status_latched {
            self.status_latch = self.status(k);
            self.status_latched = true;
        }
    }

    fn read(&mut self, k: u64) -> u8 {
        if self.status_latched {
            self.status_latched = false;
            return self.status_latch;
        }
        let [lsb, msb] = if self.latch_state != 0 {
            self.count_latch.to_le_bytes()
        } else {
            self.encode(self.ce(k)).to_le_bytes()
        };
        match self.rw {
            RW_LSB => {
                self.latch_state = 0;
                lsb
            }
            RW_MSB => {
                self.latch_state = 0;
                msb
            }
            _ => {
                if self.latch_state != 0 {
                    if self.latch_state == 1 {
                        self.latch_state = 2;
                        lsb
                    } else {
                        self.latch_state = 0;
                        msb
                    }
                } else {
                    self.read_msb_next = !self.read_msb_next;
                    if self.read_msb_next {
                        lsb
                    } else {
                        msb
                    }
                }
            }
        }
    }

    fn write(&mut self, val: u8, k: u64) {
        match self.rw {
            RW_LSB => self.load_count(u16::from(val), k),
            RW_MSB => self.load_count(u16::from(val) << 8, k),
            _ => {
                if self.write_msb_next {
                    self.write_msb_next = false;
                    self.load_count(u16::from_le_bytes([self.write_lsb, val]), k);
                } else {
                    self.write_lsb = val;
                    self.write_msb_next = true;
                    // Mode 0 stops counting, with OUT low, as soon as the first byte lands.
                    if self.mode == 0 && self.phase == PHASE_COUNTING {
                        self.held = self.ce(k);
                        self.phase = PHASE_IDLE;
                    }
                }
            }
        }
    }

    /// A complete count has been written to CR at tick `k`.
    fn load_count(&mut self, raw: u16, k: u64) {
        self.cr = raw;
        let n = self.decode(raw);
        match self.mode {
            1 | 5 => {
                // Loaded by the next trigger, not now.
                if self.phase == PHASE_IDLE {
                    self.phase = PHASE_WAIT_TRIGGER;
                }
                self.cr_load_tick = u64::MAX;
            }
            2 | 3 if self.phase == PHASE_COUNTING && self.gate && k >= self.load_tick => {
                // A running rate generator finishes its current cycle first.
                let (load, cur) = (self.load_tick, u64::from(self.period));
                let boundary = load + ((k - load) / cur + 1) * cur;
                self.pending_period = n;
                self.pending_tick = boundary;
                self.cr_load_tick = boundary;
            }
            _ => self.start(n, k + 1),
        }
    }

    /// Load the counting element with `n` at tick `at` and count from there.
    fn start(&mut self, n: u32, at: u64) {
        self.phase = PHASE_COUNTING;
        self.load_tick = at;
        self.period = n;
        self.pending_period = NO_PENDING;
        self.cr_load_tick = self.cr_load_tick.min(at);
    }

    fn set_gate(&mut self, level: bool, k: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        if !level {
            self.gate_low_tick = k;
            return;
        }
        match self.mode {
            0 | 4 => {
                if self.phase == PHASE_COUNTING {
                    // Resume where counting stopped: shift the load tick by the time
                    // spent gated off.
                    let counted = self.gate_low_tick.saturating_sub(self.load_tick);
                    self.load_tick = k.max(self.load_tick) - counted;
                }
            }
            1 | 5 => {
                if self.phase != PHASE_IDLE {
                    self.start(self.decode(self.cr), k + 1);
                }
            }
            _ => {
                if self.phase == PHASE_COUNTING {
                    self.start(self.decode(self.cr), k + 1);
                }
            }
        }
    }
}

/// The 8254 timer. See the module documentation.
#[derive(Clone, Debug)]
pub struct Pit {
    state: PitState,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// The timer at power-on, virtual time 0: every channel in mode 3 with the full
    /// 65536 count (IRQ 0 at 18.2 Hz), channel 2 gated off.
    pub fn new() -> Self {
        Pit {
            state: Self::power_on_state(0),
        }
    }

    /// Return to the power-on state at `now_ns`.
    pub fn reset(&mut self, now_ns: u64) {
        self.state = Self::power_on_state(ticks(now_ns));
    }

    fn power_on_state(k: u64) -> PitState {
        PitState {
            channels: [
                PitChannelState::power_on(k, true),
                PitChannelState::power_on(k, true),
                PitChannelState::power_on(k, false),
            ],
            port61: 0,
            irq0_last_tick: k,
            irq0_pending_edges: 0,
        }
    }

    /// Bring the bookkeeping up to tick `k` before anything changes the counters: count
    /// the OUT0 edges so far under the old programming, and fold in pending counts.
    fn sync(&mut self, k: u64) {
        let s = &mut self.state;
        if k > s.irq0_last_tick {
            s.irq0_pending_edges = s
                .irq0_pending_edges
                .saturating_add(s.channels[0].rising_edges(s.irq0_last_tick, k));
            s.irq0_last_tick = k;
        }
        for ch in &mut s.channels {
            ch.settle(k);
        }
    }

    /// A guest byte read from ports 0x40-0x43.
    pub fn read(&mut self, port: u16, now_ns: u64) -> u8 {
        let k = ticks(now_ns);
        self.sync(k);
        match port {
            PIT_CHANNEL0..=PIT_CHANNEL2 => {
                self.state.channels[usize::from(port - PIT_CHANNEL0)].read(k)
            }
            PIT_CONTROL => {
                log::debug!("pit: read from write-only control port");
                0xFF
            }
            _ => {
                log::debug!("pit: read from unhandled port {port:#x}");
                0xFF
            }
        }
    }

    /// A guest byte write to ports 0x40-0x43.
    pub fn write(&mut self, port: u16, val: u8, now_ns: u64) {
        let k = ticks(now_ns);
        self.sync(k);
        match port {
            PIT_CHANNEL0..=PIT_CHANNEL2 => {
                self.state.channels[usize::from(port - PIT_CHANNEL0)].write(val, k)
            }
            PIT_CONTROL => self.control(val, k),
            _ => log::debug!("pit: write {val:#04x} to unhandled port {port:#x}"),
        }
    }

    fn control(&mut self, val: u8, k: u64) {
        let sc = val >> CW_SC_SHIFT;
        if sc == CW_SC_READBACK {
            for (i, ch) in self.state.channels.iter_mut().enumerate() {
                if val & (RB_CNT0 << i) == 0 {
                    continue;
                }
                if val & RB_NOT_COUNT == 0 {
                    ch.latch_count(k);
                }
                if val & RB_NOT_STATUS == 0 {
                    ch.latch_status(k);
                }
            }
            if val & 0x01 != 0 {
                log::debug!("pit: read-back command {val:#04x} with reserved bit 0 set");
            }
            return;
        }
        let ch = &mut self.state.channels[usize::from(sc)];
        if (val >> CW_RW_SHIFT) & 3 == RW_LATCH {
            ch.latch_count(k);
        } else {
            ch.control_word(val, k);
        }
    }

    /// Port 0x61 as the timer sees it (see the module documentation for the bits).
    pub fn read_port61(&self, now_ns: u64) -> u8 {
        let mut v = self.state.port61;
        if (now_ns / REFRESH_TOGGLE_NS) & 1 != 0 {
            v |= P61_REFRESH;
        }
        if self.out(2, now_ns) {
            v |= P61_OUT2;
        }
        v
    }

    /// A guest write to port 0x61: GATE2 and the stored control bits.
    pub fn write_port61(&mut self, val: u8, now_ns: u64) {
        let k = ticks(now_ns);
        self.sync(k);
        self.state.port61 = val & P61_STORED;
        self.state.channels[2].set_gate(val & P61_GATE2 != 0, k);
    }

    /// Rising edges of OUT0 since the last call (or since programming that happened after
    /// it). The board pulses IRQ 0 once if this is non-zero: the PIC cannot count.
    pub fn irq0_edges(&mut self, now_ns: u64) -> u64 {
        self.sync(ticks(now_ns));
        std::mem::take(&mut self.state.irq0_pending_edges)
    }

    /// Virtual time of the next rising edge of OUT0 after `now_ns`, or `now_ns` itself if
    /// an edge is already waiting for [`Pit::irq0_edges`]. `None` if OUT0 will not rise
    /// again without new programming (a one-shot that has fired, an idle counter).
    pub fn next_irq0_deadline(&self, now_ns: u64) -> Option<u64> {
        let k = ticks(now_ns);
        let ch0 = &self.state.channels[0];
        if self.state.irq0_pending_edges > 0
            || (k > self.state.irq0_last_tick && ch0.rising_edges(self.state.irq0_last_tick, k) > 0)
        {
            return Some(now_ns);
        }
        ch0.next_rising_edge(k).map(tick_time)
    }

    /// Level of OUT for `channel` (0-2) at `now_ns`.
    pub fn out(&self, channel: usize, now_ns: u64) -> bool {
        match self.state.channels.get(channel) {
            Some(ch) => ch.out(ticks(now_ns)),
            None => false,
        }
    }

    pub fn state(&self) -> &PitState {
        &self.state
    }

    pub fn from_state(state: PitState) -> Result<Self, PitStateError> {
        for (i, ch) in state.channels.iter().enumerate() {
            ch.validate(i)?;
        }
        if state.port61 & !P61_STORED != 0 {
            return Err(PitStateError::Port61(state.port61));
        }
        check_tick("irq0_last_tick", state.irq0_last_tick, MAX_TICK)?;
        Ok(Pit { state })
    }

    pub fn set_state(&mut self, state: PitState) -> Result<(), PitStateError> {
        *self = Self::from_state(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    /// Control word for `channel`, LSB-then-MSB, `mode`, binary.
    fn cw(channel: u8, mode: u8) -> u8 {
        (channel << CW_SC_SHIFT) | (RW_LSB_MSB << CW_RW_SHIFT) | (mode << CW_M_SHIFT)
    }

    fn program(p: &mut Pit, channel: u8, mode: u8, count: u16, now: u64) {
        p.write(PIT_CONTROL, cw(channel, mode), now);
        let port = PIT_CHANNEL0 + u16::from(channel);
        p.write(port, count as u8, now);
        p.write(port, (count >> 8) as u8, now);
    }

    fn read16(p: &mut Pit, port: u16, now: u64) -> u16 {
        let lo = p.read(port, now);
        let hi = p.read(port, now);
        u16::from_le_bytes([lo, hi])
    }

    /// ns of the `k`-th clock edge.
    fn at(k: u64) -> u64 {
        tick_time(k)
    }

    #[test]
    fn tick_conversion_round_trips() {
        for k in [0, 1, 2, 1193, 1_193_182, 123_456_789] {
            assert_eq!(ticks(tick_time(k)), k);
            if k > 0 {
                assert_eq!(ticks(tick_time(k) - 1), k - 1);
            }
        }
        assert_eq!(ticks(SEC), PIT_FREQ_HZ);
    }

    #[test]
    fn mode2_periods_over_one_second() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 0, 0);
        assert_eq!(p.irq0_edges(SEC), 18, "65536 count: 18.2 Hz");

        let mut p = Pit::new();
        program(&mut p, 0, 2, 1193, 0);
        let mut total = 0;
        // Collected in small steps, as the board does, or in one go: same count.
        for ms in 1..=1000 {
            total += p.irq0_edges(ms * 1_000_000);
        }
        assert_eq!(total, 1000);
        let mut q = Pit::new();
        program(&mut q, 0, 2, 1193, 0);
        assert_eq!(q.irq0_edges(SEC), 1000);
    }

    #[test]
    fn mode3_square_wave() {
        let mut p = Pit::new();
        assert_eq!(p.irq0_edges(SEC), 18, "power-on mode 3 runs at 18.2 Hz");
        program(&mut p, 0, 3, 1000, SEC);
        let load = ticks(SEC) + 1;
        assert!(p.out(0, at(load)));
        assert!(p.out(0, at(load + 499)));
        assert!(!p.out(0, at(load + 500)), "low for the second half");
        assert!(!p.out(0, at(load + 999)));
        assert!(p.out(0, at(load + 1000)));
        // Odd count: high one clock longer than low.
        program(&mut p, 1, 3, 5, 0);
        assert!(p.out(1, at(3)));
        assert!(!p.out(1, at(4)));
        assert!(!p.out(1, at(5)));
        assert!(p.out(1, at(6)));
        // Mode 3 counts down by two.
        program(&mut p, 1, 3, 100, at(10));
        assert_eq!(read16(&mut p, PIT_CHANNEL1, at(11)), 100);
        assert_eq!(read16(&mut p, PIT_CHANNEL1, at(14)), 94);
        assert_eq!(
            read16(&mut p, PIT_CHANNEL1, at(11 + 50)),
            100,
            "second half"
        );

        let mut q = Pit::new();
        program(&mut q, 0, 3, 1193, 0);
        assert_eq!(q.irq0_edges(SEC), 1000);
    }

    #[test]
    fn mode2_count_and_out() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 10, at(100));
        // Loaded on the clock after the write.
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(101)), 10);
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(105)), 6);
        assert!(p.out(0, at(109)));
        assert!(!p.out(0, at(110)), "low while the count is 1");
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(110)), 1);
        assert!(p.out(0, at(111)));
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(111)), 10, "reloaded");
        assert_eq!(p.irq0_edges(at(131)), 3);
    }

    #[test]
    fn mode2_new_count_waits_for_cycle_end() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 100, 0); // cycles end at ticks 101, 201, ...
        p.irq0_edges(at(150));
        p.write(PIT_CHANNEL0, 50, at(150));
        p.write(PIT_CHANNEL0, 0, at(150));
        p.write(PIT_CONTROL, 0xE2, at(150)); // read-back status of channel 0
        assert_ne!(p.read(PIT_CHANNEL0, at(150)) & STATUS_NULL_COUNT, 0);
        assert_eq!(p.next_irq0_deadline(at(150)), Some(at(201)));
        assert_eq!(p.irq0_edges(at(201)), 1);
        assert_eq!(
            p.next_irq0_deadline(at(201)),
            Some(at(251)),
            "new period 50"
        );
        assert_eq!(p.irq0_edges(at(351)), 3);
        p.write(PIT_CONTROL, 0xE2, at(352));
        assert_eq!(p.read(PIT_CHANNEL0, at(352)) & STATUS_NULL_COUNT, 0);
    }

    #[test]
    fn counter_latch_freezes_value() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1000, 0);
        p.write(PIT_CONTROL, 0x00, at(101)); // latch channel 0
        p.write(PIT_CONTROL, 0x00, at(500)); // ignored: latch not read yet
        let lo = p.read(PIT_CHANNEL0, at(700));
        let hi = p.read(PIT_CHANNEL0, at(900));
        assert_eq!(u16::from_le_bytes([lo, hi]), 900);
        // Unlatched again: live value.
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(901)), 100);
        p.write(PIT_CONTROL, 0x00, at(951));
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(990)), 50);
    }

    #[test]
    fn read_back_status_and_count() {
        let mut p = Pit::new();
        p.write(PIT_CONTROL, cw(2, 0) | CW_BCD, 0);
        // Read-back channel 2, status only.
        p.write(PIT_CONTROL, 0xC0 | RB_NOT_COUNT | (RB_CNT0 << 2), 0);
        let st = p.read(PIT_CHANNEL2, 0);
        assert_eq!(
            st,
            STATUS_NULL_COUNT | (RW_LSB_MSB << CW_RW_SHIFT) | CW_BCD,
            "mode 0, OUT low, null count"
        );
        p.write(PIT_CHANNEL2, 0x34, at(10));
        p.write(PIT_CHANNEL2, 0x12, at(10)); // BCD 1234
        p.write_port61(P61_GATE2, at(10));
        // Status and count latched together: status first, then the count.
        p.write(PIT_CONTROL, 0xC0 | (RB_CNT0 << 2), at(15));
        let st = p.read(PIT_CHANNEL2, at(40));
        assert_eq!(st & (STATUS_NULL_COUNT | STATUS_OUTPUT), 0);
        assert_eq!(read16(&mut p, PIT_CHANNEL2, at(50)), 0x1230, "BCD 1234 - 4");
        // Read-back of several channels latches each of them.
        program(&mut p, 1, 2, 500, at(100));
        p.write(PIT_CONTROL, 0xC0 | RB_NOT_STATUS | 0x0E, at(201));
        assert_eq!(read16(&mut p, PIT_CHANNEL1, at(300)), 400);
        assert_eq!(read16(&mut p, PIT_CHANNEL2, at(300)), 0x1044, "1234 - 190");
    }

    #[test]
    fn mode0_one_shot() {
        let mut p = Pit::new();
        p.irq0_edges(0);
        program(&mut p, 0, 0, 100, at(1000));
        assert!(!p.out(0, at(1000)), "OUT low once programmed");
        assert_eq!(p.next_irq0_deadline(at(1000)), Some(at(1101)));
        assert!(!p.out(0, at(1100)));
        assert!(p.out(0, at(1101)));
        assert!(p.out(0, SEC), "stays high");
        assert_eq!(p.irq0_edges(SEC), 1);
        assert_eq!(p.next_irq0_deadline(SEC), None);
        assert_eq!(p.irq0_edges(2 * SEC), 0);
        // The counter keeps wrapping after terminal count.
        let k = ticks(2 * SEC);
        let expect = ((100 + 65_536 - (k - 1001) % 65_536) % 65_536) as u16;
        assert_eq!(read16(&mut p, PIT_CHANNEL0, 2 * SEC), expect);

        // Writing the first byte of a new count stops the counter with OUT low.
        p.write(PIT_CHANNEL0, 0x10, 3 * SEC);
        assert!(!p.out(0, 3 * SEC + 1_000_000));
        assert_eq!(p.next_irq0_deadline(3 * SEC), None);
        p.write(PIT_CHANNEL0, 0x00, 4 * SEC);
        assert!(!p.out(0, 4 * SEC));
        assert!(p.out(0, 4 * SEC + 20_000));
        assert_eq!(p.irq0_edges(5 * SEC), 1);
    }

    #[test]
    fn mode4_strobe() {
        let mut p = Pit::new();
        p.irq0_edges(0);
        p.write(PIT_CONTROL, 0x38, 0); // channel 0, LSB/MSB, mode 4 (a one-shot tick)
        assert!(p.out(0, 0));
        p.write(PIT_CHANNEL0, 20, 0);
        p.write(PIT_CHANNEL0, 0, 0);
        assert!(p.out(0, at(20)));
        assert!(!p.out(0, at(21)), "one-clock strobe at terminal count");
        assert!(p.out(0, at(22)));
        assert_eq!(p.next_irq0_deadline(0), Some(at(22)));
        assert_eq!(
            p.next_irq0_deadline(at(30)),
            Some(at(30)),
            "edge not yet collected"
        );
        assert_eq!(p.irq0_edges(at(30)), 1);
        assert_eq!(p.next_irq0_deadline(at(30)), None);
    }

    #[test]
    fn lsb_only_and_msb_only_access() {
        let mut p = Pit::new();
        p.write(
            PIT_CONTROL,
            (1 << CW_SC_SHIFT) | (RW_LSB << CW_RW_SHIFT) | (2 << 1),
            0,
        );
        p.write(PIT_CHANNEL1, 200, 0);
        assert_eq!(p.read(PIT_CHANNEL1, at(11)), 190);
        assert_eq!(p.read(PIT_CHANNEL1, at(12)), 189);
        p.write(
            PIT_CONTROL,
            (1 << CW_SC_SHIFT) | (RW_MSB << CW_RW_SHIFT) | (2 << 1),
            0,
        );
        p.write(PIT_CHANNEL1, 0x02, 0); // count 0x200
        assert_eq!(p.read(PIT_CHANNEL1, at(1)), 0x02);
        assert_eq!(p.read(PIT_CHANNEL1, at(257)), 0x01);
    }

    #[test]
    fn bcd_counting() {
        let mut p = Pit::new();
        p.write(PIT_CONTROL, cw(0, 2) | CW_BCD, 0);
        p.write(PIT_CHANNEL0, 0x00, 0);
        p.write(PIT_CHANNEL0, 0x10, 0); // BCD 1000
        assert_eq!(read16(&mut p, PIT_CHANNEL0, at(1 + 1)), 0x0999);
        assert_eq!(p.irq0_edges(SEC), 1193);
        // BCD 0 is 10000 and the counter wraps at 9999 in one-shot modes.
        p.write(PIT_CONTROL, cw(1, 0) | CW_BCD, 0);
        p.write(PIT_CHANNEL1, 0, 0);
        p.write(PIT_CHANNEL1, 0, 0);
        assert_eq!(read16(&mut p, PIT_CHANNEL1, at(1)), 0x0000);
        assert_eq!(read16(&mut p, PIT_CHANNEL1, at(2)), 0x9999);
        assert!(p.out(1, at(10_001)));
    }

    #[test]
    fn channel2_gate_via_port61() {
        let mut p = Pit::new();
        assert_eq!(
            p.read_port61(0) & P61_OUT2,
            P61_OUT2,
            "mode 3 gated off: OUT high"
        );
        // The classic calibration loop: gate off, mode 0, count, gate on, poll bit 5.
        p.write_port61(P61_SPKR_DATA, 0);
        program(&mut p, 2, 0, 1193, 0);
        assert_eq!(
            p.read_port61(10_000_000) & P61_OUT2,
            0,
            "gate low: not counting"
        );
        assert_eq!(read16(&mut p, PIT_CHANNEL2, 10_000_000), 1193);
        p.write_port61(P61_GATE2 | P61_SPKR_DATA, 10_000_000);
        assert_eq!(
            p.read_port61(10_500_000) & (P61_OUT2 | P61_GATE2 | P61_SPKR_DATA),
            P61_GATE2 | P61_SPKR_DATA
        );
        assert_eq!(
            p.read_port61(11_001_000) & P61_OUT2,
            P61_OUT2,
            "1193 ticks = 1 ms"
        );

        // Gate low in mode 0 pauses counting; high again resumes where it stopped.
        program(&mut p, 2, 0, 1000, at(100_000));
        p.write_port61(0, at(100_400));
        assert_eq!(read16(&mut p, PIT_CHANNEL2, at(200_000)), 601);
        p.write_port61(P61_GATE2, at(200_000));
        assert!(!p.out(2, at(200_600)));
        assert!(p.out(2, at(200_601)));

        // Mode 2 with the gate low holds OUT high; the rising gate restarts the count.
        program(&mut p, 2, 2, 10, at(300_000));
        assert!(!p.out(2, at(300_010)));
        p.write_port61(0, at(300_010));
        assert!(p.out(2, at(300_010)), "gate low forces OUT high");
        p.write_port61(P61_GATE2, at(300_015));
        assert_eq!(read16(&mut p, PIT_CHANNEL2, at(300_016)), 10);
        assert!(!p.out(2, at(300_025)));

        // Mode 1: the gate edge triggers a one-shot; retriggering extends it.
        p.write_port61(0, at(400_000));
        program(&mut p, 2, 1, 50, at(400_000));
        assert!(p.out(2, at(400_100)), "waits for a trigger");
        p.write_port61(P61_GATE2, at(400_100));
        assert!(!p.out(2, at(400_120)));
        p.write_port61(0, at(400_130));
        p.write_port61(P61_GATE2, at(400_140));
        assert!(!p.out(2, at(400_180)), "retriggered at 400_140");
        assert!(p.out(2, at(400_191)));

        // The refresh toggle flips with virtual time.
        assert_ne!(
            p.read_port61(0) & P61_REFRESH,
            p.read_port61(15_085) & P61_REFRESH
        );
    }

    #[test]
    fn guest_nonsense_is_ignored() {
        let mut p = Pit::new();
        assert_eq!(p.read(PIT_CONTROL, 0), 0xFF);
        assert_eq!(p.read(0x44, 0), 0xFF);
        p.write(0x44, 1, 0);
        assert!(!p.out(7, 0));
        // Mode 6 is an alias of mode 2.
        p.write(PIT_CONTROL, cw(0, 6), 0);
        assert_eq!(p.state().channels[0].mode, 2);
    }

    #[test]
    fn state_round_trip() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 100, 0);
        p.write(PIT_CHANNEL0, 7, at(150)); // half of a new count
        program(&mut p, 1, 3, 33, at(10));
        p.write(PIT_CONTROL, 0x40, at(20)); // latch channel 1
        p.write_port61(P61_GATE2 | 0x0C, at(30));
        p.write(PIT_CONTROL, cw(2, 5), at(40));
        p.write(PIT_CHANNEL2, 1, at(40));
        p.write(PIT_CHANNEL2, 1, at(40));
        p.irq0_edges(at(160));
        let s = p.state().clone();
        let mut q = Pit::from_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        for now in [at(200), at(5000), SEC] {
            for c in 0..3 {
                assert_eq!(q.out(c, now), p.out(c, now));
            }
        }
        assert_eq!(q.read(PIT_CHANNEL1, at(300)), p.read(PIT_CHANNEL1, at(300)));
        assert_eq!(q.irq0_edges(SEC), p.irq0_edges(SEC));
        let mut r = Pit::new();
        r.set_state(s.clone()).unwrap();
        assert_eq!(r.state(), &s);
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let good = Pit::new().state().clone();
        let mut s = good.clone();
        s.channels[1].mode = 6;
        assert_eq!(
            Pit::from_state(s).unwrap_err(),
            PitStateError::Mode {
                channel: 1,
                mode: 6
            }
        );
        let mut s = good.clone();
        s.channels[0].rw = RW_LATCH;
        assert!(matches!(
            Pit::from_state(s),
            Err(PitStateError::Access { channel: 0, .. })
        ));
        let mut s = good.clone();
        s.channels[2].period = 65_537;
        assert!(matches!(
            Pit::from_state(s),
            Err(PitStateError::Period { channel: 2, .. })
        ));
        let mut s = good.clone();
        s.channels[2].period = 0;
        assert!(Pit::from_state(s).is_err());
        let mut s = good.clone();
        s.channels[0].phase = PHASE_WAIT_TRIGGER;
        assert!(matches!(
            Pit::from_state(s),
            Err(PitStateError::Phase { .. })
        ));
        let mut s = good.clone();
        s.channels[0].gate = false;
        assert_eq!(
            Pit::from_state(s).unwrap_err(),
            PitStateError::GateTiedHigh { channel: 0 }
        );
        let mut s = good.clone();
        s.channels[0].rw = RW_LSB;
        s.channels[0].latch_state = 2;
        assert!(matches!(
            Pit::from_state(s),
            Err(PitStateError::LatchState { .. })
        ));
        let mut s = good.clone();
        s.port61 = 0x20;
        assert_eq!(Pit::from_state(s).unwrap_err(), PitStateError::Port61(0x20));
        let mut s = good;
        s.channels[1].load_tick = u64::MAX - 1;
        assert!(matches!(
            Pit::from_state(s),
            Err(PitStateError::Tick {
                field: "load_tick",
                ..
            })
        ));
    }
}
