//! Encoding of every message that crosses the wire between nodes.
//!
//! A payload is a 2-byte big-endian format version followed by the value encoded by bincode
//! 2 (serde mode, standard configuration: variable-length integers, little endian). A
//! decoder never panics: a payload it cannot decode becomes [`Remote::Invalid`], which the
//! receiving actor logs, and [`invalid_payloads`] counts every such payload of the process.
//!
//! NOTE: bincode 2.0.1 is the last usable bincode release (3.0.0 is an empty tombstone) and
//! carries the RUSTSEC-2025-0141 "unmaintained" advisory. This module is the only user of
//! bincode, so that postcard or bitcode can replace it here, with a new [`FORMAT_VERSION`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::BytesConvertable;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the payload format, written first in every payload. A node rejects payloads
/// of any other version, so bump it whenever an encoded type changes incompatibly.
pub const FORMAT_VERSION: u16 = 1;

/// Largest payload decoded, in bytes: the default frame limit of ractor_cluster 0.16
/// (`DEFAULT_MAX_INBOUND_FRAME_SIZE`). It also bounds what bincode allocates for a length
/// field read from a payload.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of the version prefix.
const VERSION_BYTES: usize = 2;

type Config = bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Varint, bincode::config::Limit<MAX_PAYLOAD_BYTES>>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD_BYTES>()
}

/// Payloads that failed to decode in this process since it started.
static INVALID_PAYLOADS: AtomicU64 = AtomicU64::new(0);

/// Returns the number of payloads from other nodes that failed to decode since the process
/// started.
pub fn invalid_payloads() -> u64 {
    INVALID_PAYLOADS.load(Ordering::Relaxed)
}

/// A type sent between nodes. The name identifies it in logs.
pub trait WireMessage: Serialize + DeserializeOwned + Send + 'static {
    /// Short name of the type, e.g. `heartbeat ping`.
    const NAME: &'static str;
}

/// Reason a payload from another node could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidPayload {
    /// Fewer bytes than the version prefix.
    Truncated {
        /// Bytes received.
        length: usize,
    },
    /// A format version this node does not read.
    UnsupportedVersion {
        /// Version found in the payload.
        found: u16,
    },
    /// Larger than [`MAX_PAYLOAD_BYTES`].
    TooLarge {
        /// Bytes received.
        length: usize,
    },
    /// The bytes after the version are not a valid encoding of the expected type.
    Malformed {
        /// Error reported by bincode.
        reason: String,
    },
    /// The value decoded but bytes were left after it.
    TrailingBytes {
        /// Bytes left.
        count: usize,
    },
    /// A ractor message variant this node does not know, e.g. from a newer release.
    UnknownVariant {
        /// The variant name in the frame.
        variant: String,
    },
}

impl fmt::Display for InvalidPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidPayload::Truncated { length } => write!(f, "truncated payload of {length} bytes, shorter than the format version"),
            InvalidPayload::UnsupportedVersion { found } => {
                write!(f, "unsupported format version {found}; this node reads version {FORMAT_VERSION}, so run the same release on every node")
            }
            InvalidPayload::TooLarge { length } => write!(f, "payload of {length} bytes exceeds the maximum of {MAX_PAYLOAD_BYTES}"),
            InvalidPayload::Malformed { reason } => write!(f, "malformed payload: {reason}"),
            InvalidPayload::TrailingBytes { count } => write!(f, "{count} unexpected bytes after the payload"),
            InvalidPayload::UnknownVariant { variant } => write!(f, "unknown message variant {variant:?}"),
        }
    }
}

/// A value received from another node: decoded, or the reason it could not be.
///
/// `Remote<T>` implements ractor's [`BytesConvertable`], so it can be the field of a
/// `#[derive(RactorClusterMessage)]` variant. A malformed field then arrives as
/// [`Remote::Invalid`] instead of panicking inside ractor.
#[derive(Debug, Clone, PartialEq)]
pub enum Remote<T> {
    /// The decoded value.
    Valid(T),
    /// The payload could not be decoded.
    Invalid(InvalidPayload),
}

