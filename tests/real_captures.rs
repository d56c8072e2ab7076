//! End-to-end checks on real public captures (`tests/data/captures`, origins and licences
//! in `tests/data/SOURCES.md`). Expected values were read with TShark 4.0.17, the command
//! given next to each.

mod common;

use std::path::Path;

use common::{data, imsitrace, read_pcap};
use serde_json::Value;

/// Runs `analyze` with the event log and the given tracked IMSI; returns (summary, events).
fn analyze(capture: &str, track: Option<&str>, dir: &Path) -> (Value, Vec<Value>) {
    let input = data(capture);
    let events = dir.join("events.jsonl");
    let pcap_dir = dir.join("pcap");
    let mut args = vec!["analyze", input.to_str().unwrap(), "--json", "--events", events.to_str().unwrap()];
    if let Some(imsi) = track {
        args.extend(["--track", imsi, "--pcap-dir", pcap_dir.to_str().unwrap()]);
    }
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = std::fs::read_to_string(&events).unwrap();
    (summary, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

fn tunnels(event: &Value) -> Vec<(String, u64, String)> {
    let mut list: Vec<(String, u64, String)> = event["tunnels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["addr"].as_str().unwrap().to_string(), t["teid"].as_u64().unwrap(), t["role"].as_str().unwrap().to_string()))
        .collect();
    list.sort();
    list
}

/// S8 roaming attach: GTPv2-C on S5/S8 and the same user traffic on S8-U (attributable
/// through GTP-C) and on S1-U (signalled only in S1AP, so not attributable).
#[test]
fn magma_roaming_attach_and_s8_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = analyze("captures/magma/inbound_roaming_01_210505_130828-1.pcapng", Some("001020000000064"), dir.path());
    assert_eq!(kinds(&events), ["attach", "detach"]);
    // tshark -Y gtpv2 -e e212.imsi -e gtpv2.f_teid_gre_key -e gtpv2.f_teid_ipv4 -e gtpv2.pdn_addr_and_prefix.ipv4:
    // CSReq S5/S8-U SGW F-TEID 0x1 @172.16.20.4, CSResp S5/S8-U PGW 0x16000000 @172.16.20.150, PAA 192.168.126.1.
    let attach = &events[0];
    assert_eq!(attach["imsi"], "001020000000064");
    assert_eq!(attach["ue_ipv4"], "192.168.126.1");
    let expected = vec![("172.16.20.150".to_string(), 0x1600_0000, "uplink".to_string()), ("172.16.20.4".to_string(), 1, "downlink".to_string())];
    assert_eq!(tunnels(attach), expected);
    // tshark -Y 'gtp.message==0xff' -e gtp.teid: 10 G-PDUs on each of 0x16000000, 0x1, 0x80000000, 0x3c000000.
    assert_eq!(summary["capture"]["gtpu_gpdu"], 40);
    assert_eq!(summary["user_plane"]["gpdu_attributed"], 20);
    assert_eq!(summary["unattributed"]["gpdu_unknown_tunnel"], 20);
    // tshark frame numbers: GTPv2-C 39, 40, 207, 208; S8-U G-PDUs with TEID 0x16000000 or 0x1.
    let s8u = [47, 48, 63, 64, 79, 86, 95, 96, 109, 110, 125, 126, 137, 138, 147, 148, 163, 164, 176, 177];
    let mut expected_frames: Vec<usize> = [39, 40].into_iter().chain(s8u).chain([207, 208]).collect();
    expected_frames.sort();
    let written = read_pcap(&dir.path().join("pcap/001020000000064.pcap"));
    assert_eq!(written.frames.len(), expected_frames.len(), "frames in the tracked pcap");
}

/// S11 attach, initial bearer, handover to another eNodeB, detach (Linux cooked capture).
#[test]
fn magma_nsa_handover_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (_, events) = analyze("captures/magma/nsa_connection.pcap", None, dir.path());
    // tshark -Y gtpv2 -e gtpv2.message_type: 32/33, 34/35, 34/35, 36/37.
    assert_eq!(kinds(&events), ["attach", "modify", "move", "detach"]);
    assert!(events.iter().all(|e| e["imsi"] == "222010100001140"));
    assert_eq!(events[0]["ue_ipv4"], "12.1.1.2");
    // S1-U SGW F-TEID 0x2 @192.168.61.133 from the CSResp; eNodeB F-TEIDs from the two MBReqs.
    assert_eq!(tunnels(&events[1]), [("192.168.18.199".into(), 0xca6f_e0dd, "downlink".into()), ("192.168.61.133".into(), 2, "uplink".into())]);
    assert_eq!(tunnels(&events[2]), [("192.168.18.198".into(), 0x3db0_b51d, "downlink".into()), ("192.168.61.133".into(), 2, "uplink".into())]);
    assert_eq!(events[3]["tunnels"].as_array().unwrap().len(), 0);
}

/// GTPv2-C on S5/S8 from a non-standard source port (1024): create and delete.
#[test]
fn ndpi_gtp_c_create_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = analyze("captures/ndpi/gtp_c.pcap", None, dir.path());
    assert_eq!(kinds(&events), ["attach", "detach"]);
    // tshark: IMSI 987654112233445, PAA 33.23.23.1, S5/S8-U SGW 0x35529205, PGW 0x35529207.
    assert_eq!(events[0]["imsi"], "987654112233445");
    assert_eq!(events[0]["ue_ipv4"], "33.23.23.1");
    let teids: Vec<u64> = tunnels(&events[0]).iter().map(|t| t.1).collect();
    assert_eq!(teids, [0x3552_9205, 0x3552_9207]);
    assert_eq!(summary["control"]["attributed"], 4);
}

