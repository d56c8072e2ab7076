//! Memory per state: bytes per tunnel key in the tunnel table and per flow in the flow
//! table, loaded through the calls a shard makes (`TunnelTable::apply` with attach events,
//! `FlowTable::packet` with the first packet of each flow).
//!
//! Run with `cargo bench -p imsitrace-actors --bench memory [-- COUNT...]`; the default
//! counts are 1,000,000 and 10,000,000. For each count the bench prints:
//! - heap bytes allocated through Rust's global allocator, counted by a wrapper around
//!   `System`: live bytes after loading minus before, and the peak during loading;
//! - bytes in use in glibc malloc (`mallinfo2`: arena plus mmapped blocks), which also
//!   holds the `ndpi_flow_struct` of each flow, allocated by nDPI with `ndpi_flow_malloc`;
//! - the process's resident set (`VmRSS`) after minus before, and its peak (`VmHWM`, reset
//!   before each load through `/proc/self/clear_refs`).
//!
//! Flows are loaded three times: with a classifier that keeps no state (the table alone)
//! and twice with nDPI, as the shards run it. In the first two loads each flow gets one
//! packet, a TCP SYN from the UE to port 443, so the flow stays undecided and keeps its
//! nDPI state. In the third each flow gets one DNS query for www.google.com, which nDPI
//! classifies on that packet, so the flow's nDPI state goes back to the classifier's pool.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use imsitrace::flow::classify::{AppProtocol, Classify};
use imsitrace::flow::{ExpiredFlow, FlowTable, FlowTimeouts};
use imsitrace::ndpi::{Classifier, NdpiFlow};
use imsitrace::session::{EventKind, SessionEvent, Tunnel, TunnelKey, TunnelRole};
use imsitrace::tunnel::{TunnelOwner, TunnelTable};
use imsitrace::wire::control::Digits;
use imsitrace::wire::{FlowKey, InnerPacket};

/// Counts loaded when no count is given on the command line.
const DEFAULT_COUNTS: [usize; 2] = [1_000_000, 10_000_000];
/// Target of the sum of bytes per tunnel key and bytes per flow.
const TARGET_BYTES_PER_TUNNEL_AND_FLOW: f64 = 200.0;
/// Flows per subscriber in the flow loads.
const FLOWS_PER_SUBSCRIBER: usize = 4;
/// End Marker grace of `imsitrace analyze`, microseconds; the table only reads it on Move events.
const END_MARKER_GRACE_US: u64 = 2_000_000;
/// First packet time, 2013-07-27 15:10:00 UTC in microseconds (the synthetic captures' epoch).
const START_US: u64 = 1_374_937_800_000_000;
/// hashbrown's control bytes per group (SSE2 width), allocated after the buckets.
const HASHBROWN_GROUP_WIDTH: usize = 16;

/// Rust heap bytes live now.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Highest value of `LIVE_BYTES` since the last [`reset_peak`].
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// `System` with a count of the bytes it holds for Rust.
struct CountingAllocator;

impl CountingAllocator {
    fn add(size: usize) {
        let live = LIVE_BYTES.fetch_add(size, Ordering::Relaxed) + size;
        PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
    }

