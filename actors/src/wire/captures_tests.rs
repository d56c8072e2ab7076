//! Decoding of real captures from `tests/data/captures`, with expected values confirmed with
//! TShark 4.0.17 (the command is noted beside each check, and `F` is the capture file), and
//! of the synthetic captures in `tests/data/gtpgen` against their generator's truth files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::*;

/// One captured frame.
struct Frame {
    ts_us: u64,
    data: Vec<u8>,
}

/// Reads every frame of a capture under `tests/data` with libpcap (pcap or pcapng).
fn read_capture(relative: &str) -> (LinkType, Vec<Frame>) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", relative].iter().collect();
    let mut capture = pcap::Capture::from_file(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let link = LinkType::from_dlt(capture.get_datalink().0).expect("supported link type");
    let mut frames = Vec::new();
    while let Ok(packet) = capture.next_packet() {
        // One fuzzed capture has a bogus timestamp, so the conversion must not overflow.
        let seconds = u64::try_from(packet.header.ts.tv_sec).unwrap_or(0);
        let ts_us =
            seconds.saturating_mul(1_000_000).saturating_add(u64::try_from(packet.header.ts.tv_usec).unwrap_or(0));
        frames.push(Frame { ts_us, data: packet.data.to_vec() });
    }
    (link, frames)
}

/// Decodes frame `number` (1-based, as TShark counts) with a fresh decoder and runs `check`
/// on the first GTP-C message in it.
fn control_message(frames: &[Frame], link: LinkType, number: usize, check: impl FnOnce(&ControlMessage<'_>)) {
    let mut decoder = Decoder::new();
    let frame = &frames[number - 1];
    let decoded = decoder.decode(link, frame.ts_us, &frame.data).unwrap();
    let Decoded::Gtp(GtpFrame { pdu: GtpPdu::Control { bytes, .. }, .. }) = decoded else {
        panic!("frame {number} is not GTP-C: {decoded:?}");
    };
    let message = parse_control(bytes).next().unwrap().unwrap();
    check(&message);
}

/// Counts of what a whole capture decodes to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    gpdu: usize,
    other_user: usize,
    control: usize,
    not_gtp: usize,
    held: usize,
    errors: Vec<(usize, DecodeError)>,
}

fn tally(relative: &str) -> (Tally, ReassemblyStats) {
    let (link, frames) = read_capture(relative);
    let mut decoder = Decoder::new();
    let mut tally = Tally::default();
    for (index, frame) in frames.iter().enumerate() {
        match decoder.decode(link, frame.ts_us, &frame.data) {
            Ok(Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(pdu), .. })) if pdu.message_type == 255 => tally.gpdu += 1,
            Ok(Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(_), .. })) => tally.other_user += 1,
            Ok(Decoded::Gtp(GtpFrame { pdu: GtpPdu::Control { .. }, .. })) => tally.control += 1,
            Ok(Decoded::NotGtp) => tally.not_gtp += 1,
            Ok(Decoded::FragmentHeld) => tally.held += 1,
            Err(error) => tally.errors.push((index + 1, error)),
        }
    }
    (tally, decoder.reassembly_stats())
}

const ROAMING: &str = "captures/magma/inbound_roaming_01_210505_130828-1.pcapng";

#[test]
fn roaming_capture_counts() {
    let (tally, _) = tally(ROAMING);
    // tshark -r F -Y 'gtp.message==0xff' | wc -l  -> 40
    assert_eq!(tally.gpdu, 40);
    // tshark -r F -Y 'gtp && gtp.message!=0xff' -T fields -e gtp.message -> 4 x 0x01 (Echo Request)
    assert_eq!(tally.other_user, 4);
    // tshark -r F -Y gtpv2 | wc -l -> 4
    assert_eq!(tally.control, 4);
    assert_eq!(tally.errors, []);
    // capinfos -c F -> 240 frames
    assert_eq!(tally.gpdu + tally.other_user + tally.control + tally.not_gtp, 240);
}

