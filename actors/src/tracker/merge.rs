//! Merging of the pcap files of one tracker from every probe into one pcap file.
//!
//! Frames are ordered by timestamp; frames with equal timestamps keep the order of their
//! sources (node name, then file name) and of their files. A frame with the same timestamp,
//! original length and bytes as one already written is an exact duplicate, as when two
//! probes capture the same link, and is dropped and counted.

use std::collections::BTreeMap;
use std::io::Write;

use crate::output::pcap::{MAGIC_MICROSECONDS, SNAPLEN, VERSION};

/// Magic of a pcap file with nanosecond timestamps.
const MAGIC_NANOSECONDS: u32 = 0xa1b2_3c4d;

/// Bytes of the pcap file header and of a record header.
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// One pcap file of one probe.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Full name of the probe node.
    pub node: String,
    /// File name on the probe.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// A frame of a parsed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame<'a> {
    ts_us: u64,
    orig_len: u32,
    data: &'a [u8],
}

/// Counts of one probe in a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSummary {
    /// Frames read from the probe's files.
    pub frames: u64,
    /// Of those, exact duplicates of a frame already written.
    pub duplicates: u64,
    /// Timestamp of the first and of the last frame, microseconds since the Unix epoch.
    pub first_us: Option<u64>,
    /// See `first_us`.
    pub last_us: Option<u64>,
    /// Bytes after the last complete record of a file, ignored.
    pub truncated_bytes: u64,
}

/// Result of a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Frames written.
    pub written: u64,
    /// Exact duplicates dropped.
    pub duplicates: u64,
    /// Counts by probe node name.
    pub nodes: BTreeMap<String, NodeSummary>,
}

/// Merges `sources` into one pcap file with microsecond timestamps written to `out`. Fails
/// when a file is not a pcap file or the files have different link types.
pub fn merge_pcaps(sources: &[SourceFile], out: &mut impl Write) -> Result<MergeSummary, String> {
    let mut ordered: Vec<&SourceFile> = sources.iter().collect();
    ordered.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));

    let mut summary = MergeSummary::default();
    let mut link_type = None;
    let mut frames: Vec<(Frame<'_>, &str)> = Vec::new();
    for source in ordered {
        let parsed = parse_pcap(&source.bytes).map_err(|reason| format!("{} from {}: {reason}", source.name, source.node))?;
        match link_type {
            None => link_type = Some(parsed.link_type),
            Some(first) if first != parsed.link_type => {
                return Err(format!("{} from {} has link type {}, but the other files have {first}; merge files of one link type", source.name, source.node, parsed.link_type));
            }
            Some(_) => {}
        }
        let node = summary.nodes.entry(source.node.clone()).or_default();
        node.truncated_bytes += parsed.truncated_bytes;
        frames.extend(parsed.frames.into_iter().map(|frame| (frame, source.node.as_str())));
    }
    // A stable sort keeps the source order among equal timestamps.
    frames.sort_by_key(|(frame, _)| frame.ts_us);

    write_file_header(out, link_type.unwrap_or(1))?;
    let mut same_time: Vec<Frame<'_>> = Vec::new();
    for (frame, node_name) in frames {
        if same_time.first().is_some_and(|first| first.ts_us != frame.ts_us) {
            same_time.clear();
        }
        let node = summary.nodes.entry(node_name.to_owned()).or_default();
        node.frames += 1;
        node.first_us = Some(node.first_us.map_or(frame.ts_us, |first| first.min(frame.ts_us)));
        node.last_us = Some(node.last_us.map_or(frame.ts_us, |last| last.max(frame.ts_us)));
        if same_time.contains(&frame) {
            node.duplicates += 1;
            summary.duplicates += 1;
            continue;
        }
        write_record(out, &frame)?;
        summary.written += 1;
        same_time.push(frame);
    }
    Ok(summary)
}

struct Parsed<'a> {
    link_type: u32,
    frames: Vec<Frame<'a>>,
    truncated_bytes: u64,
}

/// Parses a classic pcap file, little or big endian, with microsecond or nanosecond
/// timestamps. Bytes after the last complete record are counted, not parsed.
fn parse_pcap(bytes: &[u8]) -> Result<Parsed<'_>, String> {
    if bytes.len() < FILE_HEADER {
        return Err(format!("not a pcap file: {} bytes, shorter than the 24-byte header", bytes.len()));
    }
    let magic_le = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let magic_be = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (little, nanos) = match (magic_le, magic_be) {
        (MAGIC_MICROSECONDS, _) => (true, false),
        (MAGIC_NANOSECONDS, _) => (true, true),
        (_, MAGIC_MICROSECONDS) => (false, false),
        (_, MAGIC_NANOSECONDS) => (false, true),
        _ => return Err(format!("not a pcap file: magic {magic_le:#010x}")),
    };
    let read_u32 = |at: usize| {
        let word = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if little { u32::from_le_bytes(word) } else { u32::from_be_bytes(word) }
    };
    let link_type = read_u32(20);
    let mut frames = Vec::new();
    let mut at = FILE_HEADER;
    while at + RECORD_HEADER <= bytes.len() {
        let seconds = u64::from(read_u32(at));
        let fraction = u64::from(read_u32(at + 4));
        let captured = read_u32(at + 8) as usize;
        let orig_len = read_u32(at + 12);
        let start = at + RECORD_HEADER;
        let Some(data) = bytes.get(start..start.saturating_add(captured)) else { break };
        let ts_us = seconds * 1_000_000 + if nanos { fraction / 1_000 } else { fraction };
        frames.push(Frame { ts_us, orig_len, data });
        at = start + captured;
    }
    Ok(Parsed { link_type, frames, truncated_bytes: (bytes.len() - at) as u64 })
}

