//! The Intel 8042 keyboard controller and the keyboard behind it.
//!
//! ```text
//!   port 0x60  read: output buffer           write: data (to the keyboard, or the
//!                                                    argument of a controller command)
//!   port 0x64  read: status register         write: controller command
//!
//!   status  bit 0 OBF   output buffer full        bit 4 keyboard not inhibited (always 1)
//!           bit 1 IBF   input buffer full (0:     bit 5 the output byte is aux data
//!                       commands act at once)     bit 6 timeout (0)   bit 7 parity (0)
//!           bit 2 SYS   system flag               bit 3 last write was to port 0x64
//!
//!   command byte  bit 0 IRQ 1 on keyboard data    bit 4 keyboard clock disabled
//!                 bit 1 IRQ 12 on aux data        bit 5 aux clock disabled
//!                 bit 2 SYS flag                  bit 6 scan-code translation
//!
//!   output port   bit 0 0 = system reset          bit 4 OBF (keyboard data)
//!                 bit 1 A20 gate                  bit 5 OBF (aux data)
//!                 bits 2, 3, 6, 7 read as 1
//! ```
//!
//! Controller commands: 0x20/0x60 read/write the command byte, 0xA7/0xA8 disable/enable
//! the aux port, 0xA9/0xAB aux/keyboard interface tests (0 = no fault), 0xAA self test
//! (0x55, sets SYS), 0xAD/0xAE disable/enable the keyboard, 0xD0/0xD1 read/write the output
//! port, 0xD2/0xD3 put a byte in the output buffer as keyboard/aux data, 0xD4 send a byte
//! to the aux device, 0xDD/0xDF A20 off/on, 0xF0-0xFF pulse output-port bits (bit 0 low:
//! 0xFE resets the system). Other commands are ignored and logged.
//!
//! The keyboard is an MF2 keyboard without keys to press (no host input reaches it): it
//! answers 0xFF reset (0xFA, 0xAA), 0xF2 identify (0xFA 0xAB and 0x41 translated or 0x83),
//! 0xF4/0xF5/0xF6 enable/disable/defaults, 0xED LEDs, 0xEE echo, 0xF0 scan-code set, 0xF3
//! typematic rate, 0xF7-0xFD (acknowledged), and 0xFE (resend) with the last byte it sent.
//! Nothing is connected to the aux port: the port itself works (enable bits, interface
//! test, 0xD3 loopback), but bytes sent to a device there get no answer, as from an empty
//! PS/2 mouse socket.
//!
//! Everything happens at once, so IBF never reads 1. Bytes queue in the keyboard (16, as
//! in a real keyboard's buffer) and move to the single-byte output buffer when it is
//! empty and the keyboard's clock is enabled; replies of the controller itself go first.
//! The IRQ lines are levels: up while the output buffer holds a byte of their kind and
//! the command byte enables them.

use thiserror::Error;

/// Data port.
pub const I8042_DATA_PORT: u16 = 0x60;
/// Status (read) / command (write) port.
pub const I8042_CMD_PORT: u16 = 0x64;
/// The PIC input of keyboard data.
pub const KBD_IRQ: u8 = 1;
/// The PIC input of aux data.
pub const AUX_IRQ: u8 = 12;

pub const STATUS_OBF: u8 = 0x01;
pub const STATUS_IBF: u8 = 0x02;
pub const STATUS_SYS: u8 = 0x04;
pub const STATUS_CMD: u8 = 0x08;
pub const STATUS_UNLOCKED: u8 = 0x10;
pub const STATUS_AUX_OBF: u8 = 0x20;

pub const CTR_KBD_INT: u8 = 0x01;
pub const CTR_AUX_INT: u8 = 0x02;
pub const CTR_SYS: u8 = 0x04;
pub const CTR_KBD_DISABLE: u8 = 0x10;
pub const CTR_AUX_DISABLE: u8 = 0x20;
pub const CTR_XLATE: u8 = 0x40;
/// Bits of the command byte that exist (bits 3 and 7 are reserved).
const CTR_STORED: u8 = 0x77;

