//! The nl80211 parser on real bytes captured in the hwsim lab (see
//! `tests/fixtures/netlink/README.md`), little-endian as captured and byte-swapped to
//! big-endian, plus hostile variants and random input: errors that name the attribute, never a
//! panic.

use std::path::Path;

use proptest::prelude::*;
use wifisess_agent::nl80211::consts::*;
use wifisess_agent::nl80211::parse::{self, Endian, Event, ParseError, Payload};
use wifisess_wire::MacAddr;

const WLAN0: MacAddr = MacAddr([2, 0, 0, 0, 0, 0]);
const WLAN1: MacAddr = MacAddr([2, 0, 0, 0, 1, 0]);
const WLAN2: MacAddr = MacAddr([2, 0, 0, 0, 2, 0]);

fn fixtures(set: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/netlink")
        .join(set);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v
}

// ---- byte swapping a capture (little → big endian), guided by the attribute kinds ----------

#[derive(Clone, Copy)]
enum Set {
    Attr,
    StaInfo,
    RateInfo,
    Ctrl,
    CtrlGrp,
    /// Not descended into by the parser: headers and payload left as captured.
    Opaque,
}

fn swap_int(b: &mut [u8]) {
    if matches!(b.len(), 2 | 4 | 8) {
        b.reverse();
    }
}

fn swap_attrs(buf: &mut [u8], set: Set) {
    let mut pos = 0;
    while pos + 4 <= buf.len() {
        let len = u16::from_le_bytes([buf[pos], buf[pos + 1]]) as usize;
        let ty = u16::from_le_bytes([buf[pos + 2], buf[pos + 3]]) & NLA_TYPE_MASK;
        assert!(
            len >= 4 && pos + len <= buf.len(),
            "fixture attribute malformed"
        );
        buf[pos..pos + 2].reverse();
        buf[pos + 2..pos + 4].reverse();
        let p = &mut buf[pos + 4..pos + len];
        let (kind, inner) = match set {
            Set::Attr => {
                let a = Attr::from_raw(ty);
                (
                    a.kind(),
                    if a == Attr::StaInfo {
                        Set::StaInfo
                    } else {
                        Set::Opaque
                    },
                )
            }
            Set::StaInfo => {
                let a = StaInfo::from_raw(ty);
                let inner = match a {
                    StaInfo::TxBitrate | StaInfo::RxBitrate => Set::RateInfo,
                    _ => Set::Opaque,
                };
                (a.kind(), inner)
            }
            Set::RateInfo => (RateInfo::from_raw(ty).kind(), Set::Opaque),
            Set::Ctrl => {
                let a = CtrlAttr::from_raw(ty);
                (
                    a.kind(),
                    if a == CtrlAttr::McastGroups {
                        Set::CtrlGrp
                    } else {
                        Set::Opaque
                    },
                )
            }
            Set::CtrlGrp => (CtrlMcastGrp::from_raw(ty).kind(), Set::Opaque),
            Set::Opaque => (Kind::Bytes, Set::Opaque),
        };
        match kind {
            Kind::U16 | Kind::U32 | Kind::U64 => swap_int(p),
            Kind::FlagUpdate if p.len() == 8 => {
                p[..4].reverse();
                p[4..].reverse();
            }
            Kind::Nested if !matches!(inner, Set::Opaque) => swap_attrs(p, inner),
            // An array of nests: each entry's header swapped, then its content.
            Kind::NestedArray if matches!(inner, Set::CtrlGrp) => {
                let mut q = 0;
                while q + 4 <= p.len() {
                    let l = u16::from_le_bytes([p[q], p[q + 1]]) as usize;
                    p[q..q + 2].reverse();
                    p[q + 2..q + 4].reverse();
                    swap_attrs(&mut p[q + 4..q + l], inner);
                    q += (l + 3) & !3;
                }
            }
            _ => {}
        }
        pos += (len + 3) & !3;
    }
}

