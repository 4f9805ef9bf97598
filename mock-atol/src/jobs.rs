//! How the device runs a job: its tasks in order, each `wait` → `inProgress` → `ready` |
//! `error`, a failed one interrupting the rest (502), and the faults that strike after the FN
//! wrote a receipt (docs/research/atol-exactly-once.md §4; sources in crate::faults).

use crate::device::is_fiscal;
use crate::faults::Faults;
use crate::server::{Shared, Sub, lock};
use serde_json::{Value, json};
use std::time::Duration;

/// What happens to a fiscal receipt task after the FN wrote it (a fault), taken once.
enum AfterWrite {
    Normal,
    Lost,
    Error(i64),
    Blocked(u64),
    Hang,
    NotPrinted,
}

fn after_write(f: &mut Faults) -> AfterWrite {
    if std::mem::take(&mut f.crash_after_register) {
        AfterWrite::Lost
    } else if std::mem::take(&mut f.not_printed_after_write) {
        AfterWrite::NotPrinted
    } else if let Some(code) = f.error_after_write.take() {
        AfterWrite::Error(code)
    } else if std::mem::take(&mut f.blocked_after_write) {
        AfterWrite::Blocked(f.block_ms.max(1))
    } else if f.hang_after_write {
        AfterWrite::Hang
    } else {
        AfterWrite::Normal
    }
}

/// The description the driver gives a code (S6 `KKTErrorType.cs`).
fn describe(code: i64) -> &'static str {
    match code {
        2 => "Нет связи",
        44 => "Нет бумаги",
        177 => "Закрытие чека прервано",
        241 => "Соединение с ККТ потеряно",
        _ => "Ошибка",
    }
}

/// Executes a job's tasks in order, as the device would.
pub(crate) async fn run_job(s: Shared, uuid: String, tasks: Vec<Value>) {
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
        let (outcome, after) = {
            let mut inner = lock(&s);
            if !inner.jobs.contains_key(&uuid) {
                return; // the server forgot its queue while the task waited: it never runs
            }
            let faults = inner.faults.clone();
            if task["type"] == "getFnDocument"
                && let Some(n) = task["fiscalDocumentNumber"].as_i64()
            {
                *inner.document_reads.entry(n).or_default() += 1;
            }
            let outcome = inner.device.execute(task, &uuid, &faults);
            let kind = task["type"].as_str().unwrap_or_default();
            // After the write: a receipt, or cash moved in or out of the drawer (S1's cash
            // scripts read the drawer after registering the money and fail if that read fails:
            // docs/research/atol-counter-operations.md §4).
            let moved_money = kind == "cashIn" || kind == "cashOut";
            let receipt = is_fiscal(kind) && kind != "openShift" && kind != "closeShift";
            let after = if outcome.is_ok() && (receipt || moved_money) {
                after_write(&mut inner.faults)
            } else {
                AfterWrite::Normal
            };
            inner.save();
            match after {
                AfterWrite::Lost => {
                    // Registered in the FN, then the server died before it stored the result.
                    inner.jobs.remove(&uuid);
                    return;
                }
                AfterWrite::Blocked(_) => {
                    if let Some(job) = inner.jobs.get_mut(&uuid) {
                        job.subs[i].status = "blocked";
                        job.subs[i].code = 2;
                        job.subs[i].description = "Нет связи".into();
                    }
                }
                _ => {}
            }
            (outcome, after)
        };
        let outcome = match after {
            AfterWrite::Normal | AfterWrite::Lost => outcome,
            AfterWrite::NotPrinted => outcome.map(|mut r| {
                r["warnings"]["notPrinted"] = json!(true);
                r
            }),
            AfterWrite::Error(code) => Err((code, describe(code).to_string())),
            AfterWrite::Blocked(ms) => {
                // The link failed after the FN wrote it; the server blocks its queue, then
                // finds the FN's number grown and calls the task done with what it knows.
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let number = lock(&s).device.last_doc;
                Ok(json!({"fiscalParams": {"fiscalDocumentNumber": number}, "warnings": {"notPrinted": true}}))
            }
            AfterWrite::Hang => {
                while lock(&s).faults.hang_after_write {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                outcome
            }
        };
        let mut inner = lock(&s);
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
