//! The PC board: CPU, memory and devices wired as on a PC, and the loop step that runs it.
//!
//! ```text
//!   ports   0x20-0x21 0xA0-0xA1 0x4D0-0x4D1  8259 PIC pair      IRQ0 <- PIT channel 0
//!           0x40-0x43, 0x61                  8254 PIT, port B   IRQ4 <- UART
//!           0x3F8-0x3FF                      16550 UART (COM1)
//!           0x92                             fast A20 and reset
//!           0xF4 (4 bytes)                   debug exit
//!           0xE9 (configurable)              debug console
//! ```
//! Everything else reads all-ones and ignores writes, as an empty ISA bus does.

use std::sync::Arc;

use cpu::{Bus, Cpu, Exit};
use memory::{GuestMemory, GuestPhysAddr};

use crate::boot::{self, BootError, GuestLoader};
use crate::clock::{ClockMode, VirtualClock};
use crate::debugport::{DebugCon, DebugExit};
use crate::pic::Pic;
use crate::pit::Pit;
use crate::uart::Uart;

pub const COM1_BASE: u16 = 0x3F8;
pub const COM1_IRQ: u8 = 4;
const PORT_A: u16 = 0x92;
/// Where the board puts the flat GDT a Multiboot kernel starts with (below the loader's
/// info area at 0x9000).
const BOOT_GDT: u32 = 0x8000;

/// What to boot.
#[derive(Clone, Debug)]
pub enum BootSource {
    /// A Multiboot v1 kernel with its command line.
    Multiboot { image: Arc<[u8]>, cmdline: String },
    /// A firmware image started at the reset vector.
    Bios { image: Arc<[u8]> },
}

#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub ram_size: u64,
    pub boot: BootSource,
    pub debugcon_port: Option<u16>,
    pub clock: ClockMode,
    /// A triple fault or reset request ends the machine instead of resetting it.
    pub no_reboot: bool,
}

/// Host-side errors building or resetting a machine.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error(transparent)]
    Memory(#[from] memory::MemoryError),
    #[error(transparent)]
    Boot(#[from] BootError),
}

/// What a call to [`PcMachine::run`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// The slice's budget ran out: call again.
    Ran,
    /// The CPU is halted; nothing happens before `deadline_ns` (virtual) unless input
    /// arrives. `None`: no timer is armed.
    Halted { deadline_ns: Option<u64> },
    /// The guest asked to end with this exit status (debug-exit port).
    Exit(i32),
    /// The machine was reset (reset request or triple fault).
    Reset,
    /// Triple fault or reset request with `no_reboot`.
    Shutdown,
}

/// The devices: everything the CPU reaches through [`Bus`].
pub struct Board {
    pub pic: Pic,
    pub pit: Pit,
    pub uart: Uart,
    pub debug_exit: DebugExit,
    pub debugcon: Option<DebugCon>,
    debugcon_port: u16,
    pub clock: VirtualClock,
    mem: Arc<GuestMemory>,
    exit_request: Option<i32>,
    reset_request: bool,
    port_a: u8,
}

impl Board {
    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Brings interrupt lines up to date with time and device state.
    pub fn update_irqs(&mut self) {
        let now = self.now();
        if self.pit.irq0_edges(now) > 0 {
            self.pic.set_irq(0, true);
            self.pic.set_irq(0, false);
        }
        let l = self.uart.irq_level();
        self.pic.set_irq(COM1_IRQ, l);
    }

    fn io_read8(&mut self, port: u16) -> u8 {
        let now = self.now();
        match port {
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => self.pic.read(port),
            // A guest that polls the PIT with interrupts off must find the edges it
            // watched go by latched in the PIC when it executes STI, even mid-slice.
            0x40..=0x43 => {
                let v = self.pit.read(port, now);
                self.update_irqs();
                v
            }
            0x61 => {
                let v = self.pit.read_port61(now);
                self.update_irqs();
                v
            }
            PORT_A => self.port_a,
            p if (COM1_BASE..COM1_BASE + 8).contains(&p) => {
                let v = self.uart.read((p - COM1_BASE) as u8);
                self.update_uart_irq();
                v
            }
            p if self.debug_exit.claims(p) => self.debug_exit.read(1) as u8,
            p if p == self.debugcon_port && self.debugcon.is_some() => {
                self.debugcon.as_ref().map_or(0xFF, |d| d.read())
            }
            _ => {
                log::trace!("read from unclaimed port {port:#x}");
                0xFF
            }
        }
    }

