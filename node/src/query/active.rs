//! `imsitrace query active [--protocol APP]`: the number of active subscribers, optionally
//! only those with traffic of an application in a window.

use std::collections::BTreeSet;

use clap::Args;
use imsitrace::microcloud::redis::ActiveSubscriber;
use imsitrace::microcloud::AttachState;
use serde_json::json;

use super::protocols::ProtocolNames;
use super::window::WindowArgs;
use super::{no_bucket_message, print_json, read_window_rows, with_cloud, WindowRows};
use crate::redis_target::RedisTarget;

/// Options of `imsitrace query active`.
#[derive(Args, Debug)]
pub struct ActiveArgs {
    /// Count only the active subscribers with traffic of this application in the window,
    /// an nDPI protocol name such as Facebook, TLS or TLS.Facebook.
    #[arg(long, value_name = "APP")]
    protocol: Option<String>,
    #[command(flatten)]
    window: WindowArgs,
    #[command(flatten)]
    target: RedisTarget,
    /// Print one JSON object, with the IMSIs, instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `imsitrace query active`.
pub fn run(args: ActiveArgs) -> Result<(), String> {
    if args.protocol.is_none() && args.window.is_given() {
        return Err("--since, --from and --to select the buckets of --protocol; give --protocol APP too".into());
    }
    let names = args.protocol.as_ref().map(|_| ProtocolNames::new()).transpose()?;
    if let (Some(names), Some(application)) = (&names, &args.protocol) {
        names.check_known(application)?;
    }
    let (active, selected) = with_cloud(&args.target, async |cloud| {
        let active = cloud.active_subscribers().await.map_err(|e| e.to_string())?;
        let (Some(names), Some(application)) = (&names, &args.protocol) else { return Ok((active, None)) };
        let selected = read_window_rows(cloud, names, application, &args.window).await?;
        Ok((active, Some(selected)))
    })?;
    let counted = match &selected {
        Some(selected) => with_traffic(active, selected),
        None => active,
    };
    if args.json {
        print_json(&to_json(&counted, args.protocol.as_deref(), selected.as_ref()));
        return Ok(());
    }
    match (&args.protocol, &selected) {
        (Some(_), Some(selected)) if selected.epochs.is_empty() => {
            println!("{}", no_bucket_message(&args.window, &args.target.redis_prefix));
        }
        (Some(application), Some(selected)) => {
            let traffic = format!("with {application} traffic in {}", selected.describe());
            println!("{}", count_text(&counted, Some(&traffic)));
        }
        _ => println!("{}", count_text(&counted, None)),
    }
    Ok(())
}

/// Keeps the subscribers of `active` that have a row in `selected`.
fn with_traffic(active: Vec<ActiveSubscriber>, selected: &WindowRows) -> Vec<ActiveSubscriber> {
    let users: BTreeSet<&str> = selected.rows.iter().map(|row| row.imsi.as_str()).collect();
    active.into_iter().filter(|subscriber| users.contains(subscriber.imsi.as_str())).collect()
}

/// Returns e.g. `12 active subscribers (10 attached, 2 idle)`, with `qualifier` (such as
/// `with TLS traffic in ...`) before the brackets.
fn count_text(subscribers: &[ActiveSubscriber], qualifier: Option<&str>) -> String {
    let (attached, idle) = count_states(subscribers);
    let count = subscribers.len();
    let noun = if count == 1 { "subscriber" } else { "subscribers" };
    let qualifier = qualifier.map(|text| format!(" {text}")).unwrap_or_default();
    format!("{count} active {noun}{qualifier} ({attached} attached, {idle} idle)")
}

fn count_states(subscribers: &[ActiveSubscriber]) -> (usize, usize) {
    let attached = subscribers.iter().filter(|subscriber| subscriber.state == AttachState::Attached).count();
    (attached, subscribers.len() - attached)
}

fn to_json(subscribers: &[ActiveSubscriber], protocol: Option<&str>, selected: Option<&WindowRows>) -> serde_json::Value {
    let (attached, idle) = count_states(subscribers);
    let imsis: Vec<&str> = subscribers.iter().map(|subscriber| subscriber.imsi.as_str()).collect();
    json!({
        "active": subscribers.len(),
        "attached": attached,
        "idle": idle,
        "protocol": protocol,
        "window": selected.map(WindowRows::to_json),
        "imsis": imsis,
    })
}
