//! [`parse_control`]: the GTP-C messages in one UDP payload.

use super::control::ControlMessage;
use super::gtpv1::flags;
use super::gtpv1c::parse_v1_control;
use super::gtpv2c::parse_v2_control;
use super::DecodeError;

/// Iterator over the GTP-C messages of a UDP payload, from [`parse_control`].
///
/// GTPv1-C yields one message. GTPv2-C yields the message and, while the P flag is set, the
/// piggybacked message that starts where the Message Length ends (TS 29.274 §5.5.1). After
/// an error the iterator ends.
#[derive(Debug, Clone)]
pub struct ControlMessages<'a> {
    rest: Option<&'a [u8]>,
    piggybacked: bool,
}

/// Decodes the GTP-C messages of `bytes`, the whole UDP payload of a GTP-C datagram.
pub fn parse_control(bytes: &[u8]) -> ControlMessages<'_> {
    ControlMessages { rest: Some(bytes), piggybacked: false }
}

impl<'a> Iterator for ControlMessages<'a> {
    type Item = Result<ControlMessage<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.rest.take()?;
        let parsed = match (bytes.first().map(|first| first >> 5), self.piggybacked) {
            (Some(1), false) if bytes[0] & flags::PT != 0 => parse_v1_control(bytes).map(|message| (message, None)),
            (Some(2), _) => parse_v2_control(bytes),
            (None, _) => Err(DecodeError::GtpTruncated),
            (_, true) => Err(DecodeError::GtpV2BadPiggyback),
            (_, false) => Err(DecodeError::GtpUnsupportedVersion),
        };
        self.piggybacked = true;
        Some(parsed.map(|(message, next)| {
            // Every message covers at least its 8-byte header, so the walk ends.
            self.rest = next;
            message
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::control::GtpVersion;

    #[test]
    fn v2_echo_with_piggybacked_response() {
        let bytes = [
            0x50, 0x01, 0x00, 0x09, // version 2, P set, no T; Echo Request; Length 9
            0x00, 0x00, 0x01, 0x00, // sequence 1, spare
            0x03, 0x00, 0x01, 0x00, 0x05, // Recovery 5
            0x48, 0x21, 0x00, 0x0d, // version 2, T; Create Session Response; Length 13
            0x00, 0x00, 0x00, 0x07, // TEID 7
            0x00, 0x00, 0x02, 0x00, // sequence 2, spare
            0x02, 0x00, 0x01, 0x00, 0x10, // Cause 16: request accepted
        ];
        let messages: Vec<_> = parse_control(&bytes).collect();
        assert_eq!(messages.len(), 2);
        let echo = messages[0].as_ref().unwrap();
        assert_eq!((echo.message_type, echo.sequence, echo.recovery), (1, 1, Some(5)));
        assert_eq!(echo.anomalies.0, 0);
        let response = messages[1].as_ref().unwrap();
        assert_eq!(response.version, Some(GtpVersion::V2));
        assert_eq!((response.message_type, response.teid, response.sequence), (33, Some(7), 2));
        assert_eq!(response.cause, Some(16));
    }

    #[test]
    fn piggybacked_v1_rejected() {
        let bytes = [
            0x50, 0x01, 0x00, 0x04, 0x00, 0x00, 0x01, 0x00, // GTPv2 Echo Request with P set
            0x32, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, // a GTPv1 header where GTPv2 is required
        ];
        let messages: Vec<_> = parse_control(&bytes).collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].as_ref().unwrap_err(), &DecodeError::GtpV2BadPiggyback);
    }

    #[test]
    fn v1_single_message() {
        let bytes = [
            0x32, 0x01, 0x00, 0x04, // GTPv1, S; Echo Request; Length 4
            0x00, 0x00, 0x00, 0x00, // TEID 0
            0x12, 0x34, 0x00, 0x00, // sequence 0x1234
        ];
        let messages: Vec<_> = parse_control(&bytes).collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].as_ref().unwrap().sequence, 0x1234);
    }

    #[test]
    fn other_versions_rejected() {
        let first_error = |bytes: &[u8]| parse_control(bytes).next().and_then(Result::err);
        assert_eq!(first_error(&[]), Some(DecodeError::GtpTruncated));
        assert_eq!(first_error(&[0x1e, 0x01]), Some(DecodeError::GtpUnsupportedVersion)); // GTPv0
        assert_eq!(first_error(&[0x2e, 0x01]), Some(DecodeError::GtpUnsupportedVersion)); // GTP'
        assert_eq!(parse_control(&[0x2e]).count(), 1, "the iterator ends after an error");
    }
}
