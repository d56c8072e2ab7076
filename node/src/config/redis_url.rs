//! Checks the form of a Redis URL before any connection, and hides its password.
//!
//! Accepted forms are those of the redis crate 1.x without TLS: `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`
//! and `unix:///PATH` or `redis+unix:///PATH`, each with an optional `?query`.

/// Accepted forms, appended to every message.
const EXPECTED: &str = "give redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0, or unix:///PATH/TO/SOCKET";

/// Returns `Ok` when `url` has one of the accepted forms, else the reason and what to give.
/// The message shows the URL with its password hidden.
pub fn check_redis_url(url: &str) -> Result<(), String> {
    let redacted = redact(url);
    let invalid = |reason: &str| format!("invalid Redis URL {redacted:?}: {reason}; {EXPECTED}");
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid("no scheme"));
    };
    let rest = rest.split_once('?').map_or(rest, |(before, _query)| before);
    match scheme {
        "redis" => check_tcp(rest).map_err(|reason| invalid(&reason)),
        "unix" | "redis+unix" if rest.starts_with('/') && rest.len() > 1 => Ok(()),
        "unix" | "redis+unix" => Err(invalid("the socket path is missing or not absolute")),
        "rediss" => Err(invalid("TLS (rediss) is not supported by this build")),
        _ => Err(invalid(&format!("unsupported scheme {scheme:?}"))),
    }
}

/// Checks `[USER[:PASSWORD]@]HOST[:PORT][/DB]`.
fn check_tcp(rest: &str) -> Result<(), String> {
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_user, host_port)| host_port);
    let (host, port) = split_host_port(host_port)?;
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(format!("invalid port {port:?}"));
        }
    }
    if !database.is_empty() && database.parse::<u32>().is_err() {
        return Err(format!("invalid database {database:?}, a number is expected"));
    }
    Ok(())
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| "an IPv6 host misses its ']'".to_owned())?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {after:?} after the host")),
        };
    }
    Ok(match host_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    })
}

/// Returns `url` with the password of its user part replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((user_part, host_part)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match user_part.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host_part}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_urls_accepted() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "redis://127.0.0.1",
            "redis://localhost:7000/",
            "redis://user:secret@127.0.0.1:7000/2",
            "redis://:secret@127.0.0.1:7000",
            "redis://[::1]:7000/0",
            "redis://127.0.0.1:7000/0?protocol=resp3",
            "unix:///run/redis/redis.sock",
            "redis+unix:///run/redis/redis.sock?db=1",
        ] {
            assert_eq!(check_redis_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn invalid_urls_give_reason() {
        let cases = [
            ("127.0.0.1:6379", "no scheme"),
            ("http://127.0.0.1:6379", "unsupported scheme \"http\""),
            ("rediss://127.0.0.1:6379", "TLS (rediss) is not supported by this build"),
            ("redis://", "the host is missing"),
            ("redis://:7000", "the host is missing"),
            ("redis://127.0.0.1:0", "invalid port \"0\""),
            ("redis://127.0.0.1:99999", "invalid port \"99999\""),
            ("redis://127.0.0.1:port", "invalid port \"port\""),
            ("redis://127.0.0.1:7000/db", "invalid database \"db\", a number is expected"),
            ("redis://[::1:7000", "an IPv6 host misses its ']'"),
            ("unix://", "the socket path is missing or not absolute"),
        ];
        for (url, reason) in cases {
            let expected = format!("invalid Redis URL {url:?}: {reason}; {EXPECTED}");
            assert_eq!(check_redis_url(url), Err(expected), "{url}");
        }
    }

    #[test]
    fn password_hidden() {
        assert_eq!(redact("redis://user:secret@127.0.0.1:7000/0"), "redis://user:***@127.0.0.1:7000/0");
        assert_eq!(redact("redis://:secret@127.0.0.1:7000"), "redis://:***@127.0.0.1:7000");
        assert_eq!(redact("redis://127.0.0.1:7000/0"), "redis://127.0.0.1:7000/0");
        let message = check_redis_url("redis://user:secret@127.0.0.1:0").expect_err("port 0");
        assert!(!message.contains("secret"), "{message}");
    }
}
