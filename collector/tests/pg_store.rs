//! The PostgreSQL adapter on a real server (a throwaway cluster, see `common::pg`): several
//! writers on one database give one writer's rows, partitions and retention, query plans,
//! read-only connections, TLS.

mod common;

use common::pg::{self, Cluster, EngineDb, Options};
use wifisess_collector::read::db::Val;
use wifisess_collector::read::ReadDb;
use wifisess_collector::store::postgres::{schema, PgStore};
use wifisess_collector::store::{SchemaError, Store};
use wifisess_collector::writer::{Incoming, Writer};

use common::fleet_stream as stream;

const PREFIX: &str = "wifisess/v1";
const DAY: i64 = 86_400_000;

fn apply(w: &mut Writer, msgs: &[&(String, Vec<u8>, i64)]) {
    let incoming: Vec<Incoming<'_>> = msgs
        .iter()
        .map(|(t, p, rx)| Incoming {
            topic: t,
            payload: p,
            receive_ms: *rx,
        })
        .collect();
    w.ingest(&incoming).unwrap();
}

/// Several writers (as several collectors) on one database, each handed an interleaved share
/// of the same devices' messages, duplicated and out of order, in group commits, all at once:
/// the rows equal one SQLite writer's. The device locks serialise them; the writers' cached
/// device states are checked against the stored revision.
#[test]
fn concurrent_writers_give_one_writers_rows() {
    let t0 = 1_760_000_000_000;
    let msgs = stream(12, 9, t0);
    let sqlite = EngineDb::sqlite();
    let mut one = Writer::new(sqlite.store(), PREFIX, Default::default());
    for m in &msgs {
        apply(&mut one, &[m]);
    }
    let want = one.store().dump().unwrap();

    let url = pg::database("concurrent");
    drop(PgStore::open(&url, "setup").unwrap());
    // Member k takes every message whose index ≡ k (mod 3), plus every 5th message again,
    // reversed in chunks: each device's messages are spread over all members and arrive out
    // of order.
    let members: Vec<Vec<(String, Vec<u8>, i64)>> = (0..3)
        .map(|k| {
            let mut mine: Vec<(String, Vec<u8>, i64)> = msgs
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 3 == k || i % 5 == k)
                .map(|(_, m)| m.clone())
                .collect();
            for c in mine.chunks_mut(7) {
                c.reverse();
            }
            mine
        })
        .collect();
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(k, mine)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let store = PgStore::open(&url, &format!("member{k}")).unwrap();
                let mut w = Writer::new(Box::new(store), PREFIX, Default::default());
                for group in mine.chunks(1 + k * 4) {
                    let refs: Vec<&(String, Vec<u8>, i64)> = group.iter().collect();
                    apply(&mut w, &refs);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut check = PgStore::open(&url, "check").unwrap();
    let got = check.dump().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    // Counters are kept per member; the view adds them up.
    let r = ReadDb::open_postgres(&url).unwrap();
    let members = r
        .query_one(
            "SELECT count(DISTINCT instance) FROM counter_shards WHERE name = 'events'",
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(members.int(0).unwrap(), 3);
}

/// Closed sessions go to the partition of their stop month; a partition made later takes the
/// rows of its month out of the default partition; retention drops the partitions whose month
/// ended before the cutoff and deletes the rest in batches.
#[test]
fn partitions_by_stop_month_and_retention_drops_them() {
    let now = wifisess_collector::timefmt::now_ms();
    let url = pg::database("partitions");
    let mut store = PgStore::open(&url, "p").unwrap();
    let this = schema::month_of(now);
    let have = schema::partitions(store.client()).unwrap();
    assert_eq!(
        have,
        (this..=this + schema::MONTHS_AHEAD).collect::<Vec<_>>()
    );
    // Three months ago: into the default partition, until its partition is made.
    let t_old = schema::month_start_ms(this - 3) + 5 * DAY;
    let old = stream(2, 4, t_old);
    let mut w = Writer::new(Box::new(store), PREFIX, Default::default());
    for m in &old {
        apply(&mut w, &[m]);
    }
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |c: &mut postgres::Client, t: &str| -> i64 {
        c.query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .unwrap()
            .get(0)
    };
    let closed = count(&mut c, "sessions_closed");
    assert!(closed > 0);
    assert_eq!(count(&mut c, "sessions_closed_default"), closed);
    let mut store = PgStore::open(&url, "p").unwrap();
    assert_eq!(
        store
            .ensure_partitions(schema::month_start_ms(this - 3), now)
            .unwrap(),
        3
    );
    let name = schema::partition_name(this - 3);
    assert_eq!(count(&mut c, "sessions_closed_default"), 0);
    assert_eq!(count(&mut c, &name), closed);
    // Retention with a cutoff past that month: the partition is dropped whole.
    let mut w = Writer::new(Box::new(store), PREFIX, Default::default());
    // Retention waits for the derived data (trends) of those sessions: derive them first.
    let cfg = wifisess_collector::derive::DeriveConfig {
        roam_window_ms: 10_000,
    };
    wifisess_collector::derive::until_idle(&mut w, &cfg, now).unwrap();
    let cutoff = schema::month_start_ms(this - 2) + DAY;
    let plan = w.store().prune_plan(cutoff).unwrap();
    assert_eq!(plan.sessions, closed as u64);
    let rep = wifisess_collector::jobs::prune(&mut w, cutoff).unwrap();
    assert_eq!(rep, plan);
    let exists: bool = c
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap()
        .get(0);
    assert!(!exists, "{name} dropped");
    assert_eq!(count(&mut c, "sessions_closed"), 0);
    // Open sessions are untouched, and the read side still reads them.
    let r = ReadDb::open_postgres(&url).unwrap();
    let open = r
        .query_one("SELECT count(*) FROM sessions WHERE stop_ms IS NULL", &[])
        .unwrap()
        .unwrap();
    assert_eq!(open.int(0).unwrap(), count(&mut c, "sessions_open"));
}

/// Every session filter, the device and status queries, presence and the jobs' statements
/// have a plan without a sequential scan of a sessions table (with sequential scans made
/// expensive, as on a big database; a small one would rightly scan).
#[test]
fn query_plans_use_indexes() {
    use wifisess_collector::read::sessions::{sessions_sql, Cursor, SessionFilter};
    let url = pg::database("plans");
    drop(PgStore::open(&url, "p").unwrap());
    let r = ReadDb::open_postgres(&url).unwrap();
    r.query("SET enable_seqscan = off", &[]).unwrap();
    let base = SessionFilter::default;
    let filters = vec![
        base(),
        SessionFilter {
            open: Some(true),
            ..base()
        },
        SessionFilter {
            open: Some(false),
            ..base()
        },
        SessionFilter {
            devices: vec!["a".into()],
            ..base()
        },
        SessionFilter {
            group: Some("g".into()),
            ..base()
        },
        SessionFilter {
            mac: Some("02:00:00:00:00:01".into()),
            ..base()
        },
        SessionFilter {
            ssid: Some("x".into()),
            ..base()
        },
        SessionFilter {
            stop_after_ms: Some(1),
            ..base()
        },
        SessionFilter {
            id: Some(1),
            ..base()
        },
        SessionFilter {
            after: Some(Cursor {
                start_ms: 1,
                device_id: "a".into(),
                id: 1,
            }),
            limit: Some(50),
            ..base()
        },
    ];
    let seq_scan = |pl: &str| pl.contains("Seq Scan on sessions");
    for f in filters {
        let (sql, p) = sessions_sql(&f);
        let pl = r.plan(&sql, &p).unwrap();
        assert!(!seq_scan(&pl), "{f:?}: {pl}");
    }
    for (what, sql) in wifisess_collector::store::postgres::PLANNED_SQL {
        let n = sql.matches('$').count();
        let p = vec![Val::Int(1); n.min(2)];
        let pl = r.plan(sql, &p).unwrap();
        assert!(!seq_scan(&pl), "{what}: {pl}");
    }
}

/// Queries never write: a read-only connection refuses writes, an empty database or one of a
/// newer schema is named as such, nothing is created.
#[test]
fn queries_never_write_and_say_why_they_cannot_read() {
    let url = pg::database("never_write");
    let err = ReadDb::open_postgres(&url).err().unwrap().to_string();
    assert!(err.contains("not a wifisess database"), "{err}");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a query created nothing");
    drop(PgStore::open(&url, "p").unwrap());
    let r = ReadDb::open_postgres(&url).unwrap();
    let e = r
        .query("INSERT INTO counter_shards VALUES ('x', 'y', 1)", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("read-only transaction"), "{e}");
    c.batch_execute("INSERT INTO schema_migrations (version, description) VALUES (99, 'future')")
        .unwrap();
    match ReadDb::open_postgres(&url) {
        Err(wifisess_collector::read::ReadError::Open(SchemaError::TooNew {
            found: 99, ..
        })) => {}
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        PgStore::open(&url, "p"),
        Err(SchemaError::TooNew { found: 99, .. })
    ));
}

/// TLS with rustls: `sslmode=require` encrypts without checking the certificate (libpq's
/// meaning), `verify-full` checks it against `sslrootcert`, and fails against the system's
/// roots (the test server's certificate is self-signed).
#[test]
fn tls_require_and_verify_full() {
    let c = Cluster::start(Options {
        tcp_tls: true,
        ..Options::default()
    });
    let url = c.database("tls");
    drop(PgStore::open(&url, "p").unwrap());
    let ssl_in_use = |u: &str| -> bool {
        let r = ReadDb::open_postgres(u).unwrap();
        let row = r
            .query_one(
                "SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .unwrap();
        row.int(0).unwrap() == 1
    };
    let db = url.split("///").nth(1).unwrap().split('?').next().unwrap();
    assert!(ssl_in_use(&c.tcp_url(db, "sslmode=require")));
    let cert = c.certificate();
    let verified = c.tcp_url(
        db,
        &format!("sslmode=verify-full&sslrootcert={}", cert.display()),
    );
    assert!(ssl_in_use(&verified));
    let mut s = PgStore::open(&verified, "tls").unwrap();
    assert!(s.dump().unwrap().is_empty());
    let err = ReadDb::open_postgres(&c.tcp_url(db, "sslmode=verify-full"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
