//! kkmserver front (docs/contract.md §13; docs/research/kkmserver.md §1–§3): `POST /Execute`
//! (and `/Execute/sync`) with one command, answered in kkmserver's envelope with HTTP 200 for
//! every outcome, 400 for a body that is not JSON and 501 for an unknown command.
//!
//! A command with an `IdCommand` is stored before it runs (`compat_jobs`), durably — kkmserver
//! keeps its last 100 in memory — and its receipt or operation goes through the native path
//! under the key `kkmserver:<IdCommand>`. The same `IdCommand` again with the same command
//! answers the stored result (kkmserver answers `Status 5` and leaves the client to call
//! `GetRezult`; clients that read any `Status` but 0 as a failure then print again under a new
//! id); with another command, `Status 5` and nothing is done. After `Status 2` the same id runs
//! again, as in kkmserver (a refusal the register stored is replayed by the buffer). The
//! mappings are in `compat::kkm`.

use super::jobs::{self, Native};
use super::{ApiError, AppState, Caller};
use crate::buffer::jobs::{KKMSERVER, NewJob};
use crate::compat::kkm::{self, Command, field};
use crate::receipt::OpKind;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// `GET /VersionJSON` (answered before authentication in kkmserver, K4).
pub async fn version() -> Response {
    Json(json!({"Version": format!("KKT Adapter {}", env!("CARGO_PKG_VERSION"))})).into_response()
}

/// How long the HTTP call waits (K4: `Timeout` 0 or absent → 60 s, else `Timeout − 1` s, at
/// most 600; `1` answers at once).
fn wait_of(cmd: &Value) -> Duration {
    let t = kkm::number(field(cmd, "Timeout")).unwrap_or(0.0).max(0.0) as u64;
    Duration::from_secs(if t == 0 { 60 } else { (t - 1).min(600) })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// `POST /Execute`.
pub async fn execute(State(state): State<AppState>, caller: Option<Extension<Caller>>, body: Body) -> Response {
    let bytes = match super::receipts::read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // K4 reads the command from its first `{` (a BOM or other bytes before it are skipped).
    let start = bytes.iter().position(|b| *b == b'{').unwrap_or(0);
    let cmd: Value = match serde_json::from_slice(&bytes[start..]) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"Status": kkm::ERROR, "Error": "Ошибка разбора (парсинга) команды: тело не JSON-объект"}),
            );
        }
    };
    let name = field(&cmd, "Command").as_str().unwrap_or_default().to_string();
    let id = field(&cmd, "IdCommand").as_str().unwrap_or_default().trim().to_string();
    let command = match kkm::classify(&name) {
        Ok(c) => c,
        Err(other) => {
            return answer(
                StatusCode::NOT_IMPLEMENTED,
                json!({"Command": other, "Status": kkm::ERROR, "IdCommand": id,
                       "Error": format!("Неопознанная команда {other} (адаптер выполняет команды из README «Use your existing POS»)")}),
            );
        }
    };
    if command == Command::GetRezult {
        return answer(StatusCode::OK, rezult(&state, &id).await);
    }
    let pos_id = match caller.map(|c| c.0) {
        Some(Caller::Till(Some(pos))) => pos,
        _ => state.compat.kkmserver_pos_id.clone(),
    };
    if id.is_empty() || !kkm::is_keyed(command) {
        // Nothing to find it by again — done once, as asked (kkmserver's "optional" IdCommand) —
        // or a query, read now (a POS polling GetDataKKT under new ids stores nothing).
        let key = format!("{KKMSERVER}:auto-{}", uuid::Uuid::new_v4());
        return answer(StatusCode::OK, run(&state, &key, &id, command, &cmd, &pos_id).await);
    }
    if !jobs::valid_id(&id) {
        return answer(
            StatusCode::OK,
            kkm::envelope(&name, &id, kkm::ERROR, "IdCommand: 1–128 печатных символов ASCII"),
        );
    }
    let mut stored_cmd = cmd.clone();
    if let Some(o) = stored_cmd.as_object_mut() {
        // A retry may wait another time; it is the same command.
        o.retain(|k, _| !k.eq_ignore_ascii_case("Timeout"));
    }
    let request = json!({"pos_id": pos_id, "command": stored_cmd}).to_string();
    let hash = jobs::hash(&[request.as_bytes()]);
    let job = NewJob {
        front: KKMSERVER,
        id: id.clone(),
        body_hash: hash.clone(),
        request_json: request,
    };
    let new = match state.buffer.store_job(job).await {
        Ok(new) => new,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !new {
        let kept = state.buffer.job(KKMSERVER, id.clone()).await.ok().flatten();
        if kept.as_ref().is_none_or(|j| j.body_hash != hash) {
            tracing::warn!(id_command = %id, command = %name, "kkmserver IdCommand reused for another command: not done");
            let text = "Команда уже была выполнена или выполняется в текущий момент (этот IdCommand уже использован для другой команды: \
                        новая не выполнена; результат прежней — GetRezult)";
            return answer(StatusCode::OK, kkm::envelope(&name, &id, kkm::ALREADY_DONE, text));
        }
        let done = kept
            .and_then(|j| j.results_json)
            .and_then(|r| serde_json::from_str::<Value>(&r).ok());
        if let Some(a) = done.filter(|a| a["Status"] == kkm::OK) {
            return answer(StatusCode::OK, a);
        }
    }
    spawn(&state, id.clone(), pos_id, cmd.clone());
    state.jobs.idle(KKMSERVER, &id, wait_of(&cmd)).await;
    let a = match stored_answer(&state, &id).await {
        Some(a) if state.jobs.on(KKMSERVER, &id).is_none() => a,
        _ => running(&name, &id),
    };
    answer(StatusCode::OK, a)
}

