//! Sections `debug-exit` and `debugcon`: the debug ports' configuration, which is all the
//! state they have. Pending console output is host-side data: it stays with the device
//! it was written on and is never serialized.
//!
//! ```text
//!  debug-exit (version 1): iobase u16 │ iosize u16
//!  debugcon   (version 1): iobase u16 │ readback u8
//! ```

use savevm::{Decoder, Encoder, VmState};

use crate::debugport::{DebugCon, DebugConState, DebugExit, DebugExitState};

impl VmState for DebugExit {
    const NAME: &'static str = "debug-exit";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.u16(self.iobase());
        enc.u16(self.iosize());
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = DebugExitState {
            iobase: dec.u16("iobase")?,
            iosize: dec.u16("iosize")?,
        };
        dec.finish()?;
        *self = DebugExit::from_state(state).map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

impl VmState for DebugCon {
    const NAME: &'static str = "debugcon";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        enc.u16(s.iobase);
        enc.u8(s.readback);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = DebugConState {
            iobase: dec.u16("iobase")?,
            readback: dec.u8("readback")?,
        };
        dec.finish()?;
        let mut new = DebugCon::from_state(state).map_err(|e| dec.invalid(e))?;
        for b in self.take_output() {
            new.write(b);
        }
        *self = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::{Encoder, Error};

    use super::*;

    #[test]
    fn conformance() {
        check_state(&DebugExit::with_range(0x501, 2).unwrap(), &DebugExit::new());
        let con = DebugCon::from_state(DebugConState {
            iobase: 0x402,
            readback: 0x00,
        })
        .unwrap();
        check_state(&con, &DebugCon::new());
    }

    #[test]
    fn exit_port_range_is_validated() {
        let mut enc = Encoder::new();
        enc.u16(0xFFFE);
        enc.u16(4);
        let mut d = DebugExit::new();
        assert!(matches!(
            load_encoded(&mut d, &enc),
            Err(Error::Invalid { .. })
        ));
        assert_eq!(d, DebugExit::new());
    }

    #[test]
    fn console_keeps_its_pending_output() {
        let mut con = DebugCon::new();
        con.write(b'h');
        con.write(b'i');
        let other = DebugCon::from_state(DebugConState {
            iobase: 0x402,
            readback: 0x11,
        })
        .unwrap();
        load_encoded(&mut con, &encode(&other)).unwrap();
        assert_eq!(con.read(), 0x11);
        assert_eq!(con.take_output(), b"hi");
    }
}
