//! The web server: the job queue over HTTP (`/api/v2/requests`), one device that executes its
//! tasks in order in the background, and the mock's own control endpoints.
//!
//! Its answers as the servers give them (docs/research/atol-exactly-once.md §3): every HTTP
//! error is `{"error": {"code": 505, "description": …}}` (S5 `src/server.js` fSendError); a
//! duplicate uuid is `409` "Не удалось добавить задание с UUID [..], задание с таким UUID уже
//! есть", checked before the device's connection, whose loss is `409` "ККТ [1] не подключена"
//! (S5 `src/device.js`); with credentials set, every call but `serverInfo` needs HTTP Basic and
//! gets `401` with `WWW-Authenticate: Basic realm="kktsite-agent", charset="UTF-8"` otherwise
//! (S5 `src/users.js`, `src/server.js`).

use crate::device::{Fn, is_fiscal};
use crate::faults::Faults;
use crate::jobs::run_job;
use crate::slow::trickle;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One subtask's state.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub(crate) status: &'static str,
    pub(crate) code: i64,
    pub(crate) description: String,
    pub(crate) result: Value,
}

pub(crate) struct Job {
    pub(crate) subs: Vec<Sub>,
}

pub(crate) struct Inner {
    pub(crate) device: Fn,
    pub(crate) faults: Faults,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) number: u64,
    pub(crate) state_file: Option<PathBuf>,
    /// `Authorization` header value every call must carry, when set.
    pub(crate) auth: Option<String>,
    /// How many times each document was read with `getFnDocument` (for tests of bounded
    /// searches: a driver that re-reads the FN shows here).
    pub(crate) document_reads: HashMap<i64, u32>,
    /// How many times each job was asked for (`GET /api/v2/requests/{uuid}`).
    pub(crate) polls: HashMap<String, u32>,
}

impl Inner {
    pub(crate) fn save(&self) {
        if let Some(path) = &self.state_file
            && let Ok(text) = serde_json::to_string(&self.device)
        {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running mock web server.
pub struct MockAtol {
    pub addr: SocketAddr,
    shared: Shared,
}

impl MockAtol {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared).faults = faults;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.shared).faults.clone()
    }

    /// Every fiscal document of the FN.
    pub fn documents(&self) -> Vec<crate::documents::Document> {
        lock(&self.shared).device.documents.clone()
    }

    /// Every counter task the device carried out (cash in and out, X-reports, slips, …).
    pub fn executed(&self) -> Vec<crate::counter::Executed> {
        lock(&self.shared).device.executed.clone()
    }

    /// Another program prints a receipt on this register (no job of ours, no tag).
    pub fn foreign_receipt(&self, operation: &str, total: f64, items: Vec<crate::documents::Item>) -> i64 {
        let mut inner = lock(&self.shared);
        let doc = inner.device.foreign(operation, total, items);
        inner.save();
        doc.number
    }

    /// The server restarts and its in-memory queue is gone (S5 `README.md`): every job is
    /// forgotten (`GET` → 404), whether it ran or not.
    /// How many times each FN document was read (`getFnDocument`), by number.
    pub fn document_reads(&self) -> HashMap<i64, u32> {
        lock(&self.shared).document_reads.clone()
    }

    /// How many times the job `uuid` was asked for so far.
    pub fn polls(&self, uuid: &str) -> u32 {
        lock(&self.shared).polls.get(uuid).copied().unwrap_or(0)
    }

    pub fn forget_jobs(&self) {
        lock(&self.shared).jobs.clear();
    }

    /// Requires HTTP Basic `user`/`password` on every call from now on.
    pub fn require_credentials(&self, user: &str, password: &str) {
        use base64::Engine;
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        lock(&self.shared).auth = Some(format!("Basic {pair}"));
    }

    /// Moves the device's clock.
    pub fn advance_clock(&self, by: Duration) {
        let mut inner = lock(&self.shared);
        inner.device.clock_offset_ms += by.as_millis() as i64;
        inner.save();
    }
}

