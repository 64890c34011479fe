//! Bytes → typed nl80211 messages, no I/O. The byte order is a parameter ([`Endian`]): the
//! socket passes [`Endian::NATIVE`], tests also run big-endian captures on a little-endian host.
//!
//! Hostile input is an error that names the attribute (or the header) at fault, never a panic.
//! Unknown attributes are skipped; a known attribute with the wrong length is an error.

use core::fmt;

use heapless::{String as HString, Vec as HVec};
use wifisess_wire::MacAddr;

use super::consts::*;
use crate::station::{Iface, StationInfo};

/// Byte order of the integers in a netlink message (always the host's on a live socket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// Little-endian (x86, ARM, most MIPS-el).
    Little,
    /// Big-endian (MIPS `mips_24kc`, s390x).
    Big,
}

impl Endian {
    /// The byte order of this build's target: what the kernel uses on this machine.
    pub const NATIVE: Endian = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };

    /// Reads a `u16`.
    pub fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    /// Reads a `u32`.
    pub fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// Reads a `u64`.
    pub fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }

    /// Encodes a `u16`.
    pub fn put_u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Encodes a `u32`.
    pub fn put_u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}

/// Names an attribute in an error: its kernel name, or its set and number when unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrName {
    /// The attribute set, e.g. `NL80211_STA_INFO`.
    pub set: &'static str,
    /// The attribute number.
    pub ty: u16,
    /// The kernel name, when known.
    pub name: Option<&'static str>,
}

impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "{} attribute {}", self.set, self.ty),
        }
    }
}

macro_rules! impl_attr_name {
    ($($t:ty),*) => {$(
        impl From<$t> for AttrName {
            fn from(a: $t) -> AttrName {
                AttrName { set: <$t>::SET, ty: a.raw(), name: a.kernel_name() }
            }
        }
    )*};
}
impl_attr_name!(Attr, StaInfo, RateInfo, CtrlAttr, CtrlMcastGrp);

/// The length an attribute should have had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Exactly this many bytes.
    Exactly(usize),
    /// At most this many bytes.
    AtMost(usize),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Exactly(n) => write!(f, "{n} bytes"),
            Expected::AtMost(n) => write!(f, "at most {n} bytes"),
        }
    }
}

/// What was wrong with a header (of a message or an attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The length field is smaller than the header itself.
    TooShort {
        /// The length field.
        len: usize,
    },
    /// The length field claims more bytes than the buffer holds.
    Overflows {
        /// The length field.
        len: usize,
        /// Bytes left in the buffer.
        left: usize,
    },
    /// Fewer bytes than one header are left at the end.
    Trailing {
        /// Bytes left.
        left: usize,
    },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderProblem::TooShort { len } => {
                write!(f, "length {len} is shorter than its header")
            }
            HeaderProblem::Overflows { len, left } => {
                write!(f, "length {len} overflows the {left} bytes left")
            }
            HeaderProblem::Trailing { left } => write!(f, "{left} trailing bytes"),
        }
    }
}

