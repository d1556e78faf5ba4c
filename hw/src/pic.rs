//! The PC's pair of Intel 8259A programmable interrupt controllers.
//!
//! A PC/AT cascades two 8259As: the master takes IRQ 0-7 and drives the CPU's INTR line,
//! the slave takes IRQ 8-15 and drives the master's IR2. [`Pic`] models the pair as wired:
//!
//! | port         | device                                                      |
//! |--------------|-------------------------------------------------------------|
//! | 0x20 / 0x21  | master: ICW1, OCW2, OCW3 / ICW2-4, OCW1 (IMR)                |
//! | 0xA0 / 0xA1  | slave, same layout                                           |
//! | 0x4D0/0x4D1  | edge/level control registers (ELCR) of master / slave (PIIX) |
//!
//! Emulated: the full ICW1-ICW4 initialization sequence (cascade or single, with or
//! without ICW4), interrupt masks (OCW1), non-specific and specific EOI, rotate on EOI,
//! set priority and rotate in automatic-EOI mode (OCW2), IRR/ISR read-back, poll mode and
//! special mask mode (OCW3), rotating priority resolution, automatic EOI, special fully
//! nested mode on the master, per-line edge/level triggering (ELCR, or ICW1 LTIM for a
//! whole chip), the cascade through IR2 and the spurious IRQ 7 / IRQ 15 vectors.
//!
//! Not emulated: MCS-80/85 mode (ICW4 uPM = 0; vectors are always delivered 8086-style and
//! the choice is only logged), the call-address interval (ICW1 ADI), buffered mode and
//! the master/slave select of ICW4 (the wiring is fixed). Edge-triggered requests stay
//! latched in IRR once seen, even if the line drops before the INTA cycle: devices here
//! raise interrupts with instantaneous pulses, which a stricter model would lose. The
//! master's IR2 is the exception: it follows the slave's INT output as a level, so a
//! request withdrawn on the slave never reaches the CPU as a spurious IRQ 15.

use thiserror::Error;

/// Master command port (ICW1, OCW2, OCW3; reads IRR/ISR or the poll word).
pub const PIC_MASTER_CMD: u16 = 0x20;
/// Master data port (ICW2-ICW4, OCW1; reads IMR).
pub const PIC_MASTER_DATA: u16 = 0x21;
/// Slave command port.
pub const PIC_SLAVE_CMD: u16 = 0xA0;
/// Slave data port.
pub const PIC_SLAVE_DATA: u16 = 0xA1;
/// Master edge/level control register.
pub const ELCR_MASTER: u16 = 0x4D0;
/// Slave edge/level control register.
pub const ELCR_SLAVE: u16 = 0x4D1;

/// The master input that the slave drives.
pub const CASCADE_IRQ: u8 = 2;
const CASCADE_BIT: u8 = 1 << CASCADE_IRQ;

/// ICW1: an ICW4 will follow.
pub const ICW1_IC4: u8 = 0x01;
/// ICW1: single controller, no ICW3.
pub const ICW1_SNGL: u8 = 0x02;
/// ICW1: call address interval 4 (MCS-80 only).
pub const ICW1_ADI: u8 = 0x04;
/// ICW1: level-triggered inputs for the whole chip.
pub const ICW1_LTIM: u8 = 0x08;
/// Command-port bit that marks a write as ICW1.
pub const ICW1_INIT: u8 = 0x10;

/// ICW4: 8086/88 mode (as opposed to MCS-80/85).
pub const ICW4_UPM: u8 = 0x01;
/// ICW4: automatic end of interrupt.
pub const ICW4_AEOI: u8 = 0x02;
/// ICW4: buffered-mode master/slave select.
pub const ICW4_MS: u8 = 0x04;
/// ICW4: buffered mode.
pub const ICW4_BUF: u8 = 0x08;
/// ICW4: special fully nested mode.
pub const ICW4_SFNM: u8 = 0x10;

/// OCW2: rotate.
pub const OCW2_R: u8 = 0x80;
/// OCW2: specific level in bits 2-0.
pub const OCW2_SL: u8 = 0x40;
/// OCW2: end of interrupt.
pub const OCW2_EOI: u8 = 0x20;
/// OCW2: the level field.
pub const OCW2_LEVEL: u8 = 0x07;

/// OCW3: the special-mask bit below is valid.
pub const OCW3_ESMM: u8 = 0x40;
/// OCW3: special mask mode on (with ESMM).
pub const OCW3_SMM: u8 = 0x20;
/// Command-port bit that marks a write (without ICW1_INIT) as OCW3 rather than OCW2.
pub const OCW3_SELECT: u8 = 0x08;
/// OCW3: poll command.
pub const OCW3_P: u8 = 0x04;
/// OCW3: the register-select bit below is valid.
pub const OCW3_RR: u8 = 0x02;
/// OCW3: read ISR (set) or IRR (clear) on the command port.
pub const OCW3_RIS: u8 = 0x01;

/// Master lines that may be level triggered. IRQ 0 (timer), 1 (keyboard) and 2 (cascade)
/// are hard-wired edge on the PIIX.
pub const ELCR_MASTER_MASK: u8 = 0xF8;
/// Slave lines that may be level triggered. IRQ 8 (RTC) and 13 (FPU) are hard-wired edge.
pub const ELCR_SLAVE_MASK: u8 = 0xDE;

