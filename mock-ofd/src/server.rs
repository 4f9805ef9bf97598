//! The mock OFD's state, handlers and start-up.

use crate::listener::DownableListener;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Fault injection settings; `POST /ofd/v1/_control` merges a partial JSON object into them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay before every answer.
    pub latency_ms: u64,
    /// Share of receipt calls (0.0–1.0) answered with `failure_status`.
    pub failure_rate: f64,
    pub failure_status: u16,
    /// Sent as `Retry-After` (seconds) with injected failures.
    pub retry_after: Option<u64>,
    /// Every connection is reset.
    pub down: bool,
    /// Receipt calls are never answered (the client's timeout fires).
    pub hang: bool,
    /// Requests are processed (a receipt is accepted) but the connection is reset instead of
    /// answering: the OFD has the document, the client never hears so.
    pub drop_answers: bool,
    /// Documents from these POS ids are rejected with `reject_status`.
    pub reject_pos_ids: Vec<String>,
    /// Share of documents (0.0–1.0) rejected with `reject_status`.
    pub reject_rate: f64,
    pub reject_status: u16,
    /// When set, calls without `Authorization: Bearer <token>` get 401.
    pub token: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            failure_rate: 0.0,
            failure_status: 503,
            retry_after: None,
            down: false,
            hang: false,
            drop_answers: false,
            reject_pos_ids: Vec::new(),
            reject_rate: 0.0,
            reject_status: 422,
            token: None,
        }
    }
}

/// What the mock has received.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Every call to `POST /ofd/v1/receipt` that reached a handler.
    pub received: u64,
    /// Distinct idempotency keys accepted (each stored once).
    pub unique_keys: u64,
    /// Calls repeating an accepted key (answered 409).
    pub duplicates: u64,
    pub injected_failures: u64,
    pub rejected: u64,
    /// FFD 1.2 documents that broke the format's rules (answered 422 with the problems).
    pub invalid: u64,
    pub unauthorized: u64,
    /// Calls without an `Idempotency-Key` or with a body that is not JSON.
    pub malformed: u64,
}

#[derive(Default)]
struct Inner {
    faults: Faults,
    stats: Stats,
    /// key → (ofd_id, the document, deliveries seen)
    accepted: HashMap<String, (String, serde_json::Value, u64)>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    down: Arc<AtomicBool>,
    drop_answers: Arc<AtomicBool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running mock OFD (in-process handle; the same controls exist over HTTP).
#[derive(Clone)]
pub struct MockOfd {
    pub addr: SocketAddr,
    pub control_addr: Option<SocketAddr>,
    shared: Shared,
}

impl MockOfd {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn set_faults(&self, faults: Faults) {
        self.shared.down.store(faults.down, Ordering::Relaxed);
        self.shared.drop_answers.store(faults.drop_answers, Ordering::Relaxed);
        self.shared.lock().faults = faults;
    }
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
    /// Deliveries the mock saw per accepted key (1 means exactly once).
    pub fn deliveries(&self) -> HashMap<String, u64> {
        self.shared
            .lock()
            .accepted
            .iter()
            .map(|(k, (_, _, n))| (k.clone(), *n))
            .collect()
    }
    /// The accepted document for a key.
    pub fn document(&self, key: &str) -> Option<serde_json::Value> {
        self.shared.lock().accepted.get(key).map(|(_, d, _)| d.clone())
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn receipt(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let faults = {
        let mut inner = s.lock();
        inner.stats.received += 1;
        inner.faults.clone()
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.hang {
        std::future::pending::<()>().await;
    }
    if let Some(token) = &faults.token {
        let ok = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {token}"));
        if !ok {
            s.lock().stats.unauthorized += 1;
            return json_response(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "invalid token"}));
        }
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let doc: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let (Some(key), Some(doc)) = (key, doc) else {
        s.lock().stats.malformed += 1;
        return json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "Idempotency-Key and a JSON body are required"}),
        );
    };
    let mut rng = rand::rng();
    if faults.failure_rate > 0.0 && rng.random_bool(faults.failure_rate.clamp(0.0, 1.0)) {
        s.lock().stats.injected_failures += 1;
        let status = StatusCode::from_u16(faults.failure_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut r = json_response(status, serde_json::json!({"error": "injected failure"}));
        if let Some(secs) = faults.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return r;
    }
    let invalid = crate::ffd::problems(&doc);
    if !invalid.is_empty() {
        s.lock().stats.invalid += 1;
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"error": "invalid FFD 1.2 document", "problems": invalid}),
        );
    }
    let pos_id = doc.get("pos_id").and_then(|v| v.as_str()).unwrap_or_default();
    let rejected = faults.reject_pos_ids.iter().any(|p| p == pos_id)
        || (faults.reject_rate > 0.0 && rng.random_bool(faults.reject_rate.clamp(0.0, 1.0)));
    let mut inner = s.lock();
    if let Some((ofd_id, _, n)) = inner.accepted.get_mut(&key) {
        *n += 1;
        let ofd_id = ofd_id.clone();
        inner.stats.duplicates += 1;
        return json_response(
            StatusCode::CONFLICT,
            serde_json::json!({"status": "duplicate", "ofd_id": ofd_id}),
        );
    }
    if rejected {
        inner.stats.rejected += 1;
        let status = StatusCode::from_u16(faults.reject_status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        return json_response(
            status,
            serde_json::json!({"error": "document rejected", "pos_id": pos_id}),
        );
    }
    inner.stats.unique_keys += 1;
    let ofd_id = format!("OFD-{:08}", inner.stats.unique_keys);
    inner.accepted.insert(key, (ofd_id.clone(), doc, 1));
    json_response(
        StatusCode::OK,
        serde_json::json!({"status": "accepted", "ofd_id": ofd_id}),
    )
}

