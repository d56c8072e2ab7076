//! Log lines about closed sessions that wait before they are written.
//!
//! When two nodes connect to each other at the same time, ractor_cluster 0.16.5 keeps one
//! session and closes the other. It gives the same stop reasons as for a rejection:
//! `auth_fail` on the accepting side and a closed TCP connection on the connecting side.
//! The two ends may even close different sessions, so a node can lose its only ready
//! session with a peer and reconnect at once. A rejection or a leave is therefore written
//! only when no session with the same node became ready within a grace period.

use std::time::Instant;

/// A line that waits for its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferredLine {
    /// This node closed an incoming session whose authentication failed.
    RejectedIncoming {
        /// The peer's socket address.
        address: String,
        /// The name the peer gave, unverified.
        claimed: String,
    },
    /// The peer closed an outgoing session before authentication.
    ClosedDuringHandshake {
        /// The peer's socket address.
        address: String,
        /// The name the peer gave, unverified, or `-`.
        peer: String,
    },
    /// The peer closed an incoming session before it was ready.
    IncomingClosed {
        /// The peer's socket address.
        address: String,
        /// The name the peer gave, unverified, or `-`.
        claimed: String,
    },
    /// The last ready session with a node closed.
    Left {
        /// The node's full name.
        peer: String,
        /// The peer's socket address.
        address: String,
        /// The stop reason of the closed session.
        reason: String,
    },
}

impl DeferredLine {
    /// Writes the line: rejections at error level, a leave at info level.
    pub fn emit(&self) {
        match self {
            DeferredLine::RejectedIncoming { address, claimed } => tracing::error!(
                %address, claimed_name = %claimed,
                "rejected a cluster connection: authentication failed, so the node's cookie differs from this node's cluster cookie"
            ),
            DeferredLine::ClosedDuringHandshake { address, peer } => tracing::error!(
                %address, %peer,
                "cluster node closed the connection during the handshake: it rejected this node's cookie or TLS certificate, or it is not an imsitrace node"
            ),
            DeferredLine::IncomingClosed { address, claimed } => {
                tracing::warn!(%address, claimed_name = %claimed, "cluster node closed its connection to this node before the session was ready")
            }
            DeferredLine::Left { peer, address, reason } => tracing::info!(%peer, %address, %reason, "cluster node left"),
        }
    }

    /// Returns the node name of a leave, whose announced membership ends with the line.
    pub fn left_peer(&self) -> Option<&str> {
        match self {
            DeferredLine::Left { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Deferred {
    deadline: Instant,
    /// The node whose ready session cancels the line.
    peer: Option<String>,
    line: DeferredLine,
}

/// The waiting lines.
#[derive(Debug, Default)]
pub struct DeferredLogs {
    waiting: Vec<Deferred>,
}

impl DeferredLogs {
    /// Adds a line, cancelled when a session with `peer` becomes ready before `deadline`.
    pub fn push(&mut self, line: DeferredLine, peer: Option<String>, deadline: Instant) {
        self.waiting.push(Deferred { deadline, peer, line });
    }

    /// Drops the lines whose node has a ready session and returns those whose deadline
    /// passed, in the order they were added.
    pub fn take_due(&mut self, now: Instant, ready: impl Fn(&str) -> bool) -> Vec<DeferredLine> {
        let mut due = Vec::new();
        self.waiting.retain(|deferred| {
            if deferred.peer.as_deref().is_some_and(&ready) {
                tracing::debug!(line = ?deferred.line, "a session with the node became ready; line dropped");
                return false;
            }
            if deferred.deadline <= now {
                due.push(deferred.line.clone());
                return false;
            }
            true
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rejected() -> DeferredLine {
        DeferredLine::RejectedIncoming { address: "127.0.0.1:5000".into(), claimed: "b@127.0.0.1".into() }
    }

    #[test]
    fn line_written_at_deadline() {
        let now = Instant::now();
        let mut logs = DeferredLogs::default();
        logs.push(rejected(), Some("b@127.0.0.1".into()), now + Duration::from_secs(1));
        assert_eq!(logs.take_due(now, |_| false), []);
        assert_eq!(logs.take_due(now + Duration::from_secs(1), |_| false), [rejected()]);
        assert_eq!(logs.take_due(now + Duration::from_secs(2), |_| false), [], "written once");
    }

    #[test]
    fn ready_session_cancels_line() {
        let now = Instant::now();
        let mut logs = DeferredLogs::default();
        logs.push(rejected(), Some("b@127.0.0.1".into()), now + Duration::from_secs(1));
        assert_eq!(logs.take_due(now + Duration::from_secs(5), |name| name == "b@127.0.0.1"), []);
    }

    #[test]
    fn unnamed_line_never_cancelled() {
        let now = Instant::now();
        let mut logs = DeferredLogs::default();
        let closed = DeferredLine::ClosedDuringHandshake { address: "127.0.0.1:5000".into(), peer: "-".into() };
        logs.push(closed.clone(), None, now);
        assert_eq!(logs.take_due(now, |_| true), [closed]);
    }
}
