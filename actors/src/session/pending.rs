//! Requests waiting for their response.
//!
//! A response is paired with its request by the two peer IP addresses and the sequence
//! number, never by UDP ports, because a GTP entity may respond from another source port (TS 29.274
//! §4.2.2.2, TS 29.060 §7.6). Each entry keeps a copy of the decoded request.

use std::collections::VecDeque;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::wire::control::{ControlMessage, Digits, GtpVersion};

/// Identifies an outstanding request: sender, receiver, version and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingKey {
    /// Address that sent the request.
    pub requester: IpAddr,
    /// Address the request was sent to.
    pub responder: IpAddr,
    /// GTP version of the exchange.
    pub version: GtpVersion,
    /// Sequence number from the request header.
    pub sequence: u32,
}

/// A request waiting for its response.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The decoded request, with its APN moved to `apn`.
    pub message: ControlMessage<'static>,
    /// The request's APN in wire form.
    pub apn: Option<Vec<u8>>,
    /// Packet time of the request, microseconds since the epoch.
    pub ts_us: u64,
    /// Capture sequence number of the request frame.
    pub seq: u64,
    /// Session the request addressed, when its header TEID was known.
    pub session: Option<u64>,
    /// Subscriber the request belongs to, when known (IMSI IE or session).
    pub imsi: Option<Digits>,
}

/// Outstanding requests with expiry on the packet clock.
#[derive(Debug, Default)]
pub struct PendingRequests {
    entries: FxHashMap<PendingKey, PendingRequest>,
    order: VecDeque<(u64, u64, PendingKey)>,
    expired: u64,
    replaced: u64,
}

impl PendingRequests {
    /// Stores a request; a retransmission with the same key replaces the earlier copy.
    pub fn insert(&mut self, key: PendingKey, request: PendingRequest) {
        self.order.push_back((request.ts_us, request.seq, key));
        if self.entries.insert(key, request).is_some() {
            self.replaced += 1;
        }
    }

    /// Removes and returns the request that a response belongs to.
    pub fn take(&mut self, key: &PendingKey) -> Option<PendingRequest> {
        self.entries.remove(key)
    }

    /// Drops requests older than `timeout_us` at packet time `now_us`; they stay unanswered.
    pub fn expire(&mut self, now_us: u64, timeout_us: u64) {
        while let Some(&(ts_us, seq, key)) = self.order.front() {
            if ts_us.saturating_add(timeout_us) > now_us {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|entry| entry.seq == seq) {
                self.entries.remove(&key);
                self.expired += 1;
            }
        }
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no request is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Requests dropped unanswered after the timeout.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Requests replaced by a retransmission before their response.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

/// Copies a decoded message into one that borrows nothing; the APN is returned apart.
pub fn detach(msg: &ControlMessage<'_>) -> (ControlMessage<'static>, Option<Vec<u8>>) {
    let owned = ControlMessage {
        apn: None,
        version: msg.version,
        message_type: msg.message_type,
        teid: msg.teid,
        sequence: msg.sequence,
        cause: msg.cause,
        imsi: msg.imsi,
        msisdn: msg.msisdn,
        imei: msg.imei,
        rat: msg.rat,
        uli: msg.uli,
        rai: msg.rai,
        serving_network: msg.serving_network,
        ue_address: msg.ue_address,
        fteids: msg.fteids.clone(),
        bearers: msg.bearers.clone(),
        ebi: msg.ebi,
        ebis: msg.ebis.clone(),
        teid_data_i: msg.teid_data_i,
        teid_control: msg.teid_control,
        nsapi: msg.nsapi,
        teardown: msg.teardown,
        gsn_addresses: msg.gsn_addresses.clone(),
        charging_id: msg.charging_id,
        recovery: msg.recovery,
        anomalies: msg.anomalies,
    };
    (owned, msg.apn.map(<[u8]>::to_vec))
}
