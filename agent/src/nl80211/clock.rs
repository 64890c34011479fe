//! The agent's two clocks as a [`Stamp`]: wall time and CLOCK_BOOTTIME, in ms.
//!
//! CLOCK_BOOTTIME is read once from `/proc/uptime` and then advanced with [`Instant`]
//! (CLOCK_MONOTONIC, which equals BOOTTIME minus suspended time; routers do not suspend), so
//! no libc call is needed. `/proc/uptime` is truncated to 10 ms: the base is taken right when
//! its value ticks over, where the truncation is ~0, so two agent runs agree on a station's
//! association time to the millisecond (a restarted agent re-derives the same start).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wifisess_wire::Stamp;

/// A source of [`Stamp`]s.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
    base_uptime_ms: u64,
}

impl Clock {
    /// Reads `/proc/uptime` until its value ticks over (at most ~20 ms; 0 if unreadable:
    /// uptimes are then relative to now).
    pub fn new() -> Clock {
        let read = || {
            std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|s| parse_uptime_ms(&s))
        };
        let start = Instant::now();
        let first = read();
        let mut base = Instant::now();
        let mut up = first;
        // The first change of the 10 ms value happens within 10 ms; give up after 20 ms
        // (a very slow machine) and keep the truncated reading.
        while first.is_some() && start.elapsed() < Duration::from_millis(20) {
            let v = read();
            let t = Instant::now();
            if v != first {
                (base, up) = (t, v);
                break;
            }
        }
        Clock {
            base,
            base_uptime_ms: up.unwrap_or(0),
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

    /// CLOCK_BOOTTIME in ms, from libc (only here: the agent itself needs no libc call).
    fn boottime_ms() -> u64 {
        #[repr(C)]
        struct Timespec {
            sec: std::ffi::c_long,
            nsec: std::ffi::c_long,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_BOOTTIME: i32 = 7;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: a valid pointer to a timespec of the C library's layout on this target.
        assert_eq!(unsafe { clock_gettime(CLOCK_BOOTTIME, &mut ts) }, 0);
        ts.sec as u64 * 1000 + ts.nsec as u64 / 1_000_000
    }

    /// The base is taken where `/proc/uptime` ticks over, so it is not 0..10 ms behind
    /// BOOTTIME like a plain (truncated) reading; a restarted agent then re-derives the same
    /// start for a station. Three of five fresh clocks within 2 ms (a plain reading passes
    /// that ~6% of the time; the odd miss of the fixed one is a preemption).
    #[test]
    fn uptime_base_is_within_2_ms_of_boottime() {
        let close = (0..5)
            .filter(|_| {
                let c = Clock::new();
                c.uptime_ms().abs_diff(boottime_ms()) <= 2
            })
            .count();
        assert!(
            close >= 3,
            "only {close} of 5 clocks within 2 ms of CLOCK_BOOTTIME"
        );
    }

    #[test]
    fn uptime_parses() {
        assert_eq!(parse_uptime_ms("12345.67 8901.23\n"), Some(12_345_670));
        assert_eq!(parse_uptime_ms("5 1"), Some(5000));
        assert_eq!(parse_uptime_ms("x"), None);
        assert_eq!(parse_uptime_ms(""), None);
    }
}
