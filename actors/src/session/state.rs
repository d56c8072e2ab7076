//! One subscriber session (a GTPv1 PDP context with its secondaries, or a GTPv2 PDN
//! connection with its bearers) as the control plane has learned it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelKey, TunnelRole};
use crate::session::format;
use crate::wire::control::{ControlMessage, Digits, Fteid, FteidInterface, GtpVersion, Plmn, Uli};

/// A session and the identity values learned for it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Session identifier, unique within one table.
    pub id: u64,
    /// GTP version of its signalling.
    pub version: GtpVersion,
    /// Subscriber identity.
    pub imsi: Digits,
    /// MSISDN, when seen.
    pub msisdn: Option<Digits>,
    /// IMEI or IMEISV, when seen.
    pub imei: Option<Digits>,
    /// APN in dotted form.
    pub apn: Option<String>,
    /// RAT type value.
    pub rat: Option<u8>,
    /// Last User Location Information.
    pub uli: Option<Uli>,
    /// Last location from a GTPv1 Routing Area Identity, as text.
    pub rai: Option<String>,
    /// Serving network.
    pub serving_network: Option<Plmn>,
    /// UE IPv4 address.
    pub ue_ipv4: Option<Ipv4Addr>,
    /// UE IPv6 address or prefix.
    pub ue_ipv6: Option<Ipv6Addr>,
    /// Default bearer: EBI of the PDN connection or NSAPI of the primary PDP context.
    pub default_bearer: u8,
    /// Control-plane endpoints (address, TEID-C) of the radio-side node (SGSN, MME): requests
    /// sent to them address this session.
    pub radio_control: Vec<TunnelKey>,
    /// Control-plane endpoints of the core-side node (GGSN, SGW, PGW).
    pub core_control: Vec<TunnelKey>,
    /// User-plane tunnels.
    pub tunnels: Vec<Tunnel>,
}

impl Session {
    /// Returns every control key of the session, radio side first.
    pub fn control_keys(&self) -> impl Iterator<Item = TunnelKey> + '_ {
        self.radio_control.iter().chain(&self.core_control).copied()
    }

    /// Copies the identity values a message carries (IMSI excluded) into the session.
    pub fn learn_identity(&mut self, msg: &ControlMessage<'_>) {
        if msg.msisdn.is_some() {
            self.msisdn = msg.msisdn;
        }
        if msg.imei.is_some() {
            self.imei = msg.imei;
        }
        if msg.apn.is_some() {
            let mut apn = String::new();
            msg.apn_dotted(&mut apn);
            self.apn = Some(apn);
        }
        if msg.rat.is_some() {
            self.rat = msg.rat;
        }
        if msg.uli.is_some() {
            self.uli = msg.uli;
        }
        if let Some((plmn, lac, rac)) = msg.rai {
            self.rai = Some(format::rai_text(&plmn, lac, rac));
        }
        if msg.serving_network.is_some() {
            self.serving_network = msg.serving_network;
        }
    }

    /// Takes the APN of a request kept for pairing (stored apart from the decoded message).
    pub fn learn_apn(&mut self, wire: Option<&[u8]>) {
        if let Some(wire) = wire {
            let mut apn = String::new();
            crate::wire::control::apn_to_dotted(wire, &mut apn);
            self.apn = Some(apn);
        }
    }

    /// Takes the UE addresses a message carries, keeping the ones it leaves out.
    pub fn learn_ue_address(&mut self, msg: &ControlMessage<'_>) {
        let Some(address) = msg.ue_address else { return };
        if let Some(ipv4) = address.ipv4.filter(|a| !a.is_unspecified()) {
            self.ue_ipv4 = Some(ipv4);
        }
        if let Some((ipv6, _prefix_len)) = address.ipv6.filter(|(a, _)| !a.is_unspecified()) {
            self.ue_ipv6 = Some(ipv6);
        }
    }

    /// Adds a tunnel, replacing one with the same key. Returns false when it was already there.
    pub fn add_tunnel(&mut self, tunnel: Tunnel, added: &mut Vec<Tunnel>) -> bool {
        if self.tunnels.contains(&tunnel) {
            return false;
        }
        self.tunnels.retain(|t| t.key != tunnel.key);
        self.tunnels.push(tunnel);
        added.push(tunnel);
        true
    }

    /// Removes the tunnels that match `predicate`, recording them in `removed`.
    pub fn remove_tunnels(&mut self, removed: &mut Vec<Tunnel>, predicate: impl Fn(&Tunnel) -> bool) {
        self.tunnels.retain(|t| {
            let remove = predicate(t);
            if remove {
                removed.push(*t);
            }
            !remove
        });
    }

    /// Builds the event describing this session after a change.
    pub fn event(&self, kind: EventKind, ctx: &EventContext, added: Vec<Tunnel>, removed: Vec<Tunnel>) -> SessionEvent {
        SessionEvent {
            kind,
            ts_us: ctx.ts_us,
            request_ts_us: ctx.request_ts_us,
            seq: ctx.seq,
            site: ctx.site.to_string(),
            session_id: self.id,
            imsi: self.imsi.to_string(),
            msisdn: self.msisdn.map(|d| d.to_string()),
            imei: self.imei.map(|d| d.to_string()),
            apn: self.apn.clone(),
            rat: self.rat.map(|r| format::rat_name(self.version, r)),
            uli: self.location_text(),
            serving_network: self.serving_network.as_ref().map(format::plmn_text),
            ue_ipv4: self.ue_ipv4,
            ue_ipv6: self.ue_ipv6,
            gtp_version: version_number(self.version),
            message_type: ctx.message_type,
            cause: ctx.cause,
            tunnels: self.tunnels.clone(),
            added,
            removed,
        }
    }

    fn location_text(&self) -> Option<String> {
        match (&self.uli, &self.rai) {
            (Some(uli), _) => Some(format::uli_text(uli)).filter(|t| !t.is_empty()),
            (None, Some(rai)) => Some(rai.clone()),
            (None, None) => None,
        }
    }
}