#[test]
fn roaming_create_session_request() {
    let (link, frames) = read_capture(ROAMING);
    // tshark -r F -Y 'frame.number==39' -V -O gtpv2
    control_message(&frames, link, 39, |message| {
        assert_eq!(message.message_type, 32); // Create Session Request
        assert_eq!(message.teid, Some(0));
        assert_eq!(message.sequence, 0x0b);
        assert_eq!(message.imsi.unwrap().as_str(), "001020000000064");
        // Sender F-TEID: S5/S8 SGW GTP-C (6), TEID 0x1, 172.16.1.12.
        assert_eq!(message.fteids[0].interface, FteidInterface::S5S8SgwC);
        assert_eq!(message.fteids[0].teid, 1);
        assert_eq!(message.fteids[0].ipv4, Some(Ipv4Addr::new(172, 16, 1, 12)));
        // PAA: IPv4 0.0.0.0, a request for dynamic allocation.
        assert_eq!(message.ue_address, Some(UeAddress { present: true, ..UeAddress::default() }));
        // Bearer Context: EBI 5, S5/S8 SGW GTP-U (4), TEID 0x1, 172.16.20.4.
        assert_eq!(message.bearers.len(), 1);
        let bearer = &message.bearers[0];
        assert_eq!(bearer.ebi, Some(5));
        assert_eq!(bearer.fteids[0].interface, FteidInterface::S5S8SgwU);
        assert_eq!(bearer.fteids[0].teid, 1);
        assert_eq!(bearer.fteids[0].ipv4, Some(Ipv4Addr::new(172, 16, 20, 4)));
    });
}

#[test]
fn roaming_create_session_response() {
    let (link, frames) = read_capture(ROAMING);
    // tshark -r F -Y 'frame.number==40' -V -O gtpv2
    control_message(&frames, link, 40, |message| {
        assert_eq!(message.message_type, 33); // Create Session Response
        assert_eq!(message.teid, Some(1));
        assert_eq!(message.sequence, 0x0b);
        assert_eq!(message.cause, Some(16)); // Request accepted
                                             // F-TEID instance 1: S5/S8 PGW GTP-C (7), TEID 0x13, 172.16.1.2.
        let pgw_control = message.fteids[0];
        assert_eq!((pgw_control.instance, pgw_control.interface), (1, FteidInterface::S5S8PgwC));
        assert_eq!((pgw_control.teid, pgw_control.ipv4), (0x13, Some(Ipv4Addr::new(172, 16, 1, 2))));
        assert_eq!(message.ue_address.unwrap().ipv4, Some(Ipv4Addr::new(192, 168, 126, 1)));
        // Bearer Context: EBI 5, Cause 16, F-TEID instance 2: S5/S8 PGW GTP-U (5), 0x16000000.
        let bearer = &message.bearers[0];
        assert_eq!((bearer.ebi, bearer.cause), (Some(5), Some(16)));
        let pgw_user = bearer.fteids[0];
        assert_eq!((pgw_user.instance, pgw_user.interface), (2, FteidInterface::S5S8PgwU));
        assert_eq!((pgw_user.teid, pgw_user.ipv4), (0x1600_0000, Some(Ipv4Addr::new(172, 16, 20, 150))));
        assert!(bearer.charging_id.is_some());
    });
}

#[test]
fn roaming_gpdu_inner_flow() {
    let (link, frames) = read_capture(ROAMING);
    let frame = &frames[47 - 1];
    let mut decoder = Decoder::new();
    let Decoded::Gtp(gtp) = decoder.decode(link, frame.ts_us, &frame.data).unwrap() else {
        panic!("frame 47 is not GTP")
    };
    // tshark -r F -Y 'frame.number==47' -T fields -e gtp.teid -e ip.src -e ip.dst -e udp.srcport
    //   -e udp.dstport -e ip.len -> 0x16000000, 172.16.20.4,192.168.126.1, 172.16.20.150,172.16.20.111,
    //   2152,17160, 2152,19160, 1036,1000
    assert_eq!(gtp.outer.src, IpAddr::V4(Ipv4Addr::new(172, 16, 20, 4)));
    assert_eq!(gtp.outer.dst, IpAddr::V4(Ipv4Addr::new(172, 16, 20, 150)));
    let GtpPdu::User(pdu) = gtp.pdu else { panic!("frame 47 is not GTP-U") };
    assert_eq!(pdu.teid, 0x1600_0000);
    assert_eq!(pdu.flags, 0x30);
    let inner = inner_packet(pdu.payload).unwrap();
    assert_eq!(inner.key.protocol, 17);
    assert_eq!(inner.key.src, IpAddr::V4(Ipv4Addr::new(192, 168, 126, 1)));
    assert_eq!(inner.key.src_port, 17160);
    assert_eq!(inner.key.dst, IpAddr::V4(Ipv4Addr::new(172, 16, 20, 111)));
    assert_eq!(inner.key.dst_port, 19160);
    assert_eq!(inner.ip_len, 1000);
}

