//! Section `i8042`: the keyboard controller's registers and the keyboard behind it, with
//! the keyboard's send queue in subsection `kbd-queue` when it holds bytes.
//!
//! ```text
//!  version 1:
//!  status ctr outport                       3 × u8   stored status bits, command byte,
//!                                                    output port (reset, A20)
//!  obuf u8 │ obuf_full bool │ obuf_aux bool          the output buffer
//!  pending_source u8 │ pending_byte u8               controller reply waiting for it
//!  write_cmd u8                                      command awaiting its data byte
//!  kbd_cmd kbd_scanning kbd_leds kbd_scancode_set kbd_typematic kbd_last
//!         u8     bool         u8        u8             u8          u8
//!  subsection kbd-queue (version 1): bytes (u32 length, 1 to 16)
//! ```
//! The output port's A20 bit is one of the two A20 gates; the other is port 0x92 in the
//! `board` section. Validation is [`I8042::from_state`]'s: bits that do not exist, an
//! output port holding the system in reset, a queue longer than the keyboard's, a command
//! that takes no data byte.

use savevm::{Decoder, Encoder, VmState};

use crate::i8042::{I8042State, I8042, KBD_QUEUE_MAX};

impl VmState for I8042 {
    const NAME: &'static str = "i8042";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        enc.u8(s.status);
        enc.u8(s.ctr);
        enc.u8(s.outport);
        enc.u8(s.obuf);
        enc.bool(s.obuf_full);
        enc.bool(s.obuf_aux);
        enc.u8(s.pending_source);
        enc.u8(s.pending_byte);
        enc.u8(s.write_cmd);
        enc.u8(s.kbd_cmd);
        enc.bool(s.kbd_scanning);
        enc.u8(s.kbd_leds);
        enc.u8(s.kbd_scancode_set);
        enc.u8(s.kbd_typematic);
        enc.u8(s.kbd_last);
        if !s.kbd_queue.is_empty() {
            enc.subsection("kbd-queue", 1, |sub| sub.bytes(&s.kbd_queue, KBD_QUEUE_MAX));
        }
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let mut state = I8042State {
            status: dec.u8("status")?,
            ctr: dec.u8("ctr")?,
            outport: dec.u8("outport")?,
            obuf: dec.u8("obuf")?,
            obuf_full: dec.bool("obuf_full")?,
            obuf_aux: dec.bool("obuf_aux")?,
            pending_source: dec.u8("pending_source")?,
            pending_byte: dec.u8("pending_byte")?,
            write_cmd: dec.u8("write_cmd")?,
            kbd_queue: Vec::new(),
            kbd_cmd: dec.u8("kbd_cmd")?,
            kbd_scanning: dec.bool("kbd_scanning")?,
            kbd_leds: dec.u8("kbd_leds")?,
            kbd_scancode_set: dec.u8("kbd_scancode_set")?,
            kbd_typematic: dec.u8("kbd_typematic")?,
            kbd_last: dec.u8("kbd_last")?,
        };
        if let Some(queue) = dec.subsection("kbd-queue", 1..=1, |sub, _| {
            let b = sub.bytes("kbd_queue", KBD_QUEUE_MAX)?;
            if b.is_empty() {
                // Written only when non-empty: an empty one is not what `save` writes.
                return Err(sub.out_of_range("kbd_queue", 0));
            }
            Ok(b)
        })? {
            state.kbd_queue = queue;
        }
        dec.finish()?;
        *self = I8042::from_state(state).map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::{Encoder, Error};

    use crate::i8042::*;

    fn cmd(k: &mut I8042, c: u8) {
        k.write(I8042_CMD_PORT, c);
    }

    fn data(k: &mut I8042, v: u8) {
        k.write(I8042_DATA_PORT, v);
    }

    /// After a BIOS: the keyboard disabled while it answers identify and a reset (bytes
    /// queued behind the full output buffer), an LED command waiting for its argument,
    /// A20 off, a controller command waiting for its data byte.
    fn busy() -> I8042 {
        let mut k = I8042::new();
        k.bios_init();
        cmd(&mut k, CMD_DISABLE_A20);
        data(&mut k, KBD_CMD_IDENTIFY);
        cmd(&mut k, CMD_KBD_DISABLE);
        data(&mut k, KBD_CMD_RESET);
        cmd(&mut k, CMD_KBD_DISABLE);
        data(&mut k, KBD_CMD_SET_LEDS);
        cmd(&mut k, CMD_KBD_DISABLE);
        cmd(&mut k, CMD_WRITE_OUTPORT);
        assert!(!k.state().kbd_queue.is_empty());
        assert!(!k.a20());
        k
    }

