//! Decoder benchmarks on frames of the synthetic capture `tests/data/gtpgen/small.pcap`:
//! a G-PDU (decode plus inner flow key), a GTPv2 Create Session Request and a GTPv1 Create
//! PDP Context Request (decode plus IE walk).
//!
//! Run with `cargo bench -p imsitrace-actors --bench decoder`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use imsitrace::wire::{inner_packet, parse_control, Decoded, Decoder, GtpPdu, LinkType};

/// The first frame of each kind in the capture.
struct Samples {
    link: LinkType,
    gpdu: Vec<u8>,
    create_session_request: Vec<u8>,
    create_pdp_context_request: Vec<u8>,
}

/// GTPv2 Create Session Request and GTPv1 Create PDP Context Request message types.
const CREATE_SESSION_REQUEST: u8 = 32;
const CREATE_PDP_CONTEXT_REQUEST: u8 = 16;

/// Returns (is a G-PDU, GTP-C message type) of a frame.
fn classify(decoder: &mut Decoder, link: LinkType, frame: &[u8]) -> (bool, Option<u8>) {
    match decoder.decode(link, 0, frame) {
        Ok(Decoded::Gtp(gtp)) => match gtp.pdu {
            GtpPdu::User(pdu) => (pdu.message_type == 255, None),
            GtpPdu::Control { bytes, .. } => (false, bytes.get(1).copied()),
        },
        _ => (false, None),
    }
}

fn load_samples() -> Samples {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", "gtpgen", "small.pcap"].iter().collect();
    let mut capture = pcap::Capture::from_file(&path).expect("tests/data/gtpgen/small.pcap");
    let link = LinkType::from_dlt(capture.get_datalink().0).expect("supported link type");
    let mut decoder = Decoder::new();
    let (mut gpdu, mut session, mut pdp) = (None, None, None);
    while let Ok(packet) = capture.next_packet() {
        let frame = packet.data.to_vec();
        match classify(&mut decoder, link, &frame) {
            (true, _) => gpdu = gpdu.or(Some(frame)),
            (false, Some(CREATE_SESSION_REQUEST)) => session = session.or(Some(frame)),
            (false, Some(CREATE_PDP_CONTEXT_REQUEST)) => pdp = pdp.or(Some(frame)),
            _ => {}
        }
    }
    Samples {
        link,
        gpdu: gpdu.expect("a G-PDU"),
        create_session_request: session.expect("a Create Session Request"),
        create_pdp_context_request: pdp.expect("a Create PDP Context Request"),
    }
}

/// Decodes a G-PDU frame and its inner flow key.
fn decode_gpdu(decoder: &mut Decoder, link: LinkType, frame: &[u8]) -> Option<u64> {
    let Ok(Decoded::Gtp(gtp)) = decoder.decode(link, 0, frame) else { return None };
    let GtpPdu::User(pdu) = gtp.pdu else { return None };
    inner_packet(pdu.payload).ok().map(|inner| inner.key.symmetric_hash())
}

/// Decodes a GTP-C frame and every message in it; returns the number of F-TEIDs found.
fn decode_control(decoder: &mut Decoder, link: LinkType, frame: &[u8]) -> usize {
    let Ok(Decoded::Gtp(gtp)) = decoder.decode(link, 0, frame) else { return 0 };
    let GtpPdu::Control { bytes, .. } = gtp.pdu else { return 0 };
    parse_control(bytes)
        .flatten()
        .map(|message| message.fteids.len() + message.bearers.iter().map(|bearer| bearer.fteids.len()).sum::<usize>())
        .sum()
}

fn bench_decoder(c: &mut Criterion) {
    let samples = load_samples();
    let mut decoder = Decoder::new();
    let link = samples.link;
    c.bench_function("gpdu_with_inner_key", |b| b.iter(|| decode_gpdu(&mut decoder, link, black_box(&samples.gpdu))));
    c.bench_function("gtpv2_create_session_request", |b| {
        b.iter(|| decode_control(&mut decoder, link, black_box(&samples.create_session_request)))
    });
    c.bench_function("gtpv1_create_pdp_context_request", |b| {
        b.iter(|| decode_control(&mut decoder, link, black_box(&samples.create_pdp_context_request)))
    });
}

criterion_group!(benches, bench_decoder);
criterion_main!(benches);
