//! Classic pcap writers for many per-subscriber files.
//!
//! Files use the classic libpcap format with microsecond timestamps, version 2.4, in
//! little-endian byte order. Readers detect the byte order from the magic number. A file
//! starts with a 24-byte header (magic, major and minor version, time zone offset,
//! timestamp accuracy, snapshot length, link type). Each packet follows as a 16-byte
//! record header (seconds, microseconds, captured length, original length) and the
//! captured bytes. One file has one link type, so packets of inputs with different link
//! types cannot share a file ([`PcapError::LinkTypeMismatch`]).
//!
//! Writes are buffered and reach the file when the buffer fills, when the oldest buffered
//! packet is older than the flush interval (wall time), and on close. A process killed
//! between two flushes leaves a file that is readable up to the last flush. A partial
//! record left by a crash during a write is cut off when the file is opened again.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::output::FileError;

/// Magic number of classic pcap files with microsecond timestamps.
pub const MAGIC_MICROSECONDS: u32 = 0xa1b2_c3d4;
/// Format version written in the file header (major, minor).
pub const VERSION: (u16, u16) = (2, 4);
/// Snapshot length written in the file header, 262144 bytes: libpcap's internal maximum
/// (`MAXIMUM_SNAPLEN` in `pcap-int.h`). Longer packets are cut to it, and the record keeps
/// their original length.
pub const SNAPLEN: u32 = 262_144;
/// Length of the file header, bytes.
const FILE_HEADER_LEN: u64 = 24;
/// Length of a record header, bytes.
const RECORD_HEADER_LEN: u64 = 16;

/// Error opening or writing a pcap file.
#[derive(Debug)]
pub enum PcapError {
    /// An operating-system error, with the operation and the path.
    Io(FileError),
    /// The file contains packets of one link type and the caller passed another.
    LinkTypeMismatch {
        /// The file.
        path: PathBuf,
        /// Link type in the file header.
        file: u32,
        /// Link type the caller passed.
        requested: u32,
    },
    /// The file exists but is not a classic little-endian microsecond pcap file, so
    /// appending to it would corrupt it.
    UnsupportedFile {
        /// The file.
        path: PathBuf,
        /// Description of the header problem.
        reason: &'static str,
    },
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Io(error) => error.fmt(f),
            PcapError::LinkTypeMismatch {
                path,
                file,
                requested,
            } => write!(
                f,
                "{} has link type {file}, the packet has link type {requested}: a pcap file \
                 holds one link type, so write inputs with different link types to different \
                 directories",
                path.display()
            ),
            PcapError::UnsupportedFile { path, reason } => write!(
                f,
                "cannot append to {}: {reason}; move the file away or choose another directory",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<FileError> for PcapError {
    fn from(error: FileError) -> Self {
        PcapError::Io(error)
    }
}

/// Buffering and file-handle limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapOptions {
    /// A file's buffer is written out when it contains at least this many bytes.
    pub buffer_bytes: usize,
    /// A file's buffer is written out when its oldest packet was buffered this long ago
    /// (wall time), at the next write or [`PcapWriterSet::flush_due`].
    pub flush_interval: Duration,
    /// Maximum number of files a [`PcapWriterSet`] keeps open. Opening one more closes the
    /// least recently written one.
    pub max_open: usize,
    /// When true, a [`PcapWriterSet`] replaces a file left by an earlier run the first time it
    /// opens it; when false it appends to it.
    pub replace_existing: bool,
}

impl Default for PcapOptions {
    /// 64 KiB buffers, 1 s flush interval, 256 open files, appending to existing files.
    fn default() -> Self {
        PcapOptions {
            buffer_bytes: 64 * 1024,
            flush_interval: Duration::from_secs(1),
            max_open: 256,
            replace_existing: false,
        }
    }
}

/// One pcap file open for appending, with its write buffer.
///
/// Dropping the writer flushes the buffer but loses any error: call [`PcapFile::close`].
#[derive(Debug)]
pub struct PcapFile {
    path: PathBuf,
    file: File,
    link_type: u32,
    buffer: Vec<u8>,
    buffer_bytes: usize,
    flush_interval: Duration,
    /// When the oldest packet in `buffer` was buffered; `None` when the buffer is empty.
    buffered_since: Option<Instant>,
    /// Bytes of complete records (and header) on disk, excluding the buffer.
    written_len: u64,
}

impl PcapFile {
    /// Opens `path` for appending packets of `link_type` (a pcap LINKTYPE value, e.g. 1
    /// for Ethernet, 113 for Linux cooked capture), creating it with a header if it does
    /// not exist or is empty.
    ///
    /// An existing file must be a classic little-endian microsecond pcap file of the same
    /// link type. A partial record at its end is cut off.
    pub fn open(path: &Path, link_type: u32, options: &PcapOptions) -> Result<Self, PcapError> {
        Self::open_expecting(path, link_type, options, None)
    }

