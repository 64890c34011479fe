//! The spool: the unacknowledged outbox written to `spool_file` at SIGTERM/SIGINT and
//! restored (then deleted) at the next start. The format is [`Outbox::to_spool`]'s.

use std::io::Write as _;
use std::path::Path;

use crate::error::Context as _;
use crate::outbox::Outbox;

/// Restores the spool at `path` into `outbox` and deletes it; a corrupt spool (all of it or
/// from some record on) is renamed to `PATH.corrupt` with an error log line, after the events
/// before the bad record are restored. Returns the number of events restored.
pub fn restore_spool(path: &Path, outbox: &mut Outbox) -> usize {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            log::error!("spool {}: {e}", path.display());
            return 0;
        }
    };
    let r = outbox.restore(&bytes);
    let n = r.events;
    if n > 0 || r.error.is_none() {
        log::info!(
            "restored {n} unacknowledged events from the spool {}",
            path.display()
        );
    }
    match r.error {
        None => {
            if let Err(e) = std::fs::remove_file(path) {
                log::error!("spool {}: cannot delete: {e}", path.display());
            }
        }
        Some(e) => {
            let aside = path.with_extension("corrupt");
            log::error!(
                "spool {}: {e}; moved aside to {}",
                path.display(),
                aside.display()
            );
            if let Err(e) = std::fs::rename(path, &aside) {
                log::error!("spool {}: cannot rename: {e}", path.display());
            }
        }
    }
    n
}

/// Writes the outbox to `path` atomically (a temporary file beside it, fsync, rename);
/// removes a stale spool when the outbox is empty.
///
/// # Errors
/// The file cannot be written or renamed.
pub fn write_spool(path: &Path, outbox: &Outbox) -> crate::error::Result<()> {
    if outbox.depth() == 0 {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("spool {}", path.display()))
            }
            _ => return Ok(()),
        }
    }
    let tmp = path.with_extension("tmp");
    let bytes = outbox.to_spool();
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.with_context(|| format!("spool {}", path.display()))
}
