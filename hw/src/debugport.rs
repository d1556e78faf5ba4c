//! Debug I/O ports used by test programs and firmware: an exit port and a console port.
//!
//! * [`DebugExit`] behaves like QEMU's `isa-debug-exit`: any write of value `V` (of any
//!   width) asks the emulator to exit with status `(V << 1) | 1`, so a guest can never
//!   request a plain success (0) by accident and test harnesses map e.g. `V = 0x10` to a
//!   known code. tern places it at 0xF4, 4 ports wide, the configuration most kernel and
//!   bare-metal test suites pass to QEMU (`-device isa-debug-exit,iobase=0xf4,iosize=4`);
//!   QEMU's own default is 0x501, 2 ports. Reads return all ones like an unclaimed ISA
//!   port. The exit itself is up to the caller: the device only reports the request.
//! * [`DebugCon`] is the Bochs/QEMU "port 0xE9 hack" console: each byte written is guest
//!   output, collected in a buffer the frontend drains. A read returns the readback value
//!   (0xE9 by default), which is how software detects that the port exists.
//!
//! Neither device has guest-visible registers beyond its configuration, so their state
//! structs hold only that; pending console output is host-side data and not part of it.

use std::collections::VecDeque;

use thiserror::Error;

/// Conventional base port of the exit device.
pub const DEBUG_EXIT_IOBASE: u16 = 0xF4;
/// Conventional width, in ports, of the exit device.
pub const DEBUG_EXIT_IOSIZE: u16 = 4;
/// Bochs/QEMU debug console port.
pub const DEBUGCON_IOBASE: u16 = 0xE9;
/// Value a debug console read returns unless configured otherwise.
pub const DEBUGCON_READBACK: u8 = 0xE9;

/// An invalid debug-port state.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DebugPortStateError {
    #[error("exit port size {0} is not 1, 2 or 4")]
    BadSize(u16),
    #[error("exit port range {base:#x}+{size} runs past the end of I/O space")]
    RangeOverflow { base: u16, size: u16 },
}

/// Saved form of a [`DebugExit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugExitState {
    pub iobase: u16,
    pub iosize: u16,
}

/// QEMU `isa-debug-exit` compatible exit-request port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugExit {
    state: DebugExitState,
}

impl Default for DebugExit {
    fn default() -> Self {
        Self::new()
    }
}

impl DebugExit {
    /// The device at [`DEBUG_EXIT_IOBASE`], [`DEBUG_EXIT_IOSIZE`] ports wide.
    pub fn new() -> Self {
        DebugExit {
            state: DebugExitState {
                iobase: DEBUG_EXIT_IOBASE,
                iosize: DEBUG_EXIT_IOSIZE,
            },
        }
    }

    /// The device at another port range.
    pub fn with_range(iobase: u16, iosize: u16) -> Result<Self, DebugPortStateError> {
        Self::from_state(DebugExitState { iobase, iosize })
    }

    pub fn iobase(&self) -> u16 {
        self.state.iobase
    }

    pub fn iosize(&self) -> u16 {
        self.state.iosize
    }

    /// Whether `port` falls in this device's range.
    pub fn claims(&self, port: u16) -> bool {
        port.wrapping_sub(self.state.iobase) < self.state.iosize
    }

    /// A guest write of `val` (zero-extended from its access width): returns the exit status
    /// the guest asks for. QEMU passes `(V << 1) | 1` to `exit()`, which keeps the low 32
    /// bits; the same truncation applies here.
    pub fn write(&mut self, val: u32) -> Option<i32> {
        let status = (val << 1) | 1;
        log::debug!("debug-exit: guest wrote {val:#x}, exit status {status}");
        Some(status as i32)
    }

    /// A guest read of `size` bytes (1, 2 or 4): all ones, as from an empty ISA slot.
    pub fn read(&self, size: u8) -> u32 {
        match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        }
    }

    pub fn state(&self) -> DebugExitState {
        self.state.clone()
    }

    pub fn from_state(state: DebugExitState) -> Result<Self, DebugPortStateError> {
        if !matches!(state.iosize, 1 | 2 | 4) {
            return Err(DebugPortStateError::BadSize(state.iosize));
        }
        if state.iobase.checked_add(state.iosize - 1).is_none() {
            return Err(DebugPortStateError::RangeOverflow {
                base: state.iobase,
                size: state.iosize,
            });
        }
        Ok(DebugExit { state })
    }
}

/// Saved form of a [`DebugCon`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugConState {
    pub iobase: u16,
    pub readback: u8,
}

