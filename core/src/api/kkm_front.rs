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

/// A native error (a body too large or too slow, storage refused) in kkmserver's shape:
/// `Status 2` and the reason, with its HTTP status.
fn native_failure(e: ApiError) -> Response {
    let (status, _, message) = e.parts();
    answer(status, json!({"Status": kkm::ERROR, "Error": message}))
}

/// `POST /Execute`.
pub async fn execute(State(state): State<AppState>, caller: Option<Extension<Caller>>, body: Body) -> Response {
    let bytes = match super::receipts::read_body(body).await {
        Ok(b) => b,
        Err(e) => return native_failure(e),
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
    // Newtonsoft reads a number as the string too: a numeric IdCommand is the same id.
    let id = match field(&cmd, "IdCommand") {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
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
    if let Err(e) = selects_this_register(&state, &cmd).await {
        return answer(StatusCode::OK, kkm::envelope(&name, &id, kkm::ERROR, &e));
    }
    let pos_id = super::counter::till_of(caller).unwrap_or_else(|| state.compat.kkmserver_pos_id.clone());
    let prepared = kkm::prepare(command, &cmd, &pos_id);
    let wait = wait_of(&cmd);
    if id.is_empty() || !kkm::is_keyed(command) {
        // Nothing to find it by again — done once, as asked (kkmserver's "optional" IdCommand) —
        // or a query, read now (a POS polling GetDataKKT under new ids stores nothing).
        let key = format!("{KKMSERVER}:auto-{}", uuid::Uuid::new_v4());
        return answer(StatusCode::OK, run(&state, &key, &id, command, &cmd, &prepared).await);
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
    let hash = jobs::hash(&[json!({"pos_id": pos_id, "command": stored_cmd}).to_string().as_bytes()]);
    let job = NewJob {
        front: KKMSERVER,
        id: id.clone(),
        body_hash: hash.clone(),
        request_json: json!({"pos_id": pos_id, "command": stored_cmd, "prepared": prepared}).to_string(),
    };
    let new = match state.buffer.store_job(job).await {
        Ok(new) => new,
        Err(e) => return native_failure(e.into()),
    };
    let (cmd, prepared) = if new {
        (stored_cmd, prepared)
    } else {
        let kept = match state.buffer.job(KKMSERVER, id.clone()).await {
            Ok(Some(kept)) => kept,
            // Never Status 5 or "not found" for a command that may exist: the POS would print again.
            Ok(None) | Err(_) => return answer(StatusCode::OK, unreadable(&name, &id)),
        };
        if kept.body_hash != hash {
            tracing::warn!(id_command = %id, command = %name, "kkmserver IdCommand reused for another command: not done");
            let text = "Команда уже была выполнена или выполняется в текущий момент (этот IdCommand уже использован для другой команды: \
                        новая не выполнена; результат прежней — GetRezult)";
            return answer(StatusCode::OK, kkm::envelope(&name, &id, kkm::ALREADY_DONE, text));
        }
        let done = kept
            .results_json
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok());
        if let Some(a) = done.filter(|a| a["Status"] == kkm::OK) {
            return answer(StatusCode::OK, a);
        }
        let request: Value = serde_json::from_str(&kept.request_json).unwrap_or_default();
        (request["command"].clone(), request["prepared"].clone())
    };
    spawn(&state, id.clone(), cmd, prepared);
    state.jobs.idle(KKMSERVER, &id, wait).await;
    let a = match stored_answer(&state, &id).await {
        Some(a) if state.jobs.on(KKMSERVER, &id).is_none() => a,
        _ => running(&name, &id),
    };
    answer(StatusCode::OK, a)
}

/// `Status 2` for a command whose stored state could not be read: try again.
fn unreadable(name: &str, id: &str) -> Value {
    kkm::envelope(
        name,
        id,
        kkm::ERROR,
        "Не удалось прочитать сохранённую команду (ошибка базы данных адаптера): повторите с тем же IdCommand",
    )
}

/// The device selectors (K4 `GetListUnitsForCommand`): `NumDevice` 0 or 1, `InnKkm` the seller's,
/// `KktNumber`/`IdDevice` the register's serial; another is kkmserver's "device not found".
async fn selects_this_register(state: &AppState, cmd: &Value) -> Result<(), String> {
    let num = kkm::number(field(cmd, "NumDevice")).unwrap_or(0.0) as i64;
    let inn = field(cmd, "InnKkm").as_str().map(str::trim).unwrap_or_default();
    let serial = [field(cmd, "KktNumber"), field(cmd, "IdDevice")]
        .into_iter()
        .filter_map(|v| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
        .collect::<Vec<_>>();
    let mut ok = matches!(num, 0 | 1) && (inn.is_empty() || inn == state.seller.inn);
    if ok && !serial.is_empty() {
        let now = state.clock.utc();
        ok = match super::shift::on_register(state.kkt.clone(), move |k| k.device_info(now)).await {
            Ok(info) => serial.iter().all(|s| *s == info.serial),
            Err(_) => return Err("ККТ не отвечает: не удалось сверить KktNumber/IdDevice".into()),
        };
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Устройство (с параметрами NumDevice={num}, InnKkm={inn}, KktNumber/IdDevice={}) не найдено: адаптер ведёт одну ККТ \
             (NumDevice 0 или 1)",
            serial.join("/")
        ))
    }
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
    let job = match state.buffer.job(KKMSERVER, id.to_string()).await {
        Ok(job) => job,
        Err(_) => return unreadable("GetRezult", id),
    };
    let Some(job) = job else {
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
                spawn(state, id.to_string(), cmd, request["prepared"].clone());
            }
            running(&name, id)
        }
    };
    let mut a = kkm::envelope("GetRezult", "", kkm::OK, "");
    a["Rezult"] = inner;
    a
}

