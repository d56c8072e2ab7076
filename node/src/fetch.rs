//! `imsitrace fetch ID --cluster ADDR --out FILE`: collects a tracker's pcap files from the
//! agent of every probe and merges them by timestamp into one pcap file.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use imsitrace::tracker::client::{agent_file, agent_files, ClusterClient};
use imsitrace::tracker::merge::{merge_pcaps, MergeSummary, SourceFile};
use imsitrace::tracker::protocol::TrackerStatus;

use crate::track_cluster::{format_time_ms, runtime, ClusterOptions};

/// Time the set of connected probes must stay the same before the files are requested.
const AGENTS_SETTLE: Duration = Duration::from_secs(3);

/// Options of `imsitrace fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Tracker id, as printed by `imsitrace track`.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    cluster: ClusterOptions,
    /// File of the merged pcap; an existing file is replaced.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Maximum time for a probe to reply to each request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    probe_timeout: u64,
    /// Exit with status 0 even when some probes did not reply; their frames are missing.
    #[arg(long)]
    partial: bool,
}

/// Runs `imsitrace fetch`.
pub fn run(args: FetchArgs) -> Result<(), String> {
    runtime()?.block_on(async {
        let client = args.cluster.join().await?;
        let result = fetch(&client, &args.id, &args.out, args.probe_timeout, args.partial).await;
        client.leave().await;
        result
    })
}

/// Fetches and merges the files of tracker `id` into `out`, with the client already in
/// the cluster. Used by `imsitrace track --out` too.
pub async fn fetch(client: &ClusterClient, id: &str, out: &Path, probe_timeout_s: u64, partial: bool) -> Result<(), String> {
    let status = find_tracker(client, id).await?;
    let timeout_ms = probe_timeout_s.max(1) * 1_000;
    let agents = client.wait_for_agents(AGENTS_SETTLE, Duration::from_secs(probe_timeout_s.max(1))).await;
    let mut sources = Vec::new();
    let mut answered = BTreeSet::new();
    let mut failures = Vec::new();
    for agent in &agents {
        let list = match agent_files(agent, id, timeout_ms).await {
            Ok(list) => list,
            Err(error) => {
                failures.push(error);
                continue;
            }
        };
        for file in &list.files {
            match agent_file(agent, id, &file.name, file.len, timeout_ms).await {
                Ok(bytes) => sources.push(SourceFile { node: list.node.clone(), name: file.name.clone(), bytes }),
                Err(error) => failures.push(format!("{}: {error}", list.node)),
            }
        }
        answered.insert(list.node);
    }
    let summary = write_merged(&sources, out)?;
    print_summary(id, out, &summary, &status);
    let silent: Vec<&str> = status.probes.iter().map(|counts| counts.node.as_str()).filter(|node| !answered.contains(*node)).collect();
    report_missing(&silent, &failures, agents.is_empty(), partial)
}

async fn find_tracker(client: &ClusterClient, id: &str) -> Result<TrackerStatus, String> {
    let list = client.list(true).await?;
    list.trackers
        .into_iter()
        .find(|status| status.tracker.id == id)
        .ok_or_else(|| format!("unknown tracker id {id:?}: list the trackers with `imsitrace track --list --all --cluster ADDR`"))
}

/// Writes the merged pcap to a temporary file next to `out`, then renames it.
fn write_merged(sources: &[SourceFile], out: &Path) -> Result<MergeSummary, String> {
    let partial_path = out.with_extension("pcap.part");
    let file = std::fs::File::create(&partial_path).map_err(|error| format!("cannot create {}: {error}; give a writable --out", partial_path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let summary = merge_pcaps(sources, &mut writer)?;
    writer.flush().map_err(|error| format!("cannot write {}: {error}", partial_path.display()))?;
    std::fs::rename(&partial_path, out).map_err(|error| format!("cannot rename {} to {}: {error}", partial_path.display(), out.display()))?;
    Ok(summary)
}

fn print_summary(id: &str, out: &Path, summary: &MergeSummary, status: &TrackerStatus) {
    println!("{id}: wrote {} frames to {} ({} exact duplicates dropped)", summary.written, out.display(), summary.duplicates);
    for (node, counts) in &summary.nodes {
        let range = match (counts.first_us, counts.last_us) {
            (Some(first), Some(last)) => format!(", {} to {}", format_time_ms(first / 1_000), format_time_ms(last / 1_000)),
            _ => String::new(),
        };
        println!("  {node}: {} frames, {} duplicates{range}", counts.frames, counts.duplicates);
        if counts.truncated_bytes > 0 {
            println!("    {} bytes after the last complete record ignored", counts.truncated_bytes);
        }
        let gaps = status.probes.iter().filter(|probe| &probe.node == node).flat_map(|probe| probe.gaps.iter());
        for gap in gaps {
            println!("    gap: {gap}");
        }
    }
}

/// Warns about probes that did not reply and fails unless `partial`.
fn report_missing(silent: &[&str], failures: &[String], no_agents: bool, partial: bool) -> Result<(), String> {
    for failure in failures {
        eprintln!("imsitrace: warning: {failure}");
    }
    if no_agents {
        eprintln!("imsitrace: warning: no probe agent in the cluster; the pcap is empty");
    }
    if silent.is_empty() && failures.is_empty() {
        return Ok(());
    }
    let names = if silent.is_empty() { "-".to_owned() } else { silent.join(", ") };
    let message = format!("probes without a reply: {names}; {} request(s) failed, so the pcap lacks their frames", failures.len());
    if partial {
        eprintln!("imsitrace: warning: {message}");
        Ok(())
    } else {
        Err(format!("{message}; run again, or give --partial to accept the incomplete pcap"))
    }
}
