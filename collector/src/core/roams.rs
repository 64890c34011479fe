//! Roams (SPEC §7): a client's session ending on one access point and one starting on another
//! of the same organization within the roam window, or overlapping it (802.11r and band
//! steering often deliver the old AP's disconnect after the new AP's connect: the gap is then
//! negative). An access point is a BSS here: a move between two radios (interfaces) of one
//! device is a roam too (band steering), with the same device at both ends.
//!
//! A roam is identified by the session it arrives in: each session has at most one roam into
//! it, computed from the client's stored sessions alone, so the result does not depend on the
//! order the events arrived in. The pairing looks at every session of the MAC whatever the
//! device's organization (which may change, e.g. when a device's first status comes after its
//! first events); the read side shows roams between devices of one organization only. Pure:
//! no SQL, no clock.

use super::derived::Span;

/// One end of a roam: the session left or joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoamEnd {
    /// Device id.
    pub device_id: String,
    /// Session id (as stored).
    pub id: i64,
    /// AP interface.
    pub ifname: String,
    /// SSID.
    pub ssid: String,
    /// Frequency, MHz (its band: [`band`]).
    pub freq_mhz: Option<i64>,
}

/// A client's move from one AP to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roam {
    /// Client MAC.
    pub mac: String,
    /// When it arrived: the start of the session it roamed into, ms.
    pub at_ms: i64,
    /// That start minus the stop of the session it left, ms; negative when they overlapped.
    pub gap_ms: i64,
    /// The session it left.
    pub from: RoamEnd,
    /// The session it roamed into.
    pub to: RoamEnd,
}

fn end(s: &Span) -> RoamEnd {
    RoamEnd {
        device_id: s.device_id.clone(),
        id: s.id,
        ifname: s.ifname.clone(),
        ssid: s.ssid.clone(),
        freq_mhz: s.freq_mhz,
    }
}

/// The session a client came from into `b`, if any: among its other closed sessions that
/// began before `b` (by start, device, id) and stopped no earlier than `window_ms` before `b`
/// started and no later than `b` stopped, the one that stopped last (ties: the later by
/// start, device, id). Sessions on `b`'s own interface count, so a client that rejoins the
/// same AP is not taken for one that roamed.
pub fn predecessor<'a>(spans: &'a [Span], b: &Span, window_ms: i64) -> Option<&'a Span> {
    spans
        .iter()
        .filter(|a| a.order() < b.order())
        .filter_map(|a| a.stop_ms.map(|s| (s, a)))
        .filter(|(s, _)| {
            *s >= b.start_ms.saturating_sub(window_ms) && b.stop_ms.is_none_or(|bs| *s <= bs)
        })
        .max_by(|(s1, a1), (s2, a2)| (s1, a1.order()).cmp(&(s2, a2.order())))
        .map(|(_, a)| a)
}

/// The roams into the sessions of one client (all of `spans`) that start within [lo, hi],
/// sorted by arrival. `spans` must hold every session of the client that stopped at or after
/// `lo - window_ms` and started at or before `hi` (the candidates).
pub fn roams_into(spans: &[Span], window_ms: i64, lo: i64, hi: i64) -> Vec<Roam> {
    let mut out: Vec<Roam> = spans
        .iter()
        .filter(|b| (lo..=hi).contains(&b.start_ms))
        .filter_map(|b| {
            let a = predecessor(spans, b, window_ms)?;
            let moved = (a.device_id.as_str(), a.ifname.as_str())
                != (b.device_id.as_str(), b.ifname.as_str());
            moved.then(|| Roam {
                mac: b.mac.clone(),
                at_ms: b.start_ms,
                gap_ms: b.start_ms - a.stop_ms.expect("a predecessor has stopped"),
                from: end(a),
                to: end(b),
            })
        })
        .collect();
    out.sort_by(|x, y| {
        (x.at_ms, &x.to.device_id, x.to.id).cmp(&(y.at_ms, &y.to.device_id, y.to.id))
    });
    out
}

