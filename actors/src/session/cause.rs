//! Cause values that decide whether a response changes state.

use crate::wire::control::GtpVersion;

/// True when a response cause accepts the request.
///
/// GTPv1 (TS 29.060 §7.7.1): values 128..=191 are acceptances ("Request accepted" is 128).
/// GTPv2 (TS 29.274 §8.4): values 16..=63 are acceptances ("Request accepted" is 16).
/// A response without a Cause IE is not accepted.
pub fn is_accepted(version: GtpVersion, cause: Option<u8>) -> bool {
    match (version, cause) {
        (GtpVersion::V1, Some(c)) => (128..=191).contains(&c),
        (GtpVersion::V2, Some(c)) => (16..=63).contains(&c),
        (_, None) => false,
    }
}

/// True when a delete response says the peer has no such context, so the context is gone
/// anyway: GTPv1 192 "Non-existent", GTPv2 64 "Context Not Found".
pub fn is_context_gone(version: GtpVersion, cause: Option<u8>) -> bool {
    matches!((version, cause), (GtpVersion::V1, Some(192)) | (GtpVersion::V2, Some(64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_ranges_per_version() {
        assert!(is_accepted(GtpVersion::V1, Some(128)));
        assert!(!is_accepted(GtpVersion::V1, Some(199)));
        assert!(is_accepted(GtpVersion::V2, Some(16)));
        assert!(is_accepted(GtpVersion::V2, Some(18)));
        assert!(!is_accepted(GtpVersion::V2, Some(73)));
        assert!(!is_accepted(GtpVersion::V2, None));
        assert!(is_context_gone(GtpVersion::V2, Some(64)));
    }
}
