//! The PC board: CPU, memory and devices wired as on a PC, and the loop step that runs it.
//!
//! ```text
//!   ports   0x20-0x21 0xA0-0xA1 0x4D0-0x4D1  8259 PIC pair      IRQ0  <- PIT channel 0
//!           0x40-0x43, 0x61                  8254 PIT, port B   IRQ1  <- keyboard data
//!           0x60, 0x64                       8042 keyboard ctl  IRQ4  <- UART
//!           0x70-0x71                        MC146818 RTC/CMOS  IRQ8  <- RTC
//!           0x3F8-0x3FF                      16550 UART (COM1)  IRQ12 <- aux data
//!           0x92                             fast A20 and reset
//!           0xF4 (4 bytes)                   debug exit
//!           0xE9 (configurable)              debug console
//! ```
//! Everything else reads all-ones and ignores writes, as an empty ISA bus does.
//!
//! A20 is on while either the 8042's output port or port 0x92 asks for it (the two are
//! ORed, as in the PIIX chipsets). When it changes, the CPU stops after the port write and
//! drops its TLB and jump cache, whose entries were made with the old mask.
//!
//! Time: devices read the virtual clock ([`crate::clock`]); the next moment at which any of
//! them raises an interrupt is [`Board::next_deadline`]. With a deterministic clock, time
//! only moves with instructions, so [`PcMachine::run`] cuts the CPU's work into slices that
//! end at every device deadline, after every write that may move one (PIT channel 0, RTC
//! registers) and at every multiple of [`DETERMINISTIC_QUANTUM`] in the instruction
//! count (saved with the CPU, so a restored run cuts where the original did), and brings time
//! forward between them. Where an interrupt lands then depends on the instruction count
//! alone, never on the budget the caller passes or on how fast the host runs. A device read
//! in the middle of a slice sees the time at the slice's start; the quantum bounds how old
//! that is (reads do not end slices: guests poll timers in tight loops, and a slice per
//! read would make them several times slower). A halt skips ahead to the next deadline and
//! counts the skipped time against the budget as instructions.

use std::sync::Arc;

use cpu::{Bus, Cpu, Exit};
use memory::{GuestMemory, GuestPhysAddr};

use crate::boot::{self, BootError, GuestLoader};
use crate::clock::{ClockMode, ClockState, VirtualClock};
use crate::debugport::{DebugCon, DebugConState, DebugExit, DEBUGCON_READBACK};
use crate::i8042::{self, I8042};
use crate::pic::Pic;
use crate::pit::{self, Pit};
use crate::rtc::{self, Rtc, RtcBase};
use crate::uart::Uart;
use crate::vmstate::board::BoardState;

pub const COM1_BASE: u16 = 0x3F8;
pub const COM1_IRQ: u8 = 4;
const PORT_A: u16 = 0x92;
/// Port 0x92 bit 1: A20 gate.
pub const PORT_A_A20: u8 = 0x02;
/// Port 0x92 bit 0: system reset on a 0 -> 1 transition.
pub const PORT_A_RESET: u8 = 0x01;
/// Longest run of instructions a deterministic slice executes without bringing device time
/// forward. A device access in the middle of a slice sees the time at the slice's start, so
/// this bounds how stale that time can be.
pub const DETERMINISTIC_QUANTUM: u64 = 4096;
/// The x87 error line and the port whose writes clear it.
const FERR_IRQ: u8 = 13;
const FERR_CLEAR_PORT: u16 = 0xF0;
/// Where the board puts the flat GDT a Multiboot kernel starts with (below the loader's
/// info area at 0x9000).
const BOOT_GDT: u32 = 0x8000;

/// 32-bit protected mode with flat 4 GiB segments, paging and interrupts off, the GDT at
/// `gdt_base`: how both -kernel boot protocols hand over to a kernel.
fn flat_protected_state(
    eip: u32,
    code: u16,
    data: u16,
    gdt_base: u32,
    gdt_limit: u16,
) -> cpu::CpuState {
    use cpu::state::*;
    let mut s = cpu::CpuState::reset();
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
            flat(code, true)
        } else {
            flat(data, false)
        };
    }
    s.gdtr = TableReg {
        base: gdt_base,
        limit: gdt_limit,
    };
    s.idtr = TableReg {
        base: 0,
        limit: 0x3FF,
    };
    s.cr0 = CR0_PE | CR0_ET;
    s.eip = eip;
    s.gpr[EDX] = 0;
    s.eflags = FIXED1;
    s
}

/// What to boot.
#[derive(Clone, Debug)]
pub enum BootSource {
    /// A Multiboot v1 kernel with its command line.
    Multiboot { image: Arc<[u8]>, cmdline: String },
    /// A firmware image started at the reset vector.
    Bios { image: Arc<[u8]> },
    /// A Linux bzImage entered through the 32-bit boot protocol, with an optional initrd.
    Linux {
        kernel: Arc<[u8]>,
        initrd: Option<Arc<[u8]>>,
        cmdline: String,
    },
}

