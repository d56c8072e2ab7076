//! Counters of the capture loop: frames and bytes by kind, malformed frames by reason, and
//! their publication to the metrics registry at flush points.

use serde::Serialize;

use super::source::FrameSource;
use super::CaptureStats;
use crate::metrics::CaptureMetrics;
use crate::pipeline::route::Router;
use crate::wire::{DecodeError, GtpVersion};

/// Reason under which a live capture counts the user-plane frames that found every batch
/// of their shard in use (see [`CaptureStats::dropped`]).
const SHARD_BACKLOG: &str = "shard_backlog";

/// Bytes on the wire by kind of frame. The fields match the frame counters of
/// [`CaptureStats`], plus `malformed`, so the kinds add up to [`CaptureStats::bytes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindBytes {
    /// GTPv1-C messages.
    pub gtpv1c: u64,
    /// GTPv2-C messages.
    pub gtpv2c: u64,
    /// GTP-U G-PDUs.
    pub gtpu_gpdu: u64,
    /// GTP-U Echo Requests and Responses.
    pub gtpu_echo: u64,
    /// GTP-U Error Indications.
    pub gtpu_error_indication: u64,
    /// GTP-U End Markers.
    pub gtpu_end_marker: u64,
    /// Other GTP-U messages.
    pub gtpu_other: u64,
    /// Frames that are valid but not GTP.
    pub not_gtp: u64,
    /// Outer IPv4 fragments held for reassembly; the frame that completes a datagram is
    /// counted under the kind of the datagram.
    pub fragments_held: u64,
    /// Malformed frames.
    pub malformed: u64,
}

/// Kinds of GTP-U messages counted by the capture loop (TS 29.281 §6.1).
#[derive(Debug, Clone, Copy)]
pub enum UserKind {
    /// G-PDU (type 255).
    GPdu,
    /// End Marker (type 254).
    EndMarker,
    /// Echo Request or Response (types 1 and 2).
    Echo,
    /// Error Indication (type 26).
    ErrorIndication,
    /// Any other type.
    Other,
}

/// Counters kept on the packet path. Malformed frames are counted in a fixed array, which
/// is turned into the map of [`CaptureStats::malformed`] at the end of the run.
pub(super) struct Counters {
    pub(super) stats: CaptureStats,
    pub(super) malformed: [u64; DecodeError::COUNT],
}

impl Default for Counters {
    fn default() -> Counters {
        Counters { stats: CaptureStats::default(), malformed: [0; DecodeError::COUNT] }
    }
}

impl Counters {
    pub(super) fn malformed(&mut self, error: DecodeError, len: u64) {
        self.malformed[error.index()] += 1;
        self.stats.bytes_by_kind.malformed += len;
    }

    pub(super) fn count_control(&mut self, version: &GtpVersion, len: u64) {
        let (frames, bytes) = match version {
            GtpVersion::V1 => (&mut self.stats.gtpv1c, &mut self.stats.bytes_by_kind.gtpv1c),
            GtpVersion::V2 => (&mut self.stats.gtpv2c, &mut self.stats.bytes_by_kind.gtpv2c),
        };
        *frames += 1;
        *bytes += len;
    }

    pub(super) fn count_user(&mut self, kind: UserKind, len: u64) {
        let stats = &mut self.stats;
        let (frames, bytes) = match kind {
            UserKind::GPdu => (&mut stats.gtpu_gpdu, &mut stats.bytes_by_kind.gtpu_gpdu),
            UserKind::EndMarker => (&mut stats.gtpu_end_marker, &mut stats.bytes_by_kind.gtpu_end_marker),
            UserKind::Echo => (&mut stats.gtpu_echo, &mut stats.bytes_by_kind.gtpu_echo),
            UserKind::ErrorIndication => (&mut stats.gtpu_error_indication, &mut stats.bytes_by_kind.gtpu_error_indication),
            UserKind::Other => (&mut stats.gtpu_other, &mut stats.bytes_by_kind.gtpu_other),
        };
        *frames += 1;
        *bytes += len;
    }

    pub(super) fn count_not_gtp(&mut self, len: u64) {
        self.stats.not_gtp += 1;
        self.stats.bytes_by_kind.not_gtp += len;
    }

    pub(super) fn count_fragment_held(&mut self, len: u64) {
        self.stats.fragments_held += 1;
        self.stats.bytes_by_kind.fragments_held += len;
    }

    /// Publishes the counters at a flush point, with the router's drops and the source's
    /// own counters (a live capture's interface statistics) brought up to date first.
    pub(super) fn publish<S: FrameSource>(&mut self, metrics: &CaptureMetrics, router: &Router, source: &mut S) {
        if !metrics.is_enabled() {
            return;
        }
        self.record_router(router);
        source.refresh(&mut self.stats);
        metrics.publish(&self.stats, &self.malformed);
    }

    /// Returns the final counters, with the malformed counts moved into their map.
    pub(super) fn finish(mut self, router: &Router) -> CaptureStats {
        for (index, &count) in self.malformed.iter().enumerate() {
            if let (Some(error), true) = (DecodeError::from_index(index), count > 0) {
                self.stats.malformed.insert(error.reason(), count);
            }
        }
        self.record_router(router);
        self.stats
    }

    fn record_router(&mut self, router: &Router) {
        self.stats.pool_waits = router.pool_waits;
        if router.user_dropped > 0 {
            self.stats.dropped.insert(SHARD_BACKLOG, router.user_dropped);
        }
    }
}
