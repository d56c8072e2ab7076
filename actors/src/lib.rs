//! imsitrace: follow mobile subscribers (IMSI) through GTP signalling and user plane.
//!
//! The crate has a pure core and an actor shell. The core has no tokio or ractor in it:
//! [`wire`] decodes frames, [`session`] follows GTP-C sessions and emits session events,
//! [`tunnel`] maps user-plane tunnels to subscribers, [`flow`] keeps per-subscriber flows,
//! [`bucket`] aggregates expired flows into 5-minute buckets, and [`batch`] carries frames
//! between the actors. [`ndpi`] classifies flows with nDPI. [`output`] writes pcap files,
//! reports and event logs, [`microcloud`] holds the state shared between nodes,
//! [`pipeline`] wires the actors together, and [`aggregator`] writes the reports of the
//! buckets stored on a Redis microcloud. [`metrics`] publishes the counters of a node on
//! `/metrics` and to `imsitrace status`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod aggregator;
pub mod batch;
pub mod bucket;
pub mod cluster;
pub mod flow;
pub mod metrics;
pub mod microcloud;
pub mod ndpi;
pub mod output;
pub mod pipeline;
pub mod session;
pub mod tracker;
pub mod tunnel;
pub mod wire;
