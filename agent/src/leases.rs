//! Client hostnames from the router's DHCP leases, dnsmasq's lease file (OpenWrt:
//! `/tmp/dhcp.leases`): bytes → [`Hostnames`], pure and bounded. The file is watched by
//! `run::leases`.
//!
//! One lease per line, `EXPIRY MAC IP HOSTNAME CLIENT-ID` separated by spaces, e.g.
//! `1767229200 3c:22:fb:12:34:56 192.168.1.23 Galaxy-S23 01:3c:22:fb:12:34:56`; the hostname
//! is `*` when the client sent none. dnsmasq also writes its DHCPv6 leases there (`duid …`,
//! then lines with an IAID instead of a MAC): they have no MAC and are skipped, as is anything
//! else that is not a lease line.

use wifisess_wire::MacAddr;

/// Most bytes of a lease file read (~2 000 leases of ~120 bytes).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Most lines looked at, and so most leases kept.
pub const MAX_LINES: usize = 4096;
/// Longest hostname kept: one DNS label (`wifisess_wire::limits::MAX_HOSTNAME_BYTES`).
pub const MAX_NAME_BYTES: usize = wifisess_wire::limits::MAX_HOSTNAME_BYTES;

/// Client MAC → hostname, in file order; only leases that name their client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hostnames {
    entries: Vec<(MacAddr, Box<str>)>,
}

impl Hostnames {
    /// Parses a lease file. Never fails: a line that is not a lease with a usable hostname is
    /// skipped, and so is a last line without its newline (dnsmasq rewrites the file in
    /// place, so a reader may catch it half written). At most [`MAX_FILE_BYTES`] and
    /// [`MAX_LINES`] are looked at.
    pub fn parse(text: &[u8]) -> Hostnames {
        let text = &text[..text.len().min(MAX_FILE_BYTES)];
        let complete = match text.iter().rposition(|&c| c == b'\n') {
            Some(end) => &text[..end],
            None => &[][..],
        };
        let entries = complete
            .split(|&c| c == b'\n')
            .take(MAX_LINES)
            .filter_map(lease)
            .collect();
        Hostnames { entries }
    }

    /// A table from `(MAC, hostname)` pairs as they would be read (tests, tools); hostnames
    /// that would not be read from a file are left out.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (MacAddr, &'a str)>) -> Hostnames {
        Hostnames {
            entries: pairs
                .into_iter()
                .filter(|(_, n)| hostname(n.as_bytes()).is_some())
                .map(|(m, n)| (m, n.into()))
                .collect(),
        }
    }

    /// The hostname of `mac` (its last lease in the file, if it has several).
    pub fn get(&self, mac: &MacAddr) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(m, _)| m == mac)
            .map(|(_, n)| &**n)
    }

    /// Every lease, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&MacAddr, &str)> {
        self.entries.iter().map(|(m, n)| (m, &**n))
    }

    /// How many leases name their client.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No lease names its client.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One lease line: its MAC and hostname, if it is a lease that names its client.
fn lease(line: &[u8]) -> Option<(MacAddr, Box<str>)> {
    let mut f = line.split(|&c| c == b' ').filter(|f| !f.is_empty());
    let expiry = f.next()?;
    let mac = f.next()?;
    let _ip = f.next()?;
    let name = hostname(f.next()?)?;
    if !expiry.iter().all(u8::is_ascii_digit) || mac.len() != 17 {
        return None;
    }
    let mac = core::str::from_utf8(mac).ok()?.parse().ok()?;
    Some((mac, name.into()))
}

