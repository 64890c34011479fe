//! The two storage measurements of the ingest benchmark, on the same stream as `publish`
//! (same configuration and seed), without MQTT:
//!
//! - [`raw`]: the storage limit. Every event becomes one plain prepared statement on the
//!   collector's schema (a start an `INSERT` of its session row, an update or stop an
//!   `UPDATE` by primary key), `rows_per_tx` per transaction, WAL and `synchronous=NORMAL` as
//!   the collector opens it. No merge rules, no decoding.
//! - [`store`]: the collector's store path alone: the batches exactly as the agents' outboxes
//!   make them, applied with [`wifisess_collector::writer::Writer::ingest`] (decode, device
//!   check, merge core, SQLite store, counters) in transactions of `group` messages, like the
//!   collector's writer thread does under load.
//!
//! Both build their input in memory first and time only the writing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use rusqlite::{params, Connection};
use wifisess_collector::store::postgres::schema::{self as pg_schema, is_url};
use wifisess_collector::store::postgres::PgStore;
use wifisess_collector::store::sqlite::{schema, SqliteStore};
use wifisess_collector::writer::{Incoming, Writer};
use wifisess_wire::Event;

use crate::fleet::{Fleet, FleetConfig};
use crate::sim::{Mix, Sim};

/// A storage measurement.
#[derive(Debug, Clone, Default)]
pub struct StoreReport {
    /// Events written.
    pub events: u64,
    /// Events by kind.
    pub mix: Mix,
    /// MQTT messages (batches and statuses) for `store`; transactions for `raw`.
    pub messages: u64,
    /// Transactions committed.
    pub transactions: u64,
    /// Seconds spent writing.
    pub seconds: f64,
    /// Session rows in the database afterwards.
    pub sessions: u64,
}

impl StoreReport {
    /// Events per second of writing.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

fn fresh(db: &Path) -> anyhow::Result<Connection> {
    for ext in ["", "-wal", "-shm"] {
        let p = format!("{}{ext}", db.display());
        if Path::new(&p).exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {p}"))?;
        }
    }
    schema::open_writer(db).with_context(|| format!("creating {}", db.display()))
}

fn sessions(conn: &Connection) -> anyhow::Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))? as u64)
}

