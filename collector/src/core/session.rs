//! One session row as the merge rules see it: *facts* that only grow by max/min/union, and a
//! *derived* stop recomputed from them and from the device-level context ([`Context`]).

use wifisess_wire::SessionId;

use super::{Key, Reason};

/// A session: the facts the events brought, plus its derived stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The device it was reported by.
    pub device_id: String,
    /// The agent's session id, stored as the i64 with the same bits.
    pub id: i64,
    /// Kernel boot id of the device when the session ran.
    pub boot_id: String,
    /// Client MAC, `aa:bb:cc:dd:ee:ff`; `None` until the Start arrives.
    pub mac: Option<String>,
    /// SSID (lossy UTF-8 of the raw bytes).
    pub ssid: Option<String>,
    /// AP interface.
    pub ifname: Option<String>,
    /// BSSID, `aa:bb:cc:dd:ee:ff`.
    pub bssid: Option<String>,
    /// Frequency, MHz.
    pub freq_mhz: Option<i64>,
    /// Start, ms since the epoch: the Start's association time, else the earliest evidence.
    pub start_ms: i64,
    /// Whether the Start event was merged.
    pub has_start: bool,
    /// Key of the earliest event about the session.
    pub first: Key,
    /// Derived stop, ms; `None` while open.
    pub stop_ms: Option<i64>,
    /// Why it stopped (derived).
    pub stop_reason: Option<Reason>,
    /// Whether the derived stop was inferred by the collector (provisional).
    pub stop_inferred: bool,
    /// The agent's own stop: (ms, reason). Final: beats every inferred stop.
    pub agent_stop: Option<(i64, Reason)>,
    /// Latest event time about the session, ms.
    pub last_seen_ms: i64,
    /// Key of the latest evidence that the agent held it open (start, update, sync listing).
    pub open: Option<Key>,
    /// Latest signal reading: (its key, dBm).
    pub signal: Option<(Key, i64)>,
    /// The client's hostname from the AP's DHCP leases: the one of the latest event that
    /// carried one (its key, the name), so the latest wins in any arrival order.
    pub hostname: Option<(Key, String)>,
    /// Latest client activity (event time − inactive time), ms.
    pub last_activity_ms: Option<i64>,
    /// Bytes received from the client (largest reported).
    pub rx_bytes: i64,
    /// Bytes sent to the client.
    pub tx_bytes: i64,
    /// Packets received.
    pub rx_packets: i64,
    /// Packets sent.
    pub tx_packets: i64,
    /// Key of the latest sync of its boot that did not list it (after its first evidence).
    pub missing: Option<Key>,
    /// Start of the next session of the same client on the same device, ms.
    pub next_start_ms: Option<i64>,
    /// When the expiry job closed it (provisional), ms.
    pub expired_ms: Option<i64>,
    /// When the operator forced it closed (provisional), ms.
    pub forced_ms: Option<i64>,
    /// Times were corrected for an unsynchronised agent clock.
    pub times_corrected: bool,
}

impl Session {
    /// A session known from its first evidence at `key` / `wall` (before any Start).
    pub fn new(device_id: &str, id: SessionId, boot_id: &str, key: Key, wall: i64) -> Session {
        Session {
            device_id: device_id.to_owned(),
            id: id.0 as i64,
            boot_id: boot_id.to_owned(),
            mac: None,
            ssid: None,
            ifname: None,
            bssid: None,
            freq_mhz: None,
            start_ms: wall,
            has_start: false,
            first: key,
            stop_ms: None,
            stop_reason: None,
            stop_inferred: false,
            agent_stop: None,
            last_seen_ms: wall,
            open: None,
            signal: None,
            hostname: None,
            last_activity_ms: None,
            rx_bytes: 0,
            tx_bytes: 0,
            rx_packets: 0,
            tx_packets: 0,
            missing: None,
            next_start_ms: None,
            expired_ms: None,
            forced_ms: None,
            times_corrected: false,
        }
    }

