//! Section `rtc`: the MC146818's CMOS RAM, its index register and the divider chain's
//! position in virtual time.
//!
//! ```text
//!  version 1:
//!  cmos         128 × u8   registers 0x00-0x0D and CMOS RAM, as stored (no UIP, no IRQF)
//!  index        u8         register selected through port 0x70
//!  nmi_disabled bool       bit 7 of the last port 0x70 write
//!  seconds      i64        calendar time shown while SET is off (seconds since 1970)
//!  next_update  u64        32.768 kHz cycle of virtual time of the next update
//!  synced       u64        cycle up to which updates and ticks are accounted for
//!  last_a_read  u64        cycle of the last read of register A
//!  uip_shown    u64        update (by its cycle) whose UIP was last shown
//! ```
//!
//! The timers are not saved as deadlines: the periodic ticks are aligned to the divider
//! phase (`next_update`), the alarm follows from the alarm registers and `seconds`, and
//! the update is `next_update` itself, all counted in cycles of the saved virtual clock.
//! So a restored RTC raises UF, AF and PF at exactly the virtual times the saved one
//! would have. Validation is [`Rtc::from_state`]'s: register bits the chip never stores,
//! a calendar outside the registers' range, a divider phase more than a second ahead.

use savevm::{Decoder, Encoder, VmState};

use crate::rtc::{Rtc, RtcState};

impl VmState for Rtc {
    const NAME: &'static str = "rtc";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        enc.array(&s.cmos);
        enc.u8(s.index);
        enc.bool(s.nmi_disabled);
        enc.i64(s.seconds);
        enc.u64(s.next_update);
        enc.u64(s.synced);
        enc.u64(s.last_a_read);
        enc.u64(s.uip_shown);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = RtcState {
            cmos: dec.array("cmos")?,
            index: dec.u8("index")?,
            nmi_disabled: dec.bool("nmi_disabled")?,
            seconds: dec.i64("seconds")?,
            next_update: dec.u64("next_update")?,
            synced: dec.u64("synced")?,
            last_a_read: dec.u64("last_a_read")?,
            uip_shown: dec.u64("uip_shown")?,
        };
        dec.finish()?;
        *self = Rtc::from_state(state).map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::Error;

    use crate::rtc::*;

    const SEC: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn rd(r: &mut Rtc, reg: u8, now: u64) -> u8 {
        r.write(RTC_INDEX_PORT, reg, now);
        r.read(RTC_DATA_PORT, now)
    }

    fn wr(r: &mut Rtc, reg: u8, v: u8, now: u64) {
        r.write(RTC_INDEX_PORT, reg, now);
        r.write(RTC_DATA_PORT, v, now);
    }

    /// Binary 24-hour mode, periodic and alarm interrupts on, a flag pending, CMOS bytes
    /// set, register A read recently, NMI masked.
    fn busy() -> Rtc {
        let mut r = Rtc::new(seconds_from_civil(2024, 2, 29, 23, 59, 58), 300 * MS, 0);
        r.set_pc_config(64 << 20);
        wr(&mut r, REG_A, 0x2A, 0);
        wr(
            &mut r,
            REG_B,
            REG_B_24H | REG_B_DM | REG_B_PIE | REG_B_AIE,
            0,
        );
        wr(&mut r, REG_SECONDS_ALARM, 0xC0, 0);
        wr(&mut r, REG_MINUTES_ALARM, 0, 0);
        wr(&mut r, REG_HOURS_ALARM, 0, 0);
        wr(&mut r, 0x40, 0x5A, 0);
        let _ = rd(&mut r, REG_A, 1_200 * MS);
        r.write(RTC_INDEX_PORT, 0x80 | 0x40, 1_250 * MS);
        r.sync(1_300 * MS);
        r
    }

    /// SET on (the clock stopped, time registers as the guest wrote them), divider held
    /// in reset.
    fn stopped() -> Rtc {
        let mut r = Rtc::new(DEFAULT_BASE_SECONDS, SEC, 5 * SEC);
        wr(&mut r, REG_B, REG_B_24H | REG_B_SET, 5 * SEC);
        wr(&mut r, REG_YEAR, 0x99, 5 * SEC);
        wr(&mut r, REG_A, REG_A_DV_RESET | 0x06, 6 * SEC);
        r
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &Rtc::new(0, SEC, 0));
        check_state(&Rtc::new(DEFAULT_BASE_SECONDS, SEC, 0), &busy());
        check_state(&stopped(), &busy());
    }

    /// A restored RTC raises the same interrupts at the same virtual times and shows the
    /// same registers as the one it was saved from.
    #[test]
    fn restored_rtc_fires_at_the_same_times() {
        let mut a = busy();
        let mut b = Rtc::new(0, SEC, 0);
        load_encoded(&mut b, &encode(&a)).unwrap();
        assert_eq!(a.state(), b.state());
        let mut now = 1_300 * MS;
        let mut flags = 0;
        while now < 4 * SEC {
            let da = a.next_irq_deadline(now);
            assert_eq!(da, b.next_irq_deadline(now));
            now = da.unwrap_or(now + 250 * MS).max(now + 1);
            assert_eq!(a.irq_level(), b.irq_level());
            for reg in [
                REG_C,
                REG_SECONDS,
                REG_MINUTES,
                REG_HOURS,
                REG_A,
                REG_DAY_OF_MONTH,
            ] {
                let v = rd(&mut a, reg, now);
                assert_eq!(v, rd(&mut b, reg, now), "reg {reg:#x} at {now} ns");
                if reg == REG_C {
                    flags |= v;
                }
            }
        }
        let fired = REG_C_IRQF | REG_C_PF | REG_C_AF;
        assert_eq!(flags & fired, fired, "periodic and alarm interrupts fired");
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn refused_values_leave_the_rtc_unchanged() {
        let good = encode(&busy());
        let fields = good.as_bytes().to_vec();
        // cmos[0x0D] (register D) must read VRT; cmos[0x0C] may hold only PF AF UF; the
        // index lies after the 128 CMOS bytes.
        for (at, v) in [(0x0D, 0x00), (0x0C, 0x80), (0x0A, 0xA6), (128, 0x80)] {
            let mut bytes = fields.clone();
            bytes[at] = v;
            let s =
                savevm::SectionData::from_parts("rtc", 0, 1, bytes, fields.len() as u32).unwrap();
            let mut r = stopped();
            match savevm::testing::load_section(&mut r, &s) {
                Err(Error::Invalid { section, .. }) => assert_eq!(section, "rtc"),
                other => panic!("byte {at}: {other:?}"),
            }
            assert_eq!(r.state(), stopped().state());
        }
        // The next update more than a second after the synced cycle.
        let mut s = busy().state().clone();
        s.next_update = s.synced + 2 * RTC_FREQ_HZ;
        let mut enc = savevm::Encoder::new();
        enc.array(&s.cmos);
        enc.u8(s.index);
        enc.bool(s.nmi_disabled);
        enc.i64(s.seconds);
        enc.u64(s.next_update);
        enc.u64(s.synced);
        enc.u64(s.last_a_read);
        enc.u64(s.uip_shown);
        let mut r = stopped();
        match load_encoded(&mut r, &enc) {
            Err(Error::Invalid { source, .. }) => {
                assert!(source.to_string().contains("next update"), "{source}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.state(), stopped().state());
    }
}