/// Vector base a PC BIOS gives the master (IRQ 0-7 -> INT 08h-0Fh).
pub const BIOS_MASTER_VECTOR: u8 = 0x08;
/// Vector base a PC BIOS gives the slave (IRQ 8-15 -> INT 70h-77h).
pub const BIOS_SLAVE_VECTOR: u8 = 0x70;
/// Master IMR left by SeaBIOS on QEMU's PC: IRQ 0 (timer), 1 (keyboard), 2 (cascade) and
/// 6 (floppy) unmasked.
pub const BIOS_MASTER_IMR: u8 = 0xB8;
/// Slave IMR left by SeaBIOS on QEMU's PC: IRQ 8 (RTC), 12 (PS/2 mouse), 13 (FPU) and
/// 14 (primary IDE) unmasked.
pub const BIOS_SLAVE_IMR: u8 = 0x8E;

/// Reserved bits of the stored ICW1 (only IC4, SNGL, ADI and LTIM are kept).
const ICW1_STORED: u8 = ICW1_IC4 | ICW1_SNGL | ICW1_ADI | ICW1_LTIM;
const ICW4_STORED: u8 = ICW4_UPM | ICW4_AEOI | ICW4_MS | ICW4_BUF | ICW4_SFNM;

/// Guest-visible state of one 8259A.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PicChipState {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Current level of each IR input pin (edge detection needs the previous level).
    pub lines: u8,
    /// Edge/level control register: set bits are level triggered.
    pub elcr: u8,
    /// Configuration bits of the last ICW1 (`ICW1_IC4 | ICW1_SNGL | ICW1_ADI | ICW1_LTIM`).
    pub icw1: u8,
    /// Vector of IR0 (ICW2 with the low three bits cleared).
    pub vector_base: u8,
    /// ICW3 as written (master: bitmap of inputs with slaves; slave: its cascade id).
    pub icw3: u8,
    /// ICW4 as written (`ICW4_*`), or 0 if ICW1 did not ask for one.
    pub icw4: u8,
    /// Which initialization word the data port expects next: 0 = none (OCW1), 2 = ICW2,
    /// 3 = ICW3, 4 = ICW4.
    pub init_step: u8,
    /// The IR level with the lowest priority (7 after initialization); rotation moves it.
    pub lowest_priority: u8,
    /// OCW3 RIS: command-port reads return ISR instead of IRR.
    pub read_isr: bool,
    /// OCW3 P: the next read is a poll (an acknowledge through the data bus).
    pub poll: bool,
    /// OCW3 SMM: special mask mode.
    pub special_mask: bool,
    /// OCW2 rotate-in-automatic-EOI mode.
    pub rotate_in_aeoi: bool,
}

/// Guest-visible state of the master/slave pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PicState {
    pub master: PicChipState,
    pub slave: PicChipState,
}

