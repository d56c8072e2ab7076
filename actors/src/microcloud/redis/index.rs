//! Index entries written with each subscriber state, so that queries find a subscriber by
//! MSISDN or UE address and list the active subscribers without KEYS or SCAN.
//!
//! The entries go into the MULTI/EXEC pipeline that writes the state, so an entry and the
//! state it names change together. An entry can still outlive its meaning: the state expires
//! on its own, and an MSISDN or a UE address moves to another subscriber. Readers therefore
//! check the state an entry leads to (`queries.rs`).

use std::net::IpAddr;

use redis::Pipeline;

use super::keys::Keys;
use crate::microcloud::{AttachState, SubscriberState};

/// Appends the index writes of one subscriber `state` to `pipe`, each with the state TTL
/// (`state_ttl`, seconds):
///
/// - `P msisdn:<MSISDN>` is set to the IMSI whenever the state has an MSISDN.
/// - `P ueip:<address>` is set to the IMSI for each UE address of the state. An attached or
///   idle state takes the entry over. A detached state sets it only when it is missing, so
///   when the previous holder of a reused address is written again, the entry keeps
///   naming the new holder.
/// - The IMSI is in `P active`, scored by `last_change_us`, while the state is attached or
///   idle, and leaves it once the state is detached.
///
/// NOTE: one `publish` call writes only the final state of each subscriber. A subscriber
/// that attached and detached within one call is written detached, so it sets an address
/// entry only when the entry is missing. When it was the newer holder of a reused address,
/// the entry still names the previous holder.
pub(super) fn append_state_indexes(pipe: &mut Pipeline, keys: &Keys, state_ttl: i64, state: &SubscriberState) {
    let imsi = state.imsi.as_str();
    if let Some(msisdn) = state.msisdn.as_deref().filter(|msisdn| !msisdn.is_empty()) {
        pipe.cmd("SET").arg(keys.msisdn(msisdn)).arg(imsi).arg("EX").arg(state_ttl).ignore();
    }
    let detached = state.state == AttachState::Detached;
    for addr in ue_addresses(state) {
        let set = pipe.cmd("SET").arg(keys.ue_address(addr)).arg(imsi).arg("EX").arg(state_ttl);
        if detached {
            set.arg("NX");
        }
        set.ignore();
    }
    let active = keys.active();
    if detached {
        pipe.zrem(&active, imsi).ignore();
        return;
    }
    // A score is a double: microseconds since the epoch stay exact below 2^53 (year 2255).
    pipe.zadd(&active, imsi, state.last_change_us).ignore();
    pipe.expire(&active, state_ttl).ignore();
}

/// Returns the UE addresses of `state`: IPv4 first, then IPv6.
pub(super) fn ue_addresses(state: &SubscriberState) -> impl Iterator<Item = IpAddr> {
    let ipv4 = state.ue_ipv4.map(IpAddr::V4);
    let ipv6 = state.ue_ipv6.map(IpAddr::V6);
    ipv4.into_iter().chain(ipv6)
}
