//! `imsitrace status --cluster ADDR`: joins the cluster as a transient node, requests the
//! metrics of every node and prints one block per node, or JSON with `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use imsitrace::metrics::render::format_value;
use imsitrace::metrics::status::{NodeStatus, StatusClient};
use imsitrace::metrics::{NodeSnapshot, Sample};

use crate::track_cluster::{runtime, ClusterOptions};

/// Time the peers and status actors must stay the same before the nodes are asked.
const SETTLE: Duration = Duration::from_millis(1500);

/// Options of `imsitrace status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    cluster: ClusterOptions,
    /// Print the nodes as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Maximum time for each node to send its metrics, in seconds. A node that sends
    /// nothing in time is listed with the reason.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
}

/// Runs `imsitrace status`. Fails, after printing every node, when a node sent no metrics.
pub fn run(args: StatusArgs) -> Result<(), String> {
    if args.timeout == 0 {
        return Err("invalid value 0 for --timeout: give the seconds each node has to answer, at least 1".to_owned());
    }
    let settings = args.cluster.settings()?;
    let statuses = runtime()?.block_on(async {
        let client = StatusClient::join(&settings).await?;
        client.wait_for_nodes(SETTLE, settings.timeout).await;
        let statuses = client.collect(Duration::from_secs(args.timeout)).await;
        client.leave().await;
        statuses
    })?;
    if args.json {
        let nodes: Vec<serde_json::Value> = statuses.iter().map(status_json).collect();
        println!("{}", serde_json::to_string_pretty(&nodes).map_err(|error| error.to_string())?);
    } else {
        print!("{}", status_text(&statuses));
    }
    let silent = statuses.iter().filter(|status| matches!(status, NodeStatus::NoAnswer { .. })).count();
    if silent > 0 {
        return Err(format!("{silent} of {} nodes did not answer; see the list above", statuses.len()));
    }
    Ok(())
}

/// Returns one block per node: a heading line, then one line per sample.
fn status_text(statuses: &[NodeStatus]) -> String {
    if statuses.is_empty() {
        return "no node of the cluster answered or was seen\n".to_owned();
    }
    let mut text = String::new();
    for status in statuses {
        match status {
            NodeStatus::Answered(snapshot) => write_node(&mut text, snapshot),
            NodeStatus::NoAnswer { node, reason } => {
                let _ = writeln!(text, "node {node}: no answer: {reason}\n");
            }
        }
    }
    text
}

fn write_node(text: &mut String, snapshot: &NodeSnapshot) {
    let identity = &snapshot.identity;
    // Writing to a String cannot fail.
    let _ = writeln!(text, "node {}  roles {}  site {}  uptime {:.0} s", identity.node, identity.roles.join(","), identity.site, snapshot.uptime_s);
    for family in &snapshot.families {
        for sample in &family.samples {
            let _ = writeln!(text, "  {:<64} {}", sample_name(&family.name, sample), format_value(sample.value));
        }
    }
    text.push('\n');
}

/// Returns `name{label="value",...}`, or `name` for a sample without labels.
fn sample_name(name: &str, sample: &Sample) -> String {
    if sample.labels.is_empty() {
        return name.to_owned();
    }
    let labels: Vec<String> = sample.labels.iter().map(|(label, value)| format!("{label}={value:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

fn status_json(status: &NodeStatus) -> serde_json::Value {
    match status {
        NodeStatus::Answered(snapshot) => {
            let metrics: serde_json::Map<String, serde_json::Value> = snapshot
                .families
                .iter()
                .flat_map(|family| family.samples.iter().map(move |sample| (sample_name(&family.name, sample), serde_json::json!(sample.value))))
                .collect();
            let identity = &snapshot.identity;
            serde_json::json!({
                "node": identity.node,
                "roles": identity.roles,
                "site": identity.site,
                "uptime_s": snapshot.uptime_s,
                "answered": true,
                "metrics": metrics,
            })
        }
        NodeStatus::NoAnswer { node, reason } => serde_json::json!({ "node": node, "answered": false, "error": reason }),
    }
}
