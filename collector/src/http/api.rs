//! Handlers of the JSON API, the CSV export and the embedded dashboard.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::auth::Principal;
use super::error::ApiError;
use super::live::REFUSED_EXPORT;
use super::params::{self, Cursor, Params};
use super::AppState;
use crate::read::clients::{
    self, ClientsQuery, ClientsRow, Period, TrendBy, TrendPoint, TrendQuery, CLIENTS_FIELDS,
    TREND_FIELDS,
};
use crate::read::devices::{self, DeviceFilter};
use crate::read::failed_joins::{
    self, CountBy, CountRow, FailedJoinFilter, FailedJoinRow, COUNT_FIELDS, FAILED_JOIN_FIELDS,
};
use crate::read::presence::{self, PresenceQuery};
use crate::read::roams::{self, PairRow, RoamFilter, RoamRow, PAIR_FIELDS, ROAM_FIELDS};
use crate::read::sessions::{self, SessionFilter, SessionRow, SESSION_FIELDS};
use crate::read::{csv, status};
use crate::timefmt::{now_ms, rfc3339_ms};

/// Page size of `GET /api/v1/sessions` without `limit`.
pub const DEFAULT_PAGE: u32 = 100;
/// Largest JSON page.
pub const MAX_PAGE: u32 = 1000;
/// Rows of a roams or failed joins listing (or of counts) without `limit`.
pub const DEFAULT_REPORT_ROWS: u32 = 1000;
/// Most rows of such a listing.
pub const MAX_REPORT_ROWS: u32 = 100_000;
/// Rows per database round trip of the streamed CSV.
const CSV_CHUNK: u32 = 1000;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");
/// uPlot 1.6.32 (MIT), the dashboard's chart library, as published on the npm registry
/// (`dist/uPlot.iife.min.js`, `dist/uPlot.min.css`, `LICENSE`): vendored, so the dashboard
/// works offline. docs/DEPENDENCIES.md says why this one; a test checks the files' hashes.
pub const UPLOT_JS: &str = include_str!("../../assets/vendor/uPlot.iife.min.js");
/// uPlot's stylesheet.
pub const UPLOT_CSS: &str = include_str!("../../assets/vendor/uPlot.min.css");
/// uPlot's licence, served beside it.
pub const UPLOT_LICENSE: &str = include_str!("../../assets/vendor/uPlot.LICENSE");
/// The OpenAPI 3 document of this API (hand-written; a test checks it against [`super::routes`]).
pub const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the dashboard (no data in it; the page asks the API).
pub async fn dashboard() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /assets/app.js`.
pub async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /assets/style.css`.
pub async fn style_css() -> Response {
    asset(STYLE_CSS, "text/css; charset=utf-8")
}

/// `GET /assets/vendor/uPlot.iife.min.js`: the chart library (immutable: its name carries no
/// version, so it is revalidated like the other assets).
pub async fn uplot_js() -> Response {
    asset(UPLOT_JS, "text/javascript; charset=utf-8")
}

/// `GET /assets/vendor/uPlot.min.css`.
pub async fn uplot_css() -> Response {
    asset(UPLOT_CSS, "text/css; charset=utf-8")
}

/// `GET /assets/vendor/uPlot.LICENSE`: the chart library's MIT licence.
pub async fn uplot_license() -> Response {
    asset(UPLOT_LICENSE, "text/plain; charset=utf-8")
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Response {
    asset(OPENAPI_JSON, "application/json")
}

/// The database answers a read within 5 s (`None`), or why not.
async fn database_problem(st: &AppState) -> Option<String> {
    let read = st
        .reader
        .run(|db| Ok(db.query_one("SELECT count(*) FROM devices", &[])?));
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok(_)) => None,
        Ok(Err(_)) => Some("database: not readable (see the collector's log)".into()),
        Err(_) => Some("database: a read took longer than 5 s".into()),
    }
}

fn health_answer(problems: Vec<String>, ok: &str) -> Response {
    if problems.is_empty() {
        return Json(json!({ "status": ok })).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "error", "error": problems.join("; "), "problems": problems })),
    )
        .into_response()
}

/// `GET /healthz` (liveness): 503 when the database cannot be read, the writer's transaction
/// has run longer than `ready_stall_s`, or messages have waited that long with nothing
/// committed; a restart may help then.
pub async fn healthz(State(st): State<AppState>) -> Response {
    let stall_ms = st.cfg.limits.ready_stall_s.saturating_mul(1000) as i64;
    let mut problems = st.health.snapshot().stalls(now_ms(), stall_ms);
    problems.extend(database_problem(&st).await);
    health_answer(problems, "ok")
}

