//! Section `uart`: a 16550A's registers, with the receive FIFO in subsection `rx-fifo`
//! when it holds bytes (it usually does not).
//!
//! ```text
//!  version 1:
//!  rbr ier lcr mcr fcr lsr_errors msr scr   8 × u8
//!  divisor u16 │ thr_ipending bool │ modem_inputs u8
//!  subsection rx-fifo (version 1): bytes (u32 length, at most 16)
//! ```
//! Transmitted bytes not yet taken by the frontend are host-side and stay with the device
//! they were sent on. Validation is [`Uart::from_state`]'s: reserved register bits, a FIFO
//! no longer than the mode allows (16, or 1 with FIFOs off), MSR lines that agree with the
//! modem inputs.

use savevm::{Decoder, Encoder, VmState};

use crate::uart::{Uart, UartState, UART_FIFO_SIZE};

impl VmState for Uart {
    const NAME: &'static str = "uart";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        let s = self.state();
        for v in [
            s.rbr,
            s.ier,
            s.lcr,
            s.mcr,
            s.fcr,
            s.lsr_errors,
            s.msr,
            s.scr,
        ] {
            enc.u8(v);
        }
        enc.u16(s.divisor);
        enc.bool(s.thr_ipending);
        enc.u8(s.modem_inputs);
        if !s.rx_fifo.is_empty() {
            enc.subsection("rx-fifo", 1, |sub| sub.bytes(&s.rx_fifo, UART_FIFO_SIZE));
        }
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> savevm::Result<()> {
        let mut state = UartState {
            rbr: dec.u8("rbr")?,
            ier: dec.u8("ier")?,
            lcr: dec.u8("lcr")?,
            mcr: dec.u8("mcr")?,
            fcr: dec.u8("fcr")?,
            lsr_errors: dec.u8("lsr_errors")?,
            msr: dec.u8("msr")?,
            scr: dec.u8("scr")?,
            divisor: dec.u16("divisor")?,
            thr_ipending: dec.bool("thr_ipending")?,
            modem_inputs: dec.u8("modem_inputs")?,
            rx_fifo: Vec::new(),
        };
        if let Some(fifo) = dec.subsection("rx-fifo", 1..=1, |sub, _| {
            let b = sub.bytes("rx_fifo", UART_FIFO_SIZE)?;
            if b.is_empty() {
                // Written only when non-empty: an empty one is not what `save` writes.
                return Err(sub.out_of_range("rx_fifo", 0));
            }
            Ok(b)
        })? {
            state.rx_fifo = fifo;
        }
        dec.finish()?;
        self.set_state(state).map_err(|e| dec.invalid(e))
    }
}

#[cfg(test)]
mod tests {
    use savevm::testing::{check_state, encode, load_encoded};
    use savevm::Error;

    use crate::uart::*;

    /// 8N1 at 38400 with FIFOs on (trigger 4), interrupts enabled, bytes waiting, an
    /// overrun pending in loopback.
    fn busy() -> Uart {
        let mut u = Uart::new();
        u.write(UART_LCR, LCR_DLAB | 0x03);
        u.write(UART_DLL, 3);
        u.write(UART_DLM, 0);
        u.write(UART_LCR, 0x03);
        u.write(UART_FCR, FCR_FIFO_ENABLE | 0x40);
        u.write(UART_IER, IER_ERBFI | IER_ETBEI | IER_ELSI);
        u.write(UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        u.write(UART_SCR, 0x5A);
        assert_eq!(u.receive(b"hello, world"), 12);
        let _ = u.read(UART_RBR);
        u
    }

    /// Loopback with FIFOs off: the one-byte receiver overrun.
    fn overrun() -> Uart {
        let mut u = Uart::new();
        u.write(UART_MCR, MCR_LOOP | MCR_OUT1);
        u.write(UART_THR, b'a');
        u.write(UART_THR, b'b');
        u
    }

    #[test]
    fn conformance() {
        check_state(&busy(), &Uart::new());
        check_state(&Uart::new(), &busy());
        check_state(&overrun(), &busy());
    }

    #[test]
    fn the_fifo_goes_in_a_subsection_only_when_it_holds_data() {
        assert!(encode(&Uart::new()).subsections().is_empty());
        let e = encode(&busy());
        assert_eq!(e.subsections().len(), 1);
        assert_eq!(e.subsections()[0].name, "rx-fifo");
        assert_eq!(e.subsections()[0].size, 4 + 11);
    }

    #[test]
    fn restored_uart_reads_the_same_bytes() {
        let mut a = busy();
        a.write(UART_THR, b'!');
        let mut b = Uart::new();
        b.write(UART_THR, b'?');
        load_encoded(&mut b, &encode(&a)).unwrap();
        assert_eq!(b.take_output(), b"?", "host output stays with its device");
        for _ in 0..12 {
            for reg in [UART_IIR, UART_LSR, UART_RBR, UART_MSR] {
                assert_eq!(a.read(reg), b.read(reg));
            }
            assert_eq!(a.irq_level(), b.irq_level());
        }
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn a_fifo_too_long_for_the_mode_is_refused() {
        // FIFOs off: the receiver holds one byte.
        let mut enc = savevm::Encoder::new();
        for v in [0u8, 0, 0, 0, 0, 0, DEFAULT_MODEM_INPUTS, 0] {
            enc.u8(v);
        }
        enc.u16(DEFAULT_DIVISOR);
        enc.bool(false);
        enc.u8(DEFAULT_MODEM_INPUTS);
        enc.subsection("rx-fifo", 1, |s| s.bytes(b"ab", 16));
        let mut u = busy();
        match load_encoded(&mut u, &enc) {
            Err(Error::Invalid { source, .. }) => {
                assert!(source.to_string().contains("2 bytes"), "{source}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(u.state(), busy().state());

        // More than the FIFO's 16 is refused by the decoder's cap, before allocating.
        let mut enc = savevm::Encoder::new();
        for v in [0u8, 0, 0, 0, FCR_FIFO_ENABLE, 0, DEFAULT_MODEM_INPUTS, 0] {
            enc.u8(v);
        }
        enc.u16(DEFAULT_DIVISOR);
        enc.bool(false);
        enc.u8(DEFAULT_MODEM_INPUTS);
        enc.subsection("rx-fifo", 1, |s| s.bytes(&[0; 17], 17));
        assert!(matches!(
            load_encoded(&mut u, &enc),
            Err(Error::TooLong {
                len: 17,
                max: 16,
                ..
            })
        ));
        assert_eq!(u.state(), busy().state());
    }
}
