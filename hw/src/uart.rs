//! A National Semiconductor 16550A UART, as a PC's COM port.
//!
//! Eight registers at offsets 0-7 from the base port (COM1: [`COM1_BASE`], IRQ
//! [`COM1_IRQ`]); the board maps port `base + n` to offset `n`:
//!
//! | offset | read                        | write                   | with LCR.DLAB = 1 |
//! |--------|-----------------------------|-------------------------|-------------------|
//! | 0      | RBR receive buffer          | THR transmit holding    | DLL divisor low   |
//! | 1      | IER interrupt enable        | IER                     | DLM divisor high  |
//! | 2      | IIR interrupt identification| FCR FIFO control        |                   |
//! | 3      | LCR line control            | LCR                     |                   |
//! | 4      | MCR modem control           | MCR                     |                   |
//! | 5      | LSR line status             | (ignored)               |                   |
//! | 6      | MSR modem status            | (ignored)               |                   |
//! | 7      | SCR scratch                 | SCR                     |                   |
//!
//! Emulated: the divisor latch, the 16-byte receive FIFO with its four trigger levels,
//! FIFO enable and reset, the single-byte receive buffer of non-FIFO (16450) mode,
//! overrun errors, the four interrupt sources in their priority order (line status >
//! received data or character timeout > THR empty > modem status) with their clearing
//! rules, loopback mode (transmitted bytes come back to the receiver, MCR outputs drive
//! the MSR inputs), MSR delta bits, and the PC wiring of the interrupt line: IRQ is
//! driven only while MCR.OUT2 is set, and never in loopback, where the chip forces its
//! OUT2 pin inactive.
//!
//! Transmission is instantaneous: a THR write goes straight to an output buffer the
//! frontend drains, so THR and the transmitter are always empty (LSR.THRE and LSR.TEMT
//! always set) and the transmit FIFO never holds anything. Host input is pushed with
//! [`Uart::receive`], which accepts only what fits, so the frontend provides flow
//! control and received bytes are never overrun (only loopback can overrun).
//!
//! Simplified: without line timing, the character timeout (nominally four character
//! times of silence) counts as already elapsed whenever the FIFO holds fewer bytes than
//! the trigger level, so IIR reports a timeout instead of "data available" in that case.
//! Not emulated: baud rate and framing (LCR is stored only), parity/framing errors and
//! break (LCR break is stored but sends nothing), DMA mode signalling, and the modem
//! lines of a real cable beyond what [`Uart::set_modem_inputs`] provides.

use std::collections::VecDeque;

use thiserror::Error;

/// I/O base of COM1.
pub const COM1_BASE: u16 = 0x3F8;
/// ISA interrupt line of COM1.
pub const COM1_IRQ: u8 = 4;

/// Depth of the receive FIFO.
pub const UART_FIFO_SIZE: usize = 16;

/// Offset of RBR (read), THR (write) and DLL (DLAB set).
pub const UART_RBR: u8 = 0;
/// Offset of THR.
pub const UART_THR: u8 = 0;
/// Offset of DLL.
pub const UART_DLL: u8 = 0;
/// Offset of IER, or DLM with DLAB set.
pub const UART_IER: u8 = 1;
/// Offset of DLM.
pub const UART_DLM: u8 = 1;
/// Offset of IIR (read).
pub const UART_IIR: u8 = 2;
/// Offset of FCR (write).
pub const UART_FCR: u8 = 2;
/// Offset of LCR.
pub const UART_LCR: u8 = 3;
/// Offset of MCR.
pub const UART_MCR: u8 = 4;
/// Offset of LSR.
pub const UART_LSR: u8 = 5;
/// Offset of MSR.
pub const UART_MSR: u8 = 6;
/// Offset of SCR.
pub const UART_SCR: u8 = 7;

/// IER: received data available.
pub const IER_ERBFI: u8 = 0x01;
/// IER: transmitter holding register empty.
pub const IER_ETBEI: u8 = 0x02;
/// IER: receiver line status.
pub const IER_ELSI: u8 = 0x04;
/// IER: modem status.
pub const IER_EDSSI: u8 = 0x08;

/// IIR: no interrupt pending.
pub const IIR_NO_INT: u8 = 0x01;
/// IIR: receiver line status (highest priority).
pub const IIR_RLS: u8 = 0x06;
/// IIR: received data available.
pub const IIR_RDA: u8 = 0x04;
/// IIR: character timeout.
pub const IIR_CTI: u8 = 0x0C;
/// IIR: transmitter holding register empty.
pub const IIR_THRE: u8 = 0x02;
/// IIR: modem status (lowest priority).
pub const IIR_MSI: u8 = 0x00;
/// IIR: FIFOs enabled.
pub const IIR_FIFO_ENABLED: u8 = 0xC0;

