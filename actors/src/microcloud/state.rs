//! Subscriber state as the microcloud stores it, and how a session event changes it.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelKey};

/// Whether a subscriber has a session and whether its radio-side tunnels are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachState {
    /// At least one session with its radio-side tunnels.
    Attached,
    /// The radio-side tunnels were released; the session stays (Release Access Bearers).
    Idle,
    /// No session left, or only rejected create requests were seen.
    Detached,
}

/// A tunnel of a subscriber, with the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTunnel {
    /// The tunnel.
    #[serde(flatten)]
    pub tunnel: Tunnel,
    /// Site that signalled the session.
    pub site: String,
    /// Session identifier, unique within the site's run.
    pub session_id: u64,
}

impl SessionTunnel {
    fn belongs_to(&self, site: &str, session_id: u64) -> bool {
        self.session_id == session_id && self.site == site
    }
}

/// Stored state of one subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberState {
    /// IMSI digits.
    pub imsi: String,
    /// MSISDN digits, when seen.
    pub msisdn: Option<String>,
    /// IMEI or IMEISV digits, when seen.
    pub imei: Option<String>,
    /// Access Point Name of the latest session event.
    pub apn: Option<String>,
    /// Radio Access Technology name of the latest session event.
    pub rat: Option<String>,
    /// User location in text form.
    pub uli: Option<String>,
    /// Serving network PLMN, `MCC-MNC`.
    pub serving_network: Option<String>,
    /// UE IPv4 address.
    pub ue_ipv4: Option<Ipv4Addr>,
    /// UE IPv6 address or prefix.
    pub ue_ipv6: Option<Ipv6Addr>,
    /// Attach state.
    pub state: AttachState,
    /// Site that reported the latest event.
    pub site: String,
    /// Every user-plane tunnel of every session of the subscriber.
    pub tunnels: Vec<SessionTunnel>,
    /// Packet time of the latest event, microseconds since the epoch.
    pub last_change_us: u64,
}

/// Tunnel keys that an event removed from and added to a subscriber, for the tunnel index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelChanges {
    /// Keys the subscriber no longer owns.
    pub removed: Vec<TunnelKey>,
    /// Keys the subscriber owns from now on (a reused TEID takes the key from its
    /// previous owner).
    pub added: Vec<TunnelKey>,
}

impl SubscriberState {
    /// Creates the state of a subscriber that no event has changed yet: detached, no tunnel.
    pub fn new(imsi: &str) -> Self {
        SubscriberState {
            imsi: imsi.to_owned(),
            msisdn: None,
            imei: None,
            apn: None,
            rat: None,
            uli: None,
            serving_network: None,
            ue_ipv4: None,
            ue_ipv6: None,
            state: AttachState::Detached,
            site: String::new(),
            tunnels: Vec::new(),
            last_change_us: 0,
        }
    }

    /// Applies one event of this subscriber and returns the tunnel keys it removed and added.
    ///
    /// Tunnels follow the event's `removed` and `added` lists. A Detach also removes every
    /// remaining tunnel of its session, and leaves the subscriber Attached (or Idle) while
    /// another session keeps tunnels. A Reject records the MSISDN and IMEI only.
    pub fn apply(&mut self, event: &SessionEvent) -> TunnelChanges {
        self.update_identity(event);
        self.site.clone_from(&event.site);
        self.last_change_us = event.ts_us;
        if event.kind == EventKind::Reject {
            return TunnelChanges::default();
        }
        self.update_session_fields(event);
        let mut changes = TunnelChanges::default();
        for tunnel in &event.removed {
            self.remove_tunnel(tunnel.key, &mut changes);
        }
        if event.kind == EventKind::Detach {
            self.remove_session(&event.site, event.session_id, &mut changes);
        }
        for tunnel in &event.added {
            let owned = SessionTunnel {
                tunnel: *tunnel,
                site: event.site.clone(),
                session_id: event.session_id,
            };
            self.add_tunnel(owned, &mut changes);
        }
        self.state = self.next_state(event.kind);
        changes
    }

    /// Removes the tunnel `key` after another subscriber took it over. A GTP entity reuses
    /// a TEID only after deleting its context, so a subscriber left without tunnels is
    /// Detached.
    pub fn release_tunnel(&mut self, key: TunnelKey) {
        self.drop_tunnel(key);
        if self.tunnels.is_empty() {
            self.state = AttachState::Detached;
        }
    }

    fn drop_tunnel(&mut self, key: TunnelKey) {
        self.tunnels.retain(|owned| owned.tunnel.key != key);
    }

    fn update_identity(&mut self, event: &SessionEvent) {
        replace_if_some(&mut self.msisdn, &event.msisdn);
        replace_if_some(&mut self.imei, &event.imei);
    }

    fn update_session_fields(&mut self, event: &SessionEvent) {
        replace_if_some(&mut self.apn, &event.apn);
        replace_if_some(&mut self.rat, &event.rat);
        replace_if_some(&mut self.uli, &event.uli);
        replace_if_some(&mut self.serving_network, &event.serving_network);
        self.ue_ipv4 = event.ue_ipv4.or(self.ue_ipv4);
        self.ue_ipv6 = event.ue_ipv6.or(self.ue_ipv6);
    }

    fn remove_tunnel(&mut self, key: TunnelKey, changes: &mut TunnelChanges) {
        let before = self.tunnels.len();
        self.drop_tunnel(key);
        if self.tunnels.len() != before {
            changes.removed.push(key);
        }
    }

    fn remove_session(&mut self, site: &str, session_id: u64, changes: &mut TunnelChanges) {
        self.tunnels.retain(|owned| {
            if owned.belongs_to(site, session_id) {
                changes.removed.push(owned.tunnel.key);
                return false;
            }
            true
        });
    }

    fn add_tunnel(&mut self, owned: SessionTunnel, changes: &mut TunnelChanges) {
        let key = owned.tunnel.key;
        self.drop_tunnel(key);
        self.tunnels.push(owned);
        changes.removed.retain(|removed| *removed != key);
        changes.added.push(key);
    }

    fn next_state(&self, kind: EventKind) -> AttachState {
        match kind {
            EventKind::Attach | EventKind::Modify | EventKind::Move => AttachState::Attached,
            EventKind::Idle => AttachState::Idle,
            EventKind::Detach if self.tunnels.is_empty() => AttachState::Detached,
            EventKind::Detach | EventKind::Reject => self.state,
        }
    }
}

fn replace_if_some(field: &mut Option<String>, value: &Option<String>) {
    if value.is_some() {
        field.clone_from(value);
    }
}
