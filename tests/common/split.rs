//! Writing pcap files and splitting `small.pcap` into signalling and user plane, for the
//! tests that replay parts of one capture at several probes.

use std::path::Path;

use super::{Frame, Pcap};

/// UDP port of GTP-C (TS 29.274 §4.2).
pub const GTPC_PORT: u16 = 2123;
/// UDP port of GTP-U (TS 29.281 §4.4.2).
pub const GTPU_PORT: u16 = 2152;
/// GTP-U Echo Request message type (TS 29.281 §6.1).
const ECHO_REQUEST: u8 = 1;

/// Writes a classic microsecond pcap.
pub fn write_pcap(path: &Path, link_type: u32, frames: &[&Frame]) {
    let mut bytes = Vec::new();
    // Global header: magic, version 2.4 as two u16 values, time zone, accuracy, snapshot
    // length and link type.
    for word in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 262_144, link_type] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    for frame in frames {
        let seconds = u32::try_from(frame.ts_us / 1_000_000).expect("timestamp fits in 32 bits");
        let micros = (frame.ts_us % 1_000_000) as u32;
        for word in [seconds, micros, frame.data.len() as u32, frame.orig_len] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.extend_from_slice(&frame.data);
    }
    std::fs::write(path, bytes).expect("cannot write a pcap");
}

/// Returns the offset of the UDP header of an untagged Ethernet/IPv4/UDP frame, the only
/// kind small.pcap has.
fn udp_offset(frame: &Frame) -> usize {
    14 + usize::from(frame.data[14] & 0x0f) * 4
}

/// Returns the UDP destination port of an untagged Ethernet/IPv4/UDP frame.
pub fn udp_port(frame: &Frame) -> u16 {
    let udp = udp_offset(frame);
    u16::from_be_bytes([frame.data[udp + 2], frame.data[udp + 3]])
}

/// Returns the GTP message type of an untagged Ethernet/IPv4/UDP frame.
pub fn gtp_message_type(frame: &Frame) -> u8 {
    frame.data[udp_offset(frame) + 8 + 1]
}

/// Splits `pcap` by UDP port into `cp.pcap` (GTP-C) and `up.pcap` (GTP-U) in `dir`.
///
/// A replay is paced from its file's first frame. small.pcap starts with G-PDUs, so
/// `cp.pcap` gets a copy of the capture's first GTP-U Echo Request, timed at the capture's
/// first frame, and both replays start at the same packet time. The probe that reads it
/// counts it as an Echo and attributes nothing to it.
pub fn write_plane_split(pcap: &Pcap, dir: &Path) {
    let (mut control, user): (Vec<&Frame>, Vec<&Frame>) = pcap.frames.iter().partition(|frame| udp_port(frame) == GTPC_PORT);
    let echo = pcap.frames.iter().find(|frame| udp_port(frame) == GTPU_PORT && gtp_message_type(frame) == ECHO_REQUEST).expect("the capture has a GTP-U Echo Request");
    let anchor = Frame { ts_us: pcap.frames[0].ts_us, ..echo.clone() };
    assert!(control[0].ts_us > anchor.ts_us, "the capture starts with GTP-U");
    control.insert(0, &anchor);
    write_pcap(&dir.join("cp.pcap"), pcap.link_type, &control);
    write_pcap(&dir.join("up.pcap"), pcap.link_type, &user);
}
