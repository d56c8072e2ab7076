//! The cluster side of the `imsitrace track` and `imsitrace fetch` commands: a transient
//! node joins the cluster for one command and calls the registry and the agents.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorRef};

use super::protocol::{
    AgentMsg, AttachRequest, Chunk, ChunkRequest, DetachRequest, FileList, FilesRequest, ListRequest, RegistryMsg, RegistryReply, Tracker, TrackerList, AGENTS_GROUP,
    MAX_CHUNK, REGISTRY_GROUP,
};
use crate::cluster::codec::Remote;
use crate::cluster::wire::TRANSIENT_PREFIX;
use crate::cluster::{Cluster, ClusterConfig, TlsFiles};

/// Maximum time of one call to a registry or an agent, in milliseconds.
pub const CALL_TIMEOUT_MS: u64 = 10_000;

/// Time between two checks while waiting for the cluster.
const POLL: Duration = Duration::from_millis(100);

/// How a command joins the cluster.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// `HOST:PORT` of a node of the cluster.
    pub seed: String,
    /// The cluster cookie.
    pub cookie: String,
    /// Address to listen on; the port is chosen by the system.
    pub listen: IpAddr,
    /// Certificate files of mutual TLS, or `None` for plain TCP.
    pub tls: Option<TlsFiles>,
    /// Maximum time to get a ready session with the seed and to see a registry.
    pub timeout: Duration,
}

/// A transient node in the cluster, named `cli-<pid>`.
pub struct ClusterClient {
    cluster: Cluster,
}

impl ClusterClient {
    /// Joins the cluster through the seed and waits until a registry of a collector is
    /// reachable. Each failure names the seed and what to check.
    pub async fn join(settings: &JoinSettings) -> Result<ClusterClient, String> {
        check_reachable(&settings.seed, settings.timeout).await?;
        let cluster = Cluster::start(transient_config(settings)).await?;
        let client = ClusterClient { cluster };
        if let Err(error) = client.wait_for_session(settings).await {
            client.leave().await;
            return Err(error);
        }
        if let Err(error) = client.wait_for_registry(settings).await {
            client.leave().await;
            return Err(error);
        }
        Ok(client)
    }

    async fn wait_for_session(&self, settings: &JoinSettings) -> Result<(), String> {
        let deadline = Instant::now() + settings.timeout;
        while Instant::now() < deadline {
            if !self.cluster.peers().await?.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!(
            "no cluster session with {} within {} s: the node rejected this command, so its cookie or TLS settings differ; give the cluster's cookie with --cookie-file or IMSITRACE_CLUSTER__COOKIE, and --tls-* when the cluster uses TLS",
            settings.seed,
            settings.timeout.as_secs()
        ))
    }

