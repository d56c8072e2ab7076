//! Errors raised while setting up nDPI.

use std::error::Error;
use std::fmt;

/// Failure to create a [`Classifier`](super::Classifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdpiError {
    /// The loaded libndpi reports another API version than the headers used at build time.
    ApiVersionMismatch {
        /// `NDPI_API_VERSION` in the headers.
        headers: u32,
        /// `ndpi_get_api_version()` of the loaded library.
        library: u32,
    },
    /// The loaded libndpi has another `ndpi_flow_struct` size than the headers.
    FlowSizeMismatch {
        /// `sizeof(struct ndpi_flow_struct)` in the headers, in bytes.
        headers: usize,
        /// `ndpi_detection_get_sizeof_ndpi_flow_struct()` of the loaded library, in bytes.
        library: u32,
    },
    /// `ndpi_init_detection_module` returned NULL.
    InitFailed,
}

impl fmt::Display for NdpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NdpiError::ApiVersionMismatch { headers, library } => write!(
                f,
                "libndpi API version {library} does not match the headers used at build time \
                 ({headers}); rebuild imsitrace against the installed libndpi-dev"
            ),
            NdpiError::FlowSizeMismatch { headers, library } => write!(
                f,
                "libndpi flow struct is {library} bytes but the headers used at build time say \
                 {headers}; rebuild imsitrace against the installed libndpi-dev"
            ),
            NdpiError::InitFailed => write!(
                f,
                "ndpi_init_detection_module returned NULL: allocating the module or \
                 initializing a library it depends on failed"
            ),
        }
    }
}

impl Error for NdpiError {}