fn error_json(status: StatusCode, code: i64, description: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "description": description}})),
    )
        .into_response()
}

/// Refuses a call without the credentials, when they are set.
fn unauthorized(s: &Shared, headers: &axum::http::HeaderMap) -> Option<Response> {
    let inner = lock(s);
    let want = inner.auth.as_deref()?;
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given == Some(want) {
        return None;
    }
    let mut r = error_json(StatusCode::UNAUTHORIZED, 505, "unauthorized");
    r.headers_mut().insert(
        "www-authenticate",
        axum::http::HeaderValue::from_static("Basic realm=\"kktsite-agent\", charset=\"UTF-8\""),
    );
    Some(r)
}

async fn post_request(State(s): State<Shared>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refused) = unauthorized(&s, &headers) {
        return refused;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error_json(StatusCode::BAD_REQUEST, 505, "Ошибка парсинга запроса");
    };
    let (Some(uuid), Some(tasks)) = (v["uuid"].as_str(), v["request"].as_array()) else {
        return error_json(StatusCode::BAD_REQUEST, 505, "Поле 'uuid' не задано");
    };
    if tasks.is_empty() {
        return error_json(StatusCode::BAD_REQUEST, 505, "Поле 'request' не задано или пустое");
    }
    let fiscal = tasks
        .iter()
        .filter(|t| is_fiscal(t["type"].as_str().unwrap_or_default()))
        .count();
    if fiscal > 1 {
        return error_json(
            StatusCode::BAD_REQUEST,
            501,
            &format!("Too many fiscal sub-tasks - {fiscal}"),
        );
    }
    let number = {
        let mut inner = lock(&s);
        if inner.jobs.contains_key(uuid) {
            let text = format!("Не удалось добавить задание с UUID [{uuid}], задание с таким UUID уже есть");
            return error_json(StatusCode::CONFLICT, 505, &text);
        }
        if inner.faults.not_connected {
            return error_json(StatusCode::CONFLICT, 505, "ККТ [1] не подключена: Нет связи");
        }
        inner.number += 1;
        let receipt = tasks.iter().any(|t| {
            let kind = t["type"].as_str().unwrap_or_default();
            is_fiscal(kind) && kind != "openShift" && kind != "closeShift"
        });
        if inner.faults.vanish_next_job && receipt {
            // Accepted, then lost with the server's in-memory queue: never run, never found.
            inner.faults.vanish_next_job = false;
            let number = inner.number;
            drop(inner);
            return (
                StatusCode::CREATED,
                Json(json!({"number": number, "uuid": uuid, "isBlocked": false, "blockedUUID": "", "blockReason": ""})),
            )
                .into_response();
        }
        let subs = tasks
            .iter()
            .map(|_| Sub {
                status: "wait",
                code: 0,
                description: String::new(),
                result: Value::Null,
            })
            .collect();
        inner.jobs.insert(uuid.to_string(), Job { subs });
        inner.number
    };
    tokio::spawn(run_job(s.clone(), uuid.to_string(), tasks.clone()));
    (
        StatusCode::CREATED,
        Json(json!({"number": number, "uuid": uuid, "isBlocked": false, "blockedUUID": "", "blockReason": ""})),
    )
        .into_response()
}

