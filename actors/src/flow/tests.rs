use std::net::{IpAddr, Ipv4Addr};

use super::classify::{AppProtocol, Classify};
use super::{ExpiredFlow, ExpiryReason, FlowTable, FlowTimeouts};
use crate::wire::control::Digits;
use crate::wire::{FlowKey, InnerPacket};

const SECOND: u64 = 1_000_000;
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Counts calls and reports a final result after `done_after` packets. The protocol it
/// returns carries the number of packets fed in `app`.
#[derive(Default)]
struct CountingClassifier {
    done_after: u32,
    started: u32,
    fed: u32,
    finished: u32,
}

impl Classify for CountingClassifier {
    type State = u32;

    fn start(&mut self) -> u32 {
        self.started += 1;
        0
    }

    fn feed(&mut self, state: &mut u32, _ip_packet: &[u8], _ts_us: u64) -> bool {
        self.fed += 1;
        *state += 1;
        *state >= self.done_after
    }

    fn finish(&mut self, state: u32) -> AppProtocol {
        self.finished += 1;
        AppProtocol {
            master: 7,
            app: state as u16,
        }
    }

    fn name(&self, _protocol: AppProtocol) -> &str {
        "Test"
    }
}

/// A table, its classifier and every flow it expired so far.
struct Harness {
    table: FlowTable<CountingClassifier>,
    classifier: CountingClassifier,
    expired: Vec<ExpiredFlow>,
}

impl Harness {
    fn new(timeouts: FlowTimeouts) -> Self {
        Harness {
            table: FlowTable::new(timeouts),
            classifier: CountingClassifier {
                done_after: 3,
                ..Default::default()
            },
            expired: Vec::new(),
        }
    }

    fn packet(&mut self, imsi: &str, key: FlowKey, tcp_flags: u8, ts_us: u64) {
        let inner = InnerPacket {
            key,
            ip_len: 100,
            tcp_flags,
        };
        let imsi = Digits::from_ascii(imsi.as_bytes()).expect("test IMSI is digits");
        let expired = &mut self.expired;
        self.table.packet(
            &mut self.classifier,
            imsi,
            &inner,
            &[0x45; 20],
            ts_us,
            &mut |flow| expired.push(flow),
        );
    }

    fn expire(&mut self, now_us: u64) {
        let expired = &mut self.expired;
        self.table
            .expire(now_us, &mut self.classifier, &mut |flow| expired.push(flow));
    }

    fn flush(&mut self) {
        let expired = &mut self.expired;
        self.table
            .flush(&mut self.classifier, &mut |flow| expired.push(flow));
    }
}

fn timeouts(idle_s: u64, active_s: Option<u64>) -> FlowTimeouts {
    FlowTimeouts {
        idle_us: idle_s * SECOND,
        active_us: active_s.map(|seconds| seconds * SECOND),
        close_linger_us: SECOND,
    }
}

/// TCP from the UE 10.0.0.1:40000 to 192.0.2.1:443.
fn uplink_tcp() -> FlowKey {
    FlowKey {
        protocol: 6,
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 40_000,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst_port: 443,
    }
}

fn downlink_tcp() -> FlowKey {
    let up = uplink_tcp();
    FlowKey {
        src: up.dst,
        src_port: up.dst_port,
        dst: up.src,
        dst_port: up.src_port,
        ..up
    }
}

fn udp(src_port: u16) -> FlowKey {
    FlowKey {
        protocol: 17,
        src_port,
        dst_port: 53,
        ..uplink_tcp()
    }
}

const IMSI_A: &str = "001010000000001";
const IMSI_B: &str = "001010000000002";

#[test]
fn idle_split_at_timeout_boundary() {
    let mut h = Harness::new(timeouts(10, None));
    h.packet(IMSI_A, udp(1000), 0, 0);
    // Exactly idle_us after the previous packet: still the same flow.
    h.packet(IMSI_A, udp(1000), 0, 10 * SECOND);
    assert!(h.expired.is_empty());
    // One microsecond later than the idle timeout: the flow ends, a new one starts.
    h.packet(IMSI_A, udp(1000), 0, 20 * SECOND + 1);
    assert_eq!(h.expired.len(), 1);
    let first = h.expired[0];
    assert_eq!(first.reason, ExpiryReason::Idle);
    assert_eq!(first.packets, 2);
    assert_eq!(first.bytes, 200);
    assert_eq!(first.first_us, 0);
    assert_eq!(first.last_us, 10 * SECOND);
    assert_eq!(h.table.len(), 1);
    assert_eq!(h.table.stats().created, 2);
    assert_eq!(h.table.stats().expired_idle, 1);
}