/// The same datagram as a big-endian kernel would have sent it.
fn to_big_endian(le: &[u8]) -> Vec<u8> {
    let mut b = le.to_vec();
    let mut pos = 0;
    while pos + 16 <= b.len() {
        let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let ty = u16::from_le_bytes([b[pos + 4], b[pos + 5]]);
        for r in [0..4, 4..6, 6..8, 8..12, 12..16] {
            b[pos + r.start..pos + r.end].reverse();
        }
        let body = &mut b[pos + 16..pos + len];
        match ty {
            NLMSG_DONE | NLMSG_ERROR if body.len() >= 4 => body[..4].reverse(),
            GENL_ID_CTRL => swap_attrs(&mut body[4..], Set::Ctrl),
            t if t >= 16 => swap_attrs(&mut body[4..], Set::Attr),
            _ => {}
        }
        pos += (len + 3) & !3;
    }
    b
}

// ---- what the captures contain --------------------------------------------------------------

#[derive(Debug, Default, PartialEq)]
struct Parsed {
    family: Option<parse::Family>,
    interfaces: Vec<parse::InterfaceMsg>,
    stations: Vec<parse::StationMsg>,
    events: Vec<Event>,
    done: usize,
}

/// Parses a datagram the way the socket layer does (`name` says which request it answers).
fn parse_datagram(name: &str, data: &[u8], e: Endian, out: &mut Parsed) -> Result<(), ParseError> {
    for m in parse::messages(data, e) {
        let m = m?;
        match m.payload(e)? {
            Payload::Genl { cmd, attrs, .. } => {
                if m.ty == GENL_ID_CTRL {
                    out.family = Some(parse::parse_family(attrs, e)?);
                } else if name.contains("event") {
                    out.events.push(parse::parse_event(cmd, attrs, e)?);
                } else if name.contains("GET_INTERFACE") {
                    out.interfaces.push(parse::parse_interface(attrs, e)?);
                } else if name.contains("GET_STATION") {
                    out.stations
                        .push(parse::parse_station(attrs, e, "NL80211_CMD_NEW_STATION")?);
                }
            }
            Payload::Done { .. } | Payload::Error { .. } => out.done += 1,
            Payload::Noop => {}
        }
    }
    Ok(())
}

fn parse_set(set: &str, e: Endian) -> Parsed {
    let mut out = Parsed::default();
    for (name, bytes) in fixtures(set) {
        let data = match e {
            Endian::Little => bytes,
            Endian::Big => to_big_endian(&bytes),
        };
        parse_datagram(&name, &data, e, &mut out)
            .unwrap_or_else(|err| panic!("{set}/{name}: {err}"));
    }
    out
}

#[test]
fn family_and_groups() {
    for e in [Endian::Little, Endian::Big] {
        let fam = parse_set("interfaces", e).family.expect("a family answer");
        assert_eq!(fam.name, "nl80211");
        assert!(fam.id >= 16);
        assert!(
            fam.group("mlme").is_some() && fam.group("config").is_some(),
            "{fam:?}"
        );
    }
}

#[test]
fn interface_dump_finds_the_ap() {
    for e in [Endian::Little, Endian::Big] {
        let p = parse_set("interfaces", e);
        let aps: Vec<_> = p
            .interfaces
            .iter()
            .filter_map(|i| i.to_ap_iface())
            .collect();
        assert_eq!(aps.len(), 1, "{:?}", p.interfaces);
        let ap = &aps[0];
        assert_eq!(ap.ifname.as_str(), "wlan0");
        assert_eq!(ap.bssid, WLAN0);
        assert_eq!(&ap.ssid[..], b"lab-capture");
        assert_eq!(ap.freq_mhz, 2412);
        // The client radios are stations, not APs.
        assert!(p.interfaces.iter().any(|i| i.iftype == Some(2)));
    }
}

