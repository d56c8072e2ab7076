//! The membership actor: owns ractor_cluster's `NodeServer` and the heartbeat actor, keeps
//! every seed and advertised node connected, and logs joins, leaves, retries and refusals
//! with node names. Transient nodes (see [`super::wire::is_transient`]) are logged at
//! debug level only and are not in the `cluster peers` line.
//!
//! ractor_cluster 0.16 reconnects nothing by itself after a session closes, and its
//! `client_connect` returns once the socket is open, before authentication. A connection
//! therefore counts only when the node server reports the session ready. An attempt that
//! is not ready within the handshake timeout is stopped and retried.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{IncomingEncryptionMode, NodeServer, NodeServerMessage};

use super::config::ClusterConfig;
use super::connect::{connect, ConnectFailure};
use super::deferred::{DeferredLine, DeferredLogs};
use super::events::EventForwarder;
use super::heartbeat::{HeartbeatActor, HeartbeatArgs, HeartbeatMessage};
use super::sessions::{is_duplicate, log_unready_close, Sessions};
use super::targets::{TargetEvent, TargetSettings, Targets};
use super::tls::TlsSetup;
use super::wire::{is_transient, NodeAddress};

/// Time between two checks of the connection targets.
const TICK: Duration = Duration::from_millis(100);

/// Time a node may go without a ready session before its leave is logged: a session lost
/// to a simultaneous connection is usually replaced within the minimum reconnect delay.
const LEAVE_GRACE: Duration = Duration::from_secs(2);

/// Maximum time to stop the node server and its sessions.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages of the membership actor.
#[derive(ractor_cluster::RactorMessage)]
pub enum MembershipMessage {
    /// A socket was handed to the node server.
    SessionOpened(NodeServerSessionInformation),
    /// A session passed the cookie challenge.
    SessionAuthenticated(NodeServerSessionInformation),
    /// A session finished its state exchange and is the one kept for its node.
    SessionReady(NodeServerSessionInformation),
    /// A session closed.
    SessionClosed(NodeServerSessionInformation),
    /// Start due connection attempts and time out slow handshakes.
    Tick,
    /// A connection attempt to `address` ended.
    Connected {
        /// `HOST:PORT` of the target.
        address: String,
        /// The socket's peer address, or why the attempt failed.
        result: Result<SocketAddr, ConnectFailure>,
    },
    /// Nodes that a peer has sessions with, from its heartbeat.
    Advertised(Vec<NodeAddress>),
    /// Returns the nodes with a ready session, sorted by name.
    Peers(RpcReplyPort<Vec<NodeAddress>>),
}

/// Start arguments of the membership actor.
pub struct MembershipArgs {
    /// The cluster settings.
    pub config: ClusterConfig,
    /// TLS settings loaded from `config.tls`.
    pub tls: Option<TlsSetup>,
}

/// State of the membership actor.
pub struct MembershipState {
    config: ClusterConfig,
    tls: Option<TlsSetup>,
    server: ActorRef<NodeServerMessage>,
    heartbeat: ActorRef<HeartbeatMessage>,
    sessions: Sessions,
    targets: Targets,
    /// Nodes whose join was logged and whose leave was not.
    announced: BTreeSet<String>,
    /// Rejections and leaves that wait until a duplicate session is ruled out.
    deferred: DeferredLogs,
    /// The peer names of the last `cluster peers` line.
    logged_peers: Vec<String>,
}

/// The membership actor.
pub struct MembershipActor;