/// A [`PicState`] that no sequence of guest writes could produce.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PicStateError {
    #[error("{chip}: init step {step} is not 0, 2, 3 or 4")]
    InitStep { chip: &'static str, step: u8 },
    #[error("{chip}: lowest-priority level {level} is above 7")]
    Priority { chip: &'static str, level: u8 },
    #[error("{chip}: vector base {base:#04x} is not a multiple of 8")]
    VectorBase { chip: &'static str, base: u8 },
    #[error("{chip}: ELCR {elcr:#04x} sets lines that are hard-wired edge triggered")]
    Elcr { chip: &'static str, elcr: u8 },
    #[error("{chip}: {register} {value:#04x} has reserved bits set")]
    ReservedBits {
        chip: &'static str,
        register: &'static str,
        value: u8,
    },
}

impl PicChipState {
    /// Power-on state: uninitialized, everything cleared, IR7 lowest priority.
    fn power_on() -> Self {
        PicChipState {
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            elcr: 0,
            icw1: 0,
            vector_base: 0,
            icw3: 0,
            icw4: 0,
            init_step: 0,
            lowest_priority: 7,
            read_isr: false,
            poll: false,
            special_mask: false,
            rotate_in_aeoi: false,
        }
    }

    fn validate(&self, chip: &'static str, elcr_mask: u8) -> Result<(), PicStateError> {
        if !matches!(self.init_step, 0 | 2 | 3 | 4) {
            return Err(PicStateError::InitStep {
                chip,
                step: self.init_step,
            });
        }
        if self.lowest_priority > 7 {
            return Err(PicStateError::Priority {
                chip,
                level: self.lowest_priority,
            });
        }
        if self.vector_base & 7 != 0 {
            return Err(PicStateError::VectorBase {
                chip,
                base: self.vector_base,
            });
        }
        if self.elcr & !elcr_mask != 0 {
            return Err(PicStateError::Elcr {
                chip,
                elcr: self.elcr,
            });
        }
        for (register, value, allowed) in [
            ("ICW1", self.icw1, ICW1_STORED),
            ("ICW4", self.icw4, ICW4_STORED),
        ] {
            if value & !allowed != 0 {
                return Err(PicStateError::ReservedBits {
                    chip,
                    register,
                    value,
                });
            }
        }
        Ok(())
    }

    /// Inputs whose IRR bit follows the line level rather than latching rising edges.
    fn level_mask(&self) -> u8 {
        if self.icw1 & ICW1_LTIM != 0 {
            0xFF
        } else {
            self.elcr
        }
    }

    fn auto_eoi(&self) -> bool {
        self.icw4 & ICW4_AEOI != 0
    }

    fn special_fully_nested(&self) -> bool {
        self.icw4 & ICW4_SFNM != 0
    }

    /// Priority rank of an IR level: 0 is the highest.
    fn rank(&self, irq: u8) -> u8 {
        irq.wrapping_sub(self.lowest_priority).wrapping_sub(1) & 7
    }

    /// The level in `mask` with the highest priority under the current rotation.
    fn highest_in(&self, mask: u8) -> Option<u8> {
        (0..8u8)
            .map(|r| (self.lowest_priority + 1 + r) & 7)
            .find(|&irq| mask & (1 << irq) != 0)
    }

    fn set_input(&mut self, pin: u8, level: bool) {
        let bit = 1u8 << pin;
        if self.level_mask() & bit != 0 {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && self.lines & bit == 0 {
            self.irr |= bit;
        }
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
    }

    /// The level this chip would present on INT now, if any: the highest-priority
    /// unmasked request that outranks everything in service.
    fn best_request(&self, is_master: bool) -> Option<u8> {
        let request = self.highest_in(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        // Special mask mode exists so a handler can mask its own level and let lower
        // levels through: a masked in-service level stops blocking.
        if self.special_mask {
            in_service &= !self.imr;
        }
        match self.highest_in(in_service) {
            None => Some(request),
            Some(current) if self.rank(request) < self.rank(current) => Some(request),
            // In special fully nested mode the master lets the slave interrupt again while
            // an earlier slave request is in service: the slave has already checked that
            // the new request outranks its own in-service level.
            Some(current)
                if is_master
                    && self.special_fully_nested()
                    && request == CASCADE_IRQ
                    && current == CASCADE_IRQ =>
            {
                Some(request)
            }
            Some(_) => None,
        }
    }

    /// The INTA (or poll) side effects for level `irq`.
    fn intack(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if self.auto_eoi() {
            if self.rotate_in_aeoi {
                self.lowest_priority = irq;
            }
        } else {
            self.isr |= bit;
        }
        // A level-triggered request stays asserted until the device drops it.
        if self.level_mask() & bit == 0 {
            self.irr &= !bit;
        }
    }

    /// Whether an acknowledged master IR2 must be passed on to the slave.
    fn cascades_on_ir2(&self) -> bool {
        self.icw1 & ICW1_SNGL == 0 && self.icw3 & CASCADE_BIT != 0
    }

    fn write_command(&mut self, chip: &str, val: u8) {
        if val & ICW1_INIT != 0 {
            self.icw1_write(chip, val);
        } else if val & OCW3_SELECT != 0 {
            self.ocw3_write(chip, val);
        } else {
            self.ocw2_write(chip, val);
        }
    }

    fn icw1_write(&mut self, chip: &str, val: u8) {
        // The datasheet's initialization reset: edge sense cleared (a line already high
        // must fall and rise again), IMR cleared, IR7 lowest priority, special mask off,
        // IRR selected for reading, and ICW4 functions zero until an ICW4 says otherwise.
        self.icw1 = val & ICW1_STORED;
        self.isr = 0;
        self.imr = 0;
        self.irr = self.lines & self.level_mask();
        self.icw3 = 0;
        self.icw4 = 0;
        self.lowest_priority = 7;
        self.read_isr = false;
        self.poll = false;
        self.special_mask = false;
        self.rotate_in_aeoi = false;
        self.init_step = 2;
        if val & ICW1_IC4 == 0 {
            log::debug!("pic {chip}: ICW1 {val:#04x} without ICW4 selects MCS-80 mode; vectors stay 8086-style");
        }
        if val & ICW1_ADI != 0 {
            log::trace!("pic {chip}: ICW1 ADI ignored (MCS-80 only)");
        }
    }

    fn ocw2_write(&mut self, chip: &str, val: u8) {
        let level = val & OCW2_LEVEL;
        match val & (OCW2_R | OCW2_SL | OCW2_EOI) {
            OCW2_EOI => {
                if let Some(irq) = self.highest_in(self.isr) {
                    self.isr &= !(1 << irq);
                }
            }
            x if x == OCW2_SL | OCW2_EOI => self.isr &= !(1 << level),
            x if x == OCW2_R | OCW2_EOI => {
                if let Some(irq) = self.highest_in(self.isr) {
                    self.isr &= !(1 << irq);
                    self.lowest_priority = irq;
                }
            }
            OCW2_R => self.rotate_in_aeoi = true,
            0 => self.rotate_in_aeoi = false,
            x if x == OCW2_R | OCW2_SL | OCW2_EOI => {
                self.isr &= !(1 << level);
                self.lowest_priority = level;
            }
            x if x == OCW2_R | OCW2_SL => self.lowest_priority = level,
            _ => log::trace!("pic {chip}: OCW2 {val:#04x} is a no-op"),
        }
    }

    fn ocw3_write(&mut self, chip: &str, val: u8) {
        if val & 0x80 != 0 {
            log::debug!("pic {chip}: OCW3 {val:#04x} has reserved bit 7 set");
        }
        if val & OCW3_P != 0 {
            self.poll = true;
        }
        if val & OCW3_RR != 0 {
            self.read_isr = val & OCW3_RIS != 0;
        }
        if val & OCW3_ESMM != 0 {
            self.special_mask = val & OCW3_SMM != 0;
        }
    }

    fn write_data(&mut self, chip: &str, val: u8) {
        match self.init_step {
            2 => {
                self.vector_base = val & 0xF8;
                self.init_step = if self.icw1 & ICW1_SNGL == 0 {
                    3
                } else if self.icw1 & ICW1_IC4 != 0 {
                    4
                } else {
                    0
                };
            }
            3 => {
                self.icw3 = val;
                self.init_step = if self.icw1 & ICW1_IC4 != 0 { 4 } else { 0 };
            }
            4 => {
                self.icw4 = val & ICW4_STORED;
                if val & ICW4_UPM == 0 {
                    log::debug!(
                        "pic {chip}: ICW4 {val:#04x} selects MCS-80 mode; vectors stay 8086-style"
                    );
                }
                if val & !ICW4_STORED != 0 {
                    log::debug!("pic {chip}: ICW4 {val:#04x} has reserved bits set");
                }
                self.init_step = 0;
            }
            _ => self.imr = val,
        }
    }

    /// A command-port read, or a poll through either port.
    fn read_command(&mut self, is_master: bool) -> u8 {
        if let Some(v) = self.take_poll(is_master) {
            return v;
        }
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    fn read_data(&mut self, is_master: bool) -> u8 {
        self.take_poll(is_master).unwrap_or(self.imr)
    }

    /// After a poll command the next read is the poll word, with INTA side effects.
    fn take_poll(&mut self, is_master: bool) -> Option<u8> {
        if !self.poll {
            return None;
        }
        self.poll = false;
        Some(match self.best_request(is_master) {
            Some(irq) => {
                self.intack(irq);
                0x80 | irq
            }
            None => 0,
        })
    }

    fn write_elcr(&mut self, val: u8, mask: u8) {
        self.elcr = val & mask;
        let level = self.level_mask();
        self.irr = (self.irr & !level) | (self.lines & level);
    }
}

/// The master/slave 8259A pair of a PC. See the module documentation.
#[derive(Clone, Debug)]
pub struct Pic {
    state: PicState,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// Both chips in their power-on state (uninitialized, unmasked, all edge triggered).
    pub fn new() -> Self {
        Pic {
            state: PicState {
                master: PicChipState::power_on(),
                slave: PicChipState::power_on(),
            },
        }
    }

    /// Program the pair as a PC BIOS (SeaBIOS) leaves it for the OS: cascade through IR2,
    /// 8086 mode, normal EOI, vectors 08h/70h, and the IMRs SeaBIOS leaves on QEMU's PC
    /// ([`BIOS_MASTER_IMR`], [`BIOS_SLAVE_IMR`]). ELCR stays all-edge: SeaBIOS only marks
    /// PCI interrupt lines level triggered, and this board has no PCI interrupts.
    pub fn bios_init(&mut self) {
        for (port, val) in [
            (PIC_MASTER_CMD, ICW1_INIT | ICW1_IC4),
            (PIC_SLAVE_CMD, ICW1_INIT | ICW1_IC4),
            (PIC_MASTER_DATA, BIOS_MASTER_VECTOR),
            (PIC_SLAVE_DATA, BIOS_SLAVE_VECTOR),
            (PIC_MASTER_DATA, CASCADE_BIT),
            (PIC_SLAVE_DATA, CASCADE_IRQ),
            (PIC_MASTER_DATA, ICW4_UPM),
            (PIC_SLAVE_DATA, ICW4_UPM),
            (PIC_MASTER_DATA, BIOS_MASTER_IMR),
            (PIC_SLAVE_DATA, BIOS_SLAVE_IMR),
        ] {
            self.write(port, val);
        }
    }

    /// A guest byte read from one of the PIC or ELCR ports.
    pub fn read(&mut self, port: u16) -> u8 {
        let val = match port {
            PIC_MASTER_CMD => self.state.master.read_command(true),
            PIC_MASTER_DATA => self.state.master.read_data(true),
            PIC_SLAVE_CMD => self.state.slave.read_command(false),
            PIC_SLAVE_DATA => self.state.slave.read_data(false),
            ELCR_MASTER => self.state.master.elcr,
            ELCR_SLAVE => self.state.slave.elcr,
            _ => {
                log::debug!("pic: read from unhandled port {port:#x}");
                0xFF
            }
        };
        // A poll acknowledges like INTA, which can change the slave's output.
        self.update_cascade();
        val
    }

    /// A guest byte write to one of the PIC or ELCR ports.
    pub fn write(&mut self, port: u16, val: u8) {
        match port {
            PIC_MASTER_CMD => self.state.master.write_command("master", val),
            PIC_MASTER_DATA => self.state.master.write_data("master", val),
            PIC_SLAVE_CMD => self.state.slave.write_command("slave", val),
            PIC_SLAVE_DATA => self.state.slave.write_data("slave", val),
            ELCR_MASTER => self.state.master.write_elcr(val, ELCR_MASTER_MASK),
            ELCR_SLAVE => self.state.slave.write_elcr(val, ELCR_SLAVE_MASK),
            _ => log::debug!("pic: write {val:#04x} to unhandled port {port:#x}"),
        }
        self.update_cascade();
    }

    /// Drive ISA interrupt line `irq` (0-15) to `level`. Edge-triggered lines latch a
    /// request on a rising edge, so a device may pulse (true then false) at once. IRQ 2 is
    /// the cascade input, driven only by the slave: attempts to drive it are logged and
    /// ignored, as are numbers above 15.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            CASCADE_IRQ => {
                log::debug!("pic: IRQ 2 is the cascade input and cannot be driven")
            }
            0..=7 => self.state.master.set_input(irq, level),
            8..=15 => {
                self.state.slave.set_input(irq - 8, level);
                self.update_cascade();
            }
            _ => log::debug!("pic: no IRQ {irq} on an ISA bus"),
        }
    }

    /// The level of the INTR line to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.state.master.best_request(true).is_some()
    }

    /// The CPU's INTA cycle: returns the vector and moves the request from IRR to ISR on
    /// the chips involved. With nothing to deliver (the request went away), the master
    /// answers with its IR7 vector and the slave with its IR7 (IRQ 15) vector, and no ISR
    /// bit is set on the chip that had nothing, exactly like the hardware's default IR7.
    pub fn acknowledge(&mut self) -> u8 {
        let master = &mut self.state.master;
        let Some(irq) = master.best_request(true) else {
            log::trace!("pic: spurious IRQ 7");
            return master.vector_base | 7;
        };
        let vector = if irq == CASCADE_IRQ && master.cascades_on_ir2() {
            let slave = &mut self.state.slave;
            match slave.best_request(false) {
                Some(sirq) => {
                    slave.intack(sirq);
                    slave.vector_base | sirq
                }
                None => {
                    log::trace!("pic: spurious IRQ 15");
                    slave.vector_base | 7
                }
            }
        } else {
            master.vector_base | irq
        };
        self.state.master.intack(irq);
        self.update_cascade();
        vector
    }

    /// Carry the slave's INT output to master IR2. Unlike the other inputs, IR2 is a level
    /// from a chip rather than a device pulse, so the master's request follows it exactly:
    /// it reappears after an INTA while the slave still asserts INT (automatic EOI with a
    /// second request waiting), and it goes away if the slave's request is withdrawn.
    fn update_cascade(&mut self) {
        let out = self.state.slave.best_request(false).is_some();
        let master = &mut self.state.master;
        if out {
            master.lines |= CASCADE_BIT;
            master.irr |= CASCADE_BIT;
        } else {
            master.lines &= !CASCADE_BIT;
            master.irr &= !CASCADE_BIT;
        }
    }

    pub fn state(&self) -> &PicState {
        &self.state
    }

    pub fn from_state(state: PicState) -> Result<Self, PicStateError> {
        state.master.validate("master", ELCR_MASTER_MASK)?;
        state.slave.validate("slave", ELCR_SLAVE_MASK)?;
        Ok(Pic { state })
    }

    pub fn set_state(&mut self, state: PicState) -> Result<(), PicStateError> {
        *self = Self::from_state(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bios_pic() -> Pic {
        let mut p = Pic::new();
        p.bios_init();
        // Unmask everything so tests choose what to mask.
        p.write(PIC_MASTER_DATA, 0);
        p.write(PIC_SLAVE_DATA, 0);
        p
    }

    fn pulse(p: &mut Pic, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    fn eoi_master(p: &mut Pic) {
        p.write(PIC_MASTER_CMD, OCW2_EOI);
    }

    fn read_isr(p: &mut Pic, cmd: u16) -> u8 {
        p.write(cmd, OCW3_SELECT | OCW3_RR | OCW3_RIS);
        let v = p.read(cmd);
        p.write(cmd, OCW3_SELECT | OCW3_RR);
        v
    }

    #[test]
    fn init_sequence_sets_vectors_and_masks() {
        let mut p = Pic::new();
        p.write(PIC_MASTER_CMD, ICW1_INIT | ICW1_IC4);
        assert_eq!(p.state().master.init_step, 2);
        p.write(PIC_MASTER_DATA, 0x20 | 5); // low bits of ICW2 are ignored
        assert_eq!(p.state().master.init_step, 3);
        p.write(PIC_MASTER_DATA, 0x04);
        assert_eq!(p.state().master.init_step, 4);
        p.write(PIC_MASTER_DATA, ICW4_UPM);
        assert_eq!(p.state().master.init_step, 0);
        assert_eq!(p.state().master.vector_base, 0x20);
        assert_eq!(p.read(PIC_MASTER_DATA), 0, "ICW1 clears the IMR");
        p.write(PIC_MASTER_DATA, 0xFE);
        assert_eq!(p.read(PIC_MASTER_DATA), 0xFE);

        // Single mode without ICW4: ICW2 is the only data word.
        p.write(PIC_SLAVE_CMD, ICW1_INIT | ICW1_SNGL);
        p.write(PIC_SLAVE_DATA, 0x48);
        assert_eq!(p.state().slave.init_step, 0);
        p.write(PIC_SLAVE_DATA, 0x5A);
        assert_eq!(p.read(PIC_SLAVE_DATA), 0x5A);

        p.bios_init();
        assert_eq!(p.state().master.vector_base, 0x08);
        assert_eq!(p.state().slave.vector_base, 0x70);
        assert_eq!(p.read(PIC_MASTER_DATA), BIOS_MASTER_IMR);
        assert_eq!(p.read(PIC_SLAVE_DATA), BIOS_SLAVE_IMR);
        assert_eq!(p.state().master.icw4, ICW4_UPM);
    }

    #[test]
    fn icw1_resets_edge_sense_and_requests() {
        let mut p = bios_pic();
        p.set_irq(3, true);
        assert!(p.interrupt_pending());
        p.bios_init();
        p.write(PIC_MASTER_DATA, 0);
        assert!(!p.interrupt_pending(), "ICW1 drops latched edge requests");
        p.set_irq(3, true);
        assert!(
            !p.interrupt_pending(),
            "a line already high needs a new edge"
        );
        pulse(&mut p, 3);
        p.set_irq(3, true);
        assert_eq!(p.acknowledge(), 0x0B);
    }

    #[test]
    fn priority_and_eoi() {
        let mut p = bios_pic();
        assert!(!p.interrupt_pending());
        pulse(&mut p, 5);
        pulse(&mut p, 1);
        pulse(&mut p, 6);
        assert!(p.interrupt_pending());
        assert_eq!(
            p.read(PIC_MASTER_CMD),
            0b0110_0010,
            "IRR readable by default"
        );
        assert_eq!(p.acknowledge(), 0x09, "IRQ1 outranks 5 and 6");
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0b0000_0010);
        assert!(
            !p.interrupt_pending(),
            "lower levels wait behind IRQ1 in service"
        );
        // A higher level still nests.
        pulse(&mut p, 0);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x08);
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0b0000_0011);
        eoi_master(&mut p); // clears IRQ0, the highest in service
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0b0000_0010);
        assert!(!p.interrupt_pending());
        // Specific EOI for level 1.
        p.write(PIC_MASTER_CMD, OCW2_SL | OCW2_EOI | 1);
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0);
        assert_eq!(p.acknowledge(), 0x0D);
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), 0x0E);
        eoi_master(&mut p);
        assert!(!p.interrupt_pending());
        assert_eq!(p.read(PIC_MASTER_CMD), 0);
    }

    #[test]
    fn masks_hold_requests_back() {
        let mut p = bios_pic();
        p.write(PIC_MASTER_DATA, 0x10);
        pulse(&mut p, 4);
        assert!(!p.interrupt_pending());
        assert_eq!(p.read(PIC_MASTER_CMD), 0x10, "masked request still in IRR");
        p.write(PIC_MASTER_DATA, 0);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x0C);

        // Masking the cascade input silences the whole slave.
        eoi_master(&mut p);
        p.write(PIC_MASTER_DATA, CASCADE_BIT);
        pulse(&mut p, 9);
        assert!(!p.interrupt_pending());
        p.write(PIC_MASTER_DATA, 0);
        assert_eq!(p.acknowledge(), 0x71);
    }

    #[test]
    fn spurious_irq7_and_irq15() {
        let mut p = bios_pic();
        assert_eq!(p.acknowledge(), 0x0F, "nothing pending: master IR7 vector");
        assert_eq!(
            read_isr(&mut p, PIC_MASTER_CMD),
            0,
            "no ISR bit for a spurious IRQ7"
        );

        // A master IR2 request with nothing behind it on the slave (as restored from a
        // snapshot taken between INTR and INTA) gets the slave's IR7 vector.
        let mut s = p.state().clone();
        s.master.irr |= CASCADE_BIT;
        let mut q = Pic::from_state(s).unwrap();
        assert!(q.interrupt_pending());
        assert_eq!(q.acknowledge(), 0x77, "slave answers with its IR7 vector");
        assert_eq!(read_isr(&mut q, PIC_SLAVE_CMD), 0);
        assert_eq!(
            read_isr(&mut q, PIC_MASTER_CMD),
            CASCADE_BIT,
            "the master did acknowledge IR2, so the OS must EOI it"
        );

        // A slave request withdrawn before the INTA takes IR2 down with it.
        pulse(&mut p, 12);
        assert!(p.interrupt_pending());
        p.write(PIC_SLAVE_DATA, 0x10);
        assert!(!p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x0F);
    }

    #[test]
    fn cascade_through_slave() {
        let mut p = bios_pic();
        pulse(&mut p, 14);
        pulse(&mut p, 8);
        pulse(&mut p, 3);
        // IR2 (the slave) outranks IR3 on the master.
        assert_eq!(p.acknowledge(), 0x70);
        assert_eq!(read_isr(&mut p, PIC_SLAVE_CMD), 0x01);
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), CASCADE_BIT);
        assert!(
            !p.interrupt_pending(),
            "IRQ3 and IRQ14 wait behind IR2 in service"
        );
        // The usual slave handler epilogue: EOI to the slave, then to the master.
        p.write(PIC_SLAVE_CMD, OCW2_EOI);
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), 0x76, "IRQ14 via the slave before IRQ3");
        p.write(PIC_SLAVE_CMD, OCW2_EOI);
        eoi_master(&mut p);
        assert_eq!(p.acknowledge(), 0x0B);
        eoi_master(&mut p);
        assert!(!p.interrupt_pending());
    }

    #[test]
    fn slave_in_auto_eoi_keeps_second_request() {
        let mut p = Pic::new();
        p.bios_init();
        p.write(PIC_SLAVE_CMD, ICW1_INIT | ICW1_IC4);
        p.write(PIC_SLAVE_DATA, 0x70);
        p.write(PIC_SLAVE_DATA, 2);
        p.write(PIC_SLAVE_DATA, ICW4_UPM | ICW4_AEOI);
        p.write(PIC_MASTER_DATA, 0);
        pulse(&mut p, 9);
        pulse(&mut p, 10);
        assert_eq!(p.acknowledge(), 0x71);
        eoi_master(&mut p);
        assert!(p.interrupt_pending(), "IRQ10 still asserted by the slave");
        assert_eq!(p.acknowledge(), 0x72);
    }

    #[test]
    fn special_fully_nested_lets_higher_slave_irq_in() {
        let mut p = Pic::new();
        p.bios_init();
        p.write(PIC_MASTER_CMD, ICW1_INIT | ICW1_IC4);
        p.write(PIC_MASTER_DATA, 0x08);
        p.write(PIC_MASTER_DATA, CASCADE_BIT);
        p.write(PIC_MASTER_DATA, ICW4_UPM | ICW4_SFNM);
        p.write(PIC_MASTER_DATA, 0);
        p.write(PIC_SLAVE_DATA, 0);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), 0x74);
        pulse(&mut p, 9);
        assert!(
            p.interrupt_pending(),
            "IRQ9 outranks IRQ12 inside the slave"
        );
        assert_eq!(p.acknowledge(), 0x71);
        // But a lower master level still waits behind the cascade in service.
        pulse(&mut p, 5);
        assert!(!p.interrupt_pending());

        // Without SFNM the second slave request would have waited.
        let mut q = bios_pic();
        pulse(&mut q, 12);
        assert_eq!(q.acknowledge(), 0x74);
        pulse(&mut q, 9);
        assert!(!q.interrupt_pending());
    }

    #[test]
    fn rotation_on_eoi_and_set_priority() {
        let mut p = bios_pic();
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x09);
        // Rotate on non-specific EOI: IRQ1 becomes the lowest priority.
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_EOI);
        assert_eq!(p.state().master.lowest_priority, 1);
        pulse(&mut p, 1);
        pulse(&mut p, 4);
        pulse(&mut p, 0);
        // Order now: 2,3,4,5,6,7,0,1.
        assert_eq!(p.acknowledge(), 0x0C);
        p.write(PIC_MASTER_CMD, OCW2_EOI);
        assert_eq!(p.acknowledge(), 0x08);
        p.write(PIC_MASTER_CMD, OCW2_EOI);
        assert_eq!(p.acknowledge(), 0x09);
        p.write(PIC_MASTER_CMD, OCW2_EOI);

        // Set priority: IRQ5 lowest, so 6 is highest.
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_SL | 5);
        pulse(&mut p, 5);
        pulse(&mut p, 6);
        pulse(&mut p, 0);
        assert_eq!(p.acknowledge(), 0x0E);
        // Rotate on specific EOI clears the named level and makes it the lowest.
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_SL | OCW2_EOI | 6);
        assert_eq!(p.state().master.lowest_priority, 6);
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_SL | OCW2_EOI);
        assert_eq!(p.state().master.lowest_priority, 0);
        assert_eq!(p.acknowledge(), 0x0D);
        p.write(PIC_MASTER_CMD, OCW2_EOI);
        assert_eq!(p.acknowledge(), 0x08);
    }

    #[test]
    fn auto_eoi_with_rotation() {
        let mut p = Pic::new();
        p.write(PIC_MASTER_CMD, ICW1_INIT | ICW1_IC4 | ICW1_SNGL);
        p.write(PIC_MASTER_DATA, 0x40);
        p.write(PIC_MASTER_DATA, ICW4_UPM | ICW4_AEOI);
        p.write(PIC_MASTER_CMD, OCW2_R); // rotate in AEOI mode
        pulse(&mut p, 4);
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), 0x44);
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0, "AEOI sets no ISR bit");
        assert_eq!(p.state().master.lowest_priority, 4);
        pulse(&mut p, 4);
        assert_eq!(p.acknowledge(), 0x45, "IRQ4 rotated to the bottom");
        p.write(PIC_MASTER_CMD, 0); // clear rotate in AEOI
        assert!(!p.state().master.rotate_in_aeoi);
        assert_eq!(p.acknowledge(), 0x44);
        assert_eq!(p.state().master.lowest_priority, 5);

        // In single mode IR2 is an ordinary input: no slave cycle, the master's vector.
        pulse(&mut p, 9);
        assert_eq!(p.acknowledge(), 0x42);
    }

    #[test]
    fn poll_mode_acknowledges() {
        let mut p = bios_pic();
        pulse(&mut p, 6);
        pulse(&mut p, 4);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_P);
        assert_eq!(p.read(PIC_MASTER_CMD), 0x84);
        assert_eq!(read_isr(&mut p, PIC_MASTER_CMD), 0x10);
        assert_eq!(
            p.read(PIC_MASTER_CMD),
            0x40,
            "poll is one-shot; IRR read again"
        );
        eoi_master(&mut p);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_P);
        assert_eq!(p.read(PIC_MASTER_DATA), 0x86, "poll applies to either port");
        eoi_master(&mut p);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_P);
        assert_eq!(p.read(PIC_MASTER_CMD), 0x00, "nothing to poll");
    }

    #[test]
    fn special_mask_mode_enables_lower_levels() {
        let mut p = bios_pic();
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x0B);
        pulse(&mut p, 6);
        assert!(!p.interrupt_pending());
        // The IRQ3 handler masks itself and enters special mask mode.
        p.write(PIC_MASTER_DATA, 0x08);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_ESMM | OCW3_SMM);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x0E);
        p.write(PIC_MASTER_CMD, OCW2_SL | OCW2_EOI | 6);
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_ESMM);
        assert!(!p.state().master.special_mask);
        pulse(&mut p, 7);
        assert!(!p.interrupt_pending(), "normal nesting is back");
    }

    #[test]
    fn level_triggered_via_elcr() {
        let mut p = bios_pic();
        p.write(ELCR_SLAVE, 0xFF);
        assert_eq!(p.read(ELCR_SLAVE), ELCR_SLAVE_MASK);
        p.write(ELCR_MASTER, 0xFF);
        assert_eq!(p.read(ELCR_MASTER), ELCR_MASTER_MASK);
        p.set_irq(11, true);
        assert_eq!(p.acknowledge(), 0x73);
        p.write(PIC_SLAVE_CMD, OCW2_EOI);
        eoi_master(&mut p);
        assert!(
            p.interrupt_pending(),
            "a level request persists until the line drops"
        );
        p.set_irq(11, false);
        assert!(!p.interrupt_pending());
        // A level request that vanishes before INTA leaves nothing but the spurious vector.
        p.set_irq(5, true);
        p.set_irq(5, false);
        assert!(!p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x0F);
    }

    #[test]
    fn guest_nonsense_is_ignored() {
        let mut p = bios_pic();
        p.set_irq(2, true);
        p.set_irq(16, true);
        assert!(!p.interrupt_pending());
        assert_eq!(p.read(0x22), 0xFF);
        p.write(0x22, 0x11);
        p.write(PIC_MASTER_CMD, OCW2_SL); // OCW2 no-op
        assert_eq!(p.state().master.init_step, 0);
    }

    #[test]
    fn state_round_trip() {
        let mut p = bios_pic();
        p.write(ELCR_SLAVE, 0x08);
        p.write(PIC_MASTER_CMD, OCW2_R | OCW2_SL | 4);
        p.write(PIC_SLAVE_DATA, 0x40);
        pulse(&mut p, 6);
        pulse(&mut p, 10);
        p.acknowledge();
        p.write(PIC_MASTER_CMD, OCW3_SELECT | OCW3_RR | OCW3_RIS);
        p.write(PIC_SLAVE_CMD, ICW1_INIT | ICW1_IC4); // mid-initialization
        let s = p.state().clone();
        let mut q = Pic::from_state(s.clone()).unwrap();
        assert_eq!(q.state(), &s);
        assert_eq!(q.read(PIC_MASTER_CMD), p.read(PIC_MASTER_CMD));
        let mut r = Pic::new();
        r.set_state(s.clone()).unwrap();
        assert_eq!(r.state(), &s);
    }

    #[test]
    fn from_state_rejects_bad_values() {
        let good = bios_pic().state().clone();
        let mut s = good.clone();
        s.master.init_step = 5;
        assert!(matches!(
            Pic::from_state(s),
            Err(PicStateError::InitStep { step: 5, .. })
        ));
        let mut s = good.clone();
        s.slave.lowest_priority = 8;
        assert!(matches!(
            Pic::from_state(s),
            Err(PicStateError::Priority { level: 8, .. })
        ));
        let mut s = good.clone();
        s.slave.vector_base = 0x71;
        assert!(matches!(
            Pic::from_state(s),
            Err(PicStateError::VectorBase { .. })
        ));
        let mut s = good.clone();
        s.master.elcr = 0x01;
        assert!(matches!(
            Pic::from_state(s),
            Err(PicStateError::Elcr { chip: "master", .. })
        ));
        let mut s = good.clone();
        s.master.icw4 = 0x20;
        assert!(matches!(
            Pic::from_state(s),
            Err(PicStateError::ReservedBits {
                register: "ICW4",
                ..
            })
        ));
        let mut p = Pic::new();
        let mut s = good;
        s.master.icw1 = 0x10;
        assert!(p.set_state(s).is_err());
        assert_eq!(
            p.state(),
            Pic::new().state(),
            "a rejected state leaves the device alone"
        );
    }
}
