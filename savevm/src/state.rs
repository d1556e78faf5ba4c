//! The state trait every component implements, and the table that routes sections of an
//! incoming stream to the components of a machine.

use crate::codec::{Decoder, Encoder};
use crate::error::{Error, Result};
use crate::format::valid_name;
use crate::reader::SectionData;

/// A component whose state goes into the stream as one section.
///
/// No method has a default body: a component that forgets to save or load does not
/// compile, rather than migrating without its state.
///
/// Versioning: `save` always writes `VERSION`. `load` accepts any version from
/// `MIN_VERSION` to `VERSION` (the reader checks the range before calling it) and reads
/// the fields that version has. A field added later goes at the end of the fields, read
/// only `if version >= N`, with `VERSION` raised to N; state needed only sometimes goes in
/// a subsection instead, which leaves `VERSION` alone and older streams loadable.
pub trait VmState {
    /// Section name: 1-64 bytes of `a-z 0-9 _ . -`.
    const NAME: &'static str;
    /// The version `save` writes.
    const VERSION: u32;
    /// The oldest version `load` still reads.
    const MIN_VERSION: u32;

    /// Writes the state's fields, then any subsections it needs.
    fn save(&self, enc: &mut Encoder);

    /// Reads a state saved at `version` into a fresh value, validates it, calls
    /// [`Decoder::finish`], and only then replaces `self`. On error `self` is unchanged.
    fn load(&mut self, dec: &mut Decoder<'_>, version: u32) -> Result<()>;
}

/// Object-safe face of [`VmState`] for the routing table.
trait Load {
    fn load_dyn(&mut self, dec: &mut Decoder<'_>, version: u32) -> Result<()>;
}

impl<T: VmState> Load for T {
    fn load_dyn(&mut self, dec: &mut Decoder<'_>, version: u32) -> Result<()> {
        self.load(dec, version)
    }
}

struct Entry<'a> {
    name: &'static str,
    instance: u32,
    min: u32,
    max: u32,
    target: &'a mut dyn Load,
}

/// The components a stream loads into, by section name and instance. Built by the
/// machine (or a test) and handed to [`crate::Verified::load_into`].
#[derive(Default)]
pub struct Loaders<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Loaders<'a> {
    pub fn new() -> Self {
        Loaders {
            entries: Vec::new(),
        }
    }

    /// Registers `target` for section `T::NAME`, instance `instance`.
    ///
    /// # Panics
    /// If the same name and instance are registered twice or `T` declares an invalid name
    /// or version range: a mistake in the machine's code, not in a stream.
    pub fn add<T: VmState>(&mut self, instance: u32, target: &'a mut T) -> &mut Self {
        assert!(valid_name(T::NAME), "bad section name {:?}", T::NAME);
        assert!(
            T::MIN_VERSION <= T::VERSION,
            "{}: MIN_VERSION > VERSION",
            T::NAME
        );
        assert!(
            self.find(T::NAME, instance).is_none(),
            "section {} instance {instance} registered twice",
            T::NAME
        );
        self.entries.push(Entry {
            name: T::NAME,
            instance,
            min: T::MIN_VERSION,
            max: T::VERSION,
            target,
        });
        self
    }

    fn find(&self, name: &str, instance: u32) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.name == name && e.instance == instance)
    }

    /// Checks, without loading anything, that `sections` and the registered components
    /// match one to one and every version is loadable.
    pub(crate) fn check(&self, sections: &[SectionData]) -> Result<()> {
        let mut seen = vec![false; self.entries.len()];
        for s in sections {
            let Some(i) = self.find(&s.name, s.instance) else {
                return Err(Error::UnknownSection {
                    name: s.name.clone(),
                    instance: s.instance,
                });
            };
            if seen[i] {
                return Err(Error::DuplicateSection {
                    name: s.name.clone(),
                    instance: s.instance,
                });
            }
            seen[i] = true;
            let e = &self.entries[i];
            if s.version < e.min || s.version > e.max {
                return Err(Error::SectionVersion {
                    section: s.name.clone(),
                    version: s.version,
                    min: e.min,
                    max: e.max,
                });
            }
        }
        if let Some(i) = seen.iter().position(|&s| !s) {
            return Err(Error::MissingSection {
                name: self.entries[i].name.to_string(),
                instance: self.entries[i].instance,
            });
        }
        Ok(())
    }

    /// Hands each section to its component, after [`Loaders::check`].
    pub(crate) fn load(&mut self, sections: &[SectionData]) -> Result<()> {
        self.check(sections)?;
        for s in sections {
            let i = self.find(&s.name, s.instance).unwrap_or_default();
            let mut dec = s.decoder();
            self.entries[i].target.load_dyn(&mut dec, s.version)?;
            // A loader that forgot `finish` still does not get a corrupt section past.
            dec.finish()?;
        }
        Ok(())
    }
}