pub const OUT_RESET: u8 = 0x01;
pub const OUT_A20: u8 = 0x02;
pub const OUT_KBD_OBF: u8 = 0x10;
pub const OUT_AUX_OBF: u8 = 0x20;
/// Output-port bits not wired to anything, which read as 1.
const OUT_ONES: u8 = 0xCC;

pub const CMD_READ_CTR: u8 = 0x20;
pub const CMD_WRITE_CTR: u8 = 0x60;
pub const CMD_AUX_DISABLE: u8 = 0xA7;
pub const CMD_AUX_ENABLE: u8 = 0xA8;
pub const CMD_AUX_TEST: u8 = 0xA9;
pub const CMD_SELF_TEST: u8 = 0xAA;
pub const CMD_KBD_TEST: u8 = 0xAB;
pub const CMD_KBD_DISABLE: u8 = 0xAD;
pub const CMD_KBD_ENABLE: u8 = 0xAE;
pub const CMD_READ_OUTPORT: u8 = 0xD0;
pub const CMD_WRITE_OUTPORT: u8 = 0xD1;
pub const CMD_WRITE_KBD_OBUF: u8 = 0xD2;
pub const CMD_WRITE_AUX_OBUF: u8 = 0xD3;
pub const CMD_WRITE_AUX: u8 = 0xD4;
pub const CMD_DISABLE_A20: u8 = 0xDD;
pub const CMD_ENABLE_A20: u8 = 0xDF;
/// 0xF0-0xFF: pulse the output-port bits 0-3 whose command bits are 0.
pub const CMD_PULSE: u8 = 0xF0;
/// Self-test passed.
pub const SELF_TEST_OK: u8 = 0x55;

pub const KBD_CMD_SET_LEDS: u8 = 0xED;
pub const KBD_CMD_ECHO: u8 = 0xEE;
pub const KBD_CMD_SCANCODE: u8 = 0xF0;
pub const KBD_CMD_IDENTIFY: u8 = 0xF2;
pub const KBD_CMD_TYPEMATIC: u8 = 0xF3;
pub const KBD_CMD_ENABLE: u8 = 0xF4;
pub const KBD_CMD_DISABLE: u8 = 0xF5;
pub const KBD_CMD_DEFAULTS: u8 = 0xF6;
pub const KBD_CMD_RESEND: u8 = 0xFE;
pub const KBD_CMD_RESET: u8 = 0xFF;
pub const KBD_ACK: u8 = 0xFA;
pub const KBD_BAT_OK: u8 = 0xAA;
pub const KBD_RESEND: u8 = 0xFE;
pub const KBD_ID: u8 = 0xAB;

/// Bytes a keyboard can hold before it drops them.
pub const KBD_QUEUE_MAX: usize = 16;

/// `I8042State::pending_source`: nothing waiting.
pub const SRC_NONE: u8 = 0;
/// A byte for the output buffer as keyboard data.
pub const SRC_KBD: u8 = 1;
/// A byte for the output buffer as aux data.
pub const SRC_AUX: u8 = 2;

/// Default typematic setting: 10.9 characters/s, 500 ms delay.
const TYPEMATIC_DEFAULT: u8 = 0x2B;

/// Guest-visible state of the controller and keyboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I8042State {
    /// Status register bits that are stored: SYS and CMD.
    pub status: u8,
    /// The command byte.
    pub ctr: u8,
    /// Output port bits 0 (reset, 1 = running) and 1 (A20).
    pub outport: u8,
    /// The output buffer and whether it is full and holds aux data.
    pub obuf: u8,
    pub obuf_full: bool,
    pub obuf_aux: bool,
    /// A controller reply waiting for the output buffer: [`SRC_NONE`], [`SRC_KBD`] or
    /// [`SRC_AUX`], and the byte.
    pub pending_source: u8,
    pub pending_byte: u8,
    /// The controller command whose data byte the next port 0x60 write is; 0 if none.
    pub write_cmd: u8,
    /// Bytes the keyboard has sent that the controller has not taken yet.
    pub kbd_queue: Vec<u8>,
    /// The keyboard command waiting for its argument (0xED, 0xF0, 0xF3); 0 if none.
    pub kbd_cmd: u8,
    pub kbd_scanning: bool,
    pub kbd_leds: u8,
    /// Scan-code set, 1-3.
    pub kbd_scancode_set: u8,
    pub kbd_typematic: u8,
    /// The last byte the keyboard sent (what 0xFE resend repeats).
    pub kbd_last: u8,
}

