//! The status actor of every cluster node, a member of [`STATUS_GROUP`], returns the node's
//! [`NodeSnapshot`]. [`StatusClient`] is the side of `imsitrace status`: it joins the
//! cluster as a transient node and requests the snapshot of every status actor.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

use super::snapshot::{NodeSnapshot, SnapshotRequest};
use crate::cluster::codec::Remote;
use crate::cluster::wire::is_transient;
use crate::cluster::{join_group, Cluster, PeerReader};
use crate::tracker::client::{check_reachable, transient_config, JoinSettings};

/// Process group of the status actor of every node.
pub const STATUS_GROUP: &str = "imsitrace.status";

/// Time between two checks while waiting for the cluster.
const POLL: Duration = Duration::from_millis(100);

/// Messages of the status actor.
#[derive(RactorClusterMessage)]
pub enum StatusMsg {
    /// Returns the metrics of this node.
    #[rpc]
    Snapshot(Remote<SnapshotRequest>, RpcReplyPort<Remote<NodeSnapshot>>),
}

/// The status actor: reads the registry of its process, and the peers of its cluster
/// membership, on each request.
pub struct StatusActor;

impl Actor for StatusActor {
    type Msg = StatusMsg;
    type State = PeerReader;
    type Arguments = PeerReader;

    async fn pre_start(&self, myself: ActorRef<StatusMsg>, peers: PeerReader) -> Result<PeerReader, ActorProcessingErr> {
        join_group(STATUS_GROUP, myself.get_cell());
        Ok(peers)
    }

    async fn handle(&self, _myself: ActorRef<StatusMsg>, message: StatusMsg, peers: &mut PeerReader) -> Result<(), ActorProcessingErr> {
        let StatusMsg::Snapshot(request, reply) = message;
        match request.into_result() {
            Ok(request) => tracing::debug!(from = %request.from, "metrics snapshot requested"),
            Err(reason) => tracing::warn!(%reason, "invalid metrics snapshot request; sending the snapshot anyway"),
        }
        let mut snapshot = super::collect::snapshot(super::registry());
        match peers.peers().await {
            Ok(peers) => snapshot.peers = peers.into_iter().map(|peer| peer.name).filter(|name| !is_transient(name)).collect(),
            Err(error) => tracing::warn!(%error, "metrics snapshot sent without the cluster peers"),
        }
        let _ = reply.send(Remote::Valid(snapshot));
        Ok(())
    }
}

/// The running status actor of this node; dropping the handle stops it.
pub struct StatusHandle {
    actor: ActorRef<StatusMsg>,
}

impl Drop for StatusHandle {
    fn drop(&mut self) {
        self.actor.stop(None);
    }
}

/// Starts the status actor of this node, which reports the peers of `cluster`.
pub async fn start_status_actor(cluster: &Cluster) -> Result<StatusHandle, String> {
    let (actor, _) = Actor::spawn(None, StatusActor, cluster.peer_reader()).await.map_err(|error| format!("cannot start the status actor: {error}"))?;
    Ok(StatusHandle { actor })
}

/// Result of one node of the cluster for `imsitrace status`.
#[derive(Debug, Clone)]
pub enum NodeStatus {
    /// The node's snapshot.
    Answered(NodeSnapshot),
    /// The node is in the cluster but gave no snapshot, with the reason.
    NoAnswer {
        /// Full node name, or the actor id of a status actor whose node is not known.
        node: String,
        /// Reason no snapshot arrived.
        reason: String,
    },
}

/// A transient node, named `cli-<pid>`, that requests the metrics of every node.
pub struct StatusClient {
    cluster: Cluster,
    name: String,
}

impl StatusClient {
    /// Joins the cluster through the seed and waits for a session with it. Each failure
    /// names the seed and what to check.
    pub async fn join(settings: &JoinSettings) -> Result<StatusClient, String> {
        check_reachable(&settings.seed, settings.timeout).await?;
        let config = transient_config(settings);
        let name = config.full_name();
        let cluster = Cluster::start(config).await?;
        let client = StatusClient { cluster, name };
        let deadline = Instant::now() + settings.timeout;
        while Instant::now() < deadline {
            if !client.cluster.peers().await?.is_empty() {
                return Ok(client);
            }
            tokio::time::sleep(POLL).await;
        }
        client.leave().await;
        Err(format!(
            "no cluster session with {} within {} s: the node rejected this command, so its cookie or TLS settings differ; give the cluster's cookie with --cookie-file or IMSITRACE_CLUSTER__COOKIE, and --tls-* when the cluster uses TLS",
            settings.seed,
            settings.timeout.as_secs()
        ))
    }

