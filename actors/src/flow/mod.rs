//! Per-subscriber flows on the inner 5-tuple.
//!
//! A flow is keyed by the subscriber's IMSI and the canonical inner 5-tuple, so both
//! directions of a connection meet in one flow and two subscribers behind the same
//! addresses (private UE address pools reused across APNs) never share one. Time is the
//! packet clock: every timeout is measured against packet timestamps, so replaying a
//! capture gives the same flows as capturing it live.
//!
//! The table is plain synchronous code. The per-packet path allocates nothing once the
//! table has reached its steady size, and it logs nothing: [`FlowStats`] counts instead.

pub mod classify;
mod deadline;
mod record;
mod table;

#[cfg(test)]
mod tests;

pub use record::{ExpiredFlow, ExpiryReason, FlowStats, FlowTimeouts};
pub use table::FlowTable;
