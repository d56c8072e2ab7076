//! Output files: per-subscriber pcap files, per-bucket report files and the
//! session-event log.

pub mod events;
pub mod pcap;
pub mod report;
pub mod time;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error on an output file, with the operation and the path it failed on.
#[derive(Debug)]
pub struct FileError {
    /// Operation that failed, e.g. `"open"`, `"write"`, `"rename"`.
    pub operation: &'static str,
    /// File or directory the operation was applied to.
    pub path: PathBuf,
    /// Error from the operating system.
    pub source: io::Error,
}

impl FileError {
    /// Returns a closure that wraps an `io::Error` with `operation` and `path`, for `map_err`.
    pub fn on<'a>(
        operation: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> FileError + 'a {
        move |source| FileError {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed to {} {}: {}",
            self.operation,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
