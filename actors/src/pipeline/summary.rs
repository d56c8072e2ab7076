//! The summary printed at the end of an `analyze` run.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::cluster::session_bridge::BridgeStats;
use crate::pipeline::capture::CaptureStats;
use crate::pipeline::control::ControlStats;
use crate::pipeline::lookup::LookupStats;
use crate::pipeline::shard_work::ShardStats;
use crate::pipeline::sink::SinkStats;
use crate::pipeline::writer::WriterStats;

/// Everything counted during one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Capture files read, in merge order.
    pub inputs: Vec<String>,
    /// Wall-clock run time, seconds.
    pub elapsed_s: f64,
    /// Frames read per second of wall-clock time.
    pub frames_per_s: f64,
    /// Number of shard actors.
    pub shards: usize,
    /// Frames by kind, as the capture decoded them.
    pub capture: CaptureStats,
    /// Control-plane counters.
    pub control: ControlStats,
    /// User-plane counters summed over the shards.
    pub user_plane: ShardStats,
    /// Frames that belong to no subscriber, by reason.
    pub unattributed: BTreeMap<&'static str, u64>,
    /// Malformed frames and messages, by reason.
    pub malformed: BTreeMap<&'static str, u64>,
    /// Pcap writer counters, when subscribers were tracked.
    pub pcap: Option<WriterStats>,
    /// Event log and microcloud counters.
    pub sink: SinkStats,
    /// Microcloud tunnel lookups, when they were on.
    pub lookups: Option<LookupStats>,
    /// Session events exchanged with other probes of the cluster, when it is on.
    pub cluster_events: Option<BridgeStats>,
    /// Report files written.
    pub reports_written: usize,
}

impl Summary {
    /// Fills the derived maps from the counters.
    pub fn derive(&mut self) {
        let mut unattributed = BTreeMap::new();
        unattributed.insert("gpdu_unknown_tunnel", self.user_plane.gpdu_unknown_tunnel);
        unattributed.insert("gpdu_late_buffer_full", self.user_plane.gpdu_late_buffer_full);
        unattributed.insert("end_marker_unknown_tunnel", self.user_plane.end_marker_unknown_tunnel);
        unattributed.insert("gtpc_unknown_session", self.control.unknown_session);
        unattributed.insert("gtpc_path_management", self.control.path_management);
        unattributed.insert("gtpu_echo", self.capture.gtpu_echo);
        unattributed.insert("gtpu_error_indication", self.capture.gtpu_error_indication);
        unattributed.insert("gtpu_other", self.capture.gtpu_other);
        unattributed.retain(|_, count| *count > 0);
        self.unattributed = unattributed;
        let mut malformed = self.capture.malformed.clone();
        for (reason, count) in &self.control.malformed {
            *malformed.entry(reason).or_insert(0) += count;
        }
        self.malformed = malformed;
    }

