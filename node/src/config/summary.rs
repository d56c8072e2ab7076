//! The short summary of an effective configuration that `imsitrace config check` prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::duration::format_duration;
use super::redis_url::redact;
use imsitrace::pipeline::live::LiveOptions;

use super::schema::{ClusterSection, NodeConfig, ProbeSection};

/// Returns one line per section, with the defaults applied and the Redis password hidden.
pub fn summary(path: &Path, config: &NodeConfig) -> String {
    let mut text = format!("configuration {} is valid\n", path.display());
    let node = &config.node;
    let region = node.region.as_deref().unwrap_or("-");
    // Writing to a String cannot fail.
    let _ = writeln!(text, "node        name {}, roles {}, site {}, region {region}", node.name, node.roles.names(), node.site);
    let cloud = &config.microcloud;
    let store = cloud.redis.as_deref().map_or_else(|| "embedded (in process memory)".to_owned(), redact);
    let _ = writeln!(
        text,
        "microcloud  {store}, prefix {}, ntop_compat {}, buffer {} items, retry_timeout {}",
        cloud.prefix,
        cloud.ntop_compat,
        cloud.buffer,
        format_duration(cloud.retry_timeout)
    );
    text.push_str(&report_line(config));
    text.push_str(&probe_line(config));
    text.push_str(&metrics_line(config));
    if let Some(cluster) = &config.cluster {
        text.push_str(&cluster_line(&config.node.name, cluster));
    }
    text
}

fn report_line(config: &NodeConfig) -> String {
    if !config.node.roles.collector {
        return "report      not used: node.roles has no collector\n".to_owned();
    }
    let report = &config.report;
    format!(
        "report      outdir {}, interval {}, offset {}, lag {}, claim_ttl {}, retention {}, owner {}\n",
        shown(report.outdir.as_ref()),
        format_duration(report.interval),
        format_duration(report.offset),
        report.lag,
        format_duration(report.claim_ttl),
        format_duration(report.retention),
        config.node.name
    )
}

fn probe_line(config: &NodeConfig) -> String {
    if !config.node.roles.probe {
        return "probe       not used: node.roles has no probe\n".to_owned();
    }
    let probe: &ProbeSection = &config.probe;
    let mut text = String::new();
    if let Some(live) = &probe.live {
        text = capture_line(live);
    }
    let inputs: Vec<String> = probe.inputs.iter().map(|path| path.display().to_string()).collect();
    let inputs = if probe.live.is_some() { "-".to_owned() } else { inputs.join(" ") };
    let tracked = if probe.track_all { "all".to_owned() } else { probe.track.len().to_string() };
    let shards = probe.shards.map_or_else(|| "one per core".to_owned(), |shards| shards.to_string());
    let _ = writeln!(
        text,
        "probe       inputs {inputs}, tracked {tracked}, pcap_dir {}, report_dir {}, events {}, shards {shards}",
        shown(probe.pcap_dir.as_ref()),
        shown(probe.report_dir.as_ref()),
        shown(probe.events.as_ref())
    );
    text
}

/// Returns the live capture line: interfaces and every `[probe.capture]` setting.
fn capture_line(live: &LiveOptions) -> String {
    let filter = live.filter.as_ref().map_or_else(|| "default (GTP-C, GTP-U, IPv4 fragments; up to two VLAN tags)".to_owned(), |filter| format!("{filter:?}"));
    format!(
        "capture     interfaces {}, snaplen {}, buffer_mib {}, immediate {}, read_timeout {}, promiscuous {}, stats_interval {}, restart {} to {}, filter {filter}\n",
        live.interfaces.join(" "),
        live.snaplen,
        live.buffer_mib,
        live.immediate,
        format_duration(live.read_timeout),
        live.promiscuous,
        format_duration(live.stats_interval),
        format_duration(live.restart_min),
        format_duration(live.restart_max),
    )
}

fn metrics_line(config: &NodeConfig) -> String {
    match config.metrics.listen {
        Some(address) => format!("metrics     listen {address}, page http://{address}/metrics\n"),
        None => "metrics     off: no [metrics] listen address\n".to_owned(),
    }
}

fn shown(path: Option<&PathBuf>) -> String {
    path.map_or_else(|| "-".to_owned(), |path| path.display().to_string())
}

/// Returns the `[cluster]` line: addresses, seeds, where the cookie comes from (never its
/// value), timings and TLS files.
fn cluster_line(name: &str, cluster: &ClusterSection) -> String {
    let seeds = if cluster.seeds.is_empty() { "-".to_owned() } else { cluster.seeds.join(" ") };
    let tls = cluster.tls.as_ref().map_or_else(
        || "off".to_owned(),
        |tls| format!("cert {} key {} ca {}", tls.cert.display(), tls.key.display(), tls.ca.display()),
    );
    format!(
        "cluster     node {name}@{}, listen {}:{}, seeds {seeds}, cookie from {}, heartbeat_interval {}, peer_timeout {}, handshake_timeout {}, reconnect {} to {}, tls {tls}\n",
        cluster.advertise,
        cluster.listen_address,
        cluster.port,
        cluster.cookie.source,
        format_duration(cluster.heartbeat_interval),
        format_duration(cluster.peer_timeout),
        format_duration(cluster.handshake_timeout),
        format_duration(cluster.reconnect_min),
        format_duration(cluster.reconnect_max),
    )
}
