//! The options that name a Redis microcloud, shared by the commands that only read or
//! claim what the probes wrote there.

use clap::Args;
use imsitrace::microcloud::{RedisConfig, RedisMicrocloud};

/// `--redis URL` and `--redis-prefix PREFIX`.
#[derive(Args, Debug, Clone)]
pub struct RedisTarget {
    /// Redis server of the microcloud (`redis://host:port/db`).
    #[arg(long, value_name = "URL")]
    pub redis: String,
    /// Prefix of every Redis key and channel name.
    #[arg(long, value_name = "PREFIX", default_value = "imsitrace:")]
    pub redis_prefix: String,
}

impl RedisTarget {
    /// Connects with the default settings and this prefix. The error names the URL.
    pub async fn connect(&self) -> Result<RedisMicrocloud, String> {
        let config = RedisConfig { prefix: self.redis_prefix.clone(), ..RedisConfig::default() };
        RedisMicrocloud::connect(&self.redis, config).await.map_err(|e| e.to_string())
    }
}

/// Starts a single-threaded tokio runtime for a command that talks to Redis.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}