/// Raw SQLite baseline. See the module documentation.
///
/// # Errors
/// SQLite errors.
pub fn raw(
    cfg: &FleetConfig,
    db: &Path,
    rows_per_tx: u64,
    start_ms: u64,
) -> anyhow::Result<StoreReport> {
    let mut sim = Sim::new(cfg.sim.clone(), start_ms);
    let ms_per_event = 1000.0 / cfg.rate.max(1e-9);
    let mut seqs = vec![0i64; sim.devices.len()];
    let evs: Vec<(usize, i64, i64, i64, Event)> = (0..cfg.events)
        .map(|i| {
            let wall = start_ms + (i as f64 * ms_per_event) as u64;
            let e = sim.next_event();
            seqs[e.device] += 1;
            let up = wall - sim.devices[e.device].booted_ms;
            (e.device, wall as i64, up as i64, seqs[e.device], e.event)
        })
        .collect();
    let mut conn = fresh(db)?;
    let began = Instant::now();
    let mut rep = StoreReport {
        mix: sim.mix,
        ..StoreReport::default()
    };
    {
        let tx = conn.transaction()?;
        let mut st = tx.prepare(
            "INSERT INTO devices (id, name, organization, grp, online, last_seen_ms, boot_id,
             agent_version) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, 'raw')",
        )?;
        for d in &sim.devices {
            st.execute(params![
                d.id,
                d.name,
                d.organization,
                d.group,
                start_ms as i64,
                d.boot_id.to_string()
            ])?;
        }
        drop(st);
        tx.commit()?;
    }
    let boots: Vec<String> = sim.devices.iter().map(|d| d.boot_id.to_string()).collect();
    for chunk in evs.chunks(rows_per_tx.max(1) as usize) {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO sessions (device_id, id, boot_id, mac, ssid, ifname, bssid, freq_mhz,
                 start_ms, has_start, first_up, first_seq, last_seen_ms, open_up, open_seq,
                 signal_up, signal_seq, signal_avg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?9, ?10, ?11, ?10, ?11, ?12)",
            )?;
            let mut upd = tx.prepare_cached(
                "UPDATE sessions SET rx_bytes = ?3, tx_bytes = ?4, rx_packets = ?5,
                 tx_packets = ?6, signal_avg = ?7, last_seen_ms = ?8, last_activity_ms = ?9,
                 open_up = ?10, open_seq = ?11 WHERE device_id = ?1 AND id = ?2",
            )?;
            let mut stop = tx.prepare_cached(
                "UPDATE sessions SET rx_bytes = ?3, tx_bytes = ?4, rx_packets = ?5,
                 tx_packets = ?6, signal_avg = ?7, last_seen_ms = ?8, last_activity_ms = ?9,
                 stop_ms = ?10, stop_reason = ?11, agent_stop_ms = ?10, agent_stop_reason = ?11
                 WHERE device_id = ?1 AND id = ?2",
            )?;
            for (d, wall, up, seq, e) in chunk {
                let dev = &sim.devices[*d].id;
                match e {
                    Event::Start(s) => ins.execute(params![
                        dev,
                        s.id.0 as i64,
                        boots[*d],
                        s.mac.to_string(),
                        String::from_utf8_lossy(&s.ssid),
                        s.ifname,
                        s.bssid.to_string(),
                        s.freq_mhz,
                        wall - s.age_ms as i64,
                        up,
                        seq,
                        s.signal_dbm,
                    ])?,
                    Event::Update(u) => upd.execute(params![
                        dev,
                        u.id.0 as i64,
                        u.rx_bytes as i64,
                        u.tx_bytes as i64,
                        u.rx_packets as i64,
                        u.tx_packets as i64,
                        u.signal_avg_dbm,
                        wall,
                        u.inactive_ms.map(|i| wall - i64::from(i)),
                        up,
                        seq,
                    ])?,
                    Event::Stop(s) => stop.execute(params![
                        dev,
                        s.id.0 as i64,
                        s.rx_bytes as i64,
                        s.tx_bytes as i64,
                        s.rx_packets as i64,
                        s.tx_packets as i64,
                        s.signal_avg_dbm,
                        wall,
                        s.inactive_ms.map(|i| wall - i64::from(i)),
                        wall - s.age_ms as i64,
                        s.reason.as_str(),
                    ])?,
                    _ => 0,
                };
            }
        }
        tx.commit()?;
        rep.transactions += 1;
        rep.events += chunk.len() as u64;
    }
    rep.seconds = began.elapsed().as_secs_f64();
    rep.messages = rep.transactions;
    rep.sessions = sessions(&conn)?;
    Ok(rep)
}

/// One event of the stream: (device index, wall ms, uptime ms, seq, event).
type RawEvent = (usize, i64, i64, i64, Event);

/// The events of `cfg`'s stream.
fn raw_events(cfg: &FleetConfig, start_ms: u64) -> (Sim, Vec<RawEvent>) {
    let mut sim = Sim::new(cfg.sim.clone(), start_ms);
    let ms_per_event = 1000.0 / cfg.rate.max(1e-9);
    let mut seqs = vec![0i64; sim.devices.len()];
    let evs = (0..cfg.events)
        .map(|i| {
            let wall = start_ms + (i as f64 * ms_per_event) as u64;
            let e = sim.next_event();
            seqs[e.device] += 1;
            let up = wall - sim.devices[e.device].booted_ms;
            (e.device, wall as i64, up as i64, seqs[e.device], e.event)
        })
        .collect();
    (sim, evs)
}

