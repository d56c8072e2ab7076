//! Builds a [`NodeSnapshot`] from the slots of the registry.
//!
//! The capture counters are read from the serde form of [`CaptureStats`]. Every map of
//! counts in it becomes a family of its own: `malformed`, and any other such as counts of
//! dropped frames by reason. A map added to the stats therefore appears without a change here.

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::registry::{lock, CaptureSlot, Registry};
use super::snapshot::{Family, MetricKind, NodeSnapshot};
use crate::pipeline::capture::{CaptureStats, KindBytes};
use crate::pipeline::live::InterfaceStats;
use crate::pipeline::control::ControlStats;
use crate::pipeline::shard_work::ShardStats;
use crate::pipeline::sink::SinkStats;
use crate::pipeline::summary::{add_shard, Summary};
use crate::wire::DecodeError;

use MetricKind::{Counter, Gauge};

/// Fields of [`CaptureStats`] that count frames of one kind, with the `kind` label of each.
const PACKET_KINDS: [(&str, &str); 9] = [
    ("gtpv1c", "gtpv1c"),
    ("gtpv2c", "gtpv2c"),
    ("gtpu_gpdu", "gtpu_gpdu"),
    ("gtpu_echo", "echo"),
    ("gtpu_error_indication", "error_indication"),
    ("gtpu_end_marker", "end_marker"),
    ("gtpu_other", "gtpu_other"),
    ("not_gtp", "not_gtp"),
    ("fragments_held", "fragment_held"),
];

/// Maps of [`CaptureStats`] that are not counts by reason.
const NOT_BY_REASON: [&str; 2] = ["reassembly", "bytes_by_kind"];

/// Reads every slot of `registry` into a snapshot.
pub fn snapshot(registry: &Registry) -> NodeSnapshot {
    let uptime_s = registry.uptime().as_secs_f64();
    let capture = lock(&registry.capture).as_ref().map(capture_stats);
    let control = lock(&registry.control).clone();
    let shards = shard_total(registry);
    let mut families = vec![Family::single("imsitrace_uptime_seconds", Gauge, "Seconds since the node started.", uptime_s)];
    if let Some(capture) = &capture {
        families.extend(capture_families(capture));
    }
    if let Some(control) = &control {
        families.extend(control_families(control));
    }
    if let Some(shards) = &shards {
        families.extend(shard_families(shards));
    }
    if capture.is_some() || control.is_some() || shards.is_some() {
        families.push(unattributed_family(capture.unwrap_or_default(), control.unwrap_or_default(), shards.unwrap_or_default()));
    }
    if let Some(sink) = lock(&registry.sink).as_ref() {
        families.extend(sink_families(sink));
    }
    families.extend(redis_families(registry));
    let writers = registry.tracker_writers.load(Ordering::Relaxed).max(0);
    families.push(Family::single("imsitrace_tracker_writers", Gauge, "Tracker pcap files open for writing.", writers as f64));
    NodeSnapshot { identity: registry.identity(), uptime_s, families, peers: Vec::new() }
}

/// Returns the capture stats with the malformed counts of the fixed array merged in.
fn capture_stats(slot: &CaptureSlot) -> CaptureStats {
    let mut stats = slot.stats.clone();
    for (index, &count) in slot.malformed.iter().enumerate() {
        if let (Some(error), true) = (DecodeError::from_index(index), count > 0) {
            *stats.malformed.entry(error.reason()).or_insert(0) += count;
        }
    }
    stats
}

/// Returns the families of the capture counters, read from their serde form.
pub fn capture_families(stats: &CaptureStats) -> Vec<Family> {
    let Ok(Value::Object(fields)) = serde_json::to_value(stats) else { return Vec::new() };
    let number = |name: &str| fields.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    let mut families = vec![
        Family::single("imsitrace_frames_total", Counter, "Frames read by the capture.", number("frames")),
        Family::single("imsitrace_bytes_total", Counter, "Bytes on the wire of the frames read by the capture.", number("bytes")),
    ];
    let mut packets = Family::new("imsitrace_packets_total", Counter, "Frames read by the capture, by kind.");
    for (field, kind) in PACKET_KINDS {
        packets.push(&[("kind", kind)], number(field));
    }
    families.push(packets);
    families.push(kind_bytes_family(&stats.bytes_by_kind));
    families.extend(interface_families(&stats.interfaces));
    for (name, value) in &fields {
        let Value::Object(map) = value else { continue };
        if NOT_BY_REASON.contains(&name.as_str()) {
            continue;
        }
        families.push(reason_family(name, map));
    }
    families.push(Family::single("imsitrace_capture_pool_waits_total", Counter, "Times the capture waited for a consumer to return a batch.", number("pool_waits")));
    families
}

