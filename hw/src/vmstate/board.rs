//! Section `board`: the registers the board itself holds rather than a device.
//!
//! ```text
//!  version 1: port_a u8   port 0x92: bit 1 A20 gate, bit 0 the reset bit as last written
//! ```
//!
//! What the board holds besides, and why it is not here:
//!
//! * The A20 line is the OR of two gates, port 0x92 bit 1 (here) and the 8042's output
//!   port bit 1 (section `i8042`). Guest memory's A20 mask is derived from both when the
//!   state is loaded, so the two gates can never disagree with the line.
//! * The debug console's port travels with the console (section `debugcon`); the board
//!   dispatches to the port its console has.
//! * Exit and reset requests, the A20-changed and timer-programmed flags live only inside
//!   one [`crate::PcMachine::run`] call, which acts on them and clears them before it
//!   returns; a stopped machine, the only kind that is saved, has none pending.

use savevm::{Decoder, Encoder, VmState};
use thiserror::Error;

use crate::machine::{PORT_A_A20, PORT_A_RESET};

/// Guest-visible registers of the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardState {
    /// Port 0x92 as the guest reads it.
    pub port_a: u8,
}

impl Default for BoardState {
    /// At power-on port 0x92 holds A20 on, as the board leaves it.
    fn default() -> Self {
        BoardState { port_a: PORT_A_A20 }
    }
}

/// A [`BoardState`] the board could not be in.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BoardStateError {
    #[error("port 0x92 value {0:#04x} has bits the board does not store")]
    PortA(u8),
}

impl BoardState {
    /// Checks that the board could hold this state.
    pub fn validate(&self) -> Result<(), BoardStateError> {
        if self.port_a & !(PORT_A_A20 | PORT_A_RESET) != 0 {
            return Err(BoardStateError::PortA(self.port_a));
        }
        Ok(())
    }
}

impl VmState for BoardState {
    const NAME: &'static str = "board";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u8(self.port_a);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = BoardState {
            port_a: dec.u8("port_a")?,
        };
        dec.finish()?;
        state.validate().map_err(|e| dec.invalid(e))?;
        *self = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, load_encoded};
    use savevm::{Encoder, Error};

    use super::*;

    #[test]
    fn conformance() {
        let off = BoardState { port_a: 0 };
        let reset_bit = BoardState {
            port_a: PORT_A_RESET,
        };
        check_state(&off, &BoardState::default());
        check_state(&BoardState::default(), &reset_bit);
    }

    #[test]
    fn refused_values_leave_the_board_unchanged() {
        for v in [0x04, 0x80, 0xFF] {
            let mut enc = Encoder::new();
            enc.u8(v);
            let mut b = BoardState { port_a: 0 };
            match load_encoded(&mut b, &enc) {
                Err(Error::Invalid { section, source }) => {
                    assert_eq!(section, "board");
                    assert!(source.to_string().contains("0x92"), "{source}");
                }
                other => panic!("{v:#x}: {other:?}"),
            }
            assert_eq!(b, BoardState { port_a: 0 });
        }
    }
}