/// FCR: enable FIFOs.
pub const FCR_FIFO_ENABLE: u8 = 0x01;
/// FCR: clear the receive FIFO.
pub const FCR_RX_RESET: u8 = 0x02;
/// FCR: clear the transmit FIFO.
pub const FCR_TX_RESET: u8 = 0x04;
/// FCR: DMA mode select.
pub const FCR_DMA_MODE: u8 = 0x08;
/// FCR: receive trigger level field.
pub const FCR_TRIGGER: u8 = 0xC0;

/// LCR: divisor latch access.
pub const LCR_DLAB: u8 = 0x80;
/// LCR: set break.
pub const LCR_BREAK: u8 = 0x40;

/// MCR: data terminal ready.
pub const MCR_DTR: u8 = 0x01;
/// MCR: request to send.
pub const MCR_RTS: u8 = 0x02;
/// MCR: OUT1.
pub const MCR_OUT1: u8 = 0x04;
/// MCR: OUT2, the PC's interrupt enable.
pub const MCR_OUT2: u8 = 0x08;
/// MCR: loopback.
pub const MCR_LOOP: u8 = 0x10;

/// LSR: data ready.
pub const LSR_DR: u8 = 0x01;
/// LSR: overrun error.
pub const LSR_OE: u8 = 0x02;
/// LSR: parity error.
pub const LSR_PE: u8 = 0x04;
/// LSR: framing error.
pub const LSR_FE: u8 = 0x08;
/// LSR: break interrupt.
pub const LSR_BI: u8 = 0x10;
/// LSR: transmitter holding register empty.
pub const LSR_THRE: u8 = 0x20;
/// LSR: transmitter empty.
pub const LSR_TEMT: u8 = 0x40;
/// LSR: error in receive FIFO.
pub const LSR_RX_FIFO_ERROR: u8 = 0x80;
const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

/// MSR: delta clear to send.
pub const MSR_DCTS: u8 = 0x01;
/// MSR: delta data set ready.
pub const MSR_DDSR: u8 = 0x02;
/// MSR: trailing edge ring indicator.
pub const MSR_TERI: u8 = 0x04;
/// MSR: delta data carrier detect.
pub const MSR_DDCD: u8 = 0x08;
/// MSR: clear to send.
pub const MSR_CTS: u8 = 0x10;
/// MSR: data set ready.
pub const MSR_DSR: u8 = 0x20;
/// MSR: ring indicator.
pub const MSR_RI: u8 = 0x40;
/// MSR: data carrier detect.
pub const MSR_DCD: u8 = 0x80;
const MSR_DELTAS: u8 = 0x0F;
const MSR_LINES: u8 = 0xF0;

/// What the modem lines read with nothing but the host on the other end: a peer that is
/// present (DSR, DCD) and always ready (CTS), with no ring.
pub const DEFAULT_MODEM_INPUTS: u8 = MSR_CTS | MSR_DSR | MSR_DCD;
/// Divisor left in the latch at reset: 9600 baud with the PC's 1.8432 MHz crystal.
pub const DEFAULT_DIVISOR: u16 = 12;

const IER_STORED: u8 = IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI;
const MCR_STORED: u8 = MCR_DTR | MCR_RTS | MCR_OUT1 | MCR_OUT2 | MCR_LOOP;
const FCR_STORED: u8 = FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER;

/// Guest-visible state of the UART.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UartState {
    /// Received bytes not yet read, oldest first: up to 16 with FIFOs enabled, else 1.
    pub rx_fifo: Vec<u8>,
    /// The byte last read from RBR, which a read of an empty receiver returns again.
    pub rbr: u8,
    pub ier: u8,
    pub lcr: u8,
    pub mcr: u8,
    /// FCR as last written: FIFO enable, DMA mode and trigger level bits.
    pub fcr: u8,
    /// Sticky LSR error bits (`LSR_OE` ...), cleared by reading LSR.
    pub lsr_errors: u8,
    /// MSR: line levels in the high nibble, delta bits in the low nibble.
    pub msr: u8,
    pub scr: u8,
    pub divisor: u16,
    /// A THR-empty interrupt is waiting (set when THR empties with ETBEI on).
    pub thr_ipending: bool,
    /// Levels of the external CTS/DSR/RI/DCD inputs, in MSR bit positions.
    pub modem_inputs: u8,
}

