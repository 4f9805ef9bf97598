//! `mock-marking`: emulators of the two services of Честный ЗНАК's permissive mode, written from
//! the public descriptions collected in the adapter's docs/research/marking.md (sources there):
//!
//! - **ТС ПИоТ** [M1 `spoleto-software/Spoleto.Marking.TsPiot` @ 2036387: `CodesCheckRequest.cs`,
//!   `CodesCheckResult.cs`, `CodeInfo.cs`, `imc_checker.proto`]: `POST /api/v1/codes/check`
//!   `{"codes": ["<base64>"], "client_info": {…}}` → `{"codesResponse": {"codesResponse": [{code,
//!   description, codes: [{cis, valid, printView, gtin, found, verified, realizable, utilised,
//!   sold, isBlocked, expireDate, errorCode, …}], reqId, reqTimestamp, isCheckedOffline}]}}`; a
//!   code that is not base64 → `{"error": {errorCode, errorDescription}}`; the emergency mode →
//!   HTTP 203 `{code: 203, message}`.
//! - **ЛМ ЧЗ** [E1 quoting ЦРПТ §2.5; E3; M2 `LocalModuleServiceV1.cs`]: HTTP Basic (admin:admin),
//!   `GET /api/v1/status` → `{status, lastSync, version, inst, …}`; `POST /api/v1/cis/outCheck`
//!   `{"cis_list": [...]}` → `{code: 0, codes: [{cis, printView, gtin, isBlocked, found: false,
//!   valid: false, …}], reqId, reqTimestamp (a string, as E6's sample), isCheckedOffline: true}`;
//!   while not `ready`: HTTP 400 `{errorCode: 4045 | 4050}`.
//!
//! Answers follow the adapter's test codes (`0104630000000001` `21` serial GS `93TEST`; the
//! serial's start: `OK`, `BLOCKED`, `SOLD`, `NOTFOUND`, `NOTAPPLIED`, `FAKE`, `NOTINCIRC`,
//! `EXPIRED`, `BADFORMAT`, `SLOW` — the online answer comes after `slow_ms`, `NOSERVICE` — the
//! online service answers 503). Faults (`set_faults`): `slow_ms` for every online answer,
//! `tspiot_down` (503), `emergency` (203; `emergency_in_body`: 200 with code 203), the local module's `lm_status` and `lm_down`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Faults, switchable at run time.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every online answer waits this long (past the adapter's 1.5 s budget: the offline path).
    pub slow_ms: u64,
    /// ТС ПИоТ answers 503.
    pub tspiot_down: bool,
    /// ГИС МТ in emergency mode: ТС ПИоТ answers HTTP 203.
    pub emergency: bool,
    /// The same said in the body only: HTTP 200 `{code: 203, message}` (M1 `IsEmergencyMode`
    /// reads the body's code).
    pub emergency_in_body: bool,
    /// The local module's status (`ready` when empty): `sync_error`, `initialization`, …
    pub lm_status: String,
    /// The local module answers 503.
    pub lm_down: bool,
    /// How long ago the local module last synchronised its database (0: ten minutes ago).
    pub lm_sync_age_hours: u64,
}

#[derive(Default)]
struct Inner {
    faults: Faults,
    /// Codes asked for online and offline (decoded), in order.
    online: Vec<String>,
    offline: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running emulator pair.
pub struct MockMarking {
    pub tspiot: SocketAddr,
    pub lm: SocketAddr,
    shared: Shared,
}

impl MockMarking {
    pub fn tspiot_url(&self) -> String {
        format!("http://{}", self.tspiot)
    }

    pub fn lm_url(&self) -> String {
        format!("http://{}", self.lm)
    }

    pub fn set_faults(&self, f: Faults) {
        lock(&self.shared).faults = f;
    }

