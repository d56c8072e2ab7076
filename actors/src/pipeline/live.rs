//! Live capture from network interfaces with libpcap.
//!
//! Every interface of a run is opened in non-blocking mode and read by the one capture
//! thread, which waits on all their descriptors with `poll(2)`. Frames of all interfaces
//! therefore get one capture sequence, the order that the control-before-user contract of
//! [`crate::pipeline::route`] relies on. That sequence follows the order of reading, not
//! packet time across interfaces: a Create Session Response waiting in one interface's
//! buffer may be read after a G-PDU of its session from another, and late binding covers
//! such a G-PDU. An interface that fails after the start is closed, logged and reopened
//! with capped exponential backoff ([`restart`]); the others go on.
//!
//! NOTE: a panic of the capture thread ends the run; only interfaces are reopened. A new
//! capture actor would restart the batch numbering that the shards order G-PDUs by.

pub mod error;
pub mod filter;
pub mod interface;
pub mod link;
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
