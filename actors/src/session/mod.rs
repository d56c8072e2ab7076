//! Subscriber sessions: request/response pairing, the session state machine and the control
//! TEID index. The user-plane tunnel table lives in the shards, fed by [`event::SessionEvent`]s.
pub mod cause;
pub mod event;
pub mod format;
pub mod message_type;
pub mod pending;
pub mod state;
pub mod table;
mod v1;
mod v2;

pub use event::{EventKind, SessionEvent, Tunnel, TunnelKey, TunnelRole};
pub use table::{Attribution, MessageContext, SessionConfig, SessionStats, SessionTable};

#[cfg(test)]
mod tests;
