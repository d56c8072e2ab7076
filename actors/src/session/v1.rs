//! GTPv1-C exchanges (TS 29.060 §7.3): Create, Update and Delete PDP Context.

use std::net::IpAddr;

use crate::session::cause::{is_accepted, is_context_gone};
use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelKey, TunnelRole};
use crate::session::message_type as mt;
use crate::session::state::Session;
use crate::session::table::{Exchange, SessionTable};
use crate::wire::control::{ControlMessage, Digits, GtpVersion};

/// The GSN a GTPv1 message speaks for: its control and user-plane addresses (GSN Address
/// IEs, control first, TS 29.060 §7.7.32), falling back to the IP source address.
#[derive(Debug, Clone, Copy)]
struct GsnAddresses {
    control: IpAddr,
    user: IpAddr,
}

fn gsn_addresses(msg: &ControlMessage<'_>, sender: IpAddr) -> GsnAddresses {
    let control = msg.gsn_addresses.first().copied().unwrap_or(sender);
    let user = msg.gsn_addresses.get(1).copied().unwrap_or(control);
    GsnAddresses { control, user }
}

impl SessionTable {
    pub(crate) fn apply_v1(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        match exchange.request.message_type {
            mt::V1_CREATE_PDP_REQUEST => self.create_pdp(exchange, events),
            mt::V1_UPDATE_PDP_REQUEST => self.update_pdp(exchange, events),
            mt::V1_DELETE_PDP_REQUEST => self.delete_pdp(exchange, events),
            _ => exchange.pending.session.and_then(|id| self.sessions.get(&id)).map(|s| s.imsi),
        }
    }

    fn create_pdp(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        if let Some(id) = exchange.pending.session.filter(|_| request.imsi.is_none()) {
            return self.add_secondary_pdp(id, exchange, events);
        }
        let imsi = request.imsi?;
        let nsapi = request.nsapi.unwrap_or(0);
        let mut session = new_session(GtpVersion::V1, imsi, nsapi, request);
        session.learn_apn(exchange.pending.apn.as_deref());
        if !is_accepted(GtpVersion::V1, response.cause) {
            self.stats.creates_rejected += 1;
            let ctx = self.event_context(exchange);
            events.push(session.event(EventKind::Reject, &ctx, Vec::new(), Vec::new()));
            return Some(imsi);
        }
        self.replace_same_bearer(imsi, nsapi, exchange, events);
        self.attach_pdp(session, exchange, None, events);
        Some(imsi)
    }

    /// Completes a session from an accepted exchange: the SGSN's endpoints from the request,
    /// the GGSN's from the response, plus `core_teid`, a GGSN TEID-C the request was sent to.
    fn attach_pdp(&mut self, mut session: Session, exchange: &Exchange<'_, '_>, core_teid: Option<u32>, events: &mut Vec<SessionEvent>) {
        let (request, response) = (exchange.request, exchange.response);
        let nsapi = session.default_bearer;
        session.learn_ue_address(response);
        let sgsn = gsn_addresses(request, exchange.request_src);
        let ggsn = gsn_addresses(response, exchange.request_dst);
        push_control(&mut session.radio_control, sgsn.control, exchange.request_src, request.teid_control);
        push_control(&mut session.core_control, exchange.request_dst, exchange.request_dst, core_teid);
        push_control(&mut session.core_control, ggsn.control, exchange.request_dst, response.teid_control);
        let mut added = Vec::new();
        add_v1_tunnel(&mut session, sgsn.user, request.teid_data_i, TunnelRole::Downlink, nsapi, &mut added);
        add_v1_tunnel(&mut session, ggsn.user, response.teid_data_i, TunnelRole::Uplink, nsapi, &mut added);
        let ctx = self.event_context(exchange);
        let id = self.insert_session(session);
        if let Some(session) = self.sessions.get(&id) {
            events.push(session.event(EventKind::Attach, &ctx, added, Vec::new()));
        }
    }

    fn add_secondary_pdp(&mut self, id: u64, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let ctx = self.event_context(exchange);
        let session = self.sessions.get_mut(&id)?;
        if !is_accepted(GtpVersion::V1, response.cause) {
            return Some(session.imsi);
        }
        let nsapi = request.nsapi.unwrap_or(0);
        let sgsn = gsn_addresses(request, exchange.request_src);
        let ggsn = gsn_addresses(response, exchange.request_dst);
        let mut added = Vec::new();
        add_v1_tunnel(session, sgsn.user, request.teid_data_i, TunnelRole::Downlink, nsapi, &mut added);
        add_v1_tunnel(session, ggsn.user, response.teid_data_i, TunnelRole::Uplink, nsapi, &mut added);
        events.push(session.event(EventKind::Modify, &ctx, added, Vec::new()));
        Some(session.imsi)
    }

