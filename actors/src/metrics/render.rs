//! Renders a [`NodeSnapshot`] in the Prometheus text exposition format, version 0.0.4:
//! for each family a `# HELP` and a `# TYPE` line, then one line per sample,
//! `name{label="value",...} value`. Every sample carries the `node`, `role` and `site`
//! labels first. Label values escape `\`, `"` and line feeds; help text escapes `\` and
//! line feeds.

use std::fmt::Write as _;

use super::snapshot::{Family, NodeSnapshot};

/// Media type of the output, for the `Content-Type` header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Returns the snapshot in the text format, ending with a line feed.
pub fn render(snapshot: &NodeSnapshot) -> String {
    let identity = &snapshot.identity;
    let roles = identity.roles.join(",");
    let node_labels = [("node", identity.node.as_str()), ("role", roles.as_str()), ("site", identity.site.as_str())];
    let mut out = String::new();
    for family in &snapshot.families {
        render_family(&mut out, family, &node_labels);
    }
    out
}

fn render_family(out: &mut String, family: &Family, node_labels: &[(&str, &str)]) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.name());
    for sample in &family.samples {
        out.push_str(&family.name);
        out.push('{');
        let own = sample.labels.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        for (index, (name, value)) in node_labels.iter().copied().chain(own).enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{name}=\"{}\"", escape_label(value));
        }
        let _ = writeln!(out, "}} {}", format_value(sample.value));
    }
}

/// Returns `value` as the format writes floats: integers without a fraction, `NaN`,
/// `+Inf` and `-Inf`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    format!("{value}")
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}
