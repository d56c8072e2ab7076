//! Opens one interface for a live capture.

use std::os::fd::{AsRawFd, RawFd};

use super::error::{LiveError, LiveErrorKind};
use super::filter::{default_filter_for, filter_error};
use super::options::LiveOptions;
use crate::wire::LinkType;

/// An open, non-blocking capture on one interface, with its filter set.
pub struct InterfaceCapture {
    /// The libpcap handle.
    pub capture: pcap::Capture<pcap::Active>,
    /// Link type of the interface.
    pub link: LinkType,
    /// Descriptor to wait on with `poll(2)`.
    pub fd: RawFd,
    /// The BPF filter set on the capture.
    pub filter: String,
}

impl InterfaceCapture {
    /// Opens `name` with the snapshot length, buffer, timeout, immediate and promiscuous
    /// settings of `options`, switches it to non-blocking reads and sets the filter of
    /// `options`, or the default for the interface's link type.
    pub fn open(name: &str, options: &LiveOptions) -> Result<InterfaceCapture, LiveError> {
        let pcap_error = |error: pcap::Error| LiveError::from_pcap(name, &error);
        let inactive = pcap::Capture::from_device(name).map_err(pcap_error)?;
        let capture = inactive
            .snaplen(options.snaplen as i32)
            .buffer_size(options.buffer_bytes())
            .immediate_mode(options.immediate)
            .timeout(options.read_timeout_ms())
            .promisc(options.promiscuous)
            .open()
            .map_err(pcap_error)?;
        let mut capture = capture.setnonblock().map_err(pcap_error)?;
        let dlt = capture.get_datalink().0;
        let link = LinkType::from_dlt(dlt).map_err(|_| LiveError {
            interface: name.to_owned(),
            kind: LiveErrorKind::LinkType,
            message: format!("link type {dlt} is not supported (capture on an Ethernet interface, or on `any` for Linux cooked frames)"),
        })?;
        let filter = options.filter.clone().unwrap_or_else(|| default_filter_for(capture.get_datalink()));
        capture.filter(&filter, true).map_err(|error| LiveError {
            interface: name.to_owned(),
            kind: LiveErrorKind::Filter,
            message: filter_error(&filter, &error),
        })?;
        let fd = capture.as_raw_fd();
        Ok(InterfaceCapture { capture, link, fd, filter })
    }
}