/// A [`UartState`] that no sequence of guest writes could produce.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UartStateError {
    #[error("receive FIFO holds {len} bytes, more than its {capacity}")]
    RxFifoTooLong { len: usize, capacity: usize },
    #[error("{register} {value:#04x} has reserved bits set")]
    ReservedBits { register: &'static str, value: u8 },
    #[error("MSR {msr:#04x} disagrees with the modem lines {lines:#04x}")]
    ModemStatus { msr: u8, lines: u8 },
}

/// The 16550A. See the module documentation.
#[derive(Clone, Debug)]
pub struct Uart {
    state: UartState,
    /// Transmitted bytes not yet taken by the frontend (host-side, not guest state).
    output: VecDeque<u8>,
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart {
    /// The UART after a master reset, with [`DEFAULT_MODEM_INPUTS`] on its modem lines.
    pub fn new() -> Self {
        Uart {
            state: Self::reset_state(DEFAULT_DIVISOR, DEFAULT_MODEM_INPUTS),
            output: VecDeque::new(),
        }
    }

    fn reset_state(divisor: u16, modem_inputs: u8) -> UartState {
        UartState {
            rx_fifo: Vec::with_capacity(UART_FIFO_SIZE),
            rbr: 0,
            ier: 0,
            lcr: 0,
            mcr: 0,
            fcr: 0,
            lsr_errors: 0,
            msr: modem_inputs,
            scr: 0,
            divisor,
            thr_ipending: false,
            modem_inputs,
        }
    }

    /// Master reset: registers to their reset values. The divisor latch and the modem
    /// inputs are not affected by reset on the real chip either; pending output is kept
    /// because it was already transmitted.
    pub fn reset(&mut self) {
        self.state = Self::reset_state(self.state.divisor, self.state.modem_inputs);
    }

    fn fifo_enabled(&self) -> bool {
        self.state.fcr & FCR_FIFO_ENABLE != 0
    }

    fn loopback(&self) -> bool {
        self.state.mcr & MCR_LOOP != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            UART_FIFO_SIZE
        } else {
            1
        }
    }

    fn rx_trigger(&self) -> usize {
        match self.state.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// The current divisor latch value (baud = 115200 / divisor).
    pub fn divisor(&self) -> u16 {
        self.state.divisor
    }

    /// Free space for host input: 0 in loopback, where the receiver hears only the
    /// transmitter.
    pub fn rx_space(&self) -> usize {
        if self.loopback() {
            0
        } else {
            self.rx_capacity() - self.state.rx_fifo.len()
        }
    }

    /// Host input: queue as many of `bytes` as fit and return how many that was; the
    /// caller keeps the rest for later.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.rx_space());
        self.state.rx_fifo.extend_from_slice(&bytes[..n]);
        n
    }

    /// A byte arriving at the receiver from the line (loopback): a full receiver means
    /// an overrun, which in FIFO mode loses the new byte and in 16450 mode the old one.
    fn push_rx(&mut self, byte: u8) {
        if self.state.rx_fifo.len() < self.rx_capacity() {
            self.state.rx_fifo.push(byte);
            return;
        }
        self.state.lsr_errors |= LSR_OE;
        if !self.fifo_enabled() {
            self.state.rx_fifo[0] = byte;
        }
    }

    /// Change the external modem inputs (`MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD`), e.g.
    /// when a host connection comes or goes. Deltas appear in MSR unless in loopback.
    pub fn set_modem_inputs(&mut self, lines: u8) {
        self.state.modem_inputs = lines & MSR_LINES;
        self.update_msr();
    }

    /// The levels the MSR line bits should show now.
    fn modem_lines(&self) -> u8 {
        let s = &self.state;
        if !self.loopback() {
            return s.modem_inputs;
        }
        // Loopback wires the outputs to the inputs inside the chip.
        let mut lines = 0;
        for (out, inp) in [
            (MCR_DTR, MSR_DSR),
            (MCR_RTS, MSR_CTS),
            (MCR_OUT1, MSR_RI),
            (MCR_OUT2, MSR_DCD),
        ] {
            if s.mcr & out != 0 {
                lines |= inp;
            }
        }
        lines
    }

