//! Key and channel names of schema version 1, and the text forms of their parts.

use std::net::{IpAddr, Ipv6Addr};

use crate::flow::classify::AppProtocol;
use crate::session::event::TunnelKey;
use crate::wire::control::Digits;

/// Version of the key layout and payloads. It is part of every key and channel name, so
/// nodes of two versions can share a server without reading each other's data.
pub const SCHEMA_VERSION: u32 = 1;

/// Names under one prefix: `<prefix>v<SCHEMA_VERSION>:<name>`.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `<prefix>v1:`.
    root: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Keys {
            root: format!("{prefix}v{SCHEMA_VERSION}:"),
        }
    }

    /// Hash with the schema version and the nDPI release of the writer.
    pub(super) fn meta(&self) -> String {
        format!("{}meta", self.root)
    }

    /// String with the JSON `SubscriberState` of `imsi`.
    pub(super) fn subscriber(&self, imsi: &str) -> String {
        format!("{}subscriber:{imsi}", self.root)
    }

    /// String with the IMSI that owns the tunnel. The address is dotted IPv4 or
    /// compressed IPv6 (RFC 5952), so the TEID is the text after the last colon.
    pub(super) fn tunnel(&self, key: TunnelKey) -> String {
        format!("{}tunnel:{}:{}", self.root, key.addr, key.teid)
    }

    /// Channel of every session event.
    pub(super) fn events_channel(&self) -> String {
        format!("{}events", self.root)
    }

    /// Channel of the session events of `imsi`.
    pub(super) fn subscriber_channel(&self, imsi: &str) -> String {
        format!("{}events:{imsi}", self.root)
    }

    /// Sorted set of bucket epochs, each member scored by its own value.
    pub(super) fn epochs(&self) -> String {
        format!("{}epochs", self.root)
    }

    /// Set of the row members (`<IMSI>:<master>.<app>`) of the bucket starting at `epoch`.
    pub(super) fn bucket_index(&self, epoch: u64) -> String {
        format!("{}bucket:{epoch}", self.root)
    }

    /// Hash with the counters of one row of the bucket starting at `epoch`.
    pub(super) fn bucket_row(&self, epoch: u64, member: &str) -> String {
        format!("{}bucket:{epoch}:{member}", self.root)
    }

    /// String with the owner that claimed the report of the bucket starting at `epoch`.
    pub(super) fn report_claim(&self, epoch: u64) -> String {
        format!("{}report:{epoch}", self.root)
    }

    /// String whose presence marks a bucket batch as applied.
    pub(super) fn batch(&self, batch_id: &str) -> String {
        format!("{}batch:{batch_id}", self.root)
    }

    /// String with the IMSI whose state was last written with the MSISDN `msisdn` (digits).
    pub(super) fn msisdn(&self, msisdn: &str) -> String {
        format!("{}msisdn:{msisdn}", self.root)
    }

    /// String with the IMSI whose state was last written with the UE address `addr` while
    /// attached or idle. An IPv6 address is named by its /64 prefix (see [`ue_prefix`]),
    /// so every address of a PDN connection's prefix finds the same key.
    pub(super) fn ue_address(&self, addr: IpAddr) -> String {
        format!("{}ueip:{}", self.root, ue_prefix(addr))
    }

    /// Sorted set of the IMSIs whose stored state is attached or idle, each scored by the
    /// `last_change_us` of that state.
    pub(super) fn active(&self) -> String {
        format!("{}active", self.root)
    }
}

/// Returns the part of a UE address that the address index names: an IPv4 address whole,
/// an IPv6 address with its last 64 bits cleared. A UE forms its IPv6 addresses inside the
/// prefix assigned to its PDN connection, a /64 in 3GPP networks, so any of those addresses
/// finds the subscriber.
pub(super) fn ue_prefix(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// Returns the bucket row member of (`imsi`, `protocol`): `<IMSI>:<master>.<app>` with the
/// nDPI protocol ids in decimal, e.g. `001010000000001:91.119`.
pub(super) fn row_member(imsi: &Digits, protocol: AppProtocol) -> String {
    format!("{}:{}.{}", imsi.as_str(), protocol.master, protocol.app)
}

/// Parses a member written by [`row_member`].
pub(super) fn parse_row_member(member: &str) -> Option<(Digits, AppProtocol)> {
    let (imsi, protocol) = member.split_once(':')?;
    let (master, app) = protocol.split_once('.')?;
    let imsi = Digits::from_ascii(imsi.as_bytes())?;
    let protocol = AppProtocol {
        master: master.parse().ok()?,
        app: app.parse().ok()?,
    };
    Some((imsi, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_carry_prefix_and_version() {
        let keys = Keys::new("imsitrace:");
        assert_eq!(keys.subscriber("001010000000001"), "imsitrace:v1:subscriber:001010000000001");
        assert_eq!(keys.bucket_index(600), "imsitrace:v1:bucket:600");
        assert_eq!(keys.events_channel(), "imsitrace:v1:events");
        assert_eq!(keys.report_claim(600), "imsitrace:v1:report:600");
    }

    #[test]
    fn tunnel_key_of_ipv6_endpoint() {
        let keys = Keys::new("p:");
        let key = TunnelKey {
            addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            teid: 0x1234,
        };
        assert_eq!(keys.tunnel(key), "p:v1:tunnel:2001:db8::1:4660");
    }

    #[test]
    fn index_key_names() {
        let keys = Keys::new("imsitrace:");
        assert_eq!(keys.msisdn("447709731969"), "imsitrace:v1:msisdn:447709731969");
        assert_eq!(keys.active(), "imsitrace:v1:active");
        let v4: IpAddr = "100.67.0.106".parse().expect("address");
        assert_eq!(keys.ue_address(v4), "imsitrace:v1:ueip:100.67.0.106");
    }

    #[test]
    fn ipv6_ue_address_named_by_prefix() {
        let keys = Keys::new("p:");
        let address: IpAddr = "2001:db8:a020:2:e2d2:8da8:3cbb:5615".parse().expect("address");
        let prefix: IpAddr = "2001:db8:a020:2::".parse().expect("prefix");
        assert_eq!(keys.ue_address(address), "p:v1:ueip:2001:db8:a020:2::");
        assert_eq!(keys.ue_address(prefix), keys.ue_address(address));
        assert_eq!(ue_prefix(prefix), prefix);
    }

    #[test]
    fn row_member_round_trip() {
        let imsi = Digits::from_ascii(b"001010000000001").expect("digits");
        let protocol = AppProtocol { master: 91, app: 119 };
        let member = row_member(&imsi, protocol);
        assert_eq!(member, "001010000000001:91.119");
        assert_eq!(parse_row_member(&member), Some((imsi, protocol)));
        assert_eq!(parse_row_member("001:x.1"), None);
        assert_eq!(parse_row_member("001-91.119"), None);
    }
}
