//! Whether the guest was running when the source stopped it for the stop-and-copy.
//!
//! QEMU's destination starts the guest after an incoming migration only if it ran on the
//! source: a guest paused there (`stop`, then `migrate`, as a save to a file does) arrives
//! paused. The sender therefore closes every live stream with this one-byte section after
//! the devices'. It is the migration's, not a device's: the destination takes it out
//! ([`take_run_state`]) before it hands the sections to its devices. A stream without it
//! (a snapshot, an older sender) counts as a running guest.

use savevm::{Decoder, Encoder, Error, Result, Verified, VmState};

/// The section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunState {
    pub running: bool,
}

impl VmState for RunState {
    const NAME: &'static str = "run-state";
    const VERSION: u32 = 1;
    const MIN_VERSION: u32 = 1;

    fn save(&self, enc: &mut Encoder) {
        enc.bool(self.running);
    }

    fn load(&mut self, dec: &mut Decoder<'_>, _version: u32) -> Result<()> {
        let running = dec.bool("running")?;
        dec.finish()?;
        self.running = running;
        Ok(())
    }
}

/// Takes the run-state section out of `stream`: whether the guest ran on the source, or
/// `None` if the stream does not say.
pub fn take_run_state(stream: &mut Verified) -> Result<Option<bool>> {
    let Some(i) = stream
        .sections
        .iter()
        .position(|s| s.name == RunState::NAME && s.instance == 0)
    else {
        return Ok(None);
    };
    let s = stream.sections.remove(i);
    if !(RunState::MIN_VERSION..=RunState::VERSION).contains(&s.version) {
        return Err(Error::SectionVersion {
            section: s.name.clone(),
            version: s.version,
            min: RunState::MIN_VERSION,
            max: RunState::VERSION,
        });
    }
    let mut state = RunState::default();
    state.load(&mut s.decoder(), s.version)?;
    Ok(Some(state.running))
}

#[cfg(test)]
mod tests {
    use super::*;
    use savevm::{Config, DiscardRam, StreamReader, StreamWriter};

    fn stream(running: Option<bool>) -> Verified {
        let config = Config {
            machine: "pc".into(),
            ram_size: 4096,
            cpu_model: "test".into(),
        };
        let mut w = StreamWriter::new(Vec::new(), &config, 0).unwrap();
        if let Some(running) = running {
            w.put_section(0, &RunState { running }).unwrap();
        }
        let (bytes, _) = w.finish().unwrap();
        StreamReader::new(bytes.as_slice(), &config)
            .unwrap()
            .read_all(&mut DiscardRam)
            .unwrap()
    }

    #[test]
    fn the_section_is_taken_out() {
        for running in [false, true] {
            let mut v = stream(Some(running));
            assert_eq!(take_run_state(&mut v).unwrap(), Some(running));
            assert!(v.sections.is_empty());
            assert_eq!(take_run_state(&mut v).unwrap(), None);
        }
        assert_eq!(take_run_state(&mut stream(None)).unwrap(), None);
    }
}
