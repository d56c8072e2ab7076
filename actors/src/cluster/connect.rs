//! One connection attempt to another node: resolve the address, open the socket (with TLS
//! when configured) and hand it to the `NodeServer`, which then runs the authentication
//! handshake. The attempt ends before the handshake does; the membership actor waits for
//! the session-ready event.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{ClientConnectErr, NodeServerMessage};

use super::tls::{server_name, TlsSetup};

/// Reason a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The name did not resolve, or the TCP connection failed (e.g. refused: the node is
    /// down). Retried.
    Unreachable(String),
    /// The TLS handshake failed: a certificate was rejected on either side. Retried, but
    /// logged as an error because it needs an operator.
    Tls(String),
    /// The attempt took longer than the handshake timeout.
    TimedOut(Duration),
    /// The local `NodeServer` stopped.
    ServerStopped,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Unreachable(reason) => f.write_str(reason),
            ConnectFailure::Tls(reason) => write!(f, "TLS handshake failed: {reason}"),
            ConnectFailure::TimedOut(limit) => write!(f, "no connection within {} s", limit.as_secs_f64()),
            ConnectFailure::ServerStopped => f.write_str("the local node server stopped"),
        }
    }
}

/// Connects to `address` (`HOST:PORT`) and returns the socket's peer address.
pub async fn connect(server: &ActorRef<NodeServerMessage>, address: &str, tls: Option<&TlsSetup>, limit: Duration) -> Result<SocketAddr, ConnectFailure> {
    match tokio::time::timeout(limit, connect_unbounded(server, address, tls)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectFailure::TimedOut(limit)),
    }
}

async fn connect_unbounded(server: &ActorRef<NodeServerMessage>, address: &str, tls: Option<&TlsSetup>) -> Result<SocketAddr, ConnectFailure> {
    let socket = resolve(address).await?;
    let result = match tls {
        None => ractor_cluster::client_connect(server, socket).await,
        Some(tls) => {
            let name = server_name(address).map_err(ConnectFailure::Tls)?;
            ractor_cluster::client_connect_enc(server, socket, tls.connector.clone(), name).await
        }
    };
    match result {
        Ok(()) => Ok(socket),
        Err(ClientConnectErr::Socket(error)) => Err(ConnectFailure::Unreachable(format!("cannot connect to {socket}: {error}"))),
        Err(ClientConnectErr::Encryption(error)) => Err(ConnectFailure::Tls(error.to_string())),
        Err(ClientConnectErr::Messaging(_)) => Err(ConnectFailure::ServerStopped),
    }
}

/// Returns the first address that `HOST:PORT` resolves to.
async fn resolve(address: &str) -> Result<SocketAddr, ConnectFailure> {
    let mut addresses = tokio::net::lookup_host(address)
        .await
        .map_err(|error| ConnectFailure::Unreachable(format!("cannot resolve {address}: {error}")))?;
    addresses.next().ok_or_else(|| ConnectFailure::Unreachable(format!("{address} resolves to no address")))
}