/// Bochs/QEMU port-0xE9 debug console.
#[derive(Clone, Debug)]
pub struct DebugCon {
    state: DebugConState,
    output: VecDeque<u8>,
}

impl Default for DebugCon {
    fn default() -> Self {
        Self::new()
    }
}

impl DebugCon {
    /// The console at [`DEBUGCON_IOBASE`] reading back [`DEBUGCON_READBACK`].
    pub fn new() -> Self {
        DebugCon {
            state: DebugConState {
                iobase: DEBUGCON_IOBASE,
                readback: DEBUGCON_READBACK,
            },
            output: VecDeque::new(),
        }
    }

    pub fn iobase(&self) -> u16 {
        self.state.iobase
    }

    /// A guest byte write: the byte becomes console output.
    pub fn write(&mut self, val: u8) {
        self.output.push_back(val);
    }

    /// A guest read: the readback value that identifies the port.
    pub fn read(&self) -> u8 {
        self.state.readback
    }

    /// Whether output is waiting to be drained.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Take all pending output.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.output.drain(..).collect()
    }

    /// Hand pending output to `f` without an intermediate copy, then forget it.
    pub fn drain_output(&mut self, mut f: impl FnMut(&[u8])) {
        let (a, b) = self.output.as_slices();
        if !a.is_empty() {
            f(a);
        }
        if !b.is_empty() {
            f(b);
        }
        self.output.clear();
    }

    pub fn state(&self) -> DebugConState {
        self.state.clone()
    }

    /// Every port and readback value is a valid configuration, so this cannot fail; it
    /// returns `Result` to match the other devices.
    pub fn from_state(state: DebugConState) -> Result<Self, DebugPortStateError> {
        Ok(DebugCon {
            state,
            output: VecDeque::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_value_shifted_with_low_bit_set() {
        let mut d = DebugExit::new();
        assert_eq!(d.write(0), Some(1));
        assert_eq!(d.write(0x10), Some(0x21));
        assert_eq!(d.write(0x31), Some(99));
        // A 32-bit write keeps the low 32 bits of the shifted value.
        assert_eq!(d.write(0x8000_0001), Some(3));
        assert_eq!(d.write(0xFFFF_FFFF), Some(-1));
    }

    #[test]
    fn exit_reads_all_ones_and_claims_its_range() {
        let d = DebugExit::new();
        assert_eq!(d.read(1), 0xFF);
        assert_eq!(d.read(2), 0xFFFF);
        assert_eq!(d.read(4), 0xFFFF_FFFF);
        assert!(!d.claims(0xF3));
        assert!(d.claims(0xF4) && d.claims(0xF7));
        assert!(!d.claims(0xF8));
        let e = DebugExit::with_range(0x501, 2).unwrap();
        assert!(e.claims(0x502) && !e.claims(0x503));
    }

    #[test]
    fn debugcon_collects_output_and_reads_back() {
        let mut c = DebugCon::new();
        assert_eq!(c.read(), 0xE9);
        assert!(!c.has_output());
        for b in b"hello" {
            c.write(*b);
        }
        assert!(c.has_output());
        assert_eq!(c.take_output(), b"hello");
        assert!(c.take_output().is_empty());
        c.write(b'x');
        c.write(b'y');
        let mut seen = Vec::new();
        c.drain_output(|s| seen.extend_from_slice(s));
        assert_eq!(seen, b"xy");
        assert!(!c.has_output());
    }

    #[test]
    fn state_round_trip() {
        let d = DebugExit::with_range(0x501, 2).unwrap();
        let s = d.state();
        assert_eq!(DebugExit::from_state(s.clone()).unwrap().state(), s);

        let c = DebugCon::from_state(DebugConState {
            iobase: 0x402,
            readback: 0x42,
        })
        .unwrap();
        assert_eq!(c.read(), 0x42);
        let cs = c.state();
        assert_eq!(DebugCon::from_state(cs.clone()).unwrap().state(), cs);
    }

    #[test]
    fn from_state_rejects_bad_exit_range() {
        assert_eq!(
            DebugExit::from_state(DebugExitState {
                iobase: 0xF4,
                iosize: 3
            })
            .unwrap_err(),
            DebugPortStateError::BadSize(3)
        );
        assert_eq!(
            DebugExit::with_range(0xFFFE, 4).unwrap_err(),
            DebugPortStateError::RangeOverflow {
                base: 0xFFFE,
                size: 4
            }
        );
    }
}
