//! The types the cluster runtime itself sends between nodes, encoded by [`super::codec`].

use serde::{Deserialize, Serialize};

use super::codec::WireMessage;

/// Start of the node name of a transient node, such as the node that `imsitrace track`
/// runs for one command. Peers never advertise a transient node nor reconnect to it, and
/// they log its join and leave at debug level.
pub const TRANSIENT_PREFIX: &str = "cli-";

/// Returns whether a node name, short or full (`<name>@<host>`), is a transient node's.
pub fn is_transient(name: &str) -> bool {
    name.starts_with(TRANSIENT_PREFIX)
}

/// A node's identity as other nodes see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeAddress {
    /// Full node name, `<node.name>@<host>`, as ractor_cluster reports it to peers.
    pub name: String,
    /// `HOST:PORT` where the node accepts cluster connections.
    pub address: String,
}

/// The heartbeat that each node sends to every connected node once per heartbeat interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// The sender.
    pub from: NodeAddress,
    /// Number of pings the sender sent before this one, since it started.
    pub sequence: u64,
    /// Nodes the sender has a ready session with. A receiver connects to those it does not
    /// know, so that every node ends up connected to every other node.
    pub peers: Vec<NodeAddress>,
}

impl WireMessage for Ping {
    const NAME: &'static str = "heartbeat ping";
}
