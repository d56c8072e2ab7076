//! `imsitrace subscriber`: prints the stored state of one subscriber, found by IMSI, MSISDN
//! or UE address on the Redis microcloud.

use std::net::IpAddr;

use clap::{ArgGroup, Args};
use imsitrace::microcloud::{AttachState, Microcloud, SessionTunnel, SubscriberState};
use imsitrace::output::time::format_utc_us;
use imsitrace::session::event::TunnelRole;

use crate::redis_target::{runtime, RedisTarget};

/// Options of `imsitrace subscriber`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("lookup").required(true).args(["imsi", "msisdn", "ue_ip"])))]
pub struct SubscriberArgs {
    /// IMSI of the subscriber: 5 to 15 digits.
    #[arg(value_name = "IMSI", value_parser = parse_imsi)]
    imsi: Option<String>,
    /// Find the subscriber by MSISDN: up to 15 digits, with or without a leading `+`.
    #[arg(long, value_name = "DIGITS", value_parser = parse_msisdn)]
    msisdn: Option<String>,
    /// Find the subscriber by UE address: IPv4, or IPv6 (any address of the /64 prefix of
    /// the PDN connection). When the address was reused, the subscriber written last with
    /// it while attached or idle is found.
    #[arg(long, value_name = "ADDRESS", value_parser = parse_ue_ip)]
    ue_ip: Option<IpAddr>,
    #[command(flatten)]
    target: RedisTarget,
    /// Print the stored state as JSON, with `last_change_utc` added.
    #[arg(long)]
    json: bool,
}

/// The key a subscriber is looked up by.
enum Lookup {
    Imsi(String),
    Msisdn(String),
    UeAddress(IpAddr),
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Imsi(imsi) => write!(f, "IMSI {imsi}"),
            Lookup::Msisdn(msisdn) => write!(f, "MSISDN {msisdn}"),
            Lookup::UeAddress(addr) => write!(f, "UE address {addr}"),
        }
    }
}

impl SubscriberArgs {
    fn lookup(&self) -> Result<Lookup, String> {
        match (&self.imsi, &self.msisdn, self.ue_ip) {
            (Some(imsi), _, _) => Ok(Lookup::Imsi(imsi.clone())),
            (_, Some(msisdn), _) => Ok(Lookup::Msisdn(msisdn.clone())),
            (_, _, Some(addr)) => Ok(Lookup::UeAddress(addr)),
            (None, None, None) => Err("missing subscriber: give an IMSI, --msisdn DIGITS or --ue-ip ADDRESS".into()),
        }
    }
}

/// Runs `imsitrace subscriber`. A subscriber that is not found is an error (exit status 1).
pub fn run(args: SubscriberArgs) -> Result<(), String> {
    let lookup = args.lookup()?;
    let state = runtime()?.block_on(async {
        let mut cloud = args.target.connect().await?;
        let found = match &lookup {
            Lookup::Imsi(imsi) => cloud.subscriber(imsi).await,
            Lookup::Msisdn(msisdn) => cloud.subscriber_by_msisdn(msisdn).await,
            Lookup::UeAddress(addr) => cloud.subscriber_by_ue_address(*addr).await,
        };
        found.map_err(|e| e.to_string())
    })?;
    let Some(state) = state else {
        return Err(format!(
            "no subscriber with {lookup} is stored under the key prefix {:?}: no event seen by the probes had it, or its state expired",
            args.target.redis_prefix
        ));
    };
    if args.json {
        println!("{}", to_json(&state)?);
    } else {
        print!("{}", to_text(&state));
    }
    Ok(())
}

/// Accepts 5 to 15 digits: MCC and MNC take 5 or 6, and an IMSI has at most 15.
fn parse_imsi(text: &str) -> Result<String, String> {
    if (5..=15).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(text.to_owned());
    }
    Err(format!("invalid IMSI {text:?}: give 5 to 15 digits"))
}

/// Accepts 1 to 15 digits (an E.164 number), after an optional leading `+`.
fn parse_msisdn(text: &str) -> Result<String, String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if (1..=15).contains(&digits.len()) && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(digits.to_owned());
    }
    Err(format!("invalid MSISDN {text:?}: give up to 15 digits, with or without a leading +"))
}