/// Returns `imsitrace_bytes_by_kind_total{kind=...}`, with the kinds of the frame counters.
fn kind_bytes_family(bytes: &KindBytes) -> Family {
    let mut family = Family::new("imsitrace_bytes_by_kind_total", Counter, "Bytes on the wire of the frames read by the capture, by kind.");
    let Ok(Value::Object(fields)) = serde_json::to_value(bytes) else { return family };
    for (field, kind) in PACKET_KINDS.iter().copied().chain([("malformed", "malformed")]) {
        family.push(&[("kind", kind)], fields.get(field).and_then(Value::as_f64).unwrap_or(0.0));
    }
    family
}

/// Returns the families of a live capture's per-interface counters (pcap statistics),
/// none for a capture of files.
fn interface_families(interfaces: &[InterfaceStats]) -> Vec<Family> {
    if interfaces.is_empty() {
        return Vec::new();
    }
    let mut received = Family::new("imsitrace_interface_received_packets_total", Counter, "Frames that passed the capture filter in the kernel (pcap ps_recv), by interface.");
    let mut dropped = Family::new("imsitrace_interface_kernel_dropped_packets_total", Counter, "Frames the kernel dropped because the capture buffer was full (pcap ps_drop), by interface.");
    let mut if_dropped = Family::new("imsitrace_interface_dropped_packets_total", Counter, "Frames the interface or its driver dropped (pcap ps_ifdrop), by interface.");
    let mut read = Family::new("imsitrace_interface_read_packets_total", Counter, "Frames read from the interface by the capture.");
    let mut restarts = Family::new("imsitrace_interface_restarts_total", Counter, "Times the interface capture was reopened after an error.");
    let mut errors = Family::new("imsitrace_interface_errors_total", Counter, "Open and read errors of the interface capture.");
    let mut up = Family::new("imsitrace_interface_up", Gauge, "1 while the interface capture is open, 0 while it waits to be reopened.");
    for stats in interfaces {
        let label = [("interface", stats.interface.as_str())];
        received.push(&label, stats.received as f64);
        dropped.push(&label, stats.dropped as f64);
        if_dropped.push(&label, stats.if_dropped as f64);
        read.push(&label, stats.frames as f64);
        restarts.push(&label, stats.restarts as f64);
        errors.push(&label, stats.errors as f64);
        up.push(&label, if stats.up { 1.0 } else { 0.0 });
    }
    vec![received, dropped, if_dropped, read, restarts, errors, up]
}

/// Returns `imsitrace_<name>_packets_total{reason=...}` for a map of counts by reason.
fn reason_family(name: &str, map: &serde_json::Map<String, Value>) -> Family {
    let help = format!("Frames counted by the capture as {name}, by reason.");
    let mut family = Family::new(&format!("imsitrace_{name}_packets_total"), Counter, &help);
    for (reason, count) in map {
        family.push(&[("reason", reason.as_str())], count.as_f64().unwrap_or(0.0));
    }
    family
}

fn control_families(stats: &ControlStats) -> Vec<Family> {
    let mut malformed = Family::new("imsitrace_gtpc_malformed_messages_total", Counter, "GTP-C messages that failed to decode, by reason.");
    for (&reason, &count) in &stats.malformed {
        malformed.push(&[("reason", reason)], count as f64);
    }
    vec![
        Family::single("imsitrace_sessions", Gauge, "Live GTP-C sessions.", stats.live_sessions as f64),
        Family::single("imsitrace_sessions_created_total", Counter, "GTP-C sessions created.", stats.sessions.sessions_created as f64),
        Family::single("imsitrace_sessions_deleted_total", Counter, "GTP-C sessions deleted.", stats.sessions.sessions_deleted as f64),
        Family::single("imsitrace_subscribers", Gauge, "Subscribers with a live session.", stats.live_subscribers as f64),
        Family::single("imsitrace_subscribers_seen", Gauge, "Distinct subscribers seen in GTP-C messages since the run started.", stats.subscribers_seen as f64),
        Family::single("imsitrace_session_events_total", Counter, "Session events emitted by the control actor.", stats.events as f64),
        malformed,
    ]
}