    fn update_pdp(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let id = exchange.pending.session.or_else(|| self.find_by_imsi(request.imsi, request.nsapi));
        let Some(id) = id else { return self.pick_up_pdp(exchange, events) };
        if !is_accepted(GtpVersion::V1, response.cause) {
            return self.sessions.get(&id).map(|s| s.imsi);
        }
        let from_radio_side = self.addresses_core(id, exchange.request_dst, request.teid);
        let ctx = self.event_context(exchange);
        let (radio_msg, radio_sender, core_msg, core_sender) = if from_radio_side {
            (request, exchange.request_src, response, exchange.request_dst)
        } else {
            (response, exchange.request_dst, request, exchange.request_src)
        };
        let session = self.sessions.get_mut(&id)?;
        session.learn_identity(request);
        session.learn_apn(exchange.pending.apn.as_deref());
        session.learn_ue_address(request);
        session.learn_ue_address(response);
        let nsapi = request.nsapi.unwrap_or(session.default_bearer);
        let mut changes = TunnelChanges::default();
        let radio = gsn_addresses(radio_msg, radio_sender);
        let core = gsn_addresses(core_msg, core_sender);
        changes.replace(session, radio.user, radio_msg.teid_data_i, TunnelRole::Downlink, nsapi);
        changes.replace(session, core.user, core_msg.teid_data_i, TunnelRole::Uplink, nsapi);
        let control_changes = replace_control(session, radio.control, radio_sender, radio_msg.teid_control, from_radio_side);
        let kind = if changes.moved { EventKind::Move } else { EventKind::Modify };
        events.push(session.event(kind, &ctx, changes.added, changes.removed));
        let imsi = session.imsi;
        self.apply_control_changes(id, control_changes);
        Some(imsi)
    }

    /// Creates a session from an accepted Update PDP Context that carries the IMSI, for a
    /// context created before the capture started (TS 29.060 §7.3.3 lets the SGSN include it).
    fn pick_up_pdp(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let imsi = request.imsi?;
        if !is_accepted(GtpVersion::V1, response.cause) {
            return Some(imsi);
        }
        let nsapi = request.nsapi.unwrap_or(0);
        let mut session = new_session(GtpVersion::V1, imsi, nsapi, request);
        session.learn_apn(exchange.pending.apn.as_deref());
        self.attach_pdp(session, exchange, request.teid, events);
        self.stats.sessions_picked_up += 1;
        Some(imsi)
    }

    fn delete_pdp(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let id = exchange.pending.session?;
        let imsi = self.sessions.get(&id)?.imsi;
        let cause = response.cause;
        if !is_accepted(GtpVersion::V1, cause) && !is_context_gone(GtpVersion::V1, cause) {
            return Some(imsi);
        }
        let ctx = self.event_context(exchange);
        let session = self.sessions.get_mut(&id)?;
        let nsapi = request.nsapi.unwrap_or(session.default_bearer);
        // Teardown Ind set, or the primary context's NSAPI: every context of the PDP address goes.
        if request.teardown || nsapi == session.default_bearer {
            self.remove_session(id, &ctx, events);
            return Some(imsi);
        }
        let mut removed = Vec::new();
        session.remove_tunnels(&mut removed, |t| t.bearer == nsapi);
        events.push(session.event(EventKind::Modify, &ctx, Vec::new(), removed));
        Some(imsi)
    }

    /// Deletes an older session of the same subscriber and bearer: a create for an active
    /// (IMSI, NSAPI) or (IMSI, EBI) replaces it (TS 29.060 §7.3.1, TS 29.274 §7.2.1).
    pub(crate) fn replace_same_bearer(&mut self, imsi: Digits, bearer: u8, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) {
        let Some(ids) = self.by_imsi.get(&imsi) else { return };
        let stale: Vec<u64> =
            ids.iter().copied().filter(|id| self.sessions.get(id).is_some_and(|s| s.default_bearer == bearer)).collect();
        let ctx = self.event_context(exchange);
        for id in stale {
            self.remove_session(id, &ctx, events);
        }
    }

    fn find_by_imsi(&self, imsi: Option<Digits>, nsapi: Option<u8>) -> Option<u64> {
        let ids = self.by_imsi.get(&imsi?)?;
        let nsapi = nsapi?;
        ids.iter().copied().find(|id| {
            self.sessions.get(id).is_some_and(|s| s.default_bearer == nsapi || s.tunnels.iter().any(|t| t.bearer == nsapi))
        })
    }

