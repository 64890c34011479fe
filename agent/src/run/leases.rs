//! The DHCP lease file (`dhcp_leases`), watched: stat at most every [`CHECK_MS`], read and
//! parsed ([`Hostnames::parse`]) only when its modification time or size changed. Time is
//! passed in; the source asks for a turn at [`LeaseFile::next_check`] while sessions are
//! open, so a lease written a few seconds after a client joined is seen within
//! [`CHECK_MS`], and nothing is polled while no client is connected.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::leases::{Hostnames, MAX_FILE_BYTES};

/// Least time between two looks at the file, ms.
pub const CHECK_MS: u64 = 5_000;

/// What the file looked like when it was last read.
type Seen = (Option<SystemTime>, u64);

/// A lease file being watched.
#[derive(Debug)]
pub struct LeaseFile {
    path: PathBuf,
    /// Uptime ms of the next look; 0: at once.
    next_ms: u64,
    /// Modification time and size of the version read last, `None` before the first read
    /// (or while the file is missing).
    seen: Option<Seen>,
    /// The file's absence was logged (once: a dumb AP has no DHCP server).
    said_missing: bool,
}

impl LeaseFile {
    /// Watches `path`; the first [`LeaseFile::poll`] reads it.
    pub fn new(path: PathBuf) -> LeaseFile {
        LeaseFile {
            path,
            next_ms: 0,
            seen: None,
            said_missing: false,
        }
    }

    /// When (uptime ms) the file may be looked at next.
    pub fn next_check(&self) -> u64 {
        self.next_ms
    }

    /// At `now_ms`: the new hostnames if the file changed since it was last read (or is read
    /// for the first time), else `None`. Looks at the file at most every [`CHECK_MS`]. A
    /// missing file is normal (no DHCP server here): one debug line, no error, and the
    /// names known so far stay; another error is a warning, once per kind of error.
    pub fn poll(&mut self, now_ms: u64) -> Option<Hostnames> {
        if now_ms < self.next_ms {
            return None;
        }
        self.next_ms = now_ms.saturating_add(CHECK_MS);
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => {
                self.gone(e);
                return None;
            }
        };
        let seen = (meta.modified().ok(), meta.len());
        if self.seen == Some(seen) {
            return None;
        }
        let text = match read_capped(&self.path, meta.len()) {
            Ok(t) => t,
            Err(e) => {
                self.gone(e);
                return None;
            }
        };
        self.seen = Some(seen);
        self.said_missing = false;
        let names = Hostnames::parse(&text);
        log::debug!("DHCP leases: {} hostnames", names.len());
        Some(names)
    }

    fn gone(&mut self, e: std::io::Error) {
        self.seen = None;
        if self.said_missing {
            return;
        }
        self.said_missing = true;
        if e.kind() == std::io::ErrorKind::NotFound {
            log::debug!("no DHCP leases at {}: no hostnames", self.path.display());
        } else {
            log::warn!("DHCP leases {}: {e}", self.path.display());
        }
    }
}

/// The first [`MAX_FILE_BYTES`] of the file (of about `len` bytes: it may change while it
/// is read). A plain read loop: `Read::take` + `read_to_end` cost ~1 KB more in the router
/// build.
fn read_capped(path: &Path, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    // One byte more than the stat said, to see whether it grew.
    let mut buf = vec![0; (len as usize).saturating_add(1).clamp(4096, MAX_FILE_BYTES)];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if n == buf.len() && buf.len() < MAX_FILE_BYTES {
            // It grew since the stat: room for more, up to the cap.
            buf.resize(MAX_FILE_BYTES, 0);
        }
    }
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("wifisess-leases-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    const A: &str = "1767229200 3c:22:fb:12:34:56 192.168.1.23 Galaxy-S23 *\n";
    const B: &str = "1767229260 02:00:00:00:02:00 192.168.1.50 lab-client-2 *\n";

    #[test]
    fn read_when_it_changes_at_most_every_check_interval() {
        let p = temp("changes");
        let mut f = LeaseFile::new(p.clone());
        assert_eq!(f.poll(1_000), None, "missing: nothing, no error");
        assert_eq!(f.next_check(), 1_000 + CHECK_MS);
        std::fs::write(&p, A).unwrap();
        assert_eq!(f.poll(2_000), None, "not looked at before the interval");
        let h = f.poll(1_000 + CHECK_MS).expect("first read");
        assert_eq!(h.len(), 1);
        assert_eq!(f.poll(1_000 + 2 * CHECK_MS), None, "unchanged");
        // A change of size is seen even within the same mtime tick.
        std::fs::write(&p, format!("{A}{B}")).unwrap();
        let h = f.poll(1_000 + 3 * CHECK_MS).expect("changed");
        assert_eq!(h.len(), 2);
        // Gone, then back: read again.
        std::fs::remove_file(&p).unwrap();
        assert_eq!(f.poll(1_000 + 4 * CHECK_MS), None);
        std::fs::write(&p, format!("{A}{B}")).unwrap();
        assert_eq!(f.poll(1_000 + 5 * CHECK_MS).map(|h| h.len()), Some(2));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_directory_is_not_read_and_does_not_panic() {
        let mut f = LeaseFile::new(std::env::temp_dir());
        assert_eq!(f.poll(0), None);
    }

    #[test]
    fn a_huge_file_is_read_only_up_to_the_cap() {
        let p = temp("huge");
        let line = "1767229200 3c:22:fb:12:34:56 192.168.1.23 name *\n";
        std::fs::write(&p, line.repeat(MAX_FILE_BYTES / line.len() + 100)).unwrap();
        let h = LeaseFile::new(p.clone()).poll(0).unwrap();
        let lines = MAX_FILE_BYTES / line.len();
        assert_eq!(h.len(), lines.min(crate::leases::MAX_LINES));
        std::fs::remove_file(&p).unwrap();
    }
}
