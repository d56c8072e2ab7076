//! Live capture from network interfaces with libpcap.
//!
//! Every interface of a run is opened in non-blocking mode and read by the one capture
//! thread, which waits on all their descriptors with `poll(2)`. Frames of all interfaces
//! therefore get one capture sequence, the order that the control-before-user contract of
//! [`crate::pipeline::route`] relies on. An interface that fails after the start is closed,
//! logged and reopened with capped exponential backoff ([`restart`]); the others go on.

pub mod error;
pub mod filter;
pub mod interface;
pub mod options;
mod poll;
pub mod restart;
pub mod source;
pub mod stats;

pub use error::{LiveError, LiveErrorKind};
pub use filter::{check_filter, default_filter, default_filter_for};
pub use options::LiveOptions;
pub use source::LiveSource;
pub use stats::InterfaceStats;

#[cfg(test)]
mod overload_tests;
