//! Query parameters: URL decoding, checked values that name the parameter, the session
//! filter, cursors.

use super::error::ApiError;
use crate::read::clients::Period;
use crate::read::sessions::SessionFilter;
use crate::read::Scope;
use crate::timefmt;

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

    /// A time parameter: the CLI's [`timefmt::parse_time`] (RFC 3339, a date, `now`, or
    /// relative to `now_ms` like `-2h`), except that the API documents past offsets only, so
    /// a leading `+` (`+2h`, which the CLI accepts) stays an error here.
    pub fn time(&mut self, k: &'static str, now_ms: i64) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => (!v.trim_start().starts_with('+'))
                .then(|| timefmt::parse_time(&v, now_ms).ok())
                .flatten()
                .map(Some)
                .ok_or_else(|| {
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
    let mac = mac(p)?;
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
        after: None,
        id: None,
    })
}

/// The `mac` parameter, `aa:bb:cc:dd:ee:ff` (any case).
///
/// # Errors
/// 400 naming `mac`.
pub fn mac(p: &mut Params) -> Result<Option<String>, ApiError> {
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
    Ok(mac)
}

/// The scope parameters `device` (repeatable), `group`, `organization` (confined by the
/// caller's token through `scope_org`).
///
/// # Errors
/// 403 from `scope_org`.
pub fn scope(
    p: &mut Params,
    scope_org: impl FnOnce(Option<String>) -> Result<Option<String>, ApiError>,
) -> Result<Scope, ApiError> {
    Ok(Scope {
        devices: p.all("device"),
        group: p.get("group"),
        organization: scope_org(p.get("organization"))?,
    })
}

/// The `period` parameter of a series, one of `allowed`; `default` when absent.
///
/// # Errors
/// 400 naming `period`.
pub fn period(p: &mut Params, allowed: &[Period], default: Period) -> Result<Period, ApiError> {
    match p.get("period") {
        None => Ok(default),
        Some(v) => Period::parse(&v)
            .filter(|x| allowed.contains(x))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                ApiError::bad_param("period", format!("expected {}: {v:?}", names.join(" or ")))
            }),
    }
}

/// `from` and `to` of a series of `period` ([`crate::read::clients::range`]: defaults, and at
/// most [`crate::read::clients::MAX_POINTS`] points).
///
/// # Errors
/// 400 naming `from` or `to`, or `range` when the two do not fit together.
pub fn series_range(p: &mut Params, period: Period, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let from = p.time("from", now_ms)?;
    let to = p.time("to", now_ms)?;
    crate::read::clients::range(period, from, to, now_ms)
        .map_err(|e| ApiError::bad_param("range", e))
}

/// The `cursor` parameter: a row's position in the sessions order ([`crate::read::sessions::Cursor`], which
/// [`SessionFilter::after`] continues from), in an opaque text form.
pub use crate::read::sessions::Cursor;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_the_cli_grammar_without_future_offsets() {
        let now = 10_000_000_000;
        let mut p = Params::new(Some(
            "a=2000-02-29T01:00:00%2B01:00&b=-2h&c=2025-02-30&d=%2B2h&e=2025-06-15T08:00:00%2B25:00",
        ));
        assert_eq!(p.time("a", now).unwrap(), Some(951_782_400_000));
        assert_eq!(p.time("b", now).unwrap(), Some(now - 7_200_000));
        assert_eq!(p.time("z", now).unwrap(), None);
        for k in ["c", "d", "e"] {
            let e = p.time(k, now).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert!(
                e.message.starts_with(&format!("{k}: not a time")),
                "{}",
                e.message
            );
        }
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
