//! The `imsitrace` command.
#![deny(unsafe_code)]

mod analyze;
mod redis_target;
mod report;
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
    /// Print session events as the probes publish them on a Redis microcloud.
    Watch(watch::WatchArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Report(args) => report::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("imsitrace: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` sets the level (default: warn).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