/// `GET /readyz` (readiness): everything `/healthz` checks, and the broker connection: 503
/// when it has been down longer than `ready_stall_s` (the collector ingests nothing).
pub async fn readyz(State(st): State<AppState>) -> Response {
    let stall_ms = st.cfg.limits.ready_stall_s.saturating_mul(1000) as i64;
    let snap = st.health.snapshot();
    let now = now_ms();
    let mut problems = snap.stalls(now, stall_ms);
    problems.extend(snap.broker(now, stall_ms));
    problems.extend(database_problem(&st).await);
    health_answer(problems, "ready")
}

/// Any other path.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint (see /api/v1/openapi.json)")
}

/// A known path with another method.
pub async fn no_method() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this endpoint".into(),
    }
}

/// `GET /api/v1/sessions`: the CLI's filters as parameters; JSON pages with a cursor, or the
/// whole result as streamed CSV with `format=csv`.
pub async fn sessions(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut p = Params::new(q.as_deref());
    let mut filter = params::session_filter(&mut p, now)?;
    filter.organization = who.scope_org(filter.organization.take())?;
    let format = p.get("format");
    let cursor = match p.get("cursor") {
        None => None,
        Some(c) => Some(
            Cursor::decode(&c)
                .ok_or_else(|| ApiError::bad_param("cursor", "not a cursor of this API"))?,
        ),
    };
    let now = st.now(now);
    match format.as_deref() {
        None | Some("json") => {
            let limit = p.number("limit", MAX_PAGE)?.unwrap_or(DEFAULT_PAGE);
            p.finish()?;
            filter.after = cursor;
            filter.limit = Some(limit + 1);
            let (rows, next) = st
                .reader
                .run(move |db| {
                    let mut rows = sessions::list_keyed(db, &filter, now)?;
                    let more = rows.len() > limit as usize;
                    rows.truncate(limit as usize);
                    let next = if more {
                        rows.last().map(|r| r.1.clone())
                    } else {
                        None
                    };
                    let rows: Vec<SessionRow> = rows.into_iter().map(|r| r.0).collect();
                    Ok((rows, next))
                })
                .await?;
            Ok(Json(json!({
                "sessions": rows,
                "next_cursor": next.map(|c| c.encode()),
            }))
            .into_response())
        }
        Some("csv") => {
            let limit = p.number("limit", u32::MAX)?;
            p.finish()?;
            let Ok(permit) = Arc::clone(&st.live.exports).try_acquire_owned() else {
                st.live.refused[REFUSED_EXPORT].fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::busy(format!(
                    "too many CSV exports running ({}); try again later",
                    st.cfg.limits.csv_exports
                )));
            };
            filter.after = cursor;
            Ok(csv_response(st, filter, limit, now, permit))
        }
        Some(other) => Err(ApiError::bad_param(
            "format",
            format!("expected json or csv: {other:?}"),
        )),
    }
}

/// Where a CSV export is.
struct Export {
    st: AppState,
    filter: SessionFilter,
    now: sessions::Now,
    /// Rows still to send.
    left: u64,
    /// Header line sent.
    started: bool,
    /// Last page sent.
    done: bool,
    /// One of `csv_exports`, held until the body is dropped.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The CSV body, streamed: the next page of rows is read (on a blocking task, with a pooled
/// read connection given back at once) only when the client has taken the previous one, so
/// a client that stops reading holds no thread and no connection, only its last page, until
/// the connection's write timeout closes it. A failure mid-way aborts the body (the client
/// sees an incomplete transfer, not a short file).
fn csv_response(
    st: AppState,
    filter: SessionFilter,
    limit: Option<u32>,
    now: sessions::Now,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let export = Export {
        st,
        filter,
        now,
        left: limit.map_or(u64::MAX, u64::from),
        started: false,
        done: false,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(export, |mut e| async move {
        if !e.started {
            e.started = true;
            let mut head = String::new();
            csv::line(&mut head, &SESSION_FIELDS);
            return Some((Ok(Bytes::from(head)), e));
        }
        if e.done || e.left == 0 {
            return None;
        }
        let n = CSV_CHUNK.min(u32::try_from(e.left).unwrap_or(u32::MAX));
        let mut f = e.filter.clone();
        f.limit = Some(n);
        let now = e.now;
        let page =
            e.st.reader
                .run(move |db| {
                    let rows = sessions::list_keyed(db, &f, now)?;
                    let mut buf = String::with_capacity(rows.len() * 200);
                    for (r, _) in &rows {
                        csv::line(&mut buf, &r.cells());
                    }
                    Ok((buf, rows.len(), rows.last().map(|r| r.1.clone())))
                })
                .await;
        match page {
            Ok((buf, got, last)) => {
                e.left -= got as u64;
                e.done = got < n as usize;
                e.filter.after = last;
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), e))
            }
            Err(err) => {
                // Headers are out already: the body is cut off; the log says why.
                log::error!("http: CSV export failed: {}", err.message);
                e.done = true;
                Some((Err(std::io::Error::other("CSV export failed")), e))
            }
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sessions.csv\""),
    );
    resp
}

