//! `imsitrace query` and `imsitrace subscriber` against a real redis-server, after
//! `analyze --redis` of the synthetic captures. Expected values come from the generator's
//! ground truth (`tests/data/gtpgen/*.truth.json`) and from the reports of the same run,
//! which `tests/truth.rs` proves equal to the truth.
//!
//! Every run uses `--active-timeout 0`, as `tests/truth.rs` does, so a long flow stays one
//! flow as in the truth.

mod common;
#[path = "../actors/src/microcloud/redis/test_server.rs"]
mod redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use common::{data, imsitrace, read_reports, truth, ReportRow};
use redis_server::RedisServer;
use serde_json::Value;

/// Start of the first bucket of every synthetic capture.
const FIRST_BUCKET: u64 = 1_374_937_800;
/// Start of the second (last) bucket of the small capture, which lasts 600 s.
const SECOND_BUCKET: u64 = 1_374_938_100;

/// Totals of one subscriber: packets, inner IP bytes, flows, protocol names.
type Totals = (u64, u64, u64, BTreeSet<String>);

/// A server that contains what `analyze --redis` wrote for one capture, and the reports of
/// that run.
struct Loaded {
    server: RedisServer,
    reports: Vec<ReportRow>,
    truth: Value,
    _dir: tempfile::TempDir,
}

impl Loaded {
    fn url(&self) -> String {
        self.server.url()
    }
}

/// Starts a server and runs `analyze --redis` on `tests/data/gtpgen/<name>.pcap`.
fn load(name: &str) -> Loaded {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let input = data(&format!("gtpgen/{name}.pcap"));
    let report_dir = dir.path().join("reports");
    let url = server.url();
    let args = [
        "analyze",
        input.to_str().unwrap(),
        "--redis",
        &url,
        "--report-dir",
        report_dir.to_str().unwrap(),
        "--idle-timeout",
        "90",
        "--active-timeout",
        "0",
        "--json",
    ];
    let output = imsitrace(&args);
    assert!(output.status.success(), "analyze {name} failed: {}", String::from_utf8_lossy(&output.stderr));
    Loaded { server, reports: read_reports(&report_dir), truth: truth(name), _dir: dir }
}

/// Runs `imsitrace` with `args` followed by `--redis URL`.
fn run(loaded: &Loaded, args: &[&str]) -> Output {
    let url = loaded.url();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--redis", &url]);
    imsitrace(&all)
}

