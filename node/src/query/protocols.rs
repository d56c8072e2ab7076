//! Protocol names of bucket rows, and which rows an application name selects.
//!
//! Rows store nDPI protocol ids as `<master>.<app>`. nDPI prints them as `TLS.Facebook`, or
//! as one name (`DNS`, `Viber`, `Unknown`) when it found a single protocol. An application
//! name given on the command line selects a row when it equals, ignoring ASCII case, the
//! name of the row's master, the name of its app, or the whole printed name. One nDPI 4.2
//! protocol name has a dot itself (`Z39.50`), so names are compared whole, never split.

use std::collections::HashSet;

use imsitrace::flow::classify::{AppProtocol, Classify};
use imsitrace::ndpi::Classifier;

/// The printed names of nDPI protocol ids, from the nDPI release linked into this binary.
pub struct ProtocolNames {
    classifier: Classifier,
    /// Lowercase name of every protocol id of the release.
    known: HashSet<String>,
}

impl ProtocolNames {
    /// Loads nDPI and lists the names of its protocols.
    pub fn new() -> Result<ProtocolNames, String> {
        let classifier = Classifier::new().map_err(|e| e.to_string())?;
        // Ids past the last protocol of the release print as `Unknown`, so going through
        // every u16 id lists each name without knowing the protocol count.
        let known = (0..=u16::MAX).map(|id| classifier.name(single(id)).to_ascii_lowercase()).collect();
        Ok(ProtocolNames { classifier, known })
    }

    /// Returns the name of `protocol` as reports print it, e.g. `TLS.Facebook`.
    pub fn printed(&self, protocol: AppProtocol) -> &str {
        self.classifier.name(protocol)
    }

    /// Returns whether a row of `protocol` has traffic of `application` (see the module doc).
    pub fn matches(&self, application: &str, protocol: AppProtocol) -> bool {
        let master = self.classifier.name(single(protocol.master));
        let app = (protocol.app != 0).then(|| self.classifier.name(single(protocol.app)));
        name_matches(application, self.printed(protocol), master, app)
    }

    /// Checks that `application` is an nDPI protocol name, or `<master>.<app>` of two, so
    /// that a misspelt name is reported instead of matching nothing.
    pub fn check_known(&self, application: &str) -> Result<(), String> {
        let is_known = |name: &str| self.known.contains(&name.to_ascii_lowercase());
        let is_pair = application
            .split_once('.')
            .is_some_and(|(master, app)| is_known(master) && is_known(app));
        if is_known(application) || is_pair {
            return Ok(());
        }
        Err(format!(
            "unknown application {application:?}: give an nDPI protocol name as reports print it, e.g. Facebook, TLS, TLS.Facebook or Unknown"
        ))
    }
}

/// Returns whether `application` selects a row printed `printed`, whose master and app parts
/// are named `master` and `app` (`None` for a single protocol).
pub fn name_matches(application: &str, printed: &str, master: &str, app: Option<&str>) -> bool {
    application.eq_ignore_ascii_case(printed)
        || application.eq_ignore_ascii_case(master)
        || app.is_some_and(|app| application.eq_ignore_ascii_case(app))
}

fn single(id: u16) -> AppProtocol {
    AppProtocol { master: id, app: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_match_either_side() {
        let facebook = |application| name_matches(application, "TLS.Facebook", "TLS", Some("Facebook"));
        for application in ["Facebook", "facebook", "FACEBOOK", "TLS", "tls", "TLS.Facebook", "tls.FACEBOOK"] {
            assert!(facebook(application), "{application} selects TLS.Facebook");
        }
        for application in ["Face", "book", "QUIC", "Facebook.TLS", "TLS.", ".Facebook", "TLS.Facebook.x", ""] {
            assert!(!facebook(application), "{application} does not select TLS.Facebook");
        }
    }

    #[test]
    fn single_protocol_matches_its_name() {
        assert!(name_matches("dns", "DNS", "DNS", None));
        assert!(name_matches("Unknown", "Unknown", "Unknown", None));
        assert!(!name_matches("DNS.Google", "DNS", "DNS", None));
        assert!(!name_matches("Google", "DNS", "DNS", None));
    }

    #[test]
    fn ndpi_ids_named() {
        let names = ProtocolNames::new().expect("nDPI loads");
        // nDPI 4.2 ids: TLS 91, Facebook 119, DNS 5 (see docs/microcloud.md).
        let tls_facebook = AppProtocol { master: 91, app: 119 };
        let dns = AppProtocol { master: 5, app: 0 };
        assert_eq!(names.printed(tls_facebook), "TLS.Facebook");
        assert!(names.matches("facebook", tls_facebook));
        assert!(names.matches("TLS", tls_facebook));
        assert!(!names.matches("DNS", tls_facebook));
        assert!(names.matches("DNS", dns));
        assert!(!names.matches("Facebook", dns));
        assert!(names.matches("unknown", AppProtocol::default()));
    }

    #[test]
    fn unknown_application_rejected() {
        let names = ProtocolNames::new().expect("nDPI loads");
        for application in ["Facebook", "viber", "TLS.Facebook", "Unknown", "Z39.50"] {
            assert_eq!(names.check_known(application), Ok(()), "{application}");
        }
        for application in ["Facebok", "TLS.Facebok", "TLS.", ".TLS", "", "Z39", "TLS.Facebook.x"] {
            let error = names.check_known(application).expect_err(application);
            assert!(error.starts_with(&format!("unknown application {application:?}: give")), "{error}");
        }
    }

    #[test]
    fn dotted_name_compared_whole() {
        // nDPI 4.2 names one protocol `Z39.50`; it must select its rows, not be split.
        let names = ProtocolNames::new().expect("nDPI loads");
        let id = (0..=u16::MAX).find(|&id| names.printed(single(id)) == "Z39.50").expect("nDPI 4.2 has Z39.50");
        assert!(names.matches("z39.50", single(id)));
        assert!(names.matches("Z39.50", AppProtocol { master: 91, app: id }), "as the app of TLS");
        assert!(!names.matches("Z39", single(id)));
        let dotted: Vec<&String> = names.known.iter().filter(|name| name.contains('.')).collect();
        assert_eq!(dotted, ["z39.50"], "names with a dot");
    }
}
