//! Wire decoding: captured frames to GTP messages and subscriber packets.
//!
//! Pure code with no I/O: [`Decoder::decode`] takes one frame (link type, packet time,
//! bytes) and returns a [`Decoded`] that borrows from the frame, or from the decoder when an
//! outer IPv4 datagram was reassembled. [`parse_control`] decodes the GTP-C messages of a
//! control datagram and [`inner_packet`] reads the flow key of a G-PDU's T-PDU.
//!
//! Each layer has its own module: link (Ethernet with VLAN stacks, Linux cooked SLL and SLL2,
//! raw IP), outer IPv4 and IPv6, IPv4 fragment reassembly, UDP, the GTPv1 header shared by
//! GTP-U and GTPv1-C, GTPv1-C IEs, the GTPv2-C header and IEs, TBCD digits and PLMN
//! identities. IPv6 extension headers are walked, but outer IPv6 fragments are rejected as
//! unsupported.
//!
//! Conventions:
//! - Views such as [`Gtpv1Packet`] check lengths once when built; no getter panics after that.
//!   No decoder panics on any input, and none allocates per packet (the reassembler reuses its
//!   buffers).
//! - Hard errors are [`DecodeError`] variants, one per reason, for per-reason counters.
//!   Recoverable oddities are flags on the result ([`FrameAnomalies`], [`UserAnomalies`],
//!   [`ControlAnomalies`]) and decoding goes on.
//! - A UDP datagram on port 2152 is GTP only when it starts like a GTP-U header (version 1,
//!   PT 1, a message type TS 29.281 allows); otherwise it is [`Decoded::NotGtp`], e.g. a DNS
//!   query sent from port 2152. One that starts like GTP-U but breaks a later rule (zero
//!   extension length, bad Length, a G-PDU without an IP packet) is a [`DecodeError`]. Port
//!   2123 works the same with GTPv1 (PT 1) or GTPv2 as the start of a header. GTPv0 and GTP'
//!   (port 3386) are not decoded.

mod bytes;
pub mod control;
mod decoder;
mod error;
mod frag;
mod gtpu;
mod gtpv1;
mod gtpv1c;
mod gtpv2_ie;
mod gtpv2c;
mod inner;
mod ip;
mod link;
mod messages;
mod plmn;
mod tbcd;
mod udp;

#[cfg(test)]
mod captures_tests;

pub use control::{
    BearerContext, ControlAnomalies, ControlMessage, Digits, Fteid, FteidInterface, GtpVersion, Plmn, UeAddress, Uli,
};
pub use decoder::{Decoded, Decoder, FrameAnomalies, GtpFrame, GtpPdu, OuterAddrs};
pub use error::DecodeError;
pub use frag::{FragmentFrame, ReassemblyLimits, ReassemblyStats};
pub use gtpu::{parse_user, UserAnomalies, UserPdu};
pub use gtpv1::{ExtensionType, Extensions, Gtpv1Header, Gtpv1Packet, V1MessageType};
pub use gtpv1c::V1IeType;
pub use gtpv2_ie::{Gtpv2Ie, Gtpv2Ies, V2IeType};
pub use gtpv2c::{Gtpv2Packet, V2MessageType};
pub use inner::{inner_packet, FlowKey, InnerPacket};
pub use ip::IpProtocol;
pub use link::{EtherType, LinkType};
pub use messages::{parse_control, ControlMessages};
pub use plmn::decode_plmn;
pub use tbcd::decode_tbcd;
pub use udp::{GTP_C_PORT, GTP_U_PORT};
