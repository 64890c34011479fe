//! RFC 3339 UTC formatting and parsing of millisecond timestamps (no time-zone database
//! needed), plus the relative times the command line accepts (`now`, `-2h`, `-7d`).

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Milliseconds since the Unix epoch now (the collector's clock; read at the edges only).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (inverse of `civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, for tables).
pub fn rfc3339_s(ms: i64) -> String {
    let mut s = rfc3339_ms(ms);
    s.replace_range(19..23, "");
    s
}

/// A time argument that is neither RFC 3339 nor a relative time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a time (expected RFC 3339 like 2025-06-15T08:00:00Z, a date, now, or -2h / -7d): {0:?}"
)]
pub struct TimeError(pub String);

/// Parses a time argument to ms since the epoch: RFC 3339 (`2025-06-15T08:00:00Z`,
/// `…T10:00:00.5+02:00`), a date (`2025-06-15`, midnight UTC), `now`, or a relative time
/// `-N<unit>` / `+N<unit>` with unit `s`, `m`, `h`, `d` or `w`, relative to `now_ms`.
///
/// # Errors
/// A [`TimeError`] quoting the argument.
pub fn parse_time(arg: &str, now_ms: i64) -> Result<i64, TimeError> {
    let bad = || TimeError(arg.to_owned());
    let s = arg.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(rest) = s.strip_prefix('-').or_else(|| s.strip_prefix('+')) {
        let unit_at = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = rest.split_at(unit_at);
        let n: i64 = n.parse().map_err(|_| bad())?;
        let per: i64 = match unit {
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        let d = n.checked_mul(per).ok_or_else(bad)?;
        return if s.starts_with('-') {
            now_ms.checked_sub(d)
        } else {
            now_ms.checked_add(d)
        }
        .ok_or_else(bad);
    }
    parse_rfc3339(s).ok_or_else(bad)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let dim = [
        31,
        28 + i64::from(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > dim[mo as usize - 1] {
        return None;
    }
    let day_ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let f = &s[i + 1..i + 1 + digits.min(3)];
        frac_ms = f.parse::<i64>().ok()? * 10_i64.pow(3 - f.len() as u32);
        i += 1 + digits;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 60 + om;
            if o.as_bytes()[0] == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    Some(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_dates_and_relative_times() {
        let now = 1_750_000_000_000;
        assert_eq!(
            parse_time("2000-02-29T00:00:00.123Z", now),
            Ok(951_782_400_123)
        );
        assert_eq!(
            parse_time("2000-02-29T02:00:00.123+02:00", now),
            Ok(951_782_400_123)
        );
        assert_eq!(
            parse_time("2000-02-28T19:30:00-04:30", now),
            Ok(951_782_400_000)
        );
        assert_eq!(parse_time("2000-02-29", now), Ok(951_782_400_000));
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("-7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_time("+30m", now), Ok(now + 1_800_000));
        for bad in [
            "",
            "-",
            "-2",
            "-2y",
            "yesterday",
            "2001-02-29",
            "2025-06-15T25:00:00Z",
            "2025-06-15T10:00:00",
            "2025-06-15T10:00:00.Z",
            "2025-06-15T10:00:00+25:00",
            "2025-06-15T10:00:00+01:60",
            "2025-02-30",
            "+9223372036854775s",
            "-9223372036854775807w",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        for ms in [0, 951_782_400_123, 1_767_225_599_999] {
            assert_eq!(parse_time(&rfc3339_ms(ms), now), Ok(ms));
        }
        assert_eq!(rfc3339_s(951_782_400_123), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
