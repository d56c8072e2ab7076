//! The heartbeat actor: one per node, in the process group [`HEARTBEAT_GROUP`]. Every
//! heartbeat interval it sends a [`Ping`] to the heartbeat actor of every connected node,
//! and it closes the session of a peer from which no ping arrived for the peer timeout.
//!
//! ractor_cluster 0.16 notices a closed TCP connection but not a half-open one (a peer that
//! froze or lost its network without closing the socket): its own pings measure latency
//! and time nothing out. Closing the session hands the peer to the reconnect loop of the
//! membership actor.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef, Message};
use ractor_cluster::{NodeId, NodeSessionMessage};

use super::codec::{self, Remote};
use super::membership::MembershipMessage;
use super::wire::{is_transient, NodeAddress, Ping};

/// Process group of the heartbeat actors, one per node.
pub const HEARTBEAT_GROUP: &str = "imsitrace.heartbeat";

/// Stop reason given to a node session closed for silence.
pub const HEARTBEAT_TIMEOUT: &str = "heartbeat_timeout";

/// ractor variant name of [`HeartbeatMessage::Ping`] on the wire.
const PING_VARIANT: &str = "ping";

/// Messages of the heartbeat actor. Only [`HeartbeatMessage::Ping`] crosses the wire.
pub enum HeartbeatMessage {
    /// Send a ping to every peer and close the sessions of silent peers.
    Tick,
    /// A ping from another node, or the reason it could not be decoded.
    Ping(Remote<Ping>),
    /// A session with a node became ready.
    PeerUp {
        /// The node.
        peer: NodeAddress,
        /// The ractor_cluster session id.
        node_id: NodeId,
        /// The session actor, stopped when the node falls silent.
        session: ActorRef<NodeSessionMessage>,
    },
    /// The session `node_id` closed.
    PeerDown(NodeId),
}

impl Message for HeartbeatMessage {
    fn serializable() -> bool {
        true
    }

    /// Encodes a ping for a remote heartbeat actor. The local-only variants are never sent
    /// to another node.
    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            HeartbeatMessage::Ping(Remote::Valid(ping)) => Ok(codec::cast(PING_VARIANT, &ping)),
            _ => Err(BoxedDowncastErr),
        }
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        codec::uncast(PING_VARIANT, message).map(HeartbeatMessage::Ping)
    }
}

/// Start arguments of the heartbeat actor.
pub struct HeartbeatArgs {
    /// This node.
    pub own: NodeAddress,
    /// Time between two pings.
    pub interval: Duration,
    /// Silence after which a peer's session is closed.
    pub peer_timeout: Duration,
    /// Receives the nodes that peers advertise.
    pub membership: ActorRef<MembershipMessage>,
}

/// A connected peer.
struct Peer {
    address: NodeAddress,
    node_id: NodeId,
    session: ActorRef<NodeSessionMessage>,
    last_heard: Instant,
}

/// State of the heartbeat actor.
pub struct HeartbeatState {
    args: HeartbeatArgs,
    sequence: u64,
    peers: HashMap<NodeId, Peer>,
    invalid_pings: u64,
    last_tick: Instant,
}