/// A response sent from another UDP source port than the one its request went to is still
/// paired: pairing uses the peer addresses and the sequence number.
#[test]
fn response_from_other_source_port_paired() {
    let dir = tempfile::tempdir().unwrap();
    let mut pcap = std::fs::read(data("captures/ndpi/gtp_c.pcap")).unwrap();
    // tshark -e udp.srcport -e udp.dstport -e udp.checksum: requests 1024 -> 2123, responses
    // 2123 -> 1024, UDP checksums 0, Ethernet + 20-byte IPv4 headers. Requests now leave from
    // 2123; responses come from 40000 and go to 2123.
    let ports = [(2123u16, 2123u16), (40000, 2123), (2123, 2123), (40000, 2123)];
    let mut at = 24;
    for (src, dst) in ports {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let udp = at + 16 + 14 + 20;
        pcap[udp..udp + 2].copy_from_slice(&src.to_be_bytes());
        pcap[udp + 2..udp + 4].copy_from_slice(&dst.to_be_bytes());
        at += 16 + caplen;
    }
    let path = dir.path().join("other-port.pcap");
    std::fs::write(&path, &pcap).unwrap();
    let events = dir.path().join("events.jsonl");
    let output = imsitrace(&["analyze", path.to_str().unwrap(), "--json", "--events", events.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["control"]["responses_paired"], 2);
    let text = std::fs::read_to_string(&events).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(kinds(&events), ["attach", "detach"]);
}

/// GTPv1 Create PDP Context: TEIDs and the user-plane GSN addresses.
#[test]
fn zeek_gtpv1_create_pdp_context() {
    let dir = tempfile::tempdir().unwrap();
    let (_, events) = analyze("captures/zeek/gtp_create_pdp_ctx.pcap", None, dir.path());
    assert_eq!(kinds(&events), ["attach"]);
    // tshark -e e212.imsi -e gtp.teid_data -e gtp.user_ipv4 -e gtp.gsn_ipv4: request TEID-D 0x32f02bf9 from
    // SGSN 192.169.100.1; response TEID-D 0x10000085, EUA 192.168.252.130, GSN addresses 10.100.200.34 (control)
    // and 10.100.200.49 (user).
    assert_eq!(events[0]["imsi"], "460004100000101");
    assert_eq!(events[0]["ue_ipv4"], "192.168.252.130");
    let expected = vec![("10.100.200.49".to_string(), 0x1000_0085, "uplink".to_string()), ("192.169.100.1".to_string(), 0x32f0_2bf9, "downlink".to_string())];
    assert_eq!(tunnels(&events[0]), expected);
}

/// Outer IPv4 fragments are reassembled before GTP is decoded.
#[test]
fn zeek_fragmented_gtpu_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, _) = analyze("captures/zeek/gtp1_gn_normal_incl_fragmentation.pcap", None, dir.path());
    // capinfos: 108 frames. tshark -Y 'ip.flags.mf==1 || ip.frag_offset>0': 76 fragment frames;
    // tshark -e gtp.message after its own reassembly: 68 G-PDUs.
    assert_eq!(summary["capture"]["frames"], 108);
    assert_eq!(summary["capture"]["gtpu_gpdu"], 68);
}

/// A DNS query that happens to use UDP source port 2152 is not GTP.
#[test]
fn zeek_false_gtp_is_not_gpdu() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, _) = analyze("captures/zeek/gtp3_false_gtp.pcap", None, dir.path());
    assert_eq!(summary["capture"]["gtpu_gpdu"], 0);
    assert_eq!(summary["capture"]["frames"], 1);
}

/// pcapng files (named `.pcap`) whose interfaces have different snapshot lengths.
const MULTI_SNAPLEN_PCAPNG: [&str; 2] = ["pcapplusplus/gtp.pcap", "pcapplusplus/gtpv2.pcap"];

/// Every real capture is read to its end, or rejected with a message naming the file.
#[test]
fn every_real_capture_is_read() {
    let root = data("captures");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for sub in [dir.clone(), dir.join("dat2pcap")] {
            let Ok(entries) = std::fs::read_dir(&sub) else { continue };
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng")));
        }
    }
    assert!(files.len() > 40, "found only {} captures", files.len());
    for file in files {
        let output = imsitrace(&["analyze", file.to_str().unwrap(), "--json"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if MULTI_SNAPLEN_PCAPNG.iter().any(|name| file.ends_with(name)) {
            // libpcap 1.10 rejects pcapng files whose interfaces have different snapshot lengths.
            assert!(!output.status.success(), "{}: expected a failure", file.display());
            assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
            assert!(stderr.contains("snapshot length"), "{stderr}");
            continue;
        }
        assert!(output.status.success(), "{}: {stderr}", file.display());
    }
}
