//! The actors of one node and the `analyze` run that wires them together:
//!
//! ```text
//! capture (blocking thread) --GTP-C--> control --events--> shards, sink
//!        '--G-PDU by inner flow--> shard k --flows--> buckets --> sink (microcloud)
//! control, shards --frames of tracked subscribers--> pcap writer
//! shards <--unknown tunnel keys, owners--> lookup (microcloud tunnel index)
//! ```
pub mod capture;
pub mod control;
pub mod live;
pub mod lookup;
pub mod reader;
pub mod records;
pub mod route;
pub mod run;
pub mod shard;
pub mod shard_work;
pub mod sink;
pub mod sink_buffer;
pub mod summary;
pub mod writer;

pub use run::{analyze, analyze_in_cluster, AnalyzeConfig, AnalyzeError, ClusterEvents};
pub use summary::Summary;
