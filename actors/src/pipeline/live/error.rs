//! Errors of a live capture, classified so the message can name the fix.

/// Class of a live capture error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveErrorKind {
    /// The process may not capture: it needs CAP_NET_RAW or root. Promiscuous mode needs
    /// nothing more on Linux, where libpcap sets it through the packet socket.
    PermissionDenied,
    /// No interface of that name exists.
    NotFound,
    /// The interface exists but is down.
    Down,
    /// libpcap rejected the BPF filter for the interface's link type.
    Filter,
    /// The interface's link type is not one the decoder reads.
    LinkType,
    /// Any other libpcap error, e.g. a read error.
    Other,
}

/// A live capture failed on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveError {
    /// The interface.
    pub interface: String,
    /// The class of the error.
    pub kind: LiveErrorKind,
    /// Message from libpcap.
    pub message: String,
}

impl LiveError {
    /// Classifies a libpcap error met while opening or reading `interface`.
    pub fn from_pcap(interface: &str, error: &pcap::Error) -> LiveError {
        let message = error.to_string();
        LiveError { interface: interface.to_owned(), kind: classify(&message), message }
    }
}

/// Classifies a libpcap message; the pcap crate passes only the text on. libpcap 1.10.3
/// words a missing capability as "You don't have permission ...", "... Operation not
/// permitted" or "... CAP_NET_RAW may be required", and an interface that is down as
/// "That device is not up". The other texts matched come from the kernel's error strings.
fn classify(message: &str) -> LiveErrorKind {
    let lower = message.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") || lower.contains("cap_net_raw") {
        LiveErrorKind::PermissionDenied
    } else if lower.contains("no such device") {
        LiveErrorKind::NotFound
    } else if lower.contains("not up") || lower.contains("went down") || lower.contains("network is down") {
        LiveErrorKind::Down
    } else {
        LiveErrorKind::Other
    }
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let interface = &self.interface;
        write!(f, "cannot capture on interface {interface}: {}", self.message)?;
        match self.kind {
            LiveErrorKind::PermissionDenied => write!(
                f,
                "; live capture needs the CAP_NET_RAW capability or root: \
                 run as root, or grant it once with `sudo setcap cap_net_raw=eip <path of imsitrace>`"
            ),
            LiveErrorKind::NotFound => write!(f, "; no interface of that name exists (`ip link` lists them)"),
            LiveErrorKind::Down => write!(f, "; the interface is down (bring it up with `ip link set {interface} up`)"),
            LiveErrorKind::Filter | LiveErrorKind::LinkType | LiveErrorKind::Other => Ok(()),
        }
    }
}

impl std::error::Error for LiveError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str) -> LiveError {
        LiveError::from_pcap("eth9", &pcap::Error::PcapError(message.to_owned()))
    }

    #[test]
    fn permission_message_names_capabilities() {
        let denied = error("eth9: You don't have permission to perform this capture on that device (socket: Operation not permitted)");
        assert_eq!(denied.kind, LiveErrorKind::PermissionDenied);
        let text = denied.to_string();
        assert!(text.contains("interface eth9"), "{text}");
        assert!(text.contains("CAP_NET_RAW"), "{text}");
        assert!(text.contains("setcap"), "{text}");

        let socket = error("Attempt to create packet socket failed - CAP_NET_RAW may be required");
        assert_eq!(socket.kind, LiveErrorKind::PermissionDenied);
    }

    #[test]
    fn missing_and_down_interfaces_classified() {
        assert_eq!(error("eth9: No such device exists (SIOCGIFINDEX: No such device)").kind, LiveErrorKind::NotFound);
        assert_eq!(error("eth9: That device is not up").kind, LiveErrorKind::Down);
        assert_eq!(error("The interface disappeared").kind, LiveErrorKind::Other);
    }
}
