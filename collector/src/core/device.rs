//! A device's merge state: its boots (first and last seen, clock origin), each boot's agent
//! epochs with the seq numbers received as runs, the syncs it sent, and its newest status.
//! The writer keeps it in memory between transactions; the store keeps it in the device's row.

use std::collections::BTreeMap;

use minicbor::{Decode, Encode};

use super::Key;

/// Most seq runs kept per epoch. Beyond it the two runs with the smallest gap between them are
/// joined and that gap is counted as lost for good (`Epoch::filled`): a hostile or badly broken
/// agent cannot grow a device's state without bound.
pub const MAX_RUNS: usize = 1024;

/// The merge state of one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    /// Device id.
    pub id: String,
    /// The store's revision of this device (bumped at every write of it); a cached state is
    /// current while the stored revision equals this one.
    pub rev: i64,
    /// Its boots, sorted by id.
    pub boots: Vec<Boot>,
    /// Collector receive time of its latest message, ms.
    pub last_seen_ms: Option<i64>,
    /// What its newest status said.
    pub status: StatusFacts,
    /// The names in effect as stored in its row (inventory first, else announced).
    pub names: Names,
    /// Syncs per boot, for the boots loaded so far (`missing` rule).
    pub syncs: BTreeMap<String, Vec<SyncRec>>,
}

/// One boot of a device.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Boot {
    /// Kernel boot id (hex).
    #[n(0)]
    pub id: String,
    /// Earliest event time seen from this boot, ms.
    #[n(1)]
    pub first_ms: i64,
    /// Latest event time seen from this boot, ms.
    #[n(2)]
    pub last_ms: i64,
    /// Estimated wall time at uptime 0 (unsynchronised clocks), ms.
    #[n(3)]
    pub origin_ms: Option<i64>,
    /// Agent runs in this boot.
    #[n(4)]
    pub epochs: Vec<Epoch>,
}

/// One agent run (epoch) within a boot.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[cbor(map)]
pub struct Epoch {
    /// The agent's random epoch.
    #[n(0)]
    pub epoch: i64,
    /// Newest uptime seen in it, ms.
    #[n(1)]
    pub last_up: i64,
    /// Received seq numbers as sorted, disjoint, non-adjacent runs `[lo, hi]`.
    #[n(2)]
    pub runs: Vec<(i64, i64)>,
    /// Seq numbers inside the runs that were never received (gaps joined past [`MAX_RUNS`]).
    #[n(3)]
    pub filled: i64,
}

/// A sync as stored: its key, its time and the sorted ids it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRec {
    /// (uptime, seq) of the sync event.
    pub key: Key,
    /// Its wall time, ms.
    pub wall_ms: i64,
    /// The ids it listed, sorted, unique.
    pub ids: Vec<i64>,
}

/// What the device's newest status said (the status with the newest boot, then uptime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFacts {
    /// Boot of that status.
    pub boot: Option<String>,
    /// Its uptime, ms.
    pub uptime_ms: Option<i64>,
    /// Announced name.
    pub name: Option<String>,
    /// Announced organization.
    pub organization: Option<String>,
    /// Announced group.
    pub group: Option<String>,
    /// Online (connected) or offline.
    pub online: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// The agent's own health counters.
    pub health: Health,
    /// The access point interfaces it watches.
    pub radios: Vec<Radio>,
}

/// An access point interface a device's agent announced (SSID, BSSID, frequency).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Radio {
    /// Interface name, e.g. `phy0-ap0`.
    pub ifname: String,
    /// BSSID, `aa:bb:cc:dd:ee:ff`.
    pub bssid: String,
    /// SSID (lossy UTF-8).
    pub ssid: String,
    /// Frequency, MHz (0 if unknown).
    pub freq_mhz: i64,
}

/// The radios as stored in the device row (JSON text; empty list: empty text).
pub fn encode_radios(r: &[Radio]) -> String {
    if r.is_empty() {
        String::new()
    } else {
        serde_json::to_string(r).expect("radios serialise")
    }
}

/// Radios as [`encode_radios`] wrote them (anything else reads as none).
pub fn decode_radios(s: &str) -> Vec<Radio> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The band of a frequency: `2.4`, `5` or `6` (GHz); `None` when unknown.
pub fn band(freq_mhz: i64) -> Option<&'static str> {
    match freq_mhz {
        2400..=2500 => Some("2.4"),
        4900..=5924 => Some("5"),
        5925..=7125 => Some("6"),
        _ => None,
    }
}

