use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::control::Digits;

/// LINKTYPE_RAW: the frame starts with the IP header.
const RAW_IP: u32 = 101;
/// LINKTYPE_ETHERNET.
const ETHERNET: u32 = 1;

/// Builds an IPv4 UDP packet 10.0.0.1:1000 -> 192.0.2.1:53 with `payload_len` zero bytes
/// of payload. The IPv4 checksum is left 0, which tshark does not check by default.
#[rustfmt::skip]
fn ipv4_udp(payload_len: usize) -> Vec<u8> {
    let total = 28 + payload_len;
    let mut packet = vec![
        0x45, 0x00, // version 4, IHL 5; DSCP/ECN
        (total >> 8) as u8, total as u8, // total length
        0x00, 0x01, 0x00, 0x00, // identification; flags, fragment offset
        0x40, 0x11, 0x00, 0x00, // TTL 64, protocol UDP; header checksum
        10, 0, 0, 1, // source
        192, 0, 2, 1, // destination
        0x03, 0xe8, 0x00, 0x35, // source port 1000, destination port 53
        ((total - 20) >> 8) as u8, (total - 20) as u8, 0x00, 0x00, // UDP length; checksum
    ];
    packet.resize(total, 0);
    packet
}

/// One record as read back: seconds, microseconds, captured length, original length.
type Record = (u32, u32, u32, u32);

/// Parses a whole classic pcap file written by this module. Panics unless every byte
/// belongs to the header or a complete record.
fn read_records(path: &Path) -> (u32, Vec<Record>) {
    let bytes = fs::read(path).expect("pcap file is readable");
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    assert_eq!(word(0), MAGIC_MICROSECONDS);
    let link_type = word(20);
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let record = (word(at), word(at + 4), word(at + 8), word(at + 12));
        at += 16 + record.2 as usize;
        records.push(record);
    }
    assert_eq!(at, bytes.len(), "file ends inside a record");
    (link_type, records)
}

/// Runs `tshark -r FILE -T fields -e ...` and returns one line per frame, or `None`
/// (with a printed message) when tshark is not installed.
fn tshark_fields(path: &Path, fields: &[&str]) -> Option<Vec<String>> {
    let mut command = Command::new("tshark");
    command
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=,"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            println!(
                "tshark not found: skipping the tshark check of {}",
                path.display()
            );
            return None;
        }
        Err(error) => panic!("failed to run tshark: {error}"),
    };
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("tshark prints UTF-8");
    Some(stdout.lines().map(str::to_owned).collect())
}

fn imsi(text: &str) -> Digits {
    Digits::from_ascii(text.as_bytes()).expect("test IMSI is digits")
}

#[test]
fn tshark_reads_written_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("one.pcap");
    let mut file = PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect("open");
    file.write(1_374_938_100_000_001, 28, &ipv4_udp(0))
        .expect("write");
    file.write(1_374_938_100_500_000, 128, &ipv4_udp(100))
        .expect("write");
    file.write(1_374_938_101_000_000, 1500, &ipv4_udp(10))
        .expect("write");
    assert_eq!(file.close().expect("close"), 24 + 3 * 16 + 28 + 128 + 38);

    let Some(lines) = tshark_fields(
        &path,
        &[
            "frame.number",
            "frame.time_epoch",
            "frame.len",
            "frame.cap_len",
        ],
    ) else {
        return;
    };
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("1,1374938100.000001"), "{}", lines[0]);
    assert!(lines[1].starts_with("2,1374938100.5"), "{}", lines[1]);
    assert!(lines[2].starts_with("3,1374938101.0"), "{}", lines[2]);
    assert!(lines[2].ends_with(",1500,38"), "{}", lines[2]);
}

#[test]
fn header_fields_exact() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("header.pcap");
    PcapFile::open(&path, ETHERNET, &PcapOptions::default())
        .expect("open")
        .close()
        .expect("close");
    let bytes = fs::read(&path).expect("read");
    assert_eq!(
        bytes,
        [
            0xd4, 0xc3, 0xb2, 0xa1, // magic a1b2c3d4, little-endian
            0x02, 0x00, 0x04, 0x00, // version 2.4
            0, 0, 0, 0, // time zone offset
            0, 0, 0, 0, // timestamp accuracy
            0x00, 0x00, 0x04, 0x00, // snapshot length 262144
            0x01, 0x00, 0x00, 0x00, // link type 1, Ethernet
        ]
    );
}

#[test]
fn long_packet_cut_to_snaplen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("long.pcap");
    let mut file = PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect("open");
    file.write(1_000_000, 0, &vec![0u8; 300_000])
        .expect("write");
    file.close().expect("close");
    let (_, records) = read_records(&path);
    assert_eq!(records, vec![(1, 0, SNAPLEN, 300_000)]);
}

