//! The nodes this node connects to, and the state of each connection: seeds from the
//! configuration, and nodes that connected peers advertise in their heartbeats.
//!
//! Plain state with the time passed in, so the membership actor only moves messages. The
//! rules: a target is connected while a ready session with its node exists, in either
//! direction. Otherwise it is retried with capped exponential backoff: at the minimum
//! delay after a ready session closes, and with a doubled delay after each failed attempt.
//! Only the node whose full name sorts first connects to an advertised node, so that two
//! nodes do not keep opening sessions that ractor_cluster then closes as duplicates. An
//! advertised node that no peer has advertised for `advertised_ttl` is forgotten once it
//! is not connected; seeds are never forgotten. A transient node (see
//! [`super::wire::is_transient`]) is never a target, and a transient node itself connects
//! to every advertised node whatever the name order, because no node connects to it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ractor_cluster::NodeId;

use super::backoff::Backoff;
use super::wire::{is_transient, NodeAddress};

/// Source of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in `cluster.seeds`.
    Seed,
    /// Advertised in a connected peer's heartbeat.
    Advertised,
}

impl Origin {
    /// Returns `seed` or `advertised node`, for logs.
    pub fn label(self) -> &'static str {
        match self {
            Origin::Seed => "seed",
            Origin::Advertised => "advertised node",
        }
    }
}

/// State of the connection to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting until `retry_at` before the next attempt.
    Idle { retry_at: Instant },
    /// A connect attempt (TCP, and TLS when configured) is running.
    Connecting,
    /// The socket to `socket` is open and the session is authenticating.
    Handshaking { socket: SocketAddr, deadline: Instant },
    /// The session `node_id` with the target's node is ready.
    Connected { node_id: NodeId },
}

/// One node to stay connected to.
#[derive(Debug, Clone)]
struct Target {
    address: String,
    origin: Origin,
    /// Full node name, once a session with the target was ready or a peer advertised it.
    peer: Option<String>,
    state: State,
    backoff: Backoff,
    last_advertised: Instant,
}