impl<T> Remote<T> {
    /// Returns the value, or the reason it could not be decoded.
    pub fn into_result(self) -> Result<T, InvalidPayload> {
        match self {
            Remote::Valid(value) => Ok(value),
            Remote::Invalid(reason) => Err(reason),
        }
    }
}

impl<T: WireMessage> BytesConvertable for Remote<T> {
    /// Encodes a valid value. An invalid one is never sent: it encodes as an empty payload,
    /// which the receiver decodes as [`InvalidPayload::Truncated`].
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Remote::Valid(value) => encode(&value),
            Remote::Invalid(_) => Vec::new(),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        decode(&bytes)
    }
}

/// Encodes `value` with the format version in front.
pub fn encode<T: WireMessage>(value: &T) -> Vec<u8> {
    let mut bytes = FORMAT_VERSION.to_be_bytes().to_vec();
    // Writing into a Vec cannot fail, so only a serde implementation that reports an error
    // fails here. The payload is then the version alone, which the receiver counts as
    // invalid.
    if let Err(error) = bincode::serde::encode_into_std_write(value, &mut bytes, config()) {
        tracing::error!(message = T::NAME, %error, "cannot encode a cluster message; it is not sent");
        bytes.truncate(VERSION_BYTES);
    }
    bytes
}

/// Decodes a payload written by [`encode`]. Counts every invalid payload.
pub fn decode<T: WireMessage>(bytes: &[u8]) -> Remote<T> {
    match decode_checked(bytes) {
        Ok(value) => Remote::Valid(value),
        Err(reason) => invalid(reason),
    }
}

fn decode_checked<T: WireMessage>(bytes: &[u8]) -> Result<T, InvalidPayload> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(InvalidPayload::TooLarge { length: bytes.len() });
    }
    let Some((version, body)) = bytes.split_first_chunk::<VERSION_BYTES>() else {
        return Err(InvalidPayload::Truncated { length: bytes.len() });
    };
    let found = u16::from_be_bytes(*version);
    if found != FORMAT_VERSION {
        return Err(InvalidPayload::UnsupportedVersion { found });
    }
    let (value, used) = bincode::serde::decode_from_slice(body, config()).map_err(|error| InvalidPayload::Malformed { reason: error.to_string() })?;
    if used != body.len() {
        return Err(InvalidPayload::TrailingBytes { count: body.len() - used });
    }
    Ok(value)
}

/// Counts an invalid payload and wraps its reason.
fn invalid<T>(reason: InvalidPayload) -> Remote<T> {
    INVALID_PAYLOADS.fetch_add(1, Ordering::Relaxed);
    Remote::Invalid(reason)
}

/// Encodes `value` as a ractor cast of the variant `variant`, for a hand-written
/// `ractor::Message::serialize`.
pub fn cast<T: WireMessage>(variant: &str, value: &T) -> SerializedMessage {
    SerializedMessage::Cast { variant: variant.to_owned(), args: encode(value), metadata: None }
}

