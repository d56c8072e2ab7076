//! Microcloud errors.

use std::fmt;

/// Error of a microcloud operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MicrocloudError {
    /// The backend could not be reached, or the connection failed during the operation.
    /// The caller keeps the data and retries later.
    Unavailable {
        /// Backend name, e.g. `redis`.
        backend: &'static str,
        /// Error reported by the client library.
        reason: String,
    },
    /// The address of the backend is not a valid URL.
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// Description of the parse failure.
        reason: String,
    },
    /// Stored data could not be decoded.
    InvalidData {
        /// Key or record that failed to decode.
        key: String,
        /// Description of the decoding problem.
        reason: String,
    },
}

impl fmt::Display for MicrocloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MicrocloudError::Unavailable { backend, reason } => {
                write!(f, "microcloud backend {backend} is unavailable: {reason}")
            }
            MicrocloudError::InvalidUrl { url, reason } => {
                write!(f, "invalid microcloud URL {url}: {reason}")
            }
            MicrocloudError::InvalidData { key, reason } => {
                write!(f, "invalid microcloud data at {key}: {reason}")
            }
        }
    }
}

impl std::error::Error for MicrocloudError {}
