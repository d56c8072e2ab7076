//! Reads each section of the configuration into its struct, applying defaults and adding a
//! problem for every invalid or missing value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use config::Value;
use imsitrace::bucket::BUCKET_SECONDS;
use imsitrace::pipeline::capture::pace::{is_valid_speed, REPLAY_SPEED_HINT};
use imsitrace::pipeline::sink_buffer::OutageConfig;

use super::capture::read_live;
use super::cluster::read_cluster;
use super::duration::format_duration;
use super::metrics::read_metrics;
use super::problems::{from_environment, Problem};
use super::redis_url::check_redis_url;
use super::schema::{TrackerSection, MicrocloudSection, NodeConfig, NodeSection, ProbeSection, ProbeTracker, ReportSection, Roles};
use super::table::Section;

/// The sections a file may contain, in the order they are read.
pub const SECTIONS: [&str; 7] = ["node", "microcloud", "report", "probe", "cluster", "tracker", "metrics"];

/// Reads every section of `root`. Returns the configuration when no problem was found.
pub fn read_config(mut root: HashMap<String, Value>) -> Result<NodeConfig, Vec<Problem>> {
    let mut problems = Vec::new();
    let node = read_node(Section::take(&mut root, "node", &mut problems));
    let microcloud = read_microcloud(Section::take(&mut root, "microcloud", &mut problems));
    let report = read_report(Section::take(&mut root, "report", &mut problems));
    let probe = read_probe(Section::take(&mut root, "probe", &mut problems));
    let tracker = read_tracker(Section::take(&mut root, "tracker", &mut problems));
    let metrics = read_metrics(Section::take(&mut root, "metrics", &mut problems));
    // Without a [cluster] section (in the file or from an IMSITRACE_CLUSTER__* variable)
    // the node runs alone.
    let cluster = root.contains_key("cluster").then(|| read_cluster(Section::take(&mut root, "cluster", &mut problems), &host_name()));
    report_unknown_sections(root, &mut problems);
    let config = NodeConfig { node, microcloud, report, probe, cluster, tracker, metrics };
    check_roles(&config, &mut problems);
    if problems.is_empty() { Ok(config) } else { Err(problems) }
}

fn report_unknown_sections(root: HashMap<String, Value>, problems: &mut Vec<Problem>) {
    let mut unknown: Vec<(String, Value)> = root.into_iter().collect();
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in unknown {
        let message = format!("unknown section; a node configuration has the sections {}", SECTIONS.join(", "));
        problems.push(Problem { key, from_env: from_environment(value.origin()), message });
    }
}

fn read_node(mut section: Section<'_>) -> NodeSection {
    let name = read_name(&mut section);
    let roles = read_roles(&mut section);
    let site = section.string("site").unwrap_or_else(|| "local".to_owned());
    if site.is_empty() {
        section.problem("site", "invalid empty site name: give a name such as site-a".into());
    }
    let region = section.string("region");
    section.finish();
    NodeSection { name, roles, site, region }
}

/// Reads `node.name`, by default the host name. The collector stores it in its claims, so
/// it must be stable across restarts and contain no spaces.
fn read_name(section: &mut Section<'_>) -> String {
    let Some(name) = section.string("name") else {
        return host_name();
    };
    let valid = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if !valid {
        section.problem("name", format!("invalid node name {name:?}: give 1 to 64 letters, digits or . _ : -"));
    }
    name
}

/// Reads `node.roles`; an invalid or missing list adds a problem and reads as no role.
fn read_roles(section: &mut Section<'_>) -> Roles {
    let Some(names) = section.list("roles") else {
        if !section.has_problem("roles") {
            let message = "missing: give the roles of the node, e.g. roles = [\"collector\"] or [\"probe\", \"collector\"]";
            section.problem("roles", message.into());
        }
        return Roles::default();
    };
    if names.is_empty() {
        section.problem("roles", "invalid empty list: give probe, collector or both".into());
    }
    let mut roles = Roles::default();
    for name in &names {
        match name.as_str() {
            "probe" => roles.probe = true,
            "collector" => roles.collector = true,
            other => {
                section.problem("roles", format!("invalid role {other:?}: give probe, collector or both"));
                return Roles::default();
            }
        }
    }
    roles
}

fn read_microcloud(mut section: Section<'_>) -> MicrocloudSection {
    let redis = section.string("redis").and_then(|url| match check_redis_url(&url) {
        Ok(()) => Some(url),
        Err(message) => {
            section.problem("redis", message);
            None
        }
    });
    let prefix = section.string("prefix").unwrap_or_else(|| "imsitrace:".to_owned());
    if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
        section.problem("prefix", format!("invalid prefix {prefix:?}: give a non-empty prefix without spaces, e.g. imsitrace:"));
    }
    let ntop_compat = section.bool("ntop_compat").unwrap_or(false);
    let buffer = section.number("buffer", 0, 100_000_000).map_or(OutageConfig::default().capacity, |n| n as usize);
    let retry_timeout = section.duration("retry_timeout").unwrap_or(Duration::from_secs(30));
    section.finish();
    MicrocloudSection { redis, prefix, ntop_compat, buffer, retry_timeout }
}

