//! Decode errors: one variant per reason a frame is rejected.
//!
//! Every variant is a unit, so callers keep one counter per reason in a
//! `[u64; DecodeError::COUNT]` array indexed by [`DecodeError::index`].

use std::fmt;

/// Declares `DecodeError` with its reasons, written once per variant.
macro_rules! decode_errors {
    ($($(#[doc = $doc:literal])* $variant:ident => $reason:literal,)+) => {
        /// Reason a frame, a GTP message or an inner packet could not be decoded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DecodeError {
            $($(#[doc = $doc])* $variant,)+
        }

        impl DecodeError {
            /// Every variant, in index order.
            pub const ALL: &'static [DecodeError] = &[$(DecodeError::$variant,)+];

            /// Returns the reason as a snake_case label, e.g. `"gtp_zero_extension_length"`.
            pub fn reason(self) -> &'static str {
                match self {
                    $(DecodeError::$variant => $reason,)+
                }
            }
        }
    };
}

decode_errors! {
    /// The pcap link type (DLT) is not one the decoder reads.
    UnsupportedLinkType => "unsupported_link_type",
    /// The frame ends inside the Ethernet, VLAN tag or Linux cooked header.
    LinkTruncated => "link_truncated",
    /// A raw-IP frame whose version nibble is neither 4 nor 6.
    UnknownIpVersion => "unknown_ip_version",
    /// Fewer bytes than the 20-byte IPv4 header or than its IHL.
    Ipv4Truncated => "ipv4_truncated",
    /// IPv4 IHL below 5, or a version nibble that is not 4 behind an IPv4 EtherType.
    Ipv4BadHeader => "ipv4_bad_header",
    /// IPv4 Total Length smaller than the header length.
    Ipv4BadTotalLength => "ipv4_bad_total_length",
    /// Fewer bytes than the 40-byte IPv6 header.
    Ipv6Truncated => "ipv6_truncated",
    /// A version nibble that is not 6 behind an IPv6 EtherType.
    Ipv6BadHeader => "ipv6_bad_header",
    /// An IPv6 extension header runs past the end of the packet.
    Ipv6ExtensionTruncated => "ipv6_extension_truncated",
    /// An IPv6 extension header breaks RFC 8200 (hop-by-hop not first, bad authentication header).
    Ipv6BadExtension => "ipv6_bad_extension",
    /// The outer IPv6 packet is a fragment; IPv6 reassembly is not implemented.
    Ipv6FragmentUnsupported => "ipv6_fragment_unsupported",
    /// An IPv4 fragment reaches past 65,535 bytes of reassembled payload.
    FragmentTooLarge => "ipv4_fragment_too_large",
    /// A non-final IPv4 fragment whose payload is not a multiple of 8 bytes.
    FragmentMisaligned => "ipv4_fragment_misaligned",
    /// An IPv4 fragment disagrees with the datagram end set by the final fragment.
    FragmentInconsistent => "ipv4_fragment_inconsistent",
    /// A datagram got more fragments than the reassembler keeps; it was dropped.
    FragmentTooMany => "ipv4_fragment_too_many",
    /// An IPv4 fragment cut short by the capture's snap length: its datagram cannot complete.
    FragmentTruncated => "ipv4_fragment_truncated",
    /// Fewer than the 8 bytes of a UDP header.
    UdpTruncated => "udp_truncated",
    /// UDP Length field below 8.
    UdpBadLength => "udp_bad_length",
    /// Fewer bytes than the GTP header, its optional fields or its extension headers need.
    GtpTruncated => "gtp_truncated",
    /// GTPv1 Length too small for the optional fields and extension headers it must cover.
    GtpBadLength => "gtp_bad_length",
    /// A GTPv1 extension header with length 0, which TS 29.281 §5.2.1 does not allow.
    GtpZeroExtensionLength => "gtp_zero_extension_length",
    /// A GTPv1 extension header chain longer than the decoder follows.
    GtpExtensionChainTooLong => "gtp_extension_chain_too_long",
    /// A G-PDU whose T-PDU is not an IPv4 or IPv6 packet.
    GpduNotIp => "gpdu_not_ip",
    /// A GTP-C payload whose version is neither 1 (with PT 1) nor 2.
    GtpUnsupportedVersion => "gtp_unsupported_version",
    /// GTPv2 Message Length too small for the header fields it must cover.
    GtpV2BadLength => "gtpv2_bad_length",
    /// A piggybacked GTPv2 message whose version is not 2.
    GtpV2BadPiggyback => "gtpv2_bad_piggyback",
    /// An inner packet shorter than its IPv4 or IPv6 header.
    InnerTruncated => "inner_truncated",
    /// An inner packet whose version nibble is neither 4 nor 6, or whose IPv4 IHL is below 5.
    InnerBadHeader => "inner_bad_header",
}

impl DecodeError {
    /// Number of variants: the length of a per-reason counter array.
    pub const COUNT: usize = DecodeError::ALL.len();

    /// Returns the position of this variant in [`DecodeError::ALL`], below [`DecodeError::COUNT`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Returns the variant at `index`, or `None` when `index >= COUNT`.
    pub fn from_index(index: usize) -> Option<DecodeError> {
        DecodeError::ALL.get(index).copied()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        for (position, error) in DecodeError::ALL.iter().enumerate() {
            assert_eq!(error.index(), position);
            assert_eq!(DecodeError::from_index(position), Some(*error));
        }
        assert_eq!(DecodeError::from_index(DecodeError::COUNT), None);
    }

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for error in DecodeError::ALL {
            let reason = error.reason();
            assert!(seen.insert(reason), "duplicate reason {reason}");
            assert!(reason.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{reason}");
        }
        assert_eq!(DecodeError::GtpZeroExtensionLength.reason(), "gtp_zero_extension_length");
    }
}
