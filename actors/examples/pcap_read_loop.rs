//! Reads every packet of a pcap file with libpcap and touches its bytes, the ceiling for
//! any tool that reads the same file through libpcap. `scripts/bench.sh` runs it next to
//! `imsitrace analyze`.
//!
//! Prints one JSON line: packets, captured bytes, a checksum of the first byte of every
//! packet (so the compiler cannot drop the reads), the time from opening the file to the
//! last packet, in seconds, and packets per second over that time.
//!
//! Run with `cargo run --release -p imsitrace-actors --example pcap_read_loop -- FILE`.

use std::process::ExitCode;
use std::time::Instant;

/// Totals of one pass over a capture.
struct ReadTotals {
    packets: u64,
    bytes: u64,
    checksum: u64,
}

/// Reads every packet of `path`, summing captured lengths and first bytes.
fn read_all(path: &str) -> Result<ReadTotals, pcap::Error> {
    let mut capture = pcap::Capture::from_file(path)?;
    let mut totals = ReadTotals { packets: 0, bytes: 0, checksum: 0 };
    loop {
        match capture.next_packet() {
            Ok(packet) => {
                totals.packets += 1;
                totals.bytes += packet.data.len() as u64;
                totals.checksum = totals.checksum.wrapping_add(u64::from(packet.data.first().copied().unwrap_or(0)));
            }
            Err(pcap::Error::NoMorePackets) => return Ok(totals),
            Err(error) => return Err(error),
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: pcap_read_loop FILE (one pcap or pcapng file)");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let totals = match read_all(&path) {
        Ok(totals) => totals,
        Err(error) => {
            eprintln!("reading {path} failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let elapsed_s = started.elapsed().as_secs_f64();
    println!(
        "{{\"packets\":{},\"bytes\":{},\"checksum\":{},\"elapsed_s\":{:.6},\"packets_per_s\":{:.0}}}",
        totals.packets,
        totals.bytes,
        totals.checksum,
        elapsed_s,
        totals.packets as f64 / elapsed_s.max(1e-9)
    );
    ExitCode::SUCCESS
}