impl Actor for MembershipActor {
    type Msg = MembershipMessage;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(&self, myself: ActorRef<MembershipMessage>, args: MembershipArgs) -> Result<MembershipState, ActorProcessingErr> {
        let MembershipArgs { config, tls } = args;
        let own = NodeAddress { name: config.full_name(), address: config.advertise_address() };

        let server = start_node_server(&myself, &config, tls.as_ref()).await?;
        let forwarder = EventForwarder { membership: myself.clone() };
        let subscribe = NodeServerMessage::SubscribeToEvents { id: "imsitrace.membership".to_owned(), subscription: Box::new(forwarder) };
        server.cast(subscribe).map_err(|_| "the cluster node server stopped at start".to_owned())?;

        let heartbeat_args =
            HeartbeatArgs { own: own.clone(), interval: config.heartbeat_interval, peer_timeout: config.peer_timeout, membership: myself.clone() };
        let (heartbeat, _) = Actor::spawn_linked(None, HeartbeatActor, heartbeat_args, myself.get_cell()).await?;

        let settings = TargetSettings {
            handshake_timeout: config.handshake_timeout,
            backoff_min: config.reconnect_min,
            backoff_max: config.reconnect_max,
            advertised_ttl: config.peer_timeout,
        };
        let targets = Targets::new(own.clone(), &config.seeds, settings, Instant::now());

        tracing::info!(
            node = %own.name, listen = %format!("{}:{}", config.listen_address, config.port), advertise = %own.address,
            seeds = %config.seeds.join(", "), tls = config.tls.is_some(), "cluster membership started"
        );
        myself.send_interval(TICK, || MembershipMessage::Tick);
        Ok(MembershipState {
            config,
            tls,
            server,
            heartbeat,
            sessions: Sessions::default(),
            targets,
            announced: BTreeSet::new(),
            deferred: DeferredLogs::default(),
            logged_peers: Vec::new(),
        })
    }

