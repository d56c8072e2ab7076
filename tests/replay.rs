//! Paced replay (`--replay-speed`): a paced run writes exactly the outputs of an unpaced
//! run, takes at least the capture's packet-time span divided by the speed, and still ends
//! promptly with complete outputs on SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{analyze_all, data, files_of, imsitrace, read_pcap, Frame, Pcap};

/// Deadline of every wait for the binary; far above what any step takes.
const DEADLINE: Duration = Duration::from_secs(30);

/// Writes a classic little-endian pcap file with microsecond timestamps.
fn write_pcap(path: &Path, link_type: u32, frames: &[Frame]) {
    let mut bytes = Vec::new();
    // Magic, version 2.4 (two u16 fields, 0x0004_0002 in one little-endian word), time
    // zone, timestamp accuracy, snapshot length and link type.
    for word in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 65_535, link_type] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for frame in frames {
        let seconds = (frame.ts_us / 1_000_000) as u32;
        let micros = (frame.ts_us % 1_000_000) as u32;
        for word in [seconds, micros, frame.data.len() as u32, frame.orig_len] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(&frame.data);
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Returns (file name, bytes) of every file in `dir`, sorted by name.
fn binary_files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Asserts that two output directories of `analyze_all` hold the same reports, events and
/// per-IMSI pcap files, byte for byte.
fn assert_same_outputs(expected: &Path, actual: &Path) {
    assert_eq!(files_of(&actual.join("reports")), files_of(&expected.join("reports")), "reports differ");
    let events = |dir: &Path| std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert_eq!(events(actual), events(expected), "event logs differ");
    let pcaps_actual = binary_files_of(&actual.join("pcap"));
    let pcaps_expected = binary_files_of(&expected.join("pcap"));
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&pcaps_actual), names(&pcaps_expected), "per-IMSI pcap file names differ");
    for ((name, actual), (_, expected)) in pcaps_actual.iter().zip(&pcaps_expected) {
        assert!(actual == expected, "{name} differs: {} bytes, expected {} bytes", actual.len(), expected.len());
    }
}

/// Returns the paced duration of a capture: its packet-time span divided by `speed`.
fn paced_span(frames: &[Frame], speed: f64) -> Duration {
    let first = frames.first().expect("a frame").ts_us;
    let last = frames.iter().map(|f| f.ts_us).max().expect("a frame");
    Duration::from_secs_f64((last - first) as f64 / 1e6 / speed)
}

/// Runs `analyze_all` on `inputs` into `dir` and returns the summary and the wall-clock
/// time of the whole process.
fn timed_analyze(inputs: &[PathBuf], dir: &Path, extra: &[&str]) -> (serde_json::Value, Duration) {
    let (first, rest) = inputs.split_first().expect("an input");
    let mut args: Vec<String> = rest.iter().map(|p| p.display().to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let summary = analyze_all(first, dir, &refs);
    (summary, started.elapsed())
}

#[test]
fn paced_run_matches_unpaced() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("gtpgen/small.pcap");
    let frames = read_pcap(&input).frames;
    // small.pcap spans 590.936128 s of packet time (capinfos), so about 2.95 s at speed 200.
    let span = paced_span(&frames, 200.0);
    assert_eq!(span, Duration::from_secs_f64(590.936_128 / 200.0));

    let (unpaced, _) = timed_analyze(std::slice::from_ref(&input), &dir.path().join("unpaced"), &["--shards", "2"]);
    let (paced, elapsed) = timed_analyze(&[input], &dir.path().join("paced"), &["--shards", "2", "--replay-speed", "200"]);

    assert_same_outputs(&dir.path().join("unpaced"), &dir.path().join("paced"));
    assert_eq!(paced["capture"]["frames"], unpaced["capture"]["frames"]);
    assert_eq!(paced["capture"]["frames"], frames.len() as u64);
    assert_eq!(paced["capture"]["replay_speed"], 200.0);
    assert_eq!(unpaced["capture"]["replay_speed"], 0.0);
    assert_eq!(unpaced["capture"]["replay_pauses"], 0);
    assert!(paced["capture"]["replay_pauses"].as_u64().unwrap() > 0, "a paced run pauses");
    let read_wall = Duration::from_secs_f64(paced["capture"]["read_wall_s"].as_f64().unwrap());
    assert!(read_wall >= span, "the capture read the input in {read_wall:?}, less than {span:?}");
    assert!(elapsed >= span, "the paced run took {elapsed:?}, less than {span:?}");
}

