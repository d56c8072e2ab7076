//! Throughput of the Redis microcloud's write path: session events through
//! `RedisMicrocloud::publish` and bucket deltas through `add_buckets`, against a
//! `redis-server` that the bench starts on a free loopback port and stops at the end.
//!
//! Run with `cargo bench -p imsitrace-actors --bench microcloud`. After the criterion
//! groups, the bench prints a fixed run of each workload with the CPU time that
//! redis-server (from `INFO cpu`) and the bench itself spent per item. On a machine with
//! few cores, the server's CPU time is what an `analyze --redis` run competes with.

#[path = "../src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use imsitrace::bucket::BucketDelta;
use imsitrace::flow::classify::AppProtocol;
use imsitrace::microcloud::{Microcloud, RedisConfig, RedisMicrocloud};
use imsitrace::session::{EventKind, SessionEvent, Tunnel, TunnelKey, TunnelRole};
use imsitrace::wire::control::Digits;
use redis_server::RedisServer;
use tokio::runtime::Runtime;

/// Events per `publish` call in the criterion group.
const EVENTS_PER_CALL: usize = 1000;
/// Events per `publish` call in the printed runs, from a control batch of a quiet link up
/// to more than the sink writes at once (2000).
const PRINTED_EVENTS_PER_CALL: [usize; 4] = [200, 1000, 2000, 5000];
/// Distinct IMSIs; subscriber `n` uses IMSI `n mod POPULATION`, so stored states are
/// overwritten as in a network where the same subscribers attach again.
const POPULATION: u64 = 50_000;
/// Deltas per `add_buckets` call in the throughput group; a shard's flush of 64 data
/// batches sends a few thousand.
const DELTAS_PER_CALL: usize = 4096;
/// Deltas per `add_buckets` call in the call-rate group.
const DELTAS_PER_SMALL_CALL: usize = 64;
/// Items (events or deltas) in each printed run.
const PRINTED_ITEMS: usize = 100_000;
/// Calls in the printed run of small `add_buckets` calls.
const PRINTED_SMALL_CALLS: usize = 200;

/// Session events of a stream of subscribers, each going through attach, modify, move and
/// detach in four consecutive calls, so every call mixes the four kinds.
struct EventStream {
    next_call: u64,
    /// First subscriber number of the stream, so that streams of different call sizes
    /// use different subscribers and TEIDs.
    first: u64,
}

impl EventStream {
    /// Returns the `size` events of the next call, `size / 4` subscribers at each stage: the
    /// attaches of group `c`, the modifies of group `c - 1`, the moves of group `c - 2` and
    /// the detaches of group `c - 3`. The first three calls are skipped, so every call has
    /// all four stages.
    fn next_call(&mut self, size: usize) -> Vec<SessionEvent> {
        let group_size = (size / 4) as u64;
        let call = self.next_call + 3;
        self.next_call += 1;
        let mut events = Vec::with_capacity(size);
        for (stage, kind) in [EventKind::Attach, EventKind::Modify, EventKind::Move, EventKind::Detach].into_iter().enumerate() {
            let group = call - stage as u64;
            for member in 0..group_size {
                events.push(lifecycle_event(self.first + group * group_size + member, kind, call));
            }
        }
        events
    }
}

/// Builds one event of subscriber `subscriber` in the shape the session table emits for
/// GTPv2. The four stages are Create Session with the S1-U and S5/S8 SGW uplinks, Modify
/// Bearer adding the eNodeB downlink, a handover moving the downlink to another eNodeB, and
/// Delete Session.
fn lifecycle_event(subscriber: u64, kind: EventKind, call: u64) -> SessionEvent {
    let uplinks = [tunnel(10, subscriber, 0, TunnelRole::Uplink, 1), tunnel(11, subscriber, 1, TunnelRole::Uplink, 5)];
    let first_downlink = tunnel(20, subscriber, 2, TunnelRole::Downlink, 0);
    let second_downlink = tunnel(21, subscriber, 3, TunnelRole::Downlink, 0);
    let (tunnels, added, removed) = match kind {
        EventKind::Attach => (uplinks.to_vec(), uplinks.to_vec(), vec![]),
        EventKind::Modify => ([&uplinks[..], &[first_downlink]].concat(), vec![first_downlink], vec![]),
        EventKind::Move => ([&uplinks[..], &[second_downlink]].concat(), vec![second_downlink], vec![first_downlink]),
        // Detach, the last stage.
        _ => (vec![], vec![], [&uplinks[..], &[second_downlink]].concat()),
    };
    let imsi_number = subscriber % POPULATION;
    SessionEvent {
        kind,
        ts_us: 1_374_937_800_000_000 + call * 1_000_000,
        request_ts_us: 1_374_937_800_000_000 + call * 1_000_000 - 20_000,
        seq: call * EVENTS_PER_CALL as u64,
        site: "bench".to_owned(),
        session_id: subscriber + 1,
        imsi: format!("00101{imsi_number:010}"),
        msisdn: Some(format!("4917{imsi_number:08}")),
        imei: Some(format!("35290611{imsi_number:08}")),
        apn: Some("internet".to_owned()),
        rat: Some("EUTRAN".to_owned()),
        uli: Some(format!("TAI 001-01-0x0100 ECGI 001-01-0x{:07x}", call % 4096)),
        serving_network: Some("001-01".to_owned()),
        ue_ipv4: Some(Ipv4Addr::from(0x6440_0000 + imsi_number as u32)),
        ue_ipv6: None,
        gtp_version: 2,
        message_type: 32,
        cause: Some(16),
        tunnels,
        added,
        removed,
    }
}

