//! The nl80211 and genetlink-controller numbers we use, one enum per attribute set, with the
//! kernel's names (`include/uapi/linux/nl80211.h`, `linux/genetlink.h`) and an `Other` catch-all.
//!
//! Each attribute also declares its payload [`Kind`], which the parser checks before reading and
//! which the tests use to byte-swap captures.

/// How an attribute's payload is laid out (all integers in host byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One byte.
    U8,
    /// Two bytes, host order.
    U16,
    /// Four bytes, host order.
    U32,
    /// Eight bytes, host order.
    U64,
    /// A 6-byte MAC address.
    Mac,
    /// `struct nl80211_sta_flag_update`: two host-order `u32`s (mask, set).
    FlagUpdate,
    /// NUL-terminated text (`NLA_NUL_STRING` / `NLA_STRING`).
    Str,
    /// Opaque bytes (SSID, IEs).
    Bytes,
    /// Nested attributes (of the set named by the parser).
    Nested,
    /// A nested array: attributes whose types are indexes, each nested again.
    NestedArray,
}

macro_rules! attr_set {
    (
        $(#[$meta:meta])*
        $name:ident: $raw:ty, $set:literal {
            $( $(#[$vmeta:meta])* $var:ident = $val:literal => $kname:ident, $kind:ident; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", stringify!($kname), "`")] $var, )*
            /// A value this build does not know (newer kernel); skipped by the parser.
            Other($raw),
        }

        impl $name {
            /// The name of the set, as used in error messages.
            pub const SET: &'static str = $set;

            /// The variant for a raw value.
            pub fn from_raw(v: $raw) -> Self {
                match v {
                    $( $val => Self::$var, )*
                    o => Self::Other(o),
                }
            }

            /// The raw value.
            pub fn raw(self) -> $raw {
                match self {
                    $( Self::$var => $val, )*
                    Self::Other(o) => o,
                }
            }

            /// The kernel's name (`None` for [`Self::Other`]).
            pub fn kernel_name(self) -> Option<&'static str> {
                match self {
                    $( Self::$var => Some(stringify!($kname)), )*
                    Self::Other(_) => None,
                }
            }

            /// The payload layout ([`Kind::Bytes`] for unknown values: opaque).
            pub fn kind(self) -> Kind {
                match self {
                    $( Self::$var => Kind::$kind, )*
                    Self::Other(_) => Kind::Bytes,
                }
            }
        }
    };
}

attr_set! {
    /// nl80211 commands (`enum nl80211_commands`), the genetlink `cmd` byte.
    Cmd: u8, "NL80211_CMD" {
        GetWiphy = 1 => NL80211_CMD_GET_WIPHY, Bytes;
        SetWiphy = 2 => NL80211_CMD_SET_WIPHY, Bytes;
        NewWiphy = 3 => NL80211_CMD_NEW_WIPHY, Bytes;
        DelWiphy = 4 => NL80211_CMD_DEL_WIPHY, Bytes;
        GetInterface = 5 => NL80211_CMD_GET_INTERFACE, Bytes;
        SetInterface = 6 => NL80211_CMD_SET_INTERFACE, Bytes;
        NewInterface = 7 => NL80211_CMD_NEW_INTERFACE, Bytes;
        DelInterface = 8 => NL80211_CMD_DEL_INTERFACE, Bytes;
        StartAp = 15 => NL80211_CMD_START_AP, Bytes;
        StopAp = 16 => NL80211_CMD_STOP_AP, Bytes;
        GetStation = 17 => NL80211_CMD_GET_STATION, Bytes;
        SetStation = 18 => NL80211_CMD_SET_STATION, Bytes;
        NewStation = 19 => NL80211_CMD_NEW_STATION, Bytes;
        DelStation = 20 => NL80211_CMD_DEL_STATION, Bytes;
        Connect = 46 => NL80211_CMD_CONNECT, Bytes;
        Disconnect = 48 => NL80211_CMD_DISCONNECT, Bytes;
        ChSwitchNotify = 88 => NL80211_CMD_CH_SWITCH_NOTIFY, Bytes;
    }
}

attr_set! {
    /// Top-level nl80211 attributes (`enum nl80211_attrs`) that we read or send.
    Attr: u16, "NL80211_ATTR" {
        Wiphy = 1 => NL80211_ATTR_WIPHY, U32;
        Ifindex = 3 => NL80211_ATTR_IFINDEX, U32;
        Ifname = 4 => NL80211_ATTR_IFNAME, Str;
        Iftype = 5 => NL80211_ATTR_IFTYPE, U32;
        Mac = 6 => NL80211_ATTR_MAC, Mac;
        StaInfo = 21 => NL80211_ATTR_STA_INFO, Nested;
        WiphyFreq = 38 => NL80211_ATTR_WIPHY_FREQ, U32;
        Ie = 42 => NL80211_ATTR_IE, Bytes;
        Generation = 46 => NL80211_ATTR_GENERATION, U32;
        Ssid = 52 => NL80211_ATTR_SSID, Bytes;
        ReasonCode = 54 => NL80211_ATTR_REASON_CODE, U16;
        Use4addr = 83 => NL80211_ATTR_4ADDR, U8;
        Wdev = 153 => NL80211_ATTR_WDEV, U64;
        ChannelWidth = 159 => NL80211_ATTR_CHANNEL_WIDTH, U32;
        CenterFreq1 = 160 => NL80211_ATTR_CENTER_FREQ1, U32;
    }
}

attr_set! {
    /// Station information nested in `NL80211_ATTR_STA_INFO` (`enum nl80211_sta_info`).
    StaInfo: u16, "NL80211_STA_INFO" {
        InactiveTime = 1 => NL80211_STA_INFO_INACTIVE_TIME, U32;
        RxBytes = 2 => NL80211_STA_INFO_RX_BYTES, U32;
        TxBytes = 3 => NL80211_STA_INFO_TX_BYTES, U32;
        Signal = 7 => NL80211_STA_INFO_SIGNAL, U8;
        TxBitrate = 8 => NL80211_STA_INFO_TX_BITRATE, Nested;
        RxPackets = 9 => NL80211_STA_INFO_RX_PACKETS, U32;
        TxPackets = 10 => NL80211_STA_INFO_TX_PACKETS, U32;
        TxRetries = 11 => NL80211_STA_INFO_TX_RETRIES, U32;
        TxFailed = 12 => NL80211_STA_INFO_TX_FAILED, U32;
        SignalAvg = 13 => NL80211_STA_INFO_SIGNAL_AVG, U8;
        RxBitrate = 14 => NL80211_STA_INFO_RX_BITRATE, Nested;
        BssParam = 15 => NL80211_STA_INFO_BSS_PARAM, Nested;
        ConnectedTime = 16 => NL80211_STA_INFO_CONNECTED_TIME, U32;
        StaFlags = 17 => NL80211_STA_INFO_STA_FLAGS, FlagUpdate;
        BeaconLoss = 18 => NL80211_STA_INFO_BEACON_LOSS, U32;
        RxBytes64 = 23 => NL80211_STA_INFO_RX_BYTES64, U64;
        TxBytes64 = 24 => NL80211_STA_INFO_TX_BYTES64, U64;
        ChainSignal = 25 => NL80211_STA_INFO_CHAIN_SIGNAL, NestedArray;
        ChainSignalAvg = 26 => NL80211_STA_INFO_CHAIN_SIGNAL_AVG, NestedArray;
        ExpectedThroughput = 27 => NL80211_STA_INFO_EXPECTED_THROUGHPUT, U32;
        RxDropMisc = 28 => NL80211_STA_INFO_RX_DROP_MISC, U64;
        BeaconRx = 29 => NL80211_STA_INFO_BEACON_RX, U64;
        BeaconSignalAvg = 30 => NL80211_STA_INFO_BEACON_SIGNAL_AVG, U8;
        TidStats = 31 => NL80211_STA_INFO_TID_STATS, NestedArray;
        RxDuration = 32 => NL80211_STA_INFO_RX_DURATION, U64;
        Pad = 33 => NL80211_STA_INFO_PAD, Bytes;
        AckSignal = 34 => NL80211_STA_INFO_ACK_SIGNAL, U8;
        AckSignalAvg = 35 => NL80211_STA_INFO_ACK_SIGNAL_AVG, U8;
        RxMpdus = 36 => NL80211_STA_INFO_RX_MPDUS, U32;
        FcsErrorCount = 37 => NL80211_STA_INFO_FCS_ERROR_COUNT, U32;
        TxDuration = 39 => NL80211_STA_INFO_TX_DURATION, U64;
        AirtimeWeight = 40 => NL80211_STA_INFO_AIRTIME_WEIGHT, U16;
        AssocAtBoottime = 42 => NL80211_STA_INFO_ASSOC_AT_BOOTTIME, U64;
    }
}

attr_set! {
    /// Bit-rate information nested in `STA_INFO_TX_BITRATE` / `RX_BITRATE`
    /// (`enum nl80211_rate_info`).
    RateInfo: u16, "NL80211_RATE_INFO" {
        Bitrate = 1 => NL80211_RATE_INFO_BITRATE, U16;
        Mcs = 2 => NL80211_RATE_INFO_MCS, U8;
        Width40Mhz = 3 => NL80211_RATE_INFO_40_MHZ_WIDTH, Bytes;
        ShortGi = 4 => NL80211_RATE_INFO_SHORT_GI, Bytes;
        Bitrate32 = 5 => NL80211_RATE_INFO_BITRATE32, U32;
        VhtMcs = 6 => NL80211_RATE_INFO_VHT_MCS, U8;
        VhtNss = 7 => NL80211_RATE_INFO_VHT_NSS, U8;
        Width80Mhz = 8 => NL80211_RATE_INFO_80_MHZ_WIDTH, Bytes;
        Width80p80Mhz = 9 => NL80211_RATE_INFO_80P80_MHZ_WIDTH, Bytes;
        Width160Mhz = 10 => NL80211_RATE_INFO_160_MHZ_WIDTH, Bytes;
        HeMcs = 13 => NL80211_RATE_INFO_HE_MCS, U8;
        HeNss = 14 => NL80211_RATE_INFO_HE_NSS, U8;
        HeGi = 15 => NL80211_RATE_INFO_HE_GI, U8;
        HeDcm = 16 => NL80211_RATE_INFO_HE_DCM, U8;
        HeRuAlloc = 17 => NL80211_RATE_INFO_HE_RU_ALLOC, U8;
    }
}

attr_set! {
    /// Generic netlink controller attributes (`enum CTRL_ATTR_*`, `linux/genetlink.h`).
    CtrlAttr: u16, "CTRL_ATTR" {
        FamilyId = 1 => CTRL_ATTR_FAMILY_ID, U16;
        FamilyName = 2 => CTRL_ATTR_FAMILY_NAME, Str;
        Version = 3 => CTRL_ATTR_VERSION, U32;
        HdrSize = 4 => CTRL_ATTR_HDRSIZE, U32;
        MaxAttr = 5 => CTRL_ATTR_MAXATTR, U32;
        Ops = 6 => CTRL_ATTR_OPS, NestedArray;
        McastGroups = 7 => CTRL_ATTR_MCAST_GROUPS, NestedArray;
    }
}

attr_set! {
    /// One multicast group inside `CTRL_ATTR_MCAST_GROUPS` (`CTRL_ATTR_MCAST_GRP_*`).
    CtrlMcastGrp: u16, "CTRL_ATTR_MCAST_GRP" {
        Name = 1 => CTRL_ATTR_MCAST_GRP_NAME, Str;
        Id = 2 => CTRL_ATTR_MCAST_GRP_ID, U32;
    }
}

/// `NL80211_STA_FLAG_AUTHORIZED`: bit number in `nl80211_sta_flag_update.{mask,set}`.
pub const NL80211_STA_FLAG_AUTHORIZED: u32 = 1;
/// `NL80211_STA_FLAG_ASSOCIATED`.
pub const NL80211_STA_FLAG_ASSOCIATED: u32 = 7;
/// `NL80211_IFTYPE_AP`.
pub const NL80211_IFTYPE_AP: u32 = 3;
/// `NL80211_IFTYPE_AP_VLAN`.
pub const NL80211_IFTYPE_AP_VLAN: u32 = 4;
/// The genetlink family name of nl80211.
pub const NL80211_GENL_NAME: &str = "nl80211";
/// Multicast group carrying station and AP events.
pub const NL80211_MULTICAST_GROUP_MLME: &str = "mlme";
/// Multicast group carrying interface add/remove/change events.
pub const NL80211_MULTICAST_GROUP_CONFIG: &str = "config";

/// `GENL_ID_CTRL`: the fixed netlink type of the genetlink controller.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_CMD_NEWFAMILY` (the controller's answer).
pub const CTRL_CMD_NEWFAMILY: u8 = 1;

/// `NLMSG_NOOP`.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR` (also the ACK, with error 0).
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 2;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 4;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a change; repeat it.
pub const NLM_F_DUMP_INTR: u16 = 16;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLA_F_NESTED`: flag bit in `nla_type`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`: flag bit in `nla_type`.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// `NLA_TYPE_MASK`.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