/// Runs a command that must succeed and returns its stdout.
fn stdout_of(loaded: &Loaded, args: &[&str]) -> String {
    let output = run(loaded, args);
    assert!(output.status.success(), "imsitrace {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs a command with `--json` and parses its stdout.
fn json_of(loaded: &Loaded, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let stdout = stdout_of(loaded, &all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("imsitrace {args:?} printed invalid JSON ({e}): {stdout}"))
}

/// Runs a command that must fail with `status`, and returns its stderr.
fn failure_of(loaded: &Loaded, args: &[&str], status: i32) -> String {
    let output = run(loaded, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(status), "imsitrace {args:?}: {stderr}");
    stderr
}

/// Runs `query who-uses` with `args` and `--json`, and returns the totals per IMSI it prints.
fn who_uses(loaded: &Loaded, args: &[&str]) -> BTreeMap<String, Totals> {
    let mut all = vec!["query", "who-uses"];
    all.extend_from_slice(args);
    let answer = json_of(loaded, &all);
    let subscribers = answer["subscribers"].as_array().expect("subscribers is an array");
    subscribers
        .iter()
        .map(|subscriber| {
            let number = |field: &str| subscriber[field].as_u64().unwrap_or_else(|| panic!("{field} in {subscriber}"));
            let protocols = subscriber["protocols"].as_array().expect("protocols").iter();
            let protocols = protocols.map(|name| name.as_str().expect("name").to_owned()).collect();
            let imsi = subscriber["imsi"].as_str().expect("imsi").to_owned();
            (imsi, (number("packets"), number("bytes"), number("flows"), protocols))
        })
        .collect()
}

/// Sums report rows per IMSI, keeping the rows `selected` accepts.
fn report_totals(rows: &[ReportRow], selected: impl Fn(&ReportRow) -> bool) -> BTreeMap<String, Totals> {
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for row in rows.iter().filter(|row| selected(row)) {
        let entry = totals.entry(row.imsi.clone()).or_default();
        entry.0 += row.packets;
        entry.1 += row.bytes;
        entry.2 += row.flows;
        entry.3.insert(row.protocol.clone());
    }
    totals
}

/// Returns whether `application` names a part of the printed name, ignoring case.
fn names_part(printed: &str, application: &str) -> bool {
    printed.split('.').any(|part| part.eq_ignore_ascii_case(application))
}

/// Returns the truth's subscribers, by IMSI.
fn truth_subscribers(truth: &Value) -> BTreeMap<String, &Value> {
    let subscribers = truth["subscribers"].as_array().expect("subscribers");
    subscribers.iter().map(|subscriber| (subscriber["imsi"].as_str().expect("imsi").to_owned(), subscriber)).collect()
}

/// Returns the subscriber's last session that the capture shows from its Create on.
fn last_session(subscriber: &Value) -> &Value {
    let sessions = subscriber["sessions"].as_array().expect("sessions");
    let created = sessions.iter().filter(|session| session["preexisting"] == false);
    created
        .max_by(|a, b| a["start_ts"].as_f64().unwrap().total_cmp(&b["start_ts"].as_f64().unwrap()))
        .expect("every subscriber of the truth has a session with its Create")
}

/// Returns the subscribers whose last session is still up at the end of the capture
/// (`end_ts` null). Sessions that were up before the capture started have no Create in it,
/// so they are not seen and do not count. A rejected Create is no session.
fn truth_active(truth: &Value) -> BTreeSet<String> {
    let subscribers = truth_subscribers(truth);
    let active = subscribers.iter().filter(|(_, subscriber)| last_session(subscriber)["end_ts"].is_null());
    active.map(|(imsi, _)| imsi.clone()).collect()
}

/// Returns the IMSIs with attributed flows of the master protocol `protocol` in the truth.
fn truth_users(truth: &Value, protocol: &str) -> BTreeSet<String> {
    let flows = truth["flows"].as_array().expect("flows");
    let used = flows.iter().filter(|flow| flow["attributed"] == true && flow["protocol"] == protocol);
    used.map(|flow| flow["imsi"].as_str().expect("imsi").to_owned()).collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    let items = value.as_array().unwrap_or_else(|| panic!("{value} is not an array"));
    items.iter().map(|item| item.as_str().expect("string").to_owned()).collect()
}

#[test]
fn who_uses_masters_match_truth() {
    let loaded = load("small");
    for protocol in ["TLS", "DNS", "HTTP", "QUIC", "Unknown"] {
        // Totals of the truth's attributed flows of this master protocol.
        let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for flow in loaded.truth["flows"].as_array().unwrap() {
            if flow["attributed"] != true || flow["protocol"] != protocol {
                continue;
            }
            let entry = expected.entry(flow["imsi"].as_str().unwrap().to_owned()).or_default();
            entry.0 += flow["packets"].as_u64().unwrap();
            entry.1 += flow["bytes_inner_ip"].as_u64().unwrap();
            entry.2 += 1;
        }
        assert!(!expected.is_empty(), "the truth has {protocol} flows");

        let answer = who_uses(&loaded, &[protocol, "--since", "all"]);
        let totals: BTreeMap<String, (u64, u64, u64)> =
            answer.iter().map(|(imsi, totals)| (imsi.clone(), (totals.0, totals.1, totals.2))).collect();
        assert_eq!(totals, expected, "who-uses {protocol}");
        for (imsi, totals) in &answer {
            for name in &totals.3 {
                assert_eq!(name.split('.').next(), Some(protocol), "{imsi}: {name} selected by {protocol}");
            }
        }
        let lowercase = who_uses(&loaded, &[&protocol.to_lowercase(), "--since", "all"]);
        assert_eq!(lowercase, answer, "who-uses {} ignores case", protocol.to_lowercase());
    }
}

#[test]
fn who_uses_apps_match_reports() {
    let loaded = load("small");
    let mut parts: BTreeSet<&str> = loaded.reports.iter().flat_map(|row| row.protocol.split('.')).collect();
    parts.remove("");
    assert!(parts.contains("Facebook"), "the reports name Facebook: {parts:?}");
    for application in parts {
        let expected = report_totals(&loaded.reports, |row| names_part(&row.protocol, application));
        assert_eq!(who_uses(&loaded, &[application, "--since", "all"]), expected, "who-uses {application}");
    }

    let expected = report_totals(&loaded.reports, |row| row.protocol == "TLS.Facebook");
    assert!(!expected.is_empty(), "the reports have TLS.Facebook rows");
    assert_eq!(who_uses(&loaded, &["tls.facebook", "--since", "all"]), expected, "a dotted name selects whole names");
}

#[test]
fn who_uses_window_bounds() {
    let loaded = load("small");
    let first = FIRST_BUCKET.to_string();
    let second = SECOND_BUCKET.to_string();
    let end = (SECOND_BUCKET + 300).to_string();
    let cases: [(&[&str], &[u64]); 4] = [
        (&["--from", &first, "--to", &second], &[FIRST_BUCKET]),
        (&["--from", &second], &[SECOND_BUCKET]),
        (&["--from", "1374938099", "--to", &end], &[FIRST_BUCKET, SECOND_BUCKET]),
        (&["--since", "all"], &[FIRST_BUCKET, SECOND_BUCKET]),
    ];
    for (window, epochs) in cases {
        let expected = report_totals(&loaded.reports, |row| epochs.contains(&row.epoch) && names_part(&row.protocol, "TLS"));
        let mut args = vec!["TLS"];
        args.extend_from_slice(window);
        assert_eq!(who_uses(&loaded, &args), expected, "who-uses {args:?}");

        let mut args = vec!["query", "who-uses", "TLS"];
        args.extend_from_slice(window);
        let answer = json_of(&loaded, &args);
        assert_eq!(answer["window"]["buckets"], serde_json::json!(epochs), "buckets read by {args:?}");
    }
}

#[test]
fn default_window_misses_old_data() {
    // The capture is from 2013, so the last hour has no bucket.
    let loaded = load("small");
    let answer = json_of(&loaded, &["query", "who-uses", "Facebook"]);
    assert_eq!(answer["subscribers"], serde_json::json!([]));
    assert_eq!(answer["window"]["buckets"], serde_json::json!([]));
    let text = stdout_of(&loaded, &["query", "who-uses", "Facebook"]);
    assert_eq!(
        text,
        "no bucket is stored for the last 1h under the key prefix \"imsitrace:\"; for older data give --since all or --from EPOCH\n"
    );
}

#[test]
fn who_uses_text_lists_subscribers() {
    let loaded = load("small");
    let expected = report_totals(&loaded.reports, |row| names_part(&row.protocol, "Facebook"));
    let text = stdout_of(&loaded, &["query", "who-uses", "Facebook", "--since", "all"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("{} subscribers with Facebook traffic in 2 buckets, 2013-07-27T15:10:00Z to 2013-07-27T15:20:00Z", expected.len())
    );
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["IMSI", "Packets", "Bytes", "Flows", "Protocols"]);
    assert_eq!(lines.len(), 2 + expected.len(), "{text}");
    for (line, (imsi, totals)) in lines[2..].iter().zip(&expected) {
        let protocols: Vec<&str> = totals.3.iter().map(String::as_str).collect();
        let fields = [imsi.clone(), totals.0.to_string(), totals.1.to_string(), totals.2.to_string(), protocols.join(",")];
        assert_eq!(line.split_whitespace().collect::<Vec<_>>(), fields, "{line}");
    }
}

#[test]
fn who_uses_unknown_name_rejected() {
    let loaded = load("small");
    let stderr = failure_of(&loaded, &["query", "who-uses", "Facebok", "--since", "all"], 1);
    assert!(stderr.contains("unknown application \"Facebok\""), "{stderr}");
    let stderr = failure_of(&loaded, &["query", "who-uses", "TLS", "--since", "5x"], 2);
    assert!(stderr.contains("invalid duration \"5x\" for --since"), "{stderr}");
    let stderr = failure_of(&loaded, &["query", "who-uses", "TLS", "--from", "600", "--to", "300"], 1);
    assert!(stderr.contains("--to 300 is not later than --from 600"), "{stderr}");
}

#[test]
fn active_matches_truth() {
    for name in ["small", "vlan", "ipv6"] {
        let loaded = load(name);
        let expected = truth_active(&loaded.truth);
        assert!(!expected.is_empty(), "{name}: the truth has sessions up at the end");

        let answer = json_of(&loaded, &["query", "active"]);
        assert_eq!(strings(&answer["imsis"]), expected, "{name}: active IMSIs");
        assert_eq!(answer["active"], expected.len(), "{name}: count");
        // The generator sends no Release Access Bearers, so no subscriber is idle.
        assert_eq!(answer["attached"], expected.len(), "{name}: attached");
        assert_eq!(answer["idle"], 0, "{name}: idle");
        assert_eq!(answer["protocol"], Value::Null, "{name}: protocol");

        let text = stdout_of(&loaded, &["query", "active"]);
        assert_eq!(text, format!("{} active subscribers ({} attached, 0 idle)\n", expected.len(), expected.len()));
    }
}

#[test]
fn active_per_protocol() {
    let loaded = load("small");
    let active = truth_active(&loaded.truth);
    for protocol in ["TLS", "DNS", "HTTP", "QUIC", "Unknown"] {
        let expected: BTreeSet<String> = truth_users(&loaded.truth, protocol).intersection(&active).cloned().collect();
        let answer = json_of(&loaded, &["query", "active", "--protocol", protocol, "--since", "all"]);
        assert_eq!(strings(&answer["imsis"]), expected, "active --protocol {protocol}");
        assert_eq!(answer["active"], expected.len(), "active --protocol {protocol}");
        assert_eq!(answer["protocol"], protocol);
    }

    let second = SECOND_BUCKET.to_string();
    let facebook_late = report_totals(&loaded.reports, |row| row.epoch == SECOND_BUCKET && names_part(&row.protocol, "Facebook"));
    let expected: BTreeSet<String> = facebook_late.into_keys().filter(|imsi| active.contains(imsi)).collect();
    let answer = json_of(&loaded, &["query", "active", "--protocol", "facebook", "--from", &second]);
    assert_eq!(strings(&answer["imsis"]), expected, "active Facebook users in the second bucket");
    let text = stdout_of(&loaded, &["query", "active", "--protocol", "Facebook", "--from", &second]);
    let noun = if expected.len() == 1 { "subscriber" } else { "subscribers" };
    assert_eq!(
        text,
        format!(
            "{} active {noun} with Facebook traffic in 1 bucket, 2013-07-27T15:15:00Z to 2013-07-27T15:20:00Z ({} attached, 0 idle)\n",
            expected.len(),
            expected.len()
        )
    );

    let stderr = failure_of(&loaded, &["query", "active", "--since", "all"], 1);
    assert!(stderr.contains("give --protocol APP too"), "{stderr}");
}

#[test]
fn subscriber_by_imsi_matches_truth() {
    let loaded = load("small");
    let active = truth_active(&loaded.truth);
    for (imsi, subscriber) in truth_subscribers(&loaded.truth) {
        let state = json_of(&loaded, &["subscriber", &imsi]);
        let session = last_session(subscriber);
        assert_eq!(state["imsi"], imsi.as_str());
        assert_eq!(state["msisdn"], subscriber["msisdn"], "{imsi}: MSISDN");
        assert_eq!(state["imei"], subscriber["imeisv"], "{imsi}: the IMEI(SV) as signalled");
        assert_eq!(state["apn"], session["apn"], "{imsi}: APN");
        assert_eq!(state["rat"], session["rat"], "{imsi}: RAT");
        assert_eq!(state["ue_ipv4"], session["user_ipv4"], "{imsi}: UE IPv4 of the last session");
        assert!(state["last_change_utc"].as_str().unwrap().starts_with("2013-07-27T"), "{imsi}: {state}");
        let tunnels = state["tunnels"].as_array().expect("tunnels");
        if !active.contains(&imsi) {
            assert_eq!(state["state"], "detached", "{imsi}");
            assert!(tunnels.is_empty(), "{imsi}: a detached subscriber keeps no tunnel: {state}");
            continue;
        }
        assert_eq!(state["state"], "attached", "{imsi}");
        let path = session["tunnels"].as_array().unwrap().last().expect("the last tunnel state");
        let has = |role: &str, endpoint: &Value| {
            tunnels.iter().any(|tunnel| {
                tunnel["role"] == role && tunnel["addr"] == endpoint["dst_addr"] && tunnel["teid"] == endpoint["teid"]
            })
        };
        assert!(has("uplink", &path["uplink"]), "{imsi}: uplink {} in {state}", path["uplink"]);
        assert!(has("downlink", &path["downlink"]), "{imsi}: downlink {} in {state}", path["downlink"]);
        let downlinks = tunnels.iter().filter(|tunnel| tunnel["role"] == "downlink").count();
        assert_eq!(downlinks, 1, "{imsi}: one radio-side tunnel after handovers: {state}");
    }
}

#[test]
fn subscriber_text_shows_state() {
    let loaded = load("small");
    // 001010081222024 is attached at the end of the capture on eNodeB 10.100.0.2 (truth).
    let text = stdout_of(&loaded, &["subscriber", "001010081222024"]);
    let lines: Vec<Vec<&str>> = text.lines().map(|line| line.split_whitespace().collect()).collect();
    for expected in [
        &["IMSI", "001010081222024"][..],
        &["state", "attached"],
        &["MSISDN", "447709731969"],
        &["IMEI", "8689100462237802"],
        &["APN", "internet"],
        &["RAT", "EUTRAN"],
        &["UE", "IPv4", "100.67.0.106"],
        &["UE", "IPv6", "-"],
        &["last", "site", "local"],
        &["tunnels", "3"],
    ] {
        assert!(lines.iter().any(|line| line == expected), "no line {expected:?} in\n{text}");
    }
    assert!(lines.iter().any(|line| line.starts_with(&["downlink", "10.100.0.2", "1900452285"])), "{text}");
    assert!(lines.iter().any(|line| line.starts_with(&["uplink", "10.40.0.12", "3198666873"])), "{text}");
}

#[test]
fn subscriber_by_msisdn_finds_imsi() {
    let loaded = load("small");
    for (imsi, subscriber) in truth_subscribers(&loaded.truth) {
        let msisdn = subscriber["msisdn"].as_str().expect("msisdn");
        let state = json_of(&loaded, &["subscriber", "--msisdn", msisdn]);
        assert_eq!(state["imsi"], imsi.as_str(), "--msisdn {msisdn}");
    }
    let state = json_of(&loaded, &["subscriber", "--msisdn", "+447709731969"]);
    assert_eq!(state["imsi"], "001010081222024", "a leading + is accepted");
}

#[test]
fn subscriber_by_ue_ip_finds_holder() {
    let loaded = load("small");
    // The attached subscribers hold the address of their last session.
    let subscribers = truth_subscribers(&loaded.truth);
    for imsi in truth_active(&loaded.truth) {
        let address = last_session(subscribers[&imsi])["user_ipv4"].as_str().expect("IPv4 session").to_owned();
        let state = json_of(&loaded, &["subscriber", "--ue-ip", &address]);
        assert_eq!(state["imsi"], imsi.as_str(), "--ue-ip {address}");
    }
    // Truth `ue_ip_reuse`: 100.65.0.126 was released by 001017465578576, then held by
    // 262012553692236, which is still attached with it.
    let state = json_of(&loaded, &["subscriber", "--ue-ip", "100.65.0.126"]);
    assert_eq!(state["imsi"], "262012553692236");
    // 001015875979116 had the dual-stack session with prefix 2001:db8:a020:2::/64 and
    // detached since. No other subscriber had that prefix.
    let state = json_of(&loaded, &["subscriber", "--ue-ip", "2001:db8:a020:2:e2d2:8da8:3cbb:5615"]);
    assert_eq!(state["imsi"], "001015875979116");
    assert_eq!(state["state"], "detached");
}

#[test]
fn unknown_subscriber_exits_1() {
    let loaded = load("small");
    let cases: [(&[&str], &str); 3] = [
        (&["subscriber", "001019999999999"], "no subscriber with IMSI 001019999999999 is stored"),
        (&["subscriber", "--msisdn", "1"], "no subscriber with MSISDN 1 is stored"),
        (&["subscriber", "--ue-ip", "192.0.2.1"], "no subscriber with UE address 192.0.2.1 is stored"),
    ];
    for (args, message) in cases {
        let stderr = failure_of(&loaded, args, 1);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn invalid_lookup_values_named() {
    // The values are rejected before any connection, so no server is started.
    let url = format!("redis://127.0.0.1:{}/", redis_server::free_port());
    let cases: [(&[&str], &str); 4] = [
        (&["subscriber", "12ab"], "invalid IMSI \"12ab\": give 5 to 15 digits"),
        (&["subscriber", "--msisdn", "44-77"], "invalid MSISDN \"44-77\": give up to 15 digits"),
        (&["subscriber", "--ue-ip", "1.2.3"], "invalid UE address \"1.2.3\": give an IPv4 address"),
        (&["subscriber", "--ue-ip", "1.2.3.4", "--msisdn", "1"], "cannot be used with"),
    ];
    for (args, message) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--redis", &url]);
        let output = imsitrace(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