/// `Debug` is the `Display` line (see `socket::Error`'s `Debug`).
impl core::fmt::Debug for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// Why a message could not be parsed. Every variant names what was wrong and where.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A netlink message header (`struct nlmsghdr`) was malformed.
    #[error("netlink message at offset {offset}: {problem}")]
    MsgHeader {
        /// Offset of the header in the datagram.
        offset: usize,
        /// What was wrong.
        problem: HeaderProblem,
    },
    /// A message body was shorter than its fixed header (`genlmsghdr`, `nlmsgerr`).
    #[error("{what}: expected at least {need} bytes, got {got}")]
    ShortBody {
        /// Which header, e.g. `genlmsghdr`.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// An attribute header (`struct nlattr`) inside `within` was malformed.
    #[error("{within}: attribute at offset {offset}: {problem}")]
    AttrHeader {
        /// The enclosing attribute or message, e.g. `NL80211_ATTR_STA_INFO`.
        within: &'static str,
        /// Offset of the attribute header within its parent's payload.
        offset: usize,
        /// What was wrong.
        problem: HeaderProblem,
    },
    /// A known attribute had the wrong payload length.
    #[error("{attr}: expected {expected}, got {got}")]
    AttrLength {
        /// The attribute.
        attr: AttrName,
        /// The length it must have.
        expected: Expected,
        /// The length it had.
        got: usize,
    },
    /// A known attribute had a value that is not allowed (e.g. an interface name that is not
    /// UTF-8).
    #[error("{attr}: {reason}")]
    AttrValue {
        /// The attribute.
        attr: AttrName,
        /// What was wrong.
        reason: &'static str,
    },
    /// A message lacked an attribute it must carry.
    #[error("{message}: missing {attr}")]
    Missing {
        /// The message, e.g. `NL80211_CMD_NEW_STATION`.
        message: &'static str,
        /// The attribute's kernel name.
        attr: &'static str,
    },
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// One attribute: its type (flags masked off) and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAttr<'a> {
    /// `nla_type & NLA_TYPE_MASK`.
    pub ty: u16,
    /// Offset of this attribute's header within the parent payload.
    pub offset: usize,
    /// The payload (without header or padding).
    pub payload: &'a [u8],
}

/// Iterates the attributes of a payload; stops after the first error.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    endian: Endian,
    within: &'static str,
    failed: bool,
}

