//! The session table: pairs GTP-C requests with responses and runs the session state machine.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelKey};
use crate::session::message_type::{self as mt, is_response};
use crate::session::pending::{PendingKey, PendingRequest, PendingRequests};
use crate::session::state::{EventContext, Session};
use crate::wire::control::{ControlMessage, Digits, GtpVersion};

/// Settings of a session table.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Site name written into events.
    pub site: String,
    /// Packet time after which an unanswered request is dropped, microseconds.
    pub request_timeout_us: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { site: "local".to_string(), request_timeout_us: 60_000_000 }
    }
}

/// Owner of one GTP-C message, for attribution and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// A message of this subscriber's session (including rejected creates).
    Subscriber(Digits),
    /// Echo and other path management messages.
    PathManagement,
    /// A message of a session the table does not know (e.g. up before the capture started).
    UnknownSession,
}

/// The packet context of one GTP-C message.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext {
    /// Capture sequence number of the frame.
    pub seq: u64,
    /// Packet time, microseconds since the epoch.
    pub ts_us: u64,
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
}

/// Counters of the session table.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionStats {
    /// Requests stored for pairing.
    pub requests: u64,
    /// Responses paired with their request.
    pub responses_paired: u64,
    /// Responses with no outstanding request.
    pub responses_unpaired: u64,
    /// Responses whose cause rejected the request.
    pub responses_rejected: u64,
    /// Sessions created.
    pub sessions_created: u64,
    /// Sessions deleted.
    pub sessions_deleted: u64,
    /// Sessions picked up from mid-session signalling (no create seen).
    pub sessions_picked_up: u64,
    /// Rejected creates.
    pub creates_rejected: u64,
}

/// Sessions, their indices, and the requests waiting for a response.
#[derive(Debug, Default)]
pub struct SessionTable {
    pub(crate) config: SessionConfig,
    site: std::sync::Arc<str>,
    pub(crate) sessions: FxHashMap<u64, Session>,
    pub(crate) control: FxHashMap<TunnelKey, Vec<u64>>,
    pub(crate) by_imsi: FxHashMap<Digits, Vec<u64>>,
    pending: PendingRequests,
    next_id: u64,
    pub(crate) stats: SessionStats,
}

/// A paired exchange being applied.
pub(crate) struct Exchange<'m, 'r> {
    /// The request, with its APN kept apart in `pending.apn`.
    pub request: &'m ControlMessage<'static>,
    pub response: &'m ControlMessage<'r>,
    pub pending: &'m PendingRequest,
    pub request_src: IpAddr,
    pub request_dst: IpAddr,
    pub response_ctx: MessageContext,
}

impl SessionTable {
    /// Creates an empty table.
    pub fn new(config: SessionConfig) -> SessionTable {
        SessionTable { site: config.site.as_str().into(), config, next_id: 1, ..SessionTable::default() }
    }

    /// Handles one decoded GTP-C message; events for the sessions it changed are appended to
    /// `events`.
    pub fn handle(
        &mut self,
        msg: &ControlMessage<'_>,
        ctx: MessageContext,
        events: &mut Vec<SessionEvent>,
    ) -> Attribution {
        let Some(version) = msg.version else { return Attribution::UnknownSession };
        if matches!(msg.message_type, mt::ECHO_REQUEST | mt::ECHO_RESPONSE | mt::VERSION_NOT_SUPPORTED) {
            return Attribution::PathManagement;
        }
        self.pending.expire(ctx.ts_us, self.config.request_timeout_us);
        if is_response(version, msg.message_type) {
            self.handle_response(version, msg, ctx, events)
        } else {
            self.handle_request(version, msg, ctx)
        }
    }

    fn handle_request(&mut self, version: GtpVersion, msg: &ControlMessage<'_>, ctx: MessageContext) -> Attribution {
        let session = self.resolve(ctx.dst, msg.teid, None);
        let imsi = session.and_then(|id| self.sessions.get(&id)).map(|s| s.imsi).or(msg.imsi);
        let key = PendingKey { requester: ctx.src, responder: ctx.dst, version, sequence: msg.sequence };
        let (message, apn) = crate::session::pending::detach(msg);
        let request = PendingRequest { message, apn, ts_us: ctx.ts_us, seq: ctx.seq, session, imsi };
        self.pending.insert(key, request);
        self.stats.requests += 1;
        attribution_of(imsi)
    }