    /// Returns what went wrong with the inputs or outputs, one sentence each; empty when the
    /// run read every input to its end and wrote every output.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self.capture.read_errors.iter().map(|e| format!("{e}; the frames before the error were processed")).collect();
        if self.sink.log_errors > 0 {
            failures.push(format!("the session-event log is incomplete: {} writes to it failed", self.sink.log_errors));
        }
        if self.sink.microcloud_errors > 0 {
            failures.push(format!("{} microcloud operations failed", self.sink.microcloud_errors));
        }
        let outage = &self.sink.outage;
        if outage.dropped_full > 0 {
            failures.push(format!(
                "{} events and bucket deltas were not written to the microcloud: the outage buffer of {} items was full. Raise --redis-buffer to keep more",
                outage.dropped_full, outage.capacity
            ));
        }
        if outage.lost > 0 {
            failures.push(format!(
                "{} events and bucket deltas were not written to the microcloud: it was still unavailable when the retries at the end of the run timed out",
                outage.lost
            ));
        }
        for (error, count) in self.pcap.iter().flat_map(|p| &p.write_errors) {
            failures.push(format!("{count} frames could not be written to pcap files: {error}"));
        }
        failures
    }

    /// Renders the summary as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.capture;
        if c.stopped_early {
            let _ = writeln!(out, "stopped early on request: the counts cover the frames read until then");
        }
        let _ = writeln!(out, "frames        {} ({} bytes) in {:.3} s, {:.0} frames/s, {} shard(s)", c.frames, c.bytes, self.elapsed_s, self.frames_per_s, self.shards);
        if c.replay_speed > 0.0 {
            let packet_s = c.last_ts_us.saturating_sub(c.first_ts_us) as f64 / 1e6;
            let _ = writeln!(out, "  replayed at speed {}: {packet_s:.3} s of packet time read in {:.3} s of wall-clock time, {} pauses",
                c.replay_speed, c.read_wall_s, c.replay_pauses);
        }
        let _ = writeln!(out, "  GTPv1-C {}  GTPv2-C {}  G-PDU {}  End Marker {}  Echo {}  Error Indication {}  other GTP-U {}  not GTP {}  fragments held for reassembly {}",
            c.gtpv1c, c.gtpv2c, c.gtpu_gpdu, c.gtpu_end_marker, c.gtpu_echo, c.gtpu_error_indication, c.gtpu_other, c.not_gtp, c.fragments_held);
        for i in &c.interfaces {
            let _ = writeln!(out, "  interface {}: {} received, {} dropped by the kernel, {} dropped by the interface, {} frames read, {} restarts, {} errors{}",
                i.interface, i.received, i.dropped, i.if_dropped, i.frames, i.restarts, i.errors, if i.up { "" } else { ", down at the end" });
        }
        if !c.dropped.is_empty() {
            write_map(&mut out, "  dropped", &c.dropped);
        }
        if c.fragments_held > 0 {
            let r = &c.reassembly;
            let _ = writeln!(out, "  reassembly: {} datagrams completed, {} expired, {} evicted, {} dropped, {} incomplete at the end",
                r.datagrams_completed, r.datagrams_expired, r.datagrams_evicted, r.datagrams_dropped, r.datagrams_in_flight);
        }
        let s = &self.control;
        let _ = writeln!(out, "subscribers   {} seen, {} with a live session at the end", s.subscribers_seen, s.live_subscribers);
        let _ = writeln!(out, "sessions      {} created, {} deleted, {} picked up, {} creates rejected, {} live at end",
            s.sessions.sessions_created, s.sessions.sessions_deleted, s.sessions.sessions_picked_up, s.sessions.creates_rejected, s.live_sessions);
        let _ = writeln!(out, "  {} GTP-C frames attributed, {} responses paired, {} unpaired, {} events", s.attributed, s.sessions.responses_paired, s.sessions.responses_unpaired, s.events);
        let u = &self.user_plane;
        let _ = writeln!(out, "user plane    {} G-PDUs attributed ({} inner bytes), {} late-bound, {} End Markers attributed", u.gpdu_attributed, u.gpdu_attributed_bytes, u.gpdu_late_bound, u.end_marker_attributed);
        let _ = writeln!(out, "flows         {} created, {} ended", u.flows_created, u.flows_expired);
        write_map(&mut out, "unattributed", &self.unattributed);
        write_map(&mut out, "malformed", &self.malformed);
        if let Some(pcap) = &self.pcap {
            let _ = writeln!(out, "pcap          {} frames into {} files, {} write errors", pcap.frames_written, pcap.files, pcap.write_errors.values().sum::<u64>());
        }
        if let Some(l) = &self.lookups {
            let _ = writeln!(out, "lookups       {} keys requested, {} round trips for {} keys: {} found, {} not found, {} errors; cache hits {} negative, {} positive; {} frames bound through the microcloud",
                l.requests, l.queries, l.keys_queried, l.found, l.not_found, l.errors, l.negative_cache_hits, l.positive_cache_hits, u.microcloud_bound);
        }
        if let Some(b) = &self.cluster_events {
            let _ = writeln!(out, "cluster       {} events sent; {} events in {} batches received, {} invalid payloads, {} remote events applied by shards, {} frames bound through remote events",
                s.events_broadcast, b.remote_events_received, b.remote_batches_received, b.invalid_payloads, u.remote_events_applied, u.remote_event_bound);
            let _ = writeln!(out, "              delivery delay p50 <= {} us, p99 <= {} us, max {} us; {} events/s received over {:.3} s",
                b.delivery_p50_us, b.delivery_p99_us, b.delivery_max_us, rate(b.remote_events_received, b.receive_span_us), b.receive_span_us as f64 / 1e6);
        }
        let o = &self.sink.outage;
        if o.write_failures > 0 || o.dropped_full > 0 {
            let _ = writeln!(out, "microcloud    {} failed writes; outage buffer: max {} of {} items, {} replayed, {} dropped (full), {} lost at the end",
                o.write_failures, o.max_buffered, o.capacity, o.replayed, o.dropped_full, o.lost);
        }
        let _ = writeln!(out, "reports       {} files; {} events logged, {} event log errors; {} microcloud errors", self.reports_written, self.sink.events_logged, self.sink.log_errors, self.sink.microcloud_errors);
        out
    }
}

fn write_map(out: &mut String, title: &str, map: &BTreeMap<&'static str, u64>) {
    if map.is_empty() {
        let _ = writeln!(out, "{title:<13} none");
        return;
    }
    let parts: Vec<String> = map.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
    let _ = writeln!(out, "{title:<13} {}", parts.join(", "));
}

/// Adds the counters of one shard to a total.
pub fn add_shard(total: &mut ShardStats, shard: &ShardStats) {
    total.gpdu_attributed += shard.gpdu_attributed;
    total.gpdu_attributed_bytes += shard.gpdu_attributed_bytes;
    total.gpdu_late_bound += shard.gpdu_late_bound;
    total.gpdu_unknown_tunnel += shard.gpdu_unknown_tunnel;
    total.gpdu_late_buffer_full += shard.gpdu_late_buffer_full;
    total.end_marker_attributed += shard.end_marker_attributed;
    total.end_marker_unknown_tunnel += shard.end_marker_unknown_tunnel;
    total.microcloud_bound += shard.microcloud_bound;
    total.lookup_requests += shard.lookup_requests;
    total.lookup_owners_ignored += shard.lookup_owners_ignored;
    total.events_applied += shard.events_applied;
    total.remote_events_applied += shard.remote_events_applied;
    total.remote_events_invalid += shard.remote_events_invalid;
    total.remote_event_bound += shard.remote_event_bound;
    total.flows_created += shard.flows_created;
    total.flows_expired += shard.flows_expired;
    total.tunnels = total.tunnels.max(shard.tunnels);
}

/// Returns `count` per second over `span_us` microseconds, or 0 for an empty span.
fn rate(count: u64, span_us: u64) -> u64 {
    if span_us == 0 {
        return 0;
    }
    (count as f64 * 1e6 / span_us as f64) as u64
}