impl<'a> Attrs<'a> {
    /// Attributes of `buf`, which is the payload of `within` (named in errors).
    pub fn new(buf: &'a [u8], endian: Endian, within: &'static str) -> Self {
        Attrs {
            buf,
            pos: 0,
            endian,
            within,
            failed: false,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<RawAttr<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let left = self.buf.len() - self.pos;
        let offset = self.pos;
        let err = |problem| ParseError::AttrHeader {
            within: self.within,
            offset,
            problem,
        };
        let hdr = match self.buf.get(self.pos..self.pos + 4) {
            Some(h) => h,
            None => {
                self.failed = true;
                return Some(Err(err(HeaderProblem::Trailing { left })));
            }
        };
        let len = usize::from(self.endian.u16([hdr[0], hdr[1]]));
        let ty = self.endian.u16([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        if len < 4 {
            self.failed = true;
            return Some(Err(err(HeaderProblem::TooShort { len })));
        }
        if len > left {
            self.failed = true;
            return Some(Err(err(HeaderProblem::Overflows { len, left })));
        }
        let payload = &self.buf[self.pos + 4..self.pos + len];
        self.pos = self.pos.saturating_add(align4(len)).min(self.buf.len());
        Some(Ok(RawAttr {
            ty,
            offset,
            payload,
        }))
    }
}

fn fixed<const N: usize>(attr: AttrName, p: &[u8]) -> Result<[u8; N], ParseError> {
    <[u8; N]>::try_from(p).map_err(|_| ParseError::AttrLength {
        attr,
        expected: Expected::Exactly(N),
        got: p.len(),
    })
}

/// Reads a one-byte attribute.
///
/// # Errors
/// [`ParseError::AttrLength`] naming `attr` if the payload is not one byte.
pub fn get_u8(attr: impl Into<AttrName>, p: &[u8]) -> Result<u8, ParseError> {
    fixed::<1>(attr.into(), p).map(|b| b[0])
}

/// Reads a `u16` attribute in `e` byte order.
///
/// # Errors
/// [`ParseError::AttrLength`] naming `attr` if the payload is not 2 bytes.
pub fn get_u16(e: Endian, attr: impl Into<AttrName>, p: &[u8]) -> Result<u16, ParseError> {
    fixed::<2>(attr.into(), p).map(|b| e.u16(b))
}

/// Reads a `u32` attribute in `e` byte order.
///
/// # Errors
/// [`ParseError::AttrLength`] naming `attr` if the payload is not 4 bytes.
pub fn get_u32(e: Endian, attr: impl Into<AttrName>, p: &[u8]) -> Result<u32, ParseError> {
    fixed::<4>(attr.into(), p).map(|b| e.u32(b))
}

/// Reads a `u64` attribute in `e` byte order.
///
/// # Errors
/// [`ParseError::AttrLength`] naming `attr` if the payload is not 8 bytes.
pub fn get_u64(e: Endian, attr: impl Into<AttrName>, p: &[u8]) -> Result<u64, ParseError> {
    fixed::<8>(attr.into(), p).map(|b| e.u64(b))
}

fn get_mac(attr: impl Into<AttrName>, p: &[u8]) -> Result<MacAddr, ParseError> {
    fixed::<6>(attr.into(), p).map(MacAddr)
}

/// A NUL-terminated string attribute (the NUL and anything after it dropped).
fn get_str(attr: impl Into<AttrName>, p: &[u8]) -> Result<&str, ParseError> {
    let attr = attr.into();
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    core::str::from_utf8(&p[..end]).map_err(|_| ParseError::AttrValue {
        attr,
        reason: "not UTF-8",
    })
}

/// One netlink message of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: a control type (`NLMSG_*`) or the genetlink family id.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`: 0 for multicast events, the request's sequence number for answers.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
    /// Everything after the 16-byte header.
    pub body: &'a [u8],
}

/// What a netlink message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `NLMSG_NOOP` or `NLMSG_OVERRUN`: ignored.
    Noop,
    /// `NLMSG_DONE`: end of a dump (with the dump's error code, 0 when fine).
    Done {
        /// 0, or a negative errno if the dump failed.
        error: i32,
    },
    /// `NLMSG_ERROR`: an error (negative errno) or, with 0, an ACK.
    Error {
        /// 0 for an ACK, else a negative errno.
        error: i32,
    },
    /// A generic netlink message.
    Genl {
        /// `genlmsghdr.cmd`.
        cmd: u8,
        /// `genlmsghdr.version`.
        version: u8,
        /// The attributes after the 4-byte genetlink header.
        attrs: &'a [u8],
    },
}

impl<'a> NlMsg<'a> {
    /// Classifies the message by its type.
    ///
    /// # Errors
    /// [`ParseError::ShortBody`] if the body is shorter than the header its type implies.
    pub fn payload(&self, e: Endian) -> Result<Payload<'a>, ParseError> {
        let code = |what| {
            let b = self.body.get(..4).ok_or(ParseError::ShortBody {
                what,
                need: 4,
                got: self.body.len(),
            })?;
            Ok::<i32, ParseError>(e.u32([b[0], b[1], b[2], b[3]]) as i32)
        };
        match self.ty {
            NLMSG_NOOP | NLMSG_OVERRUN => Ok(Payload::Noop),
            NLMSG_DONE => Ok(Payload::Done {
                // Old kernels send NLMSG_DONE without a body: treat as success.
                error: if self.body.is_empty() {
                    0
                } else {
                    code("NLMSG_DONE")?
                },
            }),
            NLMSG_ERROR => Ok(Payload::Error {
                error: code("nlmsgerr")?,
            }),
            _ => {
                if self.body.len() < 4 {
                    return Err(ParseError::ShortBody {
                        what: "genlmsghdr",
                        need: 4,
                        got: self.body.len(),
                    });
                }
                Ok(Payload::Genl {
                    cmd: self.body[0],
                    version: self.body[1],
                    attrs: &self.body[4..],
                })
            }
        }
    }
}

/// Iterates the netlink messages of one datagram; stops after the first error.
#[derive(Clone, Debug)]
pub struct NlMsgs<'a> {
    buf: &'a [u8],
    pos: usize,
    endian: Endian,
    failed: bool,
}

/// The messages in `datagram` (what one `recv` returned).
pub fn messages(datagram: &[u8], endian: Endian) -> NlMsgs<'_> {
    NlMsgs {
        buf: datagram,
        pos: 0,
        endian,
        failed: false,
    }
}

