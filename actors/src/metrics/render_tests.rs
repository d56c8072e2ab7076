use super::collect::capture_families;
use super::registry::Identity;
use super::render::{format_value, render};
use super::snapshot::{Family, MetricKind, NodeSnapshot};
use crate::pipeline::capture::CaptureStats;

fn identity() -> Identity {
    Identity { node: "probe-a@127.0.0.1".to_owned(), roles: vec!["probe".to_owned(), "collector".to_owned()], site: "site-1".to_owned() }
}

#[test]
fn small_snapshot_rendered_exactly() {
    let mut packets = Family::new("imsitrace_packets_total", MetricKind::Counter, "Frames read by the capture, by kind.");
    packets.push(&[("kind", "gtpv2c")], 12.0);
    packets.push(&[("kind", "gtpu_gpdu")], 3456.0);
    let snapshot = NodeSnapshot {
        identity: identity(),
        uptime_s: 1.5,
        peers: Vec::new(),
        families: vec![
            Family::single("imsitrace_uptime_seconds", MetricKind::Gauge, "Seconds since the node started.", 1.5),
            packets,
            Family::new("imsitrace_malformed_packets_total", MetricKind::Counter, "Malformed frames, by reason."),
        ],
    };
    let expected = "\
# HELP imsitrace_uptime_seconds Seconds since the node started.
# TYPE imsitrace_uptime_seconds gauge
imsitrace_uptime_seconds{node=\"probe-a@127.0.0.1\",role=\"probe,collector\",site=\"site-1\"} 1.5
# HELP imsitrace_packets_total Frames read by the capture, by kind.
# TYPE imsitrace_packets_total counter
imsitrace_packets_total{node=\"probe-a@127.0.0.1\",role=\"probe,collector\",site=\"site-1\",kind=\"gtpv2c\"} 12
imsitrace_packets_total{node=\"probe-a@127.0.0.1\",role=\"probe,collector\",site=\"site-1\",kind=\"gtpu_gpdu\"} 3456
# HELP imsitrace_malformed_packets_total Malformed frames, by reason.
# TYPE imsitrace_malformed_packets_total counter
";
    assert_eq!(render(&snapshot), expected);
}

#[test]
fn label_values_and_help_escaped() {
    let family = Family::new("imsitrace_test", MetricKind::Gauge, "line one\nback\\slash").with(&[("reason", "a\"b\\c\nd")], 1.0);
    let snapshot = NodeSnapshot { identity: Identity { node: "n".into(), roles: vec![], site: "s".into() }, uptime_s: 0.0, families: vec![family], peers: Vec::new() };
    let text = render(&snapshot);
    assert!(text.contains("# HELP imsitrace_test line one\\nback\\\\slash\n"), "{text}");
    assert!(text.contains("imsitrace_test{node=\"n\",role=\"\",site=\"s\",reason=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
}

#[test]
fn special_values_formatted() {
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value(0.0), "0");
    assert_eq!(format_value(0.000_25), "0.00025");
    assert_eq!(format_value(18_446_744_073_709_551_615.0), "18446744073709552000");
}

#[test]
fn capture_maps_rendered_by_reason() {
    let mut stats = CaptureStats { frames: 10, bytes: 1200, gtpv2c: 4, gtpu_echo: 2, ..CaptureStats::default() };
    stats.malformed.insert("gtp_truncated", 3);
    let families = capture_families(&stats);
    let find = |name: &str| families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name}"));
    assert_eq!(find("imsitrace_frames_total").value(None), Some(10.0));
    assert_eq!(find("imsitrace_bytes_total").value(None), Some(1200.0));
    assert_eq!(find("imsitrace_packets_total").value(Some(("kind", "gtpv2c"))), Some(4.0));
    assert_eq!(find("imsitrace_packets_total").value(Some(("kind", "echo"))), Some(2.0));
    assert_eq!(find("imsitrace_malformed_packets_total").value(Some(("reason", "gtp_truncated"))), Some(3.0));
    assert!(families.iter().all(|f| f.name != "imsitrace_reassembly_packets_total"), "reassembly is not a map by reason");
}

#[test]
fn snapshot_round_trips_through_codec() {
    let snapshot = NodeSnapshot { identity: identity(), uptime_s: 2.0, families: vec![Family::single("imsitrace_flows", MetricKind::Gauge, "Flows.", 7.0)], peers: vec!["collector@127.0.0.1".to_owned()] };
    let bytes = crate::cluster::codec::encode(&snapshot);
    let decoded = crate::cluster::codec::decode::<NodeSnapshot>(&bytes).into_result().expect("valid payload");
    assert_eq!(decoded, snapshot);
}