fn write_file_header(out: &mut impl Write, link_type: u32) -> Result<(), String> {
    let mut header = Vec::with_capacity(FILE_HEADER);
    header.extend_from_slice(&MAGIC_MICROSECONDS.to_le_bytes());
    header.extend_from_slice(&VERSION.0.to_le_bytes());
    header.extend_from_slice(&VERSION.1.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&SNAPLEN.to_le_bytes());
    header.extend_from_slice(&link_type.to_le_bytes());
    out.write_all(&header).map_err(|error| format!("cannot write the merged pcap: {error}"))
}

fn write_record(out: &mut impl Write, frame: &Frame<'_>) -> Result<(), String> {
    let seconds = u32::try_from(frame.ts_us / 1_000_000).unwrap_or(u32::MAX);
    let micros = (frame.ts_us % 1_000_000) as u32;
    let captured = u32::try_from(frame.data.len()).unwrap_or(u32::MAX);
    let mut header = [0u8; RECORD_HEADER];
    header[0..4].copy_from_slice(&seconds.to_le_bytes());
    header[4..8].copy_from_slice(&micros.to_le_bytes());
    header[8..12].copy_from_slice(&captured.to_le_bytes());
    header[12..16].copy_from_slice(&frame.orig_len.to_le_bytes());
    out.write_all(&header).and_then(|()| out.write_all(frame.data)).map_err(|error| format!("cannot write the merged pcap: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a little-endian microsecond pcap file of `(ts_us, bytes)` records.
    fn pcap(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        write_file_header(&mut out, 1).unwrap();
        for &(ts_us, data) in records {
            write_record(&mut out, &Frame { ts_us, orig_len: data.len() as u32, data }).unwrap();
        }
        out
    }

    fn source(node: &str, name: &str, records: &[(u64, &[u8])]) -> SourceFile {
        SourceFile { node: node.into(), name: name.into(), bytes: pcap(records) }
    }

    fn timestamps_and_bytes(file: &[u8]) -> Vec<(u64, Vec<u8>)> {
        parse_pcap(file).unwrap().frames.iter().map(|frame| (frame.ts_us, frame.data.to_vec())).collect()
    }

    #[test]
    fn merge_orders_and_drops_duplicate() {
        // probe-b is given first but sorts after probe-a among equal timestamps.
        let b = source("probe-b", "b-1.pcap", &[(1_000, b"b1"), (2_000, b"shared"), (3_000, b"b3")]);
        let a = source("probe-a", "a-1.pcap", &[(2_000, b"a2"), (2_000, b"shared"), (4_000, b"a4")]);
        let mut out = Vec::new();
        let summary = merge_pcaps(&[b, a], &mut out).unwrap();

        let expected: Vec<(u64, Vec<u8>)> = vec![
            (1_000, b"b1".to_vec()),
            (2_000, b"a2".to_vec()),
            (2_000, b"shared".to_vec()),
            (3_000, b"b3".to_vec()),
            (4_000, b"a4".to_vec()),
        ];
        assert_eq!(timestamps_and_bytes(&out), expected);
        assert_eq!(summary.written, 5);
        assert_eq!(summary.duplicates, 1);
        assert_eq!(summary.nodes["probe-a"].frames, 3);
        assert_eq!(summary.nodes["probe-b"].frames, 3);
        assert_eq!(summary.nodes["probe-b"].duplicates, 1, "probe-b's copy of the shared frame comes second");
        assert_eq!(summary.nodes["probe-a"].first_us, Some(2_000));
        assert_eq!(summary.nodes["probe-b"].last_us, Some(3_000));
    }

    #[test]
    fn merge_keeps_same_time_different_bytes() {
        let a = source("probe-a", "a.pcap", &[(5, b"x")]);
        let b = source("probe-b", "b.pcap", &[(5, b"y")]);
        let mut out = Vec::new();
        let summary = merge_pcaps(&[a, b], &mut out).unwrap();
        assert_eq!(summary.written, 2);
        assert_eq!(summary.duplicates, 0);
    }

    #[test]
    fn merge_ignores_truncated_record() {
        let mut bytes = pcap(&[(7, b"whole")]);
        bytes.extend_from_slice(&[1, 2, 3]);
        let sources = [SourceFile { node: "p".into(), name: "f.pcap".into(), bytes }];
        let mut out = Vec::new();
        let summary = merge_pcaps(&sources, &mut out).unwrap();
        assert_eq!(summary.written, 1);
        assert_eq!(summary.nodes["p"].truncated_bytes, 3);
    }

    #[test]
    fn merge_rejects_non_pcap() {
        let sources = [SourceFile { node: "p".into(), name: "f.pcap".into(), bytes: vec![0; 30] }];
        let error = merge_pcaps(&sources, &mut Vec::new()).unwrap_err();
        assert!(error.contains("f.pcap from p: not a pcap file"), "{error}");
    }

    #[test]
    fn merge_rejects_mixed_link_types() {
        let a = source("a", "a.pcap", &[(1, b"x")]);
        let mut b = source("b", "b.pcap", &[(2, b"y")]);
        b.bytes[20] = 113;
        let error = merge_pcaps(&[a, b], &mut Vec::new()).unwrap_err();
        assert!(error.contains("link type 113"), "{error}");
    }

    #[test]
    fn merge_reads_nanosecond_big_endian() {
        let mut file = Vec::new();
        file.extend_from_slice(&MAGIC_NANOSECONDS.to_be_bytes());
        file.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1]);
        file.extend_from_slice(&3u32.to_be_bytes());
        file.extend_from_slice(&5_000u32.to_be_bytes());
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&1u32.to_be_bytes());
        file.push(9);
        let frames = timestamps_and_bytes(&file);
        assert_eq!(frames, [(3_000_005, vec![9])]);
    }
}