    /// Opens like [`PcapFile::open`]. When the file length equals `known_len` (the length
    /// this process left when it closed the file) the records are not scanned again.
    fn open_expecting(
        path: &Path,
        link_type: u32,
        options: &PcapOptions,
        known_len: Option<u64>,
    ) -> Result<Self, PcapError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(FileError::on("open", path))?;
        let len = file
            .metadata()
            .map_err(FileError::on("read metadata of", path))?
            .len();
        let mut writer = PcapFile {
            path: path.to_path_buf(),
            file,
            link_type,
            buffer: Vec::with_capacity(options.buffer_bytes),
            buffer_bytes: options.buffer_bytes,
            flush_interval: options.flush_interval,
            buffered_since: None,
            written_len: len,
        };
        if len < FILE_HEADER_LEN {
            writer.start_new_file(len)?;
        } else {
            writer.check_existing_file(len, known_len)?;
        }
        Ok(writer)
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Link type in the file header.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Buffers one packet captured at `ts_us` (microseconds since the epoch) whose length
    /// on the wire was `orig_len`. Packets longer than [`SNAPLEN`] are cut to it. Writes the
    /// buffer out when it is full or older than the flush interval.
    pub fn write(&mut self, ts_us: u64, orig_len: u32, bytes: &[u8]) -> Result<(), PcapError> {
        let captured = &bytes[..bytes.len().min(SNAPLEN as usize)];
        let captured_len = captured.len() as u32;
        // The packet was at least as long as the bytes passed, whatever the value of `orig_len`.
        let orig_len = orig_len.max(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        // Classic pcap seconds are 32 bits wide, which lasts until 2106.
        self.buffer
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.buffer
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.buffer.extend_from_slice(&captured_len.to_le_bytes());
        self.buffer.extend_from_slice(&orig_len.to_le_bytes());
        self.buffer.extend_from_slice(captured);

        let now = Instant::now();
        let since = *self.buffered_since.get_or_insert(now);
        if self.buffer.len() >= self.buffer_bytes
            || now.duration_since(since) >= self.flush_interval
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffer to the file. On error the buffered packets are lost and the file
    /// is cut back to its last complete record, so later writes still produce a readable file.
    pub fn flush(&mut self) -> Result<(), PcapError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.buffer);
        let buffered = self.buffer.len() as u64;
        self.buffer.clear();
        self.buffered_since = None;
        match result {
            Ok(()) => {
                self.written_len += buffered;
                Ok(())
            }
            Err(source) => {
                // Best effort: the write error is the one worth reporting.
                let _ = self.file.set_len(self.written_len);
                Err(FileError::on("write", &self.path)(source).into())
            }
        }
    }

    /// Flushes when the oldest buffered packet was buffered at least the flush interval
    /// before `now`.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<(), PcapError> {
        match self.buffered_since {
            Some(since) if now.duration_since(since) >= self.flush_interval => self.flush(),
            _ => Ok(()),
        }
    }

    /// Flushes and closes the file. Returns its length in bytes.
    pub fn close(mut self) -> Result<u64, PcapError> {
        self.flush()?;
        Ok(self.written_len)
    }