#[test]
fn expire_without_packets_uses_given_time() {
    let mut h = Harness::new(timeouts(10, None));
    h.packet(IMSI_A, udp(1000), 0, 5 * SECOND);
    h.expire(15 * SECOND);
    assert!(h.expired.is_empty());
    h.expire(15 * SECOND + 1);
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.expired[0].reason, ExpiryReason::Idle);
    assert!(h.table.is_empty());
}

#[test]
fn active_timeout_splits_long_flow() {
    let mut h = Harness::new(timeouts(10, Some(5)));
    for second in 0..=7 {
        h.packet(IMSI_A, udp(1000), 0, second * SECOND);
    }
    // Packets at 0..=5 s belong to the first flow (5 s is first + active, still alive).
    assert_eq!(h.expired.len(), 1);
    let first = h.expired[0];
    assert_eq!(first.reason, ExpiryReason::Active);
    assert_eq!(first.packets, 6);
    assert_eq!(first.last_us, 5 * SECOND);
    h.flush();
    assert_eq!(h.expired[1].packets, 2);
    assert_eq!(h.expired[1].first_us, 6 * SECOND);
    assert_eq!(h.table.stats().expired_active, 1);
}

#[test]
fn active_timeout_disabled_keeps_flow() {
    let mut h = Harness::new(timeouts(10, None));
    for second in 0..=100 {
        h.packet(IMSI_A, udp(1000), 0, second * SECOND);
    }
    assert!(h.expired.is_empty());
    h.flush();
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.expired[0].packets, 101);
    assert_eq!(h.expired[0].duration_us(), 100 * SECOND);
}

#[test]
fn fin_fin_ack_closes_after_linger() {
    let mut h = Harness::new(timeouts(30, None));
    let ms = SECOND / 1000;
    h.packet(IMSI_A, uplink_tcp(), SYN, 0);
    h.packet(IMSI_A, downlink_tcp(), SYN | ACK, 10 * ms);
    h.packet(IMSI_A, uplink_tcp(), FIN | ACK, 100 * ms);
    h.packet(IMSI_A, downlink_tcp(), FIN | ACK, 110 * ms);
    // The final ACK comes within the linger time and joins the flow.
    h.packet(IMSI_A, uplink_tcp(), ACK, 120 * ms);
    assert!(h.expired.is_empty());
    h.expire(110 * ms + SECOND);
    assert!(h.expired.is_empty());
    h.expire(110 * ms + SECOND + 1);
    assert_eq!(h.expired.len(), 1);
    let flow = h.expired[0];
    assert_eq!(flow.reason, ExpiryReason::Fin);
    assert_eq!(flow.packets, 5);
    assert_eq!(flow.last_us, 120 * ms);
    assert_eq!(h.table.stats().expired_fin, 1);
}

#[test]
fn fin_one_direction_does_not_close() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, uplink_tcp(), FIN | ACK, 0);
    h.packet(IMSI_A, uplink_tcp(), FIN | ACK, SECOND / 10);
    h.expire(5 * SECOND);
    assert!(h.expired.is_empty());
    assert_eq!(h.table.len(), 1);
}

#[test]
fn packet_after_linger_starts_new_flow() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, uplink_tcp(), RST, 0);
    h.packet(IMSI_A, uplink_tcp(), SYN, 2 * SECOND);
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.expired[0].reason, ExpiryReason::Rst);
    assert_eq!(h.table.len(), 1);
}

#[test]
fn rst_closes_after_linger() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, uplink_tcp(), SYN, 0);
    h.packet(IMSI_A, downlink_tcp(), RST | ACK, 50_000);
    h.expire(50_000 + SECOND + 1);
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.expired[0].reason, ExpiryReason::Rst);
    assert_eq!(h.expired[0].packets, 2);
    assert_eq!(h.table.stats().expired_rst, 1);
}

#[test]
fn tcp_flags_ignored_for_udp() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, udp(1000), RST, 0);
    h.expire(5 * SECOND);
    assert!(h.expired.is_empty());
}