/// An [`I8042State`] no sequence of guest accesses could produce.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum I8042StateError {
    #[error("{field} {value:#04x} has bits that do not exist")]
    Bits { field: &'static str, value: u8 },
    #[error("output port {0:#04x} holds the system in reset")]
    InReset(u8),
    #[error("keyboard queue of {0} bytes is longer than the keyboard's 16")]
    QueueTooLong(usize),
    #[error("pending output source {0} is not 0, 1 or 2")]
    Source(u8),
    #[error("aux data flagged in an empty output buffer")]
    AuxWithoutData,
    #[error("{0:#04x} is not a controller command that takes a data byte")]
    WriteCommand(u8),
    #[error("{0:#04x} is not a keyboard command that takes an argument")]
    KeyboardCommand(u8),
    #[error("scan-code set {0} is not 1, 2 or 3")]
    ScancodeSet(u8),
}

/// What a port write asks of the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct I8042Effects {
    /// Pulse the CPU's reset line.
    pub reset: bool,
}

/// The 8042 and its keyboard. See the module documentation.
#[derive(Clone, Debug)]
pub struct I8042 {
    s: I8042State,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// Power-on state: keyboard and aux interrupts enabled, A20 on, SYS clear (no
    /// self test yet).
    pub fn new() -> Self {
        I8042 {
            s: I8042State {
                status: STATUS_CMD,
                ctr: CTR_KBD_INT | CTR_AUX_INT,
                outport: OUT_RESET | OUT_A20,
                obuf: 0,
                obuf_full: false,
                obuf_aux: false,
                pending_source: SRC_NONE,
                pending_byte: 0,
                write_cmd: 0,
                kbd_queue: Vec::new(),
                kbd_cmd: 0,
                kbd_scanning: true,
                kbd_leds: 0,
                kbd_scancode_set: 2,
                kbd_typematic: TYPEMATIC_DEFAULT,
                kbd_last: 0,
            },
        }
    }

    /// The state a PC BIOS leaves: controller tested (SYS set), translation on, aux port
    /// disabled, keyboard interrupt enabled, keyboard scanning.
    pub fn bios_init(&mut self) {
        self.s.status |= STATUS_SYS;
        self.s.ctr = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE;
    }

    /// Level of the A20 gate output.
    pub fn a20(&self) -> bool {
        self.s.outport & OUT_A20 != 0
    }

    /// Level of IRQ 1.
    pub fn kbd_irq(&self) -> bool {
        self.s.obuf_full && !self.s.obuf_aux && self.s.ctr & CTR_KBD_INT != 0
    }

    /// Level of IRQ 12.
    pub fn aux_irq(&self) -> bool {
        self.s.obuf_full && self.s.obuf_aux && self.s.ctr & CTR_AUX_INT != 0
    }

    fn status(&self) -> u8 {
        let mut st = self.s.status | STATUS_UNLOCKED;
        if self.s.obuf_full {
            st |= STATUS_OBF;
            if self.s.obuf_aux {
                st |= STATUS_AUX_OBF;
            }
        }
        st
    }

    /// Moves the next byte into an empty output buffer: a controller reply first, then
    /// keyboard data if the keyboard's clock is enabled.
    fn fill(&mut self) {
        if self.s.obuf_full {
            return;
        }
        if self.s.pending_source != SRC_NONE {
            self.s.obuf = self.s.pending_byte;
            self.s.obuf_aux = self.s.pending_source == SRC_AUX;
            self.s.obuf_full = true;
            self.s.pending_source = SRC_NONE;
        } else if self.s.ctr & CTR_KBD_DISABLE == 0 && !self.s.kbd_queue.is_empty() {
            self.s.obuf = self.s.kbd_queue.remove(0);
            self.s.obuf_aux = false;
            self.s.obuf_full = true;
        }
    }

    /// A byte from the controller itself for the output buffer.
    fn reply(&mut self, v: u8, source: u8) {
        if self.s.pending_source != SRC_NONE {
            log::debug!(
                "i8042: controller reply {:#x} overwritten",
                self.s.pending_byte
            );
        }
        self.s.pending_source = source;
        self.s.pending_byte = v;
        self.fill();
    }

