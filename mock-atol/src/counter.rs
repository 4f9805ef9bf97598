//! The counter tasks of the mock device besides receipts and shifts: `reportX`, `cashIn`,
//! `cashOut`, `openCashDrawer`, `nonFiscal`, `printFnDocument`, `printLastReceiptCopy`,
//! `continuePrint`, as the driver's own scripts run them (S1 AlexanderYekat/atolexamplesjson
//! @ 84cf9b3: `json_reportX.js`, `json_cashIn.js`, `json_cashOut.js`, `json_openCashDrawer.js`,
//! `json_nonFiscal.js`, `json_printFnDocument.js`, `json_printLastReceiptCopy.js`,
//! `json_continuePrint.js`; collected in the adapter's docs/research/atol-counter-operations.md
//! §3–§6, whose reading of each is cited there):
//! - validation first, with the scripts' texts (`Поле "cashSum" отсутствует`, `… имеет неверный
//!   тип (ожидается "number")`), driver error 501, the device untouched;
//! - cash in and out write no FN document; they move the shift's `income`/`outcome` counters
//!   and the drawer's sum; on a closed shift the shift is opened first (an FN document), as
//!   the driver does for the first fiscal operation (S1 reads `SHIFT_AUTO_OPENED`);
//! - a cash-out above the drawer's sum is error 80 «В ККТ нет денег для выплаты» (KKTServiceLib
//!   `KKTErrorType.cs`; which code a real device gives is not confirmed, §11 of the note);
//! - the printing tasks meet paper out (44) and an open cover (45) before they print; their
//!   result is empty (`{}`), as S7's schema types it.
//!
//! Every one of them is logged with its job's uuid (`GET /mock/stats` `executed`), so a test
//! can count what the device really did.

use crate::device::{Fn, TaskError};
use crate::faults::Faults;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One counter task the device carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executed {
    /// The task's type (`cashIn`, `reportX`, …).
    pub task: String,
    pub uuid: String,
    /// `cashSum` of a cash task.
    #[serde(default)]
    pub sum: f64,
}

/// Cash in and out in the current shift: how many and how much (S1 `json_getShiftTotals.js`
/// `income`/`outcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub count: i64,
    pub sum: f64,
}

fn parse_error(what: String) -> TaskError {
    (501, what)
}

/// The operator the scripts log in (S1: only when `operator.name` is non-empty; `{}` is no
/// operator; a `vatin` without a name fails).
fn operator(task: &Value) -> Result<(), TaskError> {
    match &task["operator"] {
        Value::Null => Ok(()),
        Value::Object(o) if o.is_empty() => Ok(()),
        Value::Object(o) => match o.get("name") {
            Some(Value::String(_)) => Ok(()),
            None | Some(Value::Null) => Err(parse_error("Поле \"operator.name\" отсутствует".into())),
            Some(_) => Err(parse_error(
                "Поле \"operator.name\" имеет неверный тип (ожидается \"string\")".into(),
            )),
        },
        _ => Err(parse_error(
            "Поле \"operator\" имеет неверный тип (ожидается \"object|undefined\")".into(),
        )),
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn printing(faults: &Faults) -> Result<(), TaskError> {
    if faults.cover_open {
        return Err((45, "Открыта крышка".into()));
    }
    if faults.paper_out {
        return Err((44, "Нет бумаги".into()));
    }
    Ok(())
}

impl Fn {
    /// Runs a counter task; `None` when `kind` is not one.
    pub fn counter_task(
        &mut self,
        kind: &str,
        task: &Value,
        uuid: &str,
        faults: &Faults,
    ) -> Option<Result<Value, TaskError>> {
        let result = match kind {
            "reportX" => operator(task).and_then(|()| printing(faults)).map(|()| json!({})),
            "cashIn" | "cashOut" => self.cash(kind, task, uuid, faults),
            "openCashDrawer" => Ok(json!({})),
            "nonFiscal" => non_fiscal(task).and_then(|()| printing(faults)).map(|()| json!({})),
            "printFnDocument" => match task["fiscalDocumentNumber"].as_i64() {
                None => Err(parse_error("Поле \"fiscalDocumentNumber\" отсутствует".into())),
                Some(n) if !self.documents.iter().any(|d| d.number == n) => {
                    Err((123, format!("В ФН нет запрошенных данных (документ {n})")))
                }
                Some(_) => printing(faults).map(|()| json!({})),
            },
            "printLastReceiptCopy" | "continuePrint" => printing(faults).map(|()| json!({})),
            _ => return None,
        };
        if result.is_ok() {
            self.executed.push(Executed {
                task: kind.into(),
                uuid: uuid.into(),
                sum: task["cashSum"].as_f64().unwrap_or(0.0),
            });
        }
        Some(result)
    }

    fn cash(&mut self, kind: &str, task: &Value, uuid: &str, faults: &Faults) -> Result<Value, TaskError> {
        let sum = match &task["cashSum"] {
            Value::Null => return Err(parse_error("Поле \"cashSum\" отсутствует".into())),
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            _ => {
                return Err(parse_error(
                    "Поле \"cashSum\" имеет неверный тип (ожидается \"number\")".into(),
                ));
            }
        };
        operator(task)?;
        if task.get("electronically").is_some_and(|e| !e.is_boolean()) {
            return Err(parse_error(
                "Поле \"electronically\" имеет неверный тип (ожидается \"boolean|undefined\")".into(),
            ));
        }
        printing(faults)?;
        if sum < 0.01 {
            // KKTServiceLib refuses below 0.01 before sending; 16 INVALID_SUM is its candidate.
            return Err((16, "Неверная сумма".into()));
        }
        if self.shift_expired() {
            return Err((68, "Смена превысила 24 часа".into()));
        }
        if kind == "cashOut" && sum > round(self.cash_sum) + 0.001 {
            return Err((80, "В ККТ нет денег для выплаты".into()));
        }
        if !self.shift_open {
            self.open_shift_for(uuid);
        }
        let counter = if kind == "cashIn" {
            &mut self.income
        } else {
            &mut self.outcome
        };
        counter.count += 1;
        counter.sum = round(counter.sum + sum);
        self.cash_sum = round(if kind == "cashIn" {
            self.cash_sum + sum
        } else {
            self.cash_sum - sum
        });
        Ok(json!({"counters": {"cashSum": self.cash_sum}}))
    }
}

/// `nonFiscal`: `items` must be there; each element needs a string `type`; a `text` element a
/// string `text` (S1 `json_nonFiscal.js`, `myscripts_validators.js`).
fn non_fiscal(task: &Value) -> Result<(), TaskError> {
    let Some(items) = task.get("items") else {
        return Err(parse_error("Поле \"items\" отсутствует".into()));
    };
    let Some(items) = items.as_array() else {
        return Err(parse_error(
            "Поле \"items\" имеет неверный тип (ожидается \"array\")".into(),
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let Some(kind) = item["type"].as_str() else {
            return Err(parse_error(format!("Поле \"items[{i}].type\" отсутствует")));
        };
        if kind == "text" && !item["text"].is_string() {
            return Err(parse_error(format!("Поле \"items[{i}].text\" отсутствует")));
        }
    }
    Ok(())
}
