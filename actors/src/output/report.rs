//! Report files: one text file per bucket, `<outdir>/<epoch>.imsi`, with one line per
//! subscriber and protocol:
//!
//! ```text
//! # Timestamp IMSI Granularity Protocol Packets Bytes Flows Duration(sec)
//! 1374938100 001010000000001 300 HTTP 393 283553 13 114
//! ```
//!
//! Timestamp is the bucket start in seconds since the epoch and Granularity the bucket
//! length in seconds. Bytes counts inner IP bytes. Duration is the sum over the flows of
//! (last packet time - first packet time), in whole seconds rounded down. Lines are sorted
//! by IMSI, then by protocol name.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::bucket::{BucketDelta, BucketValues, BUCKET_SECONDS};
use crate::flow::classify::AppProtocol;
use crate::output::FileError;

/// First line of every report file.
pub const REPORT_HEADER: &str =
    "# Timestamp IMSI Granularity Protocol Packets Bytes Flows Duration(sec)";

/// One line of a report before it is written: a subscriber, a protocol name and the
/// counters of the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// IMSI digits.
    pub imsi: String,
    /// Printed protocol name, e.g. `HTTP`, `TLS.Facebook`, `Unknown`.
    pub protocol: String,
    /// Counters; `duration_us` is in microseconds and printed in whole seconds.
    pub values: BucketValues,
}

/// One line of a report file as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    /// Bucket start, seconds since the epoch.
    pub epoch: u64,
    /// IMSI digits.
    pub imsi: String,
    /// Bucket length, seconds.
    pub granularity: u64,
    /// Protocol name.
    pub protocol: String,
    /// Packets.
    pub packets: u64,
    /// Inner IP bytes.
    pub bytes: u64,
    /// Flows.
    pub flows: u64,
    /// Summed flow duration, whole seconds.
    pub duration_s: u64,
}

/// Returns the path of the report of the bucket starting at `epoch`.
pub fn report_path(outdir: &Path, epoch: u64) -> PathBuf {
    outdir.join(format!("{epoch}.imsi"))
}

/// Sums the deltas of one bucket into report rows, one per IMSI and protocol name, sorted
/// by IMSI then protocol name. `protocol_name` prints a protocol (the classifier's `name`).
/// Protocols with the same printed name share a row. The deltas' `epoch` is not read, so
/// pass only the deltas of one bucket.
pub fn report_rows<N: AsRef<str>>(
    deltas: &[BucketDelta],
    mut protocol_name: impl FnMut(AppProtocol) -> N,
) -> Vec<ReportRow> {
    let mut rows: BTreeMap<(String, String), BucketValues> = BTreeMap::new();
    for delta in deltas {
        let key = (
            delta.imsi.to_string(),
            protocol_name(delta.protocol).as_ref().to_owned(),
        );
        rows.entry(key).or_default().add(&delta.values());
    }
    rows.into_iter()
        .map(|((imsi, protocol), values)| ReportRow {
            imsi,
            protocol,
            values,
        })
        .collect()
}

/// Formats a report: the header, then one line per row sorted by IMSI then protocol name.
/// Whitespace in a protocol name is printed as `_` so every line keeps eight fields, and an
/// empty name is printed as `Unknown`.
pub fn format_report(epoch: u64, rows: &[ReportRow]) -> String {
    let mut sorted: Vec<&ReportRow> = rows.iter().collect();
    sorted.sort_by(|a, b| (&a.imsi, &a.protocol).cmp(&(&b.imsi, &b.protocol)));
    let mut text = String::with_capacity(64 * (rows.len() + 1));
    text.push_str(REPORT_HEADER);
    text.push('\n');
    for row in sorted {
        let values = &row.values;
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "{epoch} {} {BUCKET_SECONDS} {} {} {} {} {}",
            row.imsi,
            printable_protocol(&row.protocol),
            values.packets,
            values.bytes,
            values.flows,
            values.duration_us / 1_000_000,
        );
    }
    text
}

