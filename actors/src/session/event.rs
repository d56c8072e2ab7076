//! Session-change events: what the control plane learned, in a form every other part
//! (shards, pcap writers, the microcloud, the events log, other nodes) can consume.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A user-plane tunnel endpoint: the address that receives G-PDUs and the TEID it assigned.
/// TEIDs are unique only per GTP entity, so the address is part of the key (TS 29.281 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TunnelKey {
    /// Endpoint IP address (destination of the G-PDUs carrying this TEID).
    pub addr: IpAddr,
    /// Tunnel Endpoint Identifier, never 0.
    pub teid: u32,
}

/// Side of the subscriber's path that a tunnel endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelRole {
    /// Core-side endpoint (GGSN, SGW, PGW): receives uplink G-PDUs.
    Uplink,
    /// Radio-side endpoint (SGSN, RNC, eNodeB): receives downlink G-PDUs.
    Downlink,
    /// A handover data forwarding tunnel.
    Forwarding,
}

/// One tunnel of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    /// Endpoint address and TEID.
    #[serde(flatten)]
    pub key: TunnelKey,
    /// Direction of the traffic it receives.
    pub role: TunnelRole,
    /// EPS Bearer ID or NSAPI of the bearer it belongs to.
    pub bearer: u8,
    /// F-TEID interface type (TS 29.274 Table 8.22-1), or [`Tunnel::GTPV1`] for GTPv1 tunnels.
    pub interface: u8,
}

impl Tunnel {
    /// Interface value of tunnels signalled in GTPv1-C, which has no interface types.
    pub const GTPV1: u8 = 0xff;
}

/// Kind of change to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A session (PDP context or PDN connection) was created and accepted.
    Attach,
    /// A create request was rejected: no tunnel exists.
    Reject,
    /// Tunnels or identity changed in place (Modify Bearer, Update PDP Context, new bearer).
    Modify,
    /// The radio-side endpoint moved to another node (handover, SGSN change).
    Move,
    /// The radio-side tunnels were released, the session stays (Release Access Bearers).
    Idle,
    /// The session was deleted.
    Detach,
}

impl EventKind {
    /// Returns the name used in JSON payloads, e.g. `attach`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Attach => "attach",
            EventKind::Reject => "reject",
            EventKind::Modify => "modify",
            EventKind::Move => "move",
            EventKind::Idle => "idle",
            EventKind::Detach => "detach",
        }
    }
}

/// A session-change event, emitted when a response with an accepted cause is paired with its
/// request (or when a create is rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// What happened.
    pub kind: EventKind,
    /// Packet time of the response that completed the exchange, in microseconds since the epoch.
    pub ts_us: u64,
    /// Packet time of the request, in microseconds since the epoch.
    pub request_ts_us: u64,
    /// Capture sequence number of the frame that completed the exchange; orders events against packets.
    pub seq: u64,
    /// Site (probe) that observed the exchange.
    pub site: String,
    /// Session identifier, unique within one node's run; 0 for a rejected create (no session).
    pub session_id: u64,
    /// IMSI digits.
    pub imsi: String,
    /// MSISDN digits, when seen.
    pub msisdn: Option<String>,
    /// IMEI or IMEISV digits, when seen.
    pub imei: Option<String>,
    /// Access Point Name in dotted form.
    pub apn: Option<String>,
    /// Radio Access Technology name (UTRAN, GERAN, EUTRAN, ...).
    pub rat: Option<String>,
    /// User location in text form (e.g. `TAI 001-01-0x1a2b ECGI 001-01-0x0123456`).
    pub uli: Option<String>,
    /// Serving network PLMN, `MCC-MNC`.
    pub serving_network: Option<String>,
    /// UE IPv4 address.
    pub ue_ipv4: Option<Ipv4Addr>,
    /// UE IPv6 address or prefix.
    pub ue_ipv6: Option<Ipv6Addr>,
    /// GTP version of the signalling: 1 or 2.
    pub gtp_version: u8,
    /// Message type of the request that started the exchange.
    pub message_type: u8,
    /// Cause value of the response (TS 29.060 §7.7.1, TS 29.274 §8.4).
    pub cause: Option<u8>,
    /// Every user-plane tunnel of the session after this event.
    pub tunnels: Vec<Tunnel>,
    /// Tunnels this event installed.
    pub added: Vec<Tunnel>,
    /// Tunnels this event removed.
    pub removed: Vec<Tunnel>,
}

/// Events for unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{EventKind, SessionEvent, Tunnel};

    /// Builds an accepted GTPv1 event (Create PDP Context Response, cause 128 "Request
    /// accepted") of session `session_id` at site `test`, with no identity and no tunnel.
    pub(crate) fn event(kind: EventKind, imsi: &str, session_id: u64, ts_us: u64) -> SessionEvent {
        SessionEvent {
            kind,
            ts_us,
            request_ts_us: ts_us,
            seq: 0,
            site: "test".to_owned(),
            session_id,
            imsi: imsi.to_owned(),
            msisdn: None,
            imei: None,
            apn: None,
            rat: None,
            uli: None,
            serving_network: None,
            ue_ipv4: None,
            ue_ipv6: None,
            gtp_version: 1,
            message_type: 16,
            cause: Some(128),
            tunnels: vec![],
            added: vec![],
            removed: vec![],
        }
    }

    /// Builds an attach of session 1 that adds `tunnel`.
    pub(crate) fn attach_with(imsi: &str, tunnel: Tunnel, ts_us: u64) -> SessionEvent {
        SessionEvent { tunnels: vec![tunnel], added: vec![tunnel], ..event(EventKind::Attach, imsi, 1, ts_us) }
    }
}
