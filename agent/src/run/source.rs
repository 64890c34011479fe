//! The station side as the loop sees it: a [`Source`] waits for input, then takes a turn
//! with the loop's one clock reading, appending session events. The real source is
//! [`Nl80211Source`](super::Nl80211Source); [`ChannelSource`] (tests) and [`SyntheticSource`]
//! (`run --synthetic`, tests and the lab) stand in for it.

use wifisess_wire::{Event, InterfaceInfo, MacAddr, SessionId, Stamp, Start};

use crate::clock::Now;
use crate::nl80211::SourceMsg;
use crate::session::Timed;

/// What a source waited for.
#[derive(Debug)]
pub enum Input {
    /// A message from the nl80211 event thread.
    Kernel(SourceMsg),
    /// Events handed over ready-made (a [`ChannelSource`]).
    Events(Vec<Timed>),
    /// The input has ended for good (the source's turn returns `false`).
    Ended,
}

/// What the station side reports in the status.
#[derive(Clone, Debug, Default)]
pub struct SourceInfo {
    /// The AP interfaces watched.
    pub interfaces: Vec<InterfaceInfo>,
    /// Stations that never authorized.
    pub failed_joins: u64,
    /// Stations the session table had no room for.
    pub tracker_overflow: u64,
}

/// A station source. The loop calls [`Source::turn`] once per loop turn (with the input that
/// woke it, if any) and between turns waits for [`Source::input`] or [`Source::deadline`].
#[allow(async_fn_in_trait)]
pub trait Source {
    /// Waits for input; must be cancel-safe (it races the connection in a `select!`).
    async fn input(&mut self) -> Input;
    /// When (uptime ms) the source wants a turn even without input.
    fn deadline(&self) -> Option<u64>;
    /// Handles `input` and whatever is due at `now`, appending events to `out`.
    /// `Ok(false)`: the source has ended for good (the agent keeps publishing until stopped).
    ///
    /// # Errors
    /// The source failed for good (the nl80211 event socket).
    fn turn(
        &mut self,
        input: Option<Input>,
        now: &Now,
        out: &mut Vec<Timed>,
    ) -> crate::error::Result<bool>;
    /// A sync event listing every open session (after each connect).
    fn sync(&self, now: Stamp) -> Timed;
    /// Interfaces and counters for the status.
    fn info(&self) -> SourceInfo;
}

/// A sync event for `ids` at `now`.
pub fn sync_event(now: Stamp, ids: Vec<SessionId>) -> Timed {
    Timed {
        at: now,
        event: Event::Sync(wifisess_wire::Sync {
            seq: 0,
            at: Default::default(),
            ids,
        }),
    }
}

/// A source fed through a channel (tests drive the publisher with it).
pub struct ChannelSource {
    rx: tokio::sync::mpsc::UnboundedReceiver<Timed>,
    /// The ids the next sync event lists.
    pub open: Vec<SessionId>,
    /// Events handed to the loop so far (tests wait on it instead of sleeping).
    pub taken: std::sync::Arc<core::sync::atomic::AtomicUsize>,
}

impl ChannelSource {
    /// A source that yields what is sent on the other end of `rx`.
    pub fn new(rx: tokio::sync::mpsc::UnboundedReceiver<Timed>) -> ChannelSource {
        ChannelSource {
            rx,
            open: Vec::new(),
            taken: Default::default(),
        }
    }
}

impl Source for ChannelSource {
    async fn input(&mut self) -> Input {
        match self.rx.recv().await {
            Some(t) => {
                let mut v = vec![t];
                while let Ok(t) = self.rx.try_recv() {
                    v.push(t);
                }
                Input::Events(v)
            }
            None => Input::Ended,
        }
    }

    fn deadline(&self) -> Option<u64> {
        None
    }

    fn turn(
        &mut self,
        input: Option<Input>,
        _now: &Now,
        out: &mut Vec<Timed>,
    ) -> crate::error::Result<bool> {
        Ok(match input {
            Some(Input::Events(v)) => {
                self.taken
                    .fetch_add(v.len(), core::sync::atomic::Ordering::Relaxed);
                out.extend(v);
                true
            }
            Some(Input::Ended) => false,
            _ => true,
        })
    }

    fn sync(&self, now: Stamp) -> Timed {
        sync_event(now, self.open.clone())
    }

