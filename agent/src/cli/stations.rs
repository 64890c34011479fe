//! `stations`: the AP interfaces and their stations, one-shot over nl80211, as a table or
//! JSON.

use std::io::{self, Write};

use super::json::Obj;
use crate::nl80211::Nl80211;
use crate::station::{Iface, StationInfo};

/// SSID bytes as text (invalid UTF-8 replaced).
pub fn ssid_text(ssid: &[u8]) -> String {
    String::from_utf8_lossy(ssid).into_owned()
}

/// The station values `stations` prints, in order: JSON key, text column heading and width
/// (the last value is in the JSON only).
const STATION_FIELDS: [(&str, &str, usize); 13] = [
    ("mac", "mac", 17),
    ("authorized", "auth", 4),
    ("connected_s", "conn_s", 9),
    ("inactive_ms", "inact_ms", 9),
    ("rx_bytes", "rx_bytes", 12),
    ("tx_bytes", "tx_bytes", 12),
    ("rx_packets", "rx_pkts", 8),
    ("tx_packets", "tx_pkts", 8),
    ("signal_dbm", "signal", 6),
    ("signal_avg_dbm", "avg", 6),
    ("tx_bitrate_mbps", "tx_mbps", 7),
    ("rx_bitrate_mbps", "rx_mbps", 7),
    ("assoc_at_boottime_ns", "", 0),
];

/// A station's values in [`STATION_FIELDS`] order, as JSON writes them (`None`: the kernel
/// did not say). Bit rates are Mbit/s with one decimal, the way `iw` prints them. Formatted
/// through one integer type each, so the router build holds one formatting path, not one per
/// field type.
fn station_values(s: &StationInfo) -> [Option<String>; 13] {
    let n = |v: Option<u64>| v.map(|v| v.to_string());
    let dbm = |v: Option<i8>| v.map(|v| i64::from(v).to_string());
    let mbps = |v: Option<u32>| v.map(|v| format!("{}.{}", v / 10, v % 10));
    let w = |v: Option<u32>| v.map(u64::from);
    [
        Some(s.mac.to_string()),
        s.authorized
            .map(|a| if a { "true" } else { "false" }.to_string()),
        n(w(s.connected_s)),
        n(w(s.inactive_ms)),
        n(s.rx_bytes),
        n(s.tx_bytes),
        n(w(s.rx_packets)),
        n(w(s.tx_packets)),
        dbm(s.signal_dbm),
        dbm(s.signal_avg_dbm),
        mbps(s.tx_bitrate_100kbps),
        mbps(s.rx_bitrate_100kbps),
        n(s.assoc_at_boottime_ns),
    ]
}

/// One line of the text table: the MAC column left-aligned, the others right-aligned.
fn station_row(cells: &[&str]) -> String {
    let mut line = format!("  {:<17}", cells[0]);
    for (c, (_, _, width)) in cells[1..].iter().zip(&STATION_FIELDS[1..12]) {
        line.push_str(&format!(" {c:>width$}"));
    }
    line
}

fn station_json(s: &StationInfo) -> String {
    let v = station_values(s);
    let mut o = Obj::new().str("mac", v[0].as_deref().unwrap_or_default());
    for (v, (key, _, _)) in v[1..].iter().zip(&STATION_FIELDS[1..]) {
        o = o.raw(key, v.as_deref().unwrap_or("null"));
    }
    o.finish()
}

fn station_text(s: &StationInfo) -> String {
    let v = station_values(s);
    let cells: Vec<&str> = v[..12]
        .iter()
        .map(|c| match c.as_deref() {
            None => "-",
            Some("true") => "yes",
            Some("false") => "no",
            Some(c) => c,
        })
        .collect();
    station_row(&cells)
}

fn iface_fields(o: Obj, i: &Iface) -> Obj {
    o.str("ifname", &i.ifname)
        .raw("ifindex", i.ifindex)
        .str("bssid", &i.bssid.to_string())
        .str("ssid", &ssid_text(&i.ssid))
        .raw("freq_mhz", i.freq_mhz)
}

/// `wifisess-agent stations [--json]`: lists the AP interfaces and their stations.
///
/// # Errors
/// nl80211 errors ([`Error::NotAvailable`] without a wireless driver) and write errors.
pub fn stations(json: bool, out: &mut impl Write) -> Result<(), Box<dyn std::error::Error>> {
    let mut nl = Nl80211::connect()?;
    let ifaces = nl.ap_interfaces()?;
    let mut all = Vec::new();
    for i in ifaces {
        let stas = nl.stations(i.ifindex)?;
        all.push((i, stas));
    }
    write_stations(&all, json, out)?;
    Ok(())
}