#[test]
fn both_directions_one_flow() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, uplink_tcp(), SYN, 0);
    h.packet(IMSI_A, downlink_tcp(), SYN | ACK, 1_000);
    h.packet(IMSI_A, uplink_tcp(), ACK, 2_000);
    assert_eq!(h.table.len(), 1);
    h.flush();
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.expired[0].packets, 3);
    assert_eq!(h.expired[0].bytes, 300);
    assert_eq!(h.expired[0].key, uplink_tcp().canonical());
}

#[test]
fn two_subscribers_same_tuple_two_flows() {
    let mut h = Harness::new(timeouts(30, None));
    h.packet(IMSI_A, uplink_tcp(), SYN, 0);
    h.packet(IMSI_B, uplink_tcp(), SYN, 0);
    h.packet(IMSI_B, downlink_tcp(), SYN | ACK, 1_000);
    assert_eq!(h.table.len(), 2);
    h.flush();
    h.expired.sort_by_key(|flow| flow.imsi.as_str().to_owned());
    assert_eq!(h.expired[0].imsi.as_str(), IMSI_A);
    assert_eq!(h.expired[0].packets, 1);
    assert_eq!(h.expired[1].imsi.as_str(), IMSI_B);
    assert_eq!(h.expired[1].packets, 2);
}

#[test]
fn flush_ends_every_flow() {
    let mut h = Harness::new(timeouts(30, Some(60)));
    for port in 0..50 {
        h.packet(IMSI_A, udp(port), 0, u64::from(port) * 1_000);
    }
    h.flush();
    assert_eq!(h.expired.len(), 50);
    assert!(h
        .expired
        .iter()
        .all(|flow| flow.reason == ExpiryReason::Flush));
    assert!(h.table.is_empty());
    assert_eq!(h.table.queued_deadlines(), 0);
    let stats = h.table.stats();
    assert_eq!(stats.created, 50);
    assert_eq!(stats.expired_flush, 50);
    assert_eq!(stats.expired_total(), 50);
    assert_eq!(stats.active, 0);
    // Every classifier state that was started was finished.
    assert_eq!(h.classifier.started, 50);
    assert_eq!(h.classifier.finished, 50);
}

#[test]
fn classifier_fed_until_done() {
    let mut h = Harness::new(timeouts(30, None));
    for i in 0..10 {
        h.packet(IMSI_A, udp(1000), 0, i * 1_000);
    }
    assert_eq!(h.classifier.fed, 3);
    h.flush();
    assert_eq!(h.expired[0].protocol, AppProtocol { master: 7, app: 3 });
    assert_eq!(h.expired[0].packets, 10);
}

#[test]
fn steady_flow_keeps_one_deadline() {
    let mut h = Harness::new(timeouts(10, None));
    for i in 0..10_000 {
        h.packet(IMSI_A, udp(1000), 0, i * 10_000);
    }
    assert!(h.expired.is_empty());
    assert_eq!(h.table.queued_deadlines(), 1);
}

#[test]
fn reused_slot_ignores_stale_deadline() {
    let mut h = Harness::new(timeouts(10, None));
    // The RST pushes a second, earlier entry; the idle entry at 10 s stays queued.
    h.packet(IMSI_A, uplink_tcp(), RST, 0);
    h.expire(2 * SECOND);
    assert_eq!(h.expired.len(), 1);
    // The new flow takes the freed slot. The stale 10 s entry must not end it.
    h.packet(IMSI_A, udp(1000), 0, 9 * SECOND);
    h.expire(11 * SECOND);
    assert_eq!(h.expired.len(), 1);
    assert_eq!(h.table.len(), 1);
    h.expire(19 * SECOND + 1);
    assert_eq!(h.expired.len(), 2);
    assert_eq!(h.expired[1].reason, ExpiryReason::Idle);
}

#[test]
fn late_packet_joins_without_moving_clock() {
    let mut h = Harness::new(timeouts(10, None));
    h.packet(IMSI_A, udp(1000), 0, 5 * SECOND);
    h.packet(IMSI_A, udp(1000), 0, 4 * SECOND);
    assert_eq!(h.table.clock_us(), 5 * SECOND);
    h.flush();
    assert_eq!(h.expired[0].first_us, 4 * SECOND);
    assert_eq!(h.expired[0].last_us, 5 * SECOND);
}
