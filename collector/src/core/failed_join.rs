//! A failed join (wire event kind 4): a station that associated but never authorized (a wrong
//! passphrase). Not a session: a row of its own, keyed by the event's identity — device, boot,
//! agent epoch, seq — so a redelivered message, or an event restored from the agent's spool
//! (which keeps its epoch and seq), gives the same row, and two attempts of one client never
//! collide. The identity, unlike the association time, does not depend on the clock
//! correction of an unsynchronised agent (which may improve between two deliveries) nor on
//! the kernel's second-granular connected time.

use wifisess_wire::FailedJoin as Event;

use super::session::clamp_i64;

/// One failed join as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJoin {
    /// The device that reported it.
    pub device_id: String,
    /// Its kernel boot id then.
    pub boot_id: String,
    /// The agent run (epoch) that reported it.
    pub epoch: i64,
    /// The event's seq in that run.
    pub seq: i64,
    /// Client MAC (or its pseudonym), `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// AP interface it associated to.
    pub ifname: String,
    /// That interface's SSID (lossy UTF-8).
    pub ssid: String,
    /// That interface's BSSID.
    pub bssid: String,
    /// When it associated, ms since the epoch (the event's time − its age).
    pub assoc_ms: i64,
    /// When the agent gave it up, ms (the event's time).
    pub gave_up_ms: i64,
    /// Times corrected for an unsynchronised agent clock.
    pub times_corrected: bool,
}

/// A failed join's identity within its device: (boot, epoch, seq).
pub type FailedJoinKey = (String, i64, i64);

impl FailedJoin {
    /// The row of event `e` of `device`'s `boot` and agent `epoch`, emitted at `wall` ms.
    pub fn new(
        device: &str,
        boot: &str,
        epoch: u32,
        e: &Event,
        wall: i64,
        corrected: bool,
    ) -> FailedJoin {
        FailedJoin {
            device_id: device.to_owned(),
            boot_id: boot.to_owned(),
            epoch: i64::from(epoch),
            seq: clamp_i64(e.seq),
            mac: e.mac.to_string(),
            ifname: e.ifname.clone(),
            ssid: String::from_utf8_lossy(&e.ssid).into_owned(),
            bssid: e.bssid.to_string(),
            assoc_ms: wall.saturating_sub(clamp_i64(e.age_ms)),
            gave_up_ms: wall,
            times_corrected: corrected,
        }
    }

    /// Its identity within the device.
    pub fn key(&self) -> FailedJoinKey {
        (self.boot_id.clone(), self.epoch, self.seq)
    }
}
