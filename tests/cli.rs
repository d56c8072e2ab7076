//! The command line rejects bad input with a message that names the value and the fix.

mod common;

use common::{data, imsitrace};

fn stderr_of(args: &[&str]) -> (i32, String) {
    let output = imsitrace(args);
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn missing_file_named_in_error() {
    let (code, stderr) = stderr_of(&["analyze", "/nonexistent/trace.pcap"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/trace.pcap"), "{stderr}");
}

#[test]
fn not_a_capture_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.pcap");
    std::fs::write(&path, b"this is not a capture").unwrap();
    let (code, stderr) = stderr_of(&["analyze", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("notes.pcap"), "{stderr}");
}

#[test]
fn invalid_imsi_rejected() {
    let input = data("gtpgen/small.pcap");
    let (code, stderr) = stderr_of(&["analyze", input.to_str().unwrap(), "--track", "12ab", "--pcap-dir", "/tmp"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("\"12ab\""), "{stderr}");
    assert!(stderr.contains("5 to 15 decimal digits"), "{stderr}");
}

#[test]
fn track_without_pcap_dir_rejected() {
    let input = data("gtpgen/small.pcap");
    let (code, stderr) = stderr_of(&["analyze", input.to_str().unwrap(), "--track-all"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--pcap-dir"), "{stderr}");
}

#[test]
fn empty_directory_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = stderr_of(&["analyze", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no .pcap"), "{stderr}");
}

#[test]
fn text_summary_names_counts() {
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap()]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("frames        2378"), "{stdout}");
    assert!(stdout.contains("sessions"), "{stdout}");
}

#[test]
fn truncated_capture_processed_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("gtpgen/small.pcap")).unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &bytes[..100_000]).unwrap();
    let reports = dir.path().join("reports");
    let output = imsitrace(&["analyze", path.to_str().unwrap(), "--json", "--report-dir", reports.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cut.pcap"), "{stderr}");
    assert!(stderr.contains("the frames before the error were processed"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["capture"]["frames"], 490, "frames before the cut, as tshark -r reads them");
    assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 1, "report of the frames read");
}

#[test]
fn unwritable_event_log_fails_run() {
    let input = data("gtpgen/small.pcap");
    let (code, stderr) = stderr_of(&["analyze", input.to_str().unwrap(), "--events", "/dev/full"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("session-event log is incomplete"), "{stderr}");
}

#[test]
fn pcap_dir_that_is_a_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, b"").unwrap();
    let input = data("gtpgen/small.pcap");
    let (code, stderr) = stderr_of(&["analyze", input.to_str().unwrap(), "--track-all", "--pcap-dir", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot create the pcap directory"), "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
}

#[test]
fn negative_timeout_rejected_with_range() {
    let input = data("gtpgen/small.pcap");
    let (code, stderr) = stderr_of(&["analyze", input.to_str().unwrap(), "--idle-timeout", "-1"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid value -1 for --idle-timeout"), "{stderr}");
}

#[test]
fn unseen_tracked_imsi_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("gtpgen/small.pcap");
    let args = ["analyze", input.to_str().unwrap(), "--track", "001010000000009", "--pcap-dir", dir.path().to_str().unwrap()];
    let (code, stderr) = stderr_of(&args);
    assert_eq!(code, 0);
    assert!(stderr.contains("tracked IMSI 001010000000009 does not appear"), "{stderr}");
}