    /// A byte from the keyboard.
    fn kbd_send(&mut self, v: u8) {
        if self.s.kbd_queue.len() < KBD_QUEUE_MAX {
            self.s.kbd_queue.push(v);
            self.s.kbd_last = v;
        } else {
            log::debug!("i8042: keyboard buffer full, {v:#x} dropped");
        }
        self.fill();
    }

    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            I8042_CMD_PORT => self.status(),
            I8042_DATA_PORT => {
                let v = self.s.obuf;
                self.s.obuf_full = false;
                self.s.obuf_aux = false;
                self.fill();
                v
            }
            _ => 0xFF,
        }
    }

    pub fn write(&mut self, port: u16, v: u8) -> I8042Effects {
        match port {
            I8042_CMD_PORT => {
                self.s.status |= STATUS_CMD;
                self.command(v)
            }
            I8042_DATA_PORT => {
                self.s.status &= !STATUS_CMD;
                self.data(v)
            }
            _ => I8042Effects::default(),
        }
    }

    fn set_outport(&mut self, v: u8) -> I8042Effects {
        self.s.outport = v & (OUT_RESET | OUT_A20);
        let reset = v & OUT_RESET == 0;
        // The reset line is pulsed, not held: the controller comes back running.
        self.s.outport |= OUT_RESET;
        I8042Effects { reset }
    }

    fn command(&mut self, cmd: u8) -> I8042Effects {
        let mut fx = I8042Effects::default();
        self.s.write_cmd = 0;
        match cmd {
            CMD_READ_CTR => self.reply(self.s.ctr, SRC_KBD),
            CMD_WRITE_CTR | CMD_WRITE_OUTPORT | CMD_WRITE_KBD_OBUF | CMD_WRITE_AUX_OBUF
            | CMD_WRITE_AUX => self.s.write_cmd = cmd,
            CMD_AUX_DISABLE => self.s.ctr |= CTR_AUX_DISABLE,
            CMD_AUX_ENABLE => self.s.ctr &= !CTR_AUX_DISABLE,
            CMD_AUX_TEST | CMD_KBD_TEST => self.reply(0x00, SRC_KBD),
            CMD_SELF_TEST => {
                self.s.status |= STATUS_SYS;
                self.reply(SELF_TEST_OK, SRC_KBD);
            }
            CMD_KBD_DISABLE => self.s.ctr |= CTR_KBD_DISABLE,
            CMD_KBD_ENABLE => {
                self.s.ctr &= !CTR_KBD_DISABLE;
                self.fill();
            }
            CMD_READ_OUTPORT => {
                let mut v = self.s.outport | OUT_ONES;
                if self.s.obuf_full {
                    v |= if self.s.obuf_aux {
                        OUT_AUX_OBF
                    } else {
                        OUT_KBD_OBF
                    };
                }
                self.reply(v, SRC_KBD);
            }
            CMD_DISABLE_A20 => self.s.outport &= !OUT_A20,
            CMD_ENABLE_A20 => self.s.outport |= OUT_A20,
            c if c >= CMD_PULSE => fx.reset = c & OUT_RESET == 0,
            c => log::debug!("i8042: unsupported controller command {c:#x} ignored"),
        }
        fx
    }

    fn data(&mut self, v: u8) -> I8042Effects {
        let cmd = std::mem::take(&mut self.s.write_cmd);
        match cmd {
            CMD_WRITE_CTR => {
                self.s.ctr = v & CTR_STORED;
                self.s.status = (self.s.status & !STATUS_SYS) | (v & CTR_SYS);
                self.fill();
            }
            CMD_WRITE_OUTPORT => return self.set_outport(v),
            CMD_WRITE_KBD_OBUF => self.reply(v, SRC_KBD),
            CMD_WRITE_AUX_OBUF => self.reply(v, SRC_AUX),
            CMD_WRITE_AUX => log::trace!("i8042: {v:#x} sent to the empty aux port"),
            _ => {
                // Talking to the keyboard re-enables its clock.
                self.s.ctr &= !CTR_KBD_DISABLE;
                self.keyboard(v);
            }
        }
        I8042Effects::default()
    }

    fn kbd_defaults(&mut self) {
        self.s.kbd_scancode_set = 2;
        self.s.kbd_typematic = TYPEMATIC_DEFAULT;
    }

    /// A byte received by the keyboard.
    fn keyboard(&mut self, v: u8) {
        match std::mem::take(&mut self.s.kbd_cmd) {
            KBD_CMD_SET_LEDS => {
                self.s.kbd_leds = v & 0x07;
                self.kbd_send(KBD_ACK);
                return;
            }
            KBD_CMD_TYPEMATIC => {
                self.s.kbd_typematic = v & 0x7F;
                self.kbd_send(KBD_ACK);
                return;
            }
            KBD_CMD_SCANCODE => {
                match v {
                    0 => {
                        self.kbd_send(KBD_ACK);
                        let set = self.s.kbd_scancode_set;
                        let id = if self.s.ctr & CTR_XLATE != 0 {
                            [0x43, 0x41, 0x3F][usize::from(set - 1)]
                        } else {
                            set
                        };
                        self.kbd_send(id);
                    }
                    1..=3 => {
                        self.s.kbd_scancode_set = v;
                        self.kbd_send(KBD_ACK);
                    }
                    _ => self.kbd_send(KBD_RESEND),
                }
                return;
            }
            _ => {}
        }
        match v {
            KBD_CMD_SET_LEDS | KBD_CMD_TYPEMATIC | KBD_CMD_SCANCODE => {
                self.s.kbd_cmd = v;
                self.kbd_send(KBD_ACK);
            }
            KBD_CMD_ECHO => self.kbd_send(KBD_CMD_ECHO),
            KBD_CMD_IDENTIFY => {
                self.kbd_send(KBD_ACK);
                self.kbd_send(KBD_ID);
                self.kbd_send(if self.s.ctr & CTR_XLATE != 0 {
                    0x41
                } else {
                    0x83
                });
            }
            KBD_CMD_ENABLE => {
                self.s.kbd_queue.clear();
                self.s.kbd_scanning = true;
                self.kbd_send(KBD_ACK);
            }
            KBD_CMD_DISABLE => {
                self.s.kbd_queue.clear();
                self.s.kbd_scanning = false;
                self.kbd_defaults();
                self.kbd_send(KBD_ACK);
            }
            KBD_CMD_DEFAULTS => {
                self.s.kbd_queue.clear();
                self.kbd_defaults();
                self.kbd_send(KBD_ACK);
            }
            0xF7..=0xFD => self.kbd_send(KBD_ACK),
            KBD_CMD_RESEND => {
                let last = self.s.kbd_last;
                self.kbd_send(last);
            }
            KBD_CMD_RESET => {
                self.s.kbd_queue.clear();
                self.s.kbd_scanning = true;
                self.s.kbd_leds = 0;
                self.kbd_defaults();
                self.kbd_send(KBD_ACK);
                self.kbd_send(KBD_BAT_OK);
            }
            _ => self.kbd_send(KBD_RESEND),
        }
    }

    pub fn state(&self) -> &I8042State {
        &self.s
    }

    pub fn from_state(state: I8042State) -> Result<Self, I8042StateError> {
        let bits = |field, value: u8, allowed: u8| {
            if value & !allowed != 0 {
                Err(I8042StateError::Bits { field, value })
            } else {
                Ok(())
            }
        };
        bits("status", state.status, STATUS_SYS | STATUS_CMD)?;
        bits("command byte", state.ctr, CTR_STORED)?;
        bits("output port", state.outport, OUT_RESET | OUT_A20)?;
        bits("keyboard LEDs", state.kbd_leds, 0x07)?;
        bits("typematic rate", state.kbd_typematic, 0x7F)?;
        if state.outport & OUT_RESET == 0 {
            return Err(I8042StateError::InReset(state.outport));
        }
        if state.kbd_queue.len() > KBD_QUEUE_MAX {
            return Err(I8042StateError::QueueTooLong(state.kbd_queue.len()));
        }
        if state.pending_source > SRC_AUX {
            return Err(I8042StateError::Source(state.pending_source));
        }
        if state.obuf_aux && !state.obuf_full {
            return Err(I8042StateError::AuxWithoutData);
        }
        if !matches!(
            state.write_cmd,
            0 | CMD_WRITE_CTR
                | CMD_WRITE_OUTPORT
                | CMD_WRITE_KBD_OBUF
                | CMD_WRITE_AUX_OBUF
                | CMD_WRITE_AUX
        ) {
            return Err(I8042StateError::WriteCommand(state.write_cmd));
        }
        if !matches!(
            state.kbd_cmd,
            0 | KBD_CMD_SET_LEDS | KBD_CMD_SCANCODE | KBD_CMD_TYPEMATIC
        ) {
            return Err(I8042StateError::KeyboardCommand(state.kbd_cmd));
        }
        if !(1..=3).contains(&state.kbd_scancode_set) {
            return Err(I8042StateError::ScancodeSet(state.kbd_scancode_set));
        }
        Ok(I8042 { s: state })
    }

    pub fn set_state(&mut self, state: I8042State) -> Result<(), I8042StateError> {
        *self = Self::from_state(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(k: &mut I8042, c: u8) -> I8042Effects {
        k.write(I8042_CMD_PORT, c)
    }

    fn data(k: &mut I8042, v: u8) -> I8042Effects {
        k.write(I8042_DATA_PORT, v)
    }

    /// Everything in the output path, byte by byte, as a polling driver reads it.
    fn drain(k: &mut I8042) -> Vec<u8> {
        let mut out = Vec::new();
        while k.read(I8042_CMD_PORT) & STATUS_OBF != 0 {
            out.push(k.read(I8042_DATA_PORT));
        }
        out
    }

    #[test]
    fn self_test_and_interface_tests() {
        let mut k = I8042::new();
        assert_eq!(k.read(I8042_CMD_PORT), STATUS_UNLOCKED | STATUS_CMD);
        cmd(&mut k, CMD_SELF_TEST);
        let st = k.read(I8042_CMD_PORT);
        assert_eq!(
            st & (STATUS_OBF | STATUS_SYS | STATUS_IBF),
            STATUS_OBF | STATUS_SYS
        );
        assert_eq!(drain(&mut k), [SELF_TEST_OK]);
        cmd(&mut k, CMD_KBD_TEST);
        assert_eq!(drain(&mut k), [0]);
        cmd(&mut k, CMD_AUX_TEST);
        assert_eq!(drain(&mut k), [0]);
        // An empty buffer reads the last byte again.
        assert_eq!(k.read(I8042_DATA_PORT), 0);
        data(&mut k, KBD_CMD_ECHO);
        assert_eq!(
            k.read(I8042_CMD_PORT) & STATUS_CMD,
            0,
            "last write was data"
        );
    }

    #[test]
    fn command_byte_and_enable_bits() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_READ_CTR);
        assert_eq!(drain(&mut k), [CTR_KBD_INT | CTR_AUX_INT]);
        cmd(&mut k, CMD_WRITE_CTR);
        data(&mut k, 0xFF);
        cmd(&mut k, CMD_READ_CTR);
        assert_eq!(drain(&mut k), [CTR_STORED], "reserved bits are not stored");
        assert_ne!(
            k.read(I8042_CMD_PORT) & STATUS_SYS,
            0,
            "SYS follows the command byte"
        );
        cmd(&mut k, CMD_WRITE_CTR);
        data(&mut k, 0);
        assert_eq!(k.read(I8042_CMD_PORT) & STATUS_SYS, 0);
        for (c, bit, set) in [
            (CMD_KBD_DISABLE, CTR_KBD_DISABLE, true),
            (CMD_KBD_ENABLE, CTR_KBD_DISABLE, false),
            (CMD_AUX_DISABLE, CTR_AUX_DISABLE, true),
            (CMD_AUX_ENABLE, CTR_AUX_DISABLE, false),
        ] {
            cmd(&mut k, c);
            cmd(&mut k, CMD_READ_CTR);
            assert_eq!(drain(&mut k)[0] & bit != 0, set, "command {c:#x}");
        }
    }

    #[test]
    fn output_port_a20_and_reset() {
        let mut k = I8042::new();
        assert!(k.a20());
        cmd(&mut k, CMD_READ_OUTPORT);
        assert_eq!(drain(&mut k), [0xCF]);
        cmd(&mut k, CMD_WRITE_OUTPORT);
        assert_eq!(data(&mut k, 0xDD), I8042Effects { reset: false });
        assert!(!k.a20());
        cmd(&mut k, CMD_READ_OUTPORT);
        assert_eq!(drain(&mut k), [0xCD]);
        cmd(&mut k, CMD_ENABLE_A20);
        assert!(k.a20());
        cmd(&mut k, CMD_DISABLE_A20);
        assert!(!k.a20());
        cmd(&mut k, CMD_WRITE_OUTPORT);
        assert_eq!(
            data(&mut k, 0xDE),
            I8042Effects { reset: true },
            "bit 0 low"
        );
        assert!(k.a20());
        assert_eq!(cmd(&mut k, 0xFE), I8042Effects { reset: true });
        assert_eq!(cmd(&mut k, 0xFF), I8042Effects { reset: false });
        assert_eq!(cmd(&mut k, 0xF1), I8042Effects { reset: false });
        assert_eq!(cmd(&mut k, 0xF0), I8042Effects { reset: true });
        // The output buffer bits show in the output port.
        cmd(&mut k, CMD_WRITE_KBD_OBUF);
        data(&mut k, 0x11);
        cmd(&mut k, CMD_READ_OUTPORT);
        assert_eq!(drain(&mut k), [0x11, 0xDF], "OBF was still set");
    }

    #[test]
    fn write_output_buffer_and_irqs() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_WRITE_KBD_OBUF);
        data(&mut k, 0x5A);
        assert!(k.kbd_irq() && !k.aux_irq());
        assert_eq!(k.read(I8042_CMD_PORT) & STATUS_AUX_OBF, 0);
        assert_eq!(k.read(I8042_DATA_PORT), 0x5A);
        assert!(!k.kbd_irq());
        // Aux loopback: aux data, IRQ 12.
        cmd(&mut k, CMD_WRITE_AUX_OBUF);
        data(&mut k, 0xA5);
        assert!(k.aux_irq() && !k.kbd_irq());
        assert_ne!(k.read(I8042_CMD_PORT) & STATUS_AUX_OBF, 0);
        assert_eq!(k.read(I8042_DATA_PORT), 0xA5);
        // Interrupts disabled in the command byte: OBF but no IRQ.
        cmd(&mut k, CMD_WRITE_CTR);
        data(&mut k, 0);
        cmd(&mut k, CMD_WRITE_KBD_OBUF);
        data(&mut k, 1);
        assert!(!k.kbd_irq());
        assert_eq!(drain(&mut k), [1]);
        // Nothing answers on the aux port.
        cmd(&mut k, CMD_WRITE_AUX);
        data(&mut k, KBD_CMD_IDENTIFY);
        assert!(drain(&mut k).is_empty());
    }

    #[test]
    fn keyboard_commands() {
        let mut k = I8042::new();
        data(&mut k, KBD_CMD_RESET);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_BAT_OK]);
        data(&mut k, KBD_CMD_IDENTIFY);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_ID, 0x83]);
        cmd(&mut k, CMD_WRITE_CTR);
        data(&mut k, CTR_KBD_INT | CTR_XLATE);
        data(&mut k, KBD_CMD_IDENTIFY);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_ID, 0x41], "translated ID");
        data(&mut k, KBD_CMD_ECHO);
        assert_eq!(drain(&mut k), [KBD_CMD_ECHO]);
        data(&mut k, KBD_CMD_SET_LEDS);
        data(&mut k, 0x07);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_ACK]);
        assert_eq!(k.state().kbd_leds, 7);
        data(&mut k, KBD_CMD_DISABLE);
        assert!(!k.state().kbd_scanning);
        data(&mut k, KBD_CMD_ENABLE);
        assert!(k.state().kbd_scanning);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_ACK]);
        data(&mut k, KBD_CMD_SCANCODE);
        data(&mut k, 0);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_ACK, 0x41]);
        data(&mut k, KBD_CMD_SCANCODE);
        data(&mut k, 9);
        assert_eq!(drain(&mut k), [KBD_ACK, KBD_RESEND]);
        data(&mut k, 0x12);
        assert_eq!(drain(&mut k), [KBD_RESEND], "unknown command");
        data(&mut k, KBD_CMD_RESEND);
        assert_eq!(drain(&mut k), [KBD_RESEND]);
    }

    #[test]
    fn disabled_keyboard_holds_its_bytes() {
        let mut k = I8042::new();
        data(&mut k, KBD_CMD_RESET);
        cmd(&mut k, CMD_KBD_DISABLE);
        assert_eq!(drain(&mut k), [KBD_ACK], "already in the output buffer");
        assert_eq!(k.state().kbd_queue, [KBD_BAT_OK]);
        // Controller replies still come through.
        cmd(&mut k, CMD_SELF_TEST);
        assert_eq!(drain(&mut k), [SELF_TEST_OK]);
        cmd(&mut k, CMD_KBD_ENABLE);
        assert_eq!(drain(&mut k), [KBD_BAT_OK]);
        // Sending to the keyboard enables it again.
        cmd(&mut k, CMD_KBD_DISABLE);
        data(&mut k, KBD_CMD_ECHO);
        assert_eq!(drain(&mut k), [KBD_CMD_ECHO]);
        // A full keyboard buffer drops bytes.
        cmd(&mut k, CMD_KBD_DISABLE);
        for _ in 0..20 {
            k.write(I8042_DATA_PORT, KBD_CMD_ECHO);
            cmd(&mut k, CMD_KBD_DISABLE);
        }
        assert_eq!(drain(&mut k).len(), 1);
        cmd(&mut k, CMD_KBD_ENABLE);
        assert_eq!(drain(&mut k).len(), KBD_QUEUE_MAX);
    }

    #[test]
    fn bios_init_state() {
        let mut k = I8042::new();
        k.bios_init();
        assert_ne!(k.read(I8042_CMD_PORT) & STATUS_SYS, 0);
        cmd(&mut k, CMD_READ_CTR);
        assert_eq!(drain(&mut k), [0x65]);
    }

    #[test]
    fn state_round_trip() {
        let mut k = I8042::new();
        data(&mut k, KBD_CMD_RESET);
        cmd(&mut k, CMD_KBD_DISABLE);
        data(&mut k, KBD_CMD_SET_LEDS);
        cmd(&mut k, CMD_WRITE_OUTPORT);
        let s = k.state().clone();
        let mut q = I8042::from_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        data(&mut q, 0xDD);
        drain(&mut q);
        assert_ne!(q.state(), &s);
        q.set_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        assert_eq!(drain(&mut q), drain(&mut k));
        assert_eq!(q.state(), k.state());
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let good = I8042::new().state().clone();
        type Edit = fn(&mut I8042State);
        let cases: [(Edit, I8042StateError); 11] = [
            (
                |s| s.status = 0x01,
                I8042StateError::Bits {
                    field: "status",
                    value: 0x01,
                },
            ),
            (
                |s| s.ctr = 0x80,
                I8042StateError::Bits {
                    field: "command byte",
                    value: 0x80,
                },
            ),
            (
                |s| s.outport = 0x13,
                I8042StateError::Bits {
                    field: "output port",
                    value: 0x13,
                },
            ),
            (|s| s.outport = OUT_A20, I8042StateError::InReset(OUT_A20)),
            (
                |s| s.kbd_queue = vec![0; 17],
                I8042StateError::QueueTooLong(17),
            ),
            (|s| s.pending_source = 3, I8042StateError::Source(3)),
            (|s| s.obuf_aux = true, I8042StateError::AuxWithoutData),
            (|s| s.write_cmd = 0xAA, I8042StateError::WriteCommand(0xAA)),
            (|s| s.kbd_cmd = 0xF4, I8042StateError::KeyboardCommand(0xF4)),
            (|s| s.kbd_scancode_set = 0, I8042StateError::ScancodeSet(0)),
            (
                |s| s.kbd_leds = 8,
                I8042StateError::Bits {
                    field: "keyboard LEDs",
                    value: 8,
                },
            ),
        ];
        for (edit, err) in cases {
            let mut s = good.clone();
            edit(&mut s);
            assert_eq!(I8042::from_state(s).unwrap_err(), err);
        }
    }
}