/// `Status 1` (Run): the command goes on; `GetRezult` gives its result.
fn running(name: &str, id: &str) -> Value {
    let mut a = kkm::envelope(name, id, kkm::RUN, "");
    a["Warning"] = json!("Команда выполняется: её результат — GetRezult с этим IdCommand");
    a
}

async fn stored_answer(state: &AppState, id: &str) -> Option<Value> {
    let job = state.buffer.job(KKMSERVER, id.to_string()).await.ok()??;
    serde_json::from_str(job.results_json.as_deref()?).ok()
}

/// `GetRezult`: the stored answer of a command under `Rezult` (K2, K4); an unfinished one no
/// runner has (after a restart, or the register was not ready) is run on.
async fn rezult(state: &AppState, id: &str) -> Value {
    if id.is_empty() {
        return kkm::envelope("GetRezult", "", kkm::ERROR, "Не указан Id команды!");
    }
    let Some(job) = state.buffer.job(KKMSERVER, id.to_string()).await.ok().flatten() else {
        let mut a = kkm::envelope("GetRezult", "", kkm::NOT_FOUND, "Команда с таким IdCommand не найдена");
        a["Rezult"] = json!({"IdCommand": id, "Status": kkm::NOT_FOUND, "Command": "<Не определено>", "Error": "<Не определено>"});
        return a;
    };
    let request: Value = serde_json::from_str(&job.request_json).unwrap_or_default();
    let cmd = request["command"].clone();
    let name = field(&cmd, "Command").as_str().unwrap_or_default().to_string();
    let done: Option<Value> = job.results_json.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let inner = match done {
        Some(a) if a["Status"] == kkm::OK || a["Status"] == kkm::ERROR => a,
        _ => {
            if state.jobs.on(KKMSERVER, id).is_none() {
                let pos_id = request["pos_id"].as_str().unwrap_or_default().to_string();
                spawn(state, id.to_string(), pos_id, cmd);
            }
            running(&name, id)
        }
    };
    let mut a = kkm::envelope("GetRezult", "", kkm::OK, "");
    a["Rezult"] = inner;
    a
}

/// Runs the command in the background (once: a runner already on it keeps it).
fn spawn(state: &AppState, id: String, pos_id: String, cmd: Value) {
    let Some(running) = state.jobs.start(KKMSERVER, &id) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let _running = running;
        let name = field(&cmd, "Command").as_str().unwrap_or_default().to_string();
        let Ok(command) = kkm::classify(&name) else {
            return;
        };
        let key = format!("{KKMSERVER}:{id}");
        let a = run(&state, &key, &id, command, &cmd, &pos_id).await;
        if let Err(e) = state.buffer.set_job_results(KKMSERVER, id.clone(), a.to_string()).await {
            tracing::error!(id_command = %id, error = %e, "a kkmserver command's result was not stored; GetRezult runs it again");
        }
    });
}

