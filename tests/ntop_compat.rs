//! `imsitrace analyze --redis URL --ntop-compat`: the `imsi.create` and `imsi.delete`
//! messages, the `imsi.<IMSI>` keys and the `<epoch>.<IMSI>.<protocol>` hashes that ntop's
//! pfwrite and imsiAggregator.py read, checked against the generator's truth and the reports
//! of the same run. Without the option none of them appears.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::{data, imsitrace, read_reports, truth};
use redis_server::RedisServer;

const CREATE: &str = "imsi.create";
const DELETE: &str = "imsi.delete";
/// Payload the test publishes after the run. Every message published before it arrives first.
const MARKER: &str = "end-of-test-run";
/// Maximum wait for one reply or message. The server replies within milliseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> &str {
        match self {
            Reply::Status(text) | Reply::Bulk(Some(text)) => text,
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    fn integer(&self) -> i64 {
        match self {
            Reply::Integer(value) => *value,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }

    fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(items) => items,
            other => panic!("expected an array reply, got {other:?}"),
        }
    }
}

/// A plain RESP2 client on one connection to the test server.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(server: &RedisServer) -> Client {
        let url = server.url();
        let port: u16 = url
            .trim_start_matches("redis://127.0.0.1:")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("no port in {url}"));
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the test redis-server");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("set read timeout");
        let writer = stream.try_clone().expect("clone the stream");
        Client { reader: BufReader::new(stream), writer }
    }

    fn send(&mut self, args: &[&str]) {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.writer.write_all(request.as_bytes()).expect("send to the test redis-server");
    }

    fn command(&mut self, args: &[&str]) -> Reply {
        self.send(args);
        let reply = self.read();
        assert!(!matches!(reply, Reply::Error(_)), "{args:?} failed: {reply:?}");
        reply
    }

    fn read(&mut self) -> Reply {
        let line = self.read_line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Integer(rest.parse().expect("integer reply")),
            "$" => self.read_bulk(rest.parse().expect("bulk length")),
            "*" => {
                let count: i64 = rest.parse().expect("array length");
                Reply::Array((0..count.max(0)).map(|_| self.read()).collect())
            }
            _ => panic!("unexpected RESP line {line:?}"),
        }
    }

    fn read_bulk(&mut self, length: i64) -> Reply {
        let Ok(length) = usize::try_from(length) else { return Reply::Bulk(None) };
        let mut bytes = vec![0; length + 2];
        std::io::Read::read_exact(&mut self.reader, &mut bytes).expect("bulk string within 30 s");
        bytes.truncate(length);
        Reply::Bulk(Some(String::from_utf8(bytes).expect("UTF-8 bulk string")))
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reply within 30 s");
        assert!(line.ends_with("\r\n"), "connection closed or truncated line {line:?}");
        line.truncate(line.len() - 2);
        line
    }
}

/// Subscribes a new connection to both ntop channels and checks that the server counts it.
fn subscribe(server: &RedisServer) -> Client {
    let mut subscriber = Client::connect(server);
    subscriber.send(&["SUBSCRIBE", CREATE, DELETE]);
    for (count, channel) in [CREATE, DELETE].into_iter().enumerate() {
        let confirmation = subscriber.read();
        let items = confirmation.items();
        assert_eq!(items[0].text(), "subscribe");
        assert_eq!(items[1].text(), channel);
        assert_eq!(items[2].integer(), count as i64 + 1);
    }
    let numsub = Client::connect(server).command(&["PUBSUB", "NUMSUB", CREATE, DELETE]);
    let counts: Vec<i64> = numsub.items().iter().skip(1).step_by(2).map(Reply::integer).collect();
    assert_eq!(counts, vec![1, 1], "PUBSUB NUMSUB {numsub:?}");
    subscriber
}

/// Publishes [`MARKER`] and returns every (channel, payload) received before it.
fn messages_until_marker(server: &RedisServer, subscriber: &mut Client) -> Vec<(String, String)> {
    Client::connect(server).command(&["PUBLISH", DELETE, MARKER]);
    let mut messages = Vec::new();
    loop {
        let message = subscriber.read();
        let items = message.items();
        assert_eq!(items[0].text(), "message", "{message:?}");
        let payload = items[2].text().to_owned();
        if payload == MARKER {
            return messages;
        }
        messages.push((items[1].text().to_owned(), payload));
    }
}

