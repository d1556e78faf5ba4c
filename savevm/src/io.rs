//! Byte transport with a running CRC-32 and offset, so the footer checksum is computed as
//! the stream goes by and every error can say where it happened.

use std::io::{ErrorKind, Read, Write};

use crate::error::{Error, Result};

pub(crate) struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    offset: u64,
}

impl<W: Write> CrcWriter<W> {
    pub fn new(inner: W) -> Self {
        CrcWriter {
            inner,
            crc: crc32fast::Hasher::new(),
            offset: 0,
        }
    }

    /// Writes bytes that the checksum covers.
    pub fn put(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        self.put_raw(b)
    }

    /// Writes bytes after the checksummed part (footer, trailer).
    pub fn put_raw(&mut self, b: &[u8]) -> Result<()> {
        self.inner.write_all(b).map_err(|source| Error::Io {
            offset: self.offset,
            source,
        })?;
        self.offset += b.len() as u64;
        Ok(())
    }

    pub fn checksum(&self) -> u32 {
        self.crc.clone().finalize()
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush().map_err(|source| Error::Io {
            offset: self.offset,
            source,
        })
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

pub(crate) struct CrcReader<R> {
    inner: R,
    crc: crc32fast::Hasher,
    offset: u64,
}

impl<R: Read> CrcReader<R> {
    pub fn new(inner: R) -> Self {
        CrcReader {
            inner,
            crc: crc32fast::Hasher::new(),
            offset: 0,
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn checksum(&self) -> u32 {
        self.crc.clone().finalize()
    }

    /// Fills `buf` from the part of the stream the checksum covers.
    pub fn get(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        self.get_raw(buf, what)?;
        self.crc.update(buf);
        Ok(())
    }

    /// Fills `buf` from the footer or trailer, outside the checksum.
    pub fn get_raw(&mut self, buf: &mut [u8], what: &'static str) -> Result<()> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(Error::Truncated {
                offset: self.offset,
                what,
            }),
            Err(source) => Err(Error::Io {
                offset: self.offset,
                source,
            }),
        }
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        let mut b = [0; 1];
        self.get(&mut b, what)?;
        Ok(b[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        let mut b = [0; 4];
        self.get(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        let mut b = [0; 8];
        self.get(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn u32_raw(&mut self, what: &'static str) -> Result<u32> {
        let mut b = [0; 4];
        self.get_raw(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    /// `len` bytes into a vector that grows as data actually arrives, so a corrupt length
    /// on a short stream costs no more memory than the stream itself. Callers cap `len`.
    pub fn vec(&mut self, len: u32, what: &'static str, covered: bool) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        let start = self.offset;
        (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut v)
            .map_err(|source| Error::Io {
                offset: start,
                source,
            })?;
        self.offset += v.len() as u64;
        if covered {
            self.crc.update(&v);
        }
        if v.len() < len as usize {
            return Err(Error::Truncated {
                offset: self.offset,
                what,
            });
        }
        Ok(v)
    }

    /// Fails if anything follows: for files, where the stream must be the whole file.
    pub fn expect_eof(&mut self) -> Result<()> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(Error::TrailingGarbage {
                        offset: self.offset,
                    })
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        offset: self.offset,
                        source,
                    })
                }
            }
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}
