//! The board's devices in the machine-state stream: one section per device, each a
//! [`savevm::VmState`] implemented over the device's plain `XxxState` and validated by
//! its `from_state`.
//!
//! | section      | device                            | version | file            |
//! |--------------|-----------------------------------|---------|-----------------|
//! | `pic`        | 8259 PIC pair                     | 1       | [`pic`]         |
//! | `pit`        | 8254 PIT and port 0x61 bits       | 1       | [`pit`]         |
//! | `rtc`        | MC146818 RTC and CMOS RAM         | 1       | [`rtc`]         |
//! | `i8042`      | 8042 keyboard controller          | 1       | [`i8042`]       |
//! | `uart`       | 16550A (instance = COM port)      | 1       | [`uart`]        |
//! | `debug-exit` | isa-debug-exit port               | 1       | [`debugport`]   |
//! | `debugcon`   | port 0xE9 console                 | 1       | [`debugport`]   |
//! | `board`      | port 0x92 (the board's own state) | 1       | [`board`]       |
//! | `clock`      | virtual clock                     | 1       | [`clock`]       |
//!
//! The CPU's section (`cpu`) lives with the CPU. Host-side data (bytes transmitted but
//! not yet taken by the frontend) is never part of a section. How the sections and RAM
//! make up a whole machine's state is [`crate::snapshot`]'s business.

pub mod board;
pub mod clock;
pub mod debugport;
pub mod i8042;
pub mod pic;
pub mod pit;
pub mod rtc;
pub mod uart;

#[cfg(test)]
mod tests {
    use savevm::{Config, DiscardRam, Encoder, Error, Loaders, StreamReader, StreamWriter};

    use crate::clock::{ClockMode, VirtualClock};
    use crate::debugport::{DebugCon, DebugExit};
    use crate::pic::{Pic, PIC_MASTER_DATA};
    use crate::pit::{Pit, PIT_CHANNEL0, PIT_CONTROL};
    use crate::uart::{Uart, UART_SCR};

    struct Devices {
        pic: Pic,
        pit: Pit,
        com1: Uart,
        com2: Uart,
        exit: DebugExit,
        con: DebugCon,
        clock: VirtualClock,
    }

    fn fresh() -> Devices {
        Devices {
            pic: Pic::new(),
            pit: Pit::new(),
            com1: Uart::new(),
            com2: Uart::new(),
            exit: DebugExit::new(),
            con: DebugCon::new(),
            clock: VirtualClock::new(ClockMode::Deterministic { ns_per_insn: 1 }),
        }
    }

    fn config() -> Config {
        Config {
            machine: "pc".into(),
            ram_size: 1 << 20,
            cpu_model: "pentium-pro".into(),
        }
    }

    fn save(d: &Devices) -> Vec<u8> {
        save_with(d, None)
    }

    /// The stream of `d`, with the PIC section's body replaced by `pic` if given.
    fn save_with(d: &Devices, pic: Option<&Encoder>) -> Vec<u8> {
        let mut w = StreamWriter::new(Vec::new(), &config(), 0).unwrap();
        w.put_section(0, &d.clock).unwrap();
        match pic {
            Some(enc) => w.put_encoded("pic", 0, 1, enc).unwrap(),
            None => w.put_section(0, &d.pic).unwrap(),
        }
        w.put_section(0, &d.pit).unwrap();
        w.put_section(0, &d.com1).unwrap();
        w.put_section(1, &d.com2).unwrap();
        w.put_section(0, &d.exit).unwrap();
        w.put_section(0, &d.con).unwrap();
        w.finish().unwrap().0
    }

    /// Loads into temporaries and commits only if the whole stream loaded: the pattern a
    /// machine uses so that a refused stream leaves it as it was.
    fn load(stream: &[u8], into: &mut Devices) -> Result<(), Error> {
        let v = StreamReader::new(stream, &config())?.read_all(&mut DiscardRam)?;
        let mut t = fresh();
        let mut l = Loaders::new();
        l.add(0, &mut t.clock)
            .add(0, &mut t.pic)
            .add(0, &mut t.pit)
            .add(0, &mut t.com1)
            .add(1, &mut t.com2)
            .add(0, &mut t.exit)
            .add(0, &mut t.con);
        v.load_into(&mut l)?;
        *into = t;
        Ok(())
    }

