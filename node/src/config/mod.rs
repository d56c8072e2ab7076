//! The node configuration: a TOML file, read with the `config` crate, whose every key can
//! also be set by an environment variable named `IMSITRACE_<SECTION>__<KEY>` in upper case,
//! e.g. `IMSITRACE_MICROCLOUD__REDIS` for `redis` in `[microcloud]`. An environment variable
//! takes precedence over the file. A list, such as `node.roles`, is given to a variable as
//! comma-separated items.
//!
//! Every key of every section is checked in one pass, so `imsitrace config check` lists
//! every problem at once. A key or section that this release does not know is a problem,
//! named in the message, so a misspelt key is not silently ignored.

mod capture;
mod cluster;
mod duration;
mod metrics;
mod problems;
mod read;
mod redis_url;
mod schema;
mod summary;
mod table;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use config::{Config, Environment, File, FileFormat, ValueKind};

pub use problems::{ConfigError, ENV_PREFIX};
pub use duration::parse_duration;
pub use metrics::parse_listen;
pub use redis_url::redact;
pub use schema::{ClusterSection, NodeConfig};

/// Options of `imsitrace config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Check a node configuration file, with the IMSITRACE_* environment variables applied.
    /// Prints every problem and exits with status 1, or prints the effective configuration.
    Check {
        /// The TOML file, as given to `imsitrace node --config`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs `imsitrace config`.
pub fn run(args: ConfigArgs) -> Result<(), String> {
    match args.command {
        ConfigCommand::Check { file } => {
            let config = load(&file).map_err(|error| error.to_string())?;
            print!("{}", summary::summary(&file, &config));
            Ok(())
        }
    }
}

/// Reads the configuration file at `path` and the `IMSITRACE_*` environment variables.
pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
    load_with_env(path, None)
}

/// Reads the configuration file at `path` with the given environment variables instead of
/// the process environment when `env` is given.
fn load_with_env(path: &Path, env: Option<HashMap<String, String>>) -> Result<NodeConfig, ConfigError> {
    let unreadable = |reason: String| ConfigError::Unreadable { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|error| unreadable(error.to_string()))?;
    let environment = Environment::with_prefix(ENV_PREFIX).prefix_separator("_").separator("__").source(env);
    let built = Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|error| unreadable(error.to_string()))?;
    let root: HashMap<_, _> = match built.cache.kind {
        ValueKind::Table(table) => table.into_iter().collect(),
        _ => HashMap::new(),
    };
    read::read_config(root).map_err(|problems| ConfigError::Invalid { path: path.to_path_buf(), problems })
}

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;
