//! Section `pic`: both 8259As of the cascaded pair, master first.
//!
//! ```text
//!  per chip (version 1):
//!  irr isr imr lines elcr icw1 vector_base icw3 icw4 init_step lowest_priority  11 × u8
//!  read_isr poll special_mask rotate_in_aeoi                                     4 × bool
//! ```
//! Validation is [`Pic::from_state`]'s: init step, priority, vector base alignment,
//! ELCR bits of hard-wired edge inputs, reserved ICW bits.

use savevm::{Decoder, Encoder, VmState};

use crate::pic::{Pic, PicChipState, PicState};

const MASTER: [&str; 15] = [
    "master.irr",
    "master.isr",
    "master.imr",
    "master.lines",
    "master.elcr",
    "master.icw1",
    "master.vector_base",
    "master.icw3",
    "master.icw4",
    "master.init_step",
    "master.lowest_priority",
    "master.read_isr",
    "master.poll",
    "master.special_mask",
    "master.rotate_in_aeoi",
];
const SLAVE: [&str; 15] = [
    "slave.irr",
    "slave.isr",
    "slave.imr",
    "slave.lines",
    "slave.elcr",
    "slave.icw1",
    "slave.vector_base",
    "slave.icw3",
    "slave.icw4",
    "slave.init_step",
    "slave.lowest_priority",
    "slave.read_isr",
    "slave.poll",
    "slave.special_mask",
    "slave.rotate_in_aeoi",
];

fn save_chip(enc: &mut Encoder, c: &PicChipState) {
    for v in [
        c.irr,
        c.isr,
        c.imr,
        c.lines,
        c.elcr,
        c.icw1,
        c.vector_base,
        c.icw3,
        c.icw4,
        c.init_step,
        c.lowest_priority,
    ] {
        enc.u8(v);
    }
    for b in [c.read_isr, c.poll, c.special_mask, c.rotate_in_aeoi] {
        enc.bool(b);
    }
}

fn load_chip(dec: &mut Decoder<'_>, f: &[&'static str; 15]) -> savevm::Result<PicChipState> {
    Ok(PicChipState {
        irr: dec.u8(f[0])?,
        isr: dec.u8(f[1])?,
        imr: dec.u8(f[2])?,
        lines: dec.u8(f[3])?,
        elcr: dec.u8(f[4])?,
        icw1: dec.u8(f[5])?,
        vector_base: dec.u8(f[6])?,
        icw3: dec.u8(f[7])?,
        icw4: dec.u8(f[8])?,
        init_step: dec.u8(f[9])?,
        lowest_priority: dec.u8(f[10])?,
        read_isr: dec.bool(f[11])?,
        poll: dec.bool(f[12])?,
        special_mask: dec.bool(f[13])?,
        rotate_in_aeoi: dec.bool(f[14])?,
    })
}

impl VmState for Pic {
    const NAME: &'static str = "pic";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        save_chip(enc, &s.master);
        save_chip(enc, &s.slave);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let state = PicState {
            master: load_chip(dec, &MASTER)?,
            slave: load_chip(dec, &SLAVE)?,
        };
        dec.finish()?;
        *self = Pic::from_state(state).map_err(|e| dec.invalid(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, load_encoded};
    use savevm::{Encoder, Error};

    use super::*;
    use crate::pic::*;

    /// A BIOS-programmed pair with requests in service, a rotated priority and OCW3 modes.
    fn busy() -> Pic {
        let mut p = Pic::new();
        p.bios_init();
        p.write(PIC_MASTER_DATA, 0x00);
        p.write(PIC_SLAVE_DATA, 0x00);
        p.write(ELCR_SLAVE, 0x08);
        p.set_irq(1, true);
        p.set_irq(11, true);
        p.set_irq(3, true);
        let _ = p.acknowledge();
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_SL | 5);
        p.write(PIC_SLAVE_CMD, OCW3_SELECT | OCW3_RR | OCW3_RIS);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_ESMM | OCW3_SMM);
        p
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &Pic::new());
        check_state(&Pic::new(), &busy());
    }

    #[test]
    fn restored_pair_delivers_the_same_interrupts() {
        let mut a = busy();
        let mut b = Pic::new();
        load_encoded(&mut b, &savevm::testing::encode(&a)).unwrap();
        for irq in [5u8, 9, 0, 14] {
            a.set_irq(irq, true);
            b.set_irq(irq, true);
        }
        while a.interrupt_pending() {
            assert!(b.interrupt_pending());
            assert_eq!(a.acknowledge(), b.acknowledge());
            a.write(PIC_MASTER_CMD, OCW2_EOI);
            b.write(PIC_MASTER_CMD, OCW2_EOI);
        }
        assert!(!b.interrupt_pending());
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn invalid_state_is_refused_with_the_device_reason() {
        let mut s = busy().state().clone();
        s.slave.init_step = 5;
        let mut enc = Encoder::new();
        save_chip(&mut enc, &s.master);
        save_chip(&mut enc, &s.slave);
        let mut p = Pic::new();
        match load_encoded(&mut p, &enc) {
            Err(Error::Invalid { section, source }) => {
                assert_eq!(section, "pic");
                assert!(source.to_string().contains("init step 5"), "{source}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.state(), Pic::new().state());
    }
}
