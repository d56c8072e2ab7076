//! `imsitrace query who-uses APP`: the subscribers with traffic of an application in the
//! buckets of a window, with their totals.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use imsitrace::bucket::BucketDelta;
use serde_json::json;

use super::protocols::ProtocolNames;
use super::window::WindowArgs;
use super::{no_bucket_message, print_json, read_window_rows, with_cloud, WindowRows};
use crate::redis_target::RedisTarget;

/// Options of `imsitrace query who-uses`.
#[derive(Args, Debug)]
pub struct WhoUsesArgs {
    /// Application: an nDPI protocol name such as Facebook, TLS or TLS.Facebook.
    #[arg(value_name = "APP")]
    application: String,
    #[command(flatten)]
    window: WindowArgs,
    #[command(flatten)]
    target: RedisTarget,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Traffic of one subscriber in the selected rows.
#[derive(Debug, Default, PartialEq, Eq)]
struct Usage {
    packets: u64,
    /// Inner IP bytes.
    bytes: u64,
    flows: u64,
    /// Printed names of the selected rows, e.g. `TLS.Facebook`.
    protocols: BTreeSet<String>,
}

/// Runs `imsitrace query who-uses`.
pub fn run(args: WhoUsesArgs) -> Result<(), String> {
    let names = ProtocolNames::new()?;
    names.check_known(&args.application)?;
    let selected = with_cloud(&args.target, async |cloud| {
        read_window_rows(cloud, &names, &args.application, &args.window).await
    })?;
    let usage = usage_by_subscriber(&selected.rows, &names);
    if args.json {
        print_json(&to_json(&args.application, &selected, &usage));
    } else if selected.epochs.is_empty() {
        println!("{}", no_bucket_message(&args.window, &args.target.redis_prefix));
    } else {
        print_text(&args.application, &selected, &usage);
    }
    Ok(())
}

/// Sums the rows per IMSI.
fn usage_by_subscriber(rows: &[BucketDelta], names: &ProtocolNames) -> BTreeMap<String, Usage> {
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for row in rows {
        let entry = usage.entry(row.imsi.as_str().to_owned()).or_default();
        entry.packets += row.packets;
        entry.bytes += row.bytes;
        entry.flows += row.flows;
        entry.protocols.insert(names.printed(row.protocol).to_owned());
    }
    usage
}

fn print_text(application: &str, selected: &WindowRows, usage: &BTreeMap<String, Usage>) {
    let buckets = selected.describe();
    if usage.is_empty() {
        println!("no subscriber has {application} traffic in {buckets}");
        return;
    }
    let count = usage.len();
    let noun = if count == 1 { "subscriber" } else { "subscribers" };
    println!("{count} {noun} with {application} traffic in {buckets}");
    println!("{:<15}  {:>10}  {:>12}  {:>7}  Protocols", "IMSI", "Packets", "Bytes", "Flows");
    for (imsi, totals) in usage {
        let protocols: Vec<&str> = totals.protocols.iter().map(String::as_str).collect();
        println!(
            "{imsi:<15}  {:>10}  {:>12}  {:>7}  {}",
            totals.packets,
            totals.bytes,
            totals.flows,
            protocols.join(",")
        );
    }
}

fn to_json(application: &str, selected: &WindowRows, usage: &BTreeMap<String, Usage>) -> serde_json::Value {
    let subscribers: Vec<serde_json::Value> = usage
        .iter()
        .map(|(imsi, totals)| {
            json!({
                "imsi": imsi,
                "packets": totals.packets,
                "bytes": totals.bytes,
                "flows": totals.flows,
                "protocols": totals.protocols,
            })
        })
        .collect();
    json!({ "application": application, "window": selected.to_json(), "subscribers": subscribers })
}
