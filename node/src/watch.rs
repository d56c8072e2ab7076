//! `imsitrace watch`: prints session events as the probes publish them on the microcloud.
//! The subscription survives a lost connection; what was published while it was down is
//! lost, and a line on stderr reports the gap.

use std::io::Write;

use clap::Args;
use imsitrace::microcloud::redis::{events_channel, subscriber_channel, Delivery, Subscription, SubscriptionConfig};
use imsitrace::output::time::format_utc_us;
use imsitrace::session::SessionEvent;

use crate::redis_target::{runtime, RedisTarget};

/// Channels of ntop's historic contract: `IMSI;IP;Upstream_Tunnel;Downstream_Tunnel` and `IMSI`.
const NTOP_CHANNELS: [&str; 2] = ["imsi.create", "imsi.delete"];

/// Options of `imsitrace watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    target: RedisTarget,
    /// Print only the events of this subscriber; repeat for several.
    #[arg(long = "imsi", value_name = "IMSI", conflicts_with = "ntop")]
    imsis: Vec<String>,
    /// Print the messages of ntop's channels `imsi.create` and `imsi.delete` instead,
    /// as `<channel> <payload>` (written by probes in ntop compatibility mode).
    #[arg(long)]
    ntop: bool,
    /// Print each event as the JSON the probe published, one per line.
    #[arg(long, conflicts_with = "ntop")]
    json: bool,
    /// Exit after printing this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Runs `imsitrace watch` until SIGINT, SIGTERM or `--count` messages.
pub fn run(args: WatchArgs) -> Result<(), String> {
    for imsi in &args.imsis {
        check_imsi(imsi)?;
    }
    let channels = channels(&args);
    runtime()?.block_on(async {
        let config = SubscriptionConfig::default();
        let mut subscription = Subscription::open(&args.target.redis, &channels, &config).await.map_err(|e| e.to_string())?;
        tokio::select! {
            result = print_deliveries(&mut subscription, &args) => result,
            () = crate::analyze::wait_for_stop_signal() => Ok(()),
        }
    })
}

fn channels(args: &WatchArgs) -> Vec<String> {
    let prefix = &args.target.redis_prefix;
    if args.ntop {
        return NTOP_CHANNELS.iter().map(|&name| name.to_owned()).collect();
    }
    if args.imsis.is_empty() {
        return vec![events_channel(prefix)];
    }
    args.imsis.iter().map(|imsi| subscriber_channel(prefix, imsi)).collect()
}

/// Accepts 5 to 15 digits: MCC and MNC take 5 or 6, TS 23.003 section 2.2 caps the IMSI at 15.
fn check_imsi(imsi: &str) -> Result<(), String> {
    if (5..=15).contains(&imsi.len()) && imsi.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(());
    }
    Err(format!("invalid IMSI {imsi:?} for --imsi: give 5 to 15 digits"))
}

/// Prints messages until `--count` is reached; reports subscriptions and gaps on stderr.
async fn print_deliveries(subscription: &mut Subscription, args: &WatchArgs) -> Result<(), String> {
    let mut printed = 0;
    let mut gap = false;
    let mut stdout = std::io::stdout();
    while args.count.is_none_or(|count| printed < count) {
        let Some(delivery) = subscription.next().await else {
            return Err("the subscription ended: the connection to Redis is gone".into());
        };
        match delivery {
            Delivery::Message { channel, payload } => {
                let line = format_message(&channel, &payload, args);
                writeln!(stdout, "{line}").map_err(|e| format!("cannot write to stdout: {e}"))?;
                printed += 1;
            }
            Delivery::Subscribed { channel } if gap => eprintln!("imsitrace: resubscribed to {channel}"),
            Delivery::Subscribed { channel } => eprintln!("imsitrace: subscribed to {channel}"),
            Delivery::Disconnected => {
                gap = true;
                eprintln!("imsitrace: connection to Redis lost; messages published until it is back are lost");
            }
        }
    }
    Ok(())
}

fn format_message(channel: &str, payload: &[u8], args: &WatchArgs) -> String {
    let text = String::from_utf8_lossy(payload);
    if args.ntop {
        return format!("{channel} {text}");
    }
    if args.json {
        return text.into_owned();
    }
    match serde_json::from_slice::<SessionEvent>(payload) {
        Ok(event) => format_event(&event),
        Err(error) => format!("{channel}: not a session event ({error}): {text}"),
    }
}

/// Formats one event as a line: time, kind, IMSI, then the fields the event carries.
fn format_event(event: &SessionEvent) -> String {
    let mut line = format!("{} {} {} site={}", format_utc_us(event.ts_us), event.kind.as_str(), event.imsi, event.site);
    let fields = [
        ("msisdn", event.msisdn.clone()),
        ("apn", event.apn.clone()),
        ("rat", event.rat.clone()),
        ("ue", event.ue_ipv4.map(|ip| ip.to_string())),
        ("ue6", event.ue_ipv6.map(|ip| ip.to_string())),
        ("cause", event.cause.map(|cause| cause.to_string())),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    let tunnels: Vec<String> = event.tunnels.iter().map(|t| format!("{}:{}", t.key.addr, t.key.teid)).collect();
    if !tunnels.is_empty() {
        line.push_str(&format!(" tunnels={}", tunnels.join(",")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_must_be_digits() {
        assert!(check_imsi("001010000000001").is_ok());
        let error = check_imsi("00101x").expect_err("letter");
        assert!(error.contains("\"00101x\""), "{error}");
        assert!(check_imsi("1234").is_err(), "too short");
        assert!(check_imsi("1234567890123456").is_err(), "too long");
    }
}
