//! The pcap files of the trackers on one probe: `<tracker_dir>/<tracker-id>/<node>-<first
//! packet time>-<n>.pcap`. Names sort by start time within one node, and `n` keeps two
//! files that start in the same microsecond apart.
//!
//! A SIGKILL can cut the last record of a file. [`scan_file`] finds the end of the last
//! complete record, and [`resume_point`] cuts the rest off before this probe appends again.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::output::pcap::{MAGIC_MICROSECONDS, SNAPLEN};
use crate::output::time::format_utc_us;
use crate::tracker::protocol::{TrackerFile, MAX_CHUNK};

/// Length of the classic pcap file header, bytes.
const FILE_HEADER_LEN: u64 = 24;
/// Length of a classic pcap record header, bytes.
const RECORD_HEADER_LEN: u64 = 16;

/// What a scan of one tracker file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileScan {
    /// Length of the header and the complete records, bytes.
    pub complete_len: u64,
    /// Complete records.
    pub packets: u64,
    /// Captured bytes of the complete records.
    pub bytes: u64,
    /// Packet time of the last complete record, microseconds since the Unix epoch.
    pub last_ts_us: Option<u64>,
}

/// Checks a tracker identifier or a file name received from another node, so it names one
/// entry of one directory.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) || name.contains("..") {
        return Err(format!("invalid {what} {name:?}: give a plain name without path separators or \"..\""));
    }
    Ok(())
}

/// Returns the name of a new file of `node` whose first packet was captured at `first_ts_us`,
/// e.g. `probe-a-20130727T151000.923098Z-1.pcap`.
pub fn file_name(node: &str, first_ts_us: u64, n: u32) -> String {
    let time: String = format_utc_us(first_ts_us).chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{node}-{time}-{n}.pcap")
}

/// Returns a path in `dir` for a new file of `node` that no existing file has.
pub fn new_file_path(dir: &Path, node: &str, first_ts_us: u64) -> PathBuf {
    let mut n = 1;
    loop {
        let path = dir.join(file_name(node, first_ts_us, n));
        if !path.exists() {
            return path;
        }
        n += 1;
    }
}

/// Returns true when `name` is a pcap file written by `node` (see [`file_name`]).
pub fn is_node_file(name: &str, node: &str) -> bool {
    name.strip_prefix(node).is_some_and(|rest| rest.starts_with('-')) && name.ends_with(".pcap")
}

/// Scans the records of a classic little-endian microsecond pcap file. A record that ends
/// past the end of the file, or is longer than any snapshot length, ends the scan.
pub fn scan_file(path: &Path) -> std::io::Result<FileScan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut header = [0u8; FILE_HEADER_LEN as usize];
    if len < FILE_HEADER_LEN {
        return Ok(FileScan::default());
    }
    reader.read_exact(&mut header)?;
    if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) != MAGIC_MICROSECONDS {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a little-endian microsecond pcap file"));
    }
    let mut scan = FileScan { complete_len: FILE_HEADER_LEN, ..FileScan::default() };
    let mut record = [0u8; RECORD_HEADER_LEN as usize];
    while scan.complete_len + RECORD_HEADER_LEN <= len {
        reader.read_exact(&mut record)?;
        let word = |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
        let captured = word(8);
        let end = scan.complete_len + RECORD_HEADER_LEN + u64::from(captured);
        if captured > SNAPLEN || end > len {
            break;
        }
        reader.seek_relative(i64::from(captured))?;
        scan.complete_len = end;
        scan.packets += 1;
        scan.bytes += u64::from(captured);
        scan.last_ts_us = Some(u64::from(word(0)) * 1_000_000 + u64::from(word(4)));
    }
    Ok(scan)
}

/// Scans a file left by an earlier run and cuts off a torn last record (or a torn header,
/// which removes the file), so appending and fetching see whole records only.
pub fn resume_point(path: &Path) -> std::io::Result<FileScan> {
    let scan = scan_file(path)?;
    let len = std::fs::metadata(path)?.len();
    if scan.complete_len == 0 {
        std::fs::remove_file(path)?;
    } else if scan.complete_len < len {
        OpenOptions::new().write(true).open(path)?.set_len(scan.complete_len)?;
    }
    Ok(scan)
}

/// Lists the files of `node` in a tracker directory, sorted by name, each with the length
/// of its complete records. A missing directory lists nothing.
pub fn list_files(dir: &Path, node: &str) -> Result<Vec<TrackerFile>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot list {}: {error}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_node_file(&name, node) {
            continue;
        }
        let scan = scan_file(&entry.path()).map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        files.push(TrackerFile { name, len: scan.complete_len });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Reads at most `max_len` bytes (capped at [`MAX_CHUNK`]) of file `name` in `dir` from
/// `offset`, never past its last complete record. Returns no bytes at or past that end.
pub fn read_chunk(dir: &Path, name: &str, offset: u64, max_len: u32) -> Result<Vec<u8>, String> {
    check_name("file name", name)?;
    let path = dir.join(name);
    let scan = scan_file(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let end = scan.complete_len.min(offset.saturating_add(u64::from(max_len.min(MAX_CHUNK))));
    if offset >= end {
        return Ok(Vec::new());
    }
    let mut file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
    let mut bytes = vec![0; (end - offset) as usize];
    file.read_exact(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