/// The IEEE channel number of a frequency (`None` when unknown).
pub fn channel(freq_mhz: i64) -> Option<i64> {
    match freq_mhz {
        2484 => Some(14),
        2412..=2472 => Some((freq_mhz - 2407) / 5),
        4900..=5924 => Some((freq_mhz - 5000) / 5),
        5925..=7125 => Some((freq_mhz - 5950) / 5),
        _ => None,
    }
}

/// The health counters an agent reports in its status (SPEC §5.5), this agent run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Events acknowledged by the broker.
    pub published: i64,
    /// Events dropped by outbox overflow.
    pub dropped: i64,
    /// Broker reconnects.
    pub reconnects: i64,
    /// Events waiting in the outbox.
    pub outbox_depth: i64,
    /// Stations that associated but never authorized.
    pub failed_joins: i64,
    /// Stations the session table had no room for.
    pub tracker_overflow: i64,
    /// Of `dropped`: interim updates (a later update or the stop carries their counters).
    pub dropped_updates: i64,
    /// Of `dropped`: starts, stops and syncs (session records lost).
    pub dropped_starts_stops: i64,
    /// Events restored from the spool when this agent run started.
    pub spool_restored: i64,
}

/// A device's names: announced by its agent, configured in the inventory, or in effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Name.
    pub name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Group.
    pub group: Option<String>,
}

/// The configured inventory: names that override what agents announce. The one place the
/// rule "inventory first, else announced" is written ([`Inventory::effective`]); the store
/// keeps the result in the device row, so every query reads plain columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    by_id: BTreeMap<String, Names>,
}

impl Inventory {
    /// An inventory of `(id, names)`.
    pub fn new(devices: impl IntoIterator<Item = (String, Names)>) -> Inventory {
        Inventory {
            by_id: devices.into_iter().collect(),
        }
    }

    /// The inventory's names of device `id` (all `None` if it has none).
    pub fn of(&self, id: &str) -> Names {
        self.by_id.get(id).cloned().unwrap_or_default()
    }

    /// The ids it lists.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.by_id.keys()
    }

    /// The names in effect for device `id` that announced `announced`: each the inventory's
    /// where it has one, else the announced one.
    pub fn effective(&self, id: &str, announced: &Names) -> Names {
        let inv = self.by_id.get(id);
        let pick = |f: fn(&Names) -> &Option<String>| {
            inv.and_then(|i| f(i).clone())
                .or_else(|| f(announced).clone())
        };
        Names {
            name: pick(|n| &n.name),
            organization: pick(|n| &n.organization),
            group: pick(|n| &n.group),
        }
    }
}

impl StatusFacts {
    /// The names its status announced.
    pub fn names(&self) -> Names {
        Names {
            name: self.name.clone(),
            organization: self.organization.clone(),
            group: self.group.clone(),
        }
    }
}

/// What the device row shows of the merge state (derived, written with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The newest boot (latest first seen; ties by the larger id).
    pub boot_id: Option<String>,
    /// The newest boot's current epoch (latest uptime).
    pub agent_epoch: Option<i64>,
    /// Highest seq received in that epoch.
    pub last_seq: Option<i64>,
    /// Seq numbers never received, over all boots and epochs.
    pub seq_gaps: i64,
}

impl DeviceState {
    /// A device seen for the first time.
    pub fn new(id: &str) -> DeviceState {
        DeviceState {
            id: id.to_owned(),
            ..DeviceState::default()
        }
    }

    /// The boot `id`.
    pub fn boot(&self, id: &str) -> Option<&Boot> {
        self.boots
            .binary_search_by(|b| b.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.boots[i])
    }

    fn boot_mut(&mut self, id: &str) -> &mut Boot {
        let i = match self.boots.binary_search_by(|b| b.id.as_str().cmp(id)) {
            Ok(i) => i,
            Err(i) => {
                self.boots.insert(
                    i,
                    Boot {
                        id: id.to_owned(),
                        first_ms: i64::MAX,
                        last_ms: i64::MIN,
                        origin_ms: None,
                        epochs: Vec::new(),
                    },
                );
                i
            }
        };
        &mut self.boots[i]
    }

    /// The newest boot: the latest first seen, ties by the larger boot id.
    pub fn newest_boot(&self) -> Option<&str> {
        self.boots
            .iter()
            .max_by(|a, b| (a.first_ms, &a.id).cmp(&(b.first_ms, &b.id)))
            .map(|b| b.id.as_str())
    }