/// Values an event takes from the exchange that caused it.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// Packet time of the response, microseconds.
    pub ts_us: u64,
    /// Packet time of the request, microseconds.
    pub request_ts_us: u64,
    /// Capture sequence number of the response frame.
    pub seq: u64,
    /// Site name.
    pub site: std::sync::Arc<str>,
    /// Request message type.
    pub message_type: u8,
    /// Response cause.
    pub cause: Option<u8>,
}

/// Returns the version as the number carried in events (1 or 2).
pub fn version_number(version: GtpVersion) -> u8 {
    match version {
        GtpVersion::V1 => 1,
        GtpVersion::V2 => 2,
    }
}

/// Returns the tunnel keys of an F-TEID: one per address it carries (IPv4, IPv6 or both).
pub fn fteid_keys(fteid: &Fteid) -> impl Iterator<Item = TunnelKey> + '_ {
    let v4 = fteid.ipv4.map(IpAddr::V4);
    let v6 = fteid.ipv6.map(IpAddr::V6);
    v4.into_iter().chain(v6).filter(|_| fteid.teid != 0).map(|addr| TunnelKey { addr, teid: fteid.teid })
}

/// Returns the direction of traffic a user-plane F-TEID receives, by its interface type.
pub fn fteid_role(fteid: &Fteid) -> TunnelRole {
    use crate::wire::control::FteidInterface::*;
    match fteid.interface {
        i if i.is_forwarding() => TunnelRole::Forwarding,
        S1uEnodeb | S12Rnc | S5S8SgwU | S4SgsnU | SnSgsnU | S2bEpdgU => TunnelRole::Downlink,
        _ => TunnelRole::Uplink,
    }
}

/// Returns the 6-bit wire value of an F-TEID interface type.
pub fn interface_value(interface: FteidInterface) -> u8 {
    use FteidInterface::*;
    let values = [
        S1uEnodeb, S1uSgw, S12Rnc, S12Sgw, S5S8SgwU, S5S8PgwU, S5S8SgwC, S5S8PgwC, Unknown(8), Unknown(9), S11Mme, S11S4Sgw,
        S10Mme, S3Mme, S3Sgsn, S4SgsnU, S4SgwU, S4SgsnC, S16Sgsn, EnodebDlForwarding, EnodebUlForwarding, RncForwarding,
        SgsnForwarding, SgwDlForwarding, SmMbmsGw, SnMbmsGw, SmMme, SnSgsn, SgwUlForwarding, SnSgsnU, S2bEpdgC, S2bEpdgU,
        S2bPgwC, S2bPgwU,
    ];
    match interface {
        Unknown(value) => value,
        known => values.iter().position(|&v| v == known).map_or(0x3f, |i| i as u8),
    }
}
