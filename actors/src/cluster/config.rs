//! Settings of a node's cluster membership.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of [`super::Cluster::start`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Node name; the full name that peers see is `<name>@<advertise_host>`.
    pub name: String,
    /// Address the node listens on for cluster connections.
    pub listen_address: IpAddr,
    /// TCP port the node listens on.
    pub port: u16,
    /// Host name or address that other nodes use to connect to this node. Peers learn it
    /// from heartbeats; with TLS, this node's certificate must name it.
    pub advertise_host: String,
    /// `HOST:PORT` of the nodes to connect to at start and to reconnect to after a loss.
    pub seeds: Vec<String>,
    /// Shared secret of the cluster's authentication handshake. Never logged.
    pub cookie: String,
    /// Time between two heartbeats sent to each peer.
    pub heartbeat_interval: Duration,
    /// A peer that sent no heartbeat for this long has its session closed.
    pub peer_timeout: Duration,
    /// Maximum time from an open socket to a ready session.
    pub handshake_timeout: Duration,
    /// First delay before retrying a connection.
    pub reconnect_min: Duration,
    /// Maximum delay between two connection attempts.
    pub reconnect_max: Duration,
    /// Certificate files of mutual TLS, or `None` for plain TCP.
    pub tls: Option<TlsFiles>,
}

impl ClusterConfig {
    /// Returns the full node name that peers see, `<name>@<advertise_host>`.
    pub fn full_name(&self) -> String {
        format!("{}@{}", self.name, self.advertise_host)
    }

    /// Returns `<advertise_host>:<port>`, the address peers connect to.
    pub fn advertise_address(&self) -> String {
        if self.advertise_host.contains(':') {
            format!("[{}]:{}", self.advertise_host, self.port)
        } else {
            format!("{}:{}", self.advertise_host, self.port)
        }
    }
}

impl fmt::Debug for ClusterConfig {
    /// Formats every field except the cookie, which is shown as `<hidden>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("name", &self.name)
            .field("listen_address", &self.listen_address)
            .field("port", &self.port)
            .field("advertise_host", &self.advertise_host)
            .field("seeds", &self.seeds)
            .field("cookie", &"<hidden>")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("peer_timeout", &self.peer_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .field("tls", &self.tls)
            .finish()
    }
}

/// PEM files of mutual TLS between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The certificates of the authorities that sign every node's certificate.
    pub ca: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> ClusterConfig {
        ClusterConfig {
            name: "probe-1".into(),
            listen_address: IpAddr::from([127, 0, 0, 1]),
            port: 7470,
            advertise_host: host.into(),
            seeds: vec![],
            cookie: "secret-cookie-value".into(),
            heartbeat_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            tls: None,
        }
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(config("127.0.0.1").full_name(), "probe-1@127.0.0.1");
        assert_eq!(config("127.0.0.1").advertise_address(), "127.0.0.1:7470");
        assert_eq!(config("::1").advertise_address(), "[::1]:7470");
    }

    #[test]
    fn debug_hides_cookie() {
        let text = format!("{:?}", config("127.0.0.1"));
        assert!(!text.contains("secret-cookie-value"), "{text}");
        assert!(text.contains("cookie: \"<hidden>\""), "{text}");
    }
}
