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