    fn info(&self) -> SourceInfo {
        SourceInfo::default()
    }
}

/// A made-up session start, `i` numbering distinct clients (tests and the lab).
pub fn synthetic_start(i: u32, at: Stamp) -> Timed {
    let b = i.to_be_bytes();
    Timed {
        at,
        event: Event::Start(Start {
            seq: 0,
            at: Default::default(),
            id: SessionId(0x5157_0000_0000_0000 | u64::from(i)),
            mac: MacAddr([0x02, 0x5e, b[0], b[1], b[2], b[3]]),
            ifname: "synthetic0".into(),
            ssid: b"wifisess-synthetic".to_vec(),
            bssid: MacAddr([0x02, 0x5e, 0, 0, 0, 1]),
            freq_mhz: 2412,
            age_ms: 0,
            signal_dbm: Some(-50),
            hostname: None,
        }),
    }
}

/// `run --synthetic N[:MS]`: N made-up session starts, one every MS ms (the first at once),
/// then nothing. For tests and lab runs without radios.
#[cfg(feature = "devtools")]
pub struct SyntheticSource {
    count: u32,
    made: u32,
    every_ms: u64,
    /// Uptime ms of the first start (at the first turn).
    first_ms: Option<u64>,
}

#[cfg(feature = "devtools")]
impl SyntheticSource {
    /// `count` starts, one every `every_ms`.
    pub fn new(count: u32, every_ms: u64) -> SyntheticSource {
        SyntheticSource {
            count,
            made: 0,
            every_ms,
            first_ms: None,
        }
    }
}

#[cfg(feature = "devtools")]
impl Source for SyntheticSource {
    async fn input(&mut self) -> Input {
        std::future::pending().await
    }

    fn deadline(&self) -> Option<u64> {
        let first = self.first_ms.unwrap_or(0);
        (self.made < self.count).then(|| first + u64::from(self.made) * self.every_ms)
    }

    fn turn(
        &mut self,
        _input: Option<Input>,
        now: &Now,
        out: &mut Vec<Timed>,
    ) -> crate::error::Result<bool> {
        let first = *self.first_ms.get_or_insert(now.uptime_ms);
        let before = self.made;
        while self.made < self.count
            && first + u64::from(self.made) * self.every_ms <= now.uptime_ms
        {
            self.made += 1;
            out.push(synthetic_start(self.made, now.stamp()));
        }
        if self.made == self.count && before < self.count {
            // Tests wait for this line rather than for a guessed time.
            log::info!("synthetic source: {} starts made", self.count);
        }
        Ok(true)
    }

    fn sync(&self, now: Stamp) -> Timed {
        sync_event(
            now,
            (1..=self.made)
                .map(|i| SessionId(0x5157_0000_0000_0000 | u64::from(i)))
                .collect(),
        )
    }

    fn info(&self) -> SourceInfo {
        SourceInfo {
            interfaces: vec![InterfaceInfo {
                ifname: "synthetic0".into(),
                ifindex: 0,
                bssid: MacAddr([0x02, 0x5e, 0, 0, 0, 1]),
                ssid: b"wifisess-synthetic".to_vec(),
                freq_mhz: 2412,
            }],
            ..SourceInfo::default()
        }
    }
}

#[cfg(all(test, feature = "devtools"))]
mod tests {
    use super::*;

    fn at(ms: u64) -> Now {
        Now {
            wall_ms: 1_800_000_000_000 + ms,
            uptime_ms: ms,
            synced: true,
        }
    }

    #[test]
    fn synthetic_starts_come_on_their_schedule_from_the_first_turn() {
        let mut s = SyntheticSource::new(5, 10);
        let mut out = Vec::new();
        assert_eq!(s.deadline(), Some(0));
        s.turn(None, &at(1000), &mut out).unwrap();
        assert_eq!(out.len(), 1, "the first at once");
        assert_eq!(s.deadline(), Some(1010));
        s.turn(None, &at(1025), &mut out).unwrap();
        assert_eq!(out.len(), 3, "two more were due");
        s.turn(None, &at(5000), &mut out).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(s.deadline(), None);
        let Event::Sync(sync) = s.sync(at(5000).stamp()).event else {
            panic!("not a sync")
        };
        assert_eq!(sync.ids.len(), 5);
    }
}