/// Action or log line for the membership actor after a change of the targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEvent {
    /// Start a connection attempt to `address`.
    Connect {
        /// `HOST:PORT` to connect to.
        address: String,
        /// Seed or advertised node.
        origin: Origin,
    },
    /// The session on `socket` did not become ready within the handshake timeout: stop it.
    HandshakeTimedOut {
        /// `HOST:PORT` of the target.
        address: String,
        /// The socket's peer address.
        socket: SocketAddr,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The outgoing session to the target closed before it was ready.
    HandshakeFailed {
        /// `HOST:PORT` of the target.
        address: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The last ready session with the target's node closed.
    Lost {
        /// `HOST:PORT` of the target.
        address: String,
        /// Seed or advertised node.
        origin: Origin,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// An advertised node is no longer advertised by any peer and is not retried.
    Forgotten {
        /// `HOST:PORT` of the node.
        address: String,
    },
    /// A peer advertised a node that this node will connect to.
    Discovered {
        /// The node.
        node: NodeAddress,
    },
}

/// Settings of the targets.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// Maximum time from an open socket to a ready session.
    pub handshake_timeout: Duration,
    /// First delay between attempts.
    pub backoff_min: Duration,
    /// Maximum delay between attempts.
    pub backoff_max: Duration,
    /// Time after the last advertisement when an unconnected advertised node is forgotten.
    pub advertised_ttl: Duration,
}

/// Every target of this node.
#[derive(Debug)]
pub struct Targets {
    own: NodeAddress,
    settings: TargetSettings,
    targets: Vec<Target>,
}

impl Targets {
    /// Creates the targets with the seeds, all due at `now`.
    pub fn new(own: NodeAddress, seeds: &[String], settings: TargetSettings, now: Instant) -> Targets {
        let mut targets = Targets { own, settings, targets: Vec::new() };
        for seed in seeds {
            targets.add(seed.clone(), Origin::Seed, None, now);
        }
        targets
    }

    fn add(&mut self, address: String, origin: Origin, peer: Option<String>, now: Instant) {
        let backoff = Backoff::new(self.settings.backoff_min, self.settings.backoff_max);
        let state = State::Idle { retry_at: now };
        self.targets.push(Target { address, origin, peer, state, backoff, last_advertised: now });
    }

    /// Starts the attempts that are due, removes stale advertised nodes and times out slow
    /// handshakes. `ready` returns the ready session with a node, by full name.
    pub fn poll(&mut self, now: Instant, ready: impl Fn(&str) -> Option<NodeId>) -> Vec<TargetEvent> {
        let ttl = self.settings.advertised_ttl;
        let mut events = Vec::new();
        self.targets.retain(|target| {
            let stale = target.origin == Origin::Advertised && now.saturating_duration_since(target.last_advertised) > ttl;
            let connected = matches!(target.state, State::Connected { .. });
            if stale && !connected {
                events.push(TargetEvent::Forgotten { address: target.address.clone() });
            }
            !stale || connected
        });
        for target in &mut self.targets {
            events.extend(poll_target(target, now, &ready));
        }
        events
    }

    /// Records that the socket of an attempt to `address` is open on `socket`. `ready`
    /// returns the ready outgoing session on a socket, when it was ready before this call.
    pub fn connect_succeeded(&mut self, address: &str, socket: SocketAddr, now: Instant, ready: Option<NodeId>) {
        let deadline = now + self.settings.handshake_timeout;
        if let Some(target) = self.connecting(address) {
            target.state = match ready {
                Some(node_id) => State::Connected { node_id },
                None => State::Handshaking { socket, deadline },
            };
        }
    }

    /// Records a failed attempt to `address`. Returns the delay before the next one.
    pub fn connect_failed(&mut self, address: &str, now: Instant) -> Option<Duration> {
        let target = self.connecting(address)?;
        let retry_in = target.backoff.next_delay();
        target.state = State::Idle { retry_at: now + retry_in };
        Some(retry_in)
    }

    fn connecting(&mut self, address: &str) -> Option<&mut Target> {
        self.targets.iter_mut().find(|target| target.address == address && target.state == State::Connecting)
    }

    /// Marks as connected every target of the node `peer`: the outgoing attempt on
    /// `socket`, and any target with the peer's name or advertised address.
    pub fn session_ready(&mut self, node_id: NodeId, peer: &NodeAddress, socket: Option<SocketAddr>) {
        for target in &mut self.targets {
            let handshake = matches!(target.state, State::Handshaking { socket: open, .. } if Some(open) == socket);
            let same_node = target.peer.as_deref() == Some(peer.name.as_str()) || target.address == peer.address;
            if handshake || (same_node && !matches!(target.state, State::Connected { .. })) {
                target.state = State::Connected { node_id };
                target.peer = Some(peer.name.clone());
                target.backoff.reset();
            }
        }
    }

    /// Records that session `node_id` closed. `socket` is its peer address when it was an
    /// outgoing session, and `replacement` another ready session with the same node.
    pub fn session_closed(&mut self, node_id: NodeId, socket: Option<SocketAddr>, replacement: Option<NodeId>, now: Instant) -> Vec<TargetEvent> {
        let mut events = Vec::new();
        for target in &mut self.targets {
            match target.state {
                State::Connected { node_id: closed } if closed == node_id => {
                    if let Some(other) = replacement {
                        target.state = State::Connected { node_id: other };
                        continue;
                    }
                    target.backoff.reset();
                    let retry_in = target.backoff.next_delay();
                    target.state = State::Idle { retry_at: now + retry_in };
                    events.push(TargetEvent::Lost { address: target.address.clone(), origin: target.origin, retry_in });
                }
                State::Handshaking { socket: open, .. } if Some(open) == socket => {
                    let retry_in = target.backoff.next_delay();
                    target.state = State::Idle { retry_at: now + retry_in };
                    events.push(TargetEvent::HandshakeFailed { address: target.address.clone(), retry_in });
                }
                _ => {}
            }
        }
        events
    }

    /// Adds the nodes of a peer's heartbeat that this node should connect to, and renews the
    /// advertised nodes it already has. `ready` returns whether a node is connected already.
    pub fn advertised(&mut self, nodes: &[NodeAddress], now: Instant, ready: impl Fn(&str) -> bool) -> Vec<TargetEvent> {
        let mut events = Vec::new();
        for node in nodes {
            if node.name == self.own.name || node.address == self.own.address || is_transient(&node.name) {
                continue;
            }
            let connects_first = self.own.name < node.name || is_transient(&self.own.name);
            let known = self.targets.iter_mut().find(|target| target.address == node.address || target.peer.as_deref() == Some(node.name.as_str()));
            match known {
                Some(target) => target.last_advertised = now,
                None if connects_first && !ready(&node.name) => {
                    self.add(node.address.clone(), Origin::Advertised, Some(node.name.clone()), now);
                    events.push(TargetEvent::Discovered { node: node.clone() });
                }
                None => {}
            }
        }
        events
    }
}

/// Moves one target on at `now`.
fn poll_target(target: &mut Target, now: Instant, ready: &impl Fn(&str) -> Option<NodeId>) -> Option<TargetEvent> {
    match target.state {
        State::Idle { retry_at } if retry_at <= now => {
            if let Some(node_id) = target.peer.as_deref().and_then(ready) {
                target.state = State::Connected { node_id };
                return None;
            }
            target.state = State::Connecting;
            Some(TargetEvent::Connect { address: target.address.clone(), origin: target.origin })
        }
        State::Handshaking { socket, deadline } if deadline <= now => {
            let retry_in = target.backoff.next_delay();
            target.state = State::Idle { retry_at: now + retry_in };
            Some(TargetEvent::HandshakeTimedOut { address: target.address.clone(), socket, retry_in })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "127.0.0.1:7001";

    fn node(name: &str, address: &str) -> NodeAddress {
        NodeAddress { name: name.into(), address: address.into() }
    }

    fn settings() -> TargetSettings {
        TargetSettings {
            handshake_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(4),
            advertised_ttl: Duration::from_secs(5),
        }
    }

    fn seeded(now: Instant) -> Targets {
        Targets::new(node("b@127.0.0.1", "127.0.0.1:7002"), &[SEED.to_owned()], settings(), now)
    }

    fn socket() -> SocketAddr {
        SEED.parse().unwrap()
    }

    fn connect_event() -> TargetEvent {
        TargetEvent::Connect { address: SEED.into(), origin: Origin::Seed }
    }

    #[test]
    fn seed_connects_at_once() {
        let now = Instant::now();
        let mut targets = seeded(now);
        assert_eq!(targets.poll(now, |_| None), [connect_event()]);
        assert_eq!(targets.poll(now, |_| None), [], "one attempt at a time");
    }

    #[test]
    fn failures_back_off() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        assert_eq!(targets.connect_failed(SEED, now), Some(Duration::from_millis(500)));
        assert_eq!(targets.poll(now + Duration::from_millis(499), |_| None), []);
        let later = now + Duration::from_millis(500);
        assert_eq!(targets.poll(later, |_| None), [connect_event()]);
        assert_eq!(targets.connect_failed(SEED, later), Some(Duration::from_secs(1)));
    }

    #[test]
    fn ready_session_connects_seed() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        targets.connect_succeeded(SEED, socket(), now, None);
        targets.session_ready(3, &node("a@127.0.0.1", SEED), Some(socket()));
        let late = now + Duration::from_secs(60);
        assert_eq!(targets.poll(late, |_| None), [], "connected: no attempt, no handshake timeout");
        let events = targets.session_closed(3, Some(socket()), None, late);
        let lost = TargetEvent::Lost { address: SEED.into(), origin: Origin::Seed, retry_in: Duration::from_millis(500) };
        assert_eq!(events, [lost]);
        assert_eq!(targets.poll(late + Duration::from_millis(500), |_| None), [connect_event()]);
    }

    #[test]
    fn slow_handshake_times_out() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        targets.connect_succeeded(SEED, socket(), now, None);
        let deadline = now + Duration::from_secs(10);
        let timed_out = TargetEvent::HandshakeTimedOut { address: SEED.into(), socket: socket(), retry_in: Duration::from_millis(500) };
        assert_eq!(targets.poll(deadline, |_| None), [timed_out]);
    }

    #[test]
    fn rejected_handshake_backs_off() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        targets.connect_succeeded(SEED, socket(), now, None);
        let events = targets.session_closed(1, Some(socket()), None, now);
        assert_eq!(events, [TargetEvent::HandshakeFailed { address: SEED.into(), retry_in: Duration::from_millis(500) }]);
    }

    #[test]
    fn incoming_session_satisfies_seed() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        targets.connect_failed(SEED, now);
        // The seed's node connected to this node first; its advertised address is the seed.
        targets.session_ready(8, &node("a@127.0.0.1", SEED), None);
        assert_eq!(targets.poll(now + Duration::from_secs(60), |_| None), []);
        let events = targets.session_closed(8, None, Some(9), now);
        assert_eq!(events, [], "another ready session with the node remains");
    }

    #[test]
    fn known_peer_ready_skips_attempt() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.poll(now, |_| None);
        targets.connect_succeeded(SEED, socket(), now, None);
        targets.session_ready(3, &node("a@127.0.0.1", SEED), Some(socket()));
        targets.session_closed(3, Some(socket()), None, now);
        let retry = now + Duration::from_millis(500);
        assert_eq!(targets.poll(retry, |name| (name == "a@127.0.0.1").then_some(4)), [], "a new session with a@ exists");
    }

    #[test]
    fn advertised_node_added_by_lower_name() {
        let now = Instant::now();
        let mut targets = seeded(now);
        let nodes = [node("a@127.0.0.1", "127.0.0.1:7000"), node("c@127.0.0.1", "127.0.0.1:7003"), node("b@127.0.0.1", "127.0.0.1:7002")];
        let events = targets.advertised(&nodes, now, |_| false);
        assert_eq!(events, [TargetEvent::Discovered { node: node("c@127.0.0.1", "127.0.0.1:7003") }], "only c sorts after b, and b is this node");
        let polled = targets.poll(now, |_| None);
        assert!(polled.contains(&TargetEvent::Connect { address: "127.0.0.1:7003".into(), origin: Origin::Advertised }), "{polled:?}");
    }

    #[test]
    fn transient_node_never_a_target() {
        let now = Instant::now();
        let mut targets = seeded(now);
        let events = targets.advertised(&[node("cli-42@127.0.0.1", "127.0.0.1:0")], now, |_| false);
        assert_eq!(events, [], "a transient node is not added");
    }

    #[test]
    fn transient_node_connects_to_every_node() {
        let now = Instant::now();
        let mut targets = Targets::new(node("cli-42@127.0.0.1", "127.0.0.1:0"), &[SEED.to_owned()], settings(), now);
        let events = targets.advertised(&[node("a@127.0.0.1", "127.0.0.1:7000")], now, |_| false);
        assert_eq!(events, [TargetEvent::Discovered { node: node("a@127.0.0.1", "127.0.0.1:7000") }], "a sorts before cli-42 but is added");
    }

    #[test]
    fn stale_advertised_node_forgotten() {
        let now = Instant::now();
        let mut targets = seeded(now);
        targets.advertised(&[node("c@127.0.0.1", "127.0.0.1:7003")], now, |_| false);
        targets.poll(now, |_| None);
        targets.connect_failed("127.0.0.1:7003", now);
        let stale = now + Duration::from_secs(6);
        let events = targets.poll(stale, |_| None);
        assert!(events.contains(&TargetEvent::Forgotten { address: "127.0.0.1:7003".into() }), "{events:?}");
        assert!(!events.iter().any(|event| matches!(event, TargetEvent::Connect { address, .. } if address == "127.0.0.1:7003")));
    }
}