/// `GET /api/v1/sessions/{id}`.
pub async fn session(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<SessionRow>, ApiError> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_param("id", "expected 16 hex digits"));
    }
    let now = st.now(now_ms());
    let Ok(stored) = u64::from_str_radix(&id, 16) else {
        return Err(ApiError::bad_param("id", "expected 16 hex digits"));
    };
    let f = SessionFilter {
        // Ids are stored as the i64 with the same bits.
        id: Some(stored as i64),
        limit: Some(1),
        ..SessionFilter::default()
    };
    // If two devices share the id, the newest.
    let row = st
        .reader
        .run(move |db| Ok(sessions::list(db, &f, now)?.pop()))
        .await?;
    match row {
        // A scoped token is told "not found" for another organization's session.
        Some(r) if who.sees(r.organization.as_deref()) => Ok(Json(r)),
        _ => Err(ApiError::not_found(format!("no session {id}"))),
    }
}

/// `POST /api/v1/sessions/refresh` (admin): expiry now, by the same [`crate::jobs::expire`] as the
/// `expire` command and `run`'s schedule; answers what it closed.
///
/// It writes on its own connection while `run`'s writer thread owns another: SQLite
/// serialises the two (`jobs::expire` and the writer's group commits are `IMMEDIATE`
/// transactions, waiting up to the busy timeout for the lock), so a refresh may wait for one
/// group commit or retention batch, and ingest for one refresh.
pub async fn refresh(State(st): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    if !who.admin {
        return Err(ApiError::forbidden("refresh needs a token with role admin"));
    }
    if who.organization.is_some() {
        return Err(ApiError::forbidden(
            "refresh acts on every organization; it needs an admin token without organization",
        ));
    }
    let now = now_ms();
    let closed = st
        .writer
        .refresh(now)
        .await
        .map_err(|e| ApiError::unavailable(format!("refresh: {e}")))?;
    let devices: Vec<String> = closed.iter().map(|c| c.device_id.clone()).collect();
    let sessions: u64 = closed.iter().map(|c| c.sessions).sum();
    for c in &closed {
        log::info!(
            "refresh: device {} silent for {} h: closed {} sessions at {}",
            c.device_id,
            st.cfg.expire_hours,
            c.sessions,
            rfc3339_ms(c.at_ms)
        );
    }
    Ok(Json(json!({
        "expired_sessions": sessions,
        "expired_devices": devices,
        "expire_hours": st.cfg.expire_hours,
        "at": rfc3339_ms(now),
    }))
    .into_response())
}

/// `GET /api/v1/devices`: filters `organization`, `group`, `device` (id or name).
pub async fn devices(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let org = who.scope_org(p.get("organization"))?;
    let group = p.get("group");
    let device = p.get("device");
    p.finish()?;
    let now = st.now(now_ms());
    let f = DeviceFilter {
        organization: org,
        group,
        device,
    };
    let rows = st
        .reader
        .run(move |db| Ok(devices::list(db, &f, now)?))
        .await?;
    Ok(Json(json!({ "devices": rows })).into_response())
}