    /// Waits until the peers and the status actors stay the same for `settle`, at most
    /// `timeout`, so that the sessions with every node of the cluster are open.
    pub async fn wait_for_nodes(&self, settle: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = (0, 0);
        let mut stable_since = Instant::now();
        while Instant::now() < deadline {
            let peers = self.cluster.peers().await.map(|peers| peers.len()).unwrap_or(0);
            let now = (peers, status_actors().len());
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() >= settle {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks every status actor of the cluster for its snapshot at once, each within
    /// `timeout`. Returns one entry per node, sorted by node name. The nodes are this
    /// command's peers and the peers listed in each snapshot received, so a node that
    /// this command cannot reach, or that sent no snapshot, is listed as [`NodeStatus::NoAnswer`].
    pub async fn collect(&self, timeout: Duration) -> Result<Vec<NodeStatus>, String> {
        let peers = self.cluster.peers().await?;
        let calls = status_actors().into_iter().map(|actor| ask(actor, self.name.clone(), timeout));
        let replies = futures_join_all(calls).await;
        let mut statuses = Vec::new();
        let mut failures = Vec::new();
        for reply in replies {
            match reply {
                NodeStatus::Answered(_) => statuses.push(reply),
                NodeStatus::NoAnswer { .. } => failures.push(reply),
            }
        }
        let answered: BTreeSet<String> = statuses.iter().map(|status| node_name(status).to_owned()).collect();
        let mut known: BTreeSet<String> = peers.into_iter().map(|peer| peer.name).collect();
        for status in &statuses {
            if let NodeStatus::Answered(snapshot) = status {
                known.extend(snapshot.peers.iter().cloned());
            }
        }
        known.remove(&self.name);
        let silent: Vec<String> = known.into_iter().filter(|name| !is_transient(name) && !answered.contains(name)).collect();
        // A status actor that failed cannot be matched to its node, so each silent peer
        // gets the first failure as its reason, or none when no actor of it was seen.
        let failure_reason = failures.iter().find_map(|failure| match failure {
            NodeStatus::NoAnswer { reason, .. } => Some(reason.clone()),
            NodeStatus::Answered(_) => None,
        });
        for node in &silent {
            let reason = failure_reason.clone().unwrap_or_else(|| {
                "no session with this command, or no status actor on the node: check that it runs and that it runs the same imsitrace release".to_owned()
            });
            statuses.push(NodeStatus::NoAnswer { node: node.clone(), reason });
        }
        if silent.is_empty() {
            statuses.extend(failures);
        }
        statuses.sort_by(|a, b| node_name(a).cmp(node_name(b)));
        Ok(statuses)
    }

    /// Leaves the cluster.
    pub async fn leave(self) {
        self.cluster.stop().await;
    }
}

fn node_name(status: &NodeStatus) -> &str {
    match status {
        NodeStatus::Answered(snapshot) => &snapshot.identity.node,
        NodeStatus::NoAnswer { node, .. } => node,
    }
}

/// Returns the remote status actors; this transient node has none of its own.
fn status_actors() -> Vec<ActorRef<StatusMsg>> {
    let members = ractor::pg::get_members(&STATUS_GROUP.to_owned());
    members.into_iter().filter(|cell| !cell.get_id().is_local()).map(ActorRef::from).collect()
}

async fn ask(actor: ActorRef<StatusMsg>, from: String, timeout: Duration) -> NodeStatus {
    let request = Remote::Valid(SnapshotRequest { from });
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let no_answer = |reason: String| NodeStatus::NoAnswer { node: format!("status actor {}", actor.get_id()), reason };
    match ractor::call_t!(actor, StatusMsg::Snapshot, timeout_ms, request) {
        Ok(reply) => match reply.into_result() {
            Ok(snapshot) => NodeStatus::Answered(snapshot),
            Err(reason) => no_answer(format!("cannot decode its snapshot: {reason}; run the same imsitrace release on every node")),
        },
        Err(error) => no_answer(format!("no snapshot within {} ms: {error}", timeout.as_millis())),
    }
}

/// Runs every future at once and returns their outputs in order.
async fn futures_join_all<F: std::future::Future<Output = NodeStatus> + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<NodeStatus> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.await {
            Ok(status) => outputs.push(status),
            Err(error) => outputs.push(NodeStatus::NoAnswer { node: "unknown".to_owned(), reason: format!("the request task failed: {error}") }),
        }
    }
    outputs
}
