//! The web server: the job queue over HTTP (`/api/v2/requests`), one device that executes its
//! tasks in order in the background, and the mock's own control endpoints.

use crate::device::{Faults, Fn, is_fiscal};
use axum::Json;
use axum::body::Body;
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
struct Sub {
    status: &'static str,
    code: i64,
    description: String,
    result: Value,
}

struct Job {
    subs: Vec<Sub>,
}

struct Inner {
    device: Fn,
    faults: Faults,
    jobs: HashMap<String, Job>,
    number: u64,
    state_file: Option<PathBuf>,
}

impl Inner {
    fn save(&self) {
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

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
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
    pub fn documents(&self) -> Vec<crate::device::Document> {
        lock(&self.shared).device.documents.clone()
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

async fn post_request(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error_json(StatusCode::BAD_REQUEST, 501, "Ошибка парсинга запроса");
    };
    let (Some(uuid), Some(tasks)) = (v["uuid"].as_str(), v["request"].as_array()) else {
        return error_json(StatusCode::BAD_REQUEST, 501, "Поле 'uuid' или 'request' не задано");
    };
    if tasks.is_empty() {
        return error_json(StatusCode::BAD_REQUEST, 501, "Поле 'request' не задано или пустое");
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
            return error_json(StatusCode::CONFLICT, 409, "Задание с таким UUID уже есть");
        }
        inner.number += 1;
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
        Json(json!({"number": number, "uuid": uuid, "isBlocked": false, "blockedUUID": ""})),
    )
        .into_response()
}

/// Executes a job's tasks in order, as the device would.
async fn run_job(s: Shared, uuid: String, tasks: Vec<Value>) {
    for (i, task) in tasks.iter().enumerate() {
        loop {
            let (task_ms, hang) = {
                let mut inner = lock(&s);
                let Some(job) = inner.jobs.get_mut(&uuid) else { return };
                job.subs[i].status = "inProgress";
                (inner.faults.task_ms, inner.faults.hang)
            };
            tokio::time::sleep(Duration::from_millis(task_ms.max(1))).await;
            if !hang {
                break;
            }
        }
        let mut inner = lock(&s);
        let faults = inner.faults.clone();
        let outcome = inner.device.execute(task, &uuid, &faults);
        let crashed =
            outcome.is_ok() && faults.crash_after_register && is_fiscal(task["type"].as_str().unwrap_or_default());
        inner.save();
        if crashed {
            // Registered in the FN, then the server died before it stored the job's result.
            inner.faults.crash_after_register = false;
            inner.jobs.remove(&uuid);
            return;
        }
        let Some(job) = inner.jobs.get_mut(&uuid) else { return };
        match outcome {
            Ok(result) => {
                job.subs[i] = Sub {
                    status: "ready",
                    code: 0,
                    description: "Ошибок нет".into(),
                    result,
                }
            }
            Err((code, description)) => {
                job.subs[i] = Sub {
                    status: "error",
                    code,
                    description,
                    result: Value::Null,
                };
                for later in job.subs.iter_mut().skip(i + 1) {
                    *later = Sub {
                        status: "interrupted",
                        code: 502,
                        description: "Выполнение прервано из-за предыдущих ошибок".into(),
                        result: Value::Null,
                    };
                }
                return;
            }
        }
    }
}

/// An answer dribbled out a byte every 50 ms (the `trickle` fault).
fn trickle(text: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::new(slow::Bytes::new(text.into_bytes())))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A body that yields one byte every 50 ms.
mod slow {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    pub struct Bytes {
        bytes: Vec<u8>,
        at: usize,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl Bytes {
        pub fn new(bytes: Vec<u8>) -> Bytes {
            Bytes {
                bytes,
                at: 0,
                sleep: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            }
        }
    }

    impl http_body::Body for Bytes {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            if self.at >= self.bytes.len() {
                return Poll::Ready(None);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = tokio::time::Instant::now() + Duration::from_millis(50);
            self.sleep.as_mut().reset(next);
            let byte = self.bytes[self.at];
            self.at += 1;
            Poll::Ready(Some(Ok(http_body::Frame::data(axum::body::Bytes::from(vec![byte])))))
        }
    }
}

async fn get_request(State(s): State<Shared>, Path(uuid): Path<String>) -> Response {
    let (faults, job) = {
        let inner = lock(&s);
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
            404,
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
    let mut current = serde_json::to_value(&inner.faults).unwrap_or_default();
    for (k, v) in patch {
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
    let mut per_uuid: HashMap<&str, u64> = HashMap::new();
    for d in inner.device.documents.iter().filter(|d| d.kind == "receipt") {
        *per_uuid.entry(d.uuid.as_str()).or_default() += 1;
    }
    let duplicates = per_uuid.values().filter(|n| **n > 1).count();
    Json(
        json!({"fn_number": inner.device.fn_number, "last_doc": inner.device.last_doc,
                "receipts": per_uuid.len(), "receipt_uuids_registered_twice": duplicates,
                "documents": inner.device.documents}),
    )
    .into_response()
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
    }));
    let app = axum::Router::new()
        .route("/api/v2/requests", post(post_request))
        .route("/api/v2/requests/{uuid}", get(get_request))
        .route("/mock/control", post(control))
        .route("/mock/clock", post(clock))
        .route("/mock/stats", get(stats))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(MockAtol { addr, shared })
}
