//! A fast path to a big database with the collector's schema (for the query and retention
//! benchmarks): rows are written directly, not through the merge, in large transactions with
//! prepared statements and `journal_mode=OFF`, `synchronous=OFF` during the load only; the
//! sessions indexes are dropped first and re-created from the schema's own SQL afterwards
//! (one sort per index instead of millions of random B-tree inserts). The file ends in WAL
//! mode like a collector database, synced to disk. No `ANALYZE`: the collector never runs it
//! either.
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
    /// File size afterwards, bytes.
    pub bytes: u64,
    /// The end of the data (newest start is before it), ms.
    pub end_ms: i64,
}

/// The text form (as the collector stores it) of client MAC number `m`.
pub fn mac_of(m: u64) -> String {
    let b = m.to_be_bytes();
    MacAddr([0x3c, 0x22, 0xfb, b[5], b[6], b[7]]).to_string()
}

/// Builds the database at `db` (replacing it). `now_ms` is the wall clock.
///
/// # Errors
/// SQLite and file errors.
pub fn load(shape: &Shape, db: &Path, now_ms: i64) -> anyhow::Result<BulkReport> {
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
    let span_ms = (shape.days.max(1) * 86_400_000) as i64;
    let groups = shape.groups.max(1) as u64;
    let pool = (shape.macs / groups).max(1);
    let mut rng = Rng::new(shape.seed);
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
                let sig = -40 - ((h >> 12) % 45) as i64;
                let seq = i as i64 + 1;
                last_seq = seq;
                ins.execute(params![
                    id,
                    sid,
                    boot,
                    mac_of(m),
                    SSIDS[(h % 3) as usize],
                    format!("phy{radio}-ap0"),
                    bssid(d as usize, radio).to_string(),
                    if radio == 0 { 2437 } else { 5180 },
                    start,
                    start - booted,
                    seq,
                    stop,
                    stop.map(|_| if h % 10 == 0 { "vanished" } else { "left" }),
                    seen,
                    seen - booted,
                    seq + 1,
                    sig,
                    seen - (h >> 40) as i64 % 20_000,
                    rx_bytes as i64,
                    tx_bytes as i64,
                    (rx_bytes / 700) as i64,
                    (tx_bytes / 700) as i64,
                ])?;
                rep.sessions += 1;
                rep.open += u64::from(stop.is_none());
            }
            dev.execute(params![
                id,
                format!("AP {d}"),
                format!("org-{:02}", g % shape.orgs.max(1) as u64),
                format!("group-{g:03}"),
                end_ms,
                boot,
                (mix(d) as u32),
                last_seq,
            ])?;
        }
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
    Ok(rep)
}