#[test]
fn fragmented_gn_capture_reassembles() {
    let (tally, stats) = tally("captures/zeek/gtp1_gn_normal_incl_fragmentation.pcap");
    // tshark -r F -Y 'gtp.message==0xff' | wc -l -> 68 (TShark reassembles by default)
    assert_eq!(tally.gpdu, 68);
    // tshark -r F -Y 'ip.fragments' | wc -l -> 36 datagrams completed in 76 fragment frames
    // (-Y 'ip.flags.mf==1 || ip.frag_offset>0'), so 40 fragment frames are held.
    assert_eq!(stats.datagrams_completed, 36);
    assert_eq!(tally.held, 40);
    assert_eq!(tally.errors, []);
    // tshark -r F -Y 'ip.flags.mf==1 || ip.frag_offset>0' -T fields -e ip.id: IDs 0x01ae,
    // 0x7495, 0x766b and 0xed7d have a first fragment and nothing else, so they stay in flight.
    assert_eq!(stats.datagrams_in_flight, 4);
}

#[test]
fn short_and_non_ip_payloads() {
    let (tally, _) = tally("captures/zeek/gtp9_unknown_or_too_short_payload.pcap");
    // tshark -r F -T fields -e frame.number -e gtp.message -e _ws.col.Info lists 12 T-PDUs.
    // Frame 12 ("T-PDU", 1343 bytes) has no IP packet inside. Seven frames are first fragments.
    assert_eq!(tally.gpdu, 11);
    assert_eq!(tally.errors, [(12, DecodeError::GpduNotIp)]);
    assert_eq!(tally.held, 7);
}

#[test]
fn truncated_inner_keeps_header_length() {
    let (link, frames) = read_capture("captures/zeek/gtp9_unknown_or_too_short_payload.pcap");
    let frame = &frames[11 - 1];
    let mut decoder = Decoder::new();
    let Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(pdu), .. }) = decoder.decode(link, frame.ts_us, &frame.data).unwrap()
    else {
        panic!("frame 11 is not GTP-U");
    };
    // tshark -r F -Y 'frame.number==11' -T fields -e ip.len -> 208,1480, with the expert note
    // "IPv4 total length exceeds packet length (172 bytes)".
    assert_eq!(inner_packet(pdu.payload).unwrap().ip_len, 1480);
    assert_eq!(pdu.payload.len(), 172);
}

#[test]
fn create_pdp_context_request_v1() {
    let (link, frames) = read_capture("captures/zeek/gtp_create_pdp_ctx.pcap");
    // tshark -r F -Y 'frame.number==2' -V
    control_message(&frames, link, 2, |message| {
        assert_eq!(message.version, Some(GtpVersion::V1));
        assert_eq!(message.message_type, 16);
        assert_eq!(message.sequence, 0x130b);
        assert_eq!(message.imsi.unwrap().as_str(), "460004100000101");
        let (plmn, lac, rac) = message.rai.unwrap();
        assert_eq!((plmn.mcc, plmn.mnc, lac, rac), (460, 6, 65534, 255));
        assert_eq!(message.recovery, Some(176));
        assert_eq!(message.teid_data_i, Some(0x32f0_2bf9));
        assert_eq!(message.teid_control, Some(0x32f0_2bf9));
        assert_eq!(message.nsapi, Some(5));
        // End user address (IETF/IPv4) with no address: dynamic allocation requested.
        assert_eq!(message.ue_address, Some(UeAddress { present: true, ..UeAddress::default() }));
        assert_eq!(message.apn, Some(b"\x06eetest".as_slice()));
        let sgsn = IpAddr::V4(Ipv4Addr::new(192, 169, 100, 1));
        assert_eq!(message.gsn_addresses.as_slice(), [sgsn, sgsn]);
        assert_eq!(message.msisdn.unwrap().as_str(), "8615221000101");
        assert_eq!(message.rat, Some(2)); // GERAN
        assert_eq!(message.anomalies, ControlAnomalies::default());
    });
}

