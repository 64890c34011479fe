//! A fast path to a big database with the collector's schema (for the query and retention
//! benchmarks): rows are written directly, not through the merge, in large transactions with
//! prepared statements and `journal_mode=OFF`, `synchronous=OFF` during the load only; the
//! sessions indexes are dropped first and re-created from the schema's own SQL afterwards
//! (one sort per index instead of millions of random B-tree inserts). The file ends in WAL
//! mode like a collector database, synced to disk. No `ANALYZE`: the collector never runs it
//! either.
//!
//! On PostgreSQL ([`load_postgres`]) the same rows go in with `COPY`, the secondary indexes
//! are built afterwards and the tables are vacuumed and analyzed.
//!
//! Shape (defaults): 10 organizations, 100 groups, 10 000 devices (device `i` in group
//! `i % groups`, organization `group % orgs`), 200 000 client MACs (MAC `m` belongs to group
//! `m % groups`; 90 % of a device's sessions are by its group's clients, 10 % by anyone),
//! sessions spread uniformly over `days` before the end, lasting ~40 min on average
//! (exponential, at most 10 h); the newest `open_per_device` sessions of every device are
//! still open (started within 8 h of the end, distinct clients).

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use rusqlite::{params, Connection};
use wifisess_collector::store::postgres::schema::{self as pg_schema, is_url};
use wifisess_wire::MacAddr;

use crate::sim::{bssid, device_id, mix, Rng, SSIDS};

/// The database's shape.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Session rows in all.
    pub sessions: u64,
    /// Organizations.
    pub orgs: usize,
    /// Groups.
    pub groups: usize,
    /// Devices.
    pub devices: usize,
    /// Distinct client MACs.
    pub macs: u64,
    /// Days the closed sessions are spread over.
    pub days: u64,
    /// The newest session ends at most this long before now, days.
    pub end_days_ago: u64,
    /// Open sessions per device (0: all closed).
    pub open_per_device: u64,
    /// Device id prefix.
    pub device_prefix: String,
    /// Seed.
    pub seed: u64,
}

/// What the load did.
#[derive(Debug, Clone, Default)]
pub struct BulkReport {
    /// Session rows written.
    pub sessions: u64,
    /// Of them open.
    pub open: u64,
    /// Seconds inserting rows.
    pub insert_s: f64,
    /// Seconds re-creating the indexes.
    pub index_s: f64,
    /// Seconds of `VACUUM (ANALYZE)` (PostgreSQL; SQLite: none).
    pub analyze_s: f64,
    /// File size afterwards (PostgreSQL: the database's size), bytes.
    pub bytes: u64,
    /// The sessions' tables with their indexes, bytes (SQLite: the file; the devices are a
    /// few MB of it).
    pub session_bytes: u64,
    /// The end of the data (newest start is before it), ms.
    pub end_ms: i64,
}

/// The text form (as the collector stores it) of client MAC number `m`.
pub fn mac_of(m: u64) -> String {
    let b = m.to_be_bytes();
    MacAddr([0x3c, 0x22, 0xfb, b[5], b[6], b[7]]).to_string()
}

/// One generated session row (the columns both engines store; the others keep their
/// defaults).
#[derive(Debug, Clone)]
pub struct GenSession<'a> {
    /// Device id.
    pub device: &'a str,
    /// Session id.
    pub id: i64,
    /// Kernel boot id.
    pub boot: &'a str,
    /// Client MAC, text.
    pub mac: String,
    /// SSID.
    pub ssid: &'static str,
    /// AP interface.
    pub ifname: &'static str,
    /// BSSID, text.
    pub bssid: String,
    /// Frequency, MHz.
    pub freq_mhz: i64,
    /// Start, ms.
    pub start_ms: i64,
    /// Uptime at the start, ms.
    pub first_up: i64,
    /// Seq of the start.
    pub first_seq: i64,
    /// Stop, ms (none: open).
    pub stop_ms: Option<i64>,
    /// Stop reason.
    pub stop_reason: Option<&'static str>,
    /// Last report, ms.
    pub last_seen_ms: i64,
    /// Uptime of the last report, ms.
    pub open_up: i64,
    /// Seq of the last report.
    pub open_seq: i64,
    /// Average signal, dBm.
    pub signal_avg: i64,
    /// Last client activity, ms.
    pub last_activity_ms: i64,
    /// Bytes from the client.
    pub rx_bytes: i64,
    /// Bytes to the client.
    pub tx_bytes: i64,
    /// Packets from the client.
    pub rx_packets: i64,
    /// Packets to the client.
    pub tx_packets: i64,
}

