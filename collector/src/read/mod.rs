//! The read side: one set of row types and queries for the CLI and the HTTP API (sessions,
//! devices, status, presence, failed joins, roams, trends and the clients report, counters)
//! and one CSV writer, on a read-only connection to either engine ([`db::ReadDb`]), whose
//! rows carry client names and vendors ([`names`]). Nothing here writes.

pub mod clients;
pub mod csv;
pub mod db;
pub mod devices;
pub mod failed_joins;
pub mod names;
pub mod presence;
pub mod roams;
pub mod sessions;
pub mod status;

pub use db::{ReadDb, ReadError};
pub use sessions::Now;

/// Which devices a query covers: ids or names (any of them), a group, an organization (all
/// narrow; the default covers every device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Device ids or names.
    pub devices: Vec<String>,
    /// Device group.
    pub group: Option<String>,
    /// Organization.
    pub organization: Option<String>,
}

impl Scope {
    /// ` AND {col} IN (SELECT id FROM devices WHERE …)` for each part of the scope, values
    /// appended to `p` (every part a bound value, served by the devices' indexes).
    pub(crate) fn sql(&self, col: &str, p: &mut Vec<db::Val>) -> String {
        let mut out = String::new();
        if !self.devices.is_empty() {
            let first = p.len() + 1;
            let list = (first..first + self.devices.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            p.extend(self.devices.iter().map(|d| db::Val::Text(d.clone())));
            out.push_str(&format!(
                " AND {col} IN (SELECT id FROM devices WHERE id IN ({list}) OR name IN ({list}))"
            ));
        }
        if let Some(g) = &self.group {
            p.push(db::Val::Text(g.clone()));
            out.push_str(&format!(
                " AND {col} IN (SELECT id FROM devices WHERE grp = ${})",
                p.len()
            ));
        }
        if let Some(o) = &self.organization {
            p.push(db::Val::Text(o.clone()));
            out.push_str(&format!(
                " AND {col} IN (SELECT id FROM devices WHERE organization = ${})",
                p.len()
            ));
        }
        out
    }
}

/// The ingest counters by name (all time).
///
/// # Errors
/// Database errors.
pub fn counters(db: &ReadDb) -> Result<Vec<(String, i64)>, ReadError> {
    db.query("SELECT name, value FROM counters ORDER BY name", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::db::Val;
    use super::devices::DeviceFilter;
    use super::sessions::{sessions_sql, Cursor, SessionFilter};
    use super::*;

    fn db() -> (tempfile::TempDir, ReadDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        crate::store::sqlite::SqliteStore::open(&path).unwrap();
        let db = ReadDb::open_sqlite(&path).unwrap();
        (dir, db)
    }

    #[test]
    fn values_are_bound_never_interpolated() {
        let f = SessionFilter {
            open: Some(true),
            mac: Some("AA:bb:cc:dd:ee:ff".into()),
            ssid: Some("x' OR 1 --".into()),
            devices: vec!["ap1".into()],
            limit: Some(5),
            ..SessionFilter::default()
        };
        let (sql, p) = sessions_sql(&f);
        assert!(!sql.contains("x'"));
        assert!(sql.contains("$4"));
        assert_eq!(p.len(), 4);
        assert_eq!(p[1], Val::Text("aa:bb:cc:dd:ee:ff".into()));
    }

    /// Every session filter, the device and status queries, presence, retention and expiry
    /// use an index: no full scan of `sessions` (a scan of a partial index of open sessions
    /// is allowed).
    #[test]
    fn query_plans_use_indexes() {
        let (_dir, db) = db();
        let base = SessionFilter::default;
        let cases: Vec<(&str, SessionFilter, &str)> = vec![
            ("none", base(), "sessions_start"),
            (
                "open",
                SessionFilter {
                    open: Some(true),
                    ..base()
                },
                "sessions_open_start",
            ),
            (
                "closed",
                SessionFilter {
                    open: Some(false),
                    ..base()
                },
                "sessions_start",
            ),
            (
                "device",
                SessionFilter {
                    devices: vec!["a".into(), "b".into()],
                    ..base()
                },
                "devices_name",
            ),
            (
                "group",
                SessionFilter {
                    group: Some("g".into()),
                    ..base()
                },
                "devices_group",
            ),
            (
                "org",
                SessionFilter {
                    organization: Some("o".into()),
                    ..base()
                },
                "devices_org",
            ),
            (
                "mac",
                SessionFilter {
                    mac: Some("02:00:00:00:00:01".into()),
                    ..base()
                },
                "sessions_mac",
            ),
            (
                "ssid",
                SessionFilter {
                    ssid: Some("x".into()),
                    ..base()
                },
                "sessions_ssid",
            ),
            (
                "start_after",
                SessionFilter {
                    start_after_ms: Some(1),
                    ..base()
                },
                "sessions_start",
            ),
            (
                "stop_after",
                SessionFilter {
                    stop_after_ms: Some(1),
                    ..base()
                },
                "sessions_stop",
            ),
            (
                "id",
                SessionFilter {
                    id: Some(1),
                    ..base()
                },
                "sessions_id",
            ),
            (
                "after",
                SessionFilter {
                    after: Some(Cursor {
                        start_ms: 1,
                        device_id: "a".into(),
                        id: 1,
                    }),
                    ..base()
                },
                "sessions_start (start_ms<?)",
            ),
            (
                "open after",
                SessionFilter {
                    open: Some(true),
                    after: Some(Cursor {
                        start_ms: 1,
                        device_id: "a".into(),
                        id: 1,
                    }),
                    ..base()
                },
                "sessions_open_start (start_ms<?)",
            ),
        ];
        for (name, f, index) in cases {
            let (sql, p) = sessions_sql(&f);
            let pl = db.plan(&sql, &p).unwrap();
            assert!(pl.contains(index), "{name}: {pl}");
            assert!(
                !pl.contains("SCAN s;") && !pl.ends_with("SCAN s"),
                "{name}: {pl}"
            );
        }
        // A scan is acceptable only over a partial index of the open sessions.
        let full_scan = |pl: &str| {
            pl.split("; ")
                .any(|p| p.starts_with("SCAN s") && !p.contains("INDEX sessions_open"))
        };
        let devs = DeviceFilter {
            group: Some("g".into()),
            ..DeviceFilter::default()
        };
        let now = Now {
            now_ms: 0,
            dangling_ms: 0,
        };
        let (sql, p) = devices::devices_sql(&db, &devs, now);
        let pl = db.plan(&sql, &p).unwrap();
        assert!(
            pl.contains("sessions_open_device") && pl.contains("devices_group") && !full_scan(&pl),
            "devices: {pl}"
        );
        let (sql, p) = status::open_sessions_sql(&db, &devs);
        let pl = db.plan(&sql, &p).unwrap();
        assert!(
            pl.contains("sessions_open_device") && pl.contains("devices_group") && !full_scan(&pl),
            "status: {pl}"
        );
        let pl = db
            .plan(
                presence::PRESENCE_SQL,
                &[Val::from("g"), Val::Int(2), Val::Int(1), Val::Null],
            )
            .unwrap();
        assert!(
            pl.contains("COVERING INDEX sessions_device_start (device_id=? AND start_ms<?)"),
            "presence: {pl}"
        );
        for (what, sql) in crate::store::sqlite::PLANNED_SQL {
            let pl = db.plan(sql, &[]).unwrap();
            assert!(!full_scan(&pl), "{what}: {pl}");
        }
        for (what, sql, index) in crate::store::sqlite::DERIVE_SQL {
            let pl = db.plan(sql, &[]).unwrap();
            let indexed = pl.contains(&format!("INDEX {index} "));
            assert!(indexed && !full_scan(&pl), "{what}: {pl}");
        }
        // What a metrics scrape reads besides the status: one day's aggregates, the last
        // 24 hours of roams and failed joins, each by its time index.
        for (what, sql, index) in [
            (
                "day rows",
                clients::DAY_ROWS_SQL.to_owned(),
                "agg_daily_time",
            ),
            ("roams 24h", roams::per_device_since_sql(&db), "roams_time"),
            (
                "failed joins 24h",
                failed_joins::per_device_since_sql(&db),
                "failed_joins_time",
            ),
        ] {
            let pl = db.plan(&sql, &[Val::Int(0)]).unwrap();
            assert!(pl.contains(index), "{what}: {pl}");
        }
        let pl = db
            .plan(
                &status::open_per_organization_sql(&db, 2),
                &[Val::from("o1"), Val::from("o2")],
            )
            .unwrap();
        assert!(
            pl.contains("devices_org")
                && pl.contains("INDEX sessions_open_device (device_id=?)")
                && !full_scan(&pl),
            "org limits: {pl}"
        );
    }
}
