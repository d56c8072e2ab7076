//! Timestamps in text: UTC date and time from microseconds since the Unix epoch.

/// Formats `ts_us` (microseconds since 1970-01-01T00:00:00Z) as RFC 3339 UTC with
/// microseconds, e.g. `2013-07-27T15:10:00.923098Z`.
pub fn format_utc_us(ts_us: u64) -> String {
    let seconds = ts_us / 1_000_000;
    let micros = ts_us % 1_000_000;
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z")
}

/// Converts a count of days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Days are shifted to start on 0000-03-01, so each 400-year era has 146,097 days and the
/// leap day is the last day of its shifted year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_start() {
        assert_eq!(format_utc_us(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn capture_time() {
        // `date -u -d @1374937800.923098 +%FT%T.%6NZ` prints 2013-07-27T15:10:00.923098Z.
        assert_eq!(format_utc_us(1_374_937_800_923_098), "2013-07-27T15:10:00.923098Z");
    }

    #[test]
    fn leap_days() {
        // 2000-02-29 and 2024-02-29 are leap days; 2100 is not a leap year.
        assert_eq!(format_utc_us(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(format_utc_us(1_709_164_799_000_000), "2024-02-28T23:59:59.000000Z");
        assert_eq!(format_utc_us(1_709_164_800_000_000), "2024-02-29T00:00:00.000000Z");
        assert_eq!(format_utc_us(4_107_542_400_000_000), "2100-03-01T00:00:00.000000Z");
    }
}
