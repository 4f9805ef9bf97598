//! Read-only operations endpoints: buffer status, health, events, worker status, metrics.

use super::{ApiError, AppState};
use crate::status::{Status, Verdict};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub async fn buffer_status(State(state): State<AppState>) -> Json<Status> {
    Json(state.status.snapshot())
}

/// `GET /v1/health`: 200 when healthy or degraded, 503 when unhealthy (the verdict is the
/// status model's: `Status::health`).
pub async fn health(State(state): State<AppState>) -> Response {
    let s = state.status.snapshot();
    let database = state.buffer.ping().await.map_err(|e| e.to_string());
    let health = s.health(database);
    let code = if health.status == Verdict::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(health)).into_response()
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
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    // Events name receipts, tills and totals: in LAN mode only tills and the manager read them.
    let q = super::browse::query(query)?;
    let page = match q.latest {
        Some(n) => state.buffer.latest_events(n).await,
        None => state.buffer.events(q.after.unwrap_or(0), q.limit.unwrap_or(100)).await,
    }?;
    Ok(Json(page).into_response())
}

#[derive(Serialize)]
struct WorkerStatusBody {
    #[serde(flatten)]
    status: crate::worker::WorkerState,
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
    let text = crate::metrics::render_all(
        &state.metrics,
        &s,
        state.buffer.writer_stats(),
        state.buffer.file_sizes(),
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}
