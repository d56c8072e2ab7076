//! Durations in the configuration: whole numbers with a unit, e.g. `300s`, `5m`, `1h30m`,
//! `500ms`.

use std::time::Duration;

/// Units accepted after a number, longest spelling first so `ms` is not read as `m`.
const UNITS: [(&str, u64); 5] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// Largest duration accepted: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses a duration written as one or more `<whole number><unit>` parts, with unit `ms`,
/// `s`, `m`, `h` or `d`, e.g. `90s`, `5m`, `1h30m`. Returns a message for the key's
/// problem list on failure.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: give a whole number with a unit ms, s, m, h or d, e.g. \"300s\" or \"5m\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, unit_ms) = UNITS.iter().find(|(unit, _)| rest.starts_with(unit)).ok_or_else(invalid)?;
        rest = &rest[unit.len()..];
        total_ms = number.checked_mul(*unit_ms).and_then(|ms| total_ms.checked_add(ms)).ok_or_else(too_long(text))?;
    }
    let duration = Duration::from_millis(total_ms);
    if duration > MAX_DURATION {
        return Err(too_long(text)());
    }
    Ok(duration)
}

fn too_long(text: &str) -> impl Fn() -> String + '_ {
    move || format!("invalid duration {text:?}: give at most 365d")
}

/// Formats a duration in the largest unit that divides it, e.g. `5m`, `24h`, `1500ms`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let (unit, unit_ms) = UNITS
        .iter()
        .rev()
        .find(|(_, unit_ms)| ms % u128::from(*unit_ms) == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / u128::from(unit_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
    }

    #[test]
    fn invalid_durations_name_value() {
        for text in ["", "300", "5 minutes", "s", "-5s", "1.5s", "5x", "5m3", "m5"] {
            let message = parse_duration(text).expect_err(text);
            assert_eq!(
                message,
                format!("invalid duration {text:?}: give a whole number with a unit ms, s, m, h or d, e.g. \"300s\" or \"5m\"")
            );
        }
    }

    #[test]
    fn too_long_durations_rejected() {
        assert_eq!(parse_duration("366d"), Err("invalid duration \"366d\": give at most 365d".to_owned()));
        let huge = "99999999999999999999d";
        assert!(parse_duration(huge).is_err());
        assert!(parse_duration("18446744073709551615d").is_err());
    }

    #[test]
    fn durations_format_in_largest_unit() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(7)), "7s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
