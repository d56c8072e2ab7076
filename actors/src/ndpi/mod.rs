//! Flow classification with nDPI 4.2 (libndpi, LGPL-3.0, linked dynamically).
//!
//! [`Classifier`] implements [`Classify`] the way `ndpiReader -t` of nDPI 4.2 classifies a flow,
//! so that both print the same protocol for the same packets:
//! - one detection module with every protocol enabled;
//! - every packet is dissected until nDPI has found the application protocol and can extract no
//!   more metadata, or until the flow has had more than 80 (TCP) or 24 (UDP) packets, the
//!   defaults of ndpiReader's `-T` and `-U` options;
//! - a flow that ends undecided is handed to `ndpi_detection_giveup` with guessing by port and
//!   address enabled.
//!
//! The returned [`AppProtocol`] has the two parts of the printed name: `master` is the part before
//! the dot and `app` the part after it, 0 when nDPI found a single protocol. So `TLS.Facebook` is
//! `{ master: TLS, app: Facebook }`, `DNS` is `{ master: DNS, app: 0 }` and `Viber` is
//! `{ master: Viber, app: 0 }`. The ids are nDPI 4.2 protocol ids.

mod error;
mod ffi;
mod names;
#[cfg(test)]
mod tests;

use std::fmt;

pub use error::NdpiError;

use crate::flow::classify::{AppProtocol, Classify};
use ffi::{Detected, FlowStruct, Module};
use names::NameCache;

/// Dissection cap of TCP flows: detection gives up on the packet after this many (the default
/// of ndpiReader 4.2 `-T`).
pub const MAX_TCP_DISSECTED_PACKETS: u32 = 80;
/// Dissection cap of UDP flows: detection gives up on the packet after this many (the default
/// of ndpiReader 4.2 `-U`).
pub const MAX_UDP_DISSECTED_PACKETS: u32 = 24;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Returns the nDPI release of the loaded libndpi, e.g. `4.2.0`.
pub fn ndpi_revision() -> &'static str {
    ffi::revision()
}

/// An nDPI detection module with its pool of flow structs and a cache of printed names.
///
/// It is `Send` so a shard actor can own it, and not `Sync`: one instance serves one thread.
pub struct Classifier {
    module: Module,
    /// Flow structs released by [`Classify::finish`], zeroed and ready for the next flow. The
    /// pool never contains more structs than the peak number of flows in progress at once.
    free_flows: Vec<FlowStruct>,
    names: NameCache,
}

/// Free `ndpi_flow_struct`s a classifier keeps for reuse: at 688 bytes each (nDPI 4.2),
/// about 2.8 MB per shard. The size is an estimate, not measured: while more than this many
/// flows finish detection between two starts, the extra states are freed and allocated again.
const MAX_FREE_FLOWS: usize = 4_096;

impl Classifier {
    /// Creates a detection module with every protocol enabled, as ndpiReader 4.2 does.
    ///
    /// Fails when the loaded libndpi does not match the headers the crate was built with, or
    /// when nDPI cannot allocate or initialize the module.
    pub fn new() -> Result<Classifier, NdpiError> {
        let module = Module::new()?;
        let names = NameCache::new(module.supported_protocols());
        Ok(Classifier {
            module,
            free_flows: Vec::new(),
            names,
        })
    }

    /// Returns the protocol name of a report row: the application when nDPI found one
    /// (`Facebook` for `TLS.Facebook`), else the master protocol (`DNS`, `TLS`), else `Unknown`.
    /// Like [`Classify::name`], it allocates only on the first call for a protocol.
    pub fn report_name(&self, protocol: AppProtocol) -> &str {
        let protocol = to_app_protocol(Detected {
            master_protocol: protocol.master,
            app_protocol: protocol.app,
        });
        let most_specific = if protocol.app != 0 {
            protocol.app
        } else {
            protocol.master
        };
        let single = AppProtocol {
            master: most_specific,
            app: 0,
        };
        self.names.get(&self.module, single)
    }

    /// Clears a flow's nDPI state and keeps it for the next flow. When the pool already
    /// contains [`MAX_FREE_FLOWS`] the state is freed instead, so a burst of new flows does
    /// not keep its memory for the life of the process.
    fn release(&mut self, flow: Option<FlowStruct>) {
        let Some(mut flow) = flow else { return };
        if self.free_flows.len() < MAX_FREE_FLOWS {
            flow.reset();
            self.free_flows.push(flow);
        }
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("free_flows", &self.free_flows.len())
            .finish_non_exhaustive()
    }
}

/// nDPI state of one flow: its `ndpi_flow_struct` and the dissection count.
pub struct NdpiFlow {
    /// nDPI's state of the flow while detection runs. Once detection is complete the struct
    /// (688 bytes in nDPI 4.2) goes back to the classifier's pool, so a classified flow keeps
    /// only `result`.
    flow: Option<FlowStruct>,
    /// Packets passed to nDPI so far.
    packets: u32,
    /// Dissection cap for this flow's transport, set from its first packet.
    max_packets: u32,
    /// Final protocol, set when detection is complete.
    result: Option<Detected>,
}

