//! Reads `[cluster]` and `[cluster.tls]`: where the node listens, which nodes it connects
//! to, the cookie, and the heartbeat and reconnection timings.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use imsitrace::cluster::tls::{load_certificates, load_private_key};
use imsitrace::cluster::TlsFiles;

use super::duration::format_duration;
use super::problems::env_var;
use super::schema::{ClusterSection, Cookie};
use super::table::Section;

/// Default TCP port of cluster connections.
pub const DEFAULT_PORT: u16 = 7470;

/// Minimum number of characters of a cookie.
const MIN_COOKIE_LENGTH: usize = 16;

/// Reads `[cluster]`. `host_name` is the advertised host when the node listens on every
/// address.
pub fn read_cluster(mut section: Section<'_>, host_name: &str) -> ClusterSection {
    let listen_address = read_listen_address(&mut section);
    let port = section.number("port", 1, u64::from(u16::MAX)).map_or(DEFAULT_PORT, |port| port as u16);
    let advertise = section.string("advertise").unwrap_or_else(|| default_advertise(listen_address, host_name));
    if advertise.is_empty() || advertise.contains(char::is_whitespace) {
        section.problem("advertise", format!("invalid host {advertise:?}: give the host name or address that other nodes connect to"));
    }
    let seeds = read_seeds(&mut section);
    let cookie = read_cookie(&mut section);
    let timings = read_timings(&mut section);
    let tls = section.table("tls", "cluster.tls").and_then(read_tls);
    section.finish();
    ClusterSection {
        listen_address,
        port,
        advertise,
        seeds,
        cookie,
        heartbeat_interval: timings.heartbeat_interval,
        peer_timeout: timings.peer_timeout,
        handshake_timeout: timings.handshake_timeout,
        reconnect_min: timings.reconnect_min,
        reconnect_max: timings.reconnect_max,
        tls,
    }
}

fn read_listen_address(section: &mut Section<'_>) -> IpAddr {
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    let Some(text) = section.string("listen_address") else { return unspecified };
    text.parse().unwrap_or_else(|_| {
        section.problem("listen_address", format!("invalid IP address {text:?}: give an address of this host, e.g. 10.0.0.1, or 0.0.0.0 for every IPv4 address"));
        unspecified
    })
}

/// Returns the listen address, or the host name when the node listens on every address.
fn default_advertise(listen_address: IpAddr, host_name: &str) -> String {
    if listen_address.is_unspecified() {
        host_name.to_owned()
    } else {
        listen_address.to_string()
    }
}

/// Reads `seeds`: `HOST:PORT` items, each once.
fn read_seeds(section: &mut Section<'_>) -> Vec<String> {
    let seeds = section.list("seeds").unwrap_or_default();
    for (index, seed) in seeds.iter().enumerate() {
        if let Err(reason) = check_host_port(seed) {
            section.problem("seeds", format!("invalid seed {seed:?}: {reason}; give HOST:PORT, e.g. 10.0.0.1:{DEFAULT_PORT}"));
        } else if seeds[..index].contains(seed) {
            section.problem("seeds", format!("duplicate seed {seed:?}: give each node once"));
        }
    }
    seeds
}

/// Checks `HOST:PORT`, with an IPv6 host in brackets.
fn check_host_port(text: &str) -> Result<(), String> {
    let Some((host, port)) = text.rsplit_once(':') else { return Err("no port".to_owned()) };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("invalid host".to_owned());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 address needs brackets, e.g. [::1]:7470".to_owned());
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("invalid port {port:?}")),
    }
}

/// Reads the cookie from `cookie` (the file or IMSITRACE_CLUSTER__COOKIE) or from the file
/// named by `cookie_file`. Messages never show the cookie.
fn read_cookie(section: &mut Section<'_>) -> Cookie {
    let inline = section.string("cookie");
    let file = section.path("cookie_file");
    let from_env = section.is_from_env("cookie");
    let cookie = match (inline, file) {
        (Some(_), Some(_)) => {
            section.problem("cookie_file", "conflicts with cluster.cookie: give one of them".into());
            None
        }
        (Some(value), None) => {
            let source = if from_env { format!("environment variable {}", env_var("cluster.cookie")) } else { "cluster.cookie".to_owned() };
            Some(Cookie { value, source })
        }
        (None, Some(path)) => read_cookie_file(section, &path),
        (None, None) => {
            let message = format!(
                "missing: give the cluster's shared secret in the environment variable {} or in a file named by cluster.cookie_file",
                env_var("cluster.cookie")
            );
            section.problem("cookie", message);
            None
        }
    };
    let cookie = cookie.unwrap_or_else(|| Cookie { value: String::new(), source: "-".to_owned() });
    check_cookie(section, &cookie);
    cookie
}

