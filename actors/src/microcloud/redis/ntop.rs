//! ntop compatibility: the names and payloads that PF_RING's `pfwrite` and ntop's
//! `imsiAggregator.py` read, written next to schema v1 when `RedisConfig::ntop_compat` is set.
//!
//! The names are fixed by those tools, so they carry neither the prefix nor the schema
//! version:
//! - `imsi.<IMSI>`: string `<IP>;<upstream TEID>;<downstream TEID>`, the tunnels to capture;
//! - channel `imsi.create`: `<IMSI>;<IP>;<upstream TEID>;<downstream TEID>`;
//! - channel `imsi.delete`: `<IMSI>`;
//! - hash `<epoch>.<IMSI>.<protocol>`: `packets`, `bytes`, `flows`, `duration` (integers),
//!   written by the bucket script (`scripts::ADD_BUCKETS`) with the names from [`NtopNames`].
//!
//! `pfwrite` skips the field before the first `;` (the IP) and reads the next two fields as
//! decimal TEIDs (`atoll`), replacing the TEIDs it captures. It splits with `strtok`, which
//! merges empty fields, so no field is ever left empty. A missing TEID is `0` and a missing
//! UE address `0.0.0.0`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};

use redis::Pipeline;

use super::{ttl_seconds, RedisMicrocloud, BACKEND};
use crate::bucket::BucketDelta;
use crate::microcloud::MicrocloudError;
use crate::ndpi::Classifier;
use crate::session::event::{EventKind, SessionEvent, Tunnel, TunnelRole};

/// Channel on which a subscriber's tunnels are announced.
const CREATE_CHANNEL: &str = "imsi.create";
/// Channel on which a subscriber's detach is announced.
const DELETE_CHANNEL: &str = "imsi.delete";

/// Protocol names of ntop's hashes, printed by one nDPI module shared by the clones of a
/// handle.
///
/// The classifier keeps every name it printed, so each protocol is printed, and allocates,
/// only the first time it is named. The mutex is taken once per script call, never per packet.
#[derive(Clone)]
pub(super) struct NtopNames {
    classifier: Arc<Mutex<Classifier>>,
}

impl NtopNames {
    /// Loads an nDPI module for the names. Fails when libndpi cannot be initialized.
    pub(super) fn new() -> Result<NtopNames, MicrocloudError> {
        let classifier = Classifier::new().map_err(|error| MicrocloudError::Unavailable {
            backend: BACKEND,
            reason: format!("ntop compatibility needs nDPI protocol names, but nDPI failed to start: {error}"),
        })?;
        Ok(NtopNames {
            classifier: Arc::new(Mutex::new(classifier)),
        })
    }

    /// Returns the name of ntop's hash for each delta, in order.
    pub(super) fn hash_keys(&self, deltas: &[BucketDelta]) -> Vec<String> {
        // A panic cannot leave a half-built name in the cache, so a poisoned mutex is still usable.
        let classifier = self.classifier.lock().unwrap_or_else(PoisonError::into_inner);
        deltas
            .iter()
            .map(|delta| hash_key(delta.epoch, delta.imsi.as_str(), classifier.report_name(delta.protocol)))
            .collect()
    }
}

/// Returns `<epoch>.<IMSI>.<protocol>`, the hash `imsiAggregator.py` finds with
/// `KEYS <epoch>.*`.
///
/// `protocol` is the application nDPI found (`Facebook` for `TLS.Facebook`), else the master
/// protocol, else `Unknown` (`Classifier::report_name`). The script splits the key at every
/// `.` and takes the third part as the protocol, so dots (nDPI 4.2 has `Z39.50`) and
/// whitespace in the name become `_`, and an empty name becomes `Unknown`.
fn hash_key(epoch: u64, imsi: &str, protocol: &str) -> String {
    let protocol = if protocol.is_empty() { "Unknown" } else { protocol };
    let mut key = format!("{epoch}.{imsi}.");
    key.extend(protocol.chars().map(|c| if c == '.' || c.is_whitespace() { '_' } else { c }));
    key
}

/// Returns `imsi.<IMSI>`, the string `pfwrite` reads when it starts.
fn tunnels_key(imsi: &str) -> String {
    format!("imsi.{imsi}")
}

