//! Reads pcap and pcapng files with libpcap and merges several files by packet time.

use std::path::{Path, PathBuf};

use crate::wire::LinkType;

/// A file input failed to open or read.
#[derive(Debug)]
pub struct InputError {
    /// The file.
    pub path: PathBuf,
    /// Error message from libpcap or the decoder.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read capture file {}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for InputError {}

/// One frame as read from a file.
#[derive(Debug, Clone, Copy)]
pub struct ReadFrame<'a> {
    /// Link type of the file it came from.
    pub link: LinkType,
    /// Packet time, microseconds since the epoch.
    pub ts_us: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

struct FileSource {
    path: PathBuf,
    capture: pcap::Capture<pcap::Offline>,
    link: LinkType,
    /// The next frame, copied out of libpcap's buffer so several files can be compared.
    head: Option<(u64, u32, Vec<u8>)>,
}

impl FileSource {
    fn open(path: &Path) -> Result<FileSource, InputError> {
        let error = |message: String| InputError { path: path.to_path_buf(), message };
        let capture = pcap::Capture::from_file(path).map_err(|e| error(e.to_string()))?;
        let dlt = capture.get_datalink().0;
        let link = LinkType::from_dlt(dlt).map_err(|_| {
            error(format!("link type {dlt} is not supported (use Ethernet, Linux cooked SLL/SLL2 or raw IP captures)"))
        })?;
        Ok(FileSource { path: path.to_path_buf(), capture, link, head: None })
    }

    /// Loads the next frame into `head`; returns false at the end of the file.
    fn advance(&mut self) -> Result<bool, InputError> {
        let mut buffer = self.head.take().map(|(_, _, b)| b).unwrap_or_default();
        match self.capture.next_packet() {
            Ok(packet) => {
                buffer.clear();
                buffer.extend_from_slice(packet.data);
                self.head = Some((timeval_us(packet.header), packet.header.len, buffer));
                Ok(true)
            }
            Err(pcap::Error::NoMorePackets) => Ok(false),
            Err(e) => Err(InputError { path: self.path.clone(), message: e.to_string() }),
        }
    }
}

/// Packet time in microseconds; times before the epoch become 0.
fn timeval_us(header: &pcap::PacketHeader) -> u64 {
    let secs = u64::try_from(header.ts.tv_sec).unwrap_or(0);
    let micros = u64::try_from(header.ts.tv_usec).unwrap_or(0);
    secs * 1_000_000 + micros
}

/// Reads frames from several files in packet-time order (a k-way merge, like mergecap).
/// A single file is read straight from libpcap's buffer, without the merge's copy.
pub struct MergedReader {
    sources: Vec<FileSource>,
    current: Option<usize>,
    direct: bool,
    /// Read errors met after a file was opened; that file's frames end there.
    pub errors: Vec<InputError>,
}

impl MergedReader {
    /// Opens every file; fails on the first one that cannot be opened.
    pub fn open(paths: &[PathBuf]) -> Result<MergedReader, InputError> {
        let direct = paths.len() == 1;
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            let mut source = FileSource::open(path)?;
            if direct || source.advance()? {
                sources.push(source);
            }
        }
        Ok(MergedReader { sources, current: None, direct, errors: Vec::new() })
    }

    /// Returns the next frame in time order, or `None` when every file is exhausted. A read
    /// error (a file cut short, say) ends that file: it is recorded in `errors` and the
    /// other files go on.
    pub fn next_frame(&mut self) -> Option<ReadFrame<'_>> {
        if self.direct {
            return self.next_direct();
        }
        if let Some(index) = self.current.take() {
            match self.sources[index].advance() {
                Ok(true) => {}
                Ok(false) => {
                    self.sources.swap_remove(index);
                }
                Err(error) => {
                    self.errors.push(error);
                    self.sources.swap_remove(index);
                }
            }
        }
        let earliest = self.sources.iter().enumerate().filter_map(|(i, s)| s.head.as_ref().map(|h| (h.0, i))).min();
        let (_, index) = earliest?;
        self.current = Some(index);
        let source = &self.sources[index];
        let (ts_us, orig_len, data) = source.head.as_ref()?;
        Some(ReadFrame { link: source.link, ts_us: *ts_us, orig_len: *orig_len, data })
    }
}

impl MergedReader {
    fn next_direct(&mut self) -> Option<ReadFrame<'_>> {
        let MergedReader { sources, errors, .. } = self;
        let source = sources.first_mut().filter(|_| errors.is_empty())?;
        let link = source.link;
        match source.capture.next_packet() {
            Ok(packet) => Some(ReadFrame { link, ts_us: timeval_us(packet.header), orig_len: packet.header.len, data: packet.data }),
            Err(pcap::Error::NoMorePackets) => None,
            Err(e) => {
                errors.push(InputError { path: source.path.clone(), message: e.to_string() });
                None
            }
        }
    }
}

/// Expands directories into the capture files they contain (`.pcap`, `.pcapng`, `.cap`,
/// sorted by name); files are kept as given.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let entries = std::fs::read_dir(input).map_err(|e| InputError { path: input.clone(), message: e.to_string() })?;
        let mut found: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_capture_file(p)).collect();
        found.sort();
        if found.is_empty() {
            return Err(InputError { path: input.clone(), message: "no .pcap, .pcapng or .cap file found in the directory".into() });
        }
        files.extend(found);
    }
    Ok(files)
}

fn is_capture_file(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    path.is_file() && matches!(extension, "pcap" | "pcapng" | "cap")
}