fn read_report(mut section: Section<'_>) -> ReportSection {
    let outdir = section.path("outdir");
    let interval = section.duration("interval").unwrap_or(Duration::from_secs(BUCKET_SECONDS));
    check_interval(&mut section, interval);
    let offset = section.duration("offset").unwrap_or(Duration::from_secs(5));
    if offset >= interval {
        let message = format!("invalid offset {}: give less than report.interval ({})", format_duration(offset), format_duration(interval));
        section.problem("offset", message);
    }
    let lag = section.number("lag", 1, 288).unwrap_or(2);
    let claim_ttl = section.duration("claim_ttl").unwrap_or(Duration::from_secs(86_400));
    check_whole_seconds(&mut section, "claim_ttl", claim_ttl, 1);
    let retention = section.duration("retention").unwrap_or(Duration::from_secs(3_600));
    check_whole_seconds(&mut section, "retention", retention, 0);
    section.finish();
    ReportSection { outdir, interval, offset, lag, claim_ttl, retention }
}

/// Checks that the interval is whole seconds and divides 300 s or is a multiple of it, so
/// that ticks fall right after bucket boundaries.
fn check_interval(section: &mut Section<'_>, interval: Duration) {
    let seconds = interval.as_secs();
    let whole = interval.subsec_nanos() == 0 && seconds >= 1;
    if !whole || (BUCKET_SECONDS % seconds != 0 && seconds % BUCKET_SECONDS != 0) {
        let message = format!(
            "invalid interval {}: give whole seconds that divide 300s or are a multiple of it, e.g. 1s, 60s, 5m or 10m",
            format_duration(interval)
        );
        section.problem("interval", message);
    }
}

/// Checks that a TTL is whole seconds and at least `min_seconds`, as Redis takes it.
fn check_whole_seconds(section: &mut Section<'_>, key: &'static str, value: Duration, min_seconds: u64) {
    if value.subsec_nanos() != 0 || value.as_secs() < min_seconds {
        let message = format!("invalid value {}: give whole seconds, at least {min_seconds}s", format_duration(value));
        section.problem(key, message);
    }
}

fn read_probe(mut section: Section<'_>) -> ProbeSection {
    let inputs: Vec<PathBuf> = section.list("inputs").unwrap_or_default().into_iter().map(PathBuf::from).collect();
    let live = read_live(&mut section);
    if live.is_some() && !inputs.is_empty() {
        section.problem("interfaces", "conflicts with probe.inputs: a probe reads capture files or captures on interfaces; give one of them".into());
    }

    let pcap_dir = section.path("pcap_dir");
    let track = read_track(&mut section);
    let track_all = section.bool("track_all").unwrap_or(false);
    if track_all && !track.is_empty() {
        section.problem("track_all", "conflicts with probe.track: give either a list of IMSIs or track_all = true".into());
    }
    if (track_all || !track.is_empty()) && pcap_dir.is_none() {
        section.problem("pcap_dir", "missing: probe.track and probe.track_all need a directory for the pcap files".into());
    }

    let tracker_dir = section.path("tracker_dir").unwrap_or_else(|| default_tracker_dir(pcap_dir.as_deref()));
    let tracker_flush = section.duration("tracker_flush").unwrap_or(Duration::from_secs(1));
    if tracker_flush.is_zero() {
        section.problem("tracker_flush", "invalid value 0s: give a positive duration, e.g. 1s".into());
    }
    let trackers = read_trackers(&mut section);

    let report_dir = section.path("report_dir");
    let events = section.path("events");

    let shards = section.number("shards", 1, 256).map(|n| n as usize);
    let batch_size = section.number("batch_size", 1, 65_536).map_or(1024, |n| n as usize);
    let max_open_files = section.number("max_open_files", 1, 1_000_000).map_or(256, |n| n as usize);

    let idle_timeout = section.duration("idle_timeout").unwrap_or(Duration::from_secs(90));
    let active_timeout = section.duration("active_timeout").unwrap_or(Duration::from_secs(300));
    let late_grace = section.duration("late_grace").unwrap_or(Duration::from_secs(2));
    let replay_speed = read_replay_speed(&mut section);
    if live.is_some() && replay_speed != 0.0 {
        section.problem("replay_speed", "applies to probe.inputs, not to a live capture on probe.interfaces: leave it out".into());
    }
    let lookups = section.bool("lookups").unwrap_or(true);
    let wait_for_probes = section.number("wait_for_probes", 0, 1_000).map_or(0, |n| n as usize);

    section.finish();
    ProbeSection {
        inputs,
        live,
        pcap_dir,
        track,
        track_all,
        tracker_dir,
        tracker_flush,
        trackers,
        report_dir,
        events,
        shards,
        batch_size,
        max_open_files,
        idle_timeout,
        active_timeout,
        late_grace,
        replay_speed,
        lookups,
        wait_for_probes,
    }
}

