//! This machine: the kernel boot id, the default device id and a random seed, read from
//! `/proc`, `/sys` and `/etc` (each with a variant on another root, for tests).

use std::path::Path;

use wifisess_wire::BootId;

/// Reads the kernel boot id (zeros if unreadable, with a warning).
pub fn boot_id() -> BootId {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(s) => s.parse().unwrap_or_default(),
        Err(e) => {
            log::warn!("/proc/sys/kernel/random/boot_id: {e}");
            BootId::default()
        }
    }
}

/// A random `u32` from `/dev/urandom` (the run's epoch, the backoff jitter seed); falls back
/// to time and pid mixed if the device cannot be read.
pub fn random_u32() -> u32 {
    use std::io::Read as _;
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u32::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
    t ^ std::process::id().rotate_left(16)
}

/// The default device id and where it came from (for `check-config`), or `None`.
///
/// In this order, the first that exists (all stable across reboots and agent versions):
/// 1. the MAC of the first Ethernet-type interface in `/sys/class/net` that is not loopback
///    or wireless, physical devices before virtual ones (bridges), by name: `eth0`, or `lan1`
///    on DSA routers;
/// 2. the MAC of the first wireless radio, `/sys/class/ieee80211/*/macaddress`, by name;
/// 3. `/etc/machine-id` (32 hex digits; systemd, dbus).
///
/// MACs are 12 lowercase hex digits; all-zero MACs are skipped.
pub fn default_device_id() -> Option<(String, String)> {
    default_device_id_in(Path::new("/"))
}

/// [`default_device_id`] with `/sys` and `/etc` under `root` (for tests).
pub fn default_device_id_in(root: &Path) -> Option<(String, String)> {
    let net = root.join("sys/class/net");
    if let Some((name, mac)) = first_ethernet_mac_in(&net) {
        return Some((mac, format!("MAC of {name}")));
    }
    let phys = root.join("sys/class/ieee80211");
    if let Some((name, mac)) = least_by_name(&phys, |dir| mac_hex(&dir.join("macaddress"))) {
        return Some((mac, format!("MAC of radio {name}")));
    }
    let id = std::fs::read_to_string(root.join("etc/machine-id")).ok()?;
    let id = id.trim();
    (id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| (id.to_ascii_lowercase(), "/etc/machine-id".to_string()))
}

/// The interface name and MAC of the first Ethernet interface under a `/sys/class/net`
/// directory (see [`default_device_id`], rule 1).
pub fn first_ethernet_mac_in(net: &Path) -> Option<(String, String)> {
    // The least (virtual, name) among the candidates: physical devices first, then by name.
    let mut best: Option<(bool, String, String)> = None;
    for (n, dir) in entries(net) {
        let ty = std::fs::read_to_string(dir.join("type")).ok();
        if n == "lo" || ty.as_deref().map(str::trim) != Some("1") {
            continue;
        }
        if dir.join("wireless").exists() || dir.join("phy80211").exists() {
            continue;
        }
        let Some(hex) = mac_hex(&dir.join("address")) else {
            continue;
        };
        let virt = !dir.join("device").exists();
        if best
            .as_ref()
            .is_none_or(|(bv, bn, _)| (virt, n.as_str()) < (*bv, bn.as_str()))
        {
            best = Some((virt, n, hex));
        }
    }
    best.map(|(_, n, h)| (n, h))
}

/// The entries of a directory: (name, path). Nothing if it cannot be read.
fn entries(dir: &Path) -> impl Iterator<Item = (String, std::path::PathBuf)> + '_ {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let p = dir.join(&n);
            (n, p)
        })
}

/// The entry of `dir` with the least name for which `f` gives a value. A running minimum
/// rather than sorting: no sort code in the router build.
fn least_by_name(dir: &Path, f: impl Fn(&Path) -> Option<String>) -> Option<(String, String)> {
    let mut best: Option<(String, String)> = None;
    for (n, p) in entries(dir) {
        if best.as_ref().is_some_and(|(bn, _)| *bn <= n) {
            continue;
        }
        if let Some(v) = f(&p) {
            best = Some((n, v));
        }
    }
    best
}