#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub ram_size: u64,
    pub boot: BootSource,
    pub debugcon_port: Option<u16>,
    pub clock: ClockMode,
    /// What the RTC shows when the machine is created.
    pub rtc_base: RtcBase,
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
    #[error(transparent)]
    Linux(#[from] boot::LinuxError),
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
    pub rtc: Rtc,
    pub kbc: I8042,
    pub uart: Uart,
    pub debug_exit: DebugExit,
    pub debugcon: Option<DebugCon>,
    debugcon_port: u16,
    pub clock: VirtualClock,
    mem: Arc<GuestMemory>,
    exit_request: Option<i32>,
    reset_request: bool,
    port_a: u8,
    /// A20 changed: the CPU's address translations are stale.
    a20_changed: bool,
    /// A timer was written (its deadlines may have moved): with a deterministic clock the
    /// slice ends here, so that the next one is cut at the new deadline.
    timer_programmed: bool,
    /// Whether `timer_programmed` ends a slice (deterministic clock only).
    stop_on_timer: bool,
    /// The CPU's instruction count when the running slice began, where the clock stands.
    clock_icount: u64,
    /// The instruction count of the latest port access or time read within the slice.
    icount_now: u64,
}

impl Board {
    /// Device time: with a deterministic clock, exact at the instruction doing the port
    /// access (see `Bus::sync_icount`); with a realtime clock, the host-paced clock.
    fn now(&self) -> u64 {
        match self.clock.mode() {
            ClockMode::Deterministic { ns_per_insn } => self.clock.now_ns().saturating_add(
                self.icount_now
                    .saturating_sub(self.clock_icount)
                    .saturating_mul(ns_per_insn),
            ),
            ClockMode::Realtime => self.clock.now_ns(),
        }
    }

    /// Brings interrupt lines up to date with time and device state.
    pub fn update_irqs(&mut self) {
        let now = self.now();
        if self.pit.irq0_edges(now) > 0 {
            self.pic.set_irq(0, true);
            self.pic.set_irq(0, false);
        }
        self.rtc.sync(now);
        self.update_rtc_irq();
        self.update_kbc_irqs();
        let l = self.uart.irq_level();
        self.pic.set_irq(COM1_IRQ, l);
    }

    /// The next virtual time at which a device raises an interrupt, if any is armed.
    pub fn next_deadline(&mut self) -> Option<u64> {
        let now = self.now();
        let pit = self.pit.next_irq0_deadline(now);
        let rtc = self.rtc.next_irq_deadline(now);
        pit.into_iter().chain(rtc).min()
    }

    fn update_rtc_irq(&mut self) {
        let l = self.rtc.irq_level();
        self.pic.set_irq(rtc::RTC_IRQ, l);
    }

    fn update_kbc_irqs(&mut self) {
        let (k, a) = (self.kbc.kbd_irq(), self.kbc.aux_irq());
        self.pic.set_irq(i8042::KBD_IRQ, k);
        self.pic.set_irq(i8042::AUX_IRQ, a);
    }