fn parse_ue_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid UE address {text:?}: give an IPv4 address such as 100.64.0.1 or an IPv6 address such as 2001:db8::1"))
}

fn to_json(state: &SubscriberState) -> Result<String, String> {
    let mut value = serde_json::to_value(state).map_err(|e| format!("cannot encode the state of {} as JSON: {e}", state.imsi))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("last_change_utc".to_owned(), format_utc_us(state.last_change_us).into());
    }
    Ok(value.to_string())
}

/// Formats the state as `field  value` lines, then one line per tunnel.
fn to_text(state: &SubscriberState) -> String {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let fields = [
        ("IMSI", state.imsi.clone()),
        ("state", state_name(state.state).to_owned()),
        ("MSISDN", optional(state.msisdn.clone())),
        ("IMEI", optional(state.imei.clone())),
        ("APN", optional(state.apn.clone())),
        ("RAT", optional(state.rat.clone())),
        ("location", optional(state.uli.clone())),
        ("serving network", optional(state.serving_network.clone())),
        ("UE IPv4", optional(state.ue_ipv4.map(|addr| addr.to_string()))),
        ("UE IPv6", optional(state.ue_ipv6.map(|addr| addr.to_string()))),
        ("last site", state.site.clone()),
        ("last change", format_utc_us(state.last_change_us)),
        ("tunnels", state.tunnels.len().to_string()),
    ];
    let mut text = String::new();
    for (name, value) in fields {
        text.push_str(&format!("{name:<16} {value}\n"));
    }
    if !state.tunnels.is_empty() {
        text.push_str(&format!(
            "  {:<10} {:<39} {:>10} {:>6} {:>9}  {:<12} {}\n",
            "role", "address", "TEID", "bearer", "interface", "site", "session"
        ));
    }
    for tunnel in &state.tunnels {
        text.push_str(&tunnel_line(tunnel));
    }
    text
}

fn tunnel_line(owned: &SessionTunnel) -> String {
    let tunnel = &owned.tunnel;
    format!(
        "  {:<10} {:<39} {:>10} {:>6} {:>9}  {:<12} {}\n",
        role_name(tunnel.role),
        tunnel.key.addr.to_string(),
        tunnel.key.teid,
        tunnel.bearer,
        tunnel.interface,
        owned.site,
        owned.session_id
    )
}

fn state_name(state: AttachState) -> &'static str {
    match state {
        AttachState::Attached => "attached",
        AttachState::Idle => "idle",
        AttachState::Detached => "detached",
    }
}

fn role_name(role: TunnelRole) -> &'static str {
    match role {
        TunnelRole::Uplink => "uplink",
        TunnelRole::Downlink => "downlink",
        TunnelRole::Forwarding => "forwarding",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_digits_checked() {
        assert_eq!(parse_imsi("001010081222024"), Ok("001010081222024".to_owned()));
        assert_eq!(parse_imsi("00101"), Ok("00101".to_owned()));
        for text in ["0010", "0010100812220241", "00101008122202x", "+001010081222024", ""] {
            let error = parse_imsi(text).expect_err(text);
            assert_eq!(error, format!("invalid IMSI {text:?}: give 5 to 15 digits"));
        }
    }

    #[test]
    fn msisdn_plus_stripped() {
        assert_eq!(parse_msisdn("447709731969"), Ok("447709731969".to_owned()));
        assert_eq!(parse_msisdn("+447709731969"), Ok("447709731969".to_owned()));
        for text in ["", "+", "++44", "4477 0973", "1234567890123456", "44-77"] {
            let error = parse_msisdn(text).expect_err(text);
            assert!(error.starts_with(&format!("invalid MSISDN {text:?}: give up to 15 digits")), "{error}");
        }
    }

    #[test]
    fn ue_address_parsed() {
        assert_eq!(parse_ue_ip("100.67.0.106"), Ok("100.67.0.106".parse().expect("address")));
        assert_eq!(parse_ue_ip("2001:db8::1"), Ok("2001:db8::1".parse().expect("address")));
        for text in ["100.67.0", "100.67.0.256", "2001:db8::/64", "host", ""] {
            let error = parse_ue_ip(text).expect_err(text);
            assert!(error.starts_with(&format!("invalid UE address {text:?}: give an IPv4 address")), "{error}");
        }
    }
}
