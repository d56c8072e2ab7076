//! Throughput of the flow table and of the aggregation buckets, with a classifier that
//! does no work, so the numbers are the table's own cost.
//!
//! Run with `cargo bench -p imsitrace-actors --bench tables`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use imsitrace::bucket::Buckets;
use imsitrace::flow::classify::{AppProtocol, Classify};
use imsitrace::flow::{ExpiredFlow, FlowTable, FlowTimeouts};
use imsitrace::wire::control::Digits;
use imsitrace::wire::{FlowKey, InnerPacket};

/// Packets per measured iteration.
const PACKETS: u64 = 10_000;
/// Live flows in the update benchmark.
const FLOWS: u64 = 10_000;

/// Classifies nothing and finishes at once.
struct NoClassifier;

impl Classify for NoClassifier {
    type State = ();

    fn start(&mut self) {}

    fn feed(&mut self, _state: &mut (), _ip_packet: &[u8], _ts_us: u64) -> bool {
        true
    }

    fn finish(&mut self, _state: ()) -> AppProtocol {
        AppProtocol::default()
    }

    fn name(&self, _protocol: AppProtocol) -> &str {
        "Unknown"
    }
}

fn imsi(index: u64) -> Digits {
    let text = format!("00101{:010}", index);
    Digits::from_ascii(text.as_bytes()).expect("digits")
}

/// UDP from a UE address to 192.0.2.1:443; `index` picks the source port and address.
fn packet(index: u64) -> InnerPacket {
    let key = FlowKey {
        protocol: 17,
        src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (index >> 16) as u32)),
        src_port: index as u16,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst_port: 443,
    };
    InnerPacket {
        key,
        ip_len: 1200,
        tcp_flags: 0,
    }
}

fn timeouts() -> FlowTimeouts {
    FlowTimeouts {
        idle_us: 1_000_000,
        active_us: Some(60_000_000),
        close_linger_us: 100_000,
    }
}

/// Every packet starts a new flow, 1 ms of packet time after the previous one. Flows
/// expire after 1 s, so the table stays at about 1000 flows and each packet costs one
/// insert and one expiry.
fn bench_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(PACKETS));
    let subscriber = imsi(1);
    let mut table = FlowTable::new(timeouts());
    let mut classifier = NoClassifier;
    let mut sequence = 0u64;
    let mut sink = |flow: ExpiredFlow| {
        black_box(flow);
    };
    group.bench_function("insert_and_expire", |b| {
        b.iter(|| {
            for _ in 0..PACKETS {
                sequence += 1;
                let inner = packet(sequence);
                table.packet(
                    &mut classifier,
                    subscriber,
                    &inner,
                    &[],
                    sequence * 1_000,
                    &mut sink,
                );
            }
        })
    });
    group.finish();
}

/// Packets round-robin over `FLOWS` live flows, 1 µs of packet time apart.
fn bench_update(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(PACKETS));
    let subscriber = imsi(1);
    let packets: Vec<InnerPacket> = (0..FLOWS).map(packet).collect();
    let mut table = FlowTable::new(timeouts());
    let mut classifier = NoClassifier;
    let mut now_us = 0u64;
    let mut sink = |flow: ExpiredFlow| {
        black_box(flow);
    };
    group.bench_function("update", |b| {
        b.iter(|| {
            for inner in packets.iter().cycle().take(PACKETS as usize) {
                now_us += 1;
                table.packet(&mut classifier, subscriber, inner, &[], now_us, &mut sink);
            }
        })
    });
    group.finish();
}

/// Expires `FLOWS` idle flows in one call.
fn bench_expire(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(FLOWS));
    let subscriber = imsi(1);
    let mut classifier = NoClassifier;
    group.bench_function("expire_idle", |b| {
        b.iter_batched_ref(
            || {
                let mut table = FlowTable::with_capacity(timeouts(), FLOWS as usize);
                for index in 0..FLOWS {
                    table.packet(
                        &mut NoClassifier,
                        subscriber,
                        &packet(index),
                        &[],
                        index,
                        &mut |_| {},
                    );
                }
                table
            },
            |table| {
                let mut expired = 0u64;
                table.expire(10_000_000_000, &mut classifier, &mut |_| expired += 1);
                assert_eq!(expired, FLOWS);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Adds expired flows of 1000 subscribers and 4 protocols, draining every 10 000 flows.
fn bench_bucket_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("buckets");
    group.throughput(Throughput::Elements(PACKETS));
    let flows: Vec<ExpiredFlow> = (0..PACKETS)
        .map(|index| ExpiredFlow {
            imsi: imsi(index % 1000),
            key: packet(index).key,
            protocol: AppProtocol {
                master: (index % 4) as u16,
                app: 0,
            },
            first_us: 1_374_938_100_000_000 + index,
            last_us: 1_374_938_100_000_000 + index * 1000,
            packets: 10,
            bytes: 12_000,
            reason: imsitrace::flow::ExpiryReason::Idle,
        })
        .collect();
    let mut buckets = Buckets::new();
    group.bench_function("add", |b| {
        b.iter(|| {
            for flow in &flows {
                buckets.add(flow);
            }
            black_box(buckets.drain_deltas());
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_insert,
    bench_update,
    bench_expire,
    bench_bucket_add
);
criterion_main!(benches);