    fn handle_response(
        &mut self,
        version: GtpVersion,
        msg: &ControlMessage<'_>,
        ctx: MessageContext,
        events: &mut Vec<SessionEvent>,
    ) -> Attribution {
        let key = PendingKey { requester: ctx.dst, responder: ctx.src, version, sequence: msg.sequence };
        let Some(pending) = self.pending.take(&key) else {
            self.stats.responses_unpaired += 1;
            let session = self.resolve(ctx.dst, msg.teid, None);
            return attribution_of(session.and_then(|id| self.sessions.get(&id)).map(|s| s.imsi));
        };
        self.stats.responses_paired += 1;
        if !crate::session::cause::is_accepted(version, msg.cause) {
            self.stats.responses_rejected += 1;
        }
        let imsi = self.apply_pending(&pending, msg, ctx, events);
        attribution_of(imsi.or(pending.imsi))
    }

    fn apply_pending(
        &mut self,
        pending: &PendingRequest,
        response: &ControlMessage<'_>,
        ctx: MessageContext,
        events: &mut Vec<SessionEvent>,
    ) -> Option<Digits> {
        let exchange = Exchange {
            request: &pending.message,
            response,
            pending,
            request_src: ctx.dst,
            request_dst: ctx.src,
            response_ctx: ctx,
        };
        match pending.message.version? {
            GtpVersion::V1 => self.apply_v1(&exchange, events),
            GtpVersion::V2 => self.apply_v2(&exchange, events),
        }
    }

    /// Drops requests that stayed unanswered past the timeout at packet time `now_us`.
    pub fn expire(&mut self, now_us: u64) {
        self.pending.expire(now_us, self.config.request_timeout_us);
    }

    /// Returns the counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of distinct subscribers with a live session.
    pub fn subscriber_count(&self) -> usize {
        self.by_imsi.len()
    }

    /// Number of requests waiting for a response, and requests dropped unanswered.
    pub fn pending_counts(&self) -> (usize, u64) {
        (self.pending.len(), self.pending.expired())
    }

    /// Returns a session by id.
    pub fn session(&self, id: u64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Finds the session a message addresses by (receiver address, header TEID), preferring
    /// the one that owns `bearer` when several PDN connections share the control TEID.
    pub(crate) fn resolve(&self, receiver: IpAddr, teid: Option<u32>, bearer: Option<u8>) -> Option<u64> {
        let teid = teid.filter(|&t| t != 0)?;
        let ids = self.control.get(&TunnelKey { addr: receiver, teid })?;
        let owns = |id: &&u64| {
            let Some(ebi) = bearer else { return false };
            self.sessions.get(id).is_some_and(|s| s.default_bearer == ebi || s.tunnels.iter().any(|t| t.bearer == ebi))
        };
        ids.iter().find(owns).or(ids.last()).copied()
    }

    /// Inserts a new session and indexes it; returns its id.
    pub(crate) fn insert_session(&mut self, mut session: Session) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        session.id = id;
        for key in session.control_keys().collect::<Vec<_>>() {
            self.index_control(key, id);
        }
        self.by_imsi.entry(session.imsi).or_default().push(id);
        self.sessions.insert(id, session);
        self.stats.sessions_created += 1;
        id
    }

    /// Points a control key at a session, in addition to sessions already sharing it.
    pub(crate) fn index_control(&mut self, key: TunnelKey, id: u64) {
        if key.teid == 0 {
            return;
        }
        let ids = self.control.entry(key).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    /// Removes a control key from one session's index entry.
    pub(crate) fn unindex_control(&mut self, key: TunnelKey, id: u64) {
        if let Some(ids) = self.control.get_mut(&key) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.control.remove(&key);
            }
        }
    }

    /// Deletes a session and emits its Detach event.
    pub(crate) fn remove_session(&mut self, id: u64, ctx: &EventContext, events: &mut Vec<SessionEvent>) {
        let Some(mut session) = self.sessions.remove(&id) else { return };
        for key in session.control_keys().collect::<Vec<_>>() {
            self.unindex_control(key, id);
        }
        if let Some(ids) = self.by_imsi.get_mut(&session.imsi) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.by_imsi.remove(&session.imsi);
            }
        }
        let removed: Vec<Tunnel> = std::mem::take(&mut session.tunnels);
        events.push(session.event(EventKind::Detach, ctx, Vec::new(), removed));
        self.stats.sessions_deleted += 1;
    }

    /// Builds the event context of an exchange.
    pub(crate) fn event_context(&self, exchange: &Exchange<'_, '_>) -> EventContext {
        EventContext {
            ts_us: exchange.response_ctx.ts_us,
            request_ts_us: exchange.pending.ts_us,
            seq: exchange.response_ctx.seq,
            site: self.site.clone(),
            message_type: exchange.request.message_type,
            cause: exchange.response.cause,
        }
    }
}

fn attribution_of(imsi: Option<Digits>) -> Attribution {
    match imsi {
        Some(imsi) => Attribution::Subscriber(imsi),
        None => Attribution::UnknownSession,
    }
}