    fn io_write8(&mut self, port: u16, v: u8) {
        let now = self.now();
        match port {
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => self.pic.write(port, v),
            0x40..=0x43 => self.pit.write(port, v, now),
            0x61 => self.pit.write_port61(v, now),
            PORT_A => {
                self.mem.set_a20(v & 2 != 0);
                if v & 1 != 0 && self.port_a & 1 == 0 {
                    self.reset_request = true;
                }
                self.port_a = v & 3;
            }
            p if (COM1_BASE..COM1_BASE + 8).contains(&p) => {
                self.uart.write((p - COM1_BASE) as u8, v);
                self.update_uart_irq();
            }
            p if p == self.debugcon_port && self.debugcon.is_some() => {
                if let Some(d) = self.debugcon.as_mut() {
                    d.write(v);
                }
            }
            _ => log::trace!("write {v:#x} to unclaimed port {port:#x}"),
        }
    }

    fn update_uart_irq(&mut self) {
        let l = self.uart.irq_level();
        self.pic.set_irq(COM1_IRQ, l);
    }
}

impl Bus for Board {
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        if self.debug_exit.claims(port) {
            return self.debug_exit.read(size);
        }
        let mut v = 0;
        for i in 0..u16::from(size) {
            v |= u32::from(self.io_read8(port.wrapping_add(i))) << (8 * i);
        }
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if self.debug_exit.claims(port) {
            // One access of any width is one exit request, as with QEMU's isa-debug-exit.
            if let Some(code) = self.debug_exit.write(value) {
                self.exit_request = Some(code);
            }
            return;
        }
        for i in 0..u16::from(size) {
            self.io_write8(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn mmio_read(&mut self, id: u32, offset: u64, size: u8) -> u32 {
        log::trace!("mmio read of unknown device {id} at {offset:#x}");
        cpu::width::size_mask(size)
    }

    fn mmio_write(&mut self, id: u32, offset: u64, _size: u8, value: u32) {
        log::trace!("mmio write {value:#x} to unknown device {id} at {offset:#x}");
    }

    fn interrupt_pending(&mut self) -> bool {
        self.pic.interrupt_pending()
    }

    fn acknowledge_interrupt(&mut self) -> u8 {
        self.pic.acknowledge()
    }

    fn stop_requested(&mut self) -> bool {
        self.exit_request.is_some() || self.reset_request
    }
}

/// A whole PC.
pub struct PcMachine {
    pub cpu: Cpu,
    pub board: Board,
    mem: Arc<GuestMemory>,
    config: MachineConfig,
}

struct Loader<'a>(&'a GuestMemory);

impl GuestLoader for Loader<'_> {
    fn ram_size(&self) -> u64 {
        self.0.ram_size()
    }
    fn write_phys(&mut self, addr: u32, data: &[u8]) -> Result<(), BootError> {
        self.0.write_phys(GuestPhysAddr(u64::from(addr)), data);
        Ok(())
    }
}

impl PcMachine {
    pub fn new(config: MachineConfig) -> Result<Self, MachineError> {
        let mut mem = GuestMemory::new(config.ram_size)?;
        if let BootSource::Bios { image } = &config.boot {
            let l = boot::validate_bios(image)?;
            mem.add_rom("bios", u64::from(l.high_base), image.clone(), 0)?;
            mem.add_rom(
                "isa-bios",
                u64::from(l.isa_base),
                image.clone(),
                l.isa_offset as u64,
            )?;
        }
        let mem = Arc::new(mem);
        let board = Board {
            pic: Pic::new(),
            pit: Pit::new(),
            uart: Uart::new(),
            debug_exit: DebugExit::new(),
            debugcon: config.debugcon_port.map(|_| DebugCon::new()),
            debugcon_port: config.debugcon_port.unwrap_or(0xE9),
            clock: VirtualClock::new(config.clock),
            mem: mem.clone(),
            exit_request: None,
            reset_request: false,
            port_a: 2,
        };
        let mut m = Self {
            cpu: Cpu::new(mem.clone()),
            board,
            mem,
            config,
        };
        m.boot()?;
        Ok(m)
    }

    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// Puts CPU and devices in their power-on state and loads the boot image again.
    fn boot(&mut self) -> Result<(), MachineError> {
        self.cpu.reset();
        self.mem.set_a20(true);
        let now = self.board.now();
        self.board.pic = Pic::new();
        self.board.pit = Pit::new();
        self.board.pit.reset(now);
        self.board.uart = Uart::new();
        self.board.port_a = 2;
        match self.config.boot.clone() {
            BootSource::Bios { .. } => {}
            BootSource::Multiboot { image, cmdline } => {
                // A PC BIOS has run before a Multiboot loader: the PIC and PIT are as it
                // leaves them (QEMU boots -kernel through SeaBIOS).
                self.board.pic.bios_init();
                for (port, v) in [(0x43, 0x34), (0x40, 0), (0x40, 0)] {
                    self.board.pit.write(port, v, now);
                }
                let entry = boot::load_multiboot(&image, &cmdline, &mut Loader(&self.mem))?;
                self.enter_multiboot(entry.eip, entry.eax, entry.ebx);
            }
        }
        self.cpu.flush_code();
        Ok(())
    }