#[test]
fn create_pdp_context_response_v1() {
    let (link, frames) = read_capture("captures/zeek/gtp_create_pdp_ctx.pcap");
    // tshark -r F -Y 'frame.number==3' -V
    control_message(&frames, link, 3, |message| {
        assert_eq!(message.message_type, 17);
        assert_eq!(message.teid, Some(0x32f0_2bf9));
        assert_eq!(message.cause, Some(128)); // Request accepted
        assert_eq!(message.recovery, Some(24));
        assert_eq!(message.teid_data_i, Some(0x1000_0085));
        assert_eq!(message.teid_control, Some(0x1000_0080));
        assert_eq!(message.charging_id, Some(0x0623_a7c9));
        assert_eq!(message.ue_address.unwrap().ipv4, Some(Ipv4Addr::new(192, 168, 252, 130)));
        let control = IpAddr::V4(Ipv4Addr::new(10, 100, 200, 34));
        let user = IpAddr::V4(Ipv4Addr::new(10, 100, 200, 49));
        assert_eq!(message.gsn_addresses.as_slice(), [control, user]);
        assert_eq!(message.anomalies, ControlAnomalies::default());
    });
}

#[test]
fn dns_on_port_2152_is_not_gtp() {
    // tshark -r F -T fields -e udp.srcport -e udp.dstport -e dns.qry.name
    //   -> 2152, 53, abcd.efg.hijklm.nm (VLAN 454)
    let (tally, _) = tally("captures/zeek/gtp3_false_gtp.pcap");
    assert_eq!(tally, Tally { not_gtp: 1, ..Tally::default() });
}

#[test]
fn piggybacked_create_session_response() {
    let (link, frames) = read_capture("captures/pcapplusplus/dat2pcap/gtpv2-with-piggyback.pcap");
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(link, frames[0].ts_us, &frames[0].data).unwrap();
    let Decoded::Gtp(GtpFrame { pdu: GtpPdu::Control { version, bytes }, .. }) = decoded else { panic!("not GTP-C") };
    assert_eq!(version, GtpVersion::V2);
    let messages: Vec<_> = parse_control(bytes).map(Result::unwrap).collect();
    // tshark -r F -V: Echo Request (P=1, sequence 0x003039, Recovery 17), then Create Session
    // Response (TEID 0x00015666, sequence 0x010932, IMSI 337839439415386).
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].message_type, messages[0].sequence), (1, 0x3039));
    assert_eq!(messages[0].recovery, Some(17));
    assert_eq!(messages[1].message_type, 33);
    assert_eq!((messages[1].teid, messages[1].sequence), (Some(0x15666), 0x010932));
    assert_eq!(messages[1].imsi.unwrap().as_str(), "337839439415386");
}

#[test]
fn linux_sll_create_session_request() {
    let (link, frames) = read_capture("captures/magma/nsa_connection.pcap");
    assert_eq!(link, LinkType::LinuxSll);
    // tshark -r F -Y 'frame.number==32' -V
    control_message(&frames, link, 32, |message| {
        assert_eq!((message.message_type, message.sequence), (32, 0xa484));
        assert_eq!(message.imsi.unwrap().as_str(), "222010100001140");
        let plmn = Plmn { mcc: 222, mnc: 1, mnc_three_digits: false };
        let uli = message.uli.unwrap();
        assert_eq!(uli.tai, Some((plmn, 1)));
        assert_eq!(uli.ecgi, Some((plmn, 917_760)));
        assert_eq!(message.rat, Some(6)); // EUTRAN
        assert_eq!(message.recovery, Some(0));
        assert_eq!(message.ue_address, Some(UeAddress { present: true, ..UeAddress::default() }));
        // -e gtpv2.f_teid_interface_type -e gtpv2.f_teid_gre_key -e gtpv2.f_teid_ipv4
        //   -> 10, 0x0002a100, 192.168.61.149
        assert_eq!(message.fteids[0].interface, FteidInterface::S11Mme);
        assert_eq!(message.fteids[0].teid, 0x0002_a100);
        assert_eq!(message.fteids[0].ipv4, Some(Ipv4Addr::new(192, 168, 61, 149)));
        assert_eq!(message.bearers[0].ebi, Some(5));
    });
    // Frame 39, Modify Bearer Request: -> 10,0 and 0x00000000,0xca6fe0dd with one IPv4
    // address, 192.168.18.199, which belongs to the S1-U eNodeB F-TEID in the bearer.
    control_message(&frames, link, 39, |message| {
        assert_eq!(message.message_type, 34);
        let enodeb = message.bearers[0].fteids[0];
        assert_eq!(enodeb.interface, FteidInterface::S1uEnodeb);
        assert_eq!(enodeb.teid, 0xca6f_e0dd);
        assert_eq!(enodeb.ipv4, Some(Ipv4Addr::new(192, 168, 18, 199)));
    });
}

