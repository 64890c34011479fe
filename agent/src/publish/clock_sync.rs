//! Is the wall clock synchronised? Routers boot without a real-time clock and learn the date
//! from NTP later; the collector corrects the times of events stamped before that.
//!
//! Heuristic (documented in `docs/agent.md`): synchronised when the wall clock is past
//! [`FLOOR_MS`] (2025-01-01; a clock before that is certainly wrong) and the kernel does not
//! report the clock as unsynchronised: `adjtimex` with no modes returns `TIME_ERROR` (5) when
//! `STA_UNSYNC` is set, which is the state until an NTP daemon (busybox `ntpd` on OpenWrt,
//! chrony, systemd-timesyncd) disciplines the clock.

/// 2025-01-01T00:00:00Z in ms: earlier wall clocks are never taken as synchronised.
pub const FLOOR_MS: u64 = 1_735_689_600_000;

/// `TIME_ERROR`: the kernel's clock state when `STA_UNSYNC` is set.
const TIME_ERROR: i32 = 5;

/// The kernel's clock state from `adjtimex` (read-only: `modes` = 0), or `None` if the call
/// failed.
#[cfg(target_os = "linux")]
fn kernel_state() -> Option<i32> {
    // `struct timex` is 208 bytes on 64-bit glibc and under 256 bytes on every Linux ABI;
    // `modes` (the first field, an unsigned int) stays 0: read only.
    #[repr(C, align(8))]
    struct Timex([u8; 512]);
    extern "C" {
        fn adjtimex(buf: *mut Timex) -> i32;
    }
    let mut t = Timex([0; 512]);
    // SAFETY: `t` is a zeroed buffer larger than `struct timex` on every Linux ABI and
    // suitably aligned; with modes = 0 the kernel only writes the current values into it.
    let r = unsafe { adjtimex(&mut t) };
    (r >= 0).then_some(r)
}

#[cfg(not(target_os = "linux"))]
fn kernel_state() -> Option<i32> {
    None
}

/// Whether a wall clock reading of `wall_ms` (taken now) is to be trusted.
pub fn synced(wall_ms: u64) -> bool {
    wall_ms >= FLOOR_MS && kernel_state() != Some(TIME_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_2025_is_never_synced() {
        assert!(!synced(0));
        assert!(!synced(FLOOR_MS - 1));
    }

    #[test]
    fn adjtimex_answers() {
        let s = kernel_state();
        assert!(matches!(s, Some(0..=5)), "{s:?}");
    }
}