/// Raw PostgreSQL baseline: the events of the stream as plain batched statements on the
/// collector's schema, `rows_per_tx` events per transaction: the starts as one multi-row
/// `INSERT` into `sessions_open` (`unnest` arrays), the updates (the last of each session in
/// the transaction) as one `UPDATE … FROM unnest`, the stops as one `INSERT INTO
/// sessions_closed … SELECT` of the open rows with their stop and one `DELETE`. No merge
/// rules, no decoding, no device rows besides the first insert.
///
/// # Errors
/// PostgreSQL errors.
pub fn raw_postgres(
    cfg: &FleetConfig,
    url: &str,
    rows_per_tx: u64,
    start_ms: u64,
) -> anyhow::Result<StoreReport> {
    let (sim, evs) = raw_events(cfg, start_ms);
    drop(fresh_postgres(url)?);
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let mut rep = StoreReport {
        mix: sim.mix,
        ..StoreReport::default()
    };
    let ids: Vec<&str> = sim.devices.iter().map(|d| d.id.as_str()).collect();
    let boots: Vec<String> = sim.devices.iter().map(|d| d.boot_id.to_string()).collect();
    let began = Instant::now();
    c.execute(
        "INSERT INTO devices (id, online, last_seen_ms, agent_version)
         SELECT x, true, $2, 'raw' FROM unnest($1::text[]) AS u(x)",
        &[&ids, &(start_ms as i64)],
    )?;
    let ins = c.prepare(
        "INSERT INTO sessions_open (device_id, id, boot_id, mac, ssid, ifname, bssid, freq_mhz,
            start_ms, has_start, first_up, first_seq, last_seen_ms, open_up, open_seq,
            signal_up, signal_seq, signal_avg)
         SELECT d, i, b, m, s, f, bs, fr, st, true, up, sq, st, up, sq, up, sq, sg
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                     $12::bigint[]) AS u(d, i, b, m, s, f, bs, fr, st, up, sq, sg)",
    )?;
    let upd = c.prepare(
        "UPDATE sessions_open o SET rx_bytes = u.rx, tx_bytes = u.tx, rx_packets = u.rxp,
            tx_packets = u.txp, signal_avg = u.sg, last_seen_ms = u.wall,
            last_activity_ms = u.act, open_up = u.up, open_seq = u.sq
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[]) AS u(d, i, rx, tx, rxp, txp, sg, wall, act, up, sq)
         WHERE o.device_id = u.d AND o.id = u.i",
    )?;
    let close = c.prepare(
        "INSERT INTO sessions_closed (device_id, id, boot_id, mac, ssid, ifname, bssid,
            freq_mhz, start_ms, has_start, first_up, first_seq, stop_ms, stop_reason,
            agent_stop_ms, agent_stop_reason, last_seen_ms, open_up, open_seq, signal_up,
            signal_seq, signal_avg, last_activity_ms, rx_bytes, tx_bytes, rx_packets,
            tx_packets)
         SELECT o.device_id, o.id, o.boot_id, o.mac, o.ssid, o.ifname, o.bssid, o.freq_mhz,
            o.start_ms, o.has_start, o.first_up, o.first_seq, u.stop, u.reason, u.stop,
            u.reason, u.wall, o.open_up, o.open_seq, o.signal_up, o.signal_seq, u.sg, u.act,
            u.rx, u.tx, u.rxp, u.txp
         FROM sessions_open o JOIN unnest($1::text[], $2::bigint[], $3::bigint[],
                     $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                     $9::bigint[], $10::bigint[], $11::text[])
                 AS u(d, i, rx, tx, rxp, txp, sg, wall, act, stop, reason)
            ON o.device_id = u.d AND o.id = u.i",
    )?;
    let del = c.prepare(
        "DELETE FROM sessions_open WHERE (device_id, id) IN
            (SELECT * FROM unnest($1::text[], $2::bigint[]))",
    )?;
    for chunk in evs.chunks(rows_per_tx.max(1) as usize) {
        #[derive(Default)]
        struct Cols {
            d: Vec<String>,
            i: Vec<i64>,
            t: [Vec<Option<String>>; 6],
            n: [Vec<Option<i64>>; 9],
        }
        let (mut starts, mut ups, mut stops) = (Cols::default(), BTreeMap::new(), Cols::default());
        for (d, wall, up, seq, e) in chunk {
            let dev = sim.devices[*d].id.clone();
            let act = |i: Option<u32>| i.map(|i| wall - i64::from(i));
            match e {
                Event::Start(s) => {
                    starts.d.push(dev);
                    starts.i.push(s.id.0 as i64);
                    starts.t[0].push(Some(boots[*d].clone()));
                    starts.t[1].push(Some(s.mac.to_string()));
                    starts.t[2].push(Some(String::from_utf8_lossy(&s.ssid).into_owned()));
                    starts.t[3].push(Some(s.ifname.clone()));
                    starts.t[4].push(Some(s.bssid.to_string()));
                    starts.n[0].push(Some(i64::from(s.freq_mhz)));
                    starts.n[1].push(Some(wall - s.age_ms as i64));
                    starts.n[2].push(Some(*up));
                    starts.n[3].push(Some(*seq));
                    starts.n[4].push(s.signal_dbm.map(i64::from));
                }
                Event::Update(u) => {
                    ups.insert(
                        (dev, u.id.0 as i64),
                        [
                            Some(u.rx_bytes as i64),
                            Some(u.tx_bytes as i64),
                            Some(u.rx_packets as i64),
                            Some(u.tx_packets as i64),
                            u.signal_avg_dbm.map(i64::from),
                            Some(*wall),
                            act(u.inactive_ms),
                            Some(*up),
                            Some(*seq),
                        ],
                    );
                }
                Event::Stop(x) => {
                    ups.remove(&(dev.clone(), x.id.0 as i64));
                    stops.d.push(dev);
                    stops.i.push(x.id.0 as i64);
                    for (k, v) in [
                        Some(x.rx_bytes as i64),
                        Some(x.tx_bytes as i64),
                        Some(x.rx_packets as i64),
                        Some(x.tx_packets as i64),
                        x.signal_avg_dbm.map(i64::from),
                        Some(*wall),
                        act(x.inactive_ms),
                        Some(wall - x.age_ms as i64),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        stops.n[k].push(v);
                    }
                    stops.t[0].push(Some(x.reason.as_str().to_owned()));
                }
                _ => {}
            }
        }
        let mut tx = c.transaction()?;
        if !starts.d.is_empty() {
            tx.execute(
                &ins,
                &[
                    &starts.d,
                    &starts.i,
                    &starts.t[0],
                    &starts.t[1],
                    &starts.t[2],
                    &starts.t[3],
                    &starts.t[4],
                    &starts.n[0],
                    &starts.n[1],
                    &starts.n[2],
                    &starts.n[3],
                    &starts.n[4],
                ],
            )?;
        }
        if !ups.is_empty() {
            let mut u = Cols::default();
            for ((d, i), v) in ups {
                u.d.push(d);
                u.i.push(i);
                for (k, x) in v.into_iter().enumerate() {
                    u.n[k].push(x);
                }
            }
            tx.execute(
                &upd,
                &[
                    &u.d, &u.i, &u.n[0], &u.n[1], &u.n[2], &u.n[3], &u.n[4], &u.n[5], &u.n[6],
                    &u.n[7], &u.n[8],
                ],
            )?;
        }
        if !stops.d.is_empty() {
            let n = &stops.n;
            tx.execute(
                &close,
                &[
                    &stops.d,
                    &stops.i,
                    &n[0],
                    &n[1],
                    &n[2],
                    &n[3],
                    &n[4],
                    &n[5],
                    &n[6],
                    &n[7],
                    &stops.t[0],
                ],
            )?;
            tx.execute(&del, &[&stops.d, &stops.i])?;
        }
        tx.commit()?;
        rep.transactions += 1;
        rep.events += chunk.len() as u64;
    }
    rep.seconds = began.elapsed().as_secs_f64();
    rep.messages = rep.transactions;
    rep.sessions = pg_sessions(url)?;
    Ok(rep)
}