/// Runs `analyze` on the small synthetic capture with reports into `report_dir`.
fn analyze(server: &RedisServer, report_dir: &Path, extra: &[&str]) {
    let input = data("gtpgen/small.pcap");
    let url = server.url();
    let mut args = vec!["analyze", input.to_str().unwrap(), "--json", "--redis", &url, "--report-dir", report_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = imsitrace(&args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Returns the messages the truth implies, per IMSI in publish order.
///
/// For each session whose Create is in the capture (not `preexisting`), by start time:
/// - GTPv2: the Create Session Response carries only the SGW's S1-U F-TEID (the eNodeB's
///   arrives in the Modify Bearer the truth lists as `initial_bearer`), so the attach
///   announces the upstream TEID `teids.sgw_s1u_teid` and downstream 0;
/// - one create per tunnel state in `tunnels[]` (`create`, `initial_bearer`, `sgsn_change`,
///   `handover`) with its uplink and downlink TEIDs;
/// - one delete when the session ended (`end_ts` set).
///
/// The IP is `user_ipv4`, else `user_ipv6`. A rejected Create has no session and announces
/// nothing.
fn expected_messages() -> BTreeMap<String, Vec<(String, String)>> {
    let truth = truth("small");
    let mut expected: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for subscriber in truth["subscribers"].as_array().unwrap() {
        let imsi = subscriber["imsi"].as_str().unwrap();
        let mut sessions: Vec<&serde_json::Value> =
            subscriber["sessions"].as_array().unwrap().iter().filter(|session| session["preexisting"] == false).collect();
        sessions.sort_by(|a, b| a["start_ts"].as_f64().unwrap().total_cmp(&b["start_ts"].as_f64().unwrap()));
        let messages = expected.entry(imsi.to_owned()).or_default();
        for session in sessions {
            let ip = session["user_ipv4"].as_str().or(session["user_ipv6"].as_str()).unwrap();
            let create = |upstream: u64, downstream: u64| (CREATE.to_owned(), format!("{imsi};{ip};{upstream};{downstream}"));
            if session["gtp_version"] == 2 {
                messages.push(create(session["teids"]["sgw_s1u_teid"].as_u64().unwrap(), 0));
            }
            for tunnel in session["tunnels"].as_array().unwrap() {
                messages.push(create(tunnel["uplink"]["teid"].as_u64().unwrap(), tunnel["downlink"]["teid"].as_u64().unwrap()));
            }
            if !session["end_ts"].is_null() {
                messages.push((DELETE.to_owned(), imsi.to_owned()));
            }
        }
    }
    expected.retain(|_, messages| !messages.is_empty());
    expected
}

/// Checks one message against the contract: `IMSI;IP;TEID;TEID` with decimal TEIDs on
/// `imsi.create`, the bare IMSI on `imsi.delete`. Returns the IMSI.
fn check_format(channel: &str, payload: &str) -> String {
    let is_digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    match channel {
        CREATE => {
            let fields: Vec<&str> = payload.split(';').collect();
            assert_eq!(fields.len(), 4, "create payload {payload:?} has not 4 fields");
            assert!(is_digits(fields[0]), "IMSI of {payload:?}");
            assert!(fields[1].parse::<IpAddr>().is_ok(), "IP of {payload:?}");
            for teid in &fields[2..] {
                assert!(is_digits(teid), "TEID {teid:?} of {payload:?} is not decimal");
                assert!(teid.parse::<u32>().is_ok(), "TEID {teid:?} of {payload:?} does not fit 32 bits");
            }
            fields[0].to_owned()
        }
        DELETE => {
            assert!(is_digits(payload), "delete payload {payload:?} is not an IMSI");
            payload.to_owned()
        }
        other => panic!("message on unexpected channel {other}"),
    }
}

/// Returns the report rows summed per (epoch, IMSI, ntop protocol name).
///
/// Reports print nDPI's `master.app` (`TLS.Facebook`) or a single name (`DNS`); ntop's hash
/// takes the application (`Facebook`) or the single name. No protocol in this capture has
/// a dot in its own name.
fn report_sums(report_dir: &Path) -> BTreeMap<(u64, String, String), [u64; 4]> {
    let mut sums: BTreeMap<(u64, String, String), [u64; 4]> = BTreeMap::new();
    for row in read_reports(report_dir) {
        let name = row.protocol.split_once('.').map_or(row.protocol.as_str(), |(_, app)| app).to_owned();
        let sum = sums.entry((row.epoch, row.imsi, name)).or_default();
        for (total, value) in sum.iter_mut().zip([row.packets, row.bytes, row.flows, row.duration_s]) {
            *total += value;
        }
    }
    sums
}

/// Reads ntop's hashes the way imsiAggregator.py finds them: `KEYS <epoch>.*` per epoch.
fn ntop_hashes(client: &mut Client, epochs: &[u64]) -> BTreeMap<(u64, String, String), [u64; 4]> {
    let mut hashes = BTreeMap::new();
    for epoch in epochs {
        for key in client.command(&["KEYS", &format!("{epoch}.*")]).items() {
            let key = key.text().to_owned();
            let parts: Vec<&str> = key.split('.').collect();
            assert_eq!(parts.len(), 3, "hash name {key:?} is not <epoch>.<IMSI>.<protocol>");
            let fields = client.command(&["HMGET", &key, "packets", "bytes", "flows", "duration"]);
            let values: Vec<u64> = fields
                .items()
                .iter()
                .map(|field| field.text().parse().unwrap_or_else(|_| panic!("{key}: field {field:?} is not an integer")))
                .collect();
            let ttl = client.command(&["TTL", &key]).integer();
            assert!(ttl > 0, "{key} has TTL {ttl}");
            hashes.insert((*epoch, parts[1].to_owned(), parts[2].to_owned()), [values[0], values[1], values[2], values[3]]);
        }
    }
    hashes
}

#[test]
fn ntop_messages_match_truth() {
    let server = RedisServer::start();
    let mut subscriber = subscribe(&server);
    let dir = tempfile::tempdir().unwrap();
    analyze(&server, dir.path(), &["--ntop-compat"]);

    let messages = messages_until_marker(&server, &mut subscriber);
    let mut received: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (channel, payload) in messages {
        let imsi = check_format(&channel, &payload);
        received.entry(imsi).or_default().push((channel, payload));
    }
    let expected = expected_messages();
    assert_eq!(received.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "IMSIs announced");
    for (imsi, messages) in &expected {
        assert_eq!(&received[imsi], messages, "messages of {imsi}");
    }

    // imsi.<IMSI> contains the last create record, or is gone after a detach.
    let mut client = Client::connect(&server);
    for (imsi, messages) in &expected {
        let key = format!("imsi.{imsi}");
        let stored = client.command(&["GET", &key]);
        let (channel, payload) = messages.last().unwrap();
        if channel == CREATE {
            assert_eq!(stored.text(), payload.strip_prefix(&format!("{imsi};")).unwrap(), "{key}");
            let ttl = client.command(&["TTL", &key]).integer();
            assert!(ttl > 0, "{key} has TTL {ttl}");
        } else {
            assert_eq!(stored, Reply::Bulk(None), "{key} after the detach");
        }
    }
}

#[test]
fn ntop_hashes_sum_to_reports() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    analyze(&server, dir.path(), &["--ntop-compat"]);

    let expected = report_sums(dir.path());
    assert!(!expected.is_empty(), "the run wrote no report row");
    let mut epochs: Vec<u64> = expected.keys().map(|(epoch, _, _)| *epoch).collect();
    epochs.dedup();
    let mut client = Client::connect(&server);
    let hashes = ntop_hashes(&mut client, &epochs);
    assert_eq!(hashes.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "(epoch, IMSI, protocol) of the hashes");
    for (row, sums) in &expected {
        assert_eq!(&hashes[row], sums, "packets, bytes, flows, duration of {row:?}");
    }

    // Every other key is either the prefixed schema or a subscriber's imsi.<IMSI>.
    for key in client.command(&["KEYS", "*"]).items() {
        let key = key.text();
        let is_hash = epochs.iter().any(|epoch| key.starts_with(&format!("{epoch}.")));
        assert!(is_hash || key.starts_with("imsitrace:") || key.starts_with("imsi."), "unexpected key {key}");
    }
}

#[test]
fn no_ntop_names_without_option() {
    let server = RedisServer::start();
    let mut subscriber = subscribe(&server);
    let dir = tempfile::tempdir().unwrap();
    analyze(&server, dir.path(), &[]);

    assert_eq!(messages_until_marker(&server, &mut subscriber), vec![], "messages on the ntop channels");
    let mut client = Client::connect(&server);
    let keys = client.command(&["KEYS", "*"]);
    assert!(!keys.items().is_empty(), "the run wrote nothing");
    for key in keys.items() {
        assert!(key.text().starts_with("imsitrace:"), "key {} is outside the prefix", key.text());
    }
}

#[test]
fn ntop_compat_needs_redis() {
    let input = data("gtpgen/small.pcap");
    let output = imsitrace(&["analyze", input.to_str().unwrap(), "--ntop-compat"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects the option");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--redis"), "{stderr}");
}
