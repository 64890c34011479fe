//! Query parameters: URL decoding, checked values that name the parameter, the session
//! filter, cursors.

use super::error::ApiError;
use crate::query::SessionFilter;

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded; repeated keys kept in order.
pub fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parsed query parameters with checks that name the parameter.
pub struct Params {
    pairs: Vec<(String, String)>,
    used: Vec<&'static str>,
}

impl Params {
    /// From the raw query string.
    pub fn new(q: Option<&str>) -> Params {
        Params {
            pairs: q.map(pairs).unwrap_or_default(),
            used: vec!["access_token"],
        }
    }

    /// The last value of `k` (empty values count as absent).
    pub fn get(&mut self, k: &'static str) -> Option<String> {
        self.used.push(k);
        self.pairs
            .iter()
            .rev()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    /// Every value of `k`.
    pub fn all(&mut self, k: &'static str) -> Vec<String> {
        self.used.push(k);
        self.pairs
            .iter()
            .filter(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A time parameter (RFC 3339 or relative to `now_ms`).
    pub fn time(&mut self, k: &'static str, now_ms: i64) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => parse_time(&v, now_ms).map(Some).ok_or_else(|| {
                ApiError::bad_param(
                    k,
                    format!("not a time (RFC 3339 like 2025-06-15T08:00:00Z, a date, now, or -2h / -7d): {v:?}"),
                )
            }),
        }
    }

    /// An unsigned number parameter in `1..=max`.
    pub fn number(&mut self, k: &'static str, max: u32) -> Result<Option<u32>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::bad_param(
                    k,
                    format!("expected a number from 1 to {max}: {v:?}"),
                )),
            },
        }
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`).
    pub fn flag(&mut self, k: &'static str) -> Result<bool, ApiError> {
        match self.get(k).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(v) => Err(ApiError::bad_param(
                k,
                format!("expected true or false: {v:?}"),
            )),
        }
    }

    /// Rejects parameters no getter asked for (a typo must not silently widen a query).
    ///
    /// # Errors
    /// 400 naming the first unknown parameter.
    pub fn finish(self) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !self.used.contains(&k.as_str()))
        {
            Some((k, _)) => Err(ApiError::bad_param(k, "unknown parameter")),
            None => Ok(()),
        }
    }
}

/// The session filter of `GET /api/v1/sessions` (the CLI's flags as parameters). `limit` is
/// not read here: for JSON it is the page size, for CSV the total.
///
/// # Errors
/// 400 naming the bad parameter.
pub fn session_filter(p: &mut Params, now_ms: i64) -> Result<SessionFilter, ApiError> {
    let open = p.flag("open")?;
    let closed = p.flag("closed")?;
    if open && closed {
        return Err(ApiError::bad_param(
            "open",
            "open and closed exclude each other",
        ));
    }
    let mac = p.get("mac").map(|m| m.to_ascii_lowercase());
    if let Some(m) = &mac {
        let ok = m.len() == 17
            && m.split(':').count() == 6
            && m.split(':')
                .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(ApiError::bad_param(
                "mac",
                format!("expected aa:bb:cc:dd:ee:ff: {m:?}"),
            ));
        }
    }
    Ok(SessionFilter {
        open: if open {
            Some(true)
        } else if closed {
            Some(false)
        } else {
            None
        },
        devices: p.all("device"),
        group: p.get("group"),
        organization: p.get("organization"),
        mac,
        ssid: p.get("ssid"),
        start_after_ms: p.time("start_after", now_ms)?,
        start_before_ms: p.time("start_before", now_ms)?,
        stop_after_ms: p.time("stop_after", now_ms)?,
        stop_before_ms: p.time("stop_before", now_ms)?,
        limit: None,
    })
}

/// Position after a row in the sessions order (start descending, then device id, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the last row, ms.
    pub start_ms: i64,
    /// Its device id.
    pub device_id: String,
    /// Its session id (as stored).
    pub id: i64,
}

impl Cursor {
    /// Opaque text form (hex of `start|id|device`).
    pub fn encode(&self) -> String {
        format!("{}|{}|{}", self.start_ms, self.id, self.device_id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Parses [`Cursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<Cursor> {
        if !s.len().is_multiple_of(2) || s.len() > 600 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let mut it = text.splitn(3, '|');
        Some(Cursor {
            start_ms: it.next()?.parse().ok()?,
            id: it.next()?.parse().ok()?,
            device_id: it.next()?.to_owned(),
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 (`2025-06-01T08:00:00Z`, fractions and offsets allowed, also a bare date) or
/// relative to `now_ms` (`-2h`, `-7d`, `-30m`, `-10s`, `now`) → ms since the epoch.
/// (The CLI's `timefmt::parse_time`, in progress elsewhere, will replace this.)
pub fn parse_time(s: &str, now_ms: i64) -> Option<i64> {
    let s = s.trim();
    if s == "now" {
        return Some(now_ms);
    }
    if let Some(rel) = s.strip_prefix('-') {
        let unit = rel.chars().last()?;
        let n: i64 = rel[..rel.len() - unit.len_utf8()].parse().ok()?;
        let ms = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        return now_ms.checked_sub(n.checked_mul(ms)?);
    }
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
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let day_ms = days_from_civil(y, mo, d) * 86_400_000;
    if b.len() == 10 {
        return Some(day_ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32);
    }
    let offset_ms = match s.get(i..)? {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let v = (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?) * 60_000;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    Some(day_ms + ((h * 60 + mi) * 60 + se) * 1000 + frac_ms - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z", 0), Some(0));
        assert_eq!(
            parse_time("2000-02-29T00:00:00.123Z", 0),
            Some(951_782_400_123)
        );
        assert_eq!(
            parse_time("2000-02-29T01:00:00+01:00", 0),
            Some(951_782_400_000)
        );
        assert_eq!(parse_time("2000-02-29", 0), Some(951_782_400_000));
        assert_eq!(parse_time("-2h", 10_000_000), Some(10_000_000 - 7_200_000));
        assert_eq!(parse_time("yesterday", 0), None);
        assert_eq!(parse_time("2000-13-01T00:00:00Z", 0), None);
        assert_eq!(parse_time("-h", 0), None);
    }

    #[test]
    fn decoding_and_cursor_round_trip() {
        assert_eq!(
            pairs("a=x%20y&b=1+2&a=%zz"),
            vec![
                ("a".into(), "x y".into()),
                ("b".into(), "1 2".into()),
                ("a".into(), "%zz".into())
            ]
        );
        let c = Cursor {
            start_ms: 17,
            device_id: "ap|1".into(),
            id: -5,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("zz"), None);
    }
}