async fn get_request(State(s): State<Shared>, headers: axum::http::HeaderMap, Path(uuid): Path<String>) -> Response {
    if let Some(refused) = unauthorized(&s, &headers) {
        return refused;
    }
    let (faults, job) = {
        let mut inner = lock(&s);
        *inner.polls.entry(uuid.clone()).or_default() += 1;
        let job = inner.jobs.get(&uuid).map(|j| j.subs.clone());
        (inner.faults.clone(), job)
    };
    if faults.garbage {
        return (StatusCode::OK, "<html>Internal error</html>").into_response();
    }
    if faults.huge {
        return (StatusCode::OK, "x".repeat(5 << 20)).into_response();
    }
    let Some(subs) = job else {
        return error_json(
            StatusCode::NOT_FOUND,
            505,
            &format!("Задание с UUID [{uuid}] для устройства [1] не найдено"),
        );
    };
    let results: Vec<Value> = subs
        .iter()
        .map(|sub| {
            if faults.flat_errors {
                json!({"status": sub.status, "errorCode": sub.code, "errorDescription": sub.description, "result": sub.result})
            } else {
                json!({"status": sub.status, "error": {"code": sub.code, "description": sub.description}, "result": sub.result})
            }
        })
        .collect();
    let body = json!({"results": results});
    if faults.trickle {
        return trickle(body.to_string());
    }
    Json(body).into_response()
}

async fn control(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "send a JSON object of faults").into_response();
    };
    let mut inner = lock(&s);
    if patch.get("forget_jobs").and_then(Value::as_bool) == Some(true) {
        inner.jobs.clear();
    }
    let mut current = serde_json::to_value(&inner.faults).unwrap_or_default();
    for (k, v) in patch.into_iter().filter(|(k, _)| k != "forget_jobs") {
        current[k] = v;
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(f) => {
            inner.faults = f;
            Json(json!({"faults": inner.faults})).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn clock(State(s): State<Shared>, Json(v): Json<Value>) -> Response {
    let secs = v["advance_secs"].as_i64().unwrap_or(0);
    let mut inner = lock(&s);
    inner.device.clock_offset_ms += secs * 1000;
    inner.save();
    Json(json!({"now": inner.device.now_ms()})).into_response()
}

async fn stats(State(s): State<Shared>) -> Response {
    let inner = lock(&s);
    let receipts = inner.device.documents.iter().filter(|d| d.kind.starts_with("receipt"));
    let mut per_tag: HashMap<&str, u64> = HashMap::new();
    for d in receipts.clone() {
        if let Some(tag) = &d.tag {
            *per_tag.entry(tag.as_str()).or_default() += 1;
        }
    }
    let twice = per_tag.values().filter(|n| **n > 1).count();
    Json(
        json!({"fn_number": inner.device.fn_number, "last_doc": inner.device.last_doc,
                "receipts": receipts.count(), "receipt_tags_registered_twice": twice,
                "documents": inner.device.documents, "executed": inner.device.executed}),
    )
    .into_response()
}

/// `POST /mock/foreign {"type": "sell", "total": 150.0, "items": [{name, price, quantity, amount}]}`:
/// another program prints a receipt on the register.
async fn foreign(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "send a JSON object: {type, total, items}").into_response();
    };
    let total = v["total"].as_f64().unwrap_or(0.0);
    let items = serde_json::from_value(v["items"].clone()).unwrap_or_default();
    let mut inner = lock(&s);
    let doc = inner.device.foreign(v["type"].as_str().unwrap_or("sell"), total, items);
    inner.save();
    Json(json!({"fiscalDocumentNumber": doc.number})).into_response()
}

/// Starts the server; `state_file` keeps the FN across restarts (created if missing).
pub async fn spawn(listen: SocketAddr, state_file: Option<PathBuf>, fn_number: &str) -> std::io::Result<MockAtol> {
    let device = state_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<Fn>(&t).ok())
        .unwrap_or_else(|| Fn::new(fn_number));
    let shared: Shared = Arc::new(Mutex::new(Inner {
        device,
        faults: Faults::default(),
        jobs: HashMap::new(),
        number: 0,
        state_file,
        auth: None,
        document_reads: HashMap::new(),
        polls: HashMap::new(),
    }));
    let app = axum::Router::new()
        .route("/api/v2/requests", post(post_request))
        .route("/api/v2/requests/{uuid}", get(get_request))
        .route("/mock/control", post(control))
        .route("/mock/clock", post(clock))
        .route("/mock/stats", get(stats))
        .route("/mock/foreign", post(foreign))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(MockAtol { addr, shared })
}
