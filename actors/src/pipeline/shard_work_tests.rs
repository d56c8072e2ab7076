//! Tests of late binding through microcloud lookups in one shard, with lookup results
//! handed in by the test at chosen points.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::batch::RawFrame;
use crate::flow::classify::AppProtocol;
use crate::session::event::{fixture, Tunnel, TunnelRole};
use crate::wire::LinkType;

const SECOND: u64 = 1_000_000;
const REMOTE_IMSI: &str = "001010000000009";
const LOCAL_IMSI: &str = "001010000000001";

/// Classifies nothing; the frames in these tests carry no inner packet anyway.
struct NoClassifier;

impl Classify for NoClassifier {
    type State = ();

    fn start(&mut self) {}

    fn feed(&mut self, _state: &mut (), _ip_packet: &[u8], _ts_us: u64) -> bool {
        true
    }

    fn finish(&mut self, _state: ()) -> AppProtocol {
        AppProtocol::default()
    }

    fn name(&self, _protocol: AppProtocol) -> &str {
        "Unknown"
    }
}

fn key(teid: u32) -> TunnelKey {
    TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(10, 40, 0, 11)), teid }
}

fn imsi(digits: &str) -> Digits {
    Digits::from_ascii(digits.as_bytes()).expect("digits")
}

/// Returns a shard with a 2-s grace period, lookups on and every subscriber tracked.
fn shard() -> ShardWork<NoClassifier> {
    let settings = ShardSettings {
        timeouts: FlowTimeouts { idle_us: 90 * SECOND, active_us: None, close_linger_us: SECOND },
        late_grace_us: 2 * SECOND,
        late_capacity: 16,
        end_marker_grace_us: 10 * SECOND,
    };
    let mut work = ShardWork::new(settings, NoClassifier, Arc::new(Tracking::All), 1);
    work.enable_lookups();
    work
}

/// Builds a batch of 4-byte G-PDUs, each given as (sequence number, seconds, TEID).
fn gpdus(frames: &[(u64, u64, u32)]) -> FrameBatch {
    let mut batch = FrameBatch::default();
    for &(seq, seconds, teid) in frames {
        let start = batch.push_bytes(&[0x30, 0xff, 0, 0]);
        let raw_first = batch.raw.len() as u32;
        batch.raw.push(RawFrame { ts_us: seconds * SECOND, orig_len: 4, start, len: 4 });
        batch.frames.push(FrameMeta {
            seq,
            ts_us: seconds * SECOND,
            src: IpAddr::V4(Ipv4Addr::new(10, 100, 0, 4)),
            dst: key(teid).addr,
            payload_start: start,
            payload_len: 4,
            tpdu_offset: 4,
            message_type: GTPU_G_PDU,
            teid,
            inner: None,
            raw_first,
            raw_count: 1,
            link: LinkType::Ethernet,
        });
    }
    batch
}

/// Builds an attach of `LOCAL_IMSI` that adds `key(teid)`, completed by frame `seq` at `seconds`.
fn attach(seq: u64, seconds: u64, teid: u32) -> Arc<[SessionEvent]> {
    let tunnel = Tunnel { key: key(teid), role: TunnelRole::Uplink, bearer: 5, interface: Tunnel::GTPV1 };
    let event = SessionEvent { seq, site: "local".to_owned(), ..fixture::attach_with(LOCAL_IMSI, tunnel, seconds * SECOND) };
    vec![event].into()
}

/// Returns the sequence numbers and IMSIs of the frames queued for the pcap writer.
fn written(work: &ShardWork<NoClassifier>) -> Vec<(u64, String)> {
    work.records.records.iter().map(|r| (r.seq, r.imsi.as_str().to_owned())).collect()
}