/// `GET /api/v1/devices/{id}`: the device, its open sessions and its recent history.
pub async fn device(
    State(st): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let history = p.number("history", MAX_PAGE)?.unwrap_or(50);
    p.finish()?;
    let now = st.now(now_ms());
    let f = DeviceFilter {
        organization: who.organization.clone(),
        group: None,
        device: Some(id.clone()),
    };
    let out = st
        .reader
        .run(move |db| {
            let mut devs = devices::list(db, &f, now)?;
            let Some(d) = devs.pop().filter(|_| devs.is_empty()) else {
                return Err(ApiError::not_found(format!("no device {id}")));
            };
            let mut f = SessionFilter {
                devices: vec![d.id.clone()],
                open: Some(true),
                limit: Some(MAX_PAGE),
                ..SessionFilter::default()
            };
            let open = sessions::list(db, &f, now)?;
            f.open = Some(false);
            f.limit = Some(history);
            let recent = sessions::list(db, &f, now)?;
            Ok(json!({ "device": d, "open_sessions": open, "recent_sessions": recent }))
        })
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /api/v1/status`: totals, per organization, and per device (`device` or `group`).
pub async fn status(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let org = who.scope_org(p.get("organization"))?;
    let group = p.get("group");
    let device = p.get("device");
    p.finish()?;
    let now = st.now(now_ms());
    let scope = DeviceFilter {
        organization: org,
        group,
        device,
    };
    let limits = st.cfg.max_open_sessions.clone();
    let out = st
        .reader
        .run(move |db| Ok(status::status(db, &scope, now, &limits)?))
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /api/v1/presence?group=G&from=T&to=T[&min_minutes=M]`: the attendance report.
pub async fn presence(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut p = Params::new(q.as_deref());
    let org = who.scope_org(p.get("organization"))?;
    let group = p
        .get("group")
        .ok_or_else(|| ApiError::bad_param("group", "required"))?;
    let from = p
        .time("from", now)?
        .ok_or_else(|| ApiError::bad_param("from", "required"))?;
    let to = p
        .time("to", now)?
        .ok_or_else(|| ApiError::bad_param("to", "required"))?;
    if to <= from {
        return Err(ApiError::bad_param("to", "must be after from"));
    }
    let min = p.get("min_minutes");
    let min_minutes: i64 = match min {
        None => 0,
        Some(v) => v.parse().ok().filter(|m| *m >= 0).ok_or_else(|| {
            ApiError::bad_param("min_minutes", format!("not a number of minutes: {v:?}"))
        })?,
    };
    p.finish()?;
    let q = PresenceQuery {
        group,
        organization: org,
        from_ms: from,
        to_ms: to,
        min_minutes: u32::try_from(min_minutes).unwrap_or(u32::MAX),
    };
    let rows = st
        .reader
        .run(move |db| Ok(presence::presence(db, &q, now, &Default::default())?))
        .await?;
    Ok(Json(json!({
        "from": rfc3339_ms(from),
        "to": rfc3339_ms(to),
        "min_minutes": min_minutes,
        "clients": rows,
    }))
    .into_response())
}

/// `format`: `json` (default) or `csv`.
fn report_format(p: &mut Params) -> Result<bool, ApiError> {
    match p.get("format").as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_param(
            "format",
            format!("expected json or csv: {other:?}"),
        )),
    }
}