#[test]
fn outer_ipv6_with_vlan() {
    let (link, frames) = read_capture("captures/arkime/ipv6-gtp6.pcap");
    let mut decoder = Decoder::new();
    let Decoded::Gtp(gtp) = decoder.decode(link, frames[0].ts_us, &frames[0].data).unwrap() else { panic!("not GTP") };
    // tshark -r F -T fields -e vlan.id -e ipv6.src -e ipv6.dst -e udp.srcport -e udp.dstport -e gtp.teid
    //   -> 2048, 1111:2222:3333:4444:5555:6666:0:1,1111:2222:3333:4444:5555:7777::,
    //      1111:2222:3333:4444:5555:6666::,1111:2222:3333:4444:5555:8888:a8ac:7bc0,
    //      62301,53, 2152,57030, 0x022be642
    let outer_src: Ipv6Addr = "1111:2222:3333:4444:5555:6666:0:1".parse().unwrap();
    assert_eq!(gtp.outer.src, IpAddr::V6(outer_src));
    assert_eq!((gtp.outer.src_port, gtp.outer.dst_port), (62301, 2152));
    let GtpPdu::User(pdu) = gtp.pdu else { panic!("not GTP-U") };
    assert_eq!(pdu.teid, 0x022b_e642);
    let inner = inner_packet(pdu.payload).unwrap();
    assert_eq!(inner.key.src, "1111:2222:3333:4444:5555:7777::".parse::<IpAddr>().unwrap());
    assert_eq!(inner.key.dst, "1111:2222:3333:4444:5555:8888:a8ac:7bc0".parse::<IpAddr>().unwrap());
    assert_eq!((inner.key.protocol, inner.key.src_port, inner.key.dst_port), (17, 53, 57030));
}

#[test]
fn qinq_inner_ipv6() {
    let (link, frames) = read_capture("captures/ndpi/ipv6_in_gtp.pcap");
    let mut decoder = Decoder::new();
    let mut keys = Vec::new();
    for frame in &frames {
        let Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(pdu), .. }) =
            decoder.decode(link, frame.ts_us, &frame.data).unwrap()
        else {
            panic!("not GTP-U");
        };
        keys.push((pdu.teid, inner_packet(pdu.payload).unwrap()));
    }
    // tshark -r F -T fields -e vlan.id -e gtp.teid -e ipv6.src -e ipv6.nxt -e udp.srcport -e udp.dstport
    //   -e ipv6.plen -> 3233,5  0x12808fb8  2607:fc20:4052:39e:490a:ea4d:17fe:e09c  17  2152,49120
    //   2152,25658  52; then 3231,2  0x074c15b0  2a01:4c8:c014:144e:1:2:945b:6761  50 (ESP)  68
    assert_eq!(keys[0].0, 0x1280_8fb8);
    assert_eq!(keys[0].1.key.src, "2607:fc20:4052:39e:490a:ea4d:17fe:e09c".parse::<IpAddr>().unwrap());
    assert_eq!((keys[0].1.key.protocol, keys[0].1.key.src_port, keys[0].1.key.dst_port), (17, 49120, 25658));
    assert_eq!(keys[0].1.ip_len, 40 + 52);
    assert_eq!(keys[1].0, 0x074c_15b0);
    assert_eq!((keys[1].1.key.protocol, keys[1].1.key.src_port), (50, 0));
    assert_eq!(keys[1].1.ip_len, 40 + 68);
}

