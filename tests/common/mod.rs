//! Helpers shared by the end-to-end tests: data paths, a minimal pcap reader, running the
//! `imsitrace` binary, and reading the generator's ground truth.
#![allow(dead_code)]

pub mod nodes;
pub mod split;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a file under `tests/data`.
pub fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(relative)
}

/// One frame of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// Packet time, microseconds.
    pub ts_us: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// A classic pcap file: link type and frames.
#[derive(Debug)]
pub struct Pcap {
    /// Link type from the global header.
    pub link_type: u32,
    /// Frames in file order.
    pub frames: Vec<Frame>,
}

/// Reads a classic pcap file (either byte order, microsecond or nanosecond timestamps).
pub fn read_pcap(path: &Path) -> Pcap {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(bytes.len() >= 24, "{} is shorter than a pcap header", path.display());
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let (little, nanos) = match magic {
        0xa1b2c3d4 => (true, false),
        0xa1b23c4d => (true, true),
        0xd4c3b2a1 => (false, false),
        0x4d3cb2a1 => (false, true),
        other => panic!("{} has pcap magic {other:#x}", path.display()),
    };
    let word = |at: usize| {
        let raw: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if little { u32::from_le_bytes(raw) } else { u32::from_be_bytes(raw) }
    };
    let link_type = word(20);
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (secs, frac, caplen, orig_len) = (word(at), word(at + 4), word(at + 8) as usize, word(at + 12));
        let micros = if nanos { u64::from(frac) / 1000 } else { u64::from(frac) };
        assert!(at + 16 + caplen <= bytes.len(), "{} ends inside a record", path.display());
        frames.push(Frame { ts_us: u64::from(secs) * 1_000_000 + micros, orig_len, data: bytes[at + 16..at + 16 + caplen].to_vec() });
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len(), "{} has trailing bytes after the last record", path.display());
    Pcap { link_type, frames }
}

/// Runs the `imsitrace` binary with arguments and returns its output.
pub fn imsitrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imsitrace")).args(args).output().expect("cannot run the imsitrace binary")
}

/// Runs `imsitrace analyze` with every output into `dir`, and returns the JSON summary.
pub fn analyze_all(input: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let pcap_dir = dir.join("pcap");
    let report_dir = dir.join("reports");
    let events = dir.join("events.jsonl");
    let mut args = vec![
        "analyze".to_string(),
        input.display().to_string(),
        "--track-all".into(),
        "--pcap-dir".into(),
        pcap_dir.display().to_string(),
        "--report-dir".into(),
        report_dir.display().to_string(),
        "--events".into(),
        events.display().to_string(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = imsitrace(&refs);
    assert!(output.status.success(), "imsitrace failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the --json summary is not JSON")
}

/// One row of a `<epoch>.imsi` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub epoch: u64,
    pub imsi: String,
    pub granularity: u64,
    pub protocol: String,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub duration_s: u64,
}

/// Reads every report file of a directory, checking the header line and the file name.
pub fn read_reports(dir: &Path) -> Vec<ReportRow> {
    let mut rows = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let epoch: u64 = name.strip_suffix(".imsi").unwrap_or_else(|| panic!("unexpected file {name}")).parse().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("# Timestamp IMSI Granularity Protocol Packets Bytes Flows Duration(sec)"), "{name}: header");
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 8, "{name}: row {line:?}");
            let number = |i: usize| fields[i].parse::<u64>().unwrap_or_else(|_| panic!("{name}: field {i} of {line:?}"));
            assert_eq!(number(0), epoch, "{name}: row timestamp");
            rows.push(ReportRow {
                epoch,
                imsi: fields[1].to_string(),
                granularity: number(2),
                protocol: fields[3].to_string(),
                packets: number(4),
                bytes: number(5),
                flows: number(6),
                duration_s: number(7),
            });
        }
    }
    rows
}

/// Loads a generator truth file.
pub fn truth(name: &str) -> serde_json::Value {
    let path = data(&format!("gtpgen/{name}.truth.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Maps every frame of a capture to its 0-based index, by timestamp and bytes.
pub fn frame_index(pcap: &Pcap) -> BTreeMap<(u64, Vec<u8>), usize> {
    pcap.frames.iter().enumerate().map(|(i, f)| ((f.ts_us, f.data.clone()), i)).collect()
}

/// Returns (file name, contents) of every file in `dir`, sorted by name.
pub fn files_of(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}
