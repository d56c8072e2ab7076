//! Printed protocol names, built with `ndpi_protocol2name` on first use and kept.

use std::cell::OnceCell;

use super::ffi::{Detected, Module};
use super::to_app_protocol;
use crate::flow::classify::AppProtocol;

/// One slot per (master, app) pair of protocol ids, filled on first lookup.
///
/// Rows are indexed by master id and allocated the first time that master is looked up. So
/// memory grows with the masters in use (a few, such as TLS, QUIC, DNS and HTTP), not with the
/// square of the protocol count. Ids at or above the module's protocol count share the last
/// slot of a row or column, because nDPI prints all of them as `Unknown`.
pub(super) struct NameCache {
    /// Number of protocol ids in the module (`ndpi_get_num_supported_protocols`).
    known_ids: usize,
    rows: Box<[OnceCell<NameRow>]>,
}

/// Names of one master id combined with every app id, filled on first lookup.
type NameRow = Box<[OnceCell<Box<str>>]>;

impl NameCache {
    pub(super) fn new(supported_protocols: u32) -> NameCache {
        let known_ids = supported_protocols as usize;
        let rows = (0..=known_ids).map(|_| OnceCell::new()).collect();
        NameCache { known_ids, rows }
    }

    /// Returns the printed name of `protocol`, building it with `module` on the first call.
    pub(super) fn get<'a>(&'a self, module: &Module, protocol: AppProtocol) -> &'a str {
        // AppProtocol values built by callers may have nDPI's own layout (`{0, TLS}`) or equal
        // parts. Both print like the normalized pair.
        let protocol = to_app_protocol(Detected {
            master_protocol: protocol.master,
            app_protocol: protocol.app,
        });
        let row = self.rows[self.slot(protocol.master)]
            .get_or_init(|| (0..=self.known_ids).map(|_| OnceCell::new()).collect());
        row[self.slot(protocol.app)].get_or_init(|| {
            let name = module.protocol_name(Detected {
                master_protocol: protocol.master,
                app_protocol: protocol.app,
            });
            name.into_boxed_str()
        })
    }

    fn slot(&self, id: u16) -> usize {
        usize::from(id).min(self.known_ids)
    }
}
