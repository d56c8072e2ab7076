//! Reads `[metrics]`: the address of the Prometheus `/metrics` listener.

use std::net::SocketAddr;

use super::schema::MetricsSection;
use super::table::Section;

/// Reads `[metrics]`. Without `listen` the node serves no `/metrics` page.
pub fn read_metrics(mut section: Section<'_>) -> MetricsSection {
    let listen = section.string("listen").and_then(|text| match parse_listen(&text) {
        Ok(address) => Some(address),
        Err(message) => {
            section.problem("listen", message);
            None
        }
    });
    section.finish();
    MetricsSection { listen }
}

/// Parses `IP:PORT` with a port other than 0, which a scraper could not find.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = text
        .parse()
        .map_err(|_| format!("invalid address {text:?}: give IP:PORT, e.g. 127.0.0.1:9464, or [::1]:9464 for IPv6"))?;
    if address.port() == 0 {
        return Err(format!("invalid port 0 in {text:?}: give the fixed port that Prometheus scrapes, e.g. 127.0.0.1:9464"));
    }
    Ok(address)
}