impl<'a> Iterator for NlMsgs<'a> {
    type Item = Result<NlMsg<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let left = self.buf.len() - self.pos;
        let offset = self.pos;
        let err = |problem| ParseError::MsgHeader { offset, problem };
        let Some(h) = self.buf.get(self.pos..self.pos + 16) else {
            self.failed = true;
            return Some(Err(err(HeaderProblem::Trailing { left })));
        };
        let e = self.endian;
        let len = e.u32([h[0], h[1], h[2], h[3]]) as usize;
        if len < 16 {
            self.failed = true;
            return Some(Err(err(HeaderProblem::TooShort { len })));
        }
        if len > left {
            self.failed = true;
            return Some(Err(err(HeaderProblem::Overflows { len, left })));
        }
        let msg = NlMsg {
            ty: e.u16([h[4], h[5]]),
            flags: e.u16([h[6], h[7]]),
            seq: e.u32([h[8], h[9], h[10], h[11]]),
            pid: e.u32([h[12], h[13], h[14], h[15]]),
            body: &self.buf[self.pos + 16..self.pos + len],
        };
        self.pos = self.pos.saturating_add(align4(len)).min(self.buf.len());
        Some(Ok(msg))
    }
}

/// A generic netlink family as the controller describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Family {
    /// The family's netlink message type.
    pub id: u16,
    /// Its name (`nl80211`).
    pub name: String,
    /// Multicast groups: (name, id).
    pub groups: Vec<(String, u32)>,
}

impl Family {
    /// The id of the multicast group `name`.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
    }
}

/// Parses a `CTRL_CMD_NEWFAMILY` answer's attributes.
///
/// # Errors
/// A [`ParseError`] naming the malformed `CTRL_ATTR_*`, or [`ParseError::Missing`] without
/// `CTRL_ATTR_FAMILY_ID`.
pub fn parse_family(attrs: &[u8], e: Endian) -> Result<Family, ParseError> {
    let mut fam = Family::default();
    let mut id = None;
    for a in Attrs::new(attrs, e, "CTRL_CMD_NEWFAMILY") {
        let a = a?;
        match CtrlAttr::from_raw(a.ty) {
            CtrlAttr::FamilyId => id = Some(get_u16(e, CtrlAttr::FamilyId, a.payload)?),
            CtrlAttr::FamilyName => fam.name = get_str(CtrlAttr::FamilyName, a.payload)?.to_owned(),
            CtrlAttr::McastGroups => {
                for g in Attrs::new(a.payload, e, "CTRL_ATTR_MCAST_GROUPS") {
                    let g = g?;
                    let (mut name, mut gid) = (None, None);
                    for ga in Attrs::new(g.payload, e, "CTRL_ATTR_MCAST_GROUPS entry") {
                        let ga = ga?;
                        match CtrlMcastGrp::from_raw(ga.ty) {
                            CtrlMcastGrp::Name => {
                                name = Some(get_str(CtrlMcastGrp::Name, ga.payload)?.to_owned())
                            }
                            CtrlMcastGrp::Id => {
                                gid = Some(get_u32(e, CtrlMcastGrp::Id, ga.payload)?)
                            }
                            CtrlMcastGrp::Other(_) => {}
                        }
                    }
                    if let (Some(n), Some(i)) = (name, gid) {
                        fam.groups.push((n, i));
                    }
                }
            }
            _ => {}
        }
    }
    fam.id = id.ok_or(ParseError::Missing {
        message: "CTRL_CMD_NEWFAMILY",
        attr: "CTRL_ATTR_FAMILY_ID",
    })?;
    Ok(fam)
}

/// The interface attributes of a `NEW_INTERFACE` message (a `GET_INTERFACE` answer or event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceMsg {
    /// `NL80211_ATTR_IFINDEX`.
    pub ifindex: Option<u32>,
    /// `NL80211_ATTR_IFNAME`.
    pub ifname: Option<HString<15>>,
    /// `NL80211_ATTR_IFTYPE` (`NL80211_IFTYPE_*`).
    pub iftype: Option<u32>,
    /// `NL80211_ATTR_MAC`: the interface address (the BSSID of an AP).
    pub mac: Option<MacAddr>,
    /// `NL80211_ATTR_SSID` (present while an AP is beaconing).
    pub ssid: Option<HVec<u8, 32>>,
    /// `NL80211_ATTR_WIPHY_FREQ`, MHz.
    pub freq_mhz: Option<u32>,
    /// `NL80211_ATTR_WIPHY`: the radio.
    pub wiphy: Option<u32>,
}