    async fn wait_for_registry(&self, settings: &JoinSettings) -> Result<(), String> {
        let deadline = Instant::now() + settings.timeout;
        while Instant::now() < deadline {
            if !members(REGISTRY_GROUP).is_empty() {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(format!(
            "no collector in the cluster of {} after {} s: trackers are kept by the collectors; start a node with roles = [\"collector\"] and a [cluster] section",
            settings.seed,
            settings.timeout.as_secs()
        ))
    }

    /// Waits until the agents of every probe are reachable: until the peers and the agents
    /// stay the same for `settle`, at most `timeout`. Returns the agents.
    pub async fn wait_for_agents(&self, settle: Duration, timeout: Duration) -> Vec<ActorRef<AgentMsg>> {
        let deadline = Instant::now() + timeout;
        let mut last = (0, 0);
        let mut stable_since = Instant::now();
        while Instant::now() < deadline {
            let peers = self.cluster.peers().await.map(|peers| peers.len()).unwrap_or(0);
            let now = (peers, members(AGENTS_GROUP).len());
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() >= settle {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        members(AGENTS_GROUP).into_iter().map(ActorRef::from).collect()
    }

    /// Attaches a tracker through a registry.
    pub async fn attach(&self, request: AttachRequest) -> Result<Tracker, String> {
        let reply = ractor::call_t!(registry()?, RegistryMsg::Attach, CALL_TIMEOUT_MS, Remote::Valid(request)).map_err(|error| call_failed("attach", &error))?;
        registry_result(reply)
    }

    /// Detaches a tracker through a registry.
    pub async fn detach(&self, request: DetachRequest) -> Result<Tracker, String> {
        let reply = ractor::call_t!(registry()?, RegistryMsg::Detach, CALL_TIMEOUT_MS, Remote::Valid(request)).map_err(|error| call_failed("detach", &error))?;
        registry_result(reply)
    }

    /// Lists the trackers through a registry.
    pub async fn list(&self, include_ended: bool) -> Result<TrackerList, String> {
        let reply = ractor::call_t!(registry()?, RegistryMsg::List, CALL_TIMEOUT_MS, Remote::Valid(ListRequest { include_ended })).map_err(|error| call_failed("list", &error))?;
        reply.into_result().map_err(|reason| format!("cannot decode the collector's tracker list: {reason}; run the same imsitrace release on every node"))
    }

    /// Leaves the cluster.
    pub async fn leave(self) {
        self.cluster.stop().await;
    }
}

/// Asks one agent for a tracker's files.
pub async fn agent_files(agent: &ActorRef<AgentMsg>, id: &str, timeout_ms: u64) -> Result<FileList, String> {
    let request = FilesRequest { id: id.to_owned() };
    let reply = ractor::call_t!(agent, AgentMsg::Files, timeout_ms, Remote::Valid(request)).map_err(|error| format!("no file list from agent {}: {error}", agent.get_id()))?;
    reply.into_result().map_err(|reason| format!("cannot decode the file list of agent {}: {reason}", agent.get_id()))
}

/// Reads `len` bytes of one file of a tracker from an agent, by chunks of [`MAX_CHUNK`].
pub async fn agent_file(agent: &ActorRef<AgentMsg>, id: &str, name: &str, len: u64, timeout_ms: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while (bytes.len() as u64) < len {
        let request = ChunkRequest { id: id.to_owned(), name: name.to_owned(), offset: bytes.len() as u64, max_len: MAX_CHUNK };
        let reply = ractor::call_t!(agent, AgentMsg::Chunk, timeout_ms, Remote::Valid(request)).map_err(|error| format!("no chunk of {name} from agent {}: {error}", agent.get_id()))?;
        match reply.into_result().map_err(|reason| format!("cannot decode a chunk of {name}: {reason}"))? {
            Chunk::Bytes(chunk) if chunk.is_empty() => break,
            Chunk::Bytes(chunk) => bytes.extend_from_slice(&chunk),
            Chunk::Failed(reason) => return Err(format!("the probe cannot read {name}: {reason}")),
        }
    }
    bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    Ok(bytes)
}

/// Checks that a TCP connection to the seed opens, so that a wrong address fails at once
/// with its own message.
// NOTE: the node at the seed logs this probe connection at warn level ("closed its
// connection to this node before the session was ready"), once per command.
pub(crate) async fn check_reachable(seed: &str, timeout: Duration) -> Result<(), String> {
    let failed = |reason: String| format!("cannot connect to cluster node {seed}: {reason}; check --cluster and that the node runs with a [cluster] section");
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(seed)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(failed(error.to_string())),
        Err(_) => Err(failed(format!("timed out after {} s", timeout.as_secs()))),
    }
}

pub(crate) fn transient_config(settings: &JoinSettings) -> ClusterConfig {
    ClusterConfig {
        name: format!("{TRANSIENT_PREFIX}{}", std::process::id()),
        listen_address: settings.listen,
        port: 0,
        advertise_host: settings.listen.to_string(),
        seeds: vec![settings.seed.clone()],
        cookie: settings.cookie.clone(),
        heartbeat_interval: Duration::from_secs(1),
        peer_timeout: Duration::from_secs(5),
        handshake_timeout: settings.timeout,
        reconnect_min: Duration::from_millis(500),
        reconnect_max: Duration::from_secs(2),
        tls: settings.tls.clone(),
    }
}

fn members(group: &str) -> Vec<ActorCell> {
    ractor::pg::get_members(&group.to_owned())
}

/// Returns a registry, remote first.
fn registry() -> Result<ActorRef<RegistryMsg>, String> {
    let mut registries = members(REGISTRY_GROUP);
    registries.sort_by_key(|cell| cell.get_id().is_local());
    registries.into_iter().next().map(ActorRef::from).ok_or_else(|| "the collector left the cluster; run the command again".to_owned())
}

fn registry_result(reply: Remote<RegistryReply>) -> Result<Tracker, String> {
    match reply.into_result() {
        Ok(RegistryReply::Done(tracker)) => Ok(tracker),
        Ok(RegistryReply::Rejected(message)) => Err(message),
        Err(reason) => Err(format!("cannot decode the collector's reply: {reason}; run the same imsitrace release on every node")),
    }
}

fn call_failed<E: std::fmt::Display>(what: &str, error: &E) -> String {
    format!("the collector did not answer the {what} request within {} s: {error}", CALL_TIMEOUT_MS / 1000)
}