fn printable_protocol(name: &str) -> String {
    if name.is_empty() {
        return "Unknown".to_owned();
    }
    name.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// Writes the report of the bucket starting at `epoch` to `<outdir>/<epoch>.imsi` and
/// returns its path. The text goes to a temporary file in `outdir` that is then renamed,
/// so a reader sees either the previous file or the complete new one.
pub fn write_report(outdir: &Path, epoch: u64, rows: &[ReportRow]) -> Result<PathBuf, FileError> {
    let path = report_path(outdir, epoch);
    let temporary = outdir.join(format!(".{epoch}.imsi.{}.tmp", std::process::id()));
    let text = format_report(epoch, rows);
    let written = write_synced(&temporary, text.as_bytes())
        .and_then(|()| fs::rename(&temporary, &path).map_err(FileError::on("rename", &temporary)));
    if written.is_err() {
        // Best effort: the first error is the one worth reporting.
        let _ = fs::remove_file(&temporary);
    }
    written.map(|()| path)
}

/// Writes the report of every bucket in `buckets`, each given as its start and its rows
/// (what `Microcloud::bucket_rows` returns), and returns the number of files written.
/// Stops at the first error.
pub fn write_reports<N: AsRef<str>>(
    outdir: &Path,
    buckets: &[(u64, Vec<BucketDelta>)],
    mut protocol_name: impl FnMut(AppProtocol) -> N,
) -> Result<usize, FileError> {
    for (epoch, deltas) in buckets {
        let rows = report_rows(deltas, &mut protocol_name);
        write_report(outdir, *epoch, &rows)?;
    }
    Ok(buckets.len())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut file = File::create(path).map_err(FileError::on("create", path))?;
    file.write_all(bytes)
        .map_err(FileError::on("write", path))?;
    file.sync_all().map_err(FileError::on("sync", path))
}

/// Error parsing the text of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParseError {
    /// Line number, counted from 1.
    pub line: usize,
    /// Description of the problem, e.g. `expected 8 fields, found 7`.
    pub reason: String,
}

impl fmt::Display for ReportParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ReportParseError {}

/// Error reading a report file.
#[derive(Debug)]
pub enum ReportReadError {
    /// The file could not be read.
    Io(FileError),
    /// The file is not a valid report.
    Parse {
        /// The file.
        path: PathBuf,
        /// The first invalid line.
        error: ReportParseError,
    },
}

impl fmt::Display for ReportReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportReadError::Io(error) => error.fmt(f),
            ReportReadError::Parse { path, error } => {
                write!(f, "invalid report {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for ReportReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportReadError::Io(error) => Some(error),
            ReportReadError::Parse { error, .. } => Some(error),
        }
    }
}

/// Reads and parses a report file.
pub fn read_report(path: &Path) -> Result<Vec<ReportLine>, ReportReadError> {
    let text = fs::read_to_string(path)
        .map_err(|source| ReportReadError::Io(FileError::on("read", path)(source)))?;
    parse_report(&text).map_err(|error| ReportReadError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

/// Parses the text of a report: the header line, then lines of eight fields.
/// Empty lines are skipped.
pub fn parse_report(text: &str) -> Result<Vec<ReportLine>, ReportParseError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim_end() == REPORT_HEADER => {}
        _ => {
            return Err(ReportParseError {
                line: 1,
                reason: format!("expected the header `{REPORT_HEADER}`"),
            })
        }
    }
    let mut parsed = Vec::new();
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let report_line = parse_line(line).map_err(|reason| ReportParseError {
            line: index + 1,
            reason,
        })?;
        parsed.push(report_line);
    }
    Ok(parsed)
}

fn parse_line(line: &str) -> Result<ReportLine, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [epoch, imsi, granularity, protocol, packets, bytes, flows, duration] = fields[..] else {
        return Err(format!("expected 8 fields, found {}", fields.len()));
    };
    if imsi.is_empty() || !imsi.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("IMSI `{imsi}` is not a string of digits"));
    }
    Ok(ReportLine {
        epoch: parse_number("Timestamp", epoch)?,
        imsi: imsi.to_owned(),
        granularity: parse_number("Granularity", granularity)?,
        protocol: protocol.to_owned(),
        packets: parse_number("Packets", packets)?,
        bytes: parse_number("Bytes", bytes)?,
        flows: parse_number("Flows", flows)?,
        duration_s: parse_number("Duration", duration)?,
    })
}

