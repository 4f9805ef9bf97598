//! Admin endpoints (behind the admin-token layer of `api::router`): manual sync, dead-letter
//! retries and the POS token for the tills' set-up; and the DLQ listing (admin or read token).

use super::{ApiError, AppState};
use crate::worker::{CycleReport, SyncTicket};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State, rejection::PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Deserialize)]
pub struct SyncQuery {
    /// Accepted for compatibility: every manual sync now probes an open breaker.
    #[allow(dead_code)]
    force: Option<bool>,
}

/// How long `POST /v1/kkt/buffer/sync` waits for its cycle before answering `202`.
const SYNC_ANSWER_WITHIN: Duration = Duration::from_millis(800);

#[derive(Serialize)]
struct SyncAnswer {
    /// `completed` (200), or `started` / `already_running` (202).
    status: &'static str,
    /// The cycle's number: given here while it runs, inside `report` once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle: Option<u64>,
    #[serde(flatten)]
    report: Option<CycleReport>,
    /// While running: the cycle's figures so far (also at `GET /v1/kkt/worker/status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<CycleReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// Asks the one worker for a manual cycle (docs/contract.md §1a) and answers within a second:
/// `200` with the cycle's report when it is that quick, else `202` with its number.
pub async fn sync_now(
    State(state): State<AppState>,
    query: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(_) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let ticket = state
        .worker
        .request_sync()
        .ok_or(ApiError::ServiceUnavailable("the sync worker is stopping"))?;
    let n = ticket.cycle();
    if let Some(report) = state.worker.wait_for_cycle(n, SYNC_ANSWER_WITHIN).await {
        let body = SyncAnswer {
            status: "completed",
            cycle: None,
            report: Some(report),
            progress: None,
            message: None,
        };
        return Ok(Json(body).into_response());
    }
    let status = match ticket {
        SyncTicket::Started(_) => "started",
        SyncTicket::AlreadyRunning(_) => "already_running",
    };
    let progress = state.worker.status().current_cycle.filter(|c| c.cycle == n);
    let body = SyncAnswer {
        status,
        cycle: Some(n),
        report: None,
        progress,
        message: Some("the sync runs in the background; follow it at GET /v1/kkt/worker/status"),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Serialize)]
struct DlqList {
    count: usize,
    entries: Vec<crate::buffer::DlqEntry>,
}

pub async fn dlq_list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let entries = state.buffer.dlq().await?;
    Ok(Json(DlqList {
        count: entries.len(),
        entries,
    })
    .into_response())
}

#[derive(Serialize)]
struct Retried {
    status: &'static str,
    retried: usize,
    receipt_ids: Vec<String>,
}

async fn retry(state: &AppState, id: Option<String>) -> Result<Vec<String>, ApiError> {
    let ids = state.buffer.retry_dlq(id).await?;
    if !ids.is_empty() {
        tracing::info!(count = ids.len(), "DLQ entries returned to pending by an operator");
        state.worker.wake();
    }
    Ok(ids)
}

pub async fn dlq_retry_one(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A path segment that is not UTF-8 names nothing here.
    let Path(id) = id.map_err(|_| ApiError::NotFound("DLQ entry"))?;
    let ids = retry(&state, Some(id)).await?;
    if ids.is_empty() {
        return Err(ApiError::NotFound("DLQ entry"));
    }
    Ok(Json(Retried {
        status: "pending",
        retried: ids.len(),
        receipt_ids: ids,
    })
    .into_response())
}

pub async fn dlq_retry_all(State(state): State<AppState>) -> Result<Response, ApiError> {
    let ids = retry(&state, None).await?;
    Ok(Json(Retried {
        status: "pending",
        retried: ids.len(),
        receipt_ids: ids,
    })
    .into_response())
}

#[derive(Serialize)]
struct PosTokens {
    /// Intake needs a POS token on loopback too (LAN mode or `require_pos_token`).
    required: bool,
    /// The shared POS token, to enter in the POS software's settings.
    shared: Option<String>,
    /// The tills that have a token of their own (their tokens are in the config file).
    tills: Vec<String>,
}

/// `GET /v1/kkt/pos-token` (admin): what the window shows for the tills' set-up.
pub async fn pos_token(State(state): State<AppState>) -> Response {
    use secrecy::ExposeSecret;
    let a = &state.access;
    Json(PosTokens {
        required: a.pos_token_required,
        shared: a.pos_shared.as_ref().map(|t| t.expose_secret().to_string()),
        tills: a.pos_tills.iter().map(|(p, _)| p.clone()).collect(),
    })
    .into_response()
}
