//! The tracker audit log: one JSON line per attach, detach and expiry, appended to a local
//! file and to the Redis audit list, so the record survives the loss of the collector host.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::protocol::Tracker;
use super::registry_store::TrackerStore;

/// One audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLine<'a> {
    /// Time of the action, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `attach`, `detach` or `expire`.
    pub action: &'a str,
    /// Tracker id.
    pub id: &'a str,
    /// IMSI of the tracked subscriber.
    pub imsi: &'a str,
    /// Operator of the action: the requester of an attach or detach, the collector node
    /// of an expiry.
    pub requested_by: &'a str,
    /// Reason given at attach.
    pub reason: &'a str,
    /// Collector node that wrote the line.
    pub collector: &'a str,
}

/// The audit log of one collector.
pub struct AuditLog {
    path: PathBuf,
    collector: String,
}

impl AuditLog {
    /// Creates the parent directory of `path` and checks that the file can be opened for
    /// appending, so that a collector fails at start on an unwritable path.
    pub fn open(path: &Path, collector: &str) -> Result<AuditLog, String> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| format!("cannot create the directory of tracker.audit_log {}: {error}", parent.display()))?;
        }
        open_append(path)?;
        Ok(AuditLog { path: path.to_path_buf(), collector: collector.to_owned() })
    }

    /// Returns the file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the line of `action` on `tracker` to the file and to the Redis list. A
    /// failure of either is logged at error level and does not undo the action.
    pub async fn record(&self, store: &mut TrackerStore, action: &str, tracker: &Tracker, by: &str, time_ms: u64) {
        let line = AuditLine { time_ms, action, id: &tracker.id, imsi: &tracker.imsi, requested_by: by, reason: &tracker.reason, collector: &self.collector };
        let json = serde_json::to_string(&line).unwrap_or_default();
        if let Err(error) = open_append(&self.path).and_then(|mut file| writeln!(file, "{json}").map_err(|error| error.to_string())) {
            tracing::error!(path = %self.path.display(), %error, tracker = %tracker.id, action, "cannot append to the tracker audit log");
        }
        if let Err(error) = store.append_audit(&json).await {
            tracing::error!(%error, tracker = %tracker.id, action, "cannot append to the tracker audit list");
        }
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| format!("cannot open the tracker audit log {} for appending: {error}", path.display()))
}
