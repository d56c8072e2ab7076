//! GTPv2-C exchanges (TS 29.274 §7.2): sessions, bearers, forwarding tunnels and idle mode.

use crate::session::cause::{is_accepted, is_context_gone};
use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelRole};
use crate::session::message_type as mt;
use crate::session::state::{fteid_keys, fteid_role, interface_value, Session};
use crate::session::table::{Exchange, SessionTable};
use crate::session::v1::{new_session, TunnelChanges};
use crate::wire::control::{BearerContext, Digits, Fteid, GtpVersion};

/// The EBI used when a create carries no Bearer Context EBI (5 is the first usable EBI).
const DEFAULT_EBI: u8 = 5;

impl SessionTable {
    pub(crate) fn apply_v2(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let known = exchange.pending.session.and_then(|id| self.sessions.get(&id)).map(|s| s.imsi);
        let accepted = is_accepted(GtpVersion::V2, exchange.response.cause);
        let request_type = exchange.request.message_type;
        if request_type == mt::V2_CREATE_SESSION_REQUEST {
            return self.create_session(exchange, events);
        }
        if !accepted && !is_delete(request_type) {
            return known;
        }
        match request_type {
            mt::V2_MODIFY_BEARER_REQUEST | mt::V2_MODIFY_ACCESS_BEARERS_REQUEST => self.modify_bearers(exchange, events),
            mt::V2_CREATE_BEARER_REQUEST | mt::V2_UPDATE_BEARER_REQUEST => self.update_bearers(exchange, events),
            mt::V2_DELETE_SESSION_REQUEST => self.delete_session(exchange, events),
            mt::V2_DELETE_BEARER_REQUEST => self.delete_bearers(exchange, events),
            mt::V2_CREATE_FORWARDING_REQUEST => self.create_forwarding(exchange, events),
            mt::V2_DELETE_FORWARDING_REQUEST => {
                self.change_tunnels(exchange, events, EventKind::Modify, |t| t.role == TunnelRole::Forwarding);
                known
            }
            mt::V2_RELEASE_ACCESS_BEARERS_REQUEST => {
                self.change_tunnels(exchange, events, EventKind::Idle, |t| t.role == TunnelRole::Downlink);
                known
            }
            _ => known,
        }
        .or(known)
    }

    fn create_session(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let owner = exchange.pending.session.and_then(|id| self.sessions.get(&id)).map(|s| s.imsi);
        let imsi = request.imsi.or(owner)?;
        let ebi = request.bearers.iter().find_map(|b| b.ebi).unwrap_or(DEFAULT_EBI);
        let mut session = new_session(GtpVersion::V2, imsi, ebi, request);
        session.learn_apn(exchange.pending.apn.as_deref());
        if !is_accepted(GtpVersion::V2, response.cause) {
            self.stats.creates_rejected += 1;
            let ctx = self.event_context(exchange);
            events.push(session.event(EventKind::Reject, &ctx, Vec::new(), Vec::new()));
            return Some(imsi);
        }
        self.replace_same_bearer(imsi, ebi, exchange, events);
        session.learn_ue_address(response);
        add_control_fteids(&mut session.radio_control, &request.fteids, exchange.request_src);
        add_control_fteids(&mut session.core_control, &response.fteids, exchange.request_dst);
        let mut added = Vec::new();
        for tunnel in bearer_tunnels(&request.bearers).chain(bearer_tunnels(&response.bearers)) {
            session.add_tunnel(tunnel, &mut added);
        }
        let ctx = self.event_context(exchange);
        let id = self.insert_session(session);
        if let Some(session) = self.sessions.get(&id) {
            events.push(session.event(EventKind::Attach, &ctx, added, Vec::new()));
        }
        Some(imsi)
    }

    /// Applies Modify Bearer and Modify Access Bearers. The request's bearer contexts carry the
    /// radio side's (new) endpoints, and the response may carry new core-side ones.
    fn modify_bearers(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let ctx = self.event_context(exchange);
        let id = exchange.pending.session?;
        let session = self.sessions.get_mut(&id)?;
        session.learn_identity(request);
        session.learn_apn(exchange.pending.apn.as_deref());
        let mut changes = TunnelChanges::default();
        for bearer in request.bearers.iter().chain(&response.bearers) {
            replace_bearer_tunnels(session, bearer, &mut changes);
        }
        let mut new_radio = Vec::new();
        add_control_fteids(&mut new_radio, &request.fteids, exchange.request_src);
        let old_radio = if new_radio.is_empty() { Vec::new() } else { std::mem::replace(&mut session.radio_control, new_radio.clone()) };
        let kind = if changes.moved { EventKind::Move } else { EventKind::Modify };
        events.push(session.event(kind, &ctx, changes.added, changes.removed));
        let imsi = session.imsi;
        for key in old_radio {
            self.unindex_control(key, id);
        }
        for key in new_radio {
            self.index_control(key, id);
        }
        Some(imsi)
    }

    /// Create Bearer and Update Bearer: tunnels of the request's and the response's bearer
    /// contexts, paired by position (the EBI is assigned in the Create Bearer Response).
    fn update_bearers(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let ctx = self.event_context(exchange);
        let session = self.sessions.get_mut(&exchange.pending.session?)?;
        let mut changes = TunnelChanges::default();
        for (index, answer) in response.bearers.iter().enumerate() {
            if answer.cause.is_some_and(|c| !is_accepted(GtpVersion::V2, Some(c))) {
                continue;
            }
            let ebi = answer.ebi.or_else(|| request.bearers.get(index).and_then(|b| b.ebi));
            if let Some(asked) = request.bearers.get(index) {
                replace_bearer_tunnels(session, &with_ebi(asked, ebi), &mut changes);
            }
            replace_bearer_tunnels(session, &with_ebi(answer, ebi), &mut changes);
        }
        events.push(session.event(EventKind::Modify, &ctx, changes.added, changes.removed));
        Some(session.imsi)
    }

