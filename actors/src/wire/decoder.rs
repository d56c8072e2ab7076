//! [`Decoder`]: one captured frame to a GTP message, through link, IP (with IPv4 fragment
//! reassembly) and UDP.

use std::net::IpAddr;

use super::control::GtpVersion;
use super::frag::{FragmentFrame, FragmentKey, Reassembler, Reassembly, ReassemblyLimits, ReassemblyStats};
use super::gtpu::{looks_like_gtp_u, parse_user, UserPdu};
use super::gtpv1::{flags, MANDATORY_LEN};
use super::ip::{parse_ipv4, parse_ipv6, IpPacket, IpProtocol};
use super::link::{network_layer, LinkType, Network};
use super::udp::{gtp_plane, parse_udp, GtpPlane};
use super::DecodeError;

/// Outer addresses and ports of a GTP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OuterAddrs {
    /// Source address of the outer IP header.
    pub src: IpAddr,
    /// Destination address of the outer IP header.
    pub dst: IpAddr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

/// Recoverable oddities of the outer IP and UDP headers; the frame is still decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameAnomalies(pub u8);

impl FrameAnomalies {
    /// The IP header states more bytes than were captured (snap length or a cut frame).
    pub const IP_TRUNCATED: u8 = 1 << 0;
    /// The UDP Length differs from the IP payload length; the shorter was used.
    pub const UDP_LENGTH_MISMATCH: u8 = 1 << 1;

    /// Sets the given flag bits.
    pub fn insert(&mut self, flags: u8) {
        self.0 |= flags;
    }

    /// True when every given flag bit is set.
    pub fn contains(self, flags: u8) -> bool {
        self.0 & flags == flags
    }
}

/// The GTP message of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtpPdu<'a> {
    /// GTPv1-U (version 1, PT 1) on UDP port 2152 (either side).
    User(UserPdu<'a>),
    /// A GTP-C datagram on UDP port 2123 (either side); decode it with
    /// [`parse_control`](super::parse_control).
    Control {
        /// Version from the first header octet.
        version: GtpVersion,
        /// The whole UDP payload, which may hold piggybacked messages.
        bytes: &'a [u8],
    },
}

/// A decoded GTP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtpFrame<'a> {
    /// Outer addresses and ports.
    pub outer: OuterAddrs,
    /// The GTP message.
    pub pdu: GtpPdu<'a>,
    /// Every original frame, when the datagram was reassembled from IPv4 fragments.
    pub fragments: Option<&'a [FragmentFrame]>,
    /// Oddities of the outer IP and UDP headers.
    pub anomalies: FrameAnomalies,
}

/// Result of decoding one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A GTP message.
    Gtp(GtpFrame<'a>),
    /// Valid traffic that is not GTP: not IP, not UDP, not on a GTP port, or on a GTP port
    /// without the start of a GTP header.
    NotGtp,
    /// An outer IPv4 fragment, kept until its datagram completes.
    FragmentHeld,
}

/// Decodes captured frames; owns the outer IPv4 fragment reassembler.
#[derive(Debug)]
pub struct Decoder {
    reassembler: Reassembler,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    /// Creates a decoder with the default [`ReassemblyLimits`].
    pub fn new() -> Decoder {
        Decoder::with_limits(ReassemblyLimits::default())
    }

    /// Creates a decoder with the given reassembly limits.
    pub fn with_limits(limits: ReassemblyLimits) -> Decoder {
        Decoder { reassembler: Reassembler::new(limits) }
    }

    /// Returns the reassembler's counters and occupancy.
    pub fn reassembly_stats(&self) -> ReassemblyStats {
        self.reassembler.stats()
    }

    /// Decodes one frame captured at `ts_us` (microseconds, packet clock).
    ///
    /// A completed reassembly borrows the decoder's buffers until the next call.
    pub fn decode<'a>(&'a mut self, link: LinkType, ts_us: u64, frame: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        self.reassembler.release_completed();
        let ip = match network_layer(link, frame)? {
            Network::Ipv4(bytes) => parse_ipv4(bytes)?,
            Network::Ipv6(bytes) => parse_ipv6(bytes)?,
            Network::Other(_) => return Ok(Decoded::NotGtp),
        };
        if ip.protocol != IpProtocol::Udp {
            return Ok(Decoded::NotGtp);
        }
        let mut anomalies = FrameAnomalies::default();
        if ip.truncated {
            anomalies.insert(FrameAnomalies::IP_TRUNCATED);
        }
        let Some(fragment) = ip.fragment else {
            return decode_udp(ip.src, ip.dst, ip.payload, anomalies, None);
        };
        self.reassemble(&ip, fragment, ts_us, frame, anomalies)
    }

    fn reassemble<'a>(
        &'a mut self,
        ip: &IpPacket<'a>,
        fragment: super::ip::Fragment,
        ts_us: u64,
        frame: &'a [u8],
        anomalies: FrameAnomalies,
    ) -> Result<Decoded<'a>, DecodeError> {
        // NOTE: outer IPv6 fragments are counted and dropped because IPv6 reassembly (RFC 8200
        // §4.5) is not implemented. No capture under tests/data contains one.
        if ip.src.is_ipv6() {
            return Err(DecodeError::Ipv6FragmentUnsupported);
        }
        if ip.truncated {
            return Err(DecodeError::FragmentTruncated);
        }
        let key = FragmentKey { src: ip.src, dst: ip.dst, id: fragment.id, protocol: ip.protocol.number() };
        match self.reassembler.push(key, fragment, ip.payload, ts_us, frame)? {
            Reassembly::Held => Ok(Decoded::FragmentHeld),
            Reassembly::Complete { payload, frames } => decode_udp(ip.src, ip.dst, payload, anomalies, Some(frames)),
        }
    }
}

/// Decodes the UDP datagram `bytes` and the GTP message in it.
fn decode_udp<'a>(
    src: IpAddr,
    dst: IpAddr,
    bytes: &'a [u8],
    mut anomalies: FrameAnomalies,
    fragments: Option<&'a [FragmentFrame]>,
) -> Result<Decoded<'a>, DecodeError> {
    let udp = parse_udp(bytes)?;
    if udp.length_mismatch {
        anomalies.insert(FrameAnomalies::UDP_LENGTH_MISMATCH);
    }
    let pdu = match gtp_plane(udp.src_port, udp.dst_port) {
        Some(GtpPlane::User) if looks_like_gtp_u(udp.payload) => GtpPdu::User(parse_user(udp.payload)?),
        Some(GtpPlane::Control) => match control_version(udp.payload)? {
            Some(version) => GtpPdu::Control { version, bytes: udp.payload },
            None => return Ok(Decoded::NotGtp),
        },
        _ => return Ok(Decoded::NotGtp),
    };
    let outer = OuterAddrs { src, dst, src_port: udp.src_port, dst_port: udp.dst_port };
    Ok(Decoded::Gtp(GtpFrame { outer, pdu, fragments, anomalies }))
}

/// Returns the GTP-C version of a payload on port 2123: `None` when the first octet is
/// neither GTPv1 with PT 1 nor GTPv2, and an error when the 8-byte minimum header is cut short.
fn control_version(payload: &[u8]) -> Result<Option<GtpVersion>, DecodeError> {
    let version = match payload.first().map(|first| (first >> 5, first & flags::PT != 0)) {
        Some((1, true)) => GtpVersion::V1,
        Some((2, _)) => GtpVersion::V2,
        _ => return Ok(None),
    };
    if payload.len() < MANDATORY_LEN {
        return Err(DecodeError::GtpTruncated);
    }
    Ok(Some(version))
}

#[cfg(test)]
mod tests;