/// Builds a tunnel on endpoint `10.<network>.0.1` whose TEID is unique per subscriber and
/// `slot`.
fn tunnel(network: u8, subscriber: u64, slot: u64, role: TunnelRole, interface: u8) -> Tunnel {
    Tunnel {
        key: TunnelKey { addr: IpAddr::V4(Ipv4Addr::new(10, network, 0, 1)), teid: (subscriber * 4 + slot + 1) as u32 },
        role,
        bearer: 5,
        interface,
    }
}

/// Bucket deltas spread over 12 epochs (one hour), the IMSI population and 8 protocols.
struct DeltaStream {
    next: u64,
}

impl DeltaStream {
    fn next_call(&mut self, count: usize) -> Vec<BucketDelta> {
        const PROTOCOLS: [(u16, u16); 8] = [(5, 0), (7, 0), (91, 119), (91, 126), (188, 0), (7, 119), (91, 0), (0, 0)];
        let deltas = (self.next..self.next + count as u64)
            .map(|n| {
                let imsi_number = (n * 7919) % POPULATION;
                let (master, app) = PROTOCOLS[(n % 8) as usize];
                BucketDelta {
                    epoch: 1_374_937_800 + 300 * ((n / 1000) % 12),
                    imsi: Digits::from_ascii(format!("00101{imsi_number:010}").as_bytes()).expect("15 digits"),
                    protocol: AppProtocol { master, app },
                    packets: 10 + n % 90,
                    bytes: 1200 * (10 + n % 90),
                    flows: 1,
                    duration_us: 1_000_000 + n % 1_000_000,
                }
            })
            .collect();
        self.next += count as u64;
        deltas
    }
}

/// Wall time and CPU time of this process spent on a run of calls.
struct Cost {
    wall: Duration,
    /// `None` where `/proc/self/stat` cannot be read.
    client_cpu: Option<Duration>,
}

impl Cost {
    async fn measure(calls: impl std::future::Future<Output = ()>) -> Cost {
        let cpu_before = own_cpu();
        let started = Instant::now();
        calls.await;
        let wall = started.elapsed();
        let client_cpu = own_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
        Cost { wall, client_cpu }
    }
}

/// The server, a connection to it and the workload generators, shared by every group.
struct Bench {
    server: RedisServer,
    runtime: Runtime,
    cloud: RedisMicrocloud,
    /// One event stream per call size, so that each stream keeps its life cycles whole.
    event_streams: Vec<(usize, EventStream)>,
    deltas: DeltaStream,
}

impl Bench {
    fn start() -> Bench {
        let server = RedisServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime");
        let config = RedisConfig { prefix: "bench:".to_owned(), ..RedisConfig::default() };
        let cloud = runtime.block_on(RedisMicrocloud::connect(&server.url(), config)).expect("connect to the bench redis-server");
        Bench { server, runtime, cloud, event_streams: Vec::new(), deltas: DeltaStream { next: 0 } }
    }

    /// Returns the event stream of calls of `size` events, created on first use with
    /// subscribers of its own: stream `n` starts at subscriber number `n * 10^8`.
    fn event_stream(&mut self, size: usize) -> &mut EventStream {
        let position = match self.event_streams.iter().position(|(stream_size, _)| *stream_size == size) {
            Some(position) => position,
            None => {
                let first = self.event_streams.len() as u64 * 100_000_000;
                self.event_streams.push((size, EventStream { next_call: 0, first }));
                self.event_streams.len() - 1
            }
        };
        &mut self.event_streams[position].1
    }

    /// Publishes `calls` calls of `size` events built beforehand and returns the cost of the
    /// publishes.
    fn publish_calls(&mut self, calls: u64, size: usize) -> Cost {
        let stream = self.event_stream(size);
        let batches: Vec<Vec<SessionEvent>> = (0..calls).map(|_| stream.next_call(size)).collect();
        let cloud = &mut self.cloud;
        self.runtime.block_on(Cost::measure(async {
            for batch in &batches {
                cloud.publish(batch).await.expect("publish to the bench redis-server");
            }
        }))
    }