    /// Records evidence of the session at `key`: seen at `wall`, alive at `alive_ms` (the
    /// earliest this evidence proves it existed: the event time, or a stop's own time).
    pub fn seen(&mut self, key: Key, wall: i64, alive_ms: i64, corrected: bool) {
        self.first = self.first.min(key);
        self.last_seen_ms = self.last_seen_ms.max(wall);
        if !self.has_start {
            self.start_ms = self.start_ms.min(alive_ms);
        }
        self.times_corrected |= corrected;
    }

    /// Records evidence that the agent held the session open at `key`.
    pub fn seen_open(&mut self, key: Key) {
        self.open = Some(self.open.map_or(key, |k| k.max(key)));
    }

    /// A signal reading at `key`; the latest one wins.
    pub fn signal_at(&mut self, key: Key, dbm: Option<i8>) {
        if let Some(d) = dbm {
            let cand = (key, i64::from(d));
            if self.signal.is_none_or(|s| cand > s) {
                self.signal = Some(cand);
            }
        }
    }

    /// A hostname reported at `key`; the latest key wins (ties: the larger name, so a seq
    /// repeated with other contents still gives one answer whatever the order).
    pub fn hostname_at(&mut self, key: Key, name: Option<&str>) {
        if let Some(n) = name {
            let newer = self
                .hostname
                .as_ref()
                .is_none_or(|(k, h)| (key, n) > (*k, h.as_str()));
            if newer {
                self.hostname = Some((key, n.to_owned()));
            }
        }
    }

    /// Client activity: `inactive_ms` before `wall`.
    pub fn activity_at(&mut self, wall: i64, inactive_ms: Option<u32>) {
        if let Some(i) = inactive_ms {
            let a = wall - i64::from(i);
            self.last_activity_ms = Some(self.last_activity_ms.map_or(a, |x| x.max(a)));
        }
    }

    /// Cumulative counters: the largest reported wins.
    pub fn counters(&mut self, rx: u64, tx: u64, rxp: u64, txp: u64) {
        self.rx_bytes = self.rx_bytes.max(clamp_i64(rx));
        self.tx_bytes = self.tx_bytes.max(clamp_i64(tx));
        self.rx_packets = self.rx_packets.max(clamp_i64(rxp));
        self.tx_packets = self.tx_packets.max(clamp_i64(txp));
    }

    /// Agent-stopped sessions are final: no inferred rule can change them.
    pub fn is_final(&self) -> bool {
        self.agent_stop.is_some()
    }

    /// Whether it is open (no derived stop).
    pub fn is_open(&self) -> bool {
        self.stop_ms.is_none()
    }

    /// Its position among the sessions of its client: (start, id).
    pub fn order(&self) -> (i64, i64) {
        (self.start_ms, self.id)
    }

    /// Recomputes the derived stop from the facts and `cx` (ignored for a final row).
    pub fn derive(&mut self, cx: &Context) {
        if self.is_final() {
            self.missing = None;
            self.next_start_ms = None;
        } else {
            self.missing = cx.missing;
            self.next_start_ms = cx.next_start_ms;
        }
        let d = derive(self, cx);
        self.stop_ms = d.map(|d| d.0);
        self.stop_reason = d.map(|d| d.1);
        self.stop_inferred = d.is_some_and(|d| d.2);
    }
}

