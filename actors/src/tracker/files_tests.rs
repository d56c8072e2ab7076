//! Tests of tracker file naming, scanning, torn-record truncation and chunk reads.

use std::io::Write;

use super::*;
use crate::output::pcap::{PcapFile, PcapOptions};

/// Writes a file of `packets` Ethernet records of 10 bytes, one second apart from `start_s`.
fn write_file(path: &Path, start_s: u64, packets: u64) {
    let mut file = PcapFile::open(path, 1, &PcapOptions::default()).expect("open");
    for i in 0..packets {
        file.write((start_s + i) * 1_000_000 + 7, 10, &[i as u8; 10]).expect("write");
    }
    file.close().expect("close");
}

#[test]
fn file_names_sort_by_time() {
    let early = file_name("probe-a", 1_374_937_800_923_098, 1);
    let late = file_name("probe-a", 1_374_937_801_000_000, 1);
    assert_eq!(early, "probe-a-20130727T151000.923098Z-1.pcap");
    assert!(early < late);
}

#[test]
fn new_file_path_never_collides() {
    let dir = tempfile::tempdir().unwrap();
    let first = new_file_path(dir.path(), "p", 5);
    std::fs::write(&first, b"x").unwrap();
    let second = new_file_path(dir.path(), "p", 5);
    assert_ne!(first, second);
    assert!(second.to_string_lossy().ends_with("-2.pcap"));
}

#[test]
fn node_file_prefix() {
    assert!(is_node_file("probe-a-20130727T151000.923098Z-1.pcap", "probe-a"));
    assert!(!is_node_file("probe-ab-20130727T151000.923098Z-1.pcap", "probe-a-x"));
    assert!(!is_node_file("probe-a.txt", "probe-a"));
}

#[test]
fn names_with_separators_rejected() {
    for name in ["", ".", "..", "a/b", "a\\b", "..x", "x/../y"] {
        let error = check_name("file name", name).expect_err(name);
        assert!(error.contains("invalid file name"), "{error}");
    }
    assert!(check_name("file name", "probe-a-1.pcap").is_ok());
}

#[test]
fn scan_counts_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcap");
    write_file(&path, 100, 3);
    let scan = scan_file(&path).unwrap();
    assert_eq!(scan.packets, 3);
    assert_eq!(scan.bytes, 30);
    assert_eq!(scan.complete_len, 24 + 3 * 26);
    assert_eq!(scan.last_ts_us, Some(102_000_007));
}

#[test]
fn torn_record_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcap");
    write_file(&path, 100, 2);
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[1, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 10, 0, 0, 0, 5, 5]).unwrap();
    drop(file);
    let scan = resume_point(&path).unwrap();
    assert_eq!(scan.packets, 2);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn record is cut off");
}

#[test]
fn torn_header_removes_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcap");
    std::fs::write(&path, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap();
    let scan = resume_point(&path).unwrap();
    assert_eq!(scan.packets, 0);
    assert!(!path.exists());
}

#[test]
fn chunk_stops_at_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.pcap");
    write_file(&path, 100, 2);
    let whole = std::fs::read(&path).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[1, 2, 3]).unwrap();
    drop(file);
    let all = read_chunk(dir.path(), "a.pcap", 0, MAX_CHUNK).unwrap();
    assert_eq!(all, whole);
    let tail = read_chunk(dir.path(), "a.pcap", 70, 4).unwrap();
    assert_eq!(tail, whole[70..74]);
    assert!(read_chunk(dir.path(), "a.pcap", whole.len() as u64, 10).unwrap().is_empty());
}

#[test]
fn chunk_rejects_path_names() {
    let dir = tempfile::tempdir().unwrap();
    let error = read_chunk(dir.path(), "../etc/passwd", 0, 10).expect_err("rejected");
    assert!(error.contains("path separators"), "{error}");
}

#[test]
fn listing_filters_other_nodes() {
    let dir = tempfile::tempdir().unwrap();
    write_file(&dir.path().join("p-20200101T000000.000000Z-1.pcap"), 1, 1);
    write_file(&dir.path().join("q-20200101T000000.000000Z-1.pcap"), 1, 1);
    let files = list_files(dir.path(), "p").unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].len, 24 + 26);
    assert!(list_files(&dir.path().join("missing"), "p").unwrap().is_empty());
}
