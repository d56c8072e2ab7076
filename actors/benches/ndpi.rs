//! Cost of classifying flows with nDPI, on the flows of `tests/data/gtpgen/small.pcap`.
//!
//! Run with `cargo bench -p imsitrace-actors --bench ndpi`. Each benchmark processes all flows
//! of the capture once per iteration and reports throughput in flows per second.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use imsitrace::flow::classify::Classify;
use imsitrace::ndpi::Classifier;
use serde_json::Value;

/// Inner IP packets of one flow with their timestamps in microseconds.
type FlowPackets = Vec<(u64, Vec<u8>)>;

/// Reads the flows listed in small.truth.json and strips each of their frames down to the
/// inner IP packet (Ethernet, IPv4, UDP and GTP-U headers removed).
fn load_flows() -> Vec<FlowPackets> {
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/gtpgen");
    let pcap = std::fs::read(data_dir.join("small.pcap")).expect("small.pcap");
    let frames = read_pcap(&pcap);
    let truth_text = std::fs::read_to_string(data_dir.join("small.truth.json")).expect("truth");
    let truth: Value = serde_json::from_str(&truth_text).expect("truth JSON");

    let flows = truth["flows"].as_array().expect("flows");
    flows
        .iter()
        .map(|flow| {
            let indexes = flow["frames"].as_array().expect("frames");
            indexes
                .iter()
                .map(|index| {
                    let (ts_us, frame) = &frames[index.as_u64().expect("index") as usize];
                    (*ts_us, gtpu_inner(frame).to_vec())
                })
                .collect()
        })
        .collect()
}

/// Splits a little-endian, microsecond pcap file into (timestamp in µs, frame) pairs.
fn read_pcap(bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let u32_at =
        |offset: usize| u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"));
    let mut frames = Vec::new();
    let mut offset = 24;
    while offset + 16 <= bytes.len() {
        let ts_us = u64::from(u32_at(offset)) * 1_000_000 + u64::from(u32_at(offset + 4));
        let captured = u32_at(offset + 8) as usize;
        frames.push((ts_us, &bytes[offset + 16..offset + 16 + captured]));
        offset += 16 + captured;
    }
    frames
}

/// Returns the inner IP packet of an Ethernet/IPv4/UDP/GTP-U G-PDU frame.
fn gtpu_inner(frame: &[u8]) -> &[u8] {
    let ip = &frame[14..];
    let gtp = &ip[usize::from(ip[0] & 0x0f) * 4 + 8..];
    if gtp[0] & 0x07 == 0 {
        return &gtp[8..];
    }
    let mut next_extension = gtp[11];
    let mut offset = 12;
    while next_extension != 0 {
        let length = usize::from(gtp[offset]) * 4;
        next_extension = gtp[offset + length - 1];
        offset += length;
    }
    &gtp[offset..]
}

/// Classifies each flow from its first `max_packets` packets.
fn classify_flows(classifier: &mut Classifier, flows: &[FlowPackets], max_packets: usize) {
    for packets in flows {
        let mut state = classifier.start();
        for (ts_us, packet) in packets.iter().take(max_packets) {
            if classifier.feed(&mut state, packet, *ts_us) {
                break;
            }
        }
        black_box(classifier.finish(state));
    }
}

fn bench_classifier(c: &mut Criterion) {
    let flows = load_flows();
    let mut classifier = Classifier::new().expect("nDPI module");
    let mut group = c.benchmark_group("ndpi");
    group.throughput(Throughput::Elements(flows.len() as u64));

    // A new flow: take a pooled flow struct, dissect one packet, give up, release the struct.
    group.bench_function("first_packet_of_each_flow", |b| {
        b.iter(|| classify_flows(&mut classifier, &flows, 1));
    });
    // Whole flows: every packet until detection completes, as the flow table feeds them.
    group.bench_function("every_packet_of_each_flow", |b| {
        b.iter(|| classify_flows(&mut classifier, &flows, usize::MAX));
    });
    group.finish();
}

criterion_group!(benches, bench_classifier);
criterion_main!(benches);