    fn update_msr(&mut self) {
        let new = self.modem_lines();
        let old = self.state.msr & MSR_LINES;
        let changed = old ^ new;
        let mut deltas = 0;
        if changed & MSR_CTS != 0 {
            deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            deltas |= MSR_DDSR;
        }
        if changed & MSR_DCD != 0 {
            deltas |= MSR_DDCD;
        }
        // Only the end of a ring is reported.
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            deltas |= MSR_TERI;
        }
        self.state.msr = new | (self.state.msr & MSR_DELTAS) | deltas;
    }

    /// The highest-priority enabled interrupt condition, as its IIR code.
    fn pending_interrupt(&self) -> Option<u8> {
        let s = &self.state;
        if s.ier & IER_ELSI != 0 && s.lsr_errors != 0 {
            return Some(IIR_RLS);
        }
        if s.ier & IER_ERBFI != 0 && !s.rx_fifo.is_empty() {
            let below_trigger = s.rx_fifo.len() < self.rx_trigger();
            return Some(if self.fifo_enabled() && below_trigger {
                IIR_CTI
            } else {
                IIR_RDA
            });
        }
        if s.ier & IER_ETBEI != 0 && s.thr_ipending {
            return Some(IIR_THRE);
        }
        if s.ier & IER_EDSSI != 0 && s.msr & MSR_DELTAS != 0 {
            return Some(IIR_MSI);
        }
        None
    }

    fn iir(&self) -> u8 {
        let fifo = if self.fifo_enabled() {
            IIR_FIFO_ENABLED
        } else {
            0
        };
        self.pending_interrupt().unwrap_or(IIR_NO_INT) | fifo
    }

    fn lsr(&self) -> u8 {
        let mut lsr = LSR_THRE | LSR_TEMT | self.state.lsr_errors;
        if !self.state.rx_fifo.is_empty() {
            lsr |= LSR_DR;
        }
        lsr
    }

    /// The level to drive onto the ISA IRQ line: an interrupt is pending and the PC's
    /// OUT2 gate is open (the chip holds OUT2 inactive in loopback).
    pub fn irq_level(&self) -> bool {
        self.state.mcr & MCR_OUT2 != 0 && !self.loopback() && self.pending_interrupt().is_some()
    }

    /// A guest read of register `offset` (0-7).
    pub fn read(&mut self, offset: u8) -> u8 {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            UART_RBR if dlab => self.state.divisor as u8,
            UART_RBR => {
                if !self.state.rx_fifo.is_empty() {
                    self.state.rbr = self.state.rx_fifo.remove(0);
                }
                self.state.rbr
            }
            UART_IER if dlab => (self.state.divisor >> 8) as u8,
            UART_IER => self.state.ier,
            UART_IIR => {
                let iir = self.iir();
                // Reading IIR is the acknowledge for a THR-empty interrupt only.
                if iir & 0x0F == IIR_THRE {
                    self.state.thr_ipending = false;
                }
                iir
            }
            UART_LCR => self.state.lcr,
            UART_MCR => self.state.mcr,
            UART_LSR => {
                let lsr = self.lsr();
                self.state.lsr_errors = 0;
                lsr
            }
            UART_MSR => {
                let msr = self.state.msr;
                self.state.msr &= MSR_LINES;
                msr
            }
            UART_SCR => self.state.scr,
            _ => {
                log::debug!("uart: read from offset {offset} beyond the register file");
                0xFF
            }
        }
    }

    /// A guest write of register `offset` (0-7).
    pub fn write(&mut self, offset: u8, val: u8) {
        let dlab = self.state.lcr & LCR_DLAB != 0;
        match offset {
            UART_DLL if dlab => {
                self.state.divisor = (self.state.divisor & 0xFF00) | u16::from(val);
            }
            UART_THR => self.transmit(val),
            UART_DLM if dlab => {
                self.state.divisor = (self.state.divisor & 0x00FF) | (u16::from(val) << 8);
            }
            UART_IER => {
                let old = self.state.ier;
                self.state.ier = val & IER_STORED;
                if (old ^ self.state.ier) & IER_ETBEI != 0 {
                    // THR is always empty here, so enabling the interrupt raises it at
                    // once, as on the chip; disabling it forgets it.
                    self.state.thr_ipending = self.state.ier & IER_ETBEI != 0;
                }
                if val & !IER_STORED != 0 {
                    log::trace!("uart: IER {val:#04x} sets bits a 16550A lacks");
                }
            }
            UART_FCR => self.write_fcr(val),
            UART_LCR => self.state.lcr = val,
            UART_MCR => {
                self.state.mcr = val & MCR_STORED;
                self.update_msr();
            }
            UART_LSR | UART_MSR => {
                log::debug!("uart: write {val:#04x} to read-only offset {offset}");
            }
            UART_SCR => self.state.scr = val,
            _ => log::debug!("uart: write {val:#04x} to offset {offset} beyond the register file"),
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.loopback() {
            self.push_rx(byte);
        } else {
            self.output.push_back(byte);
        }
        // The write cleared any THR-empty interrupt; the instantaneous transmission empties
        // THR again, which raises a new one.
        self.state.thr_ipending = self.state.ier & IER_ETBEI != 0;
    }

    fn write_fcr(&mut self, val: u8) {
        let enable = val & FCR_FIFO_ENABLE != 0;
        if enable != self.fifo_enabled() {
            // Switching between FIFO and 16450 mode empties both FIFOs.
            self.state.rx_fifo.clear();
        }
        if !enable {
            // The other FCR bits are only programmed together with FIFO enable.
            self.state.fcr = 0;
            return;
        }
        if val & FCR_RX_RESET != 0 {
            self.state.rx_fifo.clear();
        }
        self.state.fcr = val & FCR_STORED;
    }

    /// Whether transmitted bytes are waiting to be taken.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Take all transmitted bytes.
    pub fn take_output(&mut self) -> Vec<u8> {
        self.output.drain(..).collect()
    }

    /// Hand transmitted bytes to `f` without an intermediate copy, then forget them.
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

    pub fn state(&self) -> &UartState {
        &self.state
    }

    /// Rebuild a UART from saved state (with an empty output buffer).
    pub fn from_state(state: UartState) -> Result<Self, UartStateError> {
        for (register, value, allowed) in [
            ("IER", state.ier, IER_STORED),
            ("MCR", state.mcr, MCR_STORED),
            ("FCR", state.fcr, FCR_STORED),
            ("LSR errors", state.lsr_errors, LSR_ERRORS),
            ("modem inputs", state.modem_inputs, MSR_LINES),
        ] {
            if value & !allowed != 0 {
                return Err(UartStateError::ReservedBits { register, value });
            }
        }
        let uart = Uart {
            state,
            output: VecDeque::new(),
        };
        let capacity = uart.rx_capacity();
        let len = uart.state.rx_fifo.len();
        if len > capacity {
            return Err(UartStateError::RxFifoTooLong { len, capacity });
        }
        let lines = uart.modem_lines();
        if uart.state.msr & MSR_LINES != lines {
            return Err(UartStateError::ModemStatus {
                msr: uart.state.msr,
                lines,
            });
        }
        Ok(uart)
    }

    /// Replace the guest-visible state; pending output is kept. On error nothing changes.
    pub fn set_state(&mut self, state: UartState) -> Result<(), UartStateError> {
        let output = std::mem::take(&mut self.output);
        match Self::from_state(state) {
            Ok(mut uart) => {
                uart.output = output;
                *self = uart;
                Ok(())
            }
            Err(e) => {
                self.output = output;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn com() -> Uart {
        let mut u = Uart::new();
        u.write(UART_LCR, 0x03); // 8N1
        u.write(UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        u.read(UART_MSR); // forget the deltas from raising DTR/RTS
        u
    }

    fn iir_id(u: &mut Uart) -> u8 {
        u.read(UART_IIR) & 0x0F
    }

    #[test]
    fn thr_writes_become_output() {
        let mut u = com();
        assert!(!u.has_output());
        for b in b"boot\n" {
            assert_ne!(u.read(UART_LSR) & LSR_THRE, 0);
            u.write(UART_THR, *b);
        }
        assert_eq!(
            u.read(UART_LSR) & (LSR_THRE | LSR_TEMT),
            LSR_THRE | LSR_TEMT
        );
        assert!(u.has_output());
        assert_eq!(u.take_output(), b"boot\n");
        u.write(UART_THR, b'!');
        let mut got = Vec::new();
        u.drain_output(|s| got.extend_from_slice(s));
        assert_eq!(got, b"!");
        assert!(u.take_output().is_empty());
    }

    #[test]
    fn dlab_switches_to_divisor_latch() {
        let mut u = com();
        u.write(UART_IER, IER_ERBFI);
        u.write(UART_LCR, LCR_DLAB | 0x03);
        u.write(UART_DLL, 0x01);
        u.write(UART_DLM, 0x00);
        assert_eq!(u.read(UART_DLL), 0x01);
        assert_eq!(u.read(UART_DLM), 0x00);
        assert_eq!(u.divisor(), 1, "115200 baud");
        assert!(!u.has_output(), "DLL writes are not transmitted");
        u.write(UART_LCR, 0x03);
        assert_eq!(
            u.read(UART_IER),
            IER_ERBFI,
            "IER untouched by the DLM write"
        );
        u.write(UART_LCR, LCR_DLAB);
        u.write(UART_DLM, 0x04);
        assert_eq!(u.divisor(), 0x0401);
    }

    #[test]
    fn receive_without_fifo_holds_one_byte() {
        let mut u = com();
        assert_eq!(u.rx_space(), 1);
        assert_eq!(u.receive(b"abc"), 1);
        assert_eq!(u.rx_space(), 0);
        assert_eq!(u.receive(b"bc"), 0);
        assert_ne!(u.read(UART_LSR) & LSR_DR, 0);
        assert_eq!(u.read(UART_RBR), b'a');
        assert_eq!(u.read(UART_LSR) & LSR_DR, 0);
        assert_eq!(
            u.read(UART_RBR),
            b'a',
            "empty RBR reads the last byte again"
        );
        assert_eq!(u.read(UART_IIR) & IIR_FIFO_ENABLED, 0);
    }

    #[test]
    fn fifo_fill_and_overrun() {
        let mut u = com();
        u.write(
            UART_FCR,
            FCR_FIFO_ENABLE | FCR_RX_RESET | FCR_TX_RESET | 0xC0,
        );
        assert_eq!(u.read(UART_IIR) & IIR_FIFO_ENABLED, IIR_FIFO_ENABLED);
        let input: Vec<u8> = (0..20).collect();
        assert_eq!(u.receive(&input), 16, "host input never overruns");
        assert_eq!(u.rx_space(), 0);
        assert_eq!(u.read(UART_LSR) & LSR_OE, 0);
        for i in 0..16 {
            assert_ne!(u.read(UART_LSR) & LSR_DR, 0);
            assert_eq!(u.read(UART_RBR), i);
        }
        assert_eq!(u.read(UART_LSR) & LSR_DR, 0);
        assert_eq!(u.receive(&input[16..]), 4);

        // FIFO reset empties it.
        u.write(UART_FCR, FCR_FIFO_ENABLE | FCR_RX_RESET);
        assert_eq!(u.read(UART_LSR) & LSR_DR, 0);

        // The line (here: loopback) can overrun: the 17th byte is lost and OE set.
        u.write(UART_MCR, MCR_LOOP);
        for b in 0..17u8 {
            u.write(UART_THR, 0x40 + b);
        }
        assert!(!u.has_output(), "loopback transmits nothing outside");
        let lsr = u.read(UART_LSR);
        assert_eq!(lsr & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
        assert_eq!(u.read(UART_LSR) & LSR_OE, 0, "reading LSR clears OE");
        let got: Vec<u8> = (0..16).map(|_| u.read(UART_RBR)).collect();
        assert_eq!(got, (0x40..0x50).collect::<Vec<u8>>());

        // Without FIFOs an overrun replaces the unread byte instead.
        u.write(UART_FCR, 0);
        u.write(UART_THR, b'x');
        u.write(UART_THR, b'y');
        assert_ne!(u.read(UART_LSR) & LSR_OE, 0);
        assert_eq!(u.read(UART_RBR), b'y');
    }

    #[test]
    fn changing_fifo_mode_clears_receiver() {
        let mut u = com();
        u.receive(b"q");
        u.write(UART_FCR, FCR_FIFO_ENABLE);
        assert_eq!(u.read(UART_LSR) & LSR_DR, 0);
        u.receive(b"rs");
        u.write(UART_FCR, FCR_FIFO_ENABLE | 0x40); // trigger change alone keeps data
        assert_eq!(u.rx_space(), 14);
        u.write(UART_FCR, 0);
        assert_eq!(u.rx_space(), 1);
    }

    #[test]
    fn iir_priorities() {
        let mut u = com();
        u.write(UART_FCR, FCR_FIFO_ENABLE);
        u.write(UART_IER, IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
        // Build every condition at once: overrun + data via loopback, THRE from the
        // transmissions, modem deltas from the loopback wiring.
        u.write(UART_MCR, MCR_LOOP | MCR_DTR);
        for b in 0..17u8 {
            u.write(UART_THR, b);
        }
        u.write(UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
        assert_eq!(u.read(UART_IIR), IIR_FIFO_ENABLED | IIR_RLS);
        assert!(u.irq_level());
        assert_eq!(
            iir_id(&mut u),
            IIR_RLS,
            "IIR read does not clear line status"
        );
        u.read(UART_LSR);
        assert_eq!(
            iir_id(&mut u),
            IIR_RDA,
            "16 bytes reach the trigger level of 1"
        );
        for _ in 0..16 {
            u.read(UART_RBR);
        }
        assert_eq!(iir_id(&mut u), IIR_THRE);
        assert_eq!(iir_id(&mut u), IIR_MSI, "the IIR read acknowledged THRE");
        let msr = u.read(UART_MSR);
        assert_eq!(
            msr & MSR_DELTAS,
            MSR_DCTS | MSR_DDCD,
            "CTS and DCD dropped in loopback"
        );
        assert_eq!(u.read(UART_IIR), IIR_FIFO_ENABLED | IIR_NO_INT);
        assert!(!u.irq_level());
    }

    #[test]
    fn character_timeout_below_trigger() {
        let mut u = com();
        u.write(UART_FCR, FCR_FIFO_ENABLE | 0x40); // trigger level 4
        u.write(UART_IER, IER_ERBFI);
        u.receive(b"ab");
        assert_eq!(iir_id(&mut u), IIR_CTI);
        assert!(u.irq_level());
        u.receive(b"cd");
        assert_eq!(iir_id(&mut u), IIR_RDA);
        u.read(UART_RBR);
        assert_eq!(iir_id(&mut u), IIR_CTI);
        for _ in 0..3 {
            u.read(UART_RBR);
        }
        assert_eq!(iir_id(&mut u), IIR_NO_INT);
    }

    #[test]
    fn thre_interrupt_raise_and_clear() {
        let mut u = com();
        assert!(!u.irq_level());
        u.write(UART_IER, IER_ETBEI);
        assert!(
            u.irq_level(),
            "enabling ETBEI with THR empty interrupts at once"
        );
        assert_eq!(iir_id(&mut u), IIR_THRE);
        assert!(!u.irq_level(), "IIR read cleared it");
        assert_eq!(iir_id(&mut u), IIR_NO_INT);
        u.write(UART_THR, b'z');
        assert!(
            u.irq_level(),
            "THR emptied again after the instant transmission"
        );
        // Disabling ETBEI drops it, re-enabling raises it again.
        u.write(UART_IER, 0);
        assert!(!u.irq_level());
        u.write(UART_IER, IER_ETBEI);
        assert!(u.irq_level());
        // Rewriting IER with ETBEI unchanged does not re-raise after an acknowledge.
        u.read(UART_IIR);
        u.write(UART_IER, IER_ETBEI);
        assert!(!u.irq_level());
        // A lower-priority source does not consume THRE when IIR shows another one.
        u.write(UART_IER, IER_ETBEI | IER_ERBFI);
        u.receive(b"k");
        assert_eq!(iir_id(&mut u), IIR_RDA);
        u.read(UART_RBR);
        assert_eq!(
            iir_id(&mut u),
            IIR_NO_INT,
            "THRE had been acknowledged earlier"
        );
    }

    #[test]
    fn out2_gates_the_irq_line() {
        let mut u = com();
        u.write(UART_IER, IER_ERBFI);
        u.receive(b"x");
        assert!(u.irq_level());
        u.write(UART_MCR, MCR_DTR | MCR_RTS);
        assert!(!u.irq_level(), "OUT2 clear: the PC's IRQ buffer is off");
        assert_eq!(
            iir_id(&mut u),
            IIR_RDA,
            "the chip still reports the interrupt"
        );
    }

    #[test]
    fn loopback_mode() {
        let mut u = com();
        u.write(UART_IER, IER_ERBFI);
        u.write(UART_MCR, MCR_LOOP | MCR_OUT2 | MCR_RTS);
        assert_eq!(u.rx_space(), 0, "external input is cut off");
        assert_eq!(u.receive(b"ext"), 0);
        u.write(UART_THR, 0x5A);
        assert!(!u.has_output());
        assert_eq!(iir_id(&mut u), IIR_RDA);
        assert!(!u.irq_level(), "OUT2 is forced inactive in loopback");
        assert_eq!(u.read(UART_RBR), 0x5A);
        // MCR outputs appear on the MSR inputs: RTS->CTS, OUT2->DCD; DSR and RI dropped.
        let msr = u.read(UART_MSR);
        assert_eq!(msr & MSR_LINES, MSR_CTS | MSR_DCD);
        assert_eq!(
            msr & MSR_DELTAS,
            MSR_DDSR,
            "DSR fell; CTS and DCD stayed high"
        );
        u.write(UART_MCR, MCR_LOOP | MCR_OUT1 | MCR_DTR);
        let msr = u.read(UART_MSR);
        assert_eq!(msr & MSR_LINES, MSR_RI | MSR_DSR);
        assert_eq!(msr & MSR_DELTAS, MSR_DCTS | MSR_DDCD | MSR_DDSR);
        u.write(UART_MCR, MCR_LOOP);
        assert_eq!(
            u.read(UART_MSR) & MSR_DELTAS,
            MSR_TERI | MSR_DDSR,
            "RI trailing edge"
        );
        // Leaving loopback restores the external lines.
        u.write(UART_MCR, MCR_OUT2);
        assert_eq!(u.read(UART_MSR) & MSR_LINES, DEFAULT_MODEM_INPUTS);
        u.write(UART_THR, b'o');
        assert_eq!(u.take_output(), b"o");
    }

    #[test]
    fn modem_input_changes_interrupt() {
        let mut u = com();
        u.write(UART_IER, IER_EDSSI);
        assert!(!u.irq_level());
        u.set_modem_inputs(MSR_CTS | MSR_DSR | MSR_DCD | MSR_RI);
        assert!(!u.irq_level(), "RI rising is not reported");
        u.set_modem_inputs(MSR_CTS);
        assert!(u.irq_level());
        assert_eq!(iir_id(&mut u), IIR_MSI);
        assert_eq!(u.read(UART_MSR), MSR_CTS | MSR_TERI | MSR_DDSR | MSR_DDCD);
        assert!(!u.irq_level());
    }

    #[test]
    fn guest_nonsense_is_ignored() {
        let mut u = com();
        u.write(UART_LSR, 0);
        u.write(UART_MSR, 0xFF);
        u.write(9, 1);
        assert_eq!(u.read(9), 0xFF);
        assert_eq!(u.read(UART_LSR), LSR_THRE | LSR_TEMT);
        u.write(UART_SCR, 0xA5);
        assert_eq!(u.read(UART_SCR), 0xA5);
        u.write(UART_IER, 0xFF);
        assert_eq!(u.read(UART_IER), 0x0F);
    }

    #[test]
    fn state_round_trip() {
        let mut u = com();
        u.write(UART_FCR, FCR_FIFO_ENABLE | 0x80);
        u.write(UART_IER, IER_ERBFI | IER_ETBEI);
        u.write(UART_SCR, 0x77);
        u.write(UART_LCR, LCR_DLAB | 3);
        u.write(UART_DLL, 3);
        u.write(UART_LCR, 3);
        u.receive(b"hello");
        u.read(UART_RBR);
        u.set_modem_inputs(MSR_DSR);
        u.write(UART_THR, b'!');
        let s = u.state().clone();
        let mut v = Uart::from_state(s.clone()).unwrap();
        assert_eq!(v.state(), &s);
        assert!(!v.has_output(), "output is host-side, not state");
        assert_eq!(v.read(UART_RBR), b'e');
        assert_eq!(v.irq_level(), u.irq_level());
        let mut w = Uart::new();
        w.write(UART_THR, b'a');
        w.set_state(s.clone()).unwrap();
        assert_eq!(w.state(), &s);
        assert_eq!(w.take_output(), b"a");
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let good = com().state().clone();
        let mut s = good.clone();
        s.fcr = FCR_FIFO_ENABLE;
        s.rx_fifo = vec![0; 17];
        assert_eq!(
            Uart::from_state(s).unwrap_err(),
            UartStateError::RxFifoTooLong {
                len: 17,
                capacity: 16
            }
        );
        let mut s = good.clone();
        s.rx_fifo = vec![1, 2];
        assert!(matches!(
            Uart::from_state(s),
            Err(UartStateError::RxFifoTooLong { capacity: 1, .. })
        ));
        let mut s = good.clone();
        s.mcr = 0x20;
        assert!(matches!(
            Uart::from_state(s),
            Err(UartStateError::ReservedBits {
                register: "MCR",
                ..
            })
        ));
        let mut s = good.clone();
        s.msr = 0;
        assert!(matches!(
            Uart::from_state(s),
            Err(UartStateError::ModemStatus { .. })
        ));
        let mut u = Uart::new();
        u.write(UART_SCR, 1);
        let mut s = good;
        s.lsr_errors = LSR_THRE;
        assert!(u.set_state(s).is_err());
        assert_eq!(
            u.read(UART_SCR),
            1,
            "a rejected state leaves the device alone"
        );
    }
}