    /// Buffers the file header, after clearing `len` bytes of a header that a crash left
    /// incomplete.
    fn start_new_file(&mut self, len: u64) -> Result<(), PcapError> {
        let header = file_header(self.link_type);
        if len > 0 {
            let mut partial = vec![0; len as usize];
            read_at_start(&self.file, &self.path, &mut partial)?;
            if partial[..] != header[..partial.len()] {
                return Err(self.unsupported("shorter than the 24-byte pcap file header"));
            }
            self.file
                .set_len(0)
                .map_err(FileError::on("truncate", &self.path))?;
            self.written_len = 0;
        }
        self.buffer.extend_from_slice(&header);
        Ok(())
    }

    /// Checks the header of an existing file and cuts off a partial last record.
    fn check_existing_file(&mut self, len: u64, known_len: Option<u64>) -> Result<(), PcapError> {
        let mut header = [0u8; FILE_HEADER_LEN as usize];
        read_at_start(&self.file, &self.path, &mut header)?;
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) != MAGIC_MICROSECONDS {
            return Err(self.unsupported("not a little-endian microsecond pcap file"));
        }
        if header[4..8] != file_header(0)[4..8] {
            return Err(self.unsupported("pcap version is not 2.4"));
        }
        let file_link_type = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
        if file_link_type != self.link_type {
            return Err(PcapError::LinkTypeMismatch {
                path: self.path.clone(),
                file: file_link_type,
                requested: self.link_type,
            });
        }
        if known_len == Some(len) {
            return Ok(());
        }
        let snaplen = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
        let complete = complete_length(&self.file, &self.path, len, snaplen.max(SNAPLEN))?;
        if complete < len {
            self.file
                .set_len(complete)
                .map_err(FileError::on("truncate", &self.path))?;
            self.written_len = complete;
        }
        Ok(())
    }

    fn unsupported(&self, reason: &'static str) -> PcapError {
        PcapError::UnsupportedFile {
            path: self.path.clone(),
            reason,
        }
    }
}

impl Drop for PcapFile {
    fn drop(&mut self) {
        // Errors are lost here; `close` returns them.
        let _ = self.flush();
    }
}

/// Returns the file header for `link_type`.
fn file_header(link_type: u32) -> [u8; FILE_HEADER_LEN as usize] {
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    header[0..4].copy_from_slice(&MAGIC_MICROSECONDS.to_le_bytes());
    header[4..6].copy_from_slice(&VERSION.0.to_le_bytes());
    header[6..8].copy_from_slice(&VERSION.1.to_le_bytes());
    // Bytes 8..16: time zone offset and timestamp accuracy, both 0 (UTC).
    header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    header[20..24].copy_from_slice(&link_type.to_le_bytes());
    header
}

fn read_at_start(mut file: &File, path: &Path, buffer: &mut [u8]) -> Result<(), PcapError> {
    file.seek(SeekFrom::Start(0))
        .map_err(FileError::on("seek in", path))?;
    file.read_exact(buffer)
        .map_err(FileError::on("read", path))?;
    Ok(())
}

/// Returns the length of the header and the complete records of a file of `len` bytes.
/// A record whose captured length exceeds `max_record` ends the scan as if it were cut.
fn complete_length(file: &File, path: &Path, len: u64, max_record: u32) -> Result<u64, PcapError> {
    let mut reader = BufReader::new(file);
    reader
        .seek(SeekFrom::Start(FILE_HEADER_LEN))
        .map_err(FileError::on("seek in", path))?;
    let mut position = FILE_HEADER_LEN;
    let mut record = [0u8; RECORD_HEADER_LEN as usize];
    while position + RECORD_HEADER_LEN <= len {
        reader
            .read_exact(&mut record)
            .map_err(FileError::on("read", path))?;
        let captured = u32::from_le_bytes([record[8], record[9], record[10], record[11]]);
        let end = position + RECORD_HEADER_LEN + u64::from(captured);
        if captured > max_record || end > len {
            break;
        }
        reader
            .seek_relative(i64::from(captured))
            .map_err(FileError::on("seek in", path))?;
        position = end;
    }
    Ok(position)
}

mod set;

pub use set::{PcapWriterSet, PcapWriterStats};

#[cfg(test)]
mod tests;