    fn sub(size: usize) {
        LIVE_BYTES.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counters are only bookkeeping beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which System shares.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this wrapper with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` through this wrapper with `layout`.
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            Self::sub(layout.size());
            Self::add(new_size);
        }
        new_ptr
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn reset_peak() {
    PEAK_BYTES.store(LIVE_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// `struct mallinfo2` of glibc 2.33 and later, every field in bytes or counts.
#[repr(C)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

extern "C" {
    /// glibc's malloc statistics of the main and thread arenas.
    fn mallinfo2() -> MallInfo2;
    /// glibc: returns free memory at the top of the heap and in free chunks to the system.
    fn malloc_trim(pad: usize) -> i32;
    /// nDPI 4.2: `sizeof(struct ndpi_flow_struct)` of the loaded library.
    fn ndpi_detection_get_sizeof_ndpi_flow_struct() -> u32;
}

/// Bytes that glibc malloc hands out now: chunks in use in the arenas plus mmapped blocks.
fn malloc_in_use() -> usize {
    // SAFETY: mallinfo2 takes no arguments and returns a struct by value.
    let info = unsafe { mallinfo2() };
    info.uordblks + info.hblkhd
}

/// Returns a field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), or 0 when absent.
fn proc_status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<usize>().ok());
    kib.unwrap_or(0) * 1024
}

/// Resets `VmHWM` to the current RSS (Linux 4.0 and later). Returns false when the kernel
/// rejects the write, so the printed peak then covers the whole process run.
fn reset_rss_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Memory counters at one instant.
#[derive(Clone, Copy)]
struct Snapshot {
    rust: usize,
    malloc: usize,
    rss: usize,
}

impl Snapshot {
    fn take() -> Snapshot {
        Snapshot { rust: LIVE_BYTES.load(Ordering::Relaxed), malloc: malloc_in_use(), rss: proc_status_bytes("VmRSS") }
    }
}

/// Memory a load added, in bytes.
struct Usage {
    rust: usize,
    rust_peak: usize,
    malloc: usize,
    rss: usize,
    rss_peak: usize,
}

/// Runs `load` and measures what its result keeps allocated, and the peak while it ran.
/// Trims malloc first, so free memory left by an earlier load does not absorb the growth.
fn measure<T>(load: impl FnOnce() -> T) -> (T, Usage) {
    // SAFETY: malloc_trim only releases free memory; every live allocation stays valid.
    unsafe { malloc_trim(0) };
    let rss_peak_reset = reset_rss_peak();
    let before = Snapshot::take();
    reset_peak();
    let loaded = load();
    let after = Snapshot::take();
    let rss_peak = if rss_peak_reset { proc_status_bytes("VmHWM") } else { 0 };
    let usage = Usage {
        rust: after.rust.saturating_sub(before.rust),
        rust_peak: PEAK_BYTES.load(Ordering::Relaxed).saturating_sub(before.rust),
        malloc: after.malloc.saturating_sub(before.malloc),
        rss: after.rss.saturating_sub(before.rss),
        rss_peak: rss_peak.saturating_sub(before.rss),
    };
    (loaded, usage)
}

fn release(value: impl Sized) {
    drop(value);
    // SAFETY: as in `measure`.
    unsafe { malloc_trim(0) };
}

/// IMSI `00101` followed by `number` in ten digits.
fn imsi(number: usize) -> Digits {
    let mut digits = Digits::from_ascii(b"00101").unwrap_or_default();
    let mut divisor = 1_000_000_000;
    while divisor > 0 {
        digits.push(((number / divisor) % 10) as u8 + b'0');
        divisor /= 10;
    }
    digits
}

/// Builds the attach event of session `number`: an uplink key on one of 256 SGW addresses
/// and a downlink key on one of 65,536 eNodeB addresses, TEID `number + 1` on both.
fn attach_event(number: usize) -> SessionEvent {
    let teid = (number as u32).wrapping_add(1);
    let uplink = Tunnel {
        key: TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(10, 40, 0, number as u8)), teid },
        role: TunnelRole::Uplink,
        bearer: 5,
        interface: 1,
    };
    let downlink = Tunnel {
        key: TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(10, 100, (number >> 8) as u8, number as u8)), teid },
        role: TunnelRole::Downlink,
        bearer: 5,
        interface: 0,
    };
    let ts_us = START_US + number as u64;
    SessionEvent {
        kind: EventKind::Attach,
        ts_us,
        request_ts_us: ts_us,
        seq: number as u64,
        site: "bench".to_owned(),
        session_id: number as u64 + 1,
        imsi: imsi(number).as_str().to_owned(),
        msisdn: None,
        imei: None,
        apn: None,
        rat: None,
        uli: None,
        serving_network: None,
        ue_ipv4: None,
        ue_ipv6: None,
        gtp_version: 2,
        message_type: 32,
        cause: Some(16),
        tunnels: vec![uplink, downlink],
        added: vec![uplink, downlink],
        removed: Vec::new(),
    }
}

/// Loads `keys` tunnel keys, two per attach event.
fn load_tunnels(keys: usize) -> TunnelTable {
    let mut table = TunnelTable::new(END_MARKER_GRACE_US);
    for session in 0..keys.div_ceil(2) {
        table.apply(&attach_event(session));
    }
    table
}

/// Classifies nothing, so a flow load measures the table alone.
struct NoClassifier;

impl Classify for NoClassifier {
    type State = ();

    fn start(&mut self) {}

    fn feed(&mut self, _state: &mut (), _ip_packet: &[u8], _ts_us: u64) -> bool {
        false
    }

    fn finish(&mut self, _state: ()) -> AppProtocol {
        AppProtocol::default()
    }

    fn name(&self, _protocol: AppProtocol) -> &str {
        "Unknown"
    }
}

/// Returns the UE address of flow `number` in 10.0.0.0/8, one address per subscriber.
fn ue_address(number: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (number / FLOWS_PER_SUBSCRIBER) as u32 & 0x00ff_ffff)
}

/// Builds the TCP SYN of flow `number`: UE port 32768 plus the flow's index within its
/// subscriber, to 192.0.2.1:443.
fn syn_packet(number: usize) -> InnerPacket {
    let key = FlowKey {
        protocol: 6,
        src: IpAddr::V4(ue_address(number)),
        src_port: 32_768 + (number % FLOWS_PER_SUBSCRIBER) as u16,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst_port: 443,
    };
    InnerPacket { key, ip_len: 40, tcp_flags: 0x02 }
}

/// Writes the IPv4 and TCP headers of `packet` (20 bytes each, no options) into `bytes`.
/// The checksums stay 0 because the memory measured does not depend on them.
fn write_syn_bytes(packet: &InnerPacket, bytes: &mut [u8; 40]) {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (packet.key.src, packet.key.dst) else {
        return;
    };
    bytes.fill(0);
    bytes[0] = 0x45;
    bytes[2..4].copy_from_slice(&40u16.to_be_bytes());
    bytes[8] = 64;
    bytes[9] = packet.key.protocol;
    bytes[12..16].copy_from_slice(&src.octets());
    bytes[16..20].copy_from_slice(&dst.octets());
    bytes[20..22].copy_from_slice(&packet.key.src_port.to_be_bytes());
    bytes[22..24].copy_from_slice(&packet.key.dst_port.to_be_bytes());
    bytes[32] = 0x50;
    bytes[33] = packet.tcp_flags;
    bytes[34..36].copy_from_slice(&65_535u16.to_be_bytes());
}

/// Flow timeouts of `imsitrace analyze` by default: 90 s idle, 300 s active, 1 s linger.
/// The loads span `flows` microseconds of packet time, so no flow expires.
fn analyze_timeouts() -> FlowTimeouts {
    FlowTimeouts { idle_us: 90_000_000, active_us: Some(300_000_000), close_linger_us: 1_000_000 }
}

/// DNS query for www.google.com: the UDP payload of [`dns_packet`].
const DNS_QUERY_PAYLOAD: [u8; 32] = [
    0xab, 0xcd, 0x01, 0x00, // ID 0xabcd; standard query, recursion desired
    0x00, 0x01, 0x00, 0x00, // QDCOUNT 1, ANCOUNT 0
    0x00, 0x00, 0x00, 0x00, // NSCOUNT 0, ARCOUNT 0
    0x03, b'w', b'w', b'w', 0x06, b'g', b'o', b'o', b'g', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00,
    0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
];

/// Builds the DNS query of flow `number` from UE port 32768 plus the flow's index within
/// its subscriber to 192.0.2.53:53, and writes its IPv4, UDP and DNS bytes into `bytes`.
fn dns_packet(number: usize, bytes: &mut Vec<u8>) -> InnerPacket {
    let key = FlowKey {
        protocol: 17,
        src: IpAddr::V4(ue_address(number)),
        src_port: 32_768 + (number % FLOWS_PER_SUBSCRIBER) as u16,
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)),
        dst_port: 53,
    };
    let ip_len = 20 + 8 + DNS_QUERY_PAYLOAD.len();
    bytes.clear();
    bytes.resize(28, 0);
    write_ipv4_header(&key, ip_len as u16, bytes);
    bytes[20..22].copy_from_slice(&key.src_port.to_be_bytes());
    bytes[22..24].copy_from_slice(&key.dst_port.to_be_bytes());
    bytes[24..26].copy_from_slice(&((8 + DNS_QUERY_PAYLOAD.len()) as u16).to_be_bytes());
    bytes.extend_from_slice(&DNS_QUERY_PAYLOAD);
    InnerPacket { key, ip_len: ip_len as u32, tcp_flags: 0 }
}

/// Builds the TCP SYN of flow `number` (see [`syn_packet`]) and writes its bytes.
fn syn_packet_bytes(number: usize, bytes: &mut Vec<u8>) -> InnerPacket {
    let packet = syn_packet(number);
    let mut header = [0u8; 40];
    write_syn_bytes(&packet, &mut header);
    bytes.clear();
    bytes.extend_from_slice(&header);
    packet
}

/// Writes an IPv4 header without options for `key` into the first 20 bytes of `bytes`.
/// The checksum stays 0 because neither the tables nor nDPI check it.
fn write_ipv4_header(key: &FlowKey, total_len: u16, bytes: &mut [u8]) {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (key.src, key.dst) else {
        return;
    };
    bytes[0] = 0x45;
    bytes[2..4].copy_from_slice(&total_len.to_be_bytes());
    bytes[8] = 64;
    bytes[9] = key.protocol;
    bytes[12..16].copy_from_slice(&src.octets());
    bytes[16..20].copy_from_slice(&dst.octets());
}

/// Loads `flows` flows, one packet each from `packet_of`, 1 µs of packet time apart, as a
/// shard does.
fn load_flows<C: Classify>(mut classifier: C, flows: usize, packet_of: fn(usize, &mut Vec<u8>) -> InnerPacket) -> (FlowTable<C>, C) {
    let mut table = FlowTable::new(analyze_timeouts());
    let mut bytes = Vec::with_capacity(64);
    let mut ended = 0usize;
    let mut count_ended = |flow: ExpiredFlow| {
        black_box(flow);
        ended += 1;
    };
    for number in 0..flows {
        let packet = packet_of(number, &mut bytes);
        let subscriber = imsi(number / FLOWS_PER_SUBSCRIBER);
        let ts_us = START_US + number as u64;
        table.packet(&mut classifier, subscriber, &packet, &bytes, ts_us, &mut count_ended);
    }
    assert_eq!(ended, 0, "no flow may expire during the load");
    (table, classifier)
}

/// Returns the buckets of a hashbrown table (`HashMap`) grown one insert at a time to
/// `items`: the smallest power of two whose 7/8 is at least `items`.
fn hashbrown_buckets(items: usize) -> usize {
    if items < 8 {
        return if items < 4 { 4 } else { 8 };
    }
    (items * 8 / 7).next_power_of_two()
}

/// Returns the bytes of a hashbrown table of `items` entries of `entry_size` bytes: one
/// entry and one control byte per bucket, plus one group of control bytes.
fn hashbrown_bytes(items: usize, entry_size: usize) -> usize {
    let buckets = hashbrown_buckets(items);
    buckets * (entry_size + 1) + HASHBROWN_GROUP_WIDTH
}

/// Returns the capacity of a `Vec` grown one push at a time to `items` (doubling from 4).
fn vec_capacity(items: usize) -> usize {
    items.max(4).next_power_of_two()
}

fn per(bytes: usize, count: usize) -> f64 {
    bytes as f64 / count as f64
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Prints one load's usage, in total and per item.
fn print_usage(label: &str, count: usize, usage: &Usage, seconds: f64) {
    println!(
        "{label:<34} {count:>10}  Rust heap {:>7.1} B/item ({:>7.1} MiB), peak {:>7.1} B/item; \
         malloc {:>7.1} B/item; RSS {:>7.1} B/item, peak {:>7.1} B/item; {seconds:.1} s",
        per(usage.rust, count),
        mib(usage.rust),
        per(usage.rust_peak, count),
        per(usage.malloc, count),
        per(usage.rss, count),
        per(usage.rss_peak, count),
    );
}

/// Prints the sizes of the stored types, the inputs of the breakdown.
fn print_sizes() {
    // SAFETY: the function takes no arguments and returns a constant of the library.
    let ndpi_flow_struct = unsafe { ndpi_detection_get_sizeof_ndpi_flow_struct() };
    println!("size_of: Digits (IMSI) {} B, IpAddr {} B, TunnelKey {} B, TunnelOwner {} B, \
              (TunnelKey, TunnelOwner) {} B",
        size_of::<Digits>(), size_of::<IpAddr>(), size_of::<TunnelKey>(), size_of::<TunnelOwner>(),
        size_of::<(TunnelKey, TunnelOwner)>());
    println!("size_of: FlowKey {} B, flow id (Digits, FlowKey) {} B, index entry (id, u32) {} B, \
              NdpiFlow {} B, ndpi_flow_struct {} B (nDPI {})",
        size_of::<FlowKey>(), size_of::<(Digits, FlowKey)>(), size_of::<((Digits, FlowKey), u32)>(),
        size_of::<NdpiFlow>(), ndpi_flow_struct, imsitrace::ndpi::ndpi_revision());
}

/// Splits the table's own bytes into the index (computed from hashbrown's layout), the
/// deadline queue (16 B per entry) and the slab of slots (the rest).
fn print_flow_breakdown(flows: usize, table_bytes: usize) {
    let index = hashbrown_bytes(flows, size_of::<((Digits, FlowKey), u32)>());
    let deadlines = vec_capacity(flows) * 16;
    let slab = table_bytes.saturating_sub(index + deadlines);
    println!(
        "  flow table {flows}: index {} buckets = {:.1} B/flow, deadline queue {:.1} B/flow, \
         slab of {} slots = {:.1} B/flow ({:.1} B per slot)",
        hashbrown_buckets(flows),
        per(index, flows),
        per(deadlines, flows),
        vec_capacity(flows),
        per(slab, flows),
        per(slab, vec_capacity(flows)),
    );
}

fn print_tunnel_breakdown(keys: usize) {
    let entry = size_of::<(TunnelKey, TunnelOwner)>();
    println!(
        "  tunnel table {keys}: {} buckets of {} B + 1 control byte = {:.1} B/key computed",
        hashbrown_buckets(keys),
        entry,
        per(hashbrown_bytes(keys, entry), keys),
    );
}

/// Loads and reports one count; returns (bytes per tunnel key, bytes per flow with nDPI),
/// both from malloc's count, which includes nDPI's own allocations.
fn run_count(count: usize) -> (f64, f64) {
    let started = Instant::now();
    let (tunnels, usage) = measure(|| load_tunnels(count));
    assert_eq!(tunnels.len(), count, "every tunnel key is live");
    print_usage("tunnel table", count, &usage, started.elapsed().as_secs_f64());
    print_tunnel_breakdown(count);
    let per_tunnel = per(usage.malloc, count);
    release(tunnels);

    let started = Instant::now();
    let (loaded, usage) = measure(|| load_flows(NoClassifier, count, syn_packet_bytes));
    assert_eq!(loaded.0.len(), count, "every flow is live");
    print_usage("flow table, no classifier state", count, &usage, started.elapsed().as_secs_f64());
    print_flow_breakdown(count, usage.rust);
    release(loaded);

    let classifier = Classifier::new().expect("nDPI module");
    let started = Instant::now();
    let (loaded, usage) = measure(|| load_flows(classifier, count, syn_packet_bytes));
    assert_eq!(loaded.0.len(), count, "every flow is live");
    print_usage("flow table with nDPI, flows in detection", count, &usage, started.elapsed().as_secs_f64());
    let ndpi_malloc = usage.malloc.saturating_sub(usage.rust);
    println!("  nDPI's own malloc (malloc minus Rust heap): {:.1} B/flow", per(ndpi_malloc, count));
    let per_flow = per(usage.malloc, count);
    release(loaded);

    let classifier = Classifier::new().expect("nDPI module");
    let started = Instant::now();
    let (loaded, usage) = measure(|| load_flows(classifier, count, dns_packet));
    assert_eq!(loaded.0.len(), count, "every flow is live");
    print_usage("flow table with nDPI, flows classified (DNS)", count, &usage, started.elapsed().as_secs_f64());
    let ndpi_malloc = usage.malloc.saturating_sub(usage.rust);
    println!("  nDPI's own malloc (malloc minus Rust heap): {:.1} B/flow", per(ndpi_malloc, count));
    release(loaded);
    (per_tunnel, per_flow)
}

/// Counts from the command line; cargo passes `--bench`, which is skipped.
fn counts_from_args() -> Vec<usize> {
    let mut counts = Vec::new();
    for arg in std::env::args().skip(1).filter(|arg| !arg.starts_with("--")) {
        match arg.replace('_', "").parse::<usize>() {
            Ok(count) if count > 0 => counts.push(count),
            _ => {
                eprintln!("invalid count {arg:?}: give a positive number of tunnels and flows, e.g. 1000000");
                std::process::exit(2);
            }
        }
    }
    if counts.is_empty() {
        counts.extend(DEFAULT_COUNTS);
    }
    counts
}

fn main() {
    print_sizes();
    for count in counts_from_args() {
        let (per_tunnel, per_flow) = run_count(count);
        let total = per_tunnel + per_flow;
        let verdict = if total <= TARGET_BYTES_PER_TUNNEL_AND_FLOW { "met" } else { "missed" };
        println!(
            "{count}: {per_tunnel:.1} B per tunnel key + {per_flow:.1} B per flow = {total:.1} B; \
             target <= {TARGET_BYTES_PER_TUNNEL_AND_FLOW:.0} B {verdict}\n"
        );
    }
}