/// One generated device row.
#[derive(Debug, Clone)]
pub struct GenDevice<'a> {
    /// Device id.
    pub id: &'a str,
    /// Name (announced).
    pub name: String,
    /// Organization (announced).
    pub organization: String,
    /// Group (announced).
    pub group: String,
    /// Last message, ms.
    pub last_seen_ms: i64,
    /// Kernel boot id.
    pub boot: &'a str,
    /// Agent epoch.
    pub agent_epoch: i64,
    /// Last seq received.
    pub last_seq: i64,
}

/// Generates the rows of `shape` ending at `end_ms`, device by device: each device's sessions
/// (in session-id order), then the device. The same shape and seed give the same rows, so a
/// PostgreSQL and an SQLite load hold the same data.
///
/// # Errors
/// What the callbacks return.
pub fn generate(
    shape: &Shape,
    end_ms: i64,
    mut session: impl FnMut(&GenSession<'_>) -> anyhow::Result<()>,
    mut device: impl FnMut(&GenDevice<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let span_ms = (shape.days.max(1) * 86_400_000) as i64;
    let groups = shape.groups.max(1) as u64;
    let pool = (shape.macs / groups).max(1);
    let mut rng = Rng::new(shape.seed);
    let n_dev = shape.devices.max(1) as u64;
    let mut rows: Vec<(i64, i64, Option<i64>, u64, u64)> = Vec::new();
    for d in 0..n_dev {
        let g = d % groups;
        let id = device_id(&shape.device_prefix, d as usize);
        let boot = format!("{:016x}-0000-4000-8000-{:012x}", mix(d ^ shape.seed), d);
        let booted = end_ms - 100 * 86_400_000;
        let per = shape.sessions / n_dev + u64::from(d < shape.sessions % n_dev);
        let open = shape.open_per_device.min(per).min(pool);
        rows.clear();
        for k in 0..per {
            let h = rng.next_u64();
            let sid = mix(h ^ d.rotate_left(40) ^ k) as i64;
            if k < open {
                // Open: distinct clients of the device's group, started in the last 8 h.
                let m = g + groups * ((d / groups * 31 + k) % pool);
                let start = end_ms - 1 - rng.below(8 * 3_600_000) as i64;
                rows.push((sid, start, None, m, h));
            } else {
                let m = if rng.below(10) == 0 {
                    rng.below(shape.macs.max(1))
                } else {
                    g + groups * rng.below(pool)
                };
                let start = end_ms - 60_000 - rng.below(span_ms as u64) as i64;
                let dur = (-(1.0 - rng.unit()).ln() * 2_400_000.0).min(36_000_000.0) as i64;
                let stop = (start + dur.max(1_000)).min(end_ms);
                rows.push((sid, start, Some(stop), m, h));
            }
        }
        rows.sort_unstable_by_key(|r| r.0);
        let mut last_seq = 0;
        for (i, &(sid, start, stop, m, h)) in rows.iter().enumerate() {
            let radio = (h >> 3 & 1) as u8;
            let seen = stop.unwrap_or(end_ms - (h % 300_000) as i64).max(start);
            let tx_bytes = (h >> 20) % (2 << 30);
            let rx_bytes = (h >> 24) % (256 << 20);
            let seq = i as i64 + 1;
            last_seq = seq;
            session(&GenSession {
                device: &id,
                id: sid,
                boot: &boot,
                mac: mac_of(m),
                ssid: SSIDS[(h % 3) as usize],
                ifname: if radio == 0 { "phy0-ap0" } else { "phy1-ap0" },
                bssid: bssid(d as usize, radio).to_string(),
                freq_mhz: if radio == 0 { 2437 } else { 5180 },
                start_ms: start,
                first_up: start - booted,
                first_seq: seq,
                stop_ms: stop,
                stop_reason: stop.map(|_| if h % 10 == 0 { "vanished" } else { "left" }),
                last_seen_ms: seen,
                open_up: seen - booted,
                open_seq: seq + 1,
                signal_avg: -40 - ((h >> 12) % 45) as i64,
                last_activity_ms: seen - (h >> 40) as i64 % 20_000,
                rx_bytes: rx_bytes as i64,
                tx_bytes: tx_bytes as i64,
                rx_packets: (rx_bytes / 700) as i64,
                tx_packets: (tx_bytes / 700) as i64,
            })?;
        }
        device(&GenDevice {
            id: &id,
            name: format!("AP {d}"),
            organization: format!("org-{:02}", g % shape.orgs.max(1) as u64),
            group: format!("group-{g:03}"),
            last_seen_ms: end_ms,
            boot: &boot,
            agent_epoch: i64::from(mix(d) as u32),
            last_seq,
        })?;
    }
    Ok(())
}

/// Builds the database `db` names: an SQLite file (replaced) or a `postgres://` URL (an
/// existing database, emptied first: see [`load_postgres`]). `now_ms` is the wall clock.
///
/// # Errors
/// Database and file errors.
pub fn load(shape: &Shape, db: &Path, now_ms: i64) -> anyhow::Result<BulkReport> {
    match db.to_str().filter(|s| is_url(s)) {
        Some(url) => load_postgres(shape, url, now_ms),
        None => load_sqlite(shape, db, now_ms),
    }
}

/// Builds the SQLite database at `db` (replacing it).
///
/// # Errors
/// SQLite and file errors.
pub fn load_sqlite(shape: &Shape, db: &Path, now_ms: i64) -> anyhow::Result<BulkReport> {
    for ext in ["", "-wal", "-shm"] {
        let p = format!("{}{ext}", db.display());
        if Path::new(&p).exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {p}"))?;
        }
    }
    let mut conn = Connection::open(db).with_context(|| format!("creating {}", db.display()))?;
    wifisess_collector::store::sqlite::schema::migrate(&mut conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
         PRAGMA cache_size = -1000000; PRAGMA temp_store = MEMORY;",
    )?;
    let indexes: Vec<(String, String)> = {
        let mut st = conn.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'
             AND sql IS NOT NULL ORDER BY name",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))?;
    }

    let end_ms = now_ms - shape.end_days_ago as i64 * 86_400_000;
    let mut rep = BulkReport {
        end_ms,
        ..BulkReport::default()
    };
    let began = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut dev = tx.prepare(
            "INSERT INTO devices (id, name, organization, grp, ann_name, ann_organization,
             ann_group, online, last_seen_ms, boot_id, agent_epoch, last_seq, agent_version)
             VALUES (?1, ?2, ?3, ?4, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, 'bulk')",
        )?;
        let mut ins = tx.prepare(
            "INSERT INTO sessions (device_id, id, boot_id, mac, ssid, ifname, bssid, freq_mhz,
             start_ms, has_start, first_up, first_seq, stop_ms, stop_reason, agent_stop_ms,
             agent_stop_reason, last_seen_ms, open_up, open_seq, signal_up, signal_seq, signal_avg,
             last_activity_ms, rx_bytes, tx_bytes, rx_packets, tx_packets)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?13, ?12, ?13, ?14,
             ?15, ?16, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        )?;
        let mut sessions = 0u64;
        let mut open = 0u64;
        generate(
            shape,
            end_ms,
            |s| {
                ins.execute(params![
                    s.device,
                    s.id,
                    s.boot,
                    s.mac,
                    s.ssid,
                    s.ifname,
                    s.bssid,
                    s.freq_mhz,
                    s.start_ms,
                    s.first_up,
                    s.first_seq,
                    s.stop_ms,
                    s.stop_reason,
                    s.last_seen_ms,
                    s.open_up,
                    s.open_seq,
                    s.signal_avg,
                    s.last_activity_ms,
                    s.rx_bytes,
                    s.tx_bytes,
                    s.rx_packets,
                    s.tx_packets,
                ])?;
                sessions += 1;
                open += u64::from(s.stop_ms.is_none());
                Ok(())
            },
            |d| {
                dev.execute(params![
                    d.id,
                    d.name,
                    d.organization,
                    d.group,
                    d.last_seen_ms,
                    d.boot,
                    d.agent_epoch,
                    d.last_seq,
                ])?;
                Ok(())
            },
        )?;
        rep.sessions = sessions;
        rep.open = open;
    }
    tx.commit()?;
    rep.insert_s = began.elapsed().as_secs_f64();
    let began = Instant::now();
    for (name, sql) in &indexes {
        let t = Instant::now();
        conn.execute_batch(sql)?;
        eprintln!(
            "wifisess-loadgen bulk-load: index {name} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    rep.index_s = began.elapsed().as_secs_f64();
    conn.pragma_update(None, "journal_mode", "WAL")?;
    drop(conn);
    // With `synchronous=OFF` the load's pages may still be dirty in the OS cache: the first
    // fsync after it (a benchmark's first WAL checkpoint) would pay for their write-back.
    // Measured: the retention benchmark's longest transaction was its first, 300-390 ms
    // instead of ~97 (docs/BENCHMARKS.md, retention). A loaded file is a durable file.
    let began = Instant::now();
    std::fs::File::open(db)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", db.display()))?;
    eprintln!(
        "wifisess-loadgen bulk-load: synced to disk in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    rep.bytes = std::fs::metadata(db)?.len();
    rep.session_bytes = rep.bytes;
    Ok(rep)
}

/// The session columns a PostgreSQL load writes, in the order of [`copy_session`].
const PG_SESSION_COLUMNS: &str = "device_id, id, boot_id, mac, ssid, ifname, bssid, freq_mhz, \
     start_ms, has_start, first_up, first_seq, stop_ms, stop_reason, agent_stop_ms, \
     agent_stop_reason, last_seen_ms, open_up, open_seq, signal_up, signal_seq, signal_avg, \
     last_activity_ms, rx_bytes, tx_bytes, rx_packets, tx_packets";

/// The device columns a PostgreSQL load writes, in the order of [`copy_device`].
const PG_DEVICE_COLUMNS: &str = "id, name, organization, grp, ann_name, ann_organization, \
     ann_group, online, last_seen_ms, boot_id, agent_epoch, last_seq, agent_version";

/// One line of COPY's text format: fields separated by tabs, `\N` for NULL.
struct CopyLine<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> CopyLine<'a> {
    fn new(buf: &'a mut Vec<u8>) -> CopyLine<'a> {
        CopyLine { buf, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b'\t');
        }
        self.first = false;
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        for b in s.bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                _ => self.buf.push(b),
            }
        }
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        use std::io::Write as _;
        self.sep();
        let _ = write!(self.buf, "{v}");
        self
    }

    fn raw(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.raw("\\N"),
        }
    }

    fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.raw("\\N"),
        }
    }

    fn end(&mut self) {
        self.buf.push(b'\n');
    }
}

