//! Property tests: the wire decoders return (a value or an error) on any input and never panic.
//!
//! Inputs are random bytes, and real frames from `tests/data` with random byte changes and
//! truncations, so the mutations reach deep into valid GTP headers and IEs.

use std::path::PathBuf;
use std::sync::OnceLock;

use imsitrace::wire::{inner_packet, parse_control, Decoded, Decoder, GtpPdu, LinkType};
use proptest::prelude::*;

/// Captures whose frames seed the mutations: GTPv1-C, GTPv2-C (piggybacked too), G-PDUs with
/// extension headers, outer IPv4 fragments, outer IPv6, VLAN stacks and Linux cooked headers.
const SEED_CAPTURES: &[&str] = &[
    "captures/zeek/gtp_create_pdp_ctx.pcap",
    "captures/zeek/gtp1_gn_normal_incl_fragmentation.pcap",
    "captures/zeek/gtp9_unknown_or_too_short_payload.pcap",
    "captures/magma/nsa_connection.pcap",
    "captures/magma/inbound_roaming_01_210505_130828-1.pcapng",
    "captures/pcapplusplus/gtp.pcap",
    "captures/pcapplusplus/gtpv2.pcap",
    "captures/pcapplusplus/dat2pcap/gtpv2-with-piggyback.pcap",
    "captures/pcapplusplus/dat2pcap/gtp-u-2ext.pcap",
    "captures/arkime/ipv6-gtp6.pcap",
    "captures/arkime/gtp-iphone.pcap",
    "captures/ndpi/ipv6_in_gtp.pcap",
    "captures/ndpi/gtp_false_positive.pcapng",
];

/// Frames of the synthetic capture taken as seeds (it holds thousands; the first ones cover
/// GTPv1-C, GTPv2-C and G-PDUs).
const SYNTHETIC_FRAMES: usize = 300;

/// A seed frame and the link type of its capture.
struct Seed {
    link: LinkType,
    frame: Vec<u8>,
}

fn data_path(relative: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", relative].iter().collect()
}

fn read_frames(relative: &str, limit: usize, seeds: &mut Vec<Seed>) {
    let path = data_path(relative);
    let mut capture = pcap::Capture::from_file(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let link = LinkType::from_dlt(capture.get_datalink().0).expect("supported link type");
    let mut count = 0;
    while let Ok(packet) = capture.next_packet() {
        if count == limit {
            break;
        }
        seeds.push(Seed { link, frame: packet.data.to_vec() });
        count += 1;
    }
}

fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Vec::new();
        for capture in SEED_CAPTURES {
            read_frames(capture, usize::MAX, &mut seeds);
        }
        read_frames("gtpgen/small.pcap", SYNTHETIC_FRAMES, &mut seeds);
        seeds
    })
}

/// Decodes `frame` and, when it is GTP, runs the control and inner-packet decoders on it and
/// formats every result, so every field is read.
fn decode_everything(decoder: &mut Decoder, link: LinkType, ts_us: u64, frame: &[u8]) {
    let decoded = decoder.decode(link, ts_us, frame);
    let _ = format!("{decoded:?}");
    let Ok(Decoded::Gtp(gtp)) = decoded else { return };
    match gtp.pdu {
        GtpPdu::User(pdu) => {
            let _ = format!("{:?}", inner_packet(pdu.payload));
        }
        GtpPdu::Control { bytes, .. } => {
            for message in parse_control(bytes) {
                let _ = format!("{message:?}");
            }
        }
    }
}

fn link_type() -> impl Strategy<Value = LinkType> {
    prop_oneof![Just(LinkType::Ethernet), Just(LinkType::LinuxSll), Just(LinkType::LinuxSll2), Just(LinkType::RawIp)]
}

/// A seed frame with up to 8 bytes replaced and then cut to a random length.
fn mutated_frame() -> impl Strategy<Value = (LinkType, Vec<u8>)> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8);
    (any::<prop::sample::Index>(), edits, any::<prop::sample::Index>()).prop_map(|(pick, edits, cut)| {
        let seed = pick.get(seeds());
        let mut frame = seed.frame.clone();
        if !frame.is_empty() {
            for (position, value) in edits {
                *position.get_mut(&mut frame) = value;
            }
            frame.truncate(cut.index(frame.len() + 1));
        }
        (seed.link, frame)
    })
}

/// Cases per property: 2000, or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn decode_random_bytes(link in link_type(), frame in prop::collection::vec(any::<u8>(), 0..1600)) {
        decode_everything(&mut Decoder::new(), link, 0, &frame);
    }

    #[test]
    fn decode_mutated_real_frames((link, frame) in mutated_frame()) {
        decode_everything(&mut Decoder::new(), link, 0, &frame);
    }

    #[test]
    fn decode_mutated_sequence(frames in prop::collection::vec(mutated_frame(), 1..24)) {
        // One decoder over many frames, so reassembly sees mixed and broken fragments.
        let mut decoder = Decoder::new();
        for (index, (link, frame)) in frames.iter().enumerate() {
            decode_everything(&mut decoder, *link, index as u64 * 1_000_000, frame);
        }
        let stats = decoder.reassembly_stats();
        prop_assert!(stats.datagrams_in_flight <= 64);
    }

    #[test]
    fn parse_control_random_bytes(first in prop_oneof![Just(0x32u8), Just(0x48), Just(0x58), any::<u8>()],
                                  rest in prop::collection::vec(any::<u8>(), 0..600)) {
        // The first octet is biased towards GTPv1 (S set) and GTPv2 (T, and P) headers.
        let mut bytes = vec![first];
        bytes.extend_from_slice(&rest);
        for message in parse_control(&bytes) {
            let _ = format!("{message:?}");
        }
    }

    #[test]
    fn inner_packet_random_bytes(version in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
                                 rest in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut packet = vec![version];
        packet.extend_from_slice(&rest);
        let _ = format!("{:?}", inner_packet(&packet));
    }
}
