//! ATOL Web Requests front (docs/contract.md §13; docs/research/atol-web-server.md §1):
//! `POST /api/v2/requests` `{"uuid", "request": [tasks]}` → `201`, `GET /api/v2/requests/{uuid}`
//! → `{"results": [...]}`, a used uuid → `409`. The job is stored before it runs; its receipt is
//! the native receipt under the key `atol:<uuid>`, its counter operations `atol:<uuid>:<i>`.
//! The mappings are in `compat::atol_task` and `compat::atol_result`.

use super::jobs::{self, Native};
use super::{ApiError, AppState, Caller};
use crate::buffer::jobs::{ATOL, NewJob};
use crate::compat::atol_result::{self as res, Op, Query, Task};
use crate::compat::atol_task;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The web server's error answer (`{"error": {"code", "description"}}`, S5) with its status.
fn failure(status: StatusCode, description: impl Into<String>) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "description": description.into()}});
    (status, Json(body)).into_response()
}

/// The tasks of a job as stored, and the till whose receipts they make.
fn stored(request: &str) -> Option<(String, Vec<Value>)> {
    let v: Value = serde_json::from_str(request).ok()?;
    Some((v["pos_id"].as_str()?.to_string(), v["request"].as_array()?.clone()))
}

/// `POST /api/v2/requests`.
pub async fn post(State(state): State<AppState>, caller: Option<Extension<Caller>>, body: Body) -> Response {
    let bytes = match super::receipts::read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return failure(StatusCode::BAD_REQUEST, "Ошибка парсинга запроса: тело не JSON");
    };
    let Some(uuid) = v["uuid"].as_str().filter(|u| jobs::valid_id(u)) else {
        return failure(
            StatusCode::BAD_REQUEST,
            "Поле 'uuid' не задано или некорректно (1–128 печатных символов ASCII)",
        );
    };
    let tasks = match &v["request"] {
        Value::Array(a) if !a.is_empty() => a.clone(),
        Value::Object(_) => vec![v["request"].clone()],
        _ => return failure(StatusCode::BAD_REQUEST, "Поле 'request' не задано или пустое"),
    };
    let fiscal = tasks
        .iter()
        .filter(|t| t["type"].as_str().is_some_and(res::is_fiscal))
        .count();
    if fiscal > 1 {
        return failure(StatusCode::BAD_REQUEST, format!("Too many fiscal sub-tasks - {fiscal}"));
    }
    let pos_id = match caller.map(|c| c.0) {
        Some(Caller::Till(Some(pos))) => pos,
        _ => state.compat.atol_pos_id.clone(),
    };
    let request = json!({"pos_id": pos_id, "request": tasks}).to_string();
    let job = NewJob {
        front: ATOL,
        id: uuid.to_string(),
        body_hash: jobs::hash(&[request.as_bytes()]),
        request_json: request,
    };
    let hash = job.body_hash.clone();
    let new = match state.buffer.store_job(job).await {
        Ok(new) => new,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !new {
        let same = matches!(state.buffer.job(ATOL, uuid.to_string()).await, Ok(Some(j)) if j.body_hash == hash);
        let why = if same {
            format!("Задание с таким UUID уже существует: его результат — GET /api/v2/requests/{uuid}")
        } else {
            format!(
                "Задание с таким UUID уже существует, и его задания другие: это новое задание не выполнено (нужен новый uuid); \
                 результат прежнего — GET /api/v2/requests/{uuid}"
            )
        };
        tracing::info!(uuid, same, "ATOL job with a used uuid refused (409)");
        return failure(StatusCode::CONFLICT, why);
    }
    spawn(&state, uuid.to_string(), pos_id, tasks);
    state.jobs.idle(ATOL, uuid, state.compat.atol_wait).await;
    let results = results(&state, uuid).await.unwrap_or_default();
    let blocked = results.iter().any(|r| r["status"] == "blocked");
    let body = json!({
        "number": 0,
        "uuid": uuid,
        "isBlocked": blocked,
        "blockReason": if blocked { "connectionError" } else { "" },
        "blockedUUID": if blocked { uuid } else { "" },
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `GET /api/v2/requests/{uuid}`: each task's entry; an unfinished job no runner has is run on
/// (after a restart, or when the register was not ready).
pub async fn get(State(state): State<AppState>, Path(uuid): Path<String>) -> Response {
    match results(&state, &uuid).await {
        Some(results) => Json(json!({"results": results})).into_response(),
        None => failure(StatusCode::NOT_FOUND, format!("Задание с UUID [{uuid}] не найдено")),
    }
}

/// `DELETE /api/v2/requests/{uuid}`: the adapter starts a job when it is posted, so there is
/// none left to cancel (Web Requests answers `409` for a job that is not waiting; S5).
pub async fn delete(State(state): State<AppState>, Path(uuid): Path<String>) -> Response {
    match state.buffer.job(ATOL, uuid.clone()).await {
        Ok(Some(_)) => failure(
            StatusCode::CONFLICT,
            "Задание уже выполняется или выполнено: отменить нельзя",
        ),
        Ok(None) => failure(StatusCode::NOT_FOUND, format!("Задание с UUID [{uuid}] не найдено")),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The job's entries now; starts a runner when it is unfinished and none has it.
async fn results(state: &AppState, uuid: &str) -> Option<Vec<Value>> {
    let job = state.buffer.job(ATOL, uuid.to_string()).await.ok()??;
    let (pos_id, tasks) = stored(&job.request_json)?;
    let done: Vec<Value> = job
        .results_json
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let on = state.jobs.on(ATOL, uuid);
    let unfinished = done.len() < tasks.len() || !done.iter().all(res::is_final);
    if unfinished && on.is_none() {
        spawn(state, uuid.to_string(), pos_id, tasks.clone());
    }
    Some(
        (0..tasks.len())
            .map(|i| match (done.get(i), on) {
                // A blocked task stays blocked while a runner asks about it again.
                (Some(r), _) => r.clone(),
                (None, Some(j)) if j == i => res::in_progress(),
                (None, _) => res::waiting(),
            })
            .collect(),
    )
}

/// Runs the job in the background (once: a runner already on it keeps it).
fn spawn(state: &AppState, uuid: String, pos_id: String, tasks: Vec<Value>) {
    let Some(running) = state.jobs.start(ATOL, &uuid) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let stored: Vec<Value> = match state.buffer.job(ATOL, uuid.clone()).await {
            Ok(Some(j)) => j
                .results_json
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default(),
            _ => return,
        };
        // Done tasks stay done; the first unfinished one is asked again (its key replays it).
        let mut results: Vec<Value> = stored.into_iter().take_while(res::is_final).collect();
        for (i, task) in tasks.iter().enumerate().skip(results.len()) {
            running.on(i);
            let entry = execute(&state, &uuid, i, task, &pos_id).await;
            let status = entry["status"].as_str().unwrap_or_default().to_string();
            results.push(entry);
            if status == "error" {
                results.resize_with(tasks.len(), res::interrupted);
            }
            let saved = state
                .buffer
                .set_job_results(ATOL, uuid.clone(), Value::from(results.clone()).to_string())
                .await;
            if let Err(e) = saved {
                tracing::error!(uuid, error = %e, "an ATOL job's results were not stored; a GET runs it again");
                return;
            }
            if status != "ready" {
                break;
            }
        }
    });
}

/// One task's entry.
async fn execute(state: &AppState, uuid: &str, i: usize, task: &Value, pos_id: &str) -> Value {
    let kind = match res::classify(task) {
        Ok(k) => k,
        Err(e) => return res::error(e),
    };
    match kind {
        Task::Receipt => match atol_task::receipt_body(task, pos_id) {
            Ok(body) => {
                let Native { http, body } = jobs::receipt(state, format!("{ATOL}:{uuid}"), &body).await;
                res::from_native(http, &body, res::receipt_result)
            }
            Err(e) => res::error(e),
        },
        Task::Operation(op) => {
            let (kind, body) = match op {
                Op::Parsed(kind) => match res::operation_body(kind, task) {
                    Ok(body) => (Some(kind), body),
                    Err(e) => return res::error(e),
                },
                Op::DrawerOpen => (None, json!({})),
            };
            let Native { http, body } = jobs::operation(state, format!("{ATOL}:{uuid}:{i}"), kind, &body).await;
            res::from_native(http, &body, res::operation_result)
        }
        Task::ContinuePrint => res::ready(json!({"warnings": {"notPrinted": false}})),
        Task::Query(q) => match query(state, q).await {
            Ok(v) => res::ready(v),
            Err(e) => {
                let Native { http, body } = jobs::native(e.into_response()).await;
                res::from_native(http, &body, |_| Value::Null)
            }
        },
    }
}

/// A query's result, read from the register now.
async fn query(state: &AppState, q: Query) -> Result<Value, ApiError> {
    let now = state.clock.utc();
    let kkt = state.kkt.clone();
    Ok(match q {
        Query::ShiftStatus => res::shift_status(&super::shift::on_register(kkt, move |k| k.shift(now)).await?),
        Query::DeviceStatus => {
            let info = super::shift::on_register(kkt, move |k| k.device_info(now)).await?;
            res::device_status(&info, &state.zone.local(now).format("%Y-%m-%dT%H:%M:%S").to_string())
        }
        Query::FnInfo => res::fn_info(&super::shift::on_register(kkt, move |k| k.device_info(now)).await?),
        Query::OfdExchangeStatus => {
            let info = super::shift::on_register(kkt, move |k| k.device_info(now)).await?;
            let c = state.buffer.counts();
            res::ofd_exchange(&info, c.pending + c.syncing, c.failed)
        }
    })
}