    /// The origin (wall time at uptime 0) that converts the times of an unsynchronised
    /// message of `boot`: the lower of the stored estimate and this message's candidate
    /// (`None` for a synchronised message, which needs none).
    pub fn origin(&self, boot: &str, origin_cand: Option<i64>) -> Option<i64> {
        let cand = origin_cand?;
        let stored = self.boot(boot).and_then(|b| b.origin_ms);
        Some(stored.map_or(cand, |s| s.min(cand)))
    }

    /// Records that `boot` was seen between `first_ms` and `last_ms`; with an unsynchronised
    /// clock also lowers its origin estimate to `origin_cand`.
    pub fn observe(&mut self, boot: &str, first_ms: i64, last_ms: i64, origin_cand: Option<i64>) {
        let b = self.boot_mut(boot);
        b.first_ms = b.first_ms.min(first_ms);
        b.last_ms = b.last_ms.max(last_ms);
        b.origin_ms = match (b.origin_ms, origin_cand) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        };
    }

    /// Records the seq numbers and newest uptime of one message of (`boot`, `epoch`).
    pub fn record(&mut self, boot: &str, epoch: i64, last_up: i64, seqs: &mut Vec<i64>) {
        let b = self.boot_mut(boot);
        let i = match b.epochs.binary_search_by_key(&epoch, |e| e.epoch) {
            Ok(i) => i,
            Err(i) => {
                b.epochs.insert(
                    i,
                    Epoch {
                        epoch,
                        last_up,
                        runs: Vec::new(),
                        filled: 0,
                    },
                );
                i
            }
        };
        let e = &mut b.epochs[i];
        e.last_up = e.last_up.max(last_up);
        seqs.sort_unstable();
        seqs.dedup();
        for &s in seqs.iter() {
            add_seq(&mut e.runs, s);
        }
        while e.runs.len() > MAX_RUNS {
            // Join the two runs with the smallest gap; that gap is lost for good.
            let (k, gap) = e
                .runs
                .windows(2)
                .enumerate()
                .map(|(k, w)| (k, i128::from(w[1].0) - i128::from(w[0].1) - 1))
                .min_by_key(|x| x.1)
                .expect("more than one run");
            e.filled = e
                .filled
                .saturating_add(i64::try_from(gap).unwrap_or(i64::MAX));
            e.runs[k].1 = e.runs[k + 1].1;
            e.runs.remove(k + 1);
        }
    }

    /// Adds a sync of `boot` to the loaded syncs; `false` if the same (key) was there already.
    pub fn add_sync(&mut self, boot: &str, rec: SyncRec) -> bool {
        let list = self.syncs.entry(boot.to_owned()).or_default();
        match list.binary_search_by_key(&rec.key, |r| r.key) {
            Ok(_) => false,
            Err(i) => {
                list.insert(i, rec);
                true
            }
        }
    }

    /// The newest boot, its current epoch and last seq, and the seq gaps over all boots.
    pub fn summary(&self) -> Summary {
        let boot = self.newest_boot().map(str::to_owned);
        let cur = boot.as_deref().and_then(|b| {
            self.boot(b)?
                .epochs
                .iter()
                .max_by_key(|e| (e.last_up, e.epoch))
        });
        let mut gaps: i128 = 0;
        for b in &self.boots {
            for e in &b.epochs {
                let (Some(lo), Some(hi)) = (e.runs.first(), e.runs.last()) else {
                    continue;
                };
                let covered: i128 = e
                    .runs
                    .iter()
                    .map(|r| i128::from(r.1) - i128::from(r.0) + 1)
                    .sum();
                gaps += i128::from(hi.1) - i128::from(lo.0) + 1 - covered + i128::from(e.filled);
            }
        }
        Summary {
            boot_id: boot,
            agent_epoch: cur.map(|e| e.epoch),
            last_seq: cur.and_then(|e| e.runs.last().map(|r| r.1)),
            seq_gaps: i64::try_from(gaps.max(0)).unwrap_or(i64::MAX),
        }
    }

    /// The boots (with epochs and runs) as stored in the device's row.
    pub fn encode_boots(&self) -> Vec<u8> {
        minicbor::to_vec(&self.boots).expect("encoding to a Vec cannot fail")
    }

    /// Boots as [`DeviceState::encode_boots`] wrote them.
    ///
    /// # Errors
    /// The bytes are not such an encoding (a damaged database).
    pub fn decode_boots(bytes: &[u8]) -> Result<Vec<Boot>, minicbor::decode::Error> {
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        let mut boots: Vec<Boot> = minicbor::decode(bytes)?;
        boots.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(boots)
    }
}