/// The collector's store path without MQTT. See the module documentation.
///
/// # Errors
/// SQLite errors.
pub fn store(
    cfg: &FleetConfig,
    db: &Path,
    prefix: &str,
    group: usize,
    start_ms: u64,
) -> anyhow::Result<StoreReport> {
    let mut fleet = Fleet::new(cfg.clone(), start_ms);
    let mut msgs: Vec<(String, Vec<u8>, u64)> = (0..fleet.sim.devices.len())
        .map(|d| {
            let topic = format!("{prefix}/{}/status", fleet.sim.devices[d].id);
            (topic, fleet.status_payload(d, start_ms), 0)
        })
        .collect();
    // Every batch is acknowledged as soon as it is made: the outboxes never wait.
    let mut pkid: u16 = 0;
    let mut take = |fleet: &mut Fleet, force: bool, msgs: &mut Vec<(String, Vec<u8>, u64)>| {
        let mut made = Vec::new();
        fleet.take_due(
            force,
            |_| true,
            |id, r| {
                msgs.push((
                    format!("{prefix}/{id}/events"),
                    r.out.payload,
                    r.out.events as u64,
                ));
                made.push((r.device, r.out.id));
            },
        );
        for (d, id) in made {
            pkid = pkid.wrapping_add(1);
            let ob = fleet.outbox_mut(d);
            ob.sent(id, pkid);
            ob.acked(pkid);
        }
    };
    while !fleet.exhausted() {
        if let Err(d) = fleet.generate_until_tick() {
            while fleet.near_full(d) {
                take(&mut fleet, true, &mut msgs);
            }
            continue;
        }
        take(&mut fleet, false, &mut msgs);
        fleet.advance_tick();
    }
    while fleet.held() > 0 {
        take(&mut fleet, true, &mut msgs);
    }
    let url = db.to_str().filter(|u| is_url(u)).map(str::to_owned);
    let store: Box<dyn wifisess_collector::store::Store> = match &url {
        Some(u) => Box::new(fresh_postgres(u)?),
        None => Box::new(SqliteStore::from_connection(fresh(db)?)),
    };
    let mut w = Writer::new(store, prefix, Default::default());
    let began = Instant::now();
    let mut rep = StoreReport {
        mix: fleet.mix(),
        ..StoreReport::default()
    };
    for chunk in msgs.chunks(group.max(1)) {
        let receive_ms = wifisess_collector::timefmt::now_ms();
        let incoming: Vec<Incoming<'_>> = chunk
            .iter()
            .map(|(topic, payload, _)| Incoming {
                topic,
                payload,
                receive_ms,
            })
            .collect();
        w.ingest(&incoming)?;
        rep.events += chunk.iter().map(|c| c.2).sum::<u64>();
        rep.transactions += 1;
        rep.messages += chunk.len() as u64;
    }
    rep.seconds = began.elapsed().as_secs_f64();
    drop(w);
    rep.sessions = match &url {
        Some(u) => pg_sessions(u)?,
        None => sessions(&schema::open_read_only(db)?)?,
    };
    Ok(rep)
}