#[test]
fn npdu_sequence_and_extension() {
    let (tally_result, _) = tally("captures/pcapplusplus/dat2pcap/gtp-u-ipv6-edited.pcap");
    assert_eq!(tally_result.gpdu, 1);
    let (link, frames) = read_capture("captures/pcapplusplus/dat2pcap/gtp-u-ipv6-edited.pcap");
    let mut decoder = Decoder::new();
    let Decoded::Gtp(GtpFrame { pdu: GtpPdu::User(pdu), .. }) = decoder.decode(link, 0, &frames[0].data).unwrap()
    else {
        panic!("not GTP-U");
    };
    // tshark -r F -T fields -e gtp.flags -e gtp.teid -e gtp.seq_number -e gtp.npdu_number
    //   -e gtp.ext_hdr.next -> 0x37, 0x00002710, 0x4e20, 0x64, 0xc0,0x00
    assert_eq!(pdu.flags, 0x37);
    assert_eq!(pdu.teid, 0x2710);
    assert_eq!(pdu.sequence, Some(0x4e20));
    assert_eq!(pdu.npdu, Some(0x64));
    assert_eq!(pdu.extension_types.as_slice(), [ExtensionType::PdcpPduNumber]);
    // -e ipv6.src -> 2001:507:0:1:200:8600:0:2
    let inner = inner_packet(pdu.payload).unwrap();
    assert_eq!(inner.key.src, "2001:507:0:1:200:8600:0:2".parse::<IpAddr>().unwrap());
}

/// Counts GTPv1-C and GTPv2-C messages over a capture (piggybacked messages count separately).
fn control_versions(relative: &str) -> (usize, usize) {
    let (link, frames) = read_capture(relative);
    let mut decoder = Decoder::new();
    let (mut v1, mut v2) = (0, 0);
    for frame in &frames {
        let Ok(Decoded::Gtp(GtpFrame { pdu: GtpPdu::Control { bytes, .. }, .. })) =
            decoder.decode(link, frame.ts_us, &frame.data)
        else {
            continue;
        };
        for message in parse_control(bytes) {
            match message.map(|message| message.version) {
                Ok(Some(GtpVersion::V1)) => v1 += 1,
                Ok(Some(GtpVersion::V2)) => v2 += 1,
                other => panic!("{relative}: control message failed: {other:?}"),
            }
        }
    }
    (v1, v2)
}

#[test]
fn synthetic_captures_match_truth() {
    // (file, frames_total, gtpu_gpdu, gtpu - gtpu_gpdu, gtpc_total, gtpv1c, gtpv2c) from the
    // "counts" of each *.truth.json. For small.pcap TShark agrees: -Y 'gtp.message==0xff'
    // -> 2262 and -Y gtpv2 -> 52.
    let cases = [
        ("gtpgen/small.pcap", 2378, 2262, 8, 108, 56, 52),
        ("gtpgen/vlan.pcap", 6436, 6170, 8, 258, 68, 190),
        ("gtpgen/ipv6.pcap", 4847, 4541, 8, 298, 156, 142),
    ];
    for (file, frames, gpdu, other_user, control, v1, v2) in cases {
        let (tally, _) = tally(file);
        assert_eq!(tally.gpdu, gpdu, "{file}");
        assert_eq!(tally.other_user, other_user, "{file}");
        assert_eq!(tally.control, control, "{file}");
        assert_eq!(tally.errors, [], "{file}");
        assert_eq!(tally.gpdu + tally.other_user + tally.control + tally.not_gtp + tally.held, frames, "{file}");
        assert_eq!(control_versions(file), (v1, v2), "{file}");
    }
}

#[test]
fn every_capture_decodes_without_panic() {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", "captures"].iter().collect();
    let mut files = Vec::new();
    for directory in std::fs::read_dir(&root).unwrap().flatten() {
        for entry in std::fs::read_dir(directory.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                files.push(format!("captures/{}/{name}", directory.file_name().to_string_lossy()));
            }
        }
    }
    assert!(files.len() > 30, "captures found: {files:?}");
    for file in files {
        let (link, frames) = read_capture(&file);
        let mut decoder = Decoder::new();
        for frame in &frames {
            if let Ok(Decoded::Gtp(gtp)) = decoder.decode(link, frame.ts_us, &frame.data) {
                match gtp.pdu {
                    GtpPdu::User(pdu) if pdu.message_type == 255 => drop(inner_packet(pdu.payload)),
                    GtpPdu::User(_) => {}
                    GtpPdu::Control { bytes, .. } => parse_control(bytes).for_each(drop),
                }
            }
        }
    }
}
