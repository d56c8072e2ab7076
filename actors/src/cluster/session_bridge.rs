//! Session events across the cluster. The control actor of a probe broadcasts the tunnel
//! changes of each control batch to [`SESSION_EVENTS_GROUP`]; the bridge actor of every
//! other probe hands them to its shards, which install them as learned remote tunnels.
//!
//! Only what a shard needs crosses the wire: the event kind, session, IMSI and the tunnels
//! added and removed. `SessionEvent` itself is not sent because its `Tunnel` flattens its
//! key, which bincode's serde mode cannot decode.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorProcessingErr, ActorRef, Message};
use serde::{Deserialize, Serialize};

use super::codec::{self, Remote, WireMessage};
use super::{broadcast, join_group, SESSION_EVENTS_GROUP};
use crate::pipeline::shard::ShardMsg;
use crate::session::{EventKind, SessionEvent, TunnelKey, TunnelRole};

/// Variant name of the events cast.
const EVENTS_VARIANT: &str = "session_events";

/// One tunnel added or removed by a remote event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTunnel {
    /// Endpoint address (destination of the G-PDUs carrying this TEID).
    pub addr: IpAddr,
    /// Tunnel Endpoint Identifier.
    pub teid: u32,
    /// Direction of the traffic the endpoint receives.
    pub role: TunnelRole,
}

impl WireTunnel {
    /// Returns the key of this tunnel in the tunnel table.
    pub fn key(&self) -> TunnelKey {
        TunnelKey { addr: self.addr, teid: self.teid }
    }
}

/// The part of a session event that another probe's shards use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEvent {
    /// What happened.
    pub kind: EventKind,
    /// Packet time of the response, microseconds since the epoch.
    pub ts_us: u64,
    /// Session identifier, unique within the sending node's run.
    pub session_id: u64,
    /// IMSI digits.
    pub imsi: String,
    /// Tunnels the event installed.
    pub added: Vec<WireTunnel>,
    /// Tunnels the event removed.
    pub removed: Vec<WireTunnel>,
}

impl From<&SessionEvent> for WireEvent {
    fn from(event: &SessionEvent) -> WireEvent {
        let wire = |t: &crate::session::Tunnel| WireTunnel { addr: t.key.addr, teid: t.key.teid, role: t.role };
        WireEvent {
            kind: event.kind,
            ts_us: event.ts_us,
            session_id: event.session_id,
            imsi: event.imsi.clone(),
            added: event.added.iter().map(wire).collect(),
            removed: event.removed.iter().map(wire).collect(),
        }
    }
}

/// The events of one control batch of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEvents {
    /// Full name of the sending node.
    pub node: String,
    /// Wall-clock time of the broadcast, microseconds since the Unix epoch. The receiver
    /// measures the delivery delay against its own clock, which is exact only between
    /// nodes of one host or with synchronised clocks.
    pub sent_at_us: u64,
    /// The events, in the sender's capture order.
    pub events: Vec<WireEvent>,
}

impl WireMessage for RemoteEvents {
    const NAME: &'static str = "session events";
}

/// Message of the bridge actor: the events of one control batch of some node.
#[derive(Debug, Clone)]
pub struct BridgeMsg(pub Remote<RemoteEvents>);

impl Message for BridgeMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self.0 {
            Remote::Valid(events) => Ok(codec::cast(EVENTS_VARIANT, &events)),
            Remote::Invalid(_) => Err(BoxedDowncastErr),
        }
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        codec::uncast(EVENTS_VARIANT, message).map(BridgeMsg)
    }
}

/// Broadcasts the events of one control batch of node `node` to every bridge actor of
/// the cluster, this node's included (which ignores them). Does nothing for no events.
pub fn publish(node: &str, events: &[SessionEvent]) {
    if events.is_empty() {
        return;
    }
    let batch = RemoteEvents { node: node.to_owned(), sent_at_us: wall_clock_us(), events: events.iter().map(WireEvent::from).collect() };
    broadcast(SESSION_EVENTS_GROUP, &BridgeMsg(Remote::Valid(batch)));
}

/// Returns the wall-clock time in microseconds since the Unix epoch.
fn wall_clock_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// Counters of the bridge actor.
#[derive(Debug, Default)]
pub struct BridgeCounters {
    batches: AtomicU64,
    events: AtomicU64,
    own_ignored: AtomicU64,
    invalid: AtomicU64,
    /// Delivery delays and receive times; written only by the bridge actor, read at the end.
    delivery: Mutex<Delivery>,
}

/// Delivery delays of the batches received, in microseconds, by powers of two, and the
/// wall-clock span over which their events arrived.
#[derive(Debug, Default)]
struct Delivery {
    /// `histogram[k]` counts delays in [2^(k-1), 2^k) µs, the last bucket also longer ones;
    /// `histogram[0]` counts 0 µs.
    histogram: [u64; 32],
    max_us: u64,
    first_received_us: u64,
    last_received_us: u64,
}

impl Delivery {
    fn record(&mut self, sent_at_us: u64, received_at_us: u64) {
        let delay_us = received_at_us.saturating_sub(sent_at_us);
        let bucket = (u64::BITS - delay_us.leading_zeros()) as usize;
        self.histogram[bucket.min(self.histogram.len() - 1)] += 1;
        self.max_us = self.max_us.max(delay_us);
        if self.first_received_us == 0 {
            self.first_received_us = received_at_us;
        }
        self.last_received_us = received_at_us;
    }

