//! The node sessions that the membership actor tracks, and the log line of a session that
//! closed before it was ready.

use std::collections::HashMap;
use std::net::SocketAddr;

use ractor::{ActorId, ActorRef};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeId, NodeSessionMessage};

use super::deferred::DeferredLine;
use super::heartbeat::HEARTBEAT_TIMEOUT;
use super::wire::NodeAddress;

/// Stop reasons that ractor_cluster 0.16.5 gives a `NodeSession`.
mod reason {
    /// The cookie challenge failed, or the peer rejected the session.
    pub const AUTH_FAIL: &str = "auth_fail";
    /// The TCP connection closed.
    pub const TCP_CLOSED: &str = "tcp_session_closed";
    /// The peer is this node.
    pub const SELF_CONNECTION: &str = "self_connection";
    /// Another session with the same node was kept instead.
    pub const ELECTION_LOST: &str = "session_election_lost";
    /// Another session with the same node was kept instead.
    pub const DUPLICATE: &str = "duplicate_connection";
}

/// One node session.
#[derive(Debug)]
pub struct Session {
    /// ractor_cluster's record of the session: the peer's name, once the handshake got it,
    /// and its socket address.
    pub info: NodeServerSessionInformation,
    /// The cookie challenge succeeded.
    pub authenticated: bool,
    /// The session finished its state exchange and is the one kept for its node.
    pub ready: bool,
    /// Stop reason of the session actor, from its supervision event.
    pub stop_reason: Option<String>,
}

impl Session {
    /// Returns the peer's full name and advertised address, when the handshake got them.
    pub fn peer(&self) -> Option<NodeAddress> {
        self.info.peer_name.as_ref().map(|name| NodeAddress { name: name.name.clone(), address: name.connection_string.clone() })
    }

    /// Returns the peer's socket address when this node opened the session.
    pub fn outgoing_socket(&self) -> Option<SocketAddr> {
        if self.info.is_server {
            return None;
        }
        self.info.peer_addr.parse().ok()
    }

    /// Returns `incoming` or `outgoing`.
    pub fn direction(&self) -> &'static str {
        if self.info.is_server {
            "incoming"
        } else {
            "outgoing"
        }
    }
}

/// Every open session, by ractor_cluster node id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_node: HashMap<NodeId, Session>,
}

impl Sessions {
    /// Records a new session.
    pub fn opened(&mut self, info: NodeServerSessionInformation) {
        let session = Session { info, authenticated: false, ready: false, stop_reason: None };
        self.by_node.insert(session.info.node_id, session);
    }

    /// Returns the session, creating it when its open event was missed.
    pub fn entry(&mut self, info: NodeServerSessionInformation) -> &mut Session {
        let node_id = info.node_id;
        let session = self.by_node.entry(node_id).or_insert_with(|| Session { info: info.clone(), authenticated: false, ready: false, stop_reason: None });
        session.info = info;
        session
    }

    /// Removes and returns a closed session.
    pub fn remove(&mut self, node_id: NodeId) -> Option<Session> {
        self.by_node.remove(&node_id)
    }

    /// Records the stop reason of the session whose actor is `actor`.
    pub fn set_stop_reason(&mut self, actor: ActorId, reason: String) {
        if let Some(session) = self.by_node.values_mut().find(|session| session.info.actor.get_id() == actor) {
            session.stop_reason = Some(reason);
        }
    }

    /// Returns the ready session with the node `name`, other than `except`.
    pub fn ready_with(&self, name: &str, except: Option<NodeId>) -> Option<NodeId> {
        self.by_node
            .values()
            .filter(|session| session.ready && Some(session.info.node_id) != except)
            .find(|session| session.peer().is_some_and(|peer| peer.name == name))
            .map(|session| session.info.node_id)
    }

    /// Returns the ready outgoing session on `socket`.
    pub fn ready_on(&self, socket: SocketAddr) -> Option<NodeId> {
        self.by_node.values().find(|session| session.ready && session.outgoing_socket() == Some(socket)).map(|session| session.info.node_id)
    }

    /// Returns the outgoing sessions on `socket` that are not ready.
    pub fn pending_on(&self, socket: SocketAddr) -> Vec<ActorRef<NodeSessionMessage>> {
        self.by_node
            .values()
            .filter(|session| !session.ready && session.outgoing_socket() == Some(socket))
            .map(|session| session.info.actor.clone())
            .collect()
    }

    /// Returns the sorted full names of the nodes with a ready session.
    pub fn ready_peers(&self) -> Vec<NodeAddress> {
        let mut peers: Vec<NodeAddress> = self.by_node.values().filter(|session| session.ready).filter_map(Session::peer).collect();
        peers.sort();
        peers.dedup_by(|a, b| a.name == b.name);
        peers
    }
}

/// Returns whether the session was closed because ractor_cluster kept another session with
/// the same node, as after two nodes connect to each other at the same time.
pub fn is_duplicate(session: &Session) -> bool {
    matches!(session.stop_reason.as_deref(), Some(reason::ELECTION_LOST | reason::DUPLICATE))
}

/// Logs a session that closed before it was ready, or returns the line to write later when
/// the close may be that of a duplicate session (see [`super::deferred`]), with the node
/// whose ready session cancels it. A self-connection is logged at error level, a known
/// duplicate at debug level.
pub fn log_unready_close(session: &Session) -> Option<(DeferredLine, Option<String>)> {
    let address = session.info.peer_addr.clone();
    let claimed = session.peer().map(|peer| peer.name);
    let claimed_or_dash = claimed.clone().unwrap_or_else(|| "-".to_owned());
    let direction = session.direction();
    match (session.stop_reason.as_deref(), session.info.is_server) {
        (Some(reason::AUTH_FAIL), true) => Some((DeferredLine::RejectedIncoming { address, claimed: claimed_or_dash }, claimed)),
        (Some(reason::AUTH_FAIL), false) => {
            tracing::error!(%address, peer = %claimed_or_dash, "cluster node rejected this node: authentication failed, so its cluster cookie differs from this node's");
            None
        }
        (Some(reason::TCP_CLOSED) | None, false) if !session.authenticated => Some((DeferredLine::ClosedDuringHandshake { address, peer: claimed_or_dash }, claimed)),
        (Some(reason::TCP_CLOSED) | None, true) => Some((DeferredLine::IncomingClosed { address, claimed: claimed_or_dash }, claimed)),
        (Some(reason::SELF_CONNECTION), _) => {
            tracing::error!(%address, "cluster connection leads back to this node; remove its address from cluster.seeds");
            None
        }
        (Some(reason::ELECTION_LOST | reason::DUPLICATE | HEARTBEAT_TIMEOUT), _) => {
            tracing::debug!(%address, %direction, reason = session.stop_reason.as_deref().unwrap_or("-"), "duplicate cluster session closed");
            None
        }
        (reason, _) => {
            tracing::warn!(%address, %direction, claimed_name = %claimed_or_dash, reason = reason.unwrap_or("unknown"), "cluster session closed before it was ready");
            None
        }
    }
}