/// Appends ntop's writes for `events`, in order, to the pipeline of one `publish` call.
///
/// An event that installs or removes an uplink or downlink tunnel (attach, a modify or move
/// with new TEIDs, idle) sets `imsi.<IMSI>` with the state TTL and publishes it on
/// `imsi.create`. A detach deletes `imsi.<IMSI>` and publishes the IMSI on `imsi.delete`.
/// Rejects and events without a tunnel change write nothing. Does nothing unless
/// `ntop_compat` is set.
///
/// NOTE: the records describe one session. A detach of one of several sessions of a
/// subscriber announces `imsi.delete` although the other sessions keep their tunnels.
pub(super) fn append_event_writes(pipe: &mut Pipeline, cloud: &RedisMicrocloud, events: &[SessionEvent]) {
    if !cloud.config.ntop_compat {
        return;
    }
    let state_ttl = ttl_seconds(cloud.config.state_ttl);
    for event in events {
        if event.kind == EventKind::Detach {
            pipe.del(tunnels_key(&event.imsi)).ignore();
            pipe.publish(DELETE_CHANNEL, &event.imsi).ignore();
        } else if event.kind != EventKind::Reject && changes_user_plane(event) {
            let record = tunnel_record(event);
            pipe.cmd("SET").arg(tunnels_key(&event.imsi)).arg(&record).arg("EX").arg(state_ttl).ignore();
            pipe.publish(CREATE_CHANNEL, create_payload(&event.imsi, &record)).ignore();
        }
    }
}

/// Returns whether the event installed or removed an uplink or downlink tunnel. Forwarding
/// tunnels carry handover data only and are not announced.
fn changes_user_plane(event: &SessionEvent) -> bool {
    event.added.iter().chain(&event.removed).any(|tunnel| tunnel.role != TunnelRole::Forwarding)
}

/// Returns `<IP>;<upstream TEID>;<downstream TEID>` of the event's session, the value of
/// `imsi.<IMSI>`.
fn tunnel_record(event: &SessionEvent) -> String {
    let address = event
        .ue_ipv4
        .map(IpAddr::V4)
        .or(event.ue_ipv6.map(IpAddr::V6))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let pair = TunnelPair::of(&event.tunnels);
    format!("{address};{};{}", pair.upstream, pair.downstream)
}

/// Returns the `imsi.create` payload `<IMSI>;<IP>;<upstream TEID>;<downstream TEID>`.
fn create_payload(imsi: &str, record: &str) -> String {
    format!("{imsi};{record}")
}

/// TEIDs of one bearer as ntop names them. A TEID is 0 while the bearer has no such tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TunnelPair {
    /// TEID of the core-side endpoint, carried by uplink G-PDUs.
    upstream: u32,
    /// TEID of the radio-side endpoint, carried by downlink G-PDUs.
    downstream: u32,
}

impl TunnelPair {
    /// Picks the pair of the lowest bearer (EBI or NSAPI) among `tunnels`, which is normally
    /// the default bearer. Where a bearer has tunnels on several interfaces (S1-U and
    /// S5/S8), the radio-facing one is taken, because a probe that captures S11 signalling
    /// captures the S1-U user plane, where S5/S8 TEIDs never appear.
    fn of(tunnels: &[Tunnel]) -> TunnelPair {
        let bearer = tunnels
            .iter()
            .filter(|tunnel| tunnel.role != TunnelRole::Forwarding)
            .map(|tunnel| tunnel.bearer)
            .min();
        let teid_of = |role: TunnelRole| {
            tunnels
                .iter()
                .filter(|tunnel| Some(tunnel.bearer) == bearer && tunnel.role == role)
                .min_by_key(|tunnel| !is_radio_facing(tunnel.interface))
                .map_or(0, |tunnel| tunnel.key.teid)
        };
        TunnelPair {
            upstream: teid_of(TunnelRole::Uplink),
            downstream: teid_of(TunnelRole::Downlink),
        }
    }
}

