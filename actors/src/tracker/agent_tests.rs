//! Tests of the tracker routes built from the configured and registry trackers.

use super::*;

fn tracker(id: &str, imsi: &str) -> StaticTracker {
    StaticTracker { id: id.to_owned(), imsi: imsi.to_owned() }
}

fn digits(text: &str) -> Digits {
    Digits::from_ascii(text.as_bytes()).expect("valid IMSI")
}

#[test]
fn routes_two_trackers_one_imsi() {
    let trackers = [tracker("t1", "001010000000001"), tracker("t2", "001010000000001"), tracker("t3", "001010000000002")];
    let (routes, imsis) = build_routes(trackers.iter());
    let ids: Vec<&str> = routes[&digits("001010000000001")].iter().map(|id| &**id).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(imsis.len(), 2);
}

#[test]
fn routes_skip_invalid_trackers() {
    let trackers = [tracker("../x", "001010000000001"), tracker("t2", "12ab"), tracker("t3", "001010000000002")];
    let (routes, imsis) = build_routes(trackers.iter());
    assert_eq!(routes.len(), 1, "only t3 is valid");
    assert!(imsis.contains(&digits("001010000000002")));
}

#[test]
fn routes_merge_duplicate_tracker() {
    let trackers = [tracker("t1", "001010000000001"), tracker("t1", "001010000000001")];
    let (routes, _) = build_routes(trackers.iter());
    assert_eq!(routes[&digits("001010000000001")].len(), 1);
}
