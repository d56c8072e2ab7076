//! Observability of a node: counters and gauges that the pipeline publishes at batch
//! boundaries, rendered in the Prometheus text format on `/metrics` and sent to
//! `imsitrace status` through the cluster.
//!
//! Every component writes only its own slot of the process-wide [`registry::Registry`].
//! The writers are the capture loop at each flush point, each shard (one slot per shard),
//! the control actor, the sink, the Redis backend with the round-trip time of its
//! pipelined writes, and the tracker file writers. A scrape or a status request reads every slot and builds a
//! [`snapshot::NodeSnapshot`] from them ([`collect`]). Nothing is published per packet.

pub mod collect;
pub mod http;
mod http_request;
pub mod registry;
pub mod render;
pub mod snapshot;
pub mod status;

pub use registry::{registry, CaptureMetrics, Identity};
pub use snapshot::{Family, MetricKind, NodeSnapshot, Sample};

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod render_tests;
