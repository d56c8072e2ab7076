//! Options shared by `imsitrace track` and `imsitrace fetch` to join the cluster as a
//! transient node for one command.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use imsitrace::cluster::TlsFiles;
use imsitrace::tracker::client::{ClusterClient, JoinSettings};

/// Environment variable of the cluster cookie, as for `imsitrace node`.
pub const COOKIE_ENV: &str = "IMSITRACE_CLUSTER__COOKIE";

/// How to reach the cluster.
#[derive(Args, Debug)]
pub struct ClusterOptions {
    /// `HOST:PORT` of a node of the cluster, e.g. a collector's `cluster.port`.
    #[arg(long, value_name = "ADDR")]
    pub cluster: String,
    /// File with the cluster cookie (`cluster.cookie_file` of the nodes). Without it, the
    /// cookie is read from the environment variable IMSITRACE_CLUSTER__COOKIE.
    #[arg(long, value_name = "FILE")]
    pub cookie_file: Option<PathBuf>,
    /// Address this command listens on for cluster connections, on a port chosen by the
    /// system; probes connect from it only through sessions this command opens.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub listen: IpAddr,
    /// Certificate chain of this command for mutual TLS (PEM), as `cluster.tls.cert`.
    #[arg(long, value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Private key of `--tls-cert` (PEM), as `cluster.tls.key`.
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// Certificates of the cluster's authorities (PEM), as `cluster.tls.ca`.
    #[arg(long, value_name = "FILE", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// Maximum time to join the cluster and find a collector, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub join_timeout: u64,
}

impl ClusterOptions {
    /// Reads the cookie and joins the cluster.
    pub async fn join(&self) -> Result<ClusterClient, String> {
        ClusterClient::join(&self.settings()?).await
    }

    /// Reads the cookie and returns how to join the cluster.
    pub fn settings(&self) -> Result<JoinSettings, String> {
        let cookie = self.cookie()?;
        let tls = match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(TlsFiles { cert: cert.clone(), key: key.clone(), ca: ca.clone() }),
            _ => None,
        };
        Ok(JoinSettings { seed: self.cluster.clone(), cookie, listen: self.listen, tls, timeout: Duration::from_secs(self.join_timeout.max(1)) })
    }

    fn cookie(&self) -> Result<String, String> {
        let cookie = match &self.cookie_file {
            Some(path) => std::fs::read_to_string(path).map_err(|error| format!("cannot read the cookie file {}: {error}", path.display()))?,
            None => std::env::var(COOKIE_ENV).map_err(|_| format!("missing cluster cookie: give --cookie-file FILE or set {COOKIE_ENV}"))?,
        };
        let cookie = cookie.trim().to_owned();
        if cookie.is_empty() {
            return Err(format!("invalid empty cluster cookie: give the cookie of the cluster's nodes with --cookie-file FILE or {COOKIE_ENV}"));
        }
        Ok(cookie)
    }
}

/// Returns the operator as `user@host`, from `USER` and the kernel's host name.
pub fn operator() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_owned()).unwrap_or_default();
    let host = if host.is_empty() { "localhost".to_owned() } else { host };
    format!("{user}@{host}")
}

/// Starts the runtime of a command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|error| format!("cannot start the runtime: {error}"))
}

/// Formats milliseconds since the Unix epoch as UTC time.
pub fn format_time_ms(ms: u64) -> String {
    imsitrace::output::time::format_utc_us(ms.saturating_mul(1_000))
}
