//! Checks of attach and detach requests, and the state changes of a registration.

use super::protocol::{AttachRequest, Tracker};
use super::registry_store::StoredTracker;

/// Shortest tracker lifetime accepted, in milliseconds.
pub const MIN_DURATION_MS: u64 = 1_000;

/// Maximum tracker lifetime accepted, in milliseconds (30 days).
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3600 * 1_000;

/// Maximum length of a reason or operator name, in bytes.
pub const MAX_TEXT_BYTES: usize = 500;

/// Checks an attach request. Returns the rejection message, which names the value and what
/// to give instead.
pub fn validate_attach(request: &AttachRequest) -> Result<(), String> {
    let imsi = &request.imsi;
    if !(5..=15).contains(&imsi.len()) || !imsi.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid IMSI {imsi:?}: give 5 to 15 decimal digits"));
    }
    if let Some(duration) = request.duration_ms {
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration) {
            return Err(format!("invalid duration of {duration} ms: give at least 1s and at most 30 days"));
        }
    }
    check_text("reason", &request.reason)?;
    check_text("requested_by", &request.requested_by)
}

fn check_text(name: &str, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("missing {name}: the audit log records why and by whom a tracker is attached; give a non-empty text"));
    }
    if text.len() > MAX_TEXT_BYTES || text.chars().any(char::is_control) {
        return Err(format!("invalid {name} {text:?}: give at most {MAX_TEXT_BYTES} bytes without control characters"));
    }
    Ok(())
}

/// Builds the registration of a checked request.
pub fn new_tracker(id: String, request: &AttachRequest, now_ms: u64) -> StoredTracker {
    let tracker = Tracker {
        id,
        imsi: request.imsi.clone(),
        reason: request.reason.trim().to_owned(),
        requested_by: request.requested_by.clone(),
        attached_at_ms: now_ms,
        expires_at_ms: request.duration_ms.map(|duration| now_ms.saturating_add(duration)),
    };
    StoredTracker { tracker, ended_at_ms: None, end_action: None }
}

/// Returns the registration ended at `now_ms` by `action` (`detach` or `expire`).
pub fn ended(stored: &StoredTracker, action: &str, now_ms: u64) -> StoredTracker {
    StoredTracker { ended_at_ms: Some(now_ms), end_action: Some(action.to_owned()), ..stored.clone() }
}

/// Returns whether an ended registration is older than the retention at `now_ms`.
pub fn is_past_retention(stored: &StoredTracker, retention_ms: u64, now_ms: u64) -> bool {
    stored.ended_at_ms.is_some_and(|ended| ended.saturating_add(retention_ms) < now_ms)
}

/// Milliseconds since the Unix epoch on the wall clock.
pub fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}