/// The heartbeat actor.
pub struct HeartbeatActor;

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMessage;
    type State = HeartbeatState;
    type Arguments = HeartbeatArgs;

    async fn pre_start(&self, myself: ActorRef<HeartbeatMessage>, args: HeartbeatArgs) -> Result<HeartbeatState, ActorProcessingErr> {
        ractor::pg::join(HEARTBEAT_GROUP.to_owned(), vec![myself.get_cell()]);
        myself.send_interval(args.interval, || HeartbeatMessage::Tick);
        Ok(HeartbeatState { args, sequence: 0, peers: HashMap::new(), invalid_pings: 0, last_tick: Instant::now() })
    }

    async fn handle(&self, _myself: ActorRef<HeartbeatMessage>, message: HeartbeatMessage, state: &mut HeartbeatState) -> Result<(), ActorProcessingErr> {
        match message {
            HeartbeatMessage::Tick => {
                let now = Instant::now();
                state.send_pings();
                state.restart_clocks_after_stall(now);
                state.close_silent_sessions(now);
            }
            HeartbeatMessage::Ping(Remote::Valid(ping)) => state.record_ping(ping),
            HeartbeatMessage::Ping(Remote::Invalid(reason)) => state.record_invalid(&reason),
            HeartbeatMessage::PeerUp { peer, node_id, session } => {
                state.peers.insert(node_id, Peer { address: peer, node_id, session, last_heard: Instant::now() });
            }
            HeartbeatMessage::PeerDown(node_id) => {
                state.peers.remove(&node_id);
            }
        }
        Ok(())
    }
}

impl HeartbeatState {
    /// Sends a ping, with the list of connected nodes except transient ones, to every
    /// remote heartbeat actor.
    fn send_pings(&mut self) {
        let mut peers: Vec<NodeAddress> = self.peers.values().filter(|peer| !is_transient(&peer.address.name)).map(|peer| peer.address.clone()).collect();
        peers.sort();
        peers.dedup();
        let ping = Ping { from: self.args.own.clone(), sequence: self.sequence, peers };
        self.sequence += 1;
        for member in ractor::pg::get_members(&HEARTBEAT_GROUP.to_owned()) {
            if member.get_id().is_local() {
                continue;
            }
            if let Err(error) = member.send_message(HeartbeatMessage::Ping(Remote::Valid(ping.clone()))) {
                tracing::debug!(actor = %member.get_id(), %error, "cannot send a heartbeat ping");
            }
        }
    }

    /// Restarts every peer's silence clock when this node itself missed ticks for longer
    /// than the peer timeout, as a stopped process or an overloaded host does. The pings
    /// that peers sent meanwhile wait unread in the sockets, so the peers may not be silent.
    fn restart_clocks_after_stall(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        if gap <= self.args.peer_timeout {
            return;
        }
        tracing::warn!(stalled_s = gap.as_secs_f64(), "this node ran no heartbeat tick for longer than the peer timeout; restarting the peers' timeouts");
        for peer in self.peers.values_mut() {
            peer.last_heard = now;
        }
    }

    /// Stops the session of every peer not heard from for the peer timeout.
    fn close_silent_sessions(&mut self, now: Instant) {
        let timeout = self.args.peer_timeout;
        let silent: Vec<NodeId> = self.peers.values().filter(|peer| now.saturating_duration_since(peer.last_heard) > timeout).map(|peer| peer.node_id).collect();
        for node_id in silent {
            let Some(peer) = self.peers.remove(&node_id) else { continue };
            let silent_s = now.saturating_duration_since(peer.last_heard).as_secs_f64();
            tracing::warn!(peer = %peer.address.name, address = %peer.address.address, silent_s, timeout_s = timeout.as_secs_f64(), "cluster node sent no heartbeat within the peer timeout; closing its session");
            peer.session.stop(Some(HEARTBEAT_TIMEOUT.to_owned()));
        }
    }

    fn record_ping(&mut self, ping: Ping) {
        let now = Instant::now();
        for peer in self.peers.values_mut().filter(|peer| peer.address.name == ping.from.name) {
            peer.last_heard = now;
        }
        if let Err(error) = self.args.membership.cast(MembershipMessage::Advertised(ping.peers)) {
            tracing::debug!(%error, "the membership actor stopped; advertised nodes dropped");
        }
    }

    /// Counts an undecodable ping and logs the first one and every 100th after it.
    fn record_invalid(&mut self, reason: &codec::InvalidPayload) {
        self.invalid_pings += 1;
        if self.invalid_pings % 100 == 1 {
            tracing::warn!(%reason, invalid_pings = self.invalid_pings, "dropped a heartbeat ping from another node that could not be decoded");
        }
    }
}
