//! Time: the wall clock in Unix seconds, and UTC calendar conversions
//! without a date library: enough for log timestamps (writing RFC 3339,
//! reading the runner's `yyyy-MM-dd HH:mm:ssZ`) and the `Date` header of
//! HTTP answers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-01-05T09:00:00.123Z` for seconds since the epoch.
pub fn rfc3339_millis(unix: f64) -> String {
    let ms = (unix * 1000.0).floor() as i64;
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// `p` as a number when it is exactly `n` ASCII digits.
fn digits(p: &str, n: usize) -> Option<u32> {
    (p.len() == n && p.bytes().all(|c| c.is_ascii_digit()))
        .then(|| p.parse().ok())
        .flatten()
}

/// Parses `yyyy-MM-dd HH:mm:ssZ` (also with `T`) into seconds since the epoch.
pub fn parse_log_timestamp(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[19] != b'Z'
        || b[4] != b'-'
        || b[7] != b'-'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if b[10] != b' ' && b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits(s.get(r.clone())?, r.len());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some((days * 86_400 + i64::from(h * 3600 + mi * 60 + se)) as f64)
}

/// Parses an HTTP date (the `Date` header) into seconds since the epoch,
/// with the `httpdate` crate: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37
/// GMT`) and the two obsolete forms RFC 9110 asks recipients to accept.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            parse_log_timestamp("2026-01-05 09:00:00Z"),
            Some(1_767_603_600.0)
        );
        assert_eq!(rfc3339_millis(1_767_603_600.25), "2026-01-05T09:00:00.250Z");
        for days in [-1000, 0, 10_957, 20_000, 30_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Mon, 05 Jan 2026 09:00:00 GMT"),
            Some(1_767_603_600)
        );
        // The obsolete forms RFC 9110 asks recipients to accept.
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        for s in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2026-01-05 09:00:00",
            "2026-13-05 09:00:00Z",
            "2026-01-05 9:00:00Z ",
            "abcd-01-05 09:00:00Z",
            "2026-01-05 09:0a:00Z",
        ] {
            assert_eq!(parse_log_timestamp(s), None, "{s}");
        }
    }
}
