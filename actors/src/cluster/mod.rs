//! The cluster runtime of a node: ractor_cluster membership with cookie authentication and
//! optional mutual TLS, reconnection of lost nodes, heartbeats that close half-open
//! sessions, and one codec for every message sent between nodes.
//!
//! [`Cluster::start`] starts the [`membership`] actor, which runs ractor_cluster's
//! `NodeServer`, connects to the seeds and to the nodes that peers advertise, and logs each
//! join and leave. Once two nodes have a ready session, ractor's process groups span both:
//! an actor that joins a group with [`join_group`] is reachable from every connected node,
//! and [`broadcast`] sends a message to every member, local or remote.
//!
//! A message type sent to another node implements `ractor::Message` with `serialize` and
//! `deserialize` built on [`codec`] (see [`heartbeat::HeartbeatMessage`]), or derives
//! `RactorClusterMessage` with [`codec::Remote`] fields. Either way a malformed payload
//! reaches the actor as [`codec::Remote::Invalid`] instead of a panic.
//!
//! Process groups and the actor registry are global to a process, so one process runs one
//! node; tests of several nodes run several processes.

pub(crate) mod backoff;
pub mod codec;
pub mod config;
mod connect;
mod deferred;
mod events;
pub mod heartbeat;
pub mod membership;
pub mod session_bridge;
mod sessions;
mod targets;
pub mod tls;
pub mod wire;

use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorCell, ActorRef, Message, MessagingErr};

pub use config::{ClusterConfig, TlsFiles};
pub use wire::NodeAddress;

use membership::{MembershipActor, MembershipArgs, MembershipMessage};
use tls::TlsSetup;

/// Process group of the actors that receive every session event of every probe, such as
/// trackers.
pub const SESSION_EVENTS_GROUP: &str = "session-events";

/// Process group of one actor per probe node that takes requests for the probe, such as a
/// tracker agent.
pub const PROBES_GROUP: &str = "imsitrace.probes";

/// Process group of one actor per collector node.
pub const COLLECTORS_GROUP: &str = "imsitrace.collectors";

/// Maximum time to wait for the membership actor to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running cluster membership.
pub struct Cluster {
    membership: ActorRef<MembershipMessage>,
    handle: JoinHandle<()>,
}

impl Cluster {
    /// Loads the TLS files, listens on the configured address and starts connecting to the
    /// seeds. Fails when a TLS file is invalid or the port cannot be bound. Returns before
    /// any seed is connected: the membership keeps retrying them.
    pub async fn start(config: ClusterConfig) -> Result<Cluster, String> {
        let tls = config.tls.as_ref().map(TlsSetup::load).transpose()?;
        let args = MembershipArgs { config, tls };
        let (membership, handle) = Actor::spawn(None, MembershipActor, args).await.map_err(|error| format!("cannot start the cluster membership: {error}"))?;
        Ok(Cluster { membership, handle })
    }

    /// Returns the nodes this node has a ready session with, sorted by full name.
    pub async fn peers(&self) -> Result<Vec<NodeAddress>, String> {
        self.peer_reader().peers().await
    }

    /// Returns a handle that reads the peers of this membership, for an actor that
    /// reports them.
    pub fn peer_reader(&self) -> PeerReader {
        PeerReader { membership: self.membership.clone() }
    }

    /// Returns whether the membership actor stopped by itself, e.g. after its node server
    /// failed.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Closes every session, stops listening and waits for the membership actor to stop.
    pub async fn stop(self) {
        if let Err(error) = self.membership.stop_and_wait(Some("node stopping".to_owned()), Some(STOP_TIMEOUT)).await {
            tracing::warn!(%error, "the cluster membership did not stop in time");
        }
    }
}

/// Reads the peers of a running membership; fails once the membership has stopped.
#[derive(Clone)]
pub struct PeerReader {
    membership: ActorRef<MembershipMessage>,
}

impl PeerReader {
    /// Returns the nodes this node has a ready session with, sorted by full name.
    pub async fn peers(&self) -> Result<Vec<NodeAddress>, String> {
        ractor::call_t!(self.membership, MembershipMessage::Peers, 5_000).map_err(|error| format!("cannot read the cluster peers: {error}"))
    }
}

/// Adds a local actor to a process group. Once a node has a ready session with this one,
/// the actor is a member of the group on that node too, and leaves it when the actor stops
/// or the session closes. The actor's message type must be serializable (see the module
/// documentation) for remote nodes to see it.
pub fn join_group(group: &str, actor: ActorCell) {
    ractor::pg::join(group.to_owned(), vec![actor]);
}

/// Result of a [`broadcast`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Broadcast {
    /// Members, local or remote, that the message was handed to.
    pub sent: usize,
    /// Members whose mailbox was closed or whose message type is not `M`.
    pub failed: usize,
}

/// Sends `message` to every member of `group`: local members receive it as is, remote
/// members through their node session, encoded by `M::serialize`. Delivery to a remote
/// member is not confirmed; a message to a node whose session closes on the way is lost.
pub fn broadcast<M: Message + Clone>(group: &str, message: &M) -> Broadcast {
    let mut result = Broadcast::default();
    for member in ractor::pg::get_members(&group.to_owned()) {
        match member.send_message(message.clone()) {
            Ok(()) => result.sent += 1,
            Err(error) => {
                result.failed += 1;
                log_send_error(group, &member, &error);
            }
        }
    }
    result
}

fn log_send_error<M>(group: &str, member: &ActorCell, error: &MessagingErr<M>) {
    tracing::debug!(group, actor = %member.get_id(), %error, "cannot send to a process group member");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use ractor::{Actor, ActorProcessingErr, ActorRef};

    use super::*;

    #[derive(Clone, ractor_cluster::RactorMessage)]
    struct Note;

    #[derive(ractor_cluster::RactorMessage)]
    struct Other;

    /// Counts the notes it receives.
    struct Counter;

    impl Actor for Counter {
        type Msg = Note;
        type State = Arc<AtomicUsize>;
        type Arguments = Arc<AtomicUsize>;

        async fn pre_start(&self, _myself: ActorRef<Note>, count: Arc<AtomicUsize>) -> Result<Arc<AtomicUsize>, ActorProcessingErr> {
            Ok(count)
        }

        async fn handle(&self, _myself: ActorRef<Note>, _note: Note, count: &mut Arc<AtomicUsize>) -> Result<(), ActorProcessingErr> {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Ignores every message.
    struct Bystander;

    impl Actor for Bystander {
        type Msg = Other;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _myself: ActorRef<Other>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn broadcast_reaches_members_of_the_type() {
        let group = "test.broadcast";
        let count = Arc::new(AtomicUsize::new(0));
        let (first, first_handle) = Actor::spawn(None, Counter, count.clone()).await.unwrap();
        let (second, second_handle) = Actor::spawn(None, Counter, count.clone()).await.unwrap();
        let (other, other_handle) = Actor::spawn(None, Bystander, ()).await.unwrap();
        for member in [first.get_cell(), second.get_cell(), other.get_cell()] {
            join_group(group, member);
        }

        let result = broadcast(group, &Note);
        assert_eq!(result, Broadcast { sent: 2, failed: 1 }, "the bystander takes another message type");

        // A drained actor handles the messages already queued, then stops.
        for actor in [first.get_cell(), second.get_cell(), other.get_cell()] {
            actor.drain().unwrap();
        }
        for handle in [first_handle, second_handle, other_handle] {
            handle.await.unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 2, "each counter handled the note");
    }
}
