//! Problems found in a configuration, each naming its key and where the value came from.

use std::fmt;
use std::path::PathBuf;

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "IMSITRACE";

/// Origin that the `config` crate (0.15) gives to the values it reads from the environment.
const ENV_ORIGIN: &str = "the environment";

/// Returns the environment variable that sets `key` (`section.name`), e.g.
/// `IMSITRACE_MICROCLOUD__REDIS` for `microcloud.redis`.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.to_uppercase().replace('.', "__"))
}

/// Returns whether a value came from the environment, given its origin in the `config` crate.
pub fn from_environment(origin: Option<&str>) -> bool {
    origin == Some(ENV_ORIGIN)
}

/// One invalid or missing value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `report.interval`.
    pub key: String,
    /// Whether the value came from an environment variable rather than the file.
    pub from_env: bool,
    /// Description of the fault and of the value to give, e.g. `invalid value 0: give at least 1`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from_env {
            write!(f, "{} (environment variable {}): {}", self.key, env_var(&self.key), self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Failure to load a configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read or is not valid TOML.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Reason, from the operating system or the TOML parser.
        reason: String,
    },
    /// The file was read but some values are invalid or missing.
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, in the order of the sections and keys.
        problems: Vec<Problem>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { path, reason } => {
                write!(f, "cannot read the configuration file {}: {reason}", path.display())
            }
            ConfigError::Invalid { path, problems } => {
                let count = problems.len();
                let noun = if count == 1 { "problem" } else { "problems" };
                write!(f, "invalid configuration {} ({count} {noun}):", path.display())?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        assert_eq!(env_var("microcloud.redis"), "IMSITRACE_MICROCLOUD__REDIS");
        assert_eq!(env_var("report.claim_ttl"), "IMSITRACE_REPORT__CLAIM_TTL");
        assert_eq!(env_var("cluster"), "IMSITRACE_CLUSTER");
    }

    #[test]
    fn problem_names_env_var() {
        let problem = Problem { key: "report.lag".into(), from_env: true, message: "invalid value 0".into() };
        assert_eq!(problem.to_string(), "report.lag (environment variable IMSITRACE_REPORT__LAG): invalid value 0");
    }
}