impl InterfaceMsg {
    /// True for AP and AP_VLAN interfaces, the ones that have client stations.
    pub fn is_ap(&self) -> bool {
        matches!(
            self.iftype,
            Some(NL80211_IFTYPE_AP | NL80211_IFTYPE_AP_VLAN)
        )
    }

    /// The tracker's view of this interface, if it is an AP with an index and a name.
    pub fn to_ap_iface(&self) -> Option<Iface> {
        if !self.is_ap() {
            return None;
        }
        Some(Iface {
            ifindex: self.ifindex?,
            ifname: self.ifname.clone()?,
            bssid: self.mac.unwrap_or_default(),
            ssid: self.ssid.clone().unwrap_or_default(),
            freq_mhz: self.freq_mhz.unwrap_or(0),
        })
    }
}

/// Parses the attributes of an interface message.
///
/// # Errors
/// A [`ParseError`] naming the malformed `NL80211_ATTR_*`.
pub fn parse_interface(attrs: &[u8], e: Endian) -> Result<InterfaceMsg, ParseError> {
    let mut m = InterfaceMsg::default();
    for a in Attrs::new(attrs, e, "NL80211_CMD_NEW_INTERFACE") {
        let a = a?;
        let p = a.payload;
        match Attr::from_raw(a.ty) {
            Attr::Ifindex => m.ifindex = Some(get_u32(e, Attr::Ifindex, p)?),
            Attr::Ifname => {
                let s = get_str(Attr::Ifname, p)?;
                let mut h = HString::new();
                h.push_str(s).map_err(|_| ParseError::AttrLength {
                    attr: Attr::Ifname.into(),
                    expected: Expected::AtMost(16),
                    got: p.len(),
                })?;
                m.ifname = Some(h);
            }
            Attr::Iftype => m.iftype = Some(get_u32(e, Attr::Iftype, p)?),
            Attr::Mac => m.mac = Some(get_mac(Attr::Mac, p)?),
            Attr::Ssid => {
                m.ssid = Some(HVec::from_slice(p).map_err(|_| ParseError::AttrLength {
                    attr: Attr::Ssid.into(),
                    expected: Expected::AtMost(32),
                    got: p.len(),
                })?)
            }
            Attr::WiphyFreq => m.freq_mhz = Some(get_u32(e, Attr::WiphyFreq, p)?),
            Attr::Wiphy => m.wiphy = Some(get_u32(e, Attr::Wiphy, p)?),
            _ => {}
        }
    }
    Ok(m)
}

/// A station message (`GET_STATION` answer, `NEW_STATION` / `DEL_STATION` event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationMsg {
    /// The AP interface the station belongs to.
    pub ifindex: u32,
    /// What the message said about the station.
    pub station: StationInfo,
}

/// Parses the attributes of a station message; `message` names it in errors.
///
/// # Errors
/// A [`ParseError`] naming the malformed attribute, or [`ParseError::Missing`] without
/// `NL80211_ATTR_IFINDEX` or `NL80211_ATTR_MAC`.
pub fn parse_station(
    attrs: &[u8],
    e: Endian,
    message: &'static str,
) -> Result<StationMsg, ParseError> {
    let mut ifindex = None;
    let mut mac = None;
    let mut st = StationInfo::default();
    for a in Attrs::new(attrs, e, message) {
        let a = a?;
        match Attr::from_raw(a.ty) {
            Attr::Ifindex => ifindex = Some(get_u32(e, Attr::Ifindex, a.payload)?),
            Attr::Mac => mac = Some(get_mac(Attr::Mac, a.payload)?),
            Attr::StaInfo => parse_sta_info(a.payload, e, &mut st)?,
            _ => {}
        }
    }
    st.mac = mac.ok_or(ParseError::Missing {
        message,
        attr: "NL80211_ATTR_MAC",
    })?;
    Ok(StationMsg {
        ifindex: ifindex.ok_or(ParseError::Missing {
            message,
            attr: "NL80211_ATTR_IFINDEX",
        })?,
        station: st,
    })
}