/// The Wi-Fi band of a frequency: `2.4`, `5`, `6` or `60` (GHz).
pub fn band(freq_mhz: Option<i64>) -> Option<&'static str> {
    match freq_mhz? {
        2400..=2500 => Some("2.4"),
        4900..=5924 => Some("5"),
        5925..=7125 => Some("6"),
        57_000..=71_000 => Some("60"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: i64 = 10_000;

    fn span(dev: &str, id: i64, ifname: &str, start: i64, stop: Option<i64>) -> Span {
        Span {
            device_id: dev.into(),
            id,
            mac: "m".into(),
            ssid: "lab".into(),
            ifname: ifname.into(),
            freq_mhz: Some(if ifname.ends_with('1') { 5180 } else { 2412 }),
            start_ms: start,
            stop_ms: stop,
            last_seen_ms: stop.unwrap_or(start),
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    fn pairs(spans: &[Span]) -> Vec<(i64, i64, i64)> {
        roams_into(spans, W, i64::MIN, i64::MAX)
            .iter()
            .map(|r| (r.from.id, r.to.id, r.gap_ms))
            .collect()
    }

    #[test]
    fn the_window_is_inclusive_and_a_longer_gap_is_no_roam() {
        let edge = [
            span("a", 1, "w0", 0, Some(100)),
            span("b", 2, "w0", 100 + W, None),
        ];
        assert_eq!(pairs(&edge), [(1, 2, W)]);
        let late = [
            span("a", 1, "w0", 0, Some(100)),
            span("b", 2, "w0", 101 + W, None),
        ];
        assert_eq!(pairs(&late), []);
    }

    /// 802.11r: the old AP's disconnect comes after the new AP's connect.
    #[test]
    fn an_overlap_is_a_roam_with_a_negative_gap() {
        let s = [
            span("a", 1, "w0", 0, Some(300_000)),
            span("b", 2, "w0", 10_000, Some(900_000)),
        ];
        assert_eq!(pairs(&s), [(1, 2, -290_000)]);
        // The old session outlives the new one: the client did not leave it for that one.
        let s = [
            span("a", 1, "w0", 0, Some(300_000)),
            span("b", 2, "w0", 10_000, Some(20_000)),
        ];
        assert_eq!(pairs(&s), []);
        // An open old session has not ended: no roam yet.
        let s = [
            span("a", 1, "w0", 0, None),
            span("b", 2, "w0", 10_000, None),
        ];
        assert_eq!(pairs(&s), []);
    }

    #[test]
    fn a_rejoin_of_the_same_ap_is_no_roam_and_hides_older_sessions() {
        let s = [
            span("a", 1, "w0", 0, Some(100)),
            span("b", 2, "w0", 101, Some(200)),
            span("b", 3, "w0", 205, None),
        ];
        assert_eq!(pairs(&s), [(1, 2, 1)]);
    }

    #[test]
    fn band_steering_on_one_device_is_a_roam_between_its_interfaces() {
        let s = [
            span("a", 1, "w0", 0, Some(100)),
            span("a", 2, "w1", 150, None),
        ];
        let r = roams_into(&s, W, 0, 1_000);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].from.device_id, r[0].to.device_id);
        assert_eq!(
            (band(r[0].from.freq_mhz), band(r[0].to.freq_mhz)),
            (Some("2.4"), Some("5"))
        );
    }

    #[test]
    fn a_chain_links_each_session_to_the_one_left_last() {
        let s = [
            span("a", 1, "w0", 0, Some(100)),
            span("b", 2, "w0", 90, Some(200)),
            span("c", 3, "w0", 195, Some(300)),
            span("a", 4, "w0", 305, None),
        ];
        assert_eq!(pairs(&s), [(1, 2, -10), (2, 3, -5), (3, 4, 5)]);
    }

    #[test]
    fn bands() {
        assert_eq!(band(Some(2412)), Some("2.4"));
        assert_eq!(band(Some(5925)), Some("6"));
        assert_eq!(band(Some(5825)), Some("5"));
        assert_eq!(band(None), None);
        assert_eq!(band(Some(900)), None);
    }

    proptest! {
        /// The roams of a client do not depend on the order its sessions are listed in, and
        /// recomputing a range gives that range's part of the whole.
        #[test]
        fn roams_are_a_function_of_the_set_of_sessions(
            raw in prop::collection::vec((0u8..3, 0u8..2, 0i64..200, 0i64..100, any::<bool>()), 1..12),
            lo in 0i64..200,
            len in 0i64..200,
            rot in any::<usize>(),
        ) {
            let mut spans: Vec<Span> = raw
                .iter()
                .enumerate()
                .map(|(i, (d, f, start, dur, open))| {
                    let stop = (!open).then_some(start * 1000 + dur * 1000);
                    span(&format!("d{d}"), i as i64, &format!("w{f}"), start * 1000, stop)
                })
                .collect();
            let all = roams_into(&spans, W, i64::MIN, i64::MAX);
            let n = spans.len();
            spans.rotate_left(rot % n);
            spans.reverse();
            prop_assert_eq!(&all, &roams_into(&spans, W, i64::MIN, i64::MAX));
            let (lo, hi) = (lo * 1000, (lo + len) * 1000);
            let part: Vec<Roam> = all.into_iter().filter(|r| (lo..=hi).contains(&r.at_ms)).collect();
            prop_assert_eq!(part, roams_into(&spans, W, lo, hi));
        }
    }
}
