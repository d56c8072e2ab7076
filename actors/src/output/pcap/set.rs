//! A set of per-subscriber pcap files with a limit on open files.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::{PcapError, PcapFile, PcapOptions};
use crate::output::FileError;
use crate::wire::control::Digits;

/// Counters of a [`PcapWriterSet`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcapWriterStats {
    /// Files opened for the first time by this set.
    pub opened: u64,
    /// Files opened again after the set closed them to stay under the open-file limit.
    pub reopened: u64,
    /// Files closed to stay under the open-file limit.
    pub evicted: u64,
    /// Packets buffered.
    pub packets: u64,
}

/// An open file and the set's use counter at its last write.
#[derive(Debug)]
struct OpenEntry {
    file: PcapFile,
    last_use: u64,
}

/// Per-subscriber pcap files `DIR/<IMSI>.pcap`, with at most `max_open` open at a time.
#[derive(Debug)]
pub struct PcapWriterSet {
    dir: PathBuf,
    options: PcapOptions,
    open: FxHashMap<Digits, OpenEntry>,
    /// Lengths of files this set closed, so reopening them skips the record scan.
    closed_len: FxHashMap<Digits, u64>,
    use_counter: u64,
    stats: PcapWriterStats,
}

impl PcapWriterSet {
    /// Creates a set writing into `dir`, creating the directory if needed.
    pub fn new(dir: impl Into<PathBuf>, options: PcapOptions) -> Result<Self, PcapError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(FileError::on("create directory", &dir))?;
        Ok(PcapWriterSet {
            dir,
            options,
            open: FxHashMap::default(),
            closed_len: FxHashMap::default(),
            use_counter: 0,
            stats: PcapWriterStats::default(),
        })
    }

    /// Returns the path of the file of `imsi`.
    pub fn path_of(&self, imsi: Digits) -> PathBuf {
        self.dir.join(format!("{imsi}.pcap"))
    }

    /// Buffers one packet of `imsi` in its file (see [`PcapFile::write`]), opening the
    /// file if needed. When `max_open` files are already open, the least recently written
    /// one is closed first, and an error from closing it is returned instead of writing.
    pub fn write(
        &mut self,
        imsi: Digits,
        link_type: u32,
        ts_us: u64,
        orig_len: u32,
        bytes: &[u8],
    ) -> Result<(), PcapError> {
        self.use_counter += 1;
        let use_counter = self.use_counter;
        let entry = self.entry_for(imsi, link_type)?;
        entry.last_use = use_counter;
        entry.file.write(ts_us, orig_len, bytes)?;
        self.stats.packets += 1;
        Ok(())
    }

    /// Flushes every file whose oldest buffered packet is older than the flush interval.
    /// Goes through every file even after an error, and returns the first error.
    pub fn flush_due(&mut self, now: Instant) -> Result<(), PcapError> {
        let mut first_error = None;
        for entry in self.open.values_mut() {
            if let Err(error) = entry.file.flush_if_due(now) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Flushes every open file. Goes through every file even after an error, and returns
    /// the first error.
    pub fn flush_all(&mut self) -> Result<(), PcapError> {
        let mut first_error = None;
        for entry in self.open.values_mut() {
            if let Err(error) = entry.file.flush() {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Flushes and closes the file of `imsi`, if open.
    pub fn close(&mut self, imsi: Digits) -> Result<(), PcapError> {
        match self.open.remove(&imsi) {
            Some(entry) => self.close_entry(imsi, entry),
            None => Ok(()),
        }
    }

    /// Flushes and closes every open file, and returns the first error.
    pub fn close_all(&mut self) -> Result<(), PcapError> {
        let mut first_error = None;
        let open = std::mem::take(&mut self.open);
        for (imsi, entry) in open {
            if let Err(error) = self.close_entry(imsi, entry) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Number of files currently open.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// Counters.
    pub fn stats(&self) -> PcapWriterStats {
        self.stats
    }

    fn entry_for(&mut self, imsi: Digits, link_type: u32) -> Result<&mut OpenEntry, PcapError> {
        if !self.open.contains_key(&imsi) {
            self.close_least_recent()?;
            let file = self.open_file(imsi, link_type)?;
            self.open.insert(imsi, OpenEntry { file, last_use: 0 });
        }
        let Some(entry) = self.open.get_mut(&imsi) else {
            unreachable!("the entry was inserted above");
        };
        if entry.file.link_type() != link_type {
            return Err(PcapError::LinkTypeMismatch {
                path: entry.file.path().to_path_buf(),
                file: entry.file.link_type(),
                requested: link_type,
            });
        }
        Ok(entry)
    }

    fn open_file(&mut self, imsi: Digits, link_type: u32) -> Result<PcapFile, PcapError> {
        let path = self.path_of(imsi);
        let known_len = self.closed_len.get(&imsi).copied();
        if known_len.is_none() && self.options.replace_existing {
            match fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(FileError::on("replace", &path)(error).into());
                }
                _ => {}
            }
        }
        let file = PcapFile::open_expecting(&path, link_type, &self.options, known_len)?;
        if known_len.is_some() {
            self.stats.reopened += 1;
        } else {
            self.stats.opened += 1;
        }
        Ok(file)
    }

    /// Closes the least recently written file when the open-file limit is reached.
    fn close_least_recent(&mut self) -> Result<(), PcapError> {
        if self.open.len() < self.options.max_open.max(1) {
            return Ok(());
        }
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, entry)| entry.last_use)
            .map(|(imsi, _)| *imsi);
        let Some(imsi) = oldest else { return Ok(()) };
        self.stats.evicted += 1;
        self.close(imsi)
    }

    fn close_entry(&mut self, imsi: Digits, entry: OpenEntry) -> Result<(), PcapError> {
        // Without a known length the next open scans the records again.
        self.closed_len.remove(&imsi);
        let len = entry.file.close()?;
        self.closed_len.insert(imsi, len);
        Ok(())
    }
}