/// Returns whether an F-TEID interface type (TS 29.274 Table 8.22-1) links the serving
/// gateway to the radio side, S1-U (0, 1), S12 (2, 3) or S4 user plane (15, 16), or is a
/// GTPv1 tunnel ([`Tunnel::GTPV1`]), whose session has no S5/S8 tunnel to choose from.
fn is_radio_facing(interface: u8) -> bool {
    matches!(interface, 0..=3 | 15 | 16 | Tunnel::GTPV1)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::flow::classify::AppProtocol;
    use crate::microcloud::tests::{attach, delta, downlink, event, uplink, IMSI_A};
    use crate::session::event::TunnelKey;

    /// S1-U eNodeB, S1-U SGW, S5/S8 SGW and S5/S8 PGW user-plane F-TEID interface types.
    const S1U_ENODEB: u8 = 0;
    const S1U_SGW: u8 = 1;
    const S5S8_SGW: u8 = 4;
    const S5S8_PGW: u8 = 5;

    fn v2_tunnel(teid: u32, role: TunnelRole, bearer: u8, interface: u8) -> Tunnel {
        Tunnel {
            key: TunnelKey {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, interface + 10)),
                teid,
            },
            role,
            bearer,
            interface,
        }
    }

    #[test]
    fn hash_key_has_epoch_imsi_protocol() {
        assert_eq!(hash_key(1_374_938_100, IMSI_A, "Facebook"), "1374938100.001010000000001.Facebook");
        assert_eq!(hash_key(300, IMSI_A, "Unknown"), "300.001010000000001.Unknown");
    }

    #[test]
    fn hash_key_replaces_dots_and_spaces() {
        // nDPI 4.2 names protocol 260 `Z39.50`.
        assert_eq!(hash_key(300, IMSI_A, "Z39.50"), "300.001010000000001.Z39_50");
        assert_eq!(hash_key(300, IMSI_A, "Apple iCloud"), "300.001010000000001.Apple_iCloud");
        assert_eq!(hash_key(300, IMSI_A, ""), "300.001010000000001.Unknown");
    }

    #[test]
    fn hash_keys_use_application_name() {
        // nDPI 4.2 ids: 5 DNS, 7 HTTP, 91 TLS, 119 Facebook.
        let names = NtopNames::new().expect("nDPI starts");
        let of = |master, app| delta(600, IMSI_A, AppProtocol { master, app }, 1);
        let keys = names.hash_keys(&[of(91, 119), of(5, 0), of(7, 0), of(0, 0)]);
        let expected: Vec<String> = ["Facebook", "DNS", "HTTP", "Unknown"]
            .iter()
            .map(|name| format!("600.{IMSI_A}.{name}"))
            .collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn tunnels_key_is_fixed_name() {
        assert_eq!(tunnels_key(IMSI_A), "imsi.001010000000001");
    }

    #[test]
    fn create_payload_of_gtpv1_attach() {
        let attach = attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)]);
        let record = tunnel_record(&attach);
        assert_eq!(record, "10.0.0.1;16;32");
        assert_eq!(create_payload(IMSI_A, &record), "001010000000001;10.0.0.1;16;32");
    }

    #[test]
    fn teids_printed_in_decimal() {
        let attach = attach(IMSI_A, 1, &[uplink(u32::MAX), downlink(2, 0x381C_E8C0)]);
        assert_eq!(tunnel_record(&attach), "10.0.0.1;4294967295;941418688");
    }

    #[test]
    fn missing_fields_are_never_empty() {
        let mut uplink_only = attach(IMSI_A, 1, &[uplink(7)]);
        uplink_only.ue_ipv4 = None;
        assert_eq!(tunnel_record(&uplink_only), "0.0.0.0;7;0");
        uplink_only.tunnels.clear();
        assert_eq!(tunnel_record(&uplink_only), "0.0.0.0;0;0");
    }

    #[test]
    fn ipv6_address_when_no_ipv4() {
        let mut attach = attach(IMSI_A, 1, &[uplink(1), downlink(2, 2)]);
        attach.ue_ipv4 = None;
        attach.ue_ipv6 = Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(tunnel_record(&attach), "2001:db8::1;1;2");
    }

    #[test]
    fn pair_prefers_s1u_over_s5s8() {
        let tunnels = [
            v2_tunnel(50, TunnelRole::Uplink, 5, S5S8_PGW),
            v2_tunnel(40, TunnelRole::Downlink, 5, S5S8_SGW),
            v2_tunnel(11, TunnelRole::Uplink, 5, S1U_SGW),
            v2_tunnel(22, TunnelRole::Downlink, 5, S1U_ENODEB),
        ];
        assert_eq!(TunnelPair::of(&tunnels), TunnelPair { upstream: 11, downstream: 22 });
    }

    #[test]
    fn pair_of_lowest_bearer() {
        let tunnels = [
            v2_tunnel(61, TunnelRole::Uplink, 6, S1U_SGW),
            v2_tunnel(62, TunnelRole::Downlink, 6, S1U_ENODEB),
            v2_tunnel(51, TunnelRole::Uplink, 5, S1U_SGW),
            v2_tunnel(52, TunnelRole::Downlink, 5, S1U_ENODEB),
        ];
        assert_eq!(TunnelPair::of(&tunnels), TunnelPair { upstream: 51, downstream: 52 });
    }

    #[test]
    fn pair_ignores_forwarding_tunnels() {
        let tunnels = [
            v2_tunnel(99, TunnelRole::Forwarding, 1, 23),
            v2_tunnel(51, TunnelRole::Uplink, 5, S1U_SGW),
        ];
        assert_eq!(TunnelPair::of(&tunnels), TunnelPair { upstream: 51, downstream: 0 });
    }

    #[test]
    fn only_user_plane_changes_announced() {
        let mut modify = event(EventKind::Modify, IMSI_A, 1, 2_000_000);
        assert!(!changes_user_plane(&modify));
        modify.added = vec![v2_tunnel(99, TunnelRole::Forwarding, 5, 23)];
        assert!(!changes_user_plane(&modify));
        modify.removed = vec![downlink(2, 0x20)];
        assert!(changes_user_plane(&modify));
    }

    mod on_server {
        //! Tests against a `redis-server` that each test starts on its own port.

        use std::collections::HashMap;
        use std::time::Duration;

        use futures_util::StreamExt;
        use redis::AsyncCommands;

        use super::*;
        use crate::bucket::BucketDelta;
        use crate::microcloud::redis::test_server::RedisServer;
        use crate::microcloud::{Microcloud, RedisConfig};
        use crate::wire::control::Digits;

        /// TLS.Facebook and QUIC.Facebook in nDPI 4.2 (TLS 91, QUIC 188, Facebook 119).
        const TLS_FACEBOOK: AppProtocol = AppProtocol { master: 91, app: 119 };
        const QUIC_FACEBOOK: AppProtocol = AppProtocol { master: 188, app: 119 };

        async fn connect(server: &RedisServer, ntop_compat: bool) -> RedisMicrocloud {
            let config = RedisConfig { ntop_compat, ..RedisConfig::default() };
            RedisMicrocloud::connect(&server.url(), config).await.expect("connect to the test server")
        }

        fn flow_delta(protocol: AppProtocol, duration_us: u64) -> BucketDelta {
            BucketDelta {
                epoch: 600,
                imsi: Digits::from_ascii(IMSI_A.as_bytes()).expect("test IMSI is digits"),
                protocol,
                packets: 3,
                bytes: 300,
                flows: 1,
                duration_us,
            }
        }

        async fn ntop_hash(cloud: &mut RedisMicrocloud, key: &str) -> HashMap<String, i64> {
            cloud.connection.hgetall(key).await.expect("HGETALL")
        }

        #[tokio::test]
        async fn duration_adds_crossed_seconds() {
            let server = RedisServer::start();
            let mut cloud = connect(&server, true).await;
            // TLS.Facebook gets 0.6 s three times (1.8 s, 1 whole second), QUIC.Facebook
            // 1.5 s once (1 s): the report prints 1 and 1, so ntop's Facebook has 2.
            for (batch, protocol) in [("b1", TLS_FACEBOOK), ("b2", TLS_FACEBOOK), ("b3", TLS_FACEBOOK)] {
                assert!(cloud.add_buckets_batch(batch, &[flow_delta(protocol, 600_000)]).await.expect("add"));
            }
            assert!(cloud.add_buckets_batch("b4", &[flow_delta(QUIC_FACEBOOK, 1_500_000)]).await.expect("add"));

            let key = format!("600.{IMSI_A}.Facebook");
            let expected: HashMap<String, i64> =
                [("packets", 12), ("bytes", 1200), ("flows", 4), ("duration", 2)].map(|(field, value)| (field.to_owned(), value)).into();
            assert_eq!(ntop_hash(&mut cloud, &key).await, expected);
            let ttl: i64 = cloud.connection.ttl(&key).await.expect("TTL");
            assert!(ttl > 0, "{key} has TTL {ttl}");
        }

        #[tokio::test]
        async fn retried_batch_skips_ntop_hash() {
            let server = RedisServer::start();
            let mut cloud = connect(&server, true).await;
            let deltas = [flow_delta(TLS_FACEBOOK, 2_500_000)];
            assert!(cloud.add_buckets_batch("batch-1", &deltas).await.expect("first attempt"));
            assert!(!cloud.add_buckets_batch("batch-1", &deltas).await.expect("retry"));

            let hash = ntop_hash(&mut cloud, &format!("600.{IMSI_A}.Facebook")).await;
            assert_eq!(hash.get("packets"), Some(&3));
            assert_eq!(hash.get("duration"), Some(&2));
        }

        #[tokio::test]
        async fn events_announce_tunnels() {
            let server = RedisServer::start();
            let mut cloud = connect(&server, true).await;
            let client = redis::Client::open(server.url()).expect("url");
            let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
            pubsub.subscribe(&[CREATE_CHANNEL, DELETE_CHANNEL]).await.expect("subscribe");

            let attach = attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)]);
            cloud.publish(std::slice::from_ref(&attach)).await.expect("publish attach");
            let record: Option<String> = cloud.connection.get(tunnels_key(IMSI_A)).await.expect("GET");
            assert_eq!(record.as_deref(), Some("10.0.0.1;16;32"));
            let ttl: i64 = cloud.connection.ttl(tunnels_key(IMSI_A)).await.expect("TTL");
            assert!(ttl > 0, "imsi.<IMSI> has TTL {ttl}");

            let handover = SessionEvent {
                tunnels: vec![uplink(0x10), downlink(3, 0x30)],
                added: vec![downlink(3, 0x30)],
                removed: vec![downlink(2, 0x20)],
                ..event(EventKind::Move, IMSI_A, 1, 2_000_000)
            };
            let unchanged = SessionEvent { tunnels: handover.tunnels.clone(), ..event(EventKind::Modify, IMSI_A, 1, 3_000_000) };
            let detach = SessionEvent {
                removed: handover.tunnels.clone(),
                ..event(EventKind::Detach, IMSI_A, 1, 4_000_000)
            };
            cloud.publish(&[handover, unchanged, detach]).await.expect("publish the rest");
            let record: Option<String> = cloud.connection.get(tunnels_key(IMSI_A)).await.expect("GET");
            assert_eq!(record, None);

            let mut messages = pubsub.on_message();
            let mut received = Vec::new();
            for _ in 0..3 {
                let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
                    .await
                    .expect("message within 30 s")
                    .expect("stream open");
                let payload: String = message.get_payload().expect("text payload");
                received.push((message.get_channel_name().to_owned(), payload));
            }
            // The handover event carries no UE address, so the second record has 0.0.0.0.
            let expected = [
                (CREATE_CHANNEL, "001010000000001;10.0.0.1;16;32"),
                (CREATE_CHANNEL, "001010000000001;0.0.0.0;16;48"),
                (DELETE_CHANNEL, "001010000000001"),
            ]
            .map(|(channel, payload)| (channel.to_owned(), payload.to_owned()));
            assert_eq!(received, expected);
        }

        #[tokio::test]
        async fn off_by_default() {
            let server = RedisServer::start();
            let mut cloud = connect(&server, false).await;
            let client = redis::Client::open(server.url()).expect("url");
            let mut pubsub = client.get_async_pubsub().await.expect("pubsub connection");
            pubsub.subscribe(&[CREATE_CHANNEL, DELETE_CHANNEL]).await.expect("subscribe");

            let attach = attach(IMSI_A, 1, &[uplink(0x10), downlink(2, 0x20)]);
            let detach = SessionEvent { removed: attach.tunnels.clone(), ..event(EventKind::Detach, IMSI_A, 1, 2_000_000) };
            cloud.publish(&[attach, detach]).await.expect("publish");
            cloud.add_buckets(&[flow_delta(TLS_FACEBOOK, 1_000_000)]).await.expect("add");

            let keys: Vec<String> = cloud.connection.keys("*").await.expect("KEYS");
            let foreign: Vec<&String> = keys.iter().filter(|key| !key.starts_with("imsitrace:")).collect();
            assert!(foreign.is_empty(), "keys outside the prefix: {foreign:?}");
            // Messages on one connection arrive in publish order, so the marker published last
            // comes first only when nothing was published on the ntop channels before it.
            let _: i64 = cloud.connection.publish(DELETE_CHANNEL, "marker").await.expect("PUBLISH");
            let mut messages = pubsub.on_message();
            let first = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .expect("message within 30 s")
                .expect("stream open");
            let payload: String = first.get_payload().expect("text payload");
            assert_eq!(payload, "marker");
        }
    }
}
