//! SIGTERM ends the input early and still leaves complete outputs.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{data, read_pcap};

#[test]
fn sigterm_flushes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("gtpgen/vlan.pcap");
    let pcap_dir = dir.path().join("pcap");
    // The same file given many times is merged into one long input (every frame repeated).
    let mut args = vec!["analyze".to_string(), "--json".into(), "--track-all".into(), "--pcap-dir".into(), pcap_dir.display().to_string()];
    args.extend(std::iter::repeat_n(input.display().to_string(), 400));
    let child = Command::new(env!("CARGO_BIN_EXE_imsitrace")).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill failed");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let frames = summary["capture"]["frames"].as_u64().unwrap();
    let one_file = read_pcap(&input).frames.len() as u64;
    // NOTE: on a very slow machine the run could end before the signal; the check below then fails loudly.
    assert_eq!(summary["capture"]["stopped_early"], true, "the run ended before the signal ({frames} frames)");
    assert!(frames < 400 * one_file, "{frames} frames read");
    let mut written = 0;
    for entry in std::fs::read_dir(&pcap_dir).unwrap() {
        written += read_pcap(&entry.unwrap().path()).frames.len() as u64;
    }
    assert_eq!(written, summary["pcap"]["frames_written"].as_u64().unwrap(), "frames in the pcap files");
}
