//! Tests of `probe.interfaces` and `[probe.capture]`.

use std::collections::HashMap;
use std::time::Duration;

use imsitrace::pipeline::live::LiveOptions;

use super::*;

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).expect("write the configuration");
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    load_with_env(&path, Some(env))
}

fn problems(text: &str) -> Vec<String> {
    match load_text(text, &[]) {
        Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("expected invalid values, got {other}"),
        Ok(config) => panic!("expected problems, got {config:?}"),
    }
}

const PROBE: &str = "[node]\nroles = [\"probe\"]\n";

#[test]
fn interfaces_with_defaults() {
    let text = format!("{PROBE}[probe]\ninterfaces = [\"eth0\", \"eth1\"]\n");
    let live = load_text(&text, &[]).expect("valid").probe.live.expect("live capture");
    let expected = LiveOptions { interfaces: vec!["eth0".into(), "eth1".into()], wait_for_interfaces: true, ..LiveOptions::default() };
    assert_eq!(live, expected);
}

#[test]
fn capture_table_read() {
    let text = format!(
        "{PROBE}[probe]\ninterfaces = [\"any\"]\n[probe.capture]\nsnaplen = 1500\nbuffer_mib = 256\nimmediate = true\n\
         read_timeout = \"20ms\"\npromiscuous = false\nfilter = \"udp port 2152\"\nstats_interval = \"10s\"\n\
         restart_min = \"2s\"\nrestart_max = \"30s\"\n"
    );
    let live = load_text(&text, &[]).expect("valid").probe.live.expect("live capture");
    let expected = LiveOptions {
        interfaces: vec!["any".into()],
        snaplen: 1_500,
        buffer_mib: 256,
        immediate: true,
        read_timeout: Duration::from_millis(20),
        promiscuous: false,
        filter: Some("udp port 2152".into()),
        stats_interval: Duration::from_secs(10),
        restart_min: Duration::from_secs(2),
        restart_max: Duration::from_secs(30),
        duration: None,
        wait_for_interfaces: true,
    };
    assert_eq!(live, expected);
}

#[test]
fn capture_from_environment() {
    let env = [("IMSITRACE_PROBE__INTERFACES", "eth0,eth1"), ("IMSITRACE_PROBE__CAPTURE__BUFFER_MIB", "128")];
    let live = load_text(PROBE, &env).expect("valid").probe.live.expect("live capture");
    assert_eq!(live.interfaces, ["eth0", "eth1"]);
    assert_eq!(live.buffer_mib, 128);
}

#[test]
fn invalid_capture_values_listed() {
    let text = format!(
        "{PROBE}[probe]\ninterfaces = [\"eth0\", \"bad name\", \"eth0\"]\n[probe.capture]\nsnaplen = 64\nbuffer_mib = 4096\n\
         read_timeout = \"0s\"\nfilter = \"udp prt 2152\"\nrestart_min = \"10s\"\nrestart_max = \"1s\"\nring = 4\n"
    );
    let found = problems(&text);
    let expected = [
        "probe.capture.snaplen: invalid value 64: give a whole number from 128 to 262144",
        "probe.capture.buffer_mib: invalid value 4096: give a whole number from 1 to 2047",
        "probe.capture.read_timeout: invalid value 0 ms: give 1 to 10000 ms",
        "probe.capture.restart_max: invalid restart delays 10s to 1s: give a minimum above 0 and a maximum not below it",
    ];
    for message in expected {
        assert!(found.iter().any(|problem| problem == message), "missing {message:?} in {found:#?}");
    }
    let filter = found.iter().find(|problem| problem.starts_with("probe.capture.filter: invalid BPF filter \"udp prt 2152\""));
    assert!(filter.is_some(), "{found:#?}");
    let unknown = found.iter().find(|problem| problem.starts_with("probe.capture.ring: unknown key; [probe.capture] takes snaplen,"));
    assert!(unknown.is_some(), "{found:#?}");
    let name = found.iter().find(|problem| problem.starts_with("probe.interfaces: invalid interface name \"bad name\""));
    assert!(name.is_some(), "{found:#?}");
    let twice = found.iter().find(|problem| problem.as_str() == "probe.interfaces: interface \"eth0\" is given twice: give each interface once");
    assert!(twice.is_some(), "{found:#?}");
}

#[test]
fn capture_without_interfaces_rejected() {
    let text = format!("{PROBE}[probe]\ninputs = [\"a.pcap\"]\n[probe.capture]\nimmediate = true\n");
    let expected = "probe.capture: [probe.capture] needs probe.interfaces: give the interfaces to capture on, e.g. interfaces = [\"eth0\"]";
    assert_eq!(problems(&text), [expected]);
}

#[test]
fn inputs_and_interfaces_conflict() {
    let text = format!("{PROBE}[probe]\ninputs = [\"a.pcap\"]\ninterfaces = [\"eth0\"]\n");
    let expected = "probe.interfaces: conflicts with probe.inputs: a probe reads capture files or captures on interfaces; give one of them";
    assert_eq!(problems(&text), [expected]);
}

#[test]
fn replay_speed_rejected_when_live() {
    let text = format!("{PROBE}[probe]\ninterfaces = [\"eth0\"]\nreplay_speed = 2\n");
    let expected = "probe.replay_speed: applies to probe.inputs, not to a live capture on probe.interfaces: leave it out";
    assert_eq!(problems(&text), [expected]);
}

#[test]
fn probe_without_input_names_both_keys() {
    let found = problems(PROBE);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("(probe.inputs)"), "{}", found[0]);
    assert!(found[0].contains("(probe.interfaces)"), "{}", found[0]);
}