#[test]
fn station_dump_has_both_clients_in_both_byte_orders() {
    let le = parse_set("stations", Endian::Little);
    let be = parse_set("stations", Endian::Big);
    assert_eq!(le, be);
    let macs: Vec<_> = le.stations.iter().map(|s| s.station.mac).collect();
    assert!(macs.contains(&WLAN1) && macs.contains(&WLAN2), "{macs:?}");
    for s in &le.stations {
        let st = &s.station;
        assert_eq!(st.authorized, Some(true), "{st:?}");
        assert!(st.connected_s.is_some() && st.inactive_ms.is_some());
        assert!(st.rx_bytes.unwrap() > 0 && st.tx_bytes.unwrap() > 0);
        assert!(st.rx_packets.unwrap() > 0 && st.tx_packets.unwrap() > 0);
        assert_eq!(st.signal_dbm, Some(-30));
        assert_eq!(st.signal_avg_dbm, Some(-30));
        assert!(st.tx_bitrate_100kbps.is_some() && st.rx_bitrate_100kbps.is_some());
        assert!(st.assoc_at_boottime_ns.unwrap() > 1_000_000_000);
    }
}

#[test]
fn events_new_and_del_station() {
    let le = parse_set("events", Endian::Little);
    let be = parse_set("events", Endian::Big);
    assert_eq!(le, be);
    let new: Vec<_> = le
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NewStation(m) => Some(m.station.mac),
            _ => None,
        })
        .collect();
    assert!(
        new.contains(&WLAN1) && new.contains(&WLAN2),
        "{:?}",
        le.events
    );
    let del = le
        .events
        .iter()
        .find_map(|e| match e {
            Event::DelStation(m) if m.station.mac == WLAN1 => Some(m),
            _ => None,
        })
        .expect("DEL_STATION for wlan1");
    // DEL_STATION carries the final counters.
    assert!(
        del.station.rx_bytes.unwrap() > 0 && del.station.rx_packets.is_some(),
        "{del:?}"
    );
    // NEW_STATION comes before the handshake: not authorized in the probes' first answer.
    assert!(!le.stations.is_empty());
}

/// Issue 18: what the kernel multicasts when an AP interface goes down (captured with a client
/// on it: `ip link set wlan0 down`, up again, then `hostapd_cli disable`). The client's
/// `DEL_STATION` comes first, then `STOP_AP` (link down) or `SET_INTERFACE` to station mode
/// (hostapd giving the interface up): both say "this interface is down" (`Event::ap_down`).
#[test]
fn events_when_the_interface_goes_down() {
    let le = parse_set("ifdown", Endian::Little);
    let be = parse_set("ifdown", Endian::Big);
    assert_eq!(le, be);
    let pos = |f: &dyn Fn(&Event) -> bool| le.events.iter().position(f);
    let del = pos(&|e| matches!(e, Event::DelStation(m) if m.station.mac == WLAN2))
        .expect("DEL_STATION for wlan2");
    let Event::DelStation(m) = &le.events[del] else {
        unreachable!()
    };
    let ap = m.ifindex;
    let stop_ap = pos(&|e| {
        matches!(e, Event::InterfaceChanged { cmd: Cmd::StopAp, ifindex: Some(i), .. } if *i == ap)
    })
    .expect("STOP_AP for the AP interface");
    assert!(del < stop_ap, "the stations are flushed before STOP_AP");
    assert_eq!(le.events[stop_ap].ap_down(), Some(ap));
    let to_station = pos(&|e| {
        matches!(e, Event::InterfaceChanged { cmd: Cmd::SetInterface, ifindex: Some(i), iftype: Some(2) } if *i == ap)
    })
    .expect("SET_INTERFACE to station mode (hostapd_cli disable)");
    assert!(stop_ap < to_station);
    assert_eq!(le.events[to_station].ap_down(), Some(ap));
    // Nothing else in the capture says the AP went down (the NEW_STATION of the client
    // coming back, for one, does not).
    let downs = le.events.iter().filter(|e| e.ap_down().is_some()).count();
    assert_eq!(downs, 2, "{:?}", le.events);
}