#[test]
fn shard_waits_for_outstanding_lookup() {
    let mut work = shard();
    assert_eq!(work.process(&gpdus(&[(1, 10, 7)]), 0), None);
    assert_eq!(work.take_lookup_requests(), Some(vec![key(7)]));

    // Frame 2 comes after the grace period of frame 1, whose lookup is still outstanding.
    let later = gpdus(&[(2, 13, 8)]);
    assert_eq!(work.process(&later, 0), Some(0), "stops before frame 2");
    assert_eq!(work.process(&later, 0), Some(0), "and again while no result arrived");
    assert_eq!(work.progress(2), 0, "frame 1 is still held");
    assert_eq!(work.stats().gpdu_unknown_tunnel, 0);

    work.apply_lookup_results(vec![key(7)], &[Some(imsi(REMOTE_IMSI))]);
    assert_eq!(work.process(&later, 0), None);
    assert_eq!(written(&work), vec![(1, REMOTE_IMSI.to_owned())]);
    let stats = work.stats();
    assert_eq!(stats.gpdu_attributed, 1);
    assert_eq!(stats.gpdu_late_bound, 1);
    assert_eq!(stats.microcloud_bound, 1);
    assert_eq!(stats.lookup_requests, 2, "keys 7 and 8");
}

#[test]
fn learned_tunnel_attributes_later_frames() {
    let mut work = shard();
    work.process(&gpdus(&[(1, 10, 7), (2, 11, 7)]), 0);
    assert_eq!(work.take_lookup_requests(), Some(vec![key(7)]), "one request per key");
    work.apply_lookup_results(vec![key(7)], &[Some(imsi(REMOTE_IMSI))]);

    // The result is used when the grace period of frame 1 ends, before frame 3.
    assert_eq!(work.process(&gpdus(&[(3, 13, 7)]), 0), None);
    let expected: Vec<(u64, String)> = (1..=3).map(|seq| (seq, REMOTE_IMSI.to_owned())).collect();
    assert_eq!(written(&work), expected);
    let stats = work.stats();
    assert_eq!(stats.gpdu_late_bound, 2);
    assert_eq!(stats.microcloud_bound, 3);
    assert_eq!(work.take_lookup_requests(), None);
}

#[test]
fn missing_key_still_waits_for_local_signalling() {
    let mut work = shard();
    work.process(&gpdus(&[(1, 10, 7)]), 0);
    work.take_lookup_requests();
    work.apply_lookup_results(vec![key(7)], &[None]);

    // The local attach (frame 2, 1 s later) binds frame 1 within its grace period.
    work.push_events(attach(2, 11, 7));
    assert_eq!(work.process(&gpdus(&[(3, 11, 7)]), 0), None);
    assert_eq!(written(&work), vec![(1, LOCAL_IMSI.to_owned()), (3, LOCAL_IMSI.to_owned())]);
    let stats = work.stats();
    assert_eq!(stats.gpdu_late_bound, 1);
    assert_eq!(stats.microcloud_bound, 0);
}

#[test]
fn missing_key_given_up_after_grace() {
    let mut work = shard();
    work.process(&gpdus(&[(1, 10, 7)]), 0);
    work.take_lookup_requests();
    work.apply_lookup_results(vec![key(7)], &[None]);
    assert_eq!(work.process(&gpdus(&[(2, 13, 8)]), 0), None);
    assert_eq!(work.stats().gpdu_unknown_tunnel, 1);
    assert!(written(&work).is_empty());
}

#[test]
fn finish_waits_for_outstanding_lookup() {
    let mut work = shard();
    work.process(&gpdus(&[(1, 10, 7)]), 0);
    assert!(work.finish().is_none(), "frame 1 waits for its lookup result");
    assert_eq!(work.take_lookup_requests(), Some(vec![key(7)]));
    assert!(work.finish().is_none());

    work.apply_lookup_results(vec![key(7)], &[Some(imsi(REMOTE_IMSI))]);
    let stats = work.finish().expect("nothing waits any more");
    assert_eq!(stats.microcloud_bound, 1);
    assert_eq!(stats.gpdu_unknown_tunnel, 0);
}