fn read_cookie_file(section: &mut Section<'_>, path: &Path) -> Option<Cookie> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Cookie { value: text.trim().to_owned(), source: format!("file {}", path.display()) }),
        Err(error) => {
            section.problem("cookie_file", format!("cannot read {}: {error}", path.display()));
            None
        }
    }
}

/// Checks the length of a cookie that was read; the message names its source, not its value.
fn check_cookie(section: &mut Section<'_>, cookie: &Cookie) {
    if cookie.source == "-" {
        return;
    }
    let length = cookie.value.chars().count();
    if length < MIN_COOKIE_LENGTH {
        let key = if cookie.source.starts_with("file ") { "cookie_file" } else { "cookie" };
        let message = format!(
            "invalid cookie from {}: it has {length} characters; give at least {MIN_COOKIE_LENGTH}, e.g. the output of `openssl rand -hex 32`",
            cookie.source
        );
        section.problem(key, message);
    }
}

struct Timings {
    heartbeat_interval: Duration,
    peer_timeout: Duration,
    handshake_timeout: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

fn read_timings(section: &mut Section<'_>) -> Timings {
    let heartbeat_interval = positive(section, "heartbeat_interval", Duration::from_secs(1));
    let peer_timeout = positive(section, "peer_timeout", Duration::from_secs(5));
    if peer_timeout < heartbeat_interval * 2 && !section.has_problem("heartbeat_interval") && !section.has_problem("peer_timeout") {
        let message = format!(
            "invalid peer_timeout {}: give at least twice cluster.heartbeat_interval ({})",
            format_duration(peer_timeout),
            format_duration(heartbeat_interval)
        );
        section.problem("peer_timeout", message);
    }
    let handshake_timeout = positive(section, "handshake_timeout", Duration::from_secs(10));
    let reconnect_min = positive(section, "reconnect_min", Duration::from_millis(500));
    let reconnect_max = positive(section, "reconnect_max", Duration::from_secs(30));
    if reconnect_max < reconnect_min && !section.has_problem("reconnect_min") && !section.has_problem("reconnect_max") {
        let message = format!("invalid reconnect_max {}: give at least cluster.reconnect_min ({})", format_duration(reconnect_max), format_duration(reconnect_min));
        section.problem("reconnect_max", message);
    }
    Timings { heartbeat_interval, peer_timeout, handshake_timeout, reconnect_min, reconnect_max }
}

/// Reads a duration that must be above zero.
fn positive(section: &mut Section<'_>, key: &'static str, default: Duration) -> Duration {
    let value = section.duration(key).unwrap_or(default);
    if value.is_zero() {
        section.problem(key, "invalid value 0s: give a duration above zero, e.g. \"1s\"".into());
        return default;
    }
    value
}

/// Reads `[cluster.tls]`: three PEM files, each loaded once to check it.
fn read_tls(mut section: Section<'_>) -> Option<TlsFiles> {
    let cert = section.path("cert");
    check_tls_file(&mut section, "cert", cert.as_deref(), |path| load_certificates(path).map(drop));
    let key = section.path("key");
    check_tls_file(&mut section, "key", key.as_deref(), |path| load_private_key(path).map(drop));
    let ca = section.path("ca");
    check_tls_file(&mut section, "ca", ca.as_deref(), |path| load_certificates(path).map(drop));
    section.finish();
    Some(TlsFiles { cert: cert?, key: key?, ca: ca? })
}

/// Adds a problem on `key` when its file is missing from the section or fails `check`.
fn check_tls_file(section: &mut Section<'_>, key: &'static str, path: Option<&Path>, check: impl Fn(&Path) -> Result<(), String>) {
    match path {
        Some(path) => {
            if let Err(message) = check(path) {
                section.problem(key, message);
            }
        }
        None if !section.has_problem(key) => section.problem(key, "missing: [cluster.tls] needs cert, key and ca, each a PEM file".into()),
        None => {}
    }
}