#[test]
fn merged_inputs_paced_in_merged_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("gtpgen/small.pcap");
    let pcap = read_pcap(&input);
    // Every other frame into each file. small.pcap is in strict time order (capinfos), so
    // merging the two by packet time gives back the original order and sequence numbers.
    let halves: Vec<PathBuf> = (0..2)
        .map(|half| {
            let path = dir.path().join(format!("half{half}.pcap"));
            let frames: Vec<Frame> = pcap.frames.iter().skip(half).step_by(2).cloned().collect();
            write_pcap(&path, pcap.link_type, &frames);
            path
        })
        .collect();
    let span = paced_span(&pcap.frames, 400.0);

    let (unpaced, _) = timed_analyze(&[input], &dir.path().join("unpaced"), &["--shards", "2"]);
    let (paced, elapsed) = timed_analyze(&halves, &dir.path().join("paced"), &["--shards", "2", "--replay-speed", "400"]);

    assert_same_outputs(&dir.path().join("unpaced"), &dir.path().join("paced"));
    assert_eq!(paced["capture"]["frames"], unpaced["capture"]["frames"]);
    assert_eq!(paced["inputs"].as_array().unwrap().len(), 2);
    let read_wall = Duration::from_secs_f64(paced["capture"]["read_wall_s"].as_f64().unwrap());
    assert!(read_wall >= span, "the capture read the merged inputs in {read_wall:?}, less than {span:?}");
    assert!(elapsed >= span, "the paced run took {elapsed:?}, less than {span:?}");
}

/// Returns small.pcap with its first 300 s of packet time squeezed into 30 µs (each offset
/// from the first frame divided by 10,000,000), and the later frames unchanged. At speed
/// 0.01 the squeezed part is read within about 3 ms and the next frame is due 30,000 s
/// later.
fn burst_then_gap() -> Pcap {
    let mut pcap = read_pcap(&data("gtpgen/small.pcap"));
    let first = pcap.frames[0].ts_us;
    for frame in &mut pcap.frames {
        let offset = frame.ts_us - first;
        if offset < 300_000_000 {
            frame.ts_us = first + offset / 10_000_000;
        }
    }
    pcap
}

/// Number of files in `dir`, 0 when it does not exist yet.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// Waits for the child to exit, killing it and failing after [`DEADLINE`].
fn wait_with_deadline(child: &mut Child, step: &str) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{step}: the run did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_ends_paced_replay() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = burst_then_gap();
    let input = dir.path().join("burst.pcap");
    write_pcap(&input, pcap.link_type, &pcap.frames);
    // small.pcap has 963 frames in its first 300 s of packet time (tshark).
    let burst = pcap.frames.iter().filter(|f| f.ts_us < pcap.frames[0].ts_us + 300_000_000).count();
    assert_eq!(burst, 963);

    // Late binding keeps a G-PDU of an unknown tunnel for 2 s of packet time, and the pcap
    // writer waits for it. In the paced run that time would only pass after the gap, so
    // every run of this test turns late binding off.
    let options = ["--late-grace", "0"];

    // The subscribers of the burst alone, to know when the paced run has written them.
    let burst_path = dir.path().join("burst-only.pcap");
    write_pcap(&burst_path, pcap.link_type, &pcap.frames[..burst]);
    analyze_all(&burst_path, &dir.path().join("burst-only"), &options);
    let burst_files = count_files(&dir.path().join("burst-only/pcap"));
    assert!(burst_files > 0, "the burst has tracked subscribers");

    let paced = dir.path().join("paced");
    let args = [
        "analyze".to_string(),
        input.display().to_string(),
        "--track-all".into(),
        "--pcap-dir".into(),
        paced.join("pcap").display().to_string(),
        "--report-dir".into(),
        paced.join("reports").display().to_string(),
        "--events".into(),
        paced.join("events.jsonl").display().to_string(),
        "--json".into(),
        "--replay-speed".into(),
        "0.01".into(),
        options[0].into(),
        options[1].into(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_imsitrace")).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while count_files(&paced.join("pcap")) < burst_files {
        if started.elapsed() > DEADLINE || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the paced run wrote {} of {burst_files} pcap files within {DEADLINE:?}", count_files(&paced.join("pcap")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill failed");
    wait_with_deadline(&mut child, "after SIGTERM");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["capture"]["stopped_early"], true);
    let read = summary["capture"]["frames"].as_u64().unwrap() as usize;
    // The signal may land in a pause inside the burst, so fewer frames may have been read;
    // the frame after the burst is due 30,000 s after the start.
    assert!((1..=burst).contains(&read), "{read} frames read");
    let events = std::fs::read_to_string(paced.join("events.jsonl")).unwrap();
    assert!(events.lines().count() > 0, "the burst's session events are logged");

    // The outputs are those of an unpaced run of exactly the frames read.
    let prefix = dir.path().join("prefix.pcap");
    write_pcap(&prefix, pcap.link_type, &pcap.frames[..read]);
    analyze_all(&prefix, &dir.path().join("prefix"), &options);
    assert_same_outputs(&dir.path().join("prefix"), &paced);
}

#[test]
fn invalid_replay_speed_rejected() {
    let input = data("gtpgen/small.pcap");
    let input = input.to_str().unwrap();
    for (value, shown) in [("-1", "-1"), ("NaN", "NaN"), ("inf", "inf"), ("1000001", "1000001")] {
        let output = imsitrace(&["analyze", input, "--replay-speed", value]);
        assert_eq!(output.status.code(), Some(1), "--replay-speed {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let expected = format!("invalid value {shown} for --replay-speed: give 0 to read as fast as possible");
        assert!(stderr.contains(&expected), "--replay-speed {value}: {stderr}");
    }
}
