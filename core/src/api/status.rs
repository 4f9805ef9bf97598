//! Read-only operations endpoints: buffer status, health, events, worker status, metrics.

use super::{ApiError, AppState};
use crate::metrics::{labelled, single};
use crate::status::{FnAgeLevel, Status};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub async fn buffer_status(State(state): State<AppState>) -> Json<Status> {
    Json(state.status.snapshot())
}

#[derive(Serialize)]
struct Component {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

fn component(status: &'static str, message: Option<String>) -> Component {
    Component { status, message }
}

#[derive(Serialize)]
struct Components {
    buffer: Component,
    circuit_breaker: Component,
    database: Component,
    worker: Component,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    mode: &'static str,
    /// True past the critical FN-age threshold (the fiscal drive blocks at 30 days).
    fn_age_critical: bool,
    components: Components,
    version: &'static str,
}

/// `GET /v1/health`: 200 when healthy or degraded, 503 when unhealthy.
pub async fn health(State(state): State<AppState>) -> Response {
    let s = state.status.snapshot();
    let database = match (state.buffer.ping().await, &s.storage_error) {
        (Err(e), _) => component("unhealthy", Some(e.to_string())),
        (Ok(()), Some(e)) => component(
            "unhealthy",
            Some(format!(
                "the last write failed ({e}); receipts are refused until storage works"
            )),
        ),
        (Ok(()), None) => component("healthy", None),
    };
    let worker = if s.worker.heartbeat_stale {
        component("unhealthy", Some("the sync worker's heartbeat is stale".into()))
    } else if let Some(code) = s.ofd_misconfigured {
        component(
            "degraded",
            Some(format!("the OFD answers HTTP {code}: check the OFD URL and token")),
        )
    } else {
        component("healthy", None)
    };
    let circuit_breaker = match s.breaker.state {
        "closed" => component("healthy", None),
        other => component(
            "degraded",
            Some(format!("circuit breaker {other}: the OFD is unreachable")),
        ),
    };
    let buffer = match s.fn_age.level {
        FnAgeLevel::Critical => component(
            "degraded",
            Some(format!(
                "critical: a receipt has waited {} s for the OFD; the fiscal drive blocks at 30 days",
                s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0)
            )),
        ),
        FnAgeLevel::Warning => component(
            "degraded",
            Some(format!(
                "warning: the oldest unsynced receipt is {} s old",
                s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0)
            )),
        ),
        FnAgeLevel::Ok if s.percent_full >= 80.0 => {
            component("degraded", Some(format!("buffer {}% full", s.percent_full)))
        }
        FnAgeLevel::Ok if s.dlq_size > 0 => component("degraded", Some(format!("{} receipts in the DLQ", s.dlq_size))),
        FnAgeLevel::Ok => component("healthy", None),
    };
    let all = [&buffer, &circuit_breaker, &database, &worker];
    let status = if all.iter().any(|c| c.status == "unhealthy") {
        "unhealthy"
    } else if all.iter().any(|c| c.status == "degraded") {
        "degraded"
    } else {
        "healthy"
    };
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = Health {
        status,
        mode: s.mode,
        fn_age_critical: s.fn_age.level == FnAgeLevel::Critical,
        components: Components {
            buffer,
            circuit_breaker,
            database,
            worker,
        },
        version: env!("CARGO_PKG_VERSION"),
    };
    (code, Json(body)).into_response()
}

#[derive(Deserialize)]
pub struct EventsQuery {
    after: Option<i64>,
    limit: Option<u32>,
    /// The newest N events (oldest first), instead of paging from `after`.
    latest: Option<u32>,
}

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    // Events name receipts, tills and totals: in LAN mode only tills and the manager read them.
    super::guards::require_pos(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let page = match q.latest {
        Some(n) => state.buffer.latest_events(n).await,
        None => state.buffer.events(q.after.unwrap_or(0), q.limit.unwrap_or(100)).await,
    }
    .map_err(|e| {
        tracing::error!(error = %e, "cannot read events");
        ApiError::ServiceUnavailable("the buffer database cannot be read")
    })?;
    Ok(Json(page).into_response())
}