// ---- hostile variants --------------------------------------------------------------------

fn nla(e: Endian, ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&e.put_u16((4 + payload.len()) as u16));
    v.extend_from_slice(&e.put_u16(ty));
    v.extend_from_slice(payload);
    v.resize((v.len() + 3) & !3, 0);
    v
}

/// A NEW_STATION message body (attributes) with `sta_info` as the nested STA_INFO payload.
fn station_attrs(e: Endian, sta_info: &[u8]) -> Vec<u8> {
    let mut v = nla(e, Attr::Ifindex.raw(), &e.put_u32(3));
    v.extend(nla(e, Attr::Mac.raw(), &WLAN1.0));
    v.extend(nla(e, Attr::StaInfo.raw() | NLA_F_NESTED, sta_info));
    v
}

fn station_err(e: Endian, sta_info: &[u8]) -> String {
    parse::parse_station(&station_attrs(e, sta_info), e, "NL80211_CMD_NEW_STATION")
        .unwrap_err()
        .to_string()
}

#[test]
fn wrong_attribute_length_names_the_attribute() {
    for e in [Endian::Little, Endian::Big] {
        let bad = nla(e, StaInfo::RxBytes64.raw(), &[1, 2, 3]);
        assert_eq!(
            station_err(e, &bad),
            "NL80211_STA_INFO_RX_BYTES64: expected 8 bytes, got 3"
        );
        let bad = nla(e, StaInfo::StaFlags.raw(), &[0; 4]);
        assert_eq!(
            station_err(e, &bad),
            "NL80211_STA_INFO_STA_FLAGS: expected 8 bytes, got 4"
        );
        let rate = nla(e, RateInfo::Bitrate32.raw(), &[1]);
        let bad = nla(e, StaInfo::TxBitrate.raw() | NLA_F_NESTED, &rate);
        assert_eq!(
            station_err(e, &bad),
            "NL80211_RATE_INFO_BITRATE32: expected 4 bytes, got 1"
        );
    }
}

#[test]
fn unknown_attributes_are_skipped() {
    let e = Endian::Little;
    let mut info = nla(e, 999, &[0xff; 7]);
    info.extend(nla(e, StaInfo::RxBytes64.raw(), &42u64.to_le_bytes()));
    info.extend(nla(e, StaInfo::Other(0x3fff).raw(), &[]));
    let mut attrs = station_attrs(e, &info);
    attrs.extend(nla(e, 4000, b"future"));
    let m = parse::parse_station(&attrs, e, "x").unwrap();
    assert_eq!(m.station.rx_bytes, Some(42));
    assert_eq!(m.station.mac, WLAN1);
    // An unknown command is reported as such, not an error.
    assert!(matches!(
        parse::parse_event(250, &attrs, e),
        Ok(Event::Other(Cmd::Other(250)))
    ));
}

#[test]
fn nested_garbage_and_bad_lengths() {
    let e = Endian::Little;
    // STA_INFO holding bytes that are not attributes.
    let err = station_err(e, &[0xde, 0xad, 0xbe]);
    assert_eq!(
        err,
        "NL80211_ATTR_STA_INFO: attribute at offset 0: 3 trailing bytes"
    );
    // nla_len 0 and nla_len 2 (shorter than the header).
    for len in [0u16, 2] {
        let mut b = e.put_u16(len).to_vec();
        b.extend_from_slice(&e.put_u16(1));
        let err = station_err(e, &b);
        assert!(
            err.contains(&format!("length {len} is shorter than its header")),
            "{err}"
        );
        assert!(err.starts_with("NL80211_ATTR_STA_INFO"), "{err}");
    }
    // nla_len running past the end.
    let mut b = e.put_u16(200).to_vec();
    b.extend_from_slice(&e.put_u16(1));
    b.extend_from_slice(&[0; 8]);
    assert_eq!(
        station_err(e, &b),
        "NL80211_ATTR_STA_INFO: attribute at offset 0: length 200 overflows the 12 bytes left"
    );
    // Missing MAC.
    let attrs = nla(e, Attr::Ifindex.raw(), &e.put_u32(3));
    assert_eq!(
        parse::parse_station(&attrs, e, "NL80211_CMD_DEL_STATION")
            .unwrap_err()
            .to_string(),
        "NL80211_CMD_DEL_STATION: missing NL80211_ATTR_MAC"
    );
    // An over-long interface name and SSID.
    let attrs = nla(e, Attr::Ifname.raw(), b"a-very-long-interface-name\0");
    assert_eq!(
        parse::parse_interface(&attrs, e).unwrap_err().to_string(),
        "NL80211_ATTR_IFNAME: expected at most 16 bytes, got 27"
    );
    let attrs = nla(e, Attr::Ssid.raw(), &[b'x'; 33]);
    assert_eq!(
        parse::parse_interface(&attrs, e).unwrap_err().to_string(),
        "NL80211_ATTR_SSID: expected at most 32 bytes, got 33"
    );
}