/// Decodes a ractor cast of the variant `variant`, for a hand-written
/// `ractor::Message::deserialize`. Another variant decodes as
/// [`InvalidPayload::UnknownVariant`]. A call or a reply carries a reply port that a
/// cast-only message cannot reply to, so it is rejected with ractor's error, which ractor
/// 0.16 drops with a debug log.
pub fn uncast<T: WireMessage>(variant: &str, message: SerializedMessage) -> Result<Remote<T>, BoxedDowncastErr> {
    match message {
        SerializedMessage::Cast { variant: found, args, .. } if found == variant => Ok(decode(&args)),
        SerializedMessage::Cast { variant: found, .. } => Ok(invalid(InvalidPayload::UnknownVariant { variant: found })),
        _ => Err(BoxedDowncastErr),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        sequence: u64,
        peers: Vec<String>,
    }

    impl WireMessage for Sample {
        const NAME: &'static str = "sample";
    }

    fn sample() -> Sample {
        Sample { name: "probe-1@127.0.0.1".into(), sequence: 300, peers: vec!["a".into(), "b".into()] }
    }

    #[test]
    fn round_trip_keeps_value() {
        let bytes = encode(&sample());
        assert_eq!(&bytes[..2], &[0, 1], "format version 1, big endian");
        assert_eq!(decode::<Sample>(&bytes), Remote::Valid(sample()));
    }

    #[test]
    fn layout_is_version_then_bincode() {
        let value = Sample { name: "ab".into(), sequence: 300, peers: vec![] };
        // Version 0x0001; string length 2 and "ab"; 300 as varint (0xfb then u16 LE 0x012c);
        // empty list length 0.
        assert_eq!(encode(&value), vec![0x00, 0x01, 0x02, b'a', b'b', 0xfb, 0x2c, 0x01, 0x00]);
    }

    #[test]
    fn truncated_payload_invalid() {
        assert_eq!(decode::<Sample>(&[0x00]), Remote::Invalid(InvalidPayload::Truncated { length: 1 }));
        assert_eq!(decode::<Sample>(&[]), Remote::Invalid(InvalidPayload::Truncated { length: 0 }));
    }

    #[test]
    fn other_version_invalid() {
        let mut bytes = encode(&sample());
        bytes[1] = 2;
        assert_eq!(decode::<Sample>(&bytes), Remote::Invalid(InvalidPayload::UnsupportedVersion { found: 2 }));
    }

    #[test]
    fn cut_body_invalid() {
        let bytes = encode(&sample());
        for length in 2..bytes.len() {
            let decoded = decode::<Sample>(&bytes[..length]);
            assert!(matches!(decoded, Remote::Invalid(InvalidPayload::Malformed { .. })), "length {length}: {decoded:?}");
        }
    }

    #[test]
    fn trailing_bytes_invalid() {
        let mut bytes = encode(&sample());
        bytes.extend_from_slice(&[7, 7]);
        assert_eq!(decode::<Sample>(&bytes), Remote::Invalid(InvalidPayload::TrailingBytes { count: 2 }));
    }

    #[test]
    fn huge_length_field_invalid() {
        // Version 1, then a string length of 2^32 - 1 (varint marker 0xfc and u32 LE):
        // the limit rejects it before allocating.
        let bytes = [0x00, 0x01, 0xfc, 0xff, 0xff, 0xff, 0xff];
        let decoded = decode::<Sample>(&bytes);
        assert!(matches!(decoded, Remote::Invalid(InvalidPayload::Malformed { .. })), "{decoded:?}");
    }

    #[test]
    fn invalid_payloads_counted() {
        let before = invalid_payloads();
        let _ = decode::<Sample>(&[0x00]);
        assert!(invalid_payloads() > before, "the counter is shared by the tests of this process, so it grows by at least 1");
    }

    #[test]
    fn bytes_convertable_round_trip() {
        let bytes = Remote::Valid(sample()).into_bytes();
        assert_eq!(Remote::<Sample>::from_bytes(bytes), Remote::Valid(sample()));
        let garbage = vec![0x00, 0x01, 0xff];
        assert!(matches!(Remote::<Sample>::from_bytes(garbage), Remote::Invalid(InvalidPayload::Malformed { .. })));
    }

    #[test]
    fn cast_round_trip() {
        let message = cast("ping", &sample());
        assert_eq!(uncast::<Sample>("ping", message).expect("a cast"), Remote::Valid(sample()));
        let other = cast("pong", &sample());
        let decoded = uncast::<Sample>("ping", other).expect("a cast");
        assert_eq!(decoded, Remote::Invalid(InvalidPayload::UnknownVariant { variant: "pong".into() }));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode::<Sample>(&bytes);
        }
    }
}