    /// The codes each service was asked about.
    pub fn asked(&self) -> (Vec<String>, Vec<String>) {
        let i = lock(&self.shared);
        (i.online.clone(), i.offline.clone())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One code's online fields by its serial.
fn online_fields(code: &str) -> Value {
    let id = code.split('\u{1d}').next().unwrap_or_default();
    let serial = code.get(18..).unwrap_or_default();
    let mut c = json!({"cis": id, "printView": id, "gtin": code.get(2..16).unwrap_or_default(),
        "valid": true, "found": true, "verified": true, "realizable": true, "utilised": true,
        "sold": false, "isBlocked": false, "errorCode": 0, "groupIds": [8], "ogvs": []});
    match serial {
        s if s.starts_with("BLOCKED") => {
            c["isBlocked"] = json!(true);
            c["ogvs"] = json!(["FNS"]);
        }
        s if s.starts_with("SOLD") => c["sold"] = json!(true),
        s if s.starts_with("NOTFOUND") => {
            c["found"] = json!(false);
            c["errorCode"] = json!(10);
            c["message"] = json!("Код не найден");
        }
        s if s.starts_with("NOTAPPLIED") => c["utilised"] = json!(false),
        s if s.starts_with("FAKE") => c["verified"] = json!(false),
        s if s.starts_with("NOTINCIRC") => c["realizable"] = json!(false),
        s if s.starts_with("EXPIRED") => c["expireDate"] = json!("2025-01-01T00:00:00.000Z"),
        s if s.starts_with("BADFORMAT") => c["valid"] = json!(false),
        _ => {}
    }
    c
}

async fn codes_check(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let faults = lock(&s).faults.clone();
    let encoded = body["codes"][0].as_str().unwrap_or_default().to_string();
    let Some(code) = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Json(json!({"error": {"errorCode": 2, "errorDescription": "Код маркировки должен быть в base64"}}))
            .into_response();
    };
    lock(&s).online.push(code.clone());
    let serial = code.get(18..).unwrap_or_default().to_string();
    let delay = if serial.starts_with("SLOW") {
        faults.slow_ms.max(2500)
    } else {
        faults.slow_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if faults.tspiot_down || serial.starts_with("NOSERVICE") {
        return (StatusCode::SERVICE_UNAVAILABLE, "ТС ПИоТ недоступен").into_response();
    }
    if faults.emergency || faults.emergency_in_body {
        let status = if faults.emergency {
            StatusCode::NON_AUTHORITATIVE_INFORMATION
        } else {
            StatusCode::OK
        };
        return (
            status,
            Json(json!({"code": 203, "message": "ГИС МТ работает в аварийном режиме"})),
        )
            .into_response();
    }
    Json(json!({"codesResponse": {"codesResponse": [{
        "code": 0, "description": "ok", "codes": [online_fields(&code)],
        "reqId": uuid::Uuid::new_v4().to_string(), "reqTimestamp": now_ms(), "isCheckedOffline": false}]}}))
    .into_response()
}

fn lm_authorized(h: &HeaderMap) -> bool {
    // admin:admin, the module's default.
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Basic YWRtaW46YWRtaW4=")
}

fn lm_state(f: &Faults) -> &str {
    if f.lm_status.is_empty() { "ready" } else { &f.lm_status }
}

async fn lm_status(State(s): State<Shared>, h: HeaderMap) -> Response {
    let f = lock(&s).faults.clone();
    if f.lm_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !lm_authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let last_sync = match (lm_state(&f), f.lm_sync_age_hours) {
        ("sync_error", _) => now_ms() - 80 * 3_600_000,
        (_, 0) => now_ms() - 600_000,
        (_, h) => now_ms() - h as i64 * 3_600_000,
    };
    Json(
        json!({"status": lm_state(&f), "lastSync": last_sync, "version": "mock-1.0", "inst": "mock-inst",
                "operationMode": "active", "dbVersion": 1}),
    )
    .into_response()
}

async fn lm_check(State(s): State<Shared>, h: HeaderMap, Json(body): Json<Value>) -> Response {
    let f = lock(&s).faults.clone();
    if f.lm_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !lm_authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match lm_state(&f) {
        "ready" => {}
        "sync_error" => return (StatusCode::BAD_REQUEST, Json(json!({"errorCode": 4050}))).into_response(),
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"errorCode": 4045}))).into_response(),
    }
    let cis = body["cis_list"][0].as_str().unwrap_or_default().to_string();
    lock(&s).offline.push(cis.clone());
    let serial = cis.get(18..).unwrap_or_default();
    if serial.starts_with("NOSERVICE") {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({"code": 0, "description": "ok", "codes": [{"cis": cis, "printView": cis, "gtin": cis.get(2..16).unwrap_or_default(),
        "found": false, "valid": false, "verified": false, "realizable": false, "utilised": false,
        "isBlocked": serial.starts_with("BLOCKED"), "ogvs": []}],
        "reqId": uuid::Uuid::new_v4().to_string(), "reqTimestamp": now_ms().to_string(),
        "isCheckedOffline": true, "inst": "mock-inst", "version": "mock-1.0"}))
    .into_response()
}

/// Starts both emulators on free loopback ports.
pub async fn spawn() -> std::io::Result<MockMarking> {
    let shared: Shared = Arc::default();
    let tspiot = Router::new()
        .route("/api/v1/codes/check", post(codes_check))
        .with_state(shared.clone());
    let lm = Router::new()
        .route("/api/v1/status", get(lm_status))
        .route("/api/v1/cis/outCheck", post(lm_check))
        .with_state(shared.clone());
    let mut addrs = Vec::new();
    for app in [tspiot, lm] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    Ok(MockMarking {
        tspiot: addrs[0],
        lm: addrs[1],
        shared,
    })
}
