//! The cluster membership of a node with a `[cluster]` section: started before the roles,
//! stopped after them.

use imsitrace::cluster::{Cluster, ClusterConfig};
use tokio::sync::watch;

use crate::config::{ClusterSection, NodeConfig};

/// Starts the membership when the configuration has a `[cluster]` section. Fails when the
/// port cannot be bound or a TLS file is invalid.
pub async fn start(config: &NodeConfig) -> Result<Option<Cluster>, String> {
    let Some(section) = &config.cluster else { return Ok(None) };
    let cluster = Cluster::start(cluster_config(&config.node.name, section)).await?;
    Ok(Some(cluster))
}

/// Returns this node's full cluster name, `<node.name>@<advertise>`, when it has a
/// `[cluster]` section.
pub fn full_name(config: &NodeConfig) -> Option<String> {
    let section = config.cluster.as_ref()?;
    Some(cluster_config(&config.node.name, section).full_name())
}

fn cluster_config(name: &str, section: &ClusterSection) -> ClusterConfig {
    ClusterConfig {
        name: name.to_owned(),
        listen_address: section.listen_address,
        port: section.port,
        advertise_host: section.advertise.clone(),
        seeds: section.seeds.clone(),
        cookie: section.cookie.value.clone(),
        heartbeat_interval: section.heartbeat_interval,
        peer_timeout: section.peer_timeout,
        handshake_timeout: section.handshake_timeout,
        reconnect_min: section.reconnect_min,
        reconnect_max: section.reconnect_max,
        tls: section.tls.clone(),
    }
}

/// Keeps a node whose roles have ended in the cluster until the stop signal.
pub async fn stay_until_stopped(cluster: &Cluster, mut stop: watch::Receiver<bool>) {
    if !*stop.borrow() {
        tracing::info!("the roles of this node have ended; it stays in the cluster until SIGINT or SIGTERM");
    }
    let _ = stop.wait_for(|stopped| *stopped).await;
    if cluster.is_finished() {
        tracing::warn!("the cluster membership had stopped before the stop signal; see the errors above");
    }
}
