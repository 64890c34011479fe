//! The agent's two clocks as a [`Stamp`]: wall time and CLOCK_BOOTTIME, in ms.
//!
//! CLOCK_BOOTTIME is read once from `/proc/uptime` (10 ms resolution) and then advanced with
//! [`Instant`] (CLOCK_MONOTONIC, which equals BOOTTIME minus suspended time; routers do not
//! suspend), so no libc call is needed.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wifisess_wire::Stamp;

/// A source of [`Stamp`]s.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
    base_uptime_ms: u64,
}

impl Clock {
    /// Reads `/proc/uptime` once (0 if unreadable: uptimes are then relative to now).
    pub fn new() -> Clock {
        let base = Instant::now();
        let up = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| parse_uptime_ms(&s))
            .unwrap_or(0);
        Clock {
            base,
            base_uptime_ms: up,
        }
    }

    /// Uptime (CLOCK_BOOTTIME) now, ms.
    pub fn uptime_ms(&self) -> u64 {
        let el = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_uptime_ms.saturating_add(el)
    }

    /// Both clocks now.
    pub fn now(&self) -> Stamp {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Stamp {
            wall_ms,
            uptime_ms: self.uptime_ms(),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// `"12345.67 8901.23\n"` → 12345670.
fn parse_uptime_ms(s: &str) -> Option<u64> {
    let first = s.split_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
    let secs: u64 = secs.parse().ok()?;
    let mut frac_ms = 0u64;
    for (i, c) in frac.bytes().take(3).enumerate() {
        let d = u64::from(c.checked_sub(b'0').filter(|d| *d <= 9)?);
        frac_ms += d * [100, 10, 1][i];
    }
    secs.checked_mul(1000)?.checked_add(frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_parses() {
        assert_eq!(parse_uptime_ms("12345.67 8901.23\n"), Some(12_345_670));
        assert_eq!(parse_uptime_ms("5 1"), Some(5000));
        assert_eq!(parse_uptime_ms("x"), None);
        assert_eq!(parse_uptime_ms(""), None);
    }
}