/// `s` as a COPY line of [`PG_SESSION_COLUMNS`] (the same values the SQLite load binds).
fn copy_session(buf: &mut Vec<u8>, s: &GenSession<'_>) {
    CopyLine::new(buf)
        .text(s.device)
        .int(s.id)
        .text(s.boot)
        .text(&s.mac)
        .text(s.ssid)
        .text(s.ifname)
        .text(&s.bssid)
        .int(s.freq_mhz)
        .int(s.start_ms)
        .raw("t")
        .int(s.first_up)
        .int(s.first_seq)
        .opt_int(s.stop_ms)
        .opt_text(s.stop_reason)
        .opt_int(s.stop_ms)
        .opt_text(s.stop_reason)
        .int(s.last_seen_ms)
        .int(s.open_up)
        .int(s.open_seq)
        .int(s.open_up)
        .int(s.open_seq)
        .int(s.signal_avg)
        .int(s.last_activity_ms)
        .int(s.rx_bytes)
        .int(s.tx_bytes)
        .int(s.rx_packets)
        .int(s.tx_packets)
        .end();
}

/// `d` as a COPY line of [`PG_DEVICE_COLUMNS`].
fn copy_device(buf: &mut Vec<u8>, d: &GenDevice<'_>) {
    CopyLine::new(buf)
        .text(d.id)
        .text(&d.name)
        .text(&d.organization)
        .text(&d.group)
        .text(&d.name)
        .text(&d.organization)
        .text(&d.group)
        .raw("t")
        .int(d.last_seen_ms)
        .text(d.boot)
        .int(d.agent_epoch)
        .int(d.last_seq)
        .text("bulk")
        .end();
}

