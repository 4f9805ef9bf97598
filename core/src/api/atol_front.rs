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

/// A native error (a body too large or too slow, storage refused) in the web server's shape,
/// with its status: a POS reads `error.description`.
fn native_failure(e: ApiError) -> Response {
    let (status, _, message) = e.parts();
    failure(status, message)
}

/// A job as stored: its tasks and what each became when it was posted.
struct Stored {
    tasks: Vec<Value>,
    prepared: Vec<Value>,
}

fn stored(request: &str) -> Option<Stored> {
    let v: Value = serde_json::from_str(request).ok()?;
    Some(Stored {
        tasks: v["request"].as_array()?.clone(),
        prepared: v["prepared"].as_array()?.clone(),
    })
}

/// What a task becomes, decided once when the job is posted and stored with it: the native
/// body (`{"body": …}`) or the refusal (`{"error": [code, text]}`). A job run again after an
/// upgrade sends the very body stored under its key, so a changed mapping cannot make the
/// buffer see another request (and answer `422`) for a receipt it holds.
fn prepare(task: &Value, pos_id: &str) -> Value {
    let body = match res::classify(task) {
        Err(e) => Err(e),
        Ok(Task::Receipt) => atol_task::receipt_body(task, pos_id),
        Ok(Task::Operation(Op::Parsed(kind))) => res::operation_body(kind, task),
        Ok(_) => Ok(json!({})),
    };
    match body {
        Ok(body) => json!({"body": body}),
        Err((code, text)) => json!({"error": [code, text]}),
    }
}

/// `POST /api/v2/requests`.
pub async fn post(State(state): State<AppState>, caller: Option<Extension<Caller>>, body: Body) -> Response {
    let bytes = match super::receipts::read_body(body).await {
        Ok(b) => b,
        Err(e) => return native_failure(e),
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
    let pos_id = super::counter::till_of(caller).unwrap_or_else(|| state.compat.atol_pos_id.clone());
    let hash = jobs::hash(&[json!({"pos_id": pos_id, "request": tasks}).to_string().as_bytes()]);
    let prepared: Vec<Value> = tasks.iter().map(|t| prepare(t, &pos_id)).collect();
    let job = NewJob {
        front: ATOL,
        id: uuid.to_string(),
        body_hash: hash,
        request_json: json!({"pos_id": pos_id, "request": tasks, "prepared": prepared}).to_string(),
    };
    let hash = job.body_hash.clone();
    let new = match state.buffer.store_job(job).await {
        Ok(new) => new,
        Err(e) => return native_failure(e.into()),
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
    spawn(&state, uuid.to_string(), Stored { tasks, prepared }, Vec::new());
    state.jobs.idle(ATOL, uuid, state.compat.atol_wait).await;
    let results = results(&state, uuid).await.ok().flatten().unwrap_or_default();
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
        Ok(Some(results)) => Json(json!({"results": results})).into_response(),
        Ok(None) => failure(StatusCode::NOT_FOUND, format!("Задание с UUID [{uuid}] не найдено")),
        // Never "not found" for a job that may exist: the POS would send it again.
        Err(e) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Не удалось прочитать задание ({e}): повторите запрос"),
        ),
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
        Err(e) => native_failure(e.into()),
    }
}

/// The job's entries now; starts a runner when it is unfinished and none has it.
async fn results(state: &AppState, uuid: &str) -> Result<Option<Vec<Value>>, crate::buffer::Error> {
    let Some(job) = state.buffer.job(ATOL, uuid.to_string()).await? else {
        return Ok(None);
    };
    let Some(Stored { tasks, prepared }) = stored(&job.request_json) else {
        return Ok(None);
    };
    let done: Vec<Value> = job
        .results_json
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let on = state.jobs.on(ATOL, uuid);
    let unfinished = done.len() < tasks.len() || !done.iter().all(res::is_final);
    let n = tasks.len();
    if unfinished && on.is_none() {
        spawn(state, uuid.to_string(), Stored { tasks, prepared }, done.clone());
    }
    Ok(Some(
        (0..n)
            .map(|i| match (done.get(i), on) {
                // A blocked task stays blocked while a runner asks about it again.
                (Some(r), _) => r.clone(),
                (None, Some(j)) if j == i => res::in_progress(),
                (None, _) => res::waiting(),
            })
            .collect(),
    ))
}

/// Runs the job in the background (once: a runner already on it keeps it), from the results
/// stored so far (`done`: only a runner writes them, and none has the job when this claims it).
fn spawn(state: &AppState, uuid: String, job: Stored, done: Vec<Value>) {
    let Some(running) = state.jobs.start(ATOL, &uuid) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        // Done tasks stay done; the first unfinished one is asked again (its key replays it).
        let mut results: Vec<Value> = done.into_iter().take_while(res::is_final).collect();
        let Stored { tasks, prepared } = job;
        for (i, task) in tasks.iter().enumerate().skip(results.len()) {
            running.on(i);
            let entry = execute(&state, &uuid, i, task, prepared.get(i).unwrap_or(&Value::Null)).await;
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

/// One task's entry, from what it became when the job was posted.
async fn execute(state: &AppState, uuid: &str, i: usize, task: &Value, prepared: &Value) -> Value {
    if let Some(e) = prepared["error"].as_array() {
        let code = e.first().and_then(Value::as_i64).unwrap_or(501);
        return res::error((code, e.get(1).and_then(Value::as_str).unwrap_or_default().to_string()));
    }
    let body = &prepared["body"];
    let kind = match res::classify(task) {
        Ok(k) => k,
        Err(e) => return res::error(e),
    };
    match kind {
        Task::Receipt => {
            let Native { http, body } = jobs::receipt(state, format!("{ATOL}:{uuid}"), body).await;
            res::from_native(http, &body, |b| res::receipt_result(b, &state.zone))
        }
        Task::Operation(op) => {
            let kind = match op {
                Op::Parsed(kind) => Some(kind),
                Op::DrawerOpen => None,
            };
            let Native { http, body } = jobs::operation(state, format!("{ATOL}:{uuid}:{i}"), kind, body).await;
            res::from_native(http, &body, res::operation_result)
        }
        Task::ContinuePrint => res::ready(json!({"warnings": {"notPrinted": false}})),
        Task::Query(q) => match query(state, q).await {
            Ok(v) => res::ready(v),
            Err(e) => res::error(res::refusal(&jobs::native(e.into_response()).await.body)),
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
            res::device_status(&info, &state.zone.local(now).format(crate::time::LOCAL_ISO).to_string())
        }
        Query::FnInfo => res::fn_info(&super::shift::on_register(kkt, move |k| k.device_info(now)).await?),
        Query::OfdExchangeStatus => {
            let info = super::shift::on_register(kkt, move |k| k.device_info(now)).await?;
            let c = state.buffer.counts();
            res::ofd_exchange(&info, c.pending + c.syncing, c.failed, &state.zone)
        }
    })
}