/// Parses `NL80211_ATTR_STA_INFO` into `st` (leaving `st.mac` alone).
///
/// # Errors
/// A [`ParseError`] naming the malformed `NL80211_STA_INFO_*` or `NL80211_RATE_INFO_*`.
pub fn parse_sta_info(p: &[u8], e: Endian, st: &mut StationInfo) -> Result<(), ParseError> {
    let (mut rx32, mut tx32) = (None, None);
    for a in Attrs::new(p, e, "NL80211_ATTR_STA_INFO") {
        let a = a?;
        let p = a.payload;
        let k = StaInfo::from_raw(a.ty);
        match k {
            StaInfo::InactiveTime => st.inactive_ms = Some(get_u32(e, k, p)?),
            StaInfo::RxBytes => rx32 = Some(get_u32(e, k, p)?),
            StaInfo::TxBytes => tx32 = Some(get_u32(e, k, p)?),
            StaInfo::RxBytes64 => st.rx_bytes = Some(get_u64(e, k, p)?),
            StaInfo::TxBytes64 => st.tx_bytes = Some(get_u64(e, k, p)?),
            StaInfo::RxPackets => st.rx_packets = Some(get_u32(e, k, p)?),
            StaInfo::TxPackets => st.tx_packets = Some(get_u32(e, k, p)?),
            StaInfo::Signal => st.signal_dbm = Some(get_u8(k, p)? as i8),
            StaInfo::SignalAvg => st.signal_avg_dbm = Some(get_u8(k, p)? as i8),
            StaInfo::ConnectedTime => st.connected_s = Some(get_u32(e, k, p)?),
            StaInfo::AssocAtBoottime => st.assoc_at_boottime_ns = Some(get_u64(e, k, p)?),
            StaInfo::StaFlags => {
                let b = fixed::<8>(k.into(), p)?;
                let mask = e.u32([b[0], b[1], b[2], b[3]]);
                let set = e.u32([b[4], b[5], b[6], b[7]]);
                let bit = 1u32 << NL80211_STA_FLAG_AUTHORIZED;
                if mask & bit != 0 {
                    st.authorized = Some(set & bit != 0);
                }
            }
            StaInfo::TxBitrate => {
                st.tx_bitrate_100kbps = parse_rate_info(p, e, "NL80211_STA_INFO_TX_BITRATE")?
            }
            StaInfo::RxBitrate => {
                st.rx_bitrate_100kbps = parse_rate_info(p, e, "NL80211_STA_INFO_RX_BITRATE")?
            }
            _ => {}
        }
    }
    if st.rx_bytes.is_none() {
        st.rx_bytes = rx32.map(u64::from);
    }
    if st.tx_bytes.is_none() {
        st.tx_bytes = tx32.map(u64::from);
    }
    Ok(())
}

/// Parses a rate-info nest into a bit rate in 100 kbit/s (`BITRATE32`, else `BITRATE`).
///
/// # Errors
/// A [`ParseError`] naming the malformed `NL80211_RATE_INFO_*`.
pub fn parse_rate_info(
    p: &[u8],
    e: Endian,
    within: &'static str,
) -> Result<Option<u32>, ParseError> {
    let (mut r16, mut r32) = (None, None);
    for a in Attrs::new(p, e, within) {
        let a = a?;
        match RateInfo::from_raw(a.ty) {
            RateInfo::Bitrate => r16 = Some(get_u16(e, RateInfo::Bitrate, a.payload)?),
            RateInfo::Bitrate32 => r32 = Some(get_u32(e, RateInfo::Bitrate32, a.payload)?),
            _ => {}
        }
    }
    Ok(r32.or(r16.map(u32::from)))
}