/// Runs the command in the background (once: a runner already on it keeps it).
fn spawn(state: &AppState, id: String, cmd: Value, prepared: Value) {
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
        let a = run(&state, &key, &id, command, &cmd, &prepared).await;
        if let Err(e) = state.buffer.set_job_results(KKMSERVER, id.clone(), a.to_string()).await {
            tracing::error!(id_command = %id, error = %e, "a kkmserver command's result was not stored; GetRezult runs it again");
        }
    });
}

/// One command's answer, from what it became when it was first taken (`kkm::prepare`).
async fn run(state: &AppState, key: &str, id: &str, command: Command, cmd: &Value, prepared: &Value) -> Value {
    let name = field(cmd, "Command").as_str().unwrap_or_default();
    if let Some(e) = prepared["error"].as_str() {
        return kkm::envelope(name, id, kkm::ERROR, e);
    }
    let body = &prepared["body"];
    let op = |kind: Option<OpKind>| async move {
        let Native { http, body } = jobs::operation(state, key.to_string(), kind, body).await;
        kkm::from_native(name, id, http, &body)
    };
    match command {
        Command::RegisterCheck if !kkm::is_fiscal_check(cmd) => op(Some(OpKind::Print)).await,
        Command::RegisterCheck => {
            let Native { http, body } = jobs::receipt(state, key.to_string(), body).await;
            let mut a = kkm::from_native(name, id, http, &body);
            let left_out: Vec<&str> = prepared["left_out"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !left_out.is_empty() && a["Warning"] == "" {
                a["Warning"] = json!(format!(
                    "Не напечатано (адаптер печатает только фискальные строки): {}",
                    left_out.join(", ")
                ));
            }
            a
        }
        Command::Operation(kind) => op(Some(kind)).await,
        Command::Cash(_) => op(Some(OpKind::Cash)).await,
        Command::OpenCashDrawer => op(None).await,
        Command::GetDataKkt | Command::List => match data_kkt(state, name, id, command == Command::List).await {
            Ok(a) => a,
            Err(e) => {
                let native = jobs::native(e.into_response()).await;
                kkm::envelope(name, id, kkm::ERROR, &crate::compat::describe(&native.body))
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
    let mut info_json = kkm::info(&info, &seller.inn, &seller.name, &state.zone);
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