#[derive(Serialize)]
struct WorkerStatusBody {
    #[serde(flatten)]
    status: crate::worker::WorkerStatus,
    heartbeat_stale: bool,
    interval_seconds: f64,
    batch_size: usize,
    concurrency: usize,
    max_attempts: u32,
    breaker: crate::status::BreakerView,
}

pub async fn worker_status(State(state): State<AppState>) -> Response {
    let s = state.status.snapshot();
    let p = state.worker.policy();
    Json(WorkerStatusBody {
        status: state.worker.status(),
        heartbeat_stale: s.worker.heartbeat_stale,
        interval_seconds: p.interval.as_secs_f64(),
        batch_size: p.batch_size,
        concurrency: p.concurrency,
        max_attempts: p.max_attempts,
        breaker: s.breaker,
    })
    .into_response()
}

/// `GET /metrics` in Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let s = state.status.snapshot();
    let mut out = String::with_capacity(4096);
    let counts = [
        ("pending", s.pending),
        ("syncing", s.syncing),
        ("synced", s.synced),
        ("failed", s.failed),
    ];
    labelled(
        &mut out,
        ("kkt_receipts", "gauge", "Receipts in the buffer by status."),
        "status",
        counts,
    );
    single(
        &mut out,
        ("kkt_dlq_size", "gauge", "Receipts in the dead-letter queue."),
        s.dlq_size,
    );
    single(
        &mut out,
        ("kkt_buffer_capacity", "gauge", "Maximum unsynced receipts."),
        s.total_capacity,
    );
    labelled(
        &mut out,
        (
            "kkt_breaker_state",
            "gauge",
            "OFD circuit breaker state (1 for the current one).",
        ),
        "state",
        ["closed", "open", "half_open"].map(|name| (name, u8::from(s.breaker.state == name))),
    );
    single(
        &mut out,
        (
            "kkt_breaker_short_circuited_total",
            "counter",
            "Calls refused by the open breaker.",
        ),
        s.breaker.short_circuited,
    );
    single(
        &mut out,
        (
            "kkt_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest pending receipt.",
        ),
        s.oldest_pending_age_seconds.unwrap_or(0),
    );
    single(
        &mut out,
        (
            "kkt_oldest_unsynced_age_seconds",
            "gauge",
            "Age of the oldest receipt the OFD has not confirmed.",
        ),
        s.fn_age.oldest_unsynced_age_seconds.unwrap_or(0),
    );
    single(
        &mut out,
        (
            "kkt_worker_up",
            "gauge",
            "1 while the sync worker's heartbeat is fresh.",
        ),
        u8::from(!s.worker.heartbeat_stale),
    );
    let w = state.buffer.writer_stats();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    single(
        &mut out,
        (
            "kkt_buffer_commits_total",
            "counter",
            "SQLite transactions committed by the writer (one WAL fsync each).",
        ),
        load(&w.commits),
    );
    single(
        &mut out,
        (
            "kkt_buffer_commands_total",
            "counter",
            "Commands applied by the writer.",
        ),
        load(&w.commands),
    );
    single(
        &mut out,
        ("kkt_buffer_receipts_stored_total", "counter", "New receipts stored."),
        load(&w.receipts),
    );
    single(
        &mut out,
        (
            "kkt_buffer_write_failures_total",
            "counter",
            "Writer transactions rolled back because storage failed.",
        ),
        load(&w.failed),
    );
    let (db, wal) = state.buffer.file_sizes();
    labelled(
        &mut out,
        ("kkt_database_bytes", "gauge", "Size of the buffer database files."),
        "file",
        [("db", db), ("wal", wal)],
    );
    state.metrics.render(&mut out);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
