//! Session-event log: one JSON object per line (JSON Lines), appended to a file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::output::FileError;
use crate::session::event::SessionEvent;

/// Buffered JSON-lines writer of [`SessionEvent`]s.
///
/// Events reach the file when the buffer fills, on [`EventsWriter::flush`] and on
/// [`EventsWriter::close`]. Dropping the log flushes too but loses any error.
#[derive(Debug)]
pub struct EventsWriter {
    path: PathBuf,
    writer: BufWriter<File>,
    events: u64,
}

impl EventsWriter {
    /// Creates `path`, emptying it if it exists.
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let file = File::create(path).map_err(FileError::on("create", path))?;
        Ok(Self::with_file(path, file))
    }

    /// Opens `path` for appending, creating it if needed.
    pub fn append(path: &Path) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(FileError::on("open", path))?;
        Ok(Self::with_file(path, file))
    }

    fn with_file(path: &Path, file: File) -> Self {
        EventsWriter {
            path: path.to_path_buf(),
            writer: BufWriter::new(file),
            events: 0,
        }
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of events written since the log was opened.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Appends one event as a line of JSON.
    pub fn write(&mut self, event: &SessionEvent) -> Result<(), FileError> {
        serde_json::to_writer(&mut self.writer, event)
            .map_err(io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(FileError::on("write", &self.path))?;
        self.events += 1;
        Ok(())
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> Result<(), FileError> {
        self.writer
            .flush()
            .map_err(FileError::on("write", &self.path))
    }

    /// Flushes and closes the log.
    pub fn close(mut self) -> Result<(), FileError> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::session::event::{EventKind, Tunnel, TunnelKey, TunnelRole};

    fn event(kind: EventKind, imsi: &str) -> SessionEvent {
        let tunnel = Tunnel {
            key: TunnelKey {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                teid: 0x1234,
            },
            role: TunnelRole::Uplink,
            bearer: 5,
            interface: 1,
        };
        SessionEvent {
            kind,
            ts_us: 1_374_938_100_000_000,
            request_ts_us: 1_374_938_099_990_000,
            seq: 7,
            site: "site-a".to_owned(),
            session_id: 1,
            imsi: imsi.to_owned(),
            msisdn: Some("393331234567".to_owned()),
            imei: None,
            apn: Some("internet".to_owned()),
            rat: Some("EUTRAN".to_owned()),
            uli: None,
            serving_network: Some("001-01".to_owned()),
            ue_ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ue_ipv6: None,
            gtp_version: 2,
            message_type: 32,
            cause: Some(16),
            tunnels: vec![tunnel],
            added: vec![tunnel],
            removed: vec![],
        }
    }

    #[test]
    fn lines_parse_back_to_events() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.jsonl");
        let events = [
            event(EventKind::Attach, "001010000000001"),
            event(EventKind::Detach, "001010000000002"),
        ];
        let mut log = EventsWriter::create(&path).expect("create");
        for event in &events {
            log.write(event).expect("write");
        }
        assert_eq!(log.events(), 2);
        log.close().expect("close");

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for (line, expected) in lines.iter().zip(&events) {
            let parsed: SessionEvent = serde_json::from_str(line).expect("valid JSON event");
            assert_eq!(&parsed, expected);
        }
        assert!(lines[0].contains("\"kind\":\"attach\""), "{}", lines[0]);
    }

    #[test]
    fn buffered_until_flush() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.jsonl");
        let mut log = EventsWriter::create(&path).expect("create");
        log.write(&event(EventKind::Attach, "001010000000001"))
            .expect("write");
        assert_eq!(std::fs::metadata(&path).expect("metadata").len(), 0);
        log.flush().expect("flush");
        assert!(std::fs::metadata(&path).expect("metadata").len() > 0);
    }

    #[test]
    fn append_keeps_create_empties() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.jsonl");
        for _ in 0..2 {
            let mut log = EventsWriter::append(&path).expect("append");
            log.write(&event(EventKind::Attach, "001010000000001"))
                .expect("write");
            log.close().expect("close");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);

        let mut log = EventsWriter::create(&path).expect("create");
        log.write(&event(EventKind::Detach, "001010000000001"))
            .expect("write");
        log.close().expect("close");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn open_error_names_path() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("missing").join("events.jsonl");
        let error = EventsWriter::create(&path).expect_err("missing directory");
        assert_eq!(error.path, path);
        assert_eq!(error.operation, "create");
    }
}
