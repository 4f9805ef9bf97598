//! The permissive mode's services (docs/research/marking.md §3): ТС ПИоТ, the gateway every
//! seller of marked goods must use from 28.12.2025, and the local module ЛМ ЧЗ for the offline
//! check. Both speak JSON over HTTP; the shapes are those of the public clients cited there.
//!
//! - ТС ПИоТ [M1 `CodesCheckRequest.cs`, `CodesCheckResult.cs`, `imc_checker.proto`]: `POST
//!   {url}/api/v1/codes/check` `{"codes": ["<base64 of the code>"], "client_info": {name,
//!   version, id, token}}` → `{"codesResponse": {"codesResponse": [{code, description, codes:
//!   [{…}], reqId, reqTimestamp, isCheckedOffline}]}}`, or `{"error": {errorCode,
//!   errorDescription}}`; HTTP 203 is the emergency mode of ГИС МТ (sell without the check).
//! - ЛМ ЧЗ [E1 quoting ЦРПТ §2.5; E3; M2 `LocalModuleServiceV1.cs`]: HTTP Basic (admin:admin by
//!   default), `X-ClientId: <FN number>`; `GET {url}/api/v1/status` → `{status: ready |
//!   not_configured | initialization | sync_error, lastSync (ms), version, inst}`; `POST
//!   {url}/api/v1/cis/outCheck` `{"cis_list": ["<identifier>"]}` → the same `codes[]` shape,
//!   `reqId`, `reqTimestamp` (a number or a string), `isCheckedOffline: true`.

use super::rules::CodeAnswer;
use crate::receipt::mark::Code;
use serde_json::{Value, json};
use std::time::Duration;

/// One service's answer for one code.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: CodeAnswer,
    pub req_id: Option<String>,
    /// Milliseconds since the epoch, as the service gave it.
    pub req_timestamp: Option<String>,
    /// Checked against the local module's database, not ГИС МТ.
    pub offline: bool,
}

/// Why a service gave no answer to judge by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not within the budget, or not reachable.
    Unreachable(String),
    /// HTTP 203: ГИС МТ in emergency mode — the sale goes on without the check.
    Emergency(String),
    /// It answered, with an error of its own.
    Error(String),
    /// The local module cannot check now (not configured, initialising, out of sync).
    NotReady(String),
}

fn timestamp(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::to_string)
        .or_else(|| v.as_i64().map(|n| n.to_string()))
        .or_else(|| v.as_f64().map(|n| format!("{n:.0}")))
}

/// The first code of a `codes/check`-shaped object.
fn first_code(o: &Value, offline_default: bool) -> Result<Answer, Failure> {
    if let Some(code) = o["code"].as_i64().filter(|c| *c != 0) {
        let what = o["description"].as_str().unwrap_or("ошибка проверки");
        return Err(Failure::Error(format!("{what} (код {code})")));
    }
    let Some(first) = o["codes"].as_array().and_then(|c| c.first()) else {
        return Err(Failure::Error("в ответе нет сведений о коде".into()));
    };
    let code: CodeAnswer =
        serde_json::from_value(first.clone()).map_err(|e| Failure::Error(format!("ответ не разобран: {e}")))?;
    Ok(Answer {
        code,
        req_id: o["reqId"].as_str().map(str::to_string),
        req_timestamp: timestamp(&o["reqTimestamp"]),
        offline: o["isCheckedOffline"].as_bool().unwrap_or(offline_default),
    })
}

fn unreachable(what: &str, e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Unreachable(format!("{what} не ответил вовремя"))
    } else {
        Failure::Unreachable(format!("{what} недоступен: {e}"))
    }
}

/// ТС ПИоТ.
#[derive(Debug, Clone)]
pub struct TsPiot {
    pub url: String,
    pub token: Option<String>,
}