    /// Adds `calls` calls of `size` deltas built beforehand and returns the cost of the calls.
    fn add_bucket_calls(&mut self, calls: u64, size: usize) -> Cost {
        let batches: Vec<Vec<BucketDelta>> = (0..calls).map(|_| self.deltas.next_call(size)).collect();
        let cloud = &mut self.cloud;
        self.runtime.block_on(Cost::measure(async {
            for batch in &batches {
                cloud.add_buckets(batch).await.expect("add buckets on the bench redis-server");
            }
        }))
    }

    /// Returns the CPU time, user plus system, that redis-server has used since it started.
    fn server_cpu(&self) -> Duration {
        let info = self.server.command("INFO cpu");
        let seconds = |field: &str| -> f64 {
            info.lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| panic!("INFO cpu has no {field} line: {info}"))
        };
        Duration::from_secs_f64(seconds("used_cpu_user:") + seconds("used_cpu_sys:"))
    }
}

fn bench_publish(c: &mut Criterion, bench: &mut Bench) {
    let mut group = c.benchmark_group("redis_publish");
    group.throughput(Throughput::Elements(EVENTS_PER_CALL as u64));
    group.bench_function("events_1000_per_call", |b| b.iter_custom(|calls| bench.publish_calls(calls, EVENTS_PER_CALL).wall));
    group.finish();
}

fn bench_buckets(c: &mut Criterion, bench: &mut Bench) {
    let mut group = c.benchmark_group("redis_add_buckets");
    group.throughput(Throughput::Elements(DELTAS_PER_CALL as u64));
    group.bench_function("deltas_4096_per_call", |b| b.iter_custom(|calls| bench.add_bucket_calls(calls, DELTAS_PER_CALL).wall));
    group.throughput(Throughput::Elements(1));
    group.bench_function("calls_of_64_deltas", |b| b.iter_custom(|calls| bench.add_bucket_calls(calls, DELTAS_PER_SMALL_CALL).wall));
    group.finish();
}

/// Returns the CPU time, user plus system, of this process (every thread), from
/// `/proc/self/stat`, or `None` where that file is missing. The file counts in clock ticks
/// of USER_HZ, 100 per second on Linux x86-64, so the resolution is 10 ms.
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in brackets: utime and stime are the
    // 12th and 13th of them (fields 14 and 15 of proc(5)).
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// Runs `calls` calls of one workload and prints items per second of wall time, and the
/// CPU time per item of redis-server and of this process.
fn print_run(bench: &mut Bench, label: &str, calls: usize, items_per_call: usize, run: impl FnOnce(&mut Bench, u64) -> Cost) {
    let server_before = bench.server_cpu();
    let cost = run(bench, calls as u64);
    let server = bench.server_cpu().saturating_sub(server_before);
    let elapsed = cost.wall;
    let items = (calls * items_per_call) as f64;
    let per_item = |cpu: Duration| format!("{:.2} us/item", cpu.as_secs_f64() * 1e6 / items);
    println!(
        "{label:<34} {items:>8} items in {:>6.3} s: {:>9.0} items/s, {:>7.0} calls/s; CPU redis-server {}, client {}",
        elapsed.as_secs_f64(),
        items / elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        per_item(server),
        cost.client_cpu.map_or_else(|| "n/a".to_owned(), per_item),
    );
}

fn print_summary(bench: &mut Bench) {
    println!("printed runs, each on data built beforehand:");
    for size in PRINTED_EVENTS_PER_CALL {
        let label = format!("publish, {size} events per call");
        print_run(bench, &label, PRINTED_ITEMS / size, size, |bench, calls| bench.publish_calls(calls, size));
    }
    let label = format!("add_buckets, {DELTAS_PER_CALL} deltas per call");
    print_run(bench, &label, PRINTED_ITEMS / DELTAS_PER_CALL, DELTAS_PER_CALL, |bench, calls| bench.add_bucket_calls(calls, DELTAS_PER_CALL));
    let label = format!("add_buckets, {DELTAS_PER_SMALL_CALL} deltas per call");
    print_run(bench, &label, PRINTED_SMALL_CALLS, DELTAS_PER_SMALL_CALL, |bench, calls| bench.add_bucket_calls(calls, DELTAS_PER_SMALL_CALL));
}

fn benches(c: &mut Criterion) {
    let mut bench = Bench::start();
    bench_publish(c, &mut bench);
    bench_buckets(c, &mut bench);
    print_summary(&mut bench);
}

criterion_group!(microcloud, benches);

fn main() {
    microcloud();
    Criterion::default().configure_from_args().final_summary();
}