async fn health(State(s): State<Shared>) -> Response {
    let inner = s.lock();
    json_response(
        StatusCode::OK,
        serde_json::json!({"status": "healthy", "receipts": inner.accepted.len()}),
    )
}

async fn reset(State(s): State<Shared>) -> Response {
    let mut inner = s.lock();
    inner.accepted.clear();
    inner.stats = Stats::default();
    json_response(StatusCode::OK, serde_json::json!({"status": "reset"}))
}

async fn get_control(State(s): State<Shared>) -> Response {
    let inner = s.lock();
    json_response(
        StatusCode::OK,
        serde_json::json!({"faults": inner.faults, "stats": inner.stats}),
    )
}

async fn set_control(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let patch: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": "send a JSON object of fault settings"}),
            );
        }
    };
    let mut inner = s.lock();
    let mut current = serde_json::to_value(&inner.faults).unwrap_or_default();
    if let (Some(c), Some(p)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            c.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(f) => {
            s.down.store(f.down, Ordering::Relaxed);
            s.drop_answers.store(f.drop_answers, Ordering::Relaxed);
            inner.faults = f;
            json_response(StatusCode::OK, serde_json::json!({"faults": inner.faults}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, serde_json::json!({"error": e.to_string()})),
    }
}

async fn stats(State(s): State<Shared>) -> Response {
    let inner = s.lock();
    let max_deliveries = inner.accepted.values().map(|(_, _, n)| *n).max().unwrap_or(0);
    json_response(
        StatusCode::OK,
        serde_json::json!({"stats": inner.stats, "max_deliveries_per_key": max_deliveries}),
    )
}

fn control_routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/ofd/v1/_control", get(get_control).post(set_control))
        .route("/ofd/v1/_stats", get(stats))
        .route("/ofd/v1/_test/reset", post(reset))
}

/// Starts the mock on `listen` (port 0 allowed), and an always-up control port if `control` is given.
pub async fn spawn(listen: SocketAddr, control: Option<SocketAddr>, faults: Faults) -> std::io::Result<MockOfd> {
    let shared = Shared {
        inner: Arc::new(Mutex::new(Inner {
            faults: faults.clone(),
            ..Inner::default()
        })),
        down: Arc::new(AtomicBool::new(faults.down)),
        drop_answers: Arc::new(AtomicBool::new(faults.drop_answers)),
    };
    let app = control_routes()
        .route("/ofd/v1/receipt", post(receipt))
        .route("/ofd/v1/health", get(health))
        .with_state(shared.clone());
    let listener = DownableListener {
        inner: tokio::net::TcpListener::bind(listen).await?,
        down: shared.down.clone(),
        drop_answers: shared.drop_answers.clone(),
    };
    let addr = listener.inner.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let control_addr = match control {
        Some(c) => {
            let l = tokio::net::TcpListener::bind(c).await?;
            let a = l.local_addr()?;
            let app = control_routes().with_state(shared.clone());
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
            Some(a)
        }
        None => None,
    };
    Ok(MockOfd {
        addr,
        control_addr,
        shared,
    })
}