    /// Returns the upper bound, in microseconds, of the power-of-two bucket that contains the
    /// `quantile` of the delays, or 0 when nothing was received.
    fn quantile_us(&self, quantile: f64) -> u64 {
        let total: u64 = self.histogram.iter().sum();
        let rank = (quantile * total as f64).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.histogram.iter().enumerate() {
            seen += count;
            if total > 0 && seen >= rank {
                return (1u64 << bucket).min(self.max_us);
            }
        }
        0
    }
}

/// Copy of the bridge counters for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BridgeStats {
    /// Control batches received from other nodes.
    pub remote_batches_received: u64,
    /// Session events received from other nodes.
    pub remote_events_received: u64,
    /// Batches from this node itself, ignored.
    pub own_batches_ignored: u64,
    /// Payloads that failed to decode.
    pub invalid_payloads: u64,
    /// Median delay from a remote broadcast to its receipt, microseconds, rounded up to a
    /// power of two (see [`RemoteEvents::sent_at_us`] for the clocks).
    pub delivery_p50_us: u64,
    /// 99th percentile of that delay, microseconds, rounded up to a power of two.
    pub delivery_p99_us: u64,
    /// Largest delay, microseconds.
    pub delivery_max_us: u64,
    /// Wall-clock time from the first to the last remote batch received, microseconds.
    pub receive_span_us: u64,
}

impl BridgeCounters {
    /// Reads the counters.
    pub fn stats(&self) -> BridgeStats {
        let delivery = self.delivery.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        BridgeStats {
            remote_batches_received: self.batches.load(Ordering::Relaxed),
            remote_events_received: self.events.load(Ordering::Relaxed),
            own_batches_ignored: self.own_ignored.load(Ordering::Relaxed),
            invalid_payloads: self.invalid.load(Ordering::Relaxed),
            delivery_p50_us: delivery.quantile_us(0.5),
            delivery_p99_us: delivery.quantile_us(0.99),
            delivery_max_us: delivery.max_us,
            receive_span_us: delivery.last_received_us - delivery.first_received_us,
        }
    }

    fn record_delivery(&self, sent_at_us: u64) {
        let mut delivery = self.delivery.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        delivery.record(sent_at_us, wall_clock_us());
    }
}

/// Start arguments of the bridge actor.
pub struct BridgeArgs {
    /// Full name of this node; batches it sent are ignored.
    pub node: String,
    /// Shards that install the remote tunnels.
    pub shards: Vec<ActorRef<ShardMsg>>,
    /// Counters shared with the run.
    pub counters: Arc<BridgeCounters>,
}

/// The actor that receives other probes' session events and hands them to the shards.
pub struct BridgeActor;

impl Actor for BridgeActor {
    type Msg = BridgeMsg;
    type State = BridgeArgs;
    type Arguments = BridgeArgs;

    async fn pre_start(&self, myself: ActorRef<BridgeMsg>, args: BridgeArgs) -> Result<BridgeArgs, ActorProcessingErr> {
        join_group(SESSION_EVENTS_GROUP, myself.get_cell());
        Ok(args)
    }

    async fn handle(&self, _myself: ActorRef<BridgeMsg>, message: BridgeMsg, state: &mut BridgeArgs) -> Result<(), ActorProcessingErr> {
        let batch = match message.0 {
            Remote::Valid(batch) => batch,
            Remote::Invalid(reason) => {
                state.counters.invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "invalid session events from another node; dropped");
                return Ok(());
            }
        };
        if batch.node == state.node {
            state.counters.own_ignored.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        state.counters.batches.fetch_add(1, Ordering::Relaxed);
        state.counters.events.fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        state.counters.record_delivery(batch.sent_at_us);
        let batch = Arc::new(batch);
        for shard in &state.shards {
            // Fails only once the shard stopped at the end of the run.
            let _ = shard.send_message(ShardMsg::Remote(batch.clone()));
        }
        Ok(())
    }
}

/// Returns the number of bridge actors of other nodes in [`SESSION_EVENTS_GROUP`].
pub fn remote_bridges() -> usize {
    ractor::pg::get_members(&SESSION_EVENTS_GROUP.to_owned()).iter().filter(|member| !member.get_id().is_local()).count()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn batch() -> RemoteEvents {
        let tunnel = WireTunnel { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), teid: 7, role: TunnelRole::Uplink };
        let event = WireEvent { kind: EventKind::Attach, ts_us: 5, session_id: 3, imsi: "001010000000001".into(), added: vec![tunnel], removed: vec![] };
        RemoteEvents { node: "probe-a@127.0.0.1".into(), sent_at_us: 1_700_000_000_000_000, events: vec![event] }
    }

    #[test]
    fn events_round_trip() {
        let message = BridgeMsg(Remote::Valid(batch())).serialize().expect("serializable");
        let decoded = BridgeMsg::deserialize(message).expect("a cast");
        assert_eq!(decoded.0, Remote::Valid(batch()));
    }

    #[test]
    fn delivery_quantiles_by_power_of_two() {
        let mut delivery = Delivery::default();
        for delay_us in [0, 3, 3, 100, 5_000] {
            delivery.record(1_000, 1_000 + delay_us);
        }
        assert_eq!(delivery.quantile_us(0.5), 4, "the median 3 µs is in [2, 4)");
        assert_eq!(delivery.quantile_us(0.99), 5_000, "capped at the maximum");
        assert_eq!(delivery.max_us, 5_000);
        assert_eq!(Delivery::default().quantile_us(0.5), 0, "nothing received");
    }

    #[test]
    fn garbage_is_invalid() {
        let message = SerializedMessage::Cast { variant: EVENTS_VARIANT.into(), args: vec![0, 1, 0xff], metadata: None };
        let decoded = BridgeMsg::deserialize(message).expect("a cast");
        assert!(matches!(decoded.0, Remote::Invalid(_)), "{decoded:?}");
    }
}