#[test]
fn locally_signalled_tunnel_not_looked_up() {
    let mut work = shard();
    // The event is received ahead of the data, as the control actor runs ahead.
    work.push_events(attach(5, 20, 7));
    work.process(&gpdus(&[(1, 10, 7)]), 0);
    assert_eq!(work.take_lookup_requests(), None);
    assert!(work.finish().is_some(), "nothing to wait for");
}

#[test]
fn lookups_off_gives_up_at_once() {
    let settings = shard().settings.clone();
    let mut work = ShardWork::new(settings, NoClassifier, Arc::new(Tracking::All), 1);
    work.process(&gpdus(&[(1, 10, 7)]), 0);
    assert_eq!(work.take_lookup_requests(), None);
    assert_eq!(work.process(&gpdus(&[(2, 13, 8)]), 0), None);
    let stats = work.finish().expect("no lookups to wait for");
    assert_eq!(stats.gpdu_unknown_tunnel, 2);
}

/// Returns a shard with lookups off and no static tracking.
fn untracked_shard() -> ShardWork<NoClassifier> {
    let settings = shard().settings.clone();
    ShardWork::new(settings, NoClassifier, Arc::new(Tracking::Nobody), 1)
}

fn trackers(imsis: &[&str]) -> crate::pipeline::records::TrackedImsis {
    Arc::new(imsis.iter().map(|digits| imsi(digits)).collect())
}

#[test]
fn tracker_set_replaced_at_run_time() {
    let mut work = untracked_shard();
    work.push_events(attach(1, 10, 7));
    work.process(&gpdus(&[(2, 10, 7)]), 0);
    assert!(written(&work).is_empty(), "nobody is tracked yet");

    work.set_trackers(trackers(&[LOCAL_IMSI]));
    work.process(&gpdus(&[(3, 11, 7)]), 0);
    assert_eq!(written(&work), vec![(3, LOCAL_IMSI.to_owned())]);
    assert!(work.records.records[0].to_trackers, "the record goes to the tracker files");

    work.set_trackers(trackers(&[]));
    work.process(&gpdus(&[(4, 12, 7)]), 0);
    assert_eq!(written(&work).len(), 1, "frame 4 follows the emptied set");
}

#[test]
fn static_tracking_not_sent_to_trackers() {
    let settings = shard().settings.clone();
    let mut work = ShardWork::new(settings, NoClassifier, Arc::new(Tracking::All), 1);
    work.push_events(attach(1, 10, 7));
    work.process(&gpdus(&[(2, 10, 7)]), 0);
    assert_eq!(written(&work), vec![(2, LOCAL_IMSI.to_owned())]);
    assert!(!work.records.records[0].to_trackers);
}

#[test]
fn remote_detach_ends_tracked_session() {
    use crate::cluster::session_bridge::{RemoteEvents, WireEvent};
    use crate::pipeline::records::RecordKind;

    let mut work = untracked_shard();
    work.enable_remote_events();
    work.set_trackers(trackers(&[REMOTE_IMSI]));
    let detach = |imsi: &str| WireEvent { kind: EventKind::Detach, ts_us: 11 * SECOND, session_id: 1, imsi: imsi.to_owned(), added: Vec::new(), removed: Vec::new() };
    let events = RemoteEvents { node: "probe-a@host".to_owned(), sent_at_us: 0, events: vec![detach(REMOTE_IMSI), detach(LOCAL_IMSI)] };
    work.process(&gpdus(&[(1, 10, 0)]), 0);
    work.push_remote(Arc::new(events));
    work.process(&gpdus(&[(2, 12, 0)]), 0);

    let ends: Vec<_> = work.records.records.iter().filter(|r| r.kind == RecordKind::SessionEnd).collect();
    assert_eq!(ends.len(), 1, "only the tracked IMSI gets a session end");
    assert_eq!(ends[0].imsi, imsi(REMOTE_IMSI));
    assert_eq!(ends[0].ts_us, 11 * SECOND);
    assert_eq!(ends[0].seq, 1, "ordered after the newest frame processed");
}