#[test]
fn reopen_appends_without_header() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("append.pcap");
    let options = PcapOptions::default();
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    file.write(2_000_000, 28, &ipv4_udp(0)).expect("write");
    file.close().expect("close");
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("reopen");
    file.write(3_000_000, 28, &ipv4_udp(0)).expect("write");
    file.close().expect("close");

    let (link_type, records) = read_records(&path);
    assert_eq!(link_type, RAW_IP);
    let seconds: Vec<u32> = records.iter().map(|record| record.0).collect();
    assert_eq!(seconds, vec![1, 2, 3]);
}

#[test]
fn partial_record_cut_on_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("crashed.pcap");
    let options = PcapOptions::default();
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    file.close().expect("close");
    // A record header announcing 28 bytes, followed by only 4 of them.
    let mut partial = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("append");
    partial
        .write_all(&[
            2, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28, 0, 0, 0, 0x45, 0, 0, 28,
        ])
        .expect("write");
    drop(partial);

    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open after crash");
    file.write(3_000_000, 28, &ipv4_udp(0)).expect("write");
    file.close().expect("close");
    let (_, records) = read_records(&path);
    let seconds: Vec<u32> = records.iter().map(|record| record.0).collect();
    assert_eq!(seconds, vec![1, 3]);
}

#[test]
fn partial_header_rewritten() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("short.pcap");
    fs::write(&path, &file_header(RAW_IP)[..10]).expect("write partial header");
    let mut file = PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    file.close().expect("close");
    let (_, records) = read_records(&path);
    assert_eq!(records.len(), 1);
}

#[test]
fn foreign_file_rejected_untouched() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.pcap");
    let text = b"these are notes, not packets at all\n";
    fs::write(&path, text).expect("write");
    let error = PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect_err("foreign file");
    assert!(
        matches!(error, PcapError::UnsupportedFile { .. }),
        "{error}"
    );
    assert_eq!(fs::read(&path).expect("read"), text);

    fs::write(&path, b"short").expect("write");
    let error =
        PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect_err("short foreign file");
    assert!(
        matches!(error, PcapError::UnsupportedFile { .. }),
        "{error}"
    );
}

#[test]
fn file_link_type_mismatch() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ethernet.pcap");
    PcapFile::open(&path, ETHERNET, &PcapOptions::default())
        .expect("open")
        .close()
        .expect("close");
    let error =
        PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect_err("other link type");
    match error {
        PcapError::LinkTypeMismatch {
            file, requested, ..
        } => {
            assert_eq!(file, ETHERNET);
            assert_eq!(requested, RAW_IP);
        }
        other => panic!("expected a link type mismatch, got {other}"),
    }
}

#[test]
fn zero_interval_flushes_every_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("eager.pcap");
    let options = PcapOptions {
        flush_interval: Duration::ZERO,
        ..PcapOptions::default()
    };
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    assert_eq!(fs::metadata(&path).expect("metadata").len(), 24 + 16 + 28);
}

#[test]
fn buffer_stays_in_memory_until_due() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("lazy.pcap");
    let options = PcapOptions {
        flush_interval: Duration::from_secs(3600),
        ..PcapOptions::default()
    };
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    assert_eq!(fs::metadata(&path).expect("metadata").len(), 0);
    file.flush_if_due(Instant::now()).expect("not due");
    assert_eq!(fs::metadata(&path).expect("metadata").len(), 0);
    file.flush_if_due(Instant::now() + Duration::from_secs(3600))
        .expect("due");
    assert_eq!(fs::metadata(&path).expect("metadata").len(), 24 + 16 + 28);
}

#[test]
fn buffer_written_when_full() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("full.pcap");
    let options = PcapOptions {
        buffer_bytes: 100,
        flush_interval: Duration::from_secs(3600),
        max_open: 1,
        replace_existing: false,
    };
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    assert_eq!(fs::metadata(&path).expect("metadata").len(), 0);
    file.write(2_000_000, 28, &ipv4_udp(0)).expect("write");
    assert_eq!(
        fs::metadata(&path).expect("metadata").len(),
        24 + 2 * (16 + 28)
    );
}

#[test]
fn killed_writer_leaves_readable_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("killed.pcap");
    let options = PcapOptions {
        flush_interval: Duration::from_secs(3600),
        ..PcapOptions::default()
    };
    let mut file = PcapFile::open(&path, RAW_IP, &options).expect("open");
    file.write(1_000_000, 28, &ipv4_udp(0)).expect("write");
    file.write(2_000_000, 28, &ipv4_udp(0)).expect("write");
    file.flush().expect("flush");
    file.write(3_000_000, 28, &ipv4_udp(0)).expect("write");
    // A killed process runs no destructor: the third packet never reaches the file.
    std::mem::forget(file);

    let (_, records) = read_records(&path);
    assert_eq!(records.len(), 2);
    if let Some(lines) = tshark_fields(&path, &["frame.number"]) {
        assert_eq!(lines, vec!["1", "2"]);
    }
}