fn parse_number(column: &str, field: &str) -> Result<u64, String> {
    field
        .parse()
        .map_err(|_| format!("{column} `{field}` is not an unsigned integer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::control::Digits;

    const HTTP: AppProtocol = AppProtocol { master: 7, app: 7 };
    const DNS: AppProtocol = AppProtocol { master: 5, app: 5 };
    const FACEBOOK: AppProtocol = AppProtocol {
        master: 91,
        app: 119,
    };
    const FACEBOOK_OVER_HTTP: AppProtocol = AppProtocol {
        master: 7,
        app: 119,
    };

    fn name(protocol: AppProtocol) -> &'static str {
        match protocol {
            HTTP => "HTTP",
            DNS => "DNS",
            FACEBOOK | FACEBOOK_OVER_HTTP => "Facebook",
            _ => "Unknown",
        }
    }

    fn delta(imsi: &str, protocol: AppProtocol, packets: u64, duration_us: u64) -> BucketDelta {
        BucketDelta {
            epoch: 1_374_938_100,
            imsi: Digits::from_ascii(imsi.as_bytes()).expect("test IMSI is digits"),
            protocol,
            packets,
            bytes: packets * 700,
            flows: 1,
            duration_us,
        }
    }

    fn sample_rows() -> Vec<ReportRow> {
        let deltas = [
            delta("001010000000002", DNS, 2, 10_000),
            delta("001010000000001", HTTP, 393, 114_999_999),
            delta("001010000000001", FACEBOOK, 10, 1_500_000),
            delta("001010000000001", FACEBOOK_OVER_HTTP, 5, 1_500_000),
            delta("001010000000001", DNS, 4, 20_000),
        ];
        report_rows(&deltas, name)
    }

    #[test]
    fn format_matches_reference_layout() {
        let text = format_report(1_374_938_100, &sample_rows());
        assert_eq!(
            text,
            "# Timestamp IMSI Granularity Protocol Packets Bytes Flows Duration(sec)\n\
             1374938100 001010000000001 300 DNS 4 2800 1 0\n\
             1374938100 001010000000001 300 Facebook 15 10500 2 3\n\
             1374938100 001010000000001 300 HTTP 393 275100 1 114\n\
             1374938100 001010000000002 300 DNS 2 1400 1 0\n"
        );
    }

    #[test]
    fn rows_sorted_whatever_input_order() {
        let mut rows = sample_rows();
        rows.reverse();
        assert_eq!(format_report(1, &rows), format_report(1, &sample_rows()));
    }

    #[test]
    fn whitespace_in_protocol_name_replaced() {
        let rows = [ReportRow {
            imsi: "001010000000001".to_owned(),
            protocol: "Apple iCloud".to_owned(),
            values: BucketValues::default(),
        }];
        let text = format_report(300, &rows);
        assert!(
            text.ends_with("300 001010000000001 300 Apple_iCloud 0 0 0 0\n"),
            "{text}"
        );
    }

    #[test]
    fn write_then_read_round_trip() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = write_report(dir.path(), 1_374_938_100, &sample_rows()).expect("write report");
        assert_eq!(path, dir.path().join("1374938100.imsi"));
        let lines = read_report(&path).expect("read report");
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2],
            ReportLine {
                epoch: 1_374_938_100,
                imsi: "001010000000001".to_owned(),
                granularity: 300,
                protocol: "HTTP".to_owned(),
                packets: 393,
                bytes: 275_100,
                flows: 1,
                duration_s: 114,
            }
        );
        // Only the report is left in the directory: the temporary file was renamed.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec!["1374938100.imsi"]);
    }

    #[test]
    fn rewrite_replaces_whole_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        write_report(dir.path(), 600, &sample_rows()).expect("first write");
        let path = write_report(dir.path(), 600, &sample_rows()[..1]).expect("second write");
        assert_eq!(read_report(&path).expect("read").len(), 1);
    }

    #[test]
    fn write_into_missing_directory_fails_with_path() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let missing = dir.path().join("missing");
        let error = write_report(&missing, 600, &sample_rows()).expect_err("missing directory");
        assert_eq!(error.operation, "create");
        assert!(error.path.starts_with(&missing), "{error}");
    }

    #[test]
    fn parse_rejects_bad_lines() {
        let header = format!("{REPORT_HEADER}\n");
        let cases = [
            ("1 001 300 HTTP 1 2 3\n", "expected 8 fields, found 7"),
            (
                "1 00x1 300 HTTP 1 2 3 4\n",
                "IMSI `00x1` is not a string of digits",
            ),
            (
                "1 001 300 HTTP 1 -2 3 4\n",
                "Bytes `-2` is not an unsigned integer",
            ),
        ];
        for (line, reason) in cases {
            let error = parse_report(&format!("{header}{line}")).expect_err(line);
            assert_eq!(
                error,
                ReportParseError {
                    line: 2,
                    reason: reason.to_owned()
                }
            );
        }
    }

    #[test]
    fn write_reports_one_file_per_bucket() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let buckets = vec![
            (1_374_938_100, vec![delta("001010000000001", HTTP, 3, 0)]),
            (
                1_374_938_400,
                vec![
                    delta("001010000000001", DNS, 1, 0),
                    delta("001010000000002", DNS, 1, 0),
                ],
            ),
        ];
        assert_eq!(
            write_reports(dir.path(), &buckets, name).expect("write reports"),
            2
        );
        let first = read_report(&report_path(dir.path(), 1_374_938_100)).expect("first report");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].protocol, "HTTP");
        let second = read_report(&report_path(dir.path(), 1_374_938_400)).expect("second report");
        assert_eq!(second.len(), 2);
        assert!(second.iter().all(|line| line.epoch == 1_374_938_400));
    }

    #[test]
    fn parse_requires_header() {
        let error = parse_report("1 001 300 HTTP 1 2 3 4\n").expect_err("no header");
        assert_eq!(error.line, 1);
    }

    #[test]
    fn parse_empty_report() {
        assert_eq!(
            parse_report(&format!("{REPORT_HEADER}\n")).expect("header only"),
            vec![]
        );
    }
}