    /// The machine state the Multiboot spec promises at the kernel's entry point.
    fn enter_multiboot(&mut self, eip: u32, eax: u32, ebx: u32) {
        let gdt: [u32; 6] = [0, 0, 0x0000_FFFF, 0x00CF_9B00, 0x0000_FFFF, 0x00CF_9300];
        let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.mem
            .write_phys(GuestPhysAddr(u64::from(BOOT_GDT)), &bytes);
        let mut s = CpuState::reset();
        use cpu::state::*;
        let flat = |sel: u16, code: bool| Segment {
            selector: sel,
            base: 0,
            limit: 0xFFFF_FFFF,
            attr: ATTR_P
                | ATTR_S
                | ATTR_RW
                | ATTR_ACCESSED
                | ATTR_DB
                | ATTR_G
                | if code { ATTR_CODE } else { 0 },
            usable: true,
        };
        for (i, seg) in s.seg.iter_mut().enumerate() {
            *seg = if i == CS {
                flat(0x08, true)
            } else {
                flat(0x10, false)
            };
        }
        s.gdtr = TableReg {
            base: BOOT_GDT,
            limit: 23,
        };
        s.idtr = TableReg {
            base: 0,
            limit: 0x3FF,
        };
        s.cr0 = CR0_PE | CR0_ET;
        s.eip = eip;
        s.gpr[EAX] = eax;
        s.gpr[EBX] = ebx;
        s.gpr[EDX] = 0;
        s.eflags = FIXED1;
        self.cpu.set_state(s);
    }

    /// System reset: CPU, devices and boot image as at power-on; RAM keeps its contents
    /// except what the boot loader writes.
    pub fn reset(&mut self) -> Result<(), MachineError> {
        self.board.exit_request = None;
        self.board.reset_request = false;
        self.boot()
    }

    /// Runs guest code for up to `budget` instructions.
    pub fn run(&mut self, budget: u64) -> RunEvent {
        self.board.update_irqs();
        let before = self.cpu.icount();
        let exit = self.cpu.run(&mut self.board, budget);
        self.board.clock.advance_insns(self.cpu.icount() - before);
        if let Some(code) = self.board.exit_request.take() {
            return RunEvent::Exit(code);
        }
        let reset = self.board.reset_request || exit == Exit::Shutdown;
        if reset {
            self.board.reset_request = false;
            if self.config.no_reboot {
                return RunEvent::Shutdown;
            }
            if let Err(e) = self.reset() {
                log::error!("reset failed: {e}");
                return RunEvent::Shutdown;
            }
            return RunEvent::Reset;
        }
        match exit {
            Exit::Halted => {
                // An interrupt may already be due (a timer that fired during the slice).
                self.board.update_irqs();
                if self.board.pic.interrupt_pending() && self.cpu.s.eflags & cpu::state::IF != 0 {
                    return RunEvent::Ran;
                }
                let now = self.board.now();
                RunEvent::Halted {
                    deadline_ns: self.board.pit.next_irq0_deadline(now),
                }
            }
            _ => RunEvent::Ran,
        }
    }

    /// Bytes the guest sent to COM1 since the last call.
    pub fn take_serial_output(&mut self) -> Vec<u8> {
        self.board.uart.take_output()
    }

    /// Bytes the guest wrote to the debug console since the last call.
    pub fn take_debugcon_output(&mut self) -> Vec<u8> {
        self.board
            .debugcon
            .as_mut()
            .map(|d| d.take_output())
            .unwrap_or_default()
    }

    /// Feeds host input to COM1; returns how many bytes the FIFO took.
    pub fn serial_input(&mut self, bytes: &[u8]) -> usize {
        let n = self.board.uart.receive(bytes);
        self.board.update_irqs();
        n
    }

    /// Whether the CPU is halted waiting for an interrupt.
    pub fn halted(&self) -> bool {
        self.cpu.s.halted
    }

    pub fn pause_clock(&mut self) {
        self.board.clock.pause();
    }

    pub fn resume_clock(&mut self) {
        self.board.clock.resume();
    }
}