    async fn post_stop(&self, _myself: ActorRef<MembershipMessage>, state: &mut MembershipState) -> Result<(), ActorProcessingErr> {
        state.heartbeat.stop(None);
        state.server.get_cell().stop_children_and_wait(Some("node stopping".to_owned()), Some(STOP_TIMEOUT)).await;
        let _ = state.server.stop_and_wait(Some("node stopping".to_owned()), Some(STOP_TIMEOUT)).await;
        tracing::info!(node = %state.config.full_name(), "cluster membership stopped");
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<MembershipMessage>, message: MembershipMessage, state: &mut MembershipState) -> Result<(), ActorProcessingErr> {
        match message {
            MembershipMessage::SessionOpened(info) => {
                // The monitor delivers the session's stop reason to `handle_supervisor_evt`.
                myself.get_cell().monitor(info.actor.get_cell());
                state.sessions.opened(info);
            }
            MembershipMessage::SessionAuthenticated(info) => state.sessions.entry(info).authenticated = true,
            MembershipMessage::SessionReady(info) => state.session_ready(info),
            MembershipMessage::SessionClosed(info) => state.session_closed(&info),
            MembershipMessage::Tick => {
                state.write_deferred();
                state.poll_targets(&myself);
            }
            MembershipMessage::Connected { address, result } => state.attempt_ended(&address, result),
            MembershipMessage::Advertised(nodes) => {
                let sessions = &state.sessions;
                let events = state.targets.advertised(&nodes, Instant::now(), |name| sessions.ready_with(name, None).is_some());
                state.apply_target_events(&myself, events);
            }
            MembershipMessage::Peers(reply) => {
                let _ = reply.send(state.sessions.ready_peers());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(&self, myself: ActorRef<MembershipMessage>, event: SupervisionEvent, state: &mut MembershipState) -> Result<(), ActorProcessingErr> {
        let (actor, reason) = match event {
            SupervisionEvent::ActorTerminated(actor, _, reason) => (actor, reason.unwrap_or_else(|| "stopped".to_owned())),
            SupervisionEvent::ActorFailed(actor, error) => (actor, format!("failed: {error}")),
            _ => return Ok(()),
        };
        let id = actor.get_id();
        if id == state.server.get_id() || id == state.heartbeat.get_id() {
            tracing::error!(actor = %id, %reason, "a cluster actor stopped; this node leaves the cluster");
            myself.stop(Some(reason));
            return Ok(());
        }
        state.sessions.set_stop_reason(id, reason);
        Ok(())
    }
}

/// Starts the node server, linked to the membership actor, listening on the configured
/// address and port.
async fn start_node_server(
    myself: &ActorRef<MembershipMessage>,
    config: &ClusterConfig,
    tls: Option<&TlsSetup>,
) -> Result<ActorRef<NodeServerMessage>, ActorProcessingErr> {
    let encryption = tls.map(|tls| IncomingEncryptionMode::Tls(tls.acceptor.clone()));
    let server = NodeServer::new(
        config.port,
        config.cookie.clone(),
        config.name.clone(),
        config.advertise_host.clone(),
        encryption,
        Some(NodeConnectionMode::Isolated),
    )
    .with_listen_addr(config.listen_address);
    let (server, _) = Actor::spawn_linked(None, server, (), myself.get_cell())
        .await
        .map_err(|error| format!("cannot listen for cluster connections on {}:{}: {error}", config.listen_address, config.port))?;
    Ok(server)
}

impl MembershipState {
    fn session_ready(&mut self, info: NodeServerSessionInformation) {
        let node_id = info.node_id;
        let session = self.sessions.entry(info);
        session.ready = true;
        let Some(peer) = session.peer() else { return };
        let socket = session.outgoing_socket();
        let (direction, address, actor) = (session.direction(), session.info.peer_addr.clone(), session.info.actor.clone());
        self.targets.session_ready(node_id, &peer, socket);
        if is_transient(&peer.name) {
            tracing::debug!(peer = %peer.name, %address, %direction, "transient cluster node joined");
        } else if self.announced.insert(peer.name.clone()) {
            tracing::info!(peer = %peer.name, %address, advertised = %peer.address, %direction, "cluster node joined");
        }
        let _ = self.heartbeat.cast(HeartbeatMessage::PeerUp { peer, node_id, session: actor });
        self.log_peers();
    }

    fn session_closed(&mut self, info: &NodeServerSessionInformation) {
        let Some(mut session) = self.sessions.remove(info.node_id) else { return };
        // The event carries the peer name that the handshake got, if any.
        session.info = info.clone();
        let _ = self.heartbeat.cast(HeartbeatMessage::PeerDown(info.node_id));
        let peer = session.peer();
        let replacement = peer.as_ref().and_then(|peer| self.sessions.ready_with(&peer.name, None));
        let grace = Instant::now() + self.config.handshake_timeout;
        if !session.ready {
            if let Some((line, cancelled_by)) = log_unready_close(&session) {
                self.deferred.push(line, cancelled_by, grace);
            }
        } else if let Some(transient) = peer.as_ref().filter(|peer| is_transient(&peer.name)) {
            tracing::debug!(peer = %transient.name, address = %session.info.peer_addr, reason = ?session.stop_reason, "transient cluster node left");
        } else if let (Some(peer), None) = (&peer, replacement) {
            let reason = session.stop_reason.clone().unwrap_or_else(|| "unknown".to_owned());
            let line = DeferredLine::Left { peer: peer.name.clone(), address: session.info.peer_addr.clone(), reason };
            self.deferred.push(line, Some(peer.name.clone()), Instant::now() + LEAVE_GRACE);
        }
        let events = self.targets.session_closed(info.node_id, session.outgoing_socket(), replacement, Instant::now());
        if is_duplicate(&session) {
            // The kept session makes the target connected once it is ready; until then the
            // target waits for its retry as after any failed handshake.
            tracing::debug!(?events, "duplicate cluster session closed");
        } else {
            self.log_target_events(events);
        }
        self.log_peers();
    }

    /// Writes the deferred lines whose grace period ended.
    fn write_deferred(&mut self) {
        let sessions = &self.sessions;
        let due = self.deferred.take_due(Instant::now(), |name| sessions.ready_with(name, None).is_some());
        for line in &due {
            self.write_line(line);
        }
        if !due.is_empty() {
            self.log_peers();
        }
    }

    /// Writes a line; a leave also ends the node's announced membership.
    fn write_line(&mut self, line: &DeferredLine) {
        if let Some(peer) = line.left_peer() {
            if !self.announced.remove(peer) {
                return;
            }
        }
        line.emit();
    }

    fn poll_targets(&mut self, myself: &ActorRef<MembershipMessage>) {
        let sessions = &self.sessions;
        let events = self.targets.poll(Instant::now(), |name| sessions.ready_with(name, None));
        self.apply_target_events(myself, events);
    }

    fn attempt_ended(&mut self, address: &str, result: Result<SocketAddr, ConnectFailure>) {
        match result {
            Ok(socket) => {
                let ready = self.sessions.ready_on(socket);
                self.targets.connect_succeeded(address, socket, Instant::now(), ready);
            }
            Err(failure) => {
                let Some(retry_in) = self.targets.connect_failed(address, Instant::now()) else { return };
                let retry_in_s = retry_in.as_secs_f64();
                match failure {
                    ConnectFailure::Tls(_) => tracing::error!(%address, error = %failure, retry_in_s, "TLS handshake with cluster node failed; check cluster.tls on both nodes"),
                    _ => tracing::warn!(%address, error = %failure, retry_in_s, "cannot connect to cluster node; retrying"),
                }
            }
        }
    }

    /// Starts the attempts among `events` and logs the others.
    fn apply_target_events(&mut self, myself: &ActorRef<MembershipMessage>, events: Vec<TargetEvent>) {
        for event in events {
            match event {
                TargetEvent::Connect { address, origin } => {
                    tracing::debug!(%address, target = origin.label(), "connecting to cluster node");
                    self.spawn_attempt(myself, address);
                }
                TargetEvent::HandshakeTimedOut { address, socket, retry_in } => {
                    tracing::warn!(%address, timeout_s = self.config.handshake_timeout.as_secs_f64(), retry_in_s = retry_in.as_secs_f64(), "cluster handshake timed out; retrying");
                    for session in self.sessions.pending_on(socket) {
                        session.stop(Some("handshake_timeout".to_owned()));
                    }
                }
                other => self.log_target_events(vec![other]),
            }
        }
    }

    /// Logs events that start no attempt.
    fn log_target_events(&self, events: Vec<TargetEvent>) {
        for event in events {
            match event {
                TargetEvent::HandshakeFailed { address, retry_in } => {
                    tracing::warn!(%address, retry_in_s = retry_in.as_secs_f64(), "cluster handshake failed; retrying");
                }
                TargetEvent::Lost { address, origin, retry_in } => {
                    tracing::info!(%address, target = origin.label(), retry_in_s = retry_in.as_secs_f64(), "reconnecting to lost cluster node");
                }
                TargetEvent::Forgotten { address } => tracing::info!(%address, "no peer advertises this cluster node any more; not reconnecting"),
                TargetEvent::Discovered { node } => tracing::info!(peer = %node.name, address = %node.address, "connecting to a cluster node advertised by a peer"),
                TargetEvent::Connect { .. } | TargetEvent::HandshakeTimedOut { .. } => {}
            }
        }
    }

    fn spawn_attempt(&self, myself: &ActorRef<MembershipMessage>, address: String) {
        let (server, tls, limit, membership) = (self.server.clone(), self.tls.clone(), self.config.handshake_timeout, myself.clone());
        tokio::spawn(async move {
            let result = connect(&server, &address, tls.as_ref(), limit).await;
            let _ = membership.cast(MembershipMessage::Connected { address, result });
        });
    }

    /// Logs the `cluster peers` line when the set of announced nodes changed.
    fn log_peers(&mut self) {
        let names: Vec<String> = self.announced.iter().cloned().collect();
        if names != self.logged_peers {
            tracing::info!(count = names.len(), peers = %names.join(", "), "cluster peers");
            self.logged_peers = names;
        }
    }
}
