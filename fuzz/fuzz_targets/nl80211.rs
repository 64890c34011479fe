//! The nl80211 parser on arbitrary datagrams, read in both byte orders: every public parse
//! function the agent calls on kernel bytes either returns a value or a `ParseError`, never
//! panics, never loops.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wifisess_agent::nl80211::parse::{
    messages, parse_event, parse_family, parse_interface, parse_rate_info, parse_sta_info,
    parse_station, Endian, Payload,
};
use wifisess_agent::station::StationInfo;

fn datagram(data: &[u8], e: Endian) {
    for m in messages(data, e) {
        let Ok(m) = m else { break };
        let Ok(Payload::Genl { cmd, attrs, .. }) = m.payload(e) else {
            continue;
        };
        // The same attributes through every parser: a message of one kind must not crash
        // the parser of another.
        let _ = parse_event(cmd, attrs, e);
        if let Ok(i) = parse_interface(attrs, e) {
            let _ = i.is_ap();
            let _ = i.to_ap_iface();
        }
        let _ = parse_station(attrs, e, "fuzz");
        if let Ok(f) = parse_family(attrs, e) {
            let _ = f.group("mlme");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for e in [Endian::Little, Endian::Big] {
        datagram(data, e);
        // Bare attribute sets too (nested STA_INFO / RATE_INFO payloads).
        let mut st = StationInfo::default();
        let _ = parse_sta_info(data, e, &mut st);
        let _ = parse_rate_info(data, e, "fuzz");
    }
});