/// Builds the PostgreSQL database at `url` (an existing database; everything in its `public`
/// schema is dropped first): the collector's schema (`PgStore::open`) with the monthly
/// partitions of the data's months, the sessions' secondary indexes dropped (the primary keys
/// stay: rows arrive in key order per device), the rows sent with `COPY` in one transaction
/// (closed sessions straight into the partitioned `sessions_closed`, then `sessions_open` and
/// `devices`), the indexes re-created from the schema's own definitions (`pg_get_indexdef`),
/// then `VACUUM (ANALYZE)` — what autovacuum does to a table that stopped changing: statistics
/// for the planner and the visibility map for index-only scans — and a `CHECKPOINT` (a loaded
/// database is a durable one). `bytes` is the database's size; `session_bytes` that of the
/// sessions tables with their indexes and TOAST.
///
/// # Errors
/// PostgreSQL errors.
pub fn load_postgres(shape: &Shape, url: &str, now_ms: i64) -> anyhow::Result<BulkReport> {
    use std::io::Write as _;
    let end_ms = now_ms - shape.end_days_ago as i64 * 86_400_000;
    let first_ms = end_ms - 60_000 - (shape.days.max(1) * 86_400_000) as i64;
    let mut store = crate::storebench::fresh_postgres(url)?;
    store.ensure_partitions(first_ms, end_ms)?;
    drop(store);
    let mut c = pg_schema::connect(url, false)
        .with_context(|| format!("connecting to {}", pg_schema::redact(url)))?;
    let indexes: Vec<(String, String)> = c
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             WHERE t.relname IN ('sessions_open', 'sessions_closed')
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
             ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get::<_, String>(1).replace(" ON ONLY ", " ON ")))
        .collect();
    for (name, _) in &indexes {
        c.batch_execute(&format!("DROP INDEX {name}"))?;
    }

    let mut rep = BulkReport {
        end_ms,
        ..BulkReport::default()
    };
    let began = Instant::now();
    let mut tx = c.transaction()?;
    let (mut open_buf, mut dev_buf) = (Vec::new(), Vec::new());
    {
        let mut closed = tx.copy_in(&format!(
            "COPY sessions_closed ({PG_SESSION_COLUMNS}) FROM STDIN"
        ))?;
        let mut buf = Vec::with_capacity(1 << 21);
        let (mut sessions, mut open) = (0u64, 0u64);
        generate(
            shape,
            end_ms,
            |s| {
                sessions += 1;
                if s.stop_ms.is_none() {
                    open += 1;
                    copy_session(&mut open_buf, s);
                } else {
                    copy_session(&mut buf, s);
                    if buf.len() >= 1 << 20 {
                        closed.write_all(&buf)?;
                        buf.clear();
                    }
                }
                Ok(())
            },
            |d| {
                copy_device(&mut dev_buf, d);
                Ok(())
            },
        )?;
        closed.write_all(&buf)?;
        closed.finish()?;
        rep.sessions = sessions;
        rep.open = open;
    }
    for (table, cols, data) in [
        ("sessions_open", PG_SESSION_COLUMNS, &open_buf),
        ("devices", PG_DEVICE_COLUMNS, &dev_buf),
    ] {
        let mut w = tx.copy_in(&format!("COPY {table} ({cols}) FROM STDIN"))?;
        w.write_all(data)?;
        w.finish()?;
    }
    tx.commit()?;
    rep.insert_s = began.elapsed().as_secs_f64();
    eprintln!(
        "wifisess-loadgen bulk-load: {} rows copied in {:.1} s",
        rep.sessions, rep.insert_s
    );
    let began = Instant::now();
    c.batch_execute("SET maintenance_work_mem = '1GB'")?;
    for (name, sql) in &indexes {
        let t = Instant::now();
        c.batch_execute(sql)?;
        eprintln!(
            "wifisess-loadgen bulk-load: index {name} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    rep.index_s = began.elapsed().as_secs_f64();
    let began = Instant::now();
    c.batch_execute("VACUUM (ANALYZE)")?;
    rep.analyze_s = began.elapsed().as_secs_f64();
    eprintln!(
        "wifisess-loadgen bulk-load: VACUUM (ANALYZE) in {:.1} s",
        rep.analyze_s
    );
    let began = Instant::now();
    // A superuser's right; a load by another role stays in the WAL until the next checkpoint.
    match c.batch_execute("CHECKPOINT") {
        Ok(()) => eprintln!(
            "wifisess-loadgen bulk-load: CHECKPOINT in {:.1} s",
            began.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("wifisess-loadgen bulk-load: no CHECKPOINT: {e}"),
    }
    rep.bytes = c
        .query_one("SELECT pg_database_size(current_database())", &[])?
        .get::<_, i64>(0) as u64;
    rep.session_bytes = c
        .query_one(
            "SELECT (pg_total_relation_size('sessions_open') + coalesce(
                 (SELECT sum(pg_total_relation_size(relid))
                  FROM pg_partition_tree('sessions_closed') WHERE isleaf), 0))::bigint",
            &[],
        )?
        .get::<_, i64>(0) as u64;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            sessions: 1_000,
            orgs: 2,
            groups: 4,
            devices: 10,
            macs: 200,
            days: 30,
            end_days_ago: 0,
            open_per_device: 3,
            device_prefix: "ap-".into(),
            seed: 7,
        }
    }

    #[test]
    fn copy_lines_escape_and_mark_nulls() {
        let mut b = Vec::new();
        CopyLine::new(&mut b)
            .text("a\tb\\c\nd")
            .int(-5)
            .opt_int(None)
            .opt_text(Some("x"))
            .raw("t")
            .end();
        assert_eq!(b, b"a\\tb\\\\c\\nd\t-5\t\\N\tx\tt\n");
    }

    /// Every session of the shape is generated once, in session-id order per device, each
    /// device after its sessions; a COPY line has one field per column.
    #[test]
    fn generates_the_shape() {
        let (mut n, mut open) = (0u64, 0u64);
        let devices = std::cell::RefCell::new(Vec::<String>::new());
        let mut last: Option<(String, i64)> = None;
        generate(
            &shape(),
            1_800_000_000_000,
            |s| {
                n += 1;
                open += u64::from(s.stop_ms.is_none());
                if let Some((d, id)) = &last {
                    assert!(d != s.device || *id < s.id, "order");
                }
                assert!(
                    !devices.borrow().iter().any(|d| d == s.device),
                    "device before its sessions"
                );
                last = Some((s.device.to_owned(), s.id));
                let mut line = Vec::new();
                copy_session(&mut line, s);
                let fields = line.split(|b| *b == b'\t').count();
                assert_eq!(fields, PG_SESSION_COLUMNS.split(',').count());
                Ok(())
            },
            |d| {
                devices.borrow_mut().push(d.id.to_owned());
                let mut line = Vec::new();
                copy_device(&mut line, d);
                assert_eq!(
                    line.split(|b| *b == b'\t').count(),
                    PG_DEVICE_COLUMNS.split(',').count()
                );
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((n, open, devices.borrow().len()), (1_000, 30, 10));
    }
}
