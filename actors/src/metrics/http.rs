//! The `/metrics` listener: a minimal HTTP/1.1 server on tokio that serves one request
//! per connection ([`super::http_request`] routes it) and closes the connection.
//!
//! Limits: the request head is at most [`MAX_REQUEST_BYTES`] and must arrive within
//! [`READ_TIMEOUT`]; the response must be written within [`WRITE_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] connections are served at once, and further ones wait in the
//! listen backlog.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub use super::http_request::{MAX_REQUEST_BYTES, METRICS_PATH};
use super::http_request::{head_length, response, route, Route};

/// Maximum time for a client to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Maximum time to write a response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Renders the metrics page of one request.
pub type PageSource = Arc<dyn Fn() -> String + Send + Sync>;

/// A running listener; dropping it stops accepting connections.
pub struct MetricsServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `address` and serves the metrics of the process registry. Logs the bound
    /// address at info level.
    pub async fn start(address: SocketAddr) -> Result<MetricsServer, String> {
        let source: PageSource = Arc::new(|| super::render::render(&super::collect::snapshot(super::registry())));
        MetricsServer::start_with(address, source).await
    }

    /// Listens on `address` and serves the page that `source` renders.
    pub async fn start_with(address: SocketAddr, source: PageSource) -> Result<MetricsServer, String> {
        let listener = TcpListener::bind(address).await.map_err(|error| bind_failed(address, &error))?;
        let address = listener.local_addr().map_err(|error| bind_failed(address, &error))?;
        tracing::info!(%address, path = METRICS_PATH, "metrics listener started");
        let task = tokio::spawn(accept_loop(listener, source));
        Ok(MetricsServer { address, task })
    }

    /// Returns the bound address, with the port the system chose for port 0.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind_failed(address: SocketAddr, error: &std::io::Error) -> String {
    format!("cannot listen for metrics on {address}: {error}; give a free local address and port in [metrics] listen or --metrics-listen, e.g. 127.0.0.1:9464, or stop the process that uses it")
}

async fn accept_loop(listener: TcpListener, source: PageSource) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut failures: u64 = 0;
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let source = source.clone();
                tokio::spawn(async move {
                    serve(stream, peer, &source).await;
                    drop(permit);
                });
            }
            Err(error) => {
                failures += 1;
                // The first failure and then one in a hundred: a full file table fails every accept.
                if failures % 100 == 1 {
                    tracing::warn!(%error, failures, "metrics listener cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request, writes its response and closes the connection.
async fn serve(mut stream: TcpStream, peer: SocketAddr, source: &PageSource) {
    let route = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(route)) => route,
        Ok(None) => return,
        Err(_) => Route::Timeout,
    };
    let bytes = response(route, || source());
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%peer, %error, "cannot write the metrics response"),
        Err(_) => tracing::debug!(%peer, "timed out writing the metrics response"),
    }
}

/// Reads until the end of the request head; returns its route, or `None` when the client
/// closed the connection or failed before a complete head.
async fn read_head(stream: &mut TcpStream) -> Option<Route> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(length) = head_length(&buffer) {
            return Some(if length > MAX_REQUEST_BYTES { Route::TooLarge } else { route(&buffer[..length]) });
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return Some(Route::TooLarge);
        }
    }
}
