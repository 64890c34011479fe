//! The statements of the derive step and of retention that both adapters run unchanged
//! (`$n` placeholders: PostgreSQL's, and SQLite's after [`lite`]). Statements that differ per
//! engine (the sessions lookups, which on PostgreSQL name the open or the closed table, and
//! the row-locking ones) live in the adapters.

/// `sql` with SQLite's `?n` placeholders.
pub fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The roams of a client arriving in [$2, $3] (index `roams_client`).
pub const CLIENT_ROAMS: &str = "SELECT mac, at_ms, gap_ms, from_device, from_id, \
     from_ifname, from_ssid, from_freq, to_device, to_id, to_ifname, to_ssid, to_freq \
     FROM roams WHERE mac = $1 AND at_ms >= $2 AND at_ms <= $3";

/// Deletes them.
pub const DELETE_CLIENT_ROAMS: &str =
    "DELETE FROM roams WHERE mac = $1 AND at_ms >= $2 AND at_ms <= $3";

/// Inserts a roam; a row of the same destination session of another MAC (a session whose
/// MAC changed) is replaced.
pub const INSERT_ROAM: &str = "INSERT INTO roams (mac, at_ms, gap_ms, from_device, \
     from_id, from_ifname, from_ssid, from_freq, to_device, to_id, to_ifname, to_ssid, to_freq) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (to_device, to_id) DO UPDATE SET mac = excluded.mac, \
     at_ms = excluded.at_ms, gap_ms = excluded.gap_ms, from_device = excluded.from_device, \
     from_id = excluded.from_id, from_ifname = excluded.from_ifname, \
     from_ssid = excluded.from_ssid, from_freq = excluded.from_freq, \
     to_ifname = excluded.to_ifname, to_ssid = excluded.to_ssid, to_freq = excluded.to_freq";

/// A client's day-set rows, days in [$2, $3] (index `agg_clients_mac`).
pub const CLIENT_DAYS: &str = "SELECT day_ms, device_id, ssid FROM agg_clients \
     WHERE mac = $1 AND day_ms >= $2 AND day_ms <= $3";

/// Deletes one day-set row.
pub const DELETE_CLIENT_DAY: &str = "DELETE FROM agg_clients \
     WHERE day_ms = $1 AND device_id = $2 AND ssid = $3 AND mac = $4";

/// Inserts one day-set row.
pub const INSERT_CLIENT_DAY: &str = "INSERT INTO agg_clients (day_ms, device_id, ssid, mac) \
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// (SSID, arrival) of the roams into a device in [$2, $3) (index `roams_to`).
pub const DEVICE_ROAMS: &str =
    "SELECT to_ssid, at_ms FROM roams WHERE to_device = $1 AND at_ms >= $2 AND at_ms < $3";

/// (SSID, association) of a device's failed joins in [$2, $3) (index `failed_joins_device`).
pub const DEVICE_FAILED_JOINS: &str = "SELECT ssid, assoc_ms FROM failed_joins \
     WHERE device_id = $1 AND assoc_ms >= $2 AND assoc_ms < $3";

/// Deletes a device's hourly rows of one hour.
pub const DELETE_HOUR: &str = "DELETE FROM agg_hourly WHERE device_id = $1 AND hour_ms = $2";

/// Inserts an hourly row.
pub const INSERT_HOUR: &str = "INSERT INTO agg_hourly (device_id, hour_ms, ssid, sessions, \
     clients, connected_ms, rx_bytes, tx_bytes, roams, failed_joins) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Deletes a device's daily rows of one day.
pub const DELETE_DAY: &str = "DELETE FROM agg_daily WHERE device_id = $1 AND day_ms = $2";

/// A device's daily rows of day $2: the sums of its hourly rows of the day, per SSID, and the
/// distinct clients of its day set (which hourly counts cannot be summed into).
pub const INSERT_DAY: &str = "INSERT INTO agg_daily (device_id, day_ms, ssid, sessions, \
     clients, connected_ms, rx_bytes, tx_bytes, roams, failed_joins) \
     SELECT $1, $2, k.ssid, coalesce(h.sessions, 0), coalesce(c.clients, 0), \
        coalesce(h.connected_ms, 0), coalesce(h.rx_bytes, 0), coalesce(h.tx_bytes, 0), \
        coalesce(h.roams, 0), coalesce(h.failed_joins, 0) \
     FROM (SELECT ssid FROM agg_hourly WHERE device_id = $1 AND hour_ms >= $2 \
             AND hour_ms < $2 + 86400000 \
           UNION SELECT ssid FROM agg_clients WHERE day_ms = $2 AND device_id = $1) k \
     LEFT JOIN (SELECT ssid, CAST(sum(sessions) AS BIGINT) AS sessions, \
                  CAST(sum(connected_ms) AS BIGINT) AS connected_ms, \
                  CAST(sum(rx_bytes) AS BIGINT) AS rx_bytes, \
                  CAST(sum(tx_bytes) AS BIGINT) AS tx_bytes, \
                  CAST(sum(roams) AS BIGINT) AS roams, \
                  CAST(sum(failed_joins) AS BIGINT) AS failed_joins \
                FROM agg_hourly WHERE device_id = $1 AND hour_ms >= $2 \
                  AND hour_ms < $2 + 86400000 GROUP BY ssid) h ON h.ssid = k.ssid \
     LEFT JOIN (SELECT ssid, count(*) AS clients FROM agg_clients \
                WHERE day_ms = $2 AND device_id = $1 GROUP BY ssid) c ON c.ssid = k.ssid";