/// One command's answer.
async fn run(state: &AppState, key: &str, id: &str, command: Command, cmd: &Value, pos_id: &str) -> Value {
    let name = field(cmd, "Command").as_str().unwrap_or_default();
    let op = |kind: Option<OpKind>, body: Value| async move {
        let Native { http, body } = jobs::operation(state, key.to_string(), kind, &body).await;
        kkm::from_native(name, id, http, &body)
    };
    match command {
        Command::RegisterCheck if !kkm::is_fiscal_check(cmd) => {
            op(Some(OpKind::Print), json!({"lines": kkm::print_lines(cmd)})).await
        }
        Command::RegisterCheck => match kkm::receipt_body(cmd, pos_id) {
            Ok((body, left_out)) => {
                let Native { http, body } = jobs::receipt(state, key.to_string(), &body).await;
                let mut a = kkm::from_native(name, id, http, &body);
                if !left_out.is_empty() && a["Warning"] == "" {
                    a["Warning"] = json!(format!(
                        "Не напечатано (адаптер печатает только фискальные строки): {}",
                        left_out.join(", ")
                    ));
                }
                a
            }
            Err(e) => kkm::envelope(name, id, kkm::ERROR, &e),
        },
        Command::Operation(kind) => match kkm::operation_body(cmd, None) {
            Ok(body) => op(Some(kind), body).await,
            Err(e) => kkm::envelope(name, id, kkm::ERROR, &e),
        },
        Command::Cash(incoming) => match kkm::operation_body(cmd, Some(incoming)) {
            Ok(body) => op(Some(OpKind::Cash), body).await,
            Err(e) => kkm::envelope(name, id, kkm::ERROR, &e),
        },
        Command::OpenCashDrawer => op(None, json!({})).await,
        Command::GetDataKkt | Command::List => match data_kkt(state, name, id, command == Command::List).await {
            Ok(a) => a,
            Err(e) => {
                let Native { http, body } = jobs::native(e.into_response()).await;
                kkm::from_native(name, id, http, &body)
            }
        },
        Command::ValidationMarkingCode => validate_codes(state, name, id, cmd).await,
        Command::GetRezult => rezult(state, id).await,
    }
}

/// `GetDataKKT` (K1, K4) or `List` (one device: this register).
async fn data_kkt(state: &AppState, name: &str, id: &str, list: bool) -> Result<Value, ApiError> {
    let now = state.clock.utc();
    let info = super::shift::on_register(state.kkt.clone(), move |k| k.device_info(now)).await?;
    let shift = super::shift::on_register(state.kkt.clone(), move |k| k.shift(now)).await?;
    let seller = &state.seller;
    let mut info_json = kkm::info(&info, &seller.inn, &seller.name);
    let mut a = kkm::envelope(name, id, kkm::OK, "");
    if list {
        info_json["NumDevice"] = json!(1);
        info_json["IdDevice"] = json!(info.serial);
        info_json["NameDevice"] = json!(info.model);
        info_json["TypeDevice"] = json!("Фискальный регистратор");
        info_json["IdTypeDevice"] = json!("KktAdapter");
        a["IdCommand"] = json!("");
        a["ListUnit"] = json!([info_json]);
        return Ok(a);
    }
    a["CheckNumber"] = json!(shift.last_fiscal_doc_number);
    a["SessionNumber"] = json!(shift.number);
    a["LineLength"] = json!(48);
    a["Info"] = info_json;
    Ok(a)
}

/// `ValidationMarkingCode` (K1, K4 §8): each code checked as `POST /v1/kkt/marking/check` does
/// (§12), answered in both generations' shapes (`ValidationResult` as 2106, and K4's
/// `ValidationPR`/`ValidationKKT`).
async fn validate_codes(state: &AppState, name: &str, id: &str, cmd: &Value) -> Value {
    let mut out = Vec::new();
    for g in field(cmd, "GoodCodeDatas").as_array().cloned().unwrap_or_default() {
        let scanned = field(&g, "BarCode").as_str().unwrap_or_default().to_string();
        let code = crate::marking::Code::new(&scanned);
        let (allowed, tag, text) = if scanned.is_empty() || !code.well_formed() {
            (
                false,
                0,
                "код маркировки имеет некорректный формат: отсканируйте его заново".to_string(),
            )
        } else {
            match super::marking::check_now(state, &code, false).await {
                Ok(c) => (
                    c.verdict.as_str() == "allowed",
                    c.fn_check.map_or(0, |f| i64::from(f.tag_2106)),
                    c.reason,
                ),
                Err(e) => (false, 0, e.parts().2),
            }
        };
        out.push(json!({
            "Name": field(&g, "Name"),
            "BarCode": scanned,
            "ValidationResult": tag,
            "DecryptionResult": text,
            "ValidationPR": {"ValidationResult": allowed, "ValidationDisabled": false, "DecryptionResult": text},
            "ValidationKKT": {"ValidationResult": tag, "DecryptionResult": text},
        }));
    }
    let mut a = kkm::envelope(name, id, kkm::OK, "");
    a["MarkingCodeValidation"] = json!(out);
    a
}
