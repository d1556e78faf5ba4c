//! Section `pit`: the 8254's three counters, port 0x61's timer bits and the IRQ 0 edge
//! bookkeeping.
//!
//! ```text
//!  version 1:
//!  3 × channel:
//!    mode u8 │ rw u8 │ bcd bool │ cr u16 │ write_lsb u8 │ write_msb_next bool │
//!    read_msb_next bool │ count_latch u16 │ latch_state u8 │ status_latch u8 │
//!    status_latched bool │ phase u8 │ held u16 │ load_tick u64 │ period u32 │
//!    pending_period u32 │ pending_tick u64 │ cr_load_tick u64 │ gate bool │
//!    gate_low_tick u64
//!  port61 u8 │ irq0_last_tick u64 │ irq0_pending_edges u64
//! ```
//! Counters are kept as "loaded at tick k", never stepped, so the saved ticks are in the
//! virtual clock's time base: the `clock` section must come with this one. Validation is
//! [`Pit::from_state`]'s (modes, access modes, phases, periods, gates, ticks in range).

use savevm::{Decoder, Encoder, VmState};

use crate::pit::{Pit, PitChannelState, PitState};

/// Field names per channel, for error messages.
const FIELDS: [[&str; 20]; 3] = {
    macro_rules! names {
        ($c:literal) => {
            [
                concat!("ch", $c, ".mode"),
                concat!("ch", $c, ".rw"),
                concat!("ch", $c, ".bcd"),
                concat!("ch", $c, ".cr"),
                concat!("ch", $c, ".write_lsb"),
                concat!("ch", $c, ".write_msb_next"),
                concat!("ch", $c, ".read_msb_next"),
                concat!("ch", $c, ".count_latch"),
                concat!("ch", $c, ".latch_state"),
                concat!("ch", $c, ".status_latch"),
                concat!("ch", $c, ".status_latched"),
                concat!("ch", $c, ".phase"),
                concat!("ch", $c, ".held"),
                concat!("ch", $c, ".load_tick"),
                concat!("ch", $c, ".period"),
                concat!("ch", $c, ".pending_period"),
                concat!("ch", $c, ".pending_tick"),
                concat!("ch", $c, ".cr_load_tick"),
                concat!("ch", $c, ".gate"),
                concat!("ch", $c, ".gate_low_tick"),
            ]
        };
    }
    [names!("0"), names!("1"), names!("2")]
};

fn save_channel(enc: &mut Encoder, c: &PitChannelState) {
    enc.u8(c.mode);
    enc.u8(c.rw);
    enc.bool(c.bcd);
    enc.u16(c.cr);
    enc.u8(c.write_lsb);
    enc.bool(c.write_msb_next);
    enc.bool(c.read_msb_next);
    enc.u16(c.count_latch);
    enc.u8(c.latch_state);
    enc.u8(c.status_latch);
    enc.bool(c.status_latched);
    enc.u8(c.phase);
    enc.u16(c.held);
    enc.u64(c.load_tick);
    enc.u32(c.period);
    enc.u32(c.pending_period);
    enc.u64(c.pending_tick);
    enc.u64(c.cr_load_tick);
    enc.bool(c.gate);
    enc.u64(c.gate_low_tick);
}

fn load_channel(dec: &mut Decoder<'_>, f: &[&'static str; 20]) -> savevm::Result<PitChannelState> {
    Ok(PitChannelState {
        mode: dec.u8(f[0])?,
        rw: dec.u8(f[1])?,
        bcd: dec.bool(f[2])?,
        cr: dec.u16(f[3])?,
        write_lsb: dec.u8(f[4])?,
        write_msb_next: dec.bool(f[5])?,
        read_msb_next: dec.bool(f[6])?,
        count_latch: dec.u16(f[7])?,
        latch_state: dec.u8(f[8])?,
        status_latch: dec.u8(f[9])?,
        status_latched: dec.bool(f[10])?,
        phase: dec.u8(f[11])?,
        held: dec.u16(f[12])?,
        load_tick: dec.u64(f[13])?,
        period: dec.u32(f[14])?,
        pending_period: dec.u32(f[15])?,
        pending_tick: dec.u64(f[16])?,
        cr_load_tick: dec.u64(f[17])?,
        gate: dec.bool(f[18])?,
        gate_low_tick: dec.u64(f[19])?,
    })
}

