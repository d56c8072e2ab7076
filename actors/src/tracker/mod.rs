//! IMSI trackers: an operator attaches a tracker to one subscriber, and every probe writes
//! that subscriber's frames (GTP-C and GTP-U) to pcap files next to the traffic, until the
//! tracker is detached or expires.
//!
//! Three kinds of actors take part, all reachable through process groups:
//! - the registry on each collector ([`protocol::REGISTRY_GROUP`]) keeps the registrations in
//!   the microcloud, writes the audit log, and broadcasts the full set of active trackers to
//!   the agents on every change and periodically;
//! - the agent on each probe ([`protocol::AGENTS_GROUP`]) applies that set to its pipeline,
//!   starts a pcap writer when a tracked subscriber's frames appear, reports per-tracker
//!   counts to the registry and serves its files to `imsitrace fetch`;
//! - the CLI joins the cluster for the duration of one command.
//!
//! The set is sent whole, never as a change, so an agent that missed messages or restarted
//! converges on the next broadcast.

pub mod agent;
pub mod file_writer;
pub mod files;
pub mod protocol;
pub mod router;
pub mod registry;
pub mod registry_audit;
pub mod registry_rules;
pub mod registry_store;
pub mod client;
pub mod merge;