/// Inserts `s` into sorted, disjoint, non-adjacent runs.
fn add_seq(runs: &mut Vec<(i64, i64)>, s: i64) {
    // The first run that ends at or after s - 1: the one s falls into, extends or precedes.
    let i = runs.partition_point(|r| r.1 < s.saturating_sub(1));
    match runs.get(i).copied() {
        Some((lo, hi)) if lo <= s && s <= hi => {}
        Some((_, hi)) if hi.checked_add(1) == Some(s) => {
            runs[i].1 = s;
            if runs
                .get(i + 1)
                .is_some_and(|n| n.0.checked_sub(1) == Some(s))
            {
                runs[i].1 = runs[i + 1].1;
                runs.remove(i + 1);
            }
        }
        Some((lo, _)) if lo.checked_sub(1) == Some(s) => runs[i].0 = s,
        _ => runs.insert(i, (s, s)),
    }
}

/// Encodes sorted ids as stored for a sync (8 bytes each, little-endian).
pub fn encode_ids(ids: &[i64]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// Ids as [`encode_ids`] wrote them.
pub fn decode_ids(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(seqs: &[i64]) -> Vec<(i64, i64)> {
        let mut d = DeviceState::new("d");
        for s in seqs {
            d.record("b", 1, 0, &mut vec![*s]);
        }
        d.boot("b").unwrap().epochs[0].runs.clone()
    }

    #[test]
    fn seq_runs_merge_in_any_order() {
        assert_eq!(runs_of(&[1, 2, 3]), [(1, 3)]);
        assert_eq!(runs_of(&[3, 1, 2]), [(1, 3)]);
        assert_eq!(runs_of(&[5, 1, 3, 2]), [(1, 3), (5, 5)]);
        assert_eq!(runs_of(&[5, 1, 3, 2, 4, 4]), [(1, 5)]);
        assert_eq!(
            runs_of(&[i64::MAX, i64::MIN, 0]),
            [(i64::MIN, i64::MIN), (0, 0), (i64::MAX, i64::MAX)]
        );
    }

    #[test]
    fn gaps_count_from_the_first_seq_seen() {
        let mut d = DeviceState::new("d");
        d.record("b", 1, 10, &mut vec![10, 11, 14]);
        assert_eq!(d.summary().seq_gaps, 2);
        d.record("b", 1, 20, &mut vec![12]);
        assert_eq!(d.summary().seq_gaps, 1);
        d.record("b", 2, 30, &mut vec![1, 2]);
        let s = d.summary();
        assert_eq!(
            (s.agent_epoch, s.last_seq, s.seq_gaps),
            (Some(2), Some(2), 1)
        );
    }

    /// A hostile agent sending every other seq cannot grow the state past `MAX_RUNS` runs;
    /// the joined gaps still count as lost.
    #[test]
    fn seq_runs_are_bounded() {
        let mut d = DeviceState::new("d");
        let mut seqs: Vec<i64> = (0..3 * MAX_RUNS as i64).map(|i| i * 2).collect();
        d.record("b", 1, 0, &mut seqs);
        let e = &d.boot("b").unwrap().epochs[0];
        assert_eq!(e.runs.len(), MAX_RUNS);
        assert_eq!(d.summary().seq_gaps, 3 * MAX_RUNS as i64 - 1);
    }

    #[test]
    fn bands_and_channels() {
        assert_eq!((band(2412), channel(2412)), (Some("2.4"), Some(1)));
        assert_eq!((band(2484), channel(2484)), (Some("2.4"), Some(14)));
        assert_eq!((band(5180), channel(5180)), (Some("5"), Some(36)));
        assert_eq!((band(5955), channel(5955)), (Some("6"), Some(1)));
        assert_eq!((band(0), channel(0)), (None, None));
        let r = vec![Radio {
            ifname: "phy0-ap0".into(),
            bssid: "02:00:00:00:00:01".into(),
            ssid: "campus".into(),
            freq_mhz: 5180,
        }];
        assert_eq!(decode_radios(&encode_radios(&r)), r);
        assert!(decode_radios(&encode_radios(&[])).is_empty());
    }

    #[test]
    fn boots_round_trip_through_the_row_encoding() {
        let mut d = DeviceState::new("d");
        d.observe("b2", 5, 9, Some(3));
        d.observe("b1", 1, 4, None);
        d.record("b1", 7, 40, &mut vec![1, 2, 5]);
        let back = DeviceState::decode_boots(&d.encode_boots()).unwrap();
        assert_eq!(back, d.boots);
        assert_eq!(d.newest_boot(), Some("b2"));
    }
}