    /// Aux data in the output buffer with a controller reply waiting behind it.
    fn aux() -> I8042 {
        let mut k = I8042::new();
        cmd(&mut k, CMD_WRITE_AUX_OBUF);
        data(&mut k, 0x42);
        cmd(&mut k, CMD_SELF_TEST);
        assert!(k.aux_irq());
        k
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &I8042::new());
        check_state(&I8042::new(), &busy());
        check_state(&aux(), &busy());
    }

    #[test]
    fn the_queue_goes_in_a_subsection_only_when_it_holds_bytes() {
        assert!(encode(&I8042::new()).subsections().is_empty());
        let e = encode(&busy());
        assert_eq!(e.subsections().len(), 1);
        assert_eq!(e.subsections()[0].name, "kbd-queue");
    }

    /// The restored controller answers every read as the saved one does, through the
    /// queued bytes and the pending commands.
    #[test]
    fn restored_controller_reads_the_same() {
        let mut a = busy();
        let mut b = I8042::new();
        load_encoded(&mut b, &encode(&a)).unwrap();
        assert_eq!(a.state(), b.state());
        // The pending output-port write turns A20 back on; the LED argument is answered.
        data(&mut a, OUT_RESET | OUT_A20);
        data(&mut b, OUT_RESET | OUT_A20);
        assert!(b.a20());
        data(&mut a, 0x07);
        data(&mut b, 0x07);
        for _ in 0..12 {
            assert_eq!(a.read(I8042_CMD_PORT), b.read(I8042_CMD_PORT));
            assert_eq!(a.read(I8042_DATA_PORT), b.read(I8042_DATA_PORT));
            assert_eq!((a.kbd_irq(), a.aux_irq()), (b.kbd_irq(), b.aux_irq()));
        }
        assert_eq!(a.state(), b.state());
    }

    fn fields(outport: u8, write_cmd: u8, scancode_set: u8) -> Encoder {
        let mut e = Encoder::new();
        // status ctr outport obuf obuf_full obuf_aux pending_source pending_byte write_cmd
        for v in [
            STATUS_CMD,
            CTR_KBD_INT,
            outport,
            0,
            0,
            0,
            SRC_NONE,
            0,
            write_cmd,
        ] {
            e.u8(v);
        }
        // kbd_cmd kbd_scanning kbd_leds kbd_scancode_set kbd_typematic kbd_last
        for v in [0, 1, 0, scancode_set, 0x2B, 0] {
            e.u8(v);
        }
        e
    }

    #[test]
    fn refused_values_leave_the_controller_unchanged() {
        assert!(load_encoded(&mut I8042::new(), &fields(OUT_RESET, 0, 2)).is_ok());
        for (enc, what) in [
            (fields(OUT_A20, 0, 2), "in reset"),
            (fields(OUT_RESET | 0x10, 0, 2), "bits"),
            (fields(OUT_RESET, CMD_SELF_TEST, 2), "data byte"),
            (fields(OUT_RESET, 0, 4), "scan-code set"),
        ] {
            let mut k = busy();
            match load_encoded(&mut k, &enc) {
                Err(Error::Invalid { section, source }) => {
                    assert_eq!(section, "i8042");
                    assert!(source.to_string().contains(what), "{source}");
                }
                other => panic!("{what}: {other:?}"),
            }
            assert_eq!(k.state(), busy().state());
        }
        // A queue longer than the keyboard's is refused before it is allocated.
        let mut enc = fields(OUT_RESET, 0, 2);
        enc.subsection("kbd-queue", 1, |s| s.bytes(&[0xFA; 17], 17));
        let mut k = busy();
        assert!(matches!(
            load_encoded(&mut k, &enc),
            Err(Error::TooLong {
                len: 17,
                max: 16,
                ..
            })
        ));
        assert_eq!(k.state(), busy().state());
    }
}