/// An empty PostgreSQL database at `url` with the collector's schema (everything in it is
/// dropped first: a benchmark database, not one to keep).
///
/// # Errors
/// PostgreSQL errors.
pub fn fresh_postgres(url: &str) -> anyhow::Result<PgStore> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("connecting to {}", pg_schema::redact(url)))?;
    c.batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")?;
    Ok(PgStore::open(url, "loadgen")?)
}

fn pg_sessions(url: &str) -> anyhow::Result<u64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    Ok(c.query_one("SELECT count(*) FROM sessions", &[])?
        .get::<_, i64>(0) as u64)
}

/// One retention pass measured transaction by transaction.
#[derive(Debug, Clone, Default)]
pub struct RetentionSteps {
    /// Sessions deleted.
    pub deleted: u64,
    /// Transactions.
    pub steps: u64,
    /// Longest transaction, ms: what an ingest commit waiting for the writer can wait.
    pub max_ms: f64,
    /// Median transaction, ms.
    pub p50_ms: f64,
    /// Which transaction was the longest (1 = the first).
    pub max_at: u64,
    /// The batch size (sessions asked for) of the longest transaction.
    pub max_batch: u32,
    /// The first transaction, ms (it runs on a cold page cache).
    pub first_ms: f64,
    /// Transactions over 100 ms.
    pub over_100ms: u64,
    /// Whole pass, s.
    pub seconds: f64,
}

/// Runs retention on `db` (sessions stopped before `cutoff_ms`) the way the collector's
/// writer does, one transaction at a time, and times each: with `fixed` every batch deletes
/// that many sessions (the collector before the adaptive batches: 5 000), else batches are
/// sized by [`wifisess_collector::jobs::BatchSizer`] as `run` and `prune` do now.
///
/// # Errors
/// SQLite errors.
pub fn retention_steps(
    db: &Path,
    cutoff_ms: i64,
    fixed: Option<u32>,
) -> anyhow::Result<RetentionSteps> {
    use wifisess_collector::jobs::BatchSizer;
    let store = SqliteStore::open(db).with_context(|| format!("opening {}", db.display()))?;
    let mut w = Writer::new(Box::new(store), "wifisess/v1", Default::default());
    let mut sizer = BatchSizer::default();
    let mut times = Vec::new();
    let mut rep = RetentionSteps::default();
    let began = Instant::now();
    loop {
        let limit = fixed.unwrap_or(sizer.limit());
        let t = Instant::now();
        let b = w.prune_batch(cutoff_ms, limit)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        sizer.took(ms as u64);
        if ms > rep.max_ms {
            (rep.max_ms, rep.max_at, rep.max_batch) = (ms, times.len() as u64 + 1, limit);
        }
        times.push(ms);
        rep.deleted += b.sessions;
        if b.sessions < u64::from(limit) {
            break;
        }
    }
    rep.seconds = began.elapsed().as_secs_f64();
    rep.steps = times.len() as u64;
    rep.first_ms = times.first().copied().unwrap_or(0.0);
    rep.over_100ms = times.iter().filter(|&&t| t > 100.0).count() as u64;
    times.sort_by(f64::total_cmp);
    rep.p50_ms = times.get(times.len() / 2).copied().unwrap_or(0.0);
    Ok(rep)
}