#[test]
fn set_writes_one_file_per_imsi() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut set = PcapWriterSet::new(dir.path().join("pcap"), PcapOptions::default()).expect("set");
    set.write(imsi("001010000000001"), RAW_IP, 1_000_000, 28, &ipv4_udp(0))
        .expect("write");
    set.write(imsi("001010000000002"), RAW_IP, 1_000_000, 28, &ipv4_udp(0))
        .expect("write");
    set.write(imsi("001010000000001"), RAW_IP, 2_000_000, 28, &ipv4_udp(0))
        .expect("write");
    set.close_all().expect("close");
    assert_eq!(set.open_files(), 0);

    let first = dir.path().join("pcap").join("001010000000001.pcap");
    assert_eq!(set.path_of(imsi("001010000000001")), first);
    assert_eq!(read_records(&first).1.len(), 2);
    let second = dir.path().join("pcap").join("001010000000002.pcap");
    assert_eq!(read_records(&second).1.len(), 1);
    if let Some(lines) = tshark_fields(&first, &["frame.number"]) {
        assert_eq!(lines, vec!["1", "2"]);
    }
}

#[test]
fn set_lru_reopens_in_append_mode() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = PcapOptions {
        max_open: 2,
        ..PcapOptions::default()
    };
    let mut set = PcapWriterSet::new(dir.path(), options).expect("set");
    let subscribers = [
        imsi("001010000000001"),
        imsi("001010000000002"),
        imsi("001010000000003"),
    ];
    for second in 1..=10u64 {
        for subscriber in subscribers {
            set.write(subscriber, RAW_IP, second * 1_000_000, 28, &ipv4_udp(0))
                .expect("write");
            assert!(set.open_files() <= 2);
        }
    }
    set.close_all().expect("close");

    let stats = set.stats();
    assert_eq!(stats.opened, 3);
    assert!(stats.evicted > 0);
    assert!(stats.reopened > 0);
    assert!(stats.reopened <= stats.evicted);
    assert_eq!(stats.packets, 30);
    for subscriber in subscribers {
        let (_, records) = read_records(&set.path_of(subscriber));
        let seconds: Vec<u32> = records.iter().map(|record| record.0).collect();
        assert_eq!(seconds, (1..=10).collect::<Vec<u32>>());
    }
    if let Some(lines) = tshark_fields(&set.path_of(subscribers[2]), &["frame.number"]) {
        assert_eq!(lines.len(), 10);
    }
}

#[test]
fn set_keeps_least_recently_written_closed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = PcapOptions {
        max_open: 2,
        ..PcapOptions::default()
    };
    let mut set = PcapWriterSet::new(dir.path(), options).expect("set");
    let (a, b, c) = (
        imsi("001010000000001"),
        imsi("001010000000002"),
        imsi("001010000000003"),
    );
    set.write(a, RAW_IP, 1_000_000, 28, &ipv4_udp(0))
        .expect("write");
    set.write(b, RAW_IP, 1_000_000, 28, &ipv4_udp(0))
        .expect("write");
    set.write(a, RAW_IP, 2_000_000, 28, &ipv4_udp(0))
        .expect("write");
    // b is now the least recently written, so opening c closes b and keeps a.
    set.write(c, RAW_IP, 2_000_000, 28, &ipv4_udp(0))
        .expect("write");
    assert_eq!(read_records(&set.path_of(b)).1.len(), 1);
    assert_eq!(fs::metadata(set.path_of(a)).expect("metadata").len(), 0);
}

#[test]
fn set_link_type_mismatch() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut set = PcapWriterSet::new(dir.path(), PcapOptions::default()).expect("set");
    let subscriber = imsi("001010000000001");
    set.write(subscriber, ETHERNET, 1_000_000, 60, &[0u8; 60])
        .expect("write");
    let error = set
        .write(subscriber, RAW_IP, 2_000_000, 28, &ipv4_udp(0))
        .expect_err("mixed link types");
    assert!(
        matches!(
            error,
            PcapError::LinkTypeMismatch {
                file: ETHERNET,
                requested: RAW_IP,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("001010000000001.pcap"),
        "{error}"
    );
}

#[test]
fn io_error_names_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("missing").join("x.pcap");
    let error =
        PcapFile::open(&path, RAW_IP, &PcapOptions::default()).expect_err("missing directory");
    let message = error.to_string();
    assert!(message.starts_with("failed to open "), "{message}");
    assert!(message.contains("missing/x.pcap"), "{message}");
}

#[test]
fn set_replaces_file_of_earlier_run() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let imsi = Digits::from_ascii(b"001010000000001").expect("digits");
    let options = PcapOptions { replace_existing: true, ..PcapOptions::default() };
    for _ in 0..2 {
        let mut set = PcapWriterSet::new(dir.path(), options).expect("set");
        set.write(imsi, RAW_IP, 1_000_000, 28, &ipv4_udp(0)).expect("write");
        set.close_all().expect("close");
    }
    let len = fs::metadata(dir.path().join("001010000000001.pcap")).expect("metadata").len();
    assert_eq!(len, 24 + 16 + 28, "one header and one record");
}