    fn delete_session(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let id = self.pending_session_for(exchange, exchange.request.ebi)?;
        let imsi = self.sessions.get(&id)?.imsi;
        let ctx = self.event_context(exchange);
        self.remove_session(id, &ctx, events);
        Some(imsi)
    }

    /// Delete Bearer: the Linked EBI deletes the whole PDN connection, EBIs delete bearers.
    fn delete_bearers(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let request = exchange.request;
        let id = self.pending_session_for(exchange, request.ebi)?;
        let session = self.sessions.get(&id)?;
        let imsi = session.imsi;
        let ebis: Vec<u8> = request.ebis.iter().copied().chain(request.bearers.iter().filter_map(|b| b.ebi)).collect();
        let ctx = self.event_context(exchange);
        if ebis.contains(&session.default_bearer) {
            self.remove_session(id, &ctx, events);
            return Some(imsi);
        }
        let session = self.sessions.get_mut(&id)?;
        let mut removed = Vec::new();
        session.remove_tunnels(&mut removed, |t| ebis.contains(&t.bearer));
        events.push(session.event(EventKind::Modify, &ctx, Vec::new(), removed));
        Some(imsi)
    }

    fn create_forwarding(&mut self, exchange: &Exchange<'_, '_>, events: &mut Vec<SessionEvent>) -> Option<Digits> {
        let (request, response) = (exchange.request, exchange.response);
        let ctx = self.event_context(exchange);
        let session = self.sessions.get_mut(&exchange.pending.session?)?;
        let mut added = Vec::new();
        for mut tunnel in bearer_tunnels(&request.bearers).chain(bearer_tunnels(&response.bearers)) {
            tunnel.role = TunnelRole::Forwarding;
            session.add_tunnel(tunnel, &mut added);
        }
        events.push(session.event(EventKind::Modify, &ctx, added, Vec::new()));
        Some(session.imsi)
    }

    fn change_tunnels(
        &mut self,
        exchange: &Exchange<'_, '_>,
        events: &mut Vec<SessionEvent>,
        kind: EventKind,
        remove: impl Fn(&Tunnel) -> bool,
    ) {
        let ctx = self.event_context(exchange);
        let Some(session) = exchange.pending.session.and_then(|id| self.sessions.get_mut(&id)) else { return };
        let mut removed = Vec::new();
        session.remove_tunnels(&mut removed, remove);
        events.push(session.event(kind, &ctx, Vec::new(), removed));
    }

    /// Returns the session a delete addresses: the PDN connection owning the Linked EBI when
    /// several share the control TEID.
    fn pending_session_for(&self, exchange: &Exchange<'_, '_>, ebi: Option<u8>) -> Option<u64> {
        let cause = exchange.response.cause;
        if !is_accepted(GtpVersion::V2, cause) && !is_context_gone(GtpVersion::V2, cause) {
            return None;
        }
        self.resolve(exchange.request_dst, exchange.request.teid, ebi).or(exchange.pending.session)
    }
}

fn is_delete(message_type: u8) -> bool {
    matches!(message_type, mt::V2_DELETE_SESSION_REQUEST | mt::V2_DELETE_BEARER_REQUEST)
}

/// Indexes the control-plane F-TEIDs of a message (sender F-TEID, PGW S5/S8-C F-TEID), plus
/// the sender's IP address for the sender F-TEID.
fn add_control_fteids(keys: &mut Vec<crate::session::event::TunnelKey>, fteids: &[Fteid], sender: std::net::IpAddr) {
    for fteid in fteids.iter().filter(|f| !f.interface.is_user_plane()) {
        for key in fteid_keys(fteid) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if fteid.instance == 0 && fteid.teid != 0 {
            let key = crate::session::event::TunnelKey { addr: sender, teid: fteid.teid };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
}

/// User-plane tunnels of a list of bearer contexts.
fn bearer_tunnels(bearers: &[BearerContext]) -> impl Iterator<Item = Tunnel> + '_ {
    bearers.iter().flat_map(|bearer| {
        let ebi = bearer.ebi.unwrap_or(DEFAULT_EBI);
        bearer.fteids.iter().filter(|f| f.interface.is_user_plane()).flat_map(move |fteid| {
            fteid_keys(fteid).map(move |key| tunnel_of(fteid, key, ebi))
        })
    })
}

/// Replaces, per role, the session's tunnels of this bearer with the bearer context's F-TEIDs.
fn replace_bearer_tunnels(session: &mut Session, bearer: &BearerContext, changes: &mut TunnelChanges) {
    let ebi = bearer.ebi.unwrap_or(session.default_bearer);
    for fteid in bearer.fteids.iter().filter(|f| f.interface.is_user_plane()) {
        let tunnels: Vec<Tunnel> = fteid_keys(fteid).map(|key| tunnel_of(fteid, key, ebi)).collect();
        changes.replace_with(session, &tunnels);
    }
}

fn with_ebi(bearer: &BearerContext, ebi: Option<u8>) -> BearerContext {
    BearerContext { ebi: ebi.or(bearer.ebi), ..bearer.clone() }
}


fn tunnel_of(fteid: &Fteid, key: crate::session::event::TunnelKey, bearer: u8) -> Tunnel {
    Tunnel { key, role: fteid_role(fteid), bearer, interface: interface_value(fteid.interface) }
}