/// A hostname as dnsmasq keeps it: 1 to 63 of `A-Z a-z 0-9 - _ .` (`*`, no name, is not one).
fn hostname(b: &[u8]) -> Option<&str> {
    let ok = (1..=MAX_NAME_BYTES).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    // All ASCII: UTF-8.
    ok.then(|| core::str::from_utf8(b).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    /// An OpenWrt 23.05 `/tmp/dhcp.leases` (dnsmasq 2.89) with a DHCPv6 part, as written.
    const OPENWRT: &str = "\
1767229200 3c:22:fb:12:34:56 192.168.1.23 Galaxy-S23 01:3c:22:fb:12:34:56
1767229260 a4:83:e7:00:11:22 192.168.1.42 * 01:a4:83:e7:00:11:22
1767229300 02:00:00:00:02:00 192.168.1.50 lab-client-2 *
duid 00:01:00:01:2c:5f:0a:11:94:83:c4:01:02:03
1767229200 1234567890 fd12:3456:789a::8a1 Galaxy-S23 00:01:00:01:2b:00:00:01:3c:22:fb:12:34:56
";

    #[test]
    fn reads_dnsmasq_leases_and_skips_the_rest() {
        let h = Hostnames::parse(OPENWRT.as_bytes());
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h.get(&mac("3c:22:fb:12:34:56")), Some("Galaxy-S23"));
        assert_eq!(h.get(&mac("02:00:00:00:02:00")), Some("lab-client-2"));
        assert_eq!(h.get(&mac("a4:83:e7:00:11:22")), None, "* is no name");
        assert_eq!(h.get(&mac("02:00:00:00:03:00")), None);
    }

    #[test]
    fn a_half_written_last_line_is_not_read() {
        let h = Hostnames::parse(b"1767229200 3c:22:fb:12:34:56 192.168.1.23 Gal");
        assert!(h.is_empty());
        let h =
            Hostnames::parse(b"1 3c:22:fb:12:34:56 192.168.1.23 a\n2 02:00:00:00:02:00 1.2.3.4 b");
        assert_eq!(h.iter().count(), 1);
    }

    #[test]
    fn the_last_lease_of_a_mac_wins() {
        let h = Hostnames::parse(
            b"1 3c:22:fb:12:34:56 192.168.1.23 old-name *\n2 3c:22:fb:12:34:56 192.168.1.24 new-name *\n",
        );
        assert_eq!(h.get(&mac("3c:22:fb:12:34:56")), Some("new-name"));
    }

    #[test]
    fn hostnames_are_one_dns_label_of_safe_characters() {
        let line = |name: &str| format!("1 3c:22:fb:12:34:56 192.168.1.23 {name} *\n");
        let get = |name: &str| {
            Hostnames::parse(line(name).as_bytes())
                .get(&mac("3c:22:fb:12:34:56"))
                .map(String::from)
        };
        assert_eq!(get(&"h".repeat(63)), Some("h".repeat(63)));
        assert_eq!(get(&"h".repeat(64)), None);
        assert_eq!(get("my_laptop.lan"), Some("my_laptop.lan".into()));
        for bad in ["*", "a\"b", "caf\u{e9}", "a\tb", "a/b", "<script>"] {
            assert_eq!(get(bad), None, "{bad:?}");
        }
        let pairs = [
            (mac("3c:22:fb:12:34:56"), "ok"),
            (mac("02:00:00:00:02:00"), "not ok"),
        ];
        assert_eq!(Hostnames::from_pairs(pairs).len(), 1);
    }

    #[test]
    fn only_the_first_bytes_and_lines_are_looked_at() {
        let line = "1 3c:22:fb:12:34:56 192.168.1.23 name *\n";
        let many = line.repeat(MAX_LINES + 10);
        assert_eq!(Hostnames::parse(many.as_bytes()).len(), MAX_LINES);
        let big = format!("{}{line}", "x".repeat(MAX_FILE_BYTES));
        assert!(Hostnames::parse(big.as_bytes()).is_empty());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Garbage never panics, and whatever is read is a lease line of the input.
            #[test]
            fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let h = Hostnames::parse(&bytes);
                for (_, name) in h.iter() {
                    prop_assert!(hostname(name.as_bytes()).is_some());
                }
            }

            #[test]
            fn lease_lines_read_back(
                leases in proptest::collection::vec((any::<[u8; 6]>(), "[A-Za-z0-9_.-]{1,63}"), 0..20),
            ) {
                let text: String = leases
                    .iter()
                    .map(|(m, n)| format!("1767229200 {} 10.0.0.1 {n} *\n", MacAddr(*m)))
                    .collect();
                let h = Hostnames::parse(text.as_bytes());
                prop_assert_eq!(h.len(), leases.len());
                for (m, _) in &leases {
                    let last = leases.iter().rev().find(|(x, _)| x == m).map(|(_, n)| n.as_str());
                    prop_assert_eq!(h.get(&MacAddr(*m)), last);
                }
            }
        }
    }
}
