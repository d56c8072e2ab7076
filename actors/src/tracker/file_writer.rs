//! The pcap writer of one tracker on one probe: one actor per file, started by the router
//! at the first frame of a session and stopped when the session ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::output::pcap::{PcapFile, PcapOptions};
use crate::pipeline::records::{RecordKind, WriterBatch};

/// Messages of a tracker file writer.
#[derive(ractor_cluster::RactorMessage)]
pub enum FileMsg {
    /// Frames of the tracker, in capture order.
    Records(WriterBatch),
    /// Writes out the buffer when it is older than the flush interval.
    FlushDue,
    /// Writes out the buffer, then replies.
    Sync(RpcReplyPort<()>),
    /// Writes out the buffer, closes the file and stops the actor.
    Close,
}

/// Start arguments of a tracker file writer.
pub struct FileArgs {
    /// The new file.
    pub path: PathBuf,
    /// Pcap link type of every frame of the file.
    pub link_type: u32,
    /// Maximum wall time a written frame stays in the buffer.
    pub flush_interval: Duration,
}

/// State of a tracker file writer.
pub struct FileState {
    file: Option<PcapFile>,
    write_errors: u64,
    /// Counts this writer in the `imsitrace_tracker_writers` gauge until the actor stops.
    _open: crate::metrics::registry::TrackerWriterGuard,
}

/// A tracker file writer actor.
pub struct FileWriter;

impl Actor for FileWriter {
    type Msg = FileMsg;
    type State = FileState;
    type Arguments = FileArgs;

    async fn pre_start(&self, myself: ActorRef<FileMsg>, args: FileArgs) -> Result<FileState, ActorProcessingErr> {
        let options = PcapOptions { flush_interval: args.flush_interval, max_open: 1, ..PcapOptions::default() };
        let file = PcapFile::open(&args.path, args.link_type, &options)?;
        // The header is buffered until the first flush; writing it now makes the file readable at once.
        let mut file = file;
        file.flush()?;
        myself.send_interval(args.flush_interval, || FileMsg::FlushDue);
        tracing::debug!(path = %args.path.display(), "tracker file opened");
        Ok(FileState { file: Some(file), write_errors: 0, _open: crate::metrics::registry().tracker_writer_opened() })
    }

    async fn handle(&self, myself: ActorRef<FileMsg>, message: FileMsg, state: &mut FileState) -> Result<(), ActorProcessingErr> {
        match message {
            FileMsg::Records(batch) => state.write(&batch),
            FileMsg::FlushDue => state.flush_due(),
            FileMsg::Sync(reply) => {
                state.flush();
                let _ = reply.send(());
            }
            FileMsg::Close => {
                state.close();
                myself.stop(None);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<FileMsg>, state: &mut FileState) -> Result<(), ActorProcessingErr> {
        state.close();
        Ok(())
    }
}

impl FileState {
    fn write(&mut self, batch: &WriterBatch) {
        let Some(file) = self.file.as_mut() else { return };
        for record in batch.records.iter().filter(|r| r.kind == RecordKind::Frame) {
            if let Err(error) = file.write(record.ts_us, record.orig_len, batch.bytes(record)) {
                self.write_errors += 1;
                // The first error of a file is logged; the count follows when it closes.
                if self.write_errors == 1 {
                    tracing::error!(path = %file.path().display(), %error, "cannot write a tracker file");
                }
            }
        }
    }

    fn flush_due(&mut self) {
        let Some(file) = self.file.as_mut() else { return };
        if let Err(error) = file.flush_if_due(Instant::now()) {
            tracing::error!(path = %file.path().display(), %error, "cannot flush a tracker file");
        }
    }

    fn flush(&mut self) {
        let Some(file) = self.file.as_mut() else { return };
        if let Err(error) = file.flush() {
            tracing::error!(path = %file.path().display(), %error, "cannot flush a tracker file");
        }
    }

    fn close(&mut self) {
        let Some(file) = self.file.take() else { return };
        let path = file.path().to_path_buf();
        match file.close() {
            Ok(len) => tracing::debug!(path = %path.display(), len, write_errors = self.write_errors, "tracker file closed"),
            Err(error) => tracing::error!(path = %path.display(), %error, "cannot close a tracker file"),
        }
    }
}