/// Records that retention deleted the raw rows of before $1 (the latest cutoff wins).
pub const RECORD_PRUNED: &str = "INSERT INTO retention_horizon (what, before_ms) \
     VALUES ('raw', $1) ON CONFLICT (what) DO UPDATE SET before_ms = CASE \
     WHEN excluded.before_ms > retention_horizon.before_ms THEN excluded.before_ms \
     ELSE retention_horizon.before_ms END";

/// The latest cutoff retention deleted raw rows before.
pub const PRUNED_BEFORE: &str = "SELECT before_ms FROM retention_horizon WHERE what = 'raw'";

/// The oldest instant a pending mark names.
pub const MARKS_FLOOR: &str = "SELECT min(m) FROM (SELECT min(lo_ms) AS m FROM dirty_clients \
     UNION ALL SELECT min(hour_ms) AS m FROM dirty_buckets) x";

/// Retention: failed joins and roams of before $1 (counted by the dry run).
pub const PRUNE_FAILED_JOINS_PLAN: &str = "SELECT count(*) FROM failed_joins WHERE assoc_ms < $1";
/// See [`PRUNE_FAILED_JOINS_PLAN`].
pub const PRUNE_ROAMS_PLAN: &str = "SELECT count(*) FROM roams WHERE at_ms < $1";
/// Deletes at most $2 failed joins of before $1 (index `failed_joins_time`).
pub const PRUNE_FAILED_JOINS: &str = "DELETE FROM failed_joins \
     WHERE (device_id, boot_id, epoch, seq) IN (SELECT device_id, boot_id, epoch, seq \
       FROM failed_joins WHERE assoc_ms < $1 LIMIT $2)";
/// Deletes at most $2 roams of before $1 (index `roams_time`).
pub const PRUNE_ROAMS: &str = "DELETE FROM roams WHERE (to_device, to_id) IN \
     (SELECT to_device, to_id FROM roams WHERE at_ms < $1 LIMIT $2)";
/// Aggregate retention: at most $2 hourly rows of before $1.
pub const PRUNE_HOURLY: &str = "DELETE FROM agg_hourly WHERE (device_id, hour_ms, ssid) IN \
     (SELECT device_id, hour_ms, ssid FROM agg_hourly WHERE hour_ms < $1 LIMIT $2)";
/// Aggregate retention: at most $2 daily rows of before $1.
pub const PRUNE_DAILY: &str = "DELETE FROM agg_daily WHERE (device_id, day_ms, ssid) IN \
     (SELECT device_id, day_ms, ssid FROM agg_daily WHERE day_ms < $1 LIMIT $2)";
/// Aggregate retention: at most $2 day-set rows of before $1.
pub const PRUNE_CLIENT_DAYS: &str = "DELETE FROM agg_clients \
     WHERE (day_ms, device_id, ssid, mac) IN (SELECT day_ms, device_id, ssid, mac \
       FROM agg_clients WHERE day_ms < $1 LIMIT $2)";

/// The statements whose plans the tests check, with a name.
pub const PLANNED: [(&str, &str); 15] = [
    ("client roams", CLIENT_ROAMS),
    ("delete client roams", DELETE_CLIENT_ROAMS),
    ("client days", CLIENT_DAYS),
    ("delete client day", DELETE_CLIENT_DAY),
    ("device roams", DEVICE_ROAMS),
    ("device failed joins", DEVICE_FAILED_JOINS),
    ("delete hour", DELETE_HOUR),
    ("delete day", DELETE_DAY),
    ("insert day", INSERT_DAY),
    ("prune failed joins", PRUNE_FAILED_JOINS),
    ("prune roams", PRUNE_ROAMS),
    ("prune hourly", PRUNE_HOURLY),
    ("prune daily", PRUNE_DAILY),
    ("prune client days", PRUNE_CLIENT_DAYS),
    ("failed joins plan", PRUNE_FAILED_JOINS_PLAN),
];
