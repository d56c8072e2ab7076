//! `imsitrace track`: attaches a tracker to an IMSI through a collector's registry, lists
//! the trackers, or detaches one. The command joins the cluster as a transient node for
//! its own duration.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use imsitrace::tracker::client::ClusterClient;
use imsitrace::tracker::protocol::{AttachRequest, DetachRequest, Tracker, TrackerList, TrackerStatus};

use crate::config::parse_duration;
use crate::track_cluster::{format_time_ms, operator, runtime, ClusterOptions};

/// Time between two lines of counts of an attached tracker.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Options of `imsitrace track`.
#[derive(Args, Debug)]
pub struct TrackArgs {
    /// IMSI to attach a tracker to (5 to 15 digits).
    #[arg(value_name = "IMSI", required_unless_present_any = ["list", "detach"], conflicts_with_all = ["list", "detach"])]
    imsi: Option<String>,
    #[command(flatten)]
    cluster: ClusterOptions,
    /// Lifetime of the tracker, e.g. 30m or 2h; without it the tracker stays until it is
    /// detached.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Reason for tracking the subscriber, written to the audit log. Required to attach.
    #[arg(long, value_name = "TEXT", required_unless_present_any = ["list", "detach"])]
    reason: Option<String>,
    /// Directory where the merged pcap `<ID>.pcap` is written when the tracker ends.
    #[arg(long, value_name = "DIR", conflicts_with = "background")]
    out: Option<PathBuf>,
    /// Print the tracker id and return at once; the tracker stays attached.
    #[arg(long)]
    background: bool,
    /// List the active trackers with their per-probe counts.
    #[arg(long)]
    list: bool,
    /// With --list, also list the trackers that ended within the collector's retention.
    #[arg(long, requires = "list")]
    all: bool,
    /// With --list, print JSON instead of text.
    #[arg(long, requires = "list")]
    json: bool,
    /// Detach the tracker with this id.
    #[arg(long, value_name = "ID", conflicts_with = "list")]
    detach: Option<String>,
}

/// Runs `imsitrace track`.
pub fn run(args: TrackArgs) -> Result<(), String> {
    runtime()?.block_on(async {
        let client = args.cluster.join().await?;
        let result = run_joined(&client, &args).await;
        client.leave().await;
        result
    })
}

async fn run_joined(client: &ClusterClient, args: &TrackArgs) -> Result<(), String> {
    if args.list {
        let list = client.list(args.all).await?;
        print_list(&list, args.json);
        return Ok(());
    }
    if let Some(id) = &args.detach {
        let tracker = client.detach(DetachRequest { id: id.clone(), requested_by: operator() }).await?;
        println!("{} detached (IMSI {})", tracker.id, tracker.imsi);
        return Ok(());
    }
    let imsi = args.imsi.clone().unwrap_or_default();
    let duration_ms = args.duration.map(|duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    let request = AttachRequest { imsi, reason: args.reason.clone().unwrap_or_default(), requested_by: operator(), duration_ms };
    let tracker = client.attach(request).await?;
    println!("{}", tracker.id);
    eprintln!("{}", describe(&tracker));
    if args.background {
        return Ok(());
    }
    follow(client, &tracker, args).await
}

/// Prints the counts every 2 s until the tracker ends or Ctrl-C, which detaches it. With
/// `--out`, fetches the merged pcap at the end.
async fn follow(client: &ClusterClient, tracker: &Tracker, args: &TrackArgs) -> Result<(), String> {
    let interrupted = wait_for_end(client, tracker).await;
    if interrupted {
        let detached = client.detach(DetachRequest { id: tracker.id.clone(), requested_by: operator() }).await;
        match detached {
            Ok(_) => eprintln!("{} detached", tracker.id),
            Err(error) => eprintln!("imsitrace: warning: cannot detach {}: {error}", tracker.id),
        }
    }
    let Some(dir) = &args.out else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create --out {}: {error}", dir.display()))?;
    crate::fetch::fetch(client, &tracker.id, &dir.join(format!("{}.pcap", tracker.id)), 10, false).await
}

/// Returns true on Ctrl-C, false when the tracker ended by itself or was detached.
async fn wait_for_end(client: &ClusterClient, tracker: &Tracker) -> bool {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let started = Instant::now();
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return true,
            () = tokio::time::sleep(PROGRESS_INTERVAL) => {}
        }
        match client.list(false).await {
            Ok(list) => match list.trackers.iter().find(|status| status.tracker.id == tracker.id) {
                Some(status) => println!("{:>6.0}s {}", started.elapsed().as_secs_f64(), site_counts(status)),
                None => {
                    eprintln!("{} ended", tracker.id);
                    return false;
                }
            },
            Err(error) => eprintln!("imsitrace: warning: {error}"),
        }
    }
}

fn describe(tracker: &Tracker) -> String {
    let until = tracker.expires_at_ms.map_or_else(|| "until detached".to_owned(), |ms| format!("until {}", format_time_ms(ms)));
    format!("tracker {} attached to IMSI {} {until}", tracker.id, tracker.imsi)
}

/// Returns `site: N packets` for every probe that reported, or `no packets yet`.
fn site_counts(status: &TrackerStatus) -> String {
    if status.probes.is_empty() {
        return "no packets yet".to_owned();
    }
    let parts: Vec<String> = status
        .probes
        .iter()
        .map(|counts| format!("{}: {} packets, {} bytes", counts.site.as_deref().unwrap_or(&counts.node), counts.packets, counts.bytes))
        .collect();
    parts.join("; ")
}

fn print_list(list: &TrackerList, json: bool) {
    if json {
        let rows: Vec<serde_json::Value> = list.trackers.iter().map(status_json).collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    if list.trackers.is_empty() {
        println!("no trackers");
        return;
    }
    for status in &list.trackers {
        let tracker = &status.tracker;
        let state = match status.ended_at_ms {
            Some(ms) => format!("ended {}", format_time_ms(ms)),
            None => tracker.expires_at_ms.map_or_else(|| "active until detached".to_owned(), |ms| format!("active until {}", format_time_ms(ms))),
        };
        println!("{}\t{}\t{state}\tby {}\treason {:?}\t{}", tracker.id, tracker.imsi, tracker.requested_by, tracker.reason, site_counts(status));
    }
}

fn status_json(status: &TrackerStatus) -> serde_json::Value {
    let tracker = &status.tracker;
    let probes: Vec<serde_json::Value> = status
        .probes
        .iter()
        .map(|counts| {
            serde_json::json!({
                "node": counts.node, "site": counts.site, "packets": counts.packets, "bytes": counts.bytes,
                "last_packet_us": counts.last_packet_us, "skipped": counts.skipped, "gaps": counts.gaps,
            })
        })
        .collect();
    serde_json::json!({
        "id": tracker.id, "imsi": tracker.imsi, "reason": tracker.reason, "requested_by": tracker.requested_by,
        "attached_at_ms": tracker.attached_at_ms, "expires_at_ms": tracker.expires_at_ms, "ended_at_ms": status.ended_at_ms,
        "probes": probes,
    })
}
