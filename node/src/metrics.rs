//! Starts the observability of a process: the node labels of the metrics, the `/metrics`
//! listener when an address is given, and on a cluster node the status actor that
//! `imsitrace status` requests the metrics from.

use std::net::SocketAddr;

use imsitrace::cluster::Cluster;
use imsitrace::metrics::http::MetricsServer;
use imsitrace::metrics::status::{start_status_actor, StatusHandle};
use imsitrace::metrics::{registry, Identity};

use crate::config::NodeConfig;

/// The listener and the status actor of a process; both stop when it is dropped.
pub struct Observability {
    _server: Option<MetricsServer>,
    _status: Option<StatusHandle>,
}

/// Starts the observability of `imsitrace node`: labels from `[node]` and the listener of
/// `[metrics] listen`. Call it before the cluster starts, so that a listen address in use
/// stops the node at once, then [`Observability::start_status`] once it has started.
pub async fn start_for_node(config: &NodeConfig, full_name: String) -> Result<Observability, String> {
    let roles = &config.node.roles;
    let roles = [(roles.probe, "probe"), (roles.collector, "collector")].into_iter().filter_map(|(on, name)| on.then(|| name.to_owned())).collect();
    registry().set_identity(Identity { node: full_name, roles, site: config.node.site.clone() });
    let server = match config.metrics.listen {
        Some(address) => Some(MetricsServer::start(address).await?),
        None => None,
    };
    Ok(Observability { _server: server, _status: None })
}

impl Observability {
    /// Starts the status actor, which sends the metrics to `imsitrace status`, on a node
    /// in a cluster.
    pub async fn start_status(&mut self, cluster: &Cluster) -> Result<(), String> {
        self._status = Some(start_status_actor(cluster).await?);
        Ok(())
    }
}

/// Starts the `/metrics` listener of `imsitrace analyze` on `address`, with the host name
/// as the node label and `analyze` as the role.
pub async fn start_for_analyze(address: SocketAddr, site: &str) -> Result<Observability, String> {
    registry().set_identity(Identity { node: host_name(), roles: vec!["analyze".to_owned()], site: site.to_owned() });
    let server = MetricsServer::start(address).await?;
    Ok(Observability { _server: Some(server), _status: None })
}

fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_owned()).unwrap_or_default();
    if name.is_empty() { "localhost".to_owned() } else { name }
}