/// A multicast nl80211 event, as the agent cares about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `NL80211_CMD_NEW_STATION`: a client associated.
    NewStation(StationMsg),
    /// `NL80211_CMD_DEL_STATION`: a client left (with final counters when the kernel sends them).
    DelStation(StationMsg),
    /// An interface appeared, disappeared or changed mode, or an AP started or stopped
    /// (`NEW/DEL/SET_INTERFACE`, `START_AP`, `STOP_AP`, `CH_SWITCH_NOTIFY`): re-discover.
    InterfaceChanged {
        /// Which command.
        cmd: Cmd,
        /// `NL80211_ATTR_IFINDEX`, when present.
        ifindex: Option<u32>,
        /// `NL80211_ATTR_IFTYPE`, when present (interface messages carry it).
        iftype: Option<u32>,
    },
    /// Any other nl80211 command: ignored.
    Other(Cmd),
}

impl Event {
    /// The interface this event says stopped serving clients, if it says so: `STOP_AP`
    /// (the kernel stopped the AP: link down, radio off), `DEL_INTERFACE`, or a
    /// `SET_INTERFACE` to a type other than AP / AP_VLAN (hostapd leaving the interface).
    pub fn ap_down(&self) -> Option<u32> {
        match *self {
            Event::InterfaceChanged {
                cmd: Cmd::StopAp | Cmd::DelInterface,
                ifindex,
                ..
            } => ifindex,
            Event::InterfaceChanged {
                cmd: Cmd::SetInterface,
                ifindex,
                iftype: Some(t),
            } if t != NL80211_IFTYPE_AP && t != NL80211_IFTYPE_AP_VLAN => ifindex,
            _ => None,
        }
    }
}

/// Parses one nl80211 event (genetlink `cmd` and attributes).
///
/// # Errors
/// A [`ParseError`] naming the malformed attribute.
pub fn parse_event(cmd: u8, attrs: &[u8], e: Endian) -> Result<Event, ParseError> {
    let cmd = Cmd::from_raw(cmd);
    Ok(match cmd {
        Cmd::NewStation => Event::NewStation(parse_station(attrs, e, "NL80211_CMD_NEW_STATION")?),
        Cmd::DelStation => Event::DelStation(parse_station(attrs, e, "NL80211_CMD_DEL_STATION")?),
        Cmd::NewInterface
        | Cmd::DelInterface
        | Cmd::SetInterface
        | Cmd::StartAp
        | Cmd::StopAp
        | Cmd::ChSwitchNotify => {
            let (mut ifindex, mut iftype) = (None, None);
            for a in Attrs::new(attrs, e, cmd.kernel_name().unwrap_or("NL80211_CMD")) {
                let a = a?;
                match Attr::from_raw(a.ty) {
                    Attr::Ifindex => ifindex = Some(get_u32(e, Attr::Ifindex, a.payload)?),
                    Attr::Iftype => iftype = Some(get_u32(e, Attr::Iftype, a.payload)?),
                    _ => {}
                }
            }
            Event::InterfaceChanged {
                cmd,
                ifindex,
                iftype,
            }
        }
        other => Event::Other(other),
    })
}

/// Encodes a request: `nlmsghdr` + `genlmsghdr` + attributes `(type, payload)`, each padded.
pub fn encode_request(
    e: Endian,
    nl_type: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out.extend_from_slice(&[cmd, version, 0, 0]);
    for (ty, p) in attrs {
        let len = 4 + p.len();
        out.extend_from_slice(&e.put_u16(len as u16));
        out.extend_from_slice(&e.put_u16(*ty));
        out.extend_from_slice(p);
        out.resize(align4(out.len()), 0);
    }
    let total = out.len() as u32;
    out[0..4].copy_from_slice(&e.put_u32(total));
    out[4..6].copy_from_slice(&e.put_u16(nl_type));
    out[6..8].copy_from_slice(&e.put_u16(flags));
    out[8..12].copy_from_slice(&e.put_u32(seq));
    out[12..16].copy_from_slice(&e.put_u32(0));
    out
}