impl VmState for Pit {
    const NAME: &'static str = "pit";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        for c in &s.channels {
            save_channel(enc, c);
        }
        enc.u8(s.port61);
        enc.u64(s.irq0_last_tick);
        enc.u64(s.irq0_pending_edges);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let channels = [
            load_channel(dec, &FIELDS[0])?,
            load_channel(dec, &FIELDS[1])?,
            load_channel(dec, &FIELDS[2])?,
        ];
        let state = PitState {
            channels,
            port61: dec.u8("port61")?,
            irq0_last_tick: dec.u64("irq0_last_tick")?,
            irq0_pending_edges: dec.u64("irq0_pending_edges")?,
        };
        dec.finish()?;
        *self = Pit::from_state(state).map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::Error;

    use super::*;
    use crate::pit::*;

    const MS: u64 = 1_000_000;

    /// Channel 0 at 1 kHz (mode 2), channel 2 one-shot (mode 0) gated on, a latched count
    /// half read, a status latched, and IRQ 0 edges waiting.
    fn busy() -> Pit {
        let mut p = Pit::new();
        let t = 3 * MS;
        p.write(PIT_CONTROL, 0x34, t); // ch0, lsb/msb, mode 2
        p.write(PIT_CHANNEL0, 0xA9, t);
        p.write(PIT_CHANNEL0, 0x04, t); // 1193 ticks
        p.write(PIT_CONTROL, 0xB0, t); // ch2, lsb/msb, mode 0
        p.write(PIT_CHANNEL2, 0x00, t);
        p.write(PIT_CHANNEL2, 0x40, t);
        p.write_port61(P61_GATE2 | P61_SPKR_DATA, t);
        p.write(PIT_CONTROL, 0x00, 4 * MS); // latch ch0
        let _ = p.read(PIT_CHANNEL0, 4 * MS);
        p.write(PIT_CONTROL, 0xE8, 5 * MS); // read-back: status of ch2
        let _ = p.irq0_edges(6 * MS);
        p.write(PIT_CONTROL, 0x36, 7 * MS); // ch0 mode 3 again, count pending
        p
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &Pit::new());
        check_state(&Pit::new(), &busy());
    }

    #[test]
    fn restored_timer_counts_on_identically() {
        let mut a = busy();
        let mut b = Pit::new();
        load_encoded(&mut b, &encode(&a)).unwrap();
        for step in 1..200u64 {
            let now = 7 * MS + step * 37_000;
            assert_eq!(a.read(PIT_CHANNEL2, now), b.read(PIT_CHANNEL2, now));
            assert_eq!(a.read_port61(now), b.read_port61(now));
            assert_eq!(a.irq0_edges(now), b.irq0_edges(now));
            assert_eq!(a.next_irq0_deadline(now), b.next_irq0_deadline(now));
        }
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn invalid_channel_is_refused() {
        let mut s = busy().state().clone();
        s.channels[1].mode = 6;
        let mut enc = savevm::Encoder::new();
        for c in &s.channels {
            save_channel(&mut enc, c);
        }
        enc.u8(s.port61);
        enc.u64(s.irq0_last_tick);
        enc.u64(s.irq0_pending_edges);
        let mut p = Pit::new();
        match load_encoded(&mut p, &enc) {
            Err(Error::Invalid { source, .. }) => {
                assert!(source.to_string().contains("channel 1"), "{source}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.state(), Pit::new().state());
    }
}