/// A MAC address file (`aa:bb:cc:dd:ee:ff\n`) as 12 lowercase hex digits; `None` if it is
/// unreadable, malformed or all zero.
fn mac_hex(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let ok = hex.len() == 12
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
        && !hex.bytes().all(|c| c == b'0');
    ok.then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root: `sys/class/net`, `sys/class/ieee80211`, `etc`.
    struct Fake(std::path::PathBuf);

    impl Fake {
        fn new(tag: &str) -> Fake {
            let d =
                std::env::temp_dir().join(format!("wifisess-host-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Fake(d)
        }

        fn net(&self, n: &str, ty: &str, mac: &str, extra: &[&str]) {
            let d = self.0.join("sys/class/net").join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("type"), ty).unwrap();
            std::fs::write(d.join("address"), mac).unwrap();
            for x in extra {
                std::fs::create_dir_all(d.join(x)).unwrap();
            }
        }

        fn phy(&self, n: &str, mac: &str) {
            let d = self.0.join("sys/class/ieee80211").join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("macaddress"), mac).unwrap();
        }

        fn rm(&self, rel: &str) {
            std::fs::remove_dir_all(self.0.join(rel)).unwrap();
        }

        fn id(&self) -> Option<(String, String)> {
            default_device_id_in(&self.0)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn some(mac: &str, from: &str) -> Option<(String, String)> {
        Some((mac.into(), from.into()))
    }

    #[test]
    fn first_ethernet_skips_lo_wireless_and_virtual() {
        let f = Fake::new("eth");
        f.net("lo", "772\n", "00:00:00:00:00:00\n", &[]);
        f.net("br-lan", "1\n", "AA:BB:CC:00:00:01\n", &[]);
        f.net(
            "wlan0",
            "1\n",
            "aa:bb:cc:00:00:02\n",
            &["wireless", "device"],
        );
        f.net("eth1", "1\n", "AA:BB:CC:00:00:04\n", &["device"]);
        f.net("eth0", "1\n", "AA:BB:CC:00:00:03\n", &["device"]);
        f.net("eth2", "1\n", "00:00:00:00:00:00\n", &["device"]);
        assert_eq!(f.id(), some("aabbcc000003", "MAC of eth0"));
        // Without a physical device: the first virtual one by name.
        for n in ["eth0", "eth1", "eth2"] {
            f.rm(&format!("sys/class/net/{n}"));
        }
        f.net("br-guest", "1\n", "AA:BB:CC:00:00:05\n", &[]);
        assert_eq!(f.id(), some("aabbcc000005", "MAC of br-guest"));
    }

    /// OPENWRT.md fact 12: routers with DSA switches have no `eth*` for the ports, and a
    /// router without `device_id` must still start.
    #[test]
    fn dsa_ports_then_radios_then_machine_id() {
        let f = Fake::new("dsa");
        f.net("lan2", "1\n", "02:11:22:33:44:02\n", &["device"]);
        f.net("lan1", "1\n", "02:11:22:33:44:01\n", &["device"]);
        f.net("wan", "1\n", "02:11:22:33:44:09\n", &["device"]);
        f.net(
            "phy0-ap0",
            "1\n",
            "02:11:22:33:44:a0\n",
            &["phy80211", "device"],
        );
        f.phy("phy1", "02:11:22:33:44:B1\n");
        f.phy("phy0", "02:11:22:33:44:b0\n");
        std::fs::create_dir_all(f.0.join("etc")).unwrap();
        std::fs::write(
            f.0.join("etc/machine-id"),
            "0123456789ABCDEF0123456789abcdef\n",
        )
        .unwrap();
        assert_eq!(f.id(), some("021122334401", "MAC of lan1"));
        // No wired interface at all: the first radio's permanent address.
        f.rm("sys/class/net");
        assert_eq!(f.id(), some("0211223344b0", "MAC of radio phy0"));
        // No sysfs (a container without /sys): the machine id.
        f.rm("sys");
        assert_eq!(
            f.id(),
            some("0123456789abcdef0123456789abcdef", "/etc/machine-id")
        );
        std::fs::write(f.0.join("etc/machine-id"), "uninitialized\n").unwrap();
        assert_eq!(f.id(), None);
    }
}
