//! Tests of the lookup actor with the embedded backend and with a real `redis-server`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use super::*;
use crate::microcloud::redis::test_server::RedisServer;
use crate::microcloud::{EmbeddedMicrocloud, RedisConfig, RedisMicrocloud};
use crate::session::event::{fixture, SessionEvent, Tunnel, TunnelRole};

const IMSI: &str = "001010000000001";
/// Generous bound for an actor reply; the tests never measure time.
const REPLY_DEADLINE: Duration = Duration::from_secs(30);

fn key(teid: u32) -> TunnelKey {
    TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), teid }
}

/// Builds an attach of `IMSI` that adds the tunnel `key(teid)`.
fn attach(teid: u32) -> SessionEvent {
    let tunnel = Tunnel { key: key(teid), role: TunnelRole::Uplink, bearer: 5, interface: Tunnel::GTPV1 };
    SessionEvent { seq: 1, site: "site-a".to_owned(), ..fixture::attach_with(IMSI, tunnel, 1_000_000) }
}

/// Stands in for a shard: forwards every lookup reply to a channel.
struct ReplyProbe;

impl Actor for ReplyProbe {
    type Msg = ShardMsg;
    type State = mpsc::UnboundedSender<LookupReply>;
    type Arguments = mpsc::UnboundedSender<LookupReply>;

    async fn pre_start(&self, _myself: ActorRef<ShardMsg>, sender: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
        Ok(sender)
    }

    async fn handle(&self, _myself: ActorRef<ShardMsg>, message: ShardMsg, sender: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if let ShardMsg::Lookup(reply) = message {
            let _ = sender.send(reply);
        }
        Ok(())
    }
}

/// A lookup actor over `microcloud` and a probe that receives its replies.
struct Harness {
    lookup: ActorRef<LookupMsg>,
    probe: ActorRef<ShardMsg>,
    replies: mpsc::UnboundedReceiver<LookupReply>,
}

impl Harness {
    async fn start<M: Microcloud + Clone>(microcloud: M, config: LookupConfig) -> Harness {
        let (sender, replies) = mpsc::unbounded_channel();
        let (probe, _) = Actor::spawn(None, ReplyProbe, sender).await.expect("spawn the probe");
        let args = LookupArgs { microcloud, config };
        let (lookup, _) = Actor::spawn(None, LookupActor::<M>::default(), args).await.expect("spawn the lookup actor");
        Harness { lookup, probe, replies }
    }

    /// Sends one request and returns the owners the actor replies with.
    async fn resolve(&mut self, keys: &[TunnelKey]) -> Vec<Option<String>> {
        let message = LookupMsg::Resolve { keys: keys.to_vec(), reply_to: self.probe.clone() };
        self.lookup.send_message(message).expect("send to the lookup actor");
        let reply = tokio::time::timeout(REPLY_DEADLINE, self.replies.recv()).await.expect("no lookup reply within 30 s").expect("probe stopped");
        assert_eq!(reply.keys, keys, "the reply returns the request's keys in order");
        reply.owners.iter().map(|owner| owner.map(|imsi| imsi.as_str().to_owned())).collect()
    }

    async fn finish(self) -> LookupStats {
        let stats = self.lookup.call(LookupMsg::Finish, Some(REPLY_DEADLINE)).await.expect("call the lookup actor");
        self.lookup.stop(None);
        self.probe.stop(None);
        match stats {
            ractor::rpc::CallResult::Success(stats) => stats,
            _ => panic!("the lookup actor did not reply to Finish"),
        }
    }
}

#[tokio::test]
async fn found_and_missing_keys_returned() {
    let mut cloud = EmbeddedMicrocloud::new();
    cloud.publish(&[attach(7)]).await.expect("publish");
    let mut harness = Harness::start(cloud, LookupConfig::default()).await;

    assert_eq!(harness.resolve(&[key(7), key(8)]).await, vec![Some(IMSI.to_owned()), None]);
    let stats = harness.finish().await;
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.queries, 1, "both keys in one round trip");
    assert_eq!(stats.keys_queried, 2);
    assert_eq!(stats.found, 1);
    assert_eq!(stats.not_found, 1);
    assert_eq!(stats.errors, 0);
}

#[tokio::test]
async fn repeated_keys_served_from_caches() {
    let mut cloud = EmbeddedMicrocloud::new();
    cloud.publish(&[attach(7)]).await.expect("publish");
    // TTLs far longer than any test run, so the second request finds both entries.
    let config = LookupConfig { negative_ttl: Duration::from_secs(3600), positive_ttl: Duration::from_secs(3600), ..LookupConfig::default() };
    let mut harness = Harness::start(cloud, config).await;

    harness.resolve(&[key(7), key(8)]).await;
    assert_eq!(harness.resolve(&[key(8), key(7)]).await, vec![None, Some(IMSI.to_owned())]);
    let stats = harness.finish().await;
    assert_eq!(stats.queries, 1, "the second request needs no round trip");
    assert_eq!(stats.negative_cache_hits, 1);
    assert_eq!(stats.positive_cache_hits, 1);
}

#[tokio::test]
async fn zero_negative_ttl_reads_again() {
    let mut harness = Harness::start(EmbeddedMicrocloud::new(), LookupConfig { negative_ttl: Duration::ZERO, ..LookupConfig::default() }).await;

    harness.resolve(&[key(8)]).await;
    harness.resolve(&[key(8)]).await;
    let stats = harness.finish().await;
    assert_eq!(stats.queries, 2);
    assert_eq!(stats.not_found, 2);
    assert_eq!(stats.negative_cache_hits, 0);
}

#[tokio::test]
async fn mget_matches_single_reads() {
    let server = RedisServer::start();
    let mut cloud = RedisMicrocloud::connect(&server.url(), RedisConfig::default()).await.expect("connect");
    cloud.publish(&[attach(7), SessionEvent { imsi: "001010000000002".to_owned(), session_id: 2, ..attach(9) }]).await.expect("publish");

    let keys = [key(7), key(8), key(9), key(7)];
    let owners = cloud.lookup_tunnels(&keys).await.expect("MGET");
    let mut single = Vec::new();
    for &key in &keys {
        single.push(cloud.lookup_tunnel(key).await.expect("GET"));
    }
    assert_eq!(owners, vec![Some(IMSI.to_owned()), None, Some("001010000000002".to_owned()), Some(IMSI.to_owned())]);
    assert_eq!(owners, single);
    assert_eq!(cloud.lookup_tunnels(&[]).await.expect("no keys"), Vec::<Option<String>>::new());
}

#[tokio::test]
async fn unavailable_server_counts_errors() {
    let server = RedisServer::start();
    let config = RedisConfig { reconnect_retries: 0, ..RedisConfig::default() };
    let cloud = RedisMicrocloud::connect(&server.url(), config).await.expect("connect");
    drop(server);
    let mut harness = Harness::start(cloud, LookupConfig::default()).await;

    assert_eq!(harness.resolve(&[key(7), key(8)]).await, vec![None, None], "a failed read returns no owner");
    let stats = harness.finish().await;
    assert_eq!(stats.failed_queries, 1);
    assert_eq!(stats.errors, 2);
    assert_eq!(stats.found + stats.not_found, 0);
}