/// `rows` as `{key: [...]}`, or as a CSV document `name.csv` of `fields`.
fn report<T: serde::Serialize>(
    rows: &[T],
    csv_out: bool,
    key: &str,
    name: &str,
    fields: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) -> Response {
    if !csv_out {
        let mut m = serde_json::Map::new();
        m.insert(key.to_owned(), json!(rows));
        return Json(serde_json::Value::Object(m)).into_response();
    }
    let body = csv::document(fields, &rows.iter().map(cells).collect::<Vec<_>>());
    let disposition = format!("attachment; filename=\"{name}.csv\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).expect("an ASCII file name"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The roam filter of `GET /api/v1/roams` and `/roams/pairs`.
fn roam_filter(p: &mut Params, who: &Principal, now: i64) -> Result<RoamFilter, ApiError> {
    let sc = params::scope(p, |o| who.scope_org(o))?;
    Ok(RoamFilter {
        devices: sc.devices,
        group: sc.group,
        organization: sc.organization,
        mac: params::mac(p)?,
        ssid: p.get("ssid"),
        after_ms: p.time("from", now)?,
        before_ms: p.time("to", now)?,
        limit: Some(
            p.number("limit", MAX_REPORT_ROWS)?
                .unwrap_or(DEFAULT_REPORT_ROWS),
        ),
    })
}

/// `GET /api/v1/roams`: roams, newest first (with `mac`, the client's chain, oldest first).
pub async fn roams(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let f = roam_filter(&mut p, &who, now_ms())?;
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let rows = st.reader.run(move |db| Ok(roams::list(db, &f)?)).await?;
    Ok(report(
        &rows,
        csv_out,
        "roams",
        "roams",
        &ROAM_FIELDS,
        RoamRow::cells,
    ))
}

/// `GET /api/v1/roams/pairs`: roams counted per (device left, device joined), most first.
pub async fn roam_pairs(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let f = roam_filter(&mut p, &who, now_ms())?;
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let rows = st.reader.run(move |db| Ok(roams::pairs(db, &f)?)).await?;
    Ok(report(
        &rows,
        csv_out,
        "pairs",
        "roam-pairs",
        &PAIR_FIELDS,
        PairRow::cells,
    ))
}

/// The failed joins filter of `GET /api/v1/failed-joins` and `/failed-joins/counts`.
fn failed_join_filter(
    p: &mut Params,
    who: &Principal,
    now: i64,
) -> Result<FailedJoinFilter, ApiError> {
    Ok(FailedJoinFilter {
        scope: params::scope(p, |o| who.scope_org(o))?,
        mac: params::mac(p)?,
        ssid: p.get("ssid"),
        after_ms: p.time("from", now)?,
        before_ms: p.time("to", now)?,
        limit: Some(
            p.number("limit", MAX_REPORT_ROWS)?
                .unwrap_or(DEFAULT_REPORT_ROWS),
        ),
    })
}

/// `GET /api/v1/failed-joins`: failed joins, newest first.
pub async fn failed_joins(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let f = failed_join_filter(&mut p, &who, now_ms())?;
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let rows = st
        .reader
        .run(move |db| Ok(failed_joins::list(db, &f)?))
        .await?;
    Ok(report(
        &rows,
        csv_out,
        "failed_joins",
        "failed-joins",
        &FAILED_JOIN_FIELDS,
        FailedJoinRow::cells,
    ))
}

/// `GET /api/v1/failed-joins/counts?by=device|ssid|client`: failed joins counted, most first.
pub async fn failed_join_counts(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut p = Params::new(q.as_deref());
    let f = failed_join_filter(&mut p, &who, now_ms())?;
    let by = match p.get("by") {
        None => CountBy::Device,
        Some(v) => CountBy::parse(&v).ok_or_else(|| {
            ApiError::bad_param("by", format!("expected device, ssid or client: {v:?}"))
        })?,
    };
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let rows = st
        .reader
        .run(move |db| Ok(failed_joins::counts(db, &f, by)?))
        .await?;
    Ok(report(
        &rows,
        csv_out,
        "counts",
        "failed-join-counts",
        &COUNT_FIELDS,
        CountRow::cells,
    ))
}

/// `GET /api/v1/trends?period=hour|day&by=total|device|ssid&from=&to=`: series from the
/// aggregates.
pub async fn trends(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut p = Params::new(q.as_deref());
    let scope = params::scope(&mut p, |o| who.scope_org(o))?;
    let period = params::period(&mut p, &[Period::Hour, Period::Day], Period::Hour)?;
    let by = match p.get("by") {
        None => TrendBy::Total,
        Some(v) => TrendBy::parse(&v).ok_or_else(|| {
            ApiError::bad_param("by", format!("expected total, device or ssid: {v:?}"))
        })?,
    };
    let (from_ms, to_ms) = params::series_range(&mut p, period, now)?;
    let ssid = p.get("ssid");
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let q = TrendQuery {
        period,
        from_ms,
        to_ms,
        scope,
        ssid,
        by,
    };
    let rows = st
        .reader
        .run(move |db| Ok(clients::trends(db, &q)?))
        .await?;
    Ok(report(
        &rows,
        csv_out,
        "points",
        "trends",
        &TREND_FIELDS,
        TrendPoint::cells,
    ))
}

/// `GET /api/v1/clients?period=day|week&from=&to=`: distinct clients per day or week.
pub async fn clients_report(
    State(st): State<AppState>,
    who: Principal,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut p = Params::new(q.as_deref());
    let scope = params::scope(&mut p, |o| who.scope_org(o))?;
    let period = params::period(&mut p, &[Period::Day, Period::Week], Period::Day)?;
    let (from_ms, to_ms) = params::series_range(&mut p, period, now)?;
    let ssid = p.get("ssid");
    let csv_out = report_format(&mut p)?;
    p.finish()?;
    let q = ClientsQuery {
        period,
        from_ms,
        to_ms,
        scope,
        ssid,
    };
    let rows = st
        .reader
        .run(move |db| Ok(clients::clients(db, &q)?))
        .await?;
    Ok(report(
        &rows,
        csv_out,
        "rows",
        "clients",
        &CLIENTS_FIELDS,
        ClientsRow::cells,
    ))
}