/// Returns the counters of every shard added up, or `None` when no shard published yet.
fn shard_total(registry: &Registry) -> Option<ShardStats> {
    let slots = lock(&registry.shards).clone();
    let mut total: Option<ShardStats> = None;
    for slot in &slots {
        if let Some(stats) = lock(&slot.0).as_ref() {
            add_shard(total.get_or_insert_with(ShardStats::default), stats);
        }
    }
    total
}

fn shard_families(stats: &ShardStats) -> Vec<Family> {
    let active = stats.flows_created.saturating_sub(stats.flows_expired);
    vec![
        Family::single("imsitrace_tunnels", Gauge, "Live user-plane tunnel keys (the largest table of the shards).", stats.tunnels as f64),
        Family::single("imsitrace_flows", Gauge, "Flows not ended yet.", active as f64),
        Family::single("imsitrace_flows_created_total", Counter, "Flows created.", stats.flows_created as f64),
        Family::single("imsitrace_flows_ended_total", Counter, "Flows ended, for every reason.", stats.flows_expired as f64),
        Family::single("imsitrace_gpdu_attributed_total", Counter, "G-PDUs attributed to a subscriber.", stats.gpdu_attributed as f64),
        Family::single("imsitrace_gpdu_late_bound_total", Counter, "G-PDUs attributed after waiting for their signalling.", stats.gpdu_late_bound as f64),
    ]
}

/// Returns the frames that belong to no subscriber, by reason, as the run summary counts them.
fn unattributed_family(capture: CaptureStats, control: ControlStats, user_plane: ShardStats) -> Family {
    let mut summary = Summary { capture, control, user_plane, ..Summary::default() };
    summary.derive();
    let mut family = Family::new("imsitrace_unattributed_packets_total", Counter, "Frames that belong to no subscriber, by reason.");
    for (&reason, &count) in &summary.unattributed {
        family.push(&[("reason", reason)], count as f64);
    }
    family
}

fn sink_families(stats: &SinkStats) -> Vec<Family> {
    let outage = &stats.outage;
    vec![
        Family::single("imsitrace_microcloud_buffer_items", Gauge, "Session events and bucket deltas waiting in the outage buffer.", outage.buffered as f64),
        Family::single("imsitrace_microcloud_buffer_capacity_items", Gauge, "Capacity of the outage buffer.", outage.capacity as f64),
        Family::single("imsitrace_microcloud_buffer_dropped_total", Counter, "Items dropped because the outage buffer was full.", outage.dropped_full as f64),
        Family::single("imsitrace_microcloud_write_failures_total", Counter, "Microcloud writes that failed because it was unavailable.", outage.write_failures as f64),
        Family::single("imsitrace_microcloud_events_published_total", Counter, "Session events written to the microcloud.", stats.events_published as f64),
    ]
}

fn redis_families(registry: &Registry) -> Vec<Family> {
    let trips = &registry.redis;
    let count = trips.count.load(Ordering::Relaxed);
    if count == 0 {
        return Vec::new();
    }
    let seconds = |ns: u64| ns as f64 / 1e9;
    vec![
        Family::single("imsitrace_redis_round_trip_seconds", Gauge, "Round-trip time of the last pipelined Redis write.", seconds(trips.last_ns.load(Ordering::Relaxed))),
        Family::single("imsitrace_redis_round_trip_max_seconds", Gauge, "Longest round-trip time of a pipelined Redis write.", seconds(trips.max_ns.load(Ordering::Relaxed))),
        Family::single("imsitrace_redis_round_trip_seconds_total", Counter, "Sum of the round-trip times of the pipelined Redis writes.", seconds(trips.total_ns.load(Ordering::Relaxed))),
        Family::single("imsitrace_redis_round_trips_total", Counter, "Pipelined Redis writes that completed.", count as f64),
    ]
}
