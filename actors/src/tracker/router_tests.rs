//! Tests of the router: skipping after a restart, counts and file starts.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::batch::{FrameBatch, FrameMeta, RawFrame};

const IMSI: &str = "001010000000001";

fn args(dir: &std::path::Path, resumed: BTreeMap<String, FileScan>) -> RouterArgs {
    RouterArgs {
        dir: dir.to_path_buf(),
        node_name: "probe-a".to_owned(),
        node: "probe-a@host".to_owned(),
        site: Some("site-a".to_owned()),
        flush_interval: Duration::from_millis(50),
        resumed,
    }
}

fn imsi() -> Digits {
    Digits::from_ascii(IMSI.as_bytes()).expect("valid IMSI")
}

/// Returns records of 4-byte frames of [`IMSI`] at the given packet times, microseconds.
fn frames(times: &[u64]) -> WriterBatch {
    let mut records = WriterBatch::default();
    for (seq, &ts_us) in times.iter().enumerate() {
        let mut batch = FrameBatch::default();
        let start = batch.push_bytes(&[1, 2, 3, 4]);
        batch.raw.push(RawFrame { ts_us, orig_len: 4, start, len: 4 });
        let meta = FrameMeta {
            seq: seq as u64,
            ts_us,
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            payload_start: start,
            payload_len: 4,
            tpdu_offset: 4,
            message_type: 255,
            teid: 1,
            inner: None,
            raw_first: 0,
            raw_count: 1,
            link: LinkType::Ethernet,
        };
        records.push(imsi(), true, &batch, &meta);
    }
    records
}

fn routes(ids: &[&str]) -> Routes {
    let mut routes = FxHashMap::default();
    routes.insert(imsi(), ids.iter().map(|id| Arc::from(*id)).collect());
    Arc::new(routes)
}

#[test]
fn resumed_tracker_skips_written_frames() {
    let dir = tempfile::tempdir().unwrap();
    let scan = FileScan { complete_len: 100, packets: 3, bytes: 30, last_ts_us: Some(100) };
    let state = TrackerState::resumed(&args(dir.path(), BTreeMap::new()), &scan, 0);
    assert!(state.is_written_already(99));
    assert!(state.is_written_already(100), "the last frame written is skipped too");
    assert!(!state.is_written_already(101));
    assert_eq!(state.counts.packets, 3);
    assert_eq!(state.counts.last_packet_us, Some(100));
    assert_eq!(state.counts.gaps.len(), 1);
    assert!(state.counts.gaps[0].contains("1970-01-01T00:00:00.000100Z"), "{}", state.counts.gaps[0]);
}

#[tokio::test]
async fn router_writes_each_tracker_and_counts_skips() {
    let dir = tempfile::tempdir().unwrap();
    let scan = FileScan { complete_len: 100, packets: 3, bytes: 12, last_ts_us: Some(2_000_000) };
    let resumed = BTreeMap::from([("t1".to_owned(), scan)]);
    let (router, _) = Actor::spawn(None, Router, args(dir.path(), resumed)).await.unwrap();
    router.send_message(RouterMsg::Routes(routes(&["t1", "t2"]))).unwrap();
    router.send_message(RouterMsg::Records(frames(&[1_000_000, 2_000_000, 3_000_000]))).unwrap();
    router.call(RouterMsg::Flush, None).await.unwrap();
    let ractor::rpc::CallResult::Success(counts) = router.call(RouterMsg::Counts, None).await.unwrap() else { panic!("no counts") };
    let counts: BTreeMap<String, ProbeCounts> = counts.into_iter().collect();

    assert_eq!(counts["t1"].skipped, 2, "frames at or before 2 s were written before the restart");
    assert_eq!(counts["t1"].packets, 4);
    assert_eq!(counts["t2"].skipped, 0, "t2 has no earlier file");
    assert_eq!(counts["t2"].packets, 3);
    assert_eq!(counts["t2"].last_packet_us, Some(3_000_000));
    assert_eq!(counts["t2"].site.as_deref(), Some("site-a"));

    let t1: Vec<_> = std::fs::read_dir(dir.path().join("t1")).unwrap().collect();
    assert_eq!(t1.len(), 1);
    let scan = crate::tracker::files::scan_file(&t1[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(scan.packets, 1, "only the frame after the restart point");
    router.stop(None);
}
