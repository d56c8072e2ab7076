//! The `imsitrace` command.
#![deny(unsafe_code)]

mod analyze;
mod config;
mod node;
mod query;
mod redis_target;
mod report;
mod subscriber;
mod track;
mod track_cluster;
mod fetch;
mod metrics;
mod status;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Follow mobile subscribers (IMSI) through GTP signalling and user plane.
#[derive(Parser)]
#[command(name = "imsitrace", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read capture files, follow every subscriber, and write pcaps, reports and events.
    Analyze(analyze::AnalyzeArgs),
    /// Write the 5-minute reports of buckets stored on a Redis microcloud, claiming each
    /// bucket so that only one collector of a cluster writes its report.
    Report(report::ReportArgs),
    /// Run a node with the roles of its configuration file: probe (read captures into the
    /// microcloud), collector (write the periodic reports) or both, until SIGINT or SIGTERM.
    Node(node::NodeArgs),
    /// Check a node configuration file.
    Config(config::ConfigArgs),
    /// Answer questions from the data on a Redis microcloud: who uses an application, how
    /// many subscribers are active.
    Query(query::QueryArgs),
    /// Print the stored state of a subscriber, found by IMSI, MSISDN or UE address.
    Subscriber(subscriber::SubscriberArgs),
    /// Print session events as the probes publish them on a Redis microcloud.
    Watch(watch::WatchArgs),
    /// Attach a tracker to an IMSI, so every probe writes its frames to pcap files; or
    /// list the trackers, or detach one. Joins the cluster for the command's duration.
    Track(track::TrackArgs),
    /// Collect a tracker's pcap files from every probe and merge them into one file.
    Fetch(fetch::FetchArgs),
    /// Print the counters of every node of a cluster: name, roles, site, uptime and the
    /// metrics of its /metrics page. Joins the cluster for the command's duration.
    Status(status::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node runs as a service, so its starts, stops and reports are logged by default.
    // ractor_cluster logs routine session ends at warn, so a node shows only its errors.
    // `track` and `fetch` report their own errors; the membership's retries of a refused
    // seed would repeat them.
    let default_level = match cli.command {
        Command::Node(_) => "info,ractor_cluster=error",
        Command::Track(_) | Command::Fetch(_) | Command::Status(_) => "error,ractor_cluster=off,imsitrace::cluster=off",
        // A live capture logs its start ("capturing"), interface statistics and restarts;
        // the metrics listener logs its address.
        Command::Analyze(_) => "warn,imsitrace::pipeline::live=info,imsitrace::metrics=info",
        _ => "warn",
    };
    init_logging(default_level);
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Report(args) => report::run(args),
        Command::Node(args) => node::run(args),
        Command::Config(args) => config::run(args),
        Command::Query(args) => query::run(args),
        Command::Subscriber(args) => subscriber::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Track(args) => track::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Status(args) => status::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("imsitrace: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` sets the level, else `default_level`.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
}