    /// Drives the A20 gate from its two sources.
    fn update_a20(&mut self) {
        let on = self.kbc.a20() || self.port_a & PORT_A_A20 != 0;
        if on != self.mem.a20() {
            self.mem.set_a20(on);
            self.a20_changed = true;
        }
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
            i8042::I8042_DATA_PORT | i8042::I8042_CMD_PORT => {
                let v = self.kbc.read(port);
                self.update_kbc_irqs();
                v
            }
            rtc::RTC_INDEX_PORT | rtc::RTC_DATA_PORT => {
                let v = self.rtc.read(port, now);
                self.update_rtc_irq();
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
            0x40..=0x43 => {
                self.pit.write(port, v, now);
                // Only channel 0 raises interrupts; latch and read-back commands move
                // no deadline.
                self.timer_programmed |= match port {
                    pit::PIT_CHANNEL0 => true,
                    pit::PIT_CONTROL => {
                        v >> pit::CW_SC_SHIFT == 0 && (v >> pit::CW_RW_SHIFT) & 3 != pit::RW_LATCH
                    }
                    _ => false,
                };
            }
            0x61 => self.pit.write_port61(v, now),
            // Any write clears the FERR# request to the PIC (the x87 handler's `out 0xF0`).
            FERR_CLEAR_PORT => self.pic.set_irq(FERR_IRQ, false),
            i8042::I8042_DATA_PORT | i8042::I8042_CMD_PORT => {
                let fx = self.kbc.write(port, v);
                if fx.reset {
                    self.reset_request = true;
                }
                self.update_a20();
                self.update_kbc_irqs();
            }
            rtc::RTC_INDEX_PORT | rtc::RTC_DATA_PORT => {
                self.rtc.write(port, v, now);
                self.timer_programmed |= port == rtc::RTC_DATA_PORT;
                self.update_rtc_irq();
            }
            PORT_A => {
                if v & PORT_A_RESET != 0 && self.port_a & PORT_A_RESET == 0 {
                    self.reset_request = true;
                }
                self.port_a = v & (PORT_A_A20 | PORT_A_RESET);
                self.update_a20();
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

    /// The board's own registers, for the `board` section.
    pub(crate) fn state(&self) -> BoardState {
        BoardState {
            port_a: self.port_a,
        }
    }

    /// Takes a loaded `board` section after the devices loaded with it were put in place:
    /// the A20 line, the console's port and the run loop's flags follow from them. The
    /// caller drops the CPU's translations (the A20 mask may have changed).
    pub(crate) fn restore(&mut self, state: &BoardState) {
        self.port_a = state.port_a;
        self.exit_request = None;
        self.reset_request = false;
        self.timer_programmed = false;
        self.stop_on_timer = matches!(self.clock.mode(), ClockMode::Deterministic { .. });
        if let Some(d) = &self.debugcon {
            self.debugcon_port = d.iobase();
        }
        self.update_a20();
        self.a20_changed = false;
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

    /// The virtual clock at instruction `icount` of the running slice: exact in
    /// deterministic mode, the host-paced clock in realtime mode.
    fn time_ns(&mut self, icount: u64) -> u64 {
        self.icount_now = icount;
        self.now()
    }

    fn sync_icount(&mut self, icount: u64) {
        self.icount_now = icount;
    }

    /// FERR# drives IRQ 13 (the PC's legacy x87 error path, CR0.NE=0).
    fn fpu_error(&mut self, asserted: bool) {
        self.pic.set_irq(FERR_IRQ, asserted);
    }

    fn stop_requested(&mut self) -> bool {
        self.exit_request.is_some()
            || self.reset_request
            || self.a20_changed
            || (self.stop_on_timer && self.timer_programmed)
    }
}

/// The RTC for a new machine at virtual time `now_ns`. The host clock is read here and
/// nowhere else, and only if the configuration asks for it.
fn new_rtc(base: RtcBase, now_ns: u64) -> Rtc {
    match base {
        RtcBase::Fixed(s) => Rtc::new(s, 1_000_000_000, now_ns),
        RtcBase::HostUtc => {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let secs = i64::try_from(since.as_secs()).unwrap_or(rtc::DEFAULT_BASE_SECONDS);
            Rtc::new(
                secs,
                u64::from(1_000_000_000 - since.subsec_nanos()),
                now_ns,
            )
        }
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
        let clock = VirtualClock::new(config.clock);
        let mut rtc = new_rtc(config.rtc_base, clock.now_ns());
        rtc.set_pc_config(config.ram_size);
        let board = Board {
            pic: Pic::new(),
            pit: Pit::new(),
            rtc,
            kbc: I8042::new(),
            uart: Uart::new(),
            debug_exit: DebugExit::new(),
            debugcon: config.debugcon_port.map(|iobase| {
                DebugCon::from_state(DebugConState {
                    iobase,
                    readback: DEBUGCON_READBACK,
                })
                .unwrap_or_default()
            }),
            debugcon_port: config.debugcon_port.unwrap_or(0xE9),
            stop_on_timer: matches!(config.clock, ClockMode::Deterministic { .. }),
            clock,
            mem: mem.clone(),
            exit_request: None,
            reset_request: false,
            port_a: PORT_A_A20,
            a20_changed: false,
            timer_programmed: false,
            clock_icount: 0,
            icount_now: 0,
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

    /// Instructions executed since the machine was created (the CPU's count, which a reset
    /// does not clear).
    pub fn icount(&self) -> u64 {
        self.cpu.icount()
    }

    /// The virtual clock as it would be saved: mode and current virtual time.
    pub fn clock_state(&self) -> ClockState {
        self.board.clock.state()
    }

    /// Puts CPU and devices in their power-on state and loads the boot image again.
    fn boot(&mut self) -> Result<(), MachineError> {
        self.cpu.reset();
        self.mem.set_a20(true);
        let now = self.board.now();
        self.board.pic = Pic::new();
        self.board.pit = Pit::new();
        self.board.pit.reset(now);
        // The RTC keeps its time and CMOS RAM across a reset; only its RESET pin acts.
        self.board.rtc.reset(now);
        self.board.kbc = I8042::new();
        self.board.uart = Uart::new();
        self.board.port_a = PORT_A_A20;
        self.board.a20_changed = false;
        self.board.timer_programmed = false;
        let boot = self.config.boot.clone();
        if !matches!(boot, BootSource::Bios { .. }) {
            // A PC BIOS has run before a -kernel loader: the PIC, PIT and keyboard
            // controller are as it leaves them (QEMU boots -kernel through SeaBIOS).
            self.board.pic.bios_init();
            self.board.kbc.bios_init();
            for (port, v) in [(0x43, 0x34), (0x40, 0), (0x40, 0)] {
                self.board.pit.write(port, v, now);
            }
        }
        match boot {
            BootSource::Bios { .. } => {}
            BootSource::Multiboot { image, cmdline } => {
                let entry = boot::load_multiboot(&image, &cmdline, &mut Loader(&self.mem))?;
                self.enter_multiboot(entry.eip, entry.eax, entry.ebx);
            }
            BootSource::Linux {
                kernel,
                initrd,
                cmdline,
            } => {
                let e =
                    boot::load_linux(&kernel, initrd.as_deref(), &cmdline, &mut Loader(&self.mem))?;
                log::info!(
                    "Linux boot protocol {}.{:02}",
                    e.version >> 8,
                    e.version & 0xFF
                );
                let mut s = flat_protected_state(
                    e.eip,
                    boot::linux::BOOT_CS,
                    boot::linux::BOOT_DS,
                    e.gdt_base,
                    e.gdt_limit,
                );
                s.gpr[cpu::state::ESI] = e.esi;
                self.cpu.set_state(s);
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
        let mut s = flat_protected_state(eip, 0x08, 0x10, BOOT_GDT, 23);
        s.gpr[cpu::state::EAX] = eax;
        s.gpr[cpu::state::EBX] = ebx;
        self.cpu.set_state(s);
    }

    /// System reset: CPU, devices and boot image as at power-on; RAM keeps its contents
    /// except what the boot loader writes.
    pub fn reset(&mut self) -> Result<(), MachineError> {
        self.board.exit_request = None;
        self.board.reset_request = false;
        self.boot()
    }

    /// Runs guest code for up to `budget` instructions (a few more: the CPU finishes its
    /// block; with a deterministic clock, the slice up to the next multiple of
    /// [`DETERMINISTIC_QUANTUM`]). With a deterministic clock a halt's skipped time counts
    /// as instructions.
    pub fn run(&mut self, budget: u64) -> RunEvent {
        let mut left = budget.max(1);
        loop {
            self.board.update_irqs();
            let slice = match self.board.clock.mode() {
                ClockMode::Realtime => left,
                ClockMode::Deterministic { ns_per_insn } => {
                    // To the next multiple of the quantum, whatever `left` is: where a
                    // slice ends decides what time a device read sees, so it must not
                    // depend on the caller's budget (nor on where a restored run began).
                    let q = DETERMINISTIC_QUANTUM;
                    let mut s = q - self.cpu.icount() % q;
                    if let Some(d) = self.board.next_deadline() {
                        let to_go = d.saturating_sub(self.board.now());
                        s = s.min(to_go.div_ceil(ns_per_insn).max(1));
                    }
                    s
                }
            };
            self.board.timer_programmed = false;
            let before = self.cpu.icount();
            self.board.clock_icount = before;
            self.board.icount_now = before;
            let exit = self.cpu.run(&mut self.board, slice);
            let ran = self.cpu.icount() - before;
            self.board.clock.advance_insns(ran);
            // The clock now stands at the CPU's count: device time adds nothing more.
            self.board.clock_icount = self.cpu.icount();
            self.board.icount_now = self.board.clock_icount;
            left = left.saturating_sub(ran);
            if self.board.a20_changed {
                self.board.a20_changed = false;
                // Drops the TLB and the jump cache, both filled under the old A20 mask.
                self.cpu.state_changed();
            }
            if let Some(code) = self.board.exit_request.take() {
                return RunEvent::Exit(code);
            }
            if self.board.reset_request || exit == Exit::Shutdown {
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
            if exit == Exit::Halted {
                // An interrupt may already be due (a timer that fired during the slice).
                self.board.update_irqs();
                let irq_on = self.cpu.s.eflags & cpu::state::IF != 0;
                if !(irq_on && self.board.pic.interrupt_pending()) {
                    // With interrupts off nothing but a reset ends the halt.
                    let deadline = if irq_on {
                        self.board.next_deadline()
                    } else {
                        None
                    };
                    let (ClockMode::Deterministic { ns_per_insn }, Some(d)) =
                        (self.board.clock.mode(), deadline)
                    else {
                        return RunEvent::Halted {
                            deadline_ns: deadline,
                        };
                    };
                    let skipped = d.saturating_sub(self.board.now());
                    self.board.clock.skip_to(d);
                    left = left.saturating_sub((skipped / ns_per_insn).max(1));
                }
            }
            if left == 0 {
                return RunEvent::Ran;
            }
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