/// The `stations` listing of `all` (interfaces and their stations), text or JSON.
fn write_stations(
    all: &[(Iface, Vec<StationInfo>)],
    json: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    if json {
        writeln!(out, "{{\"interfaces\":[")?;
        for (n, (i, stas)) in all.iter().enumerate() {
            let head = iface_fields(Obj::new(), i).finish();
            // Re-open the object to append the station array, one station per line.
            writeln!(out, "{},\"stations\":[", &head[..head.len() - 1])?;
            for (k, s) in stas.iter().enumerate() {
                let sep = if k + 1 < stas.len() { "," } else { "" };
                writeln!(out, "{}{sep}", station_json(s))?;
            }
            let sep = if n + 1 < all.len() { "," } else { "" };
            writeln!(out, "]}}{sep}")?;
        }
        writeln!(out, "]}}")?;
    } else {
        if all.is_empty() {
            writeln!(out, "no AP interfaces")?;
        }
        for (i, stas) in all {
            writeln!(
                out,
                "{} (ifindex {}) bssid {} ssid {:?} freq {} MHz: {} station(s)",
                i.ifname,
                i.ifindex,
                i.bssid,
                ssid_text(&i.ssid),
                i.freq_mhz,
                stas.len()
            )?;
            if !stas.is_empty() {
                let heads: Vec<&str> = STATION_FIELDS[..12].iter().map(|f| f.1).collect();
                writeln!(out, "{}", station_row(&heads))?;
            }
            for s in stas {
                writeln!(out, "{}", station_text(s))?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wifisess_wire::MacAddr;

    fn sample() -> Vec<(Iface, Vec<StationInfo>)> {
        let iface = |ifindex, name: &str, ssid: &[u8]| Iface {
            ifindex,
            ifname: name.try_into().unwrap(),
            bssid: MacAddr([2, 0, 0, 0, 0, ifindex as u8]),
            ssid: ssid.try_into().unwrap(),
            freq_mhz: 2412,
        };
        let full = StationInfo {
            mac: MacAddr([0xaa, 0xbb, 0xcc, 0, 0, 1]),
            authorized: Some(true),
            connected_s: Some(42),
            assoc_at_boottime_ns: Some(u64::MAX),
            inactive_ms: Some(4_294_967_295),
            rx_bytes: Some(18_446_744_073_709_551_615),
            tx_bytes: Some(0),
            rx_packets: Some(7),
            tx_packets: Some(8),
            signal_dbm: Some(-128),
            signal_avg_dbm: Some(127),
            tx_bitrate_100kbps: Some(8667),
            rx_bitrate_100kbps: Some(5),
        };
        let sparse = StationInfo {
            mac: MacAddr([0x02, 0, 0, 0, 0, 0xff]),
            authorized: Some(false),
            ..StationInfo::default()
        };
        let none = StationInfo::default();
        vec![
            (
                iface(3, "phy0-ap0", b"caf\xc3\xa9 \"x\""),
                vec![full, sparse, none],
            ),
            (iface(9, "phy1-ap0", b"\xff\n"), vec![]),
        ]
    }

    fn render(all: &[(Iface, Vec<StationInfo>)], json: bool) -> String {
        let mut out = Vec::new();
        write_stations(all, json, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The output of the implementation before the table-driven one (fde5ae9), byte for byte.
    #[test]
    fn stations_output_is_unchanged() {
        assert_eq!(render(&sample(), false), TEXT);
        assert_eq!(render(&sample(), true), JSON);
        assert_eq!(render(&[], false) + &render(&[], true), EMPTY);
    }

    const TEXT: &str = r#"phy0-ap0 (ifindex 3) bssid 02:00:00:00:00:03 ssid "café \"x\"" freq 2412 MHz: 3 station(s)
  mac               auth    conn_s  inact_ms     rx_bytes     tx_bytes  rx_pkts  tx_pkts signal    avg tx_mbps rx_mbps
  aa:bb:cc:00:00:01  yes        42 4294967295 18446744073709551615            0        7        8   -128    127   866.7     0.5
  02:00:00:00:00:ff   no         -         -            -            -        -        -      -      -       -       -
  00:00:00:00:00:00    -         -         -            -            -        -        -      -      -       -       -
phy1-ap0 (ifindex 9) bssid 02:00:00:00:00:09 ssid "�\n" freq 2412 MHz: 0 station(s)
"#;

    const JSON: &str = r#"{"interfaces":[
{"ifname":"phy0-ap0","ifindex":3,"bssid":"02:00:00:00:00:03","ssid":"café \"x\"","freq_mhz":2412,"stations":[
{"mac":"aa:bb:cc:00:00:01","authorized":true,"connected_s":42,"inactive_ms":4294967295,"rx_bytes":18446744073709551615,"tx_bytes":0,"rx_packets":7,"tx_packets":8,"signal_dbm":-128,"signal_avg_dbm":127,"tx_bitrate_mbps":866.7,"rx_bitrate_mbps":0.5,"assoc_at_boottime_ns":18446744073709551615},
{"mac":"02:00:00:00:00:ff","authorized":false,"connected_s":null,"inactive_ms":null,"rx_bytes":null,"tx_bytes":null,"rx_packets":null,"tx_packets":null,"signal_dbm":null,"signal_avg_dbm":null,"tx_bitrate_mbps":null,"rx_bitrate_mbps":null,"assoc_at_boottime_ns":null},
{"mac":"00:00:00:00:00:00","authorized":null,"connected_s":null,"inactive_ms":null,"rx_bytes":null,"tx_bytes":null,"rx_packets":null,"tx_packets":null,"signal_dbm":null,"signal_avg_dbm":null,"tx_bitrate_mbps":null,"rx_bitrate_mbps":null,"assoc_at_boottime_ns":null}
]},
{"ifname":"phy1-ap0","ifindex":9,"bssid":"02:00:00:00:00:09","ssid":"�\n","freq_mhz":2412,"stations":[
]}
]}
"#;

    const EMPTY: &str = r#"no AP interfaces
{"interfaces":[
]}
"#;
}