    fn busy() -> Devices {
        let mut d = fresh();
        d.clock.advance_insns(12_345_678);
        let now = d.clock.now_ns();
        d.pic.bios_init();
        d.pic.write(PIC_MASTER_DATA, 0xFA);
        d.pit.write(PIT_CONTROL, 0x34, now);
        d.pit.write(PIT_CHANNEL0, 0x00, now);
        d.pit.write(PIT_CHANNEL0, 0x10, now);
        d.com1.write(UART_SCR, 1);
        d.com2.write(UART_SCR, 2);
        d.com2.receive(b"x");
        d
    }

    #[test]
    fn all_devices_round_trip_through_one_stream() {
        let a = busy();
        let stream = save(&a);
        let mut b = fresh();
        load(&stream, &mut b).unwrap();
        assert_eq!(save(&b), stream);
        assert_eq!(b.pic.state(), a.pic.state());
        assert_eq!(b.com2.state(), a.com2.state());
        assert_eq!(b.clock.now_ns(), a.clock.now_ns());
        let d = savevm::verify(stream.as_slice()).unwrap();
        let names: Vec<_> = d.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "clock",
                "pic",
                "pit",
                "uart",
                "uart",
                "debug-exit",
                "debugcon"
            ]
        );
        assert_eq!(d.sections[4].subsections[0].name, "rx-fifo");
    }

    #[test]
    fn a_stream_refused_late_leaves_every_device_unchanged() {
        let a = busy();
        let mut stream = save(&a);
        // Corrupt the last section's body (debugcon readback) and the checksum with it.
        let json = savevm::inspect(stream.as_slice()).unwrap().to_json();
        let end = stream.len() - 4 - json.len() - 4 - 4 - 1;
        stream[end - 1] ^= 0xFF;
        let mut b = fresh();
        let before = save(&b);
        assert!(matches!(
            load(&stream, &mut b),
            Err(Error::ChecksumMismatch { .. })
        ));
        assert_eq!(save(&b), before);

        // A PIC state the device refuses, in an intact stream, after other sections: those
        // were loaded into temporaries, so nothing changes either.
        let mut pic = Encoder::new();
        for chip in 0..2 {
            // irr isr imr lines elcr icw1 vector_base icw3 icw4 init_step lowest_priority
            let init_step = if chip == 0 { 5 } else { 0 };
            for v in [0, 0, 0, 0, 0, 0, 0, 0, 0, init_step, 7] {
                pic.u8(v);
            }
            for _ in 0..4 {
                pic.bool(false);
            }
        }
        let stream = save_with(&busy(), Some(&pic));
        savevm::verify(stream.as_slice()).unwrap();
        let mut b = fresh();
        let before = save(&b);
        match load(&stream, &mut b) {
            Err(Error::Invalid { section, .. }) => assert_eq!(section, "pic"),
            other => panic!("{other:?}"),
        }
        assert_eq!(save(&b), before);
    }

    mod machine {
        use std::sync::Arc;

        use memory::{GuestMemory, GuestPhysAddr};
        use savevm::{Config, Loaders, PageSource, RamSink, StreamReader, StreamWriter, PAGE_SIZE};

        use crate::clock::ClockMode;
        use crate::{BootSource, MachineConfig, PcMachine, RunEvent};

        const RAM: u64 = 4 << 20;

        struct Source<'a>(&'a GuestMemory);

        impl PageSource for Source<'_> {
            fn read_page(&mut self, page: u64, out: &mut [u8; PAGE_SIZE]) -> std::io::Result<()> {
                self.0
                    .read_phys(GuestPhysAddr(page * PAGE_SIZE as u64), out);
                Ok(())
            }
        }

        struct Sink<'a>(&'a GuestMemory);

        impl RamSink for Sink<'_> {
            fn zero_pages(&mut self, first: u64, count: u64) -> std::io::Result<()> {
                let zero = [0u8; PAGE_SIZE];
                for p in first..first + count {
                    self.0
                        .write_phys(GuestPhysAddr(p * PAGE_SIZE as u64), &zero);
                }
                Ok(())
            }
            fn write_page(&mut self, page: u64, data: &[u8; PAGE_SIZE]) -> std::io::Result<()> {
                self.0
                    .write_phys(GuestPhysAddr(page * PAGE_SIZE as u64), data);
                Ok(())
            }
        }

        fn new_machine() -> PcMachine {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/guests/timer.bin");
            let image: Arc<[u8]> = std::fs::read(path).expect("timer.bin").into();
            PcMachine::new(MachineConfig {
                ram_size: RAM,
                boot: BootSource::Multiboot {
                    image,
                    cmdline: "timer.bin ".into(),
                },
                debugcon_port: None,
                clock: ClockMode::Deterministic { ns_per_insn: 10 },
                rtc_base: crate::rtc::RtcBase::Fixed(946_684_800),
                no_reboot: true,
            })
            .unwrap()
        }

        fn config() -> Config {
            Config {
                machine: "pc".into(),
                ram_size: RAM,
                cpu_model: "pentium-pro".into(),
            }
        }

        /// One slice of the run loop a frontend would drive; `Some` when the guest exits.
        fn slice(m: &mut PcMachine, out: &mut Vec<u8>) -> Option<i32> {
            let ev = m.run(5_000);
            out.extend(m.take_serial_output());
            match ev {
                RunEvent::Exit(code) => Some(code),
                RunEvent::Halted {
                    deadline_ns: Some(d),
                } => {
                    m.board.clock.skip_to(d);
                    None
                }
                RunEvent::Ran => None,
                other => panic!("unexpected {other:?}"),
            }
        }

        fn run_to_exit(m: &mut PcMachine, out: &mut Vec<u8>) -> i32 {
            for _ in 0..100_000 {
                if let Some(code) = slice(m, out) {
                    return code;
                }
            }
            panic!("guest did not finish");
        }

        /// The timer guest (PIC, PIT, interrupts, serial) saved mid-run, restored into a
        /// new machine, finishes exactly as an uninterrupted run: same output, same exit,
        /// same instruction count and virtual time.
        #[test]
        fn a_guest_saved_mid_run_finishes_the_same() {
            let mut reference = new_machine();
            let mut ref_out = Vec::new();
            let ref_code = run_to_exit(&mut reference, &mut ref_out);
            assert_eq!(ref_code, 1, "{}", String::from_utf8_lossy(&ref_out));

            let mut a = new_machine();
            let mut out = Vec::new();
            while a.board.pic.state().master.imr != 0xFE || a.cpu.icount() < 200_000 {
                assert_eq!(slice(&mut a, &mut out), None);
            }
            let at = a.cpu.icount();
            assert!(at < reference.cpu.icount() / 2, "saved mid-run");
            let mut w = StreamWriter::new(Vec::new(), &config(), 0).unwrap();
            w.begin_ram_pass().unwrap();
            w.put_ram(&mut Source(a.memory()), 0..RAM / PAGE_SIZE as u64)
                .unwrap();
            w.put_section(0, &a.cpu).unwrap();
            w.put_section(0, &a.board.clock).unwrap();
            w.put_section(0, &a.board.pic).unwrap();
            w.put_section(0, &a.board.pit).unwrap();
            w.put_section(0, &a.board.uart).unwrap();
            w.put_section(0, &a.board.debug_exit).unwrap();
            let (stream, _) = w.finish().unwrap();
            drop(a);

            let mut b = new_machine();
            let mut r = StreamReader::new(stream.as_slice(), &config()).unwrap();
            let mem = b.memory().clone();
            let v = r.read_all(&mut Sink(&mem)).unwrap();
            r.expect_eof().unwrap();
            let board = &mut b.board;
            let mut l = Loaders::new();
            l.add(0, &mut b.cpu)
                .add(0, &mut board.clock)
                .add(0, &mut board.pic)
                .add(0, &mut board.pit)
                .add(0, &mut board.uart)
                .add(0, &mut board.debug_exit);
            v.load_into(&mut l).unwrap();
            b.cpu.flush_code();
            assert_eq!(b.cpu.icount(), at);

            let code = run_to_exit(&mut b, &mut out);
            assert_eq!(code, ref_code);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&ref_out)
            );
            assert_eq!(b.cpu.icount(), reference.cpu.icount());
            assert_eq!(b.board.clock.now_ns(), reference.board.clock.now_ns());
            assert_eq!(b.cpu.s.gpr, reference.cpu.s.gpr);
        }
    }
}