    /// True unless (receiver, TEID) is a radio-side control endpoint of the session: a request
    /// sent to the core side comes from the radio side (SGSN-initiated update).
    fn addresses_core(&self, id: u64, receiver: IpAddr, teid: Option<u32>) -> bool {
        let Some(session) = self.sessions.get(&id) else { return true };
        let Some(teid) = teid else { return true };
        !session.radio_control.contains(&TunnelKey { addr: receiver, teid })
    }

    fn apply_control_changes(&mut self, id: u64, changes: ControlChanges) {
        for key in changes.removed {
            self.unindex_control(key, id);
        }
        for key in changes.added {
            self.index_control(key, id);
        }
    }
}

/// Builds a session from a create (or picked-up update) request's identity values.
pub(crate) fn new_session(version: GtpVersion, imsi: Digits, default_bearer: u8, request: &ControlMessage<'_>) -> Session {
    let mut session = Session {
        id: 0,
        version,
        imsi,
        msisdn: None,
        imei: None,
        apn: None,
        rat: None,
        uli: None,
        rai: None,
        serving_network: None,
        ue_ipv4: None,
        ue_ipv6: None,
        default_bearer,
        radio_control: Vec::new(),
        core_control: Vec::new(),
        tunnels: Vec::new(),
    };
    session.learn_identity(request);
    session.learn_ue_address(request);
    session
}

/// Adds the control keys of a node's TEID-C: at its announced address and at the IP source.
pub(crate) fn push_control(keys: &mut Vec<TunnelKey>, announced: IpAddr, sender: IpAddr, teid: Option<u32>) {
    let Some(teid) = teid.filter(|&t| t != 0) else { return };
    for addr in [announced, sender] {
        let key = TunnelKey { addr, teid };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
}

fn add_v1_tunnel(session: &mut Session, addr: IpAddr, teid: Option<u32>, role: TunnelRole, bearer: u8, added: &mut Vec<Tunnel>) {
    let Some(teid) = teid.filter(|&t| t != 0) else { return };
    session.add_tunnel(Tunnel { key: TunnelKey { addr, teid }, role, bearer, interface: Tunnel::GTPV1 }, added);
}

/// Tunnel additions and removals collected while applying one exchange.
#[derive(Debug, Default)]
pub(crate) struct TunnelChanges {
    pub added: Vec<Tunnel>,
    pub removed: Vec<Tunnel>,
    /// True when a radio-side (downlink) endpoint was replaced by another one.
    pub moved: bool,
}

impl TunnelChanges {
    /// Replaces the session's tunnel of this role and bearer with (addr, teid), if a TEID is given.
    pub fn replace(&mut self, session: &mut Session, addr: IpAddr, teid: Option<u32>, role: TunnelRole, bearer: u8) {
        let Some(teid) = teid.filter(|&t| t != 0) else { return };
        let tunnel = Tunnel { key: TunnelKey { addr, teid }, role, bearer, interface: Tunnel::GTPV1 };
        self.replace_with(session, &[tunnel]);
    }

    /// Replaces the tunnels of the same role, bearer and interface as `tunnels[0]` with `tunnels`.
    pub fn replace_with(&mut self, session: &mut Session, tunnels: &[Tunnel]) {
        let Some(first) = tunnels.first() else { return };
        if tunnels.iter().all(|t| session.tunnels.contains(t)) {
            return;
        }
        let before = self.removed.len();
        session.remove_tunnels(&mut self.removed, |t| {
            t.role == first.role && t.bearer == first.bearer && t.interface == first.interface && !tunnels.contains(t)
        });
        if first.role == TunnelRole::Downlink && self.removed.len() > before {
            self.moved = true;
        }
        for tunnel in tunnels {
            session.add_tunnel(*tunnel, &mut self.added);
        }
    }
}

/// Control-key index changes to apply once the session borrow ends.
#[derive(Debug, Default)]
struct ControlChanges {
    added: Vec<TunnelKey>,
    removed: Vec<TunnelKey>,
}

/// Replaces the radio-side control keys when an update from the radio side announces a new
/// TEID-C (SGSN change, TS 29.060 §7.3.3).
fn replace_control(session: &mut Session, announced: IpAddr, sender: IpAddr, teid: Option<u32>, from_radio_side: bool) -> ControlChanges {
    let mut changes = ControlChanges::default();
    let Some(teid) = teid.filter(|&t| t != 0) else { return changes };
    if !from_radio_side {
        return changes;
    }
    let mut new_keys = Vec::new();
    push_control(&mut new_keys, announced, sender, Some(teid));
    if new_keys == session.radio_control {
        return changes;
    }
    changes.removed = std::mem::replace(&mut session.radio_control, new_keys.clone());
    changes.added = new_keys;
    changes
}