impl TsPiot {
    pub async fn check(
        &self,
        http: &reqwest::Client,
        code: &Code,
        fn_number: &str,
        within: Duration,
    ) -> Result<Answer, Failure> {
        let body = json!({
            "codes": [code.base64()],
            "client_info": {"name": "kkt-adapter", "version": env!("CARGO_PKG_VERSION"), "id": fn_number,
                            "token": self.token.clone().unwrap_or_default()},
        });
        let r = http
            .post(format!("{}/api/v1/codes/check", self.url.trim_end_matches('/')))
            .json(&body)
            .timeout(within)
            .send()
            .await
            .map_err(|e| unreachable("ТС ПИоТ", e))?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        // The emergency mode is HTTP 203, or a body `{"code": 203, …}` (M1 `IsEmergencyMode`,
        // docs/research/marking.md §3.4).
        if status == 203 || v["code"] == 203 {
            let why = v["message"].as_str().unwrap_or("аварийный режим ГИС МТ");
            return Err(Failure::Emergency(why.to_string()));
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Error(format!("ТС ПИоТ ответил HTTP {status}")));
        }
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(Failure::Error(format!(
                "ТС ПИоТ: {} (код {})",
                e["errorDescription"].as_str().unwrap_or("ошибка"),
                e["errorCode"].as_i64().unwrap_or(0)
            )));
        }
        let inner = &v["codesResponse"]["codesResponse"];
        let o = inner.as_array().and_then(|a| a.first()).unwrap_or(&v);
        first_code(o, false)
    }
}

/// ЛМ ЧЗ.
#[derive(Debug, Clone)]
pub struct LocalModule {
    pub url: String,
    pub user: String,
    pub password: String,
}

/// The local module's own state (`GET /api/v1/status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LmStatus {
    pub status: String,
    /// When its database was last synchronised (RFC 3339).
    pub last_sync: Option<String>,
}

impl LocalModule {
    fn get(&self, http: &reqwest::Client, path: &str, fn_number: &str) -> reqwest::RequestBuilder {
        http.get(format!("{}{path}", self.url.trim_end_matches('/')))
            .basic_auth(&self.user, Some(&self.password))
            .header("X-ClientId", fn_number)
    }

    pub async fn status(&self, http: &reqwest::Client, fn_number: &str, within: Duration) -> Result<LmStatus, Failure> {
        let r = self
            .get(http, "/api/v1/status", fn_number)
            .timeout(within)
            .send()
            .await
            .map_err(|e| unreachable("локальный модуль ЧЗ", e))?;
        if !r.status().is_success() {
            return Err(Failure::Error(format!(
                "локальный модуль ЧЗ ответил HTTP {}",
                r.status().as_u16()
            )));
        }
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let last_sync = v["lastSync"]
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339());
        Ok(LmStatus {
            status: v["status"].as_str().unwrap_or("unknown").to_string(),
            last_sync,
        })
    }

    pub async fn check(
        &self,
        http: &reqwest::Client,
        code: &Code,
        fn_number: &str,
        within: Duration,
    ) -> Result<Answer, Failure> {
        let state = self.status(http, fn_number, within).await?;
        if state.status != "ready" {
            return Err(Failure::NotReady(format!(
                "локальный модуль ЧЗ не готов ({}): проверьте его синхронизацию",
                state.status
            )));
        }
        let r = http
            .post(format!("{}/api/v1/cis/outCheck", self.url.trim_end_matches('/')))
            .basic_auth(&self.user, Some(&self.password))
            .header("X-ClientId", fn_number)
            .json(&json!({"cis_list": [code.identifier()]}))
            .timeout(within)
            .send()
            .await
            .map_err(|e| unreachable("локальный модуль ЧЗ", e))?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status == 400 {
            // 4045: not configured or initialising; 4050: out of sync (E1 quoting ЦРПТ).
            let code = v["errorCode"].as_i64().or_else(|| v["code"].as_i64()).unwrap_or(0);
            return Err(Failure::NotReady(format!(
                "локальный модуль ЧЗ не может проверить код (ошибка {code})"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(Failure::Error(format!("локальный модуль ЧЗ ответил HTTP {status}")));
        }
        first_code(&v, true)
    }
}
