//! The metrics of one node at one instant: what `/metrics` renders and what the status
//! actor sends to `imsitrace status`. Every type is plain data, so it crosses the wire
//! through [`crate::cluster::codec`].

use serde::{Deserialize, Serialize};

use super::registry::Identity;

/// Prometheus metric type of a [`Family`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricKind {
    /// A value that only grows while the process runs; its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
}

impl MetricKind {
    /// Returns the name of the type on a `# TYPE` line.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// One value of a family, with the labels that tell it apart from the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Label names and values, in output order, without the node labels.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Every sample of one metric name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// Metric name, e.g. `imsitrace_packets_total`.
    pub name: String,
    /// One-line description for the `# HELP` line.
    pub help: String,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Samples, in output order.
    pub samples: Vec<Sample>,
}

impl Family {
    /// Creates a family without samples.
    pub fn new(name: &str, kind: MetricKind, help: &str) -> Family {
        Family { name: name.to_owned(), help: help.to_owned(), kind, samples: Vec::new() }
    }

    /// Creates a family with one unlabelled sample.
    pub fn single(name: &str, kind: MetricKind, help: &str, value: f64) -> Family {
        Family::new(name, kind, help).with(&[], value)
    }

    /// Adds a sample with the given labels.
    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Family {
        self.push(labels, value);
        self
    }

    /// Adds a sample with the given labels.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        self.samples.push(Sample { labels, value });
    }

    /// Returns the value of the sample whose labels include `label = value`, or of the
    /// only sample when `label` is `None`.
    pub fn value(&self, label: Option<(&str, &str)>) -> Option<f64> {
        let matches = |sample: &&Sample| match label {
            None => sample.labels.is_empty(),
            Some((name, value)) => sample.labels.iter().any(|(n, v)| n == name && v == value),
        };
        self.samples.iter().find(matches).map(|sample| sample.value)
    }
}

/// The metrics of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Name, roles and site of the node.
    pub identity: Identity,
    /// Seconds since the node started.
    pub uptime_s: f64,
    /// Metric families, in output order.
    pub families: Vec<Family>,
    /// Full names of the nodes this node has a ready cluster session with; empty outside
    /// a cluster.
    pub peers: Vec<String>,
}

impl NodeSnapshot {
    /// Returns the family named `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| family.name == name)
    }
}

/// Request of `imsitrace status` for a node's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// Full name of the requesting node, for the log of the receiving one.
    pub from: String,
}

impl crate::cluster::codec::WireMessage for NodeSnapshot {
    const NAME: &'static str = "metrics snapshot";
}

impl crate::cluster::codec::WireMessage for SnapshotRequest {
    const NAME: &'static str = "metrics snapshot request";
}