impl fmt::Debug for NdpiFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NdpiFlow")
            .field("packets", &self.packets)
            .field("max_packets", &self.max_packets)
            .field("complete", &self.result.is_some())
            .finish_non_exhaustive()
    }
}

impl Classify for Classifier {
    type State = NdpiFlow;

    fn start(&mut self) -> NdpiFlow {
        let flow = self.free_flows.pop().unwrap_or_else(FlowStruct::new);
        NdpiFlow {
            flow: Some(flow),
            packets: 0,
            max_packets: 0,
            result: None,
        }
    }

    /// Dissects the packet unless detection is already complete. Detection completes as in
    /// ndpiReader 4.2: once the application protocol is known and
    /// `ndpi_extra_dissection_possible` is false, or once the flow exceeds its dissection cap.
    fn feed(&mut self, state: &mut NdpiFlow, ip_packet: &[u8], ts_us: u64) -> bool {
        let (Some(flow), None) = (state.flow.as_mut(), state.result) else {
            return true;
        };
        if state.packets == 0 {
            state.max_packets = max_dissected_packets(ip_packet);
        }
        state.packets = state.packets.saturating_add(1);
        let enough_packets = state.packets > state.max_packets;

        let detected = self
            .module
            .process_packet(flow, ip_packet, ts_us / 1000);
        if !enough_packets && detected.app_protocol == 0 {
            return false;
        }
        // Once nDPI names both the master protocol and the application (TLS.Facebook from the
        // SNI, DNS.Google from the query), extra dissection only adds metadata (JA3, certificate
        // details) that reports do not use, so feeding stops. A master protocol alone (TLS
        // without a known SNI) may still be refined by the certificate, so dissection goes on.
        let refined = detected.master_protocol != 0;
        if !enough_packets && !refined && self.module.extra_dissection_possible(flow) {
            return false;
        }

        let result = if detected.app_protocol == 0 {
            self.module.give_up(flow)
        } else {
            detected
        };
        state.result = Some(result);
        self.release(state.flow.take());
        true
    }

    /// Returns the final protocol, calling `ndpi_detection_giveup` with guessing when
    /// detection is still open, as ndpiReader does for flows still open at the end of a capture.
    /// A flow that was never fed is `Unknown`.
    fn finish(&mut self, mut state: NdpiFlow) -> AppProtocol {
        let detected = match (state.result, state.flow.as_mut()) {
            (Some(detected), _) => detected,
            (None, Some(flow)) if state.packets > 0 => self.module.give_up(flow),
            (None, _) => Detected::default(),
        };
        self.release(state.flow.take());
        to_app_protocol(detected)
    }

    /// Returns the name `ndpi_protocol2name` prints. Each name is built once per classifier and
    /// kept, so later calls for the same protocol allocate nothing.
    fn name(&self, protocol: AppProtocol) -> &str {
        self.names.get(&self.module, protocol)
    }
}

/// Converts nDPI's pair to the parts of its printed name. nDPI puts a single protocol in
/// `app_protocol` and prints only `app_protocol` when `master_protocol` is 0 or equal to it.
fn to_app_protocol(detected: Detected) -> AppProtocol {
    let Detected {
        master_protocol,
        app_protocol,
    } = detected;
    if master_protocol == 0 || master_protocol == app_protocol {
        AppProtocol {
            master: app_protocol,
            app: 0,
        }
    } else {
        AppProtocol {
            master: master_protocol,
            app: app_protocol,
        }
    }
}

/// Returns the dissection cap for the flow of `ip_packet`: 80 for TCP, 24 for UDP.
///
/// NOTE: ndpiReader 4.2 has no cap for other transports and dissects them to the flow's end.
/// They get the TCP cap here so an undetected flow cannot cost a dissection per packet forever.
/// nDPI 4.2 classifies those transports by IP protocol number on the first packet, so the cap
/// is not expected to change a result.
fn max_dissected_packets(ip_packet: &[u8]) -> u32 {
    match transport_protocol(ip_packet) {
        Some(IPPROTO_TCP) => MAX_TCP_DISSECTED_PACKETS,
        Some(IPPROTO_UDP) => MAX_UDP_DISSECTED_PACKETS,
        _ => MAX_TCP_DISSECTED_PACKETS,
    }
}

/// Returns the transport protocol number of an IPv4 or IPv6 packet, skipping IPv6 extension
/// headers (RFC 8200 §4), or `None` for a truncated or non-IP packet.
fn transport_protocol(ip_packet: &[u8]) -> Option<u8> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTHENTICATION: u8 = 51;
    const DESTINATION_OPTIONS: u8 = 60;

    match ip_packet.first()? >> 4 {
        4 => ip_packet.get(9).copied(),
        6 => {
            let mut next_header = *ip_packet.get(6)?;
            let mut offset = 40;
            loop {
                let header_len = match next_header {
                    HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                        (usize::from(*ip_packet.get(offset + 1)?) + 1) * 8
                    }
                    FRAGMENT => 8,
                    // RFC 4302 §2.2: the AH length is in 4-octet units, minus 2.
                    AUTHENTICATION => (usize::from(*ip_packet.get(offset + 1)?) + 2) * 4,
                    transport => return Some(transport),
                };
                next_header = *ip_packet.get(offset)?;
                offset += header_len;
            }
        }
        _ => None,
    }
}
