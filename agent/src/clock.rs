//! The agent's one clock: wall time, CLOCK_BOOTTIME and whether the wall clock is
//! synchronised, read together as a [`Now`] once per loop turn and passed to everyone.
//!
//! CLOCK_BOOTTIME (uptime, counting suspend) is what the kernel stamps stations with
//! (`STA_INFO_ASSOC_AT_BOOTTIME`), so session starts and the uptime in every event are on the
//! kernel's own clock, read directly with `clock_gettime` (no derivation, no spinning); the
//! wall clock is read between two readings of it, so the pair holds together (`paired`).
//!
//! Synchronised (heuristic, documented in `docs/agent.md`): the wall clock is past
//! [`FLOOR_MS`] (2025-01-01; a clock before that is certainly wrong: routers boot without a
//! real-time clock) and the kernel does not report it unsynchronised: `adjtimex` with no modes
//! returns `TIME_ERROR` while `STA_UNSYNC` is set, which is the state until an NTP daemon
//! (busybox `ntpd` on OpenWrt, chrony, systemd-timesyncd) disciplines the clock.

use wifisess_wire::Stamp;

/// 2025-01-01T00:00:00Z in ms: earlier wall clocks are never taken as synchronised.
pub const FLOOR_MS: u64 = 1_735_689_600_000;

/// One reading of the clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Wall clock, ms since the Unix epoch.
    pub wall_ms: u64,
    /// CLOCK_BOOTTIME, ms since boot.
    pub uptime_ms: u64,
    /// Whether `wall_ms` is to be trusted (see the module documentation).
    pub synced: bool,
}

impl Now {
    /// Both times as the wire carries them.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            wall_ms: self.wall_ms,
            uptime_ms: self.uptime_ms,
        }
    }
}

/// Reads the wall clock, CLOCK_BOOTTIME and the kernel's sync state now.
pub fn now() -> Now {
    let (wall_ms, uptime_ms) = paired();
    Now {
        wall_ms,
        uptime_ms,
        synced: synced(wall_ms, kernel_unsynced()),
    }
}

/// A bracket this narrow (ns) is taken at once.
const GOOD_BRACKET_NS: u64 = 100_000;

/// The wall clock and CLOCK_BOOTTIME as one pair: the wall clock read between two readings of
/// CLOCK_BOOTTIME, paired with their midpoint; of up to four tries, the narrowest bracket.
/// Every session start the agent derives from a kernel association time is `wall - (uptime -
/// associated)`, so a reading interrupted between the two clocks would move it by the
/// interruption (12 ms seen when a restarted agent re-derived a start in a loaded VM).
fn paired() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..4 {
        let before = boottime_ns();
        let wall = wall_ms();
        let after = boottime_ns();
        let width = after.saturating_sub(before);
        if width < best.0 {
            best = (width, wall, (before + width / 2) / 1_000_000);
        }
        if width <= GOOD_BRACKET_NS {
            break;
        }
    }
    (best.1, best.2)
}

/// The wall clock alone, ms since the Unix epoch (0 before 1970). For log lines; everything
/// else takes a [`Now`].
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// CLOCK_BOOTTIME in ms (0 if the kernel refuses, which Linux ≥ 2.6.39 never does).
pub fn boottime_ms() -> u64 {
    boottime_ns() / 1_000_000
}

/// CLOCK_BOOTTIME in ns (0 if the kernel refuses).
fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec of the C library's layout on this target.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let ns = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(ns)
}

/// Whether the kernel says the clock is unsynchronised (`adjtimex` read-only returns
/// `TIME_ERROR`); `false` if the call fails.
fn kernel_unsynced() -> bool {
    // SAFETY: `timex` is plain data; all-zero is a valid value (modes = 0: read only).
    let mut t: libc::timex = unsafe { core::mem::zeroed() };
    // SAFETY: a valid, writable `struct timex`; with modes = 0 the kernel only reads out.
    unsafe { libc::adjtimex(&mut t) == libc::TIME_ERROR }
}

/// The sync rule on its inputs: a wall clock of `wall_ms` is trusted when it is past
/// [`FLOOR_MS`] and the kernel does not say it is unsynchronised.
pub fn synced(wall_ms: u64, kernel_unsynced: bool) -> bool {
    wall_ms >= FLOOR_MS && !kernel_unsynced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_2025_is_never_synced() {
        assert!(!synced(0, false));
        assert!(!synced(FLOOR_MS - 1, false));
        assert!(synced(FLOOR_MS, false));
        assert!(!synced(FLOOR_MS + 1, true), "STA_UNSYNC wins");
    }

    /// `/proc/uptime` is CLOCK_BOOTTIME truncated to 10 ms; read between two readings of
    /// ours it lies in [first − 10 ms, second], however slow the machine is.
    /// (Replaces `uptime_base_is_within_2_ms_of_boottime`, which timed a spinning derivation
    /// of uptime from `/proc/uptime` and failed on a busy machine.)
    #[test]
    fn boottime_brackets_proc_uptime() {
        let before = boottime_ms();
        let text = std::fs::read_to_string("/proc/uptime").unwrap();
        let after = boottime_ms();
        let (secs, frac) = text
            .split_whitespace()
            .next()
            .unwrap()
            .split_once('.')
            .unwrap();
        let proc_ms = secs.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap() * 10;
        assert!(
            before < proc_ms + 10 && proc_ms <= after,
            "{before} .. {after} does not bracket /proc/uptime {proc_ms}"
        );
    }

    /// The pair's uptime lies between readings taken before and after it, and its wall clock
    /// between the wall clocks around it.
    #[test]
    fn a_reading_pairs_clocks_read_together() {
        let (b1, w1) = (boottime_ms(), wall_ms());
        let n = now();
        let (b2, w2) = (boottime_ms(), wall_ms());
        assert!(b1 <= n.uptime_ms && n.uptime_ms <= b2, "{b1} {n:?} {b2}");
        assert!(w1 <= n.wall_ms && n.wall_ms <= w2, "{w1} {n:?} {w2}");
    }

    #[test]
    fn readings_are_monotonic() {
        let a = now();
        let b = now();
        assert!(b.uptime_ms >= a.uptime_ms && b.wall_ms >= a.wall_ms.saturating_sub(1000));
        assert_eq!(
            (a.stamp().wall_ms, a.stamp().uptime_ms),
            (a.wall_ms, a.uptime_ms)
        );
    }
}