/// `u64` counters and times into the store's `i64`, saturating.
pub fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Device-level facts a session's derived stop depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// `Some(last_ms of the session's boot)` when a newer boot of the device exists.
    pub reboot_at: Option<i64>,
    /// The latest sync of the session's boot that did not list it (after its first evidence).
    pub missing: Option<Key>,
    /// Start of the next session of the same client on the same device.
    pub next_start_ms: Option<i64>,
}

/// The derived stop of a session: `(stop_ms, reason, inferred)`, or `None` while open.
///
/// An agent-reported stop always wins. Otherwise every inferred rule that applies proposes a
/// stop, and the earliest one is taken (ties in the order reboot, missing, superseded,
/// expired, forced). A rule no longer applies once the agent reported the session open after
/// it. A stop is never before the start: start ≤ stop always holds.
pub fn derive(s: &Session, cx: &Context) -> Option<(i64, Reason, bool)> {
    if let Some((ms, r)) = s.agent_stop {
        return Some((ms.max(s.start_ms), r, false));
    }
    let mut cands: Vec<(i64, Reason)> = Vec::new();
    if let Some(at) = cx.reboot_at {
        cands.push((at, Reason::DeviceReboot));
    }
    if let Some(m) = cx.missing {
        if s.open.is_none_or(|o| m > o) {
            cands.push((s.last_seen_ms, Reason::Missing));
        }
    }
    if let Some(n) = cx.next_start_ms {
        cands.push((s.last_seen_ms.min(n), Reason::Superseded));
    }
    if let Some(e) = s.expired_ms {
        if s.last_seen_ms <= e {
            cands.push((e, Reason::Expired));
        }
    }
    if let Some(f) = s.forced_ms {
        if s.last_seen_ms <= f {
            cands.push((f, Reason::Forced));
        }
    }
    // `min_by_key` keeps the first of equal keys: the order pushed above is the tie order.
    cands
        .into_iter()
        .min_by_key(|c| c.0)
        .map(|(ms, r)| (ms.max(s.start_ms), r, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sess() -> Session {
        let mut s = Session::new("d", SessionId(1), "b", (100, 1), 1_000);
        s.open = Some((100, 1));
        s
    }

    #[test]
    fn agent_stop_beats_inferred() {
        let mut s = sess();
        s.agent_stop = Some((1_500, Reason::Left));
        let cx = Context {
            reboot_at: Some(1_200),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx), Some((1_500, Reason::Left, false)));
    }

    #[test]
    fn missing_is_undone_by_later_open_evidence() {
        let mut s = sess();
        let cx = Context {
            missing: Some((200, 5)),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx).map(|d| d.1), Some(Reason::Missing));
        s.seen_open((300, 7));
        assert_eq!(derive(&s, &cx), None);
    }

    #[test]
    fn earliest_inferred_stop_wins() {
        let mut s = sess();
        s.last_seen_ms = 5_000;
        let cx = Context {
            reboot_at: Some(6_000),
            next_start_ms: Some(4_000),
            ..Context::default()
        };
        assert_eq!(derive(&s, &cx), Some((4_000, Reason::Superseded, true)));
    }

    #[test]
    fn expired_is_provisional() {
        let mut s = sess();
        s.expired_ms = Some(2_000);
        assert_eq!(derive(&s, &Context::default()).map(|d| d.0), Some(2_000));
        s.last_seen_ms = 2_500;
        assert_eq!(derive(&s, &Context::default()), None);
    }

    #[test]
    fn forced_is_provisional_and_loses_to_an_earlier_inferred_stop() {
        let mut s = sess();
        s.forced_ms = Some(9_000);
        assert_eq!(
            derive(&s, &Context::default()),
            Some((9_000, Reason::Forced, true))
        );
        s.expired_ms = Some(3_000);
        assert_eq!(
            derive(&s, &Context::default()).map(|d| d.1),
            Some(Reason::Expired)
        );
        s.last_seen_ms = 9_500;
        assert_eq!(derive(&s, &Context::default()), None);
    }

    /// Issue 20: the hostname of the latest event wins, whatever the order they arrive in.
    #[test]
    fn the_latest_hostname_wins_in_any_order() {
        let mut a = sess();
        a.hostname_at((300, 9), Some("new"));
        a.hostname_at((200, 5), Some("old"));
        a.hostname_at((400, 10), None);
        let mut b = sess();
        b.hostname_at((200, 5), Some("old"));
        b.hostname_at((300, 9), Some("new"));
        assert_eq!(a.hostname, b.hostname);
        assert_eq!(a.hostname.unwrap().1, "new");
    }

    /// The start ≤ stop promise holds even for an agent stop before the reported start.
    #[test]
    fn a_stop_is_never_before_the_start() {
        let mut s = sess();
        s.start_ms = 2_000;
        s.agent_stop = Some((1_500, Reason::Left));
        assert_eq!(derive(&s, &Context::default()).map(|d| d.0), Some(2_000));
    }
}
