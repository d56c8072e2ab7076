//! The interface between the flow table and an application classifier (nDPI in production).

/// An application protocol as a classifier reports it: a master protocol (HTTP, TLS, DNS, QUIC)
/// and an application (Facebook, Viber), each a classifier-specific numeric id, 0 for unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AppProtocol {
    /// Master (transport-level application) protocol id.
    pub master: u16,
    /// Application protocol id.
    pub app: u16,
}

/// Classifies the packets of one flow at a time; one instance per shard, never shared.
pub trait Classify {
    /// Per-flow classifier state, created when a flow starts and consumed when it ends.
    type State;

    /// Starts the state of a new flow. Implementations reuse released states so that a
    /// steady flow rate allocates nothing.
    fn start(&mut self) -> Self::State;

    /// Feeds one inner IP packet (starting at the IP header) seen at `ts_us` microseconds.
    /// Returns true when classification is final and later packets need not be fed.
    fn feed(&mut self, state: &mut Self::State, ip_packet: &[u8], ts_us: u64) -> bool;

    /// Ends the flow: returns its protocol (guessing from ports and addresses when packet
    /// inspection found nothing) and releases the state for reuse.
    fn finish(&mut self, state: Self::State) -> AppProtocol;

    /// Returns the printed name of a protocol, e.g. `TLS.Facebook`, `DNS`, `Viber`, `Unknown`.
    fn name(&self, protocol: AppProtocol) -> &str;
}