/// Reads `probe.replay_speed`. The default, 0, reads the inputs as fast as possible.
fn read_replay_speed(section: &mut Section<'_>) -> f64 {
    let speed = section.float("replay_speed").unwrap_or(0.0);
    if is_valid_speed(speed) {
        return speed;
    }
    section.problem("replay_speed", format!("invalid value {speed}: {REPLAY_SPEED_HINT}"));
    0.0
}

/// Returns `trackers` next to `pcap_dir`, or in the working directory without it.
fn default_tracker_dir(pcap_dir: Option<&std::path::Path>) -> PathBuf {
    let parent = pcap_dir.and_then(std::path::Path::parent).filter(|p| !p.as_os_str().is_empty());
    parent.map_or_else(|| PathBuf::from("trackers"), |p| p.join("trackers"))
}

/// Reads `probe.trackers`, a list of tables `{ id = "...", imsi = "..." }`.
fn read_trackers(section: &mut Section<'_>) -> Vec<ProbeTracker> {
    let Some(value) = section.raw("trackers") else { return Vec::new() };
    let config::ValueKind::Array(items) = value.kind else {
        section.problem("trackers", "expected a list of tables, e.g. [{ id = \"t1\", imsi = \"001010000000001\" }]".into());
        return Vec::new();
    };
    let mut trackers = Vec::new();
    for item in items {
        match parse_tracker(item) {
            Ok(tracker) => trackers.push(tracker),
            Err(message) => section.problem("trackers", message),
        }
    }
    trackers
}

fn parse_tracker(item: Value) -> Result<ProbeTracker, String> {
    let hint = "give a table { id = \"t1\", imsi = \"001010000000001\" }";
    let config::ValueKind::Table(mut table) = item.kind else { return Err(format!("invalid entry: {hint}")) };
    let mut text = |key: &str| match table.remove(key).map(|v| v.kind) {
        Some(config::ValueKind::String(text)) => Ok(text),
        _ => Err(format!("entry without a string {key:?}: {hint}")),
    };
    let (id, imsi) = (text("id")?, text("imsi")?);
    if id.is_empty() || id == "." || id.contains(['/', '\\']) || id.contains("..") {
        return Err(format!("invalid tracker id {id:?}: give a plain name without path separators or \"..\""));
    }
    if !(5..=15).contains(&imsi.len()) || !imsi.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid IMSI {imsi:?} of tracker {id:?}: give 5 to 15 decimal digits"));
    }
    if let Some(key) = table.keys().next() {
        return Err(format!("unknown key {key:?} in tracker {id:?}: an entry takes id and imsi"));
    }
    Ok(ProbeTracker { id, imsi })
}

fn read_track(section: &mut Section<'_>) -> Vec<String> {
    let Some(imsis) = section.list("track") else { return Vec::new() };
    for imsi in &imsis {
        if !(5..=15).contains(&imsi.len()) || !imsi.bytes().all(|b| b.is_ascii_digit()) {
            section.problem("track", format!("invalid IMSI {imsi:?}: give 5 to 15 decimal digits"));
        }
    }
    imsis
}

fn read_tracker(mut section: Section<'_>) -> TrackerSection {
    let audit_log = section.path("audit_log");
    let retention = section.duration("retention").unwrap_or(Duration::from_secs(7 * 86_400));
    section.finish();
    TrackerSection { audit_log, retention }
}

/// Checks what each role needs from the other sections.
fn check_roles(config: &NodeConfig, problems: &mut Vec<Problem>) {
    let mut missing = |key: &str, message: &str| {
        problems.push(Problem { key: key.to_owned(), from_env: false, message: message.to_owned() });
    };
    let roles = config.node.roles;
    if roles.collector && config.microcloud.redis.is_none() {
        missing("microcloud.redis", "missing: the collector role reads the buckets from a Redis server; give its URL, e.g. redis://127.0.0.1:6379/0");
    }
    if roles.collector && config.report.outdir.is_none() {
        missing("report.outdir", "missing: the collector role writes its reports there; give a directory");
    }
    if roles.probe && config.probe.inputs.is_empty() && config.probe.live.is_none() {
        missing("probe.inputs", "missing: the probe role reads capture files or directories (probe.inputs) or captures live on network interfaces (probe.interfaces); give one of them");
    }
    if config.microcloud.ntop_compat && config.microcloud.redis.is_none() {
        missing("microcloud.ntop_compat", "needs microcloud.redis: ntop's key layout is written to a Redis server");
    }
}

/// Returns the host name, or `localhost` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