#[test]
fn bad_message_headers() {
    let e = Endian::Little;
    let mut m = parse::encode_request(e, 0x1c, 0, 1, Cmd::NewStation.raw(), 1, &[]);
    m[0..4].copy_from_slice(&e.put_u32(500));
    let err = parse::messages(&m, e).next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "netlink message at offset 0: length 500 overflows the 20 bytes left"
    );
    let err = parse::messages(&[0; 7], e).next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "netlink message at offset 0: 7 trailing bytes"
    );
    let mut m = vec![0u8; 16];
    m[0..4].copy_from_slice(&e.put_u32(16));
    m[4..6].copy_from_slice(&e.put_u16(0x1c));
    let msg = parse::messages(&m, e).next().unwrap().unwrap();
    assert_eq!(
        msg.payload(e).unwrap_err().to_string(),
        "genlmsghdr: expected at least 4 bytes, got 0"
    );
}

#[test]
fn every_truncation_of_every_capture_is_handled() {
    for set in ["interfaces", "stations", "events", "ifdown"] {
        for (name, bytes) in fixtures(set) {
            for cut in 0..bytes.len() {
                let mut out = Parsed::default();
                let _ = parse_datagram(&name, &bytes[..cut], Endian::Little, &mut out);
                let _ = parse_datagram(&name, &bytes[..cut], Endian::Big, &mut out);
            }
        }
    }
}

fn all_fixture_bytes() -> Vec<Vec<u8>> {
    ["interfaces", "stations", "events", "ifdown"]
        .iter()
        .flat_map(|s| fixtures(s).into_iter().map(|(_, b)| b))
        .collect()
}

fn parse_everything(data: &[u8], e: Endian) {
    for name in ["event", "GET_INTERFACE", "GET_STATION"] {
        let mut out = Parsed::default();
        let _ = parse_datagram(name, data, e, &mut out);
    }
    // Also treat the raw bytes as attributes of each kind of message.
    let _ = parse::parse_station(data, e, "x");
    let _ = parse::parse_interface(data, e);
    let _ = parse::parse_family(data, e);
    let mut st = Default::default();
    let _ = parse::parse_sta_info(data, e, &mut st);
    for cmd in [
        Cmd::NewStation,
        Cmd::DelStation,
        Cmd::NewInterface,
        Cmd::SetInterface,
        Cmd::StopAp,
    ] {
        let _ = parse::parse_event(cmd.raw(), data, e);
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&data, Endian::Little);
        parse_everything(&data, Endian::Big);
    }

    #[test]
    fn mutated_captures_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let all = all_fixture_bytes();
        let mut data = pick.get(&all).clone();
        if !data.is_empty() {
            for (i, v) in flips {
                let k = i.index(data.len());
                data[k] = v;
            }
        }
        parse_everything(&data, Endian::Little);
        parse_everything(&data, Endian::Big);
    }
}
