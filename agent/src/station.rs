//! What the kernel tells us about access-point interfaces and their stations, in plain types
//! shared by the nl80211 reader (which fills them) and the session tracker (which consumes them).

use heapless::{String as HString, Vec as HVec};
use wifisess_wire::MacAddr;

/// An access-point interface (nl80211 iftype AP or AP_VLAN) of this device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Kernel interface index; changes when the interface is recreated.
    pub ifindex: u32,
    /// Interface name, e.g. `phy0-ap0` (at most 15 bytes, the kernel's IFNAMSIZ − 1).
    pub ifname: HString<15>,
    /// The interface's MAC address, which is the BSSID it beacons.
    pub bssid: MacAddr,
    /// SSID bytes (empty if the kernel did not report one yet).
    pub ssid: HVec<u8, 32>,
    /// Operating frequency, MHz (0 if unknown).
    pub freq_mhz: u32,
}

/// One station (associated client) as reported by `GET_STATION`, `NEW_STATION` or
/// `DEL_STATION`. Every field is optional because the kernel omits what it does not know
/// (and `NEW_STATION` carries little).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationInfo {
    /// The client's MAC address.
    pub mac: MacAddr,
    /// `NL80211_STA_FLAG_AUTHORIZED` from `STA_INFO_STA_FLAGS`, when the mask includes it.
    pub authorized: Option<bool>,
    /// `STA_INFO_CONNECTED_TIME`: seconds since association.
    pub connected_s: Option<u32>,
    /// `STA_INFO_ASSOC_AT_BOOTTIME`: association time, ns of CLOCK_BOOTTIME.
    pub assoc_at_boottime_ns: Option<u64>,
    /// `STA_INFO_INACTIVE_TIME`: ms since the last frame from or to the client.
    pub inactive_ms: Option<u32>,
    /// `STA_INFO_RX_BYTES64` (or `RX_BYTES`): bytes received from the client.
    pub rx_bytes: Option<u64>,
    /// `STA_INFO_TX_BYTES64` (or `TX_BYTES`): bytes sent to the client.
    pub tx_bytes: Option<u64>,
    /// `STA_INFO_RX_PACKETS`.
    pub rx_packets: Option<u32>,
    /// `STA_INFO_TX_PACKETS`.
    pub tx_packets: Option<u32>,
    /// `STA_INFO_SIGNAL`, dBm.
    pub signal_dbm: Option<i8>,
    /// `STA_INFO_SIGNAL_AVG`, dBm.
    pub signal_avg_dbm: Option<i8>,
    /// `STA_INFO_TX_BITRATE` (`RATE_INFO_BITRATE32`, else `RATE_INFO_BITRATE`), 100 kbit/s.
    pub tx_bitrate_100kbps: Option<u32>,
    /// `STA_INFO_RX_BITRATE`, 100 kbit/s.
    pub rx_bitrate_100kbps: Option<u32>,
}
