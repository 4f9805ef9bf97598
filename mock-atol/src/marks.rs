//! The FN's check of marking codes on the mock device (docs/research/marking.md §1; S1
//! `myscripts_marks.js`, S6 `Operations/Fiscal/Ism/*`): `beginMarkingCodeValidation` (the code
//! under `params`, `imc` base64 — S6 and S7 require it), `getMarkingCodeValidationStatus` (not
//! `ready` at the first poll, as a device waiting for the ОИСМ), `acceptMarkingCode` /
//! `declineMarkingCode`, `cancelMarkingCodeValidation`, `clearMarkingCodeValidationResult`; a
//! second `begin` while one runs is 401; a `sell` whose `imcParams.imc` was not accepted is 422
//! «КМ отсутствует в таблице» (S1 `driverErrorObject`: 422 `noImcInTable`), and an accepted code
//! is used up by the sale.
//!
//! Verdicts follow the adapter's test codes (the serial after `0104630000000001` `21`): a tail
//! `93` (4 characters) is not checkable by the FN (`typeIncorrect`, as for dairy or water); a
//! serial starting `FNREFUSE` has a tail the FN does not confirm; `SOLD` on a sale is a status
//! the ОИСМ calls incorrect. With the `ism_down` fault there is no `onlineValidation`, only
//! `driverError` 411 `serverNoConnect`.

use crate::device::{Fn, TaskError};
use crate::faults::Faults;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The validation under way and the FN-M table of accepted codes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Marks {
    /// The code being validated, its planned status, and whether it is ready.
    current: Option<(String, String, bool)>,
    accepted: Vec<String>,
}

fn decode(imc: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(imc)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn serial(code: &str) -> &str {
    code.get(18..).unwrap_or_default()
}

/// The five bits of `itemInfoCheckResult` for a code and its planned status.
fn info(code: &str, status: &str) -> Value {
    let tail_ok = !serial(code).starts_with("FNREFUSE");
    let status_ok = !(serial(code).starts_with("SOLD") && status == "itemPieceSold");
    json!({"imcCheckFlag": true, "imcCheckResult": tail_ok, "imcStatusInfo": true,
           "imcEstimatedStatusCorrect": status_ok, "ecrStandAloneFlag": false})
}

impl Fn {
    /// Runs a marking task; `None` when `kind` is not one.
    pub fn marks_task(&mut self, kind: &str, task: &Value, faults: &Faults) -> Option<Result<Value, TaskError>> {
        let m = &mut self.marks;
        let result = match kind {
            "beginMarkingCodeValidation" => (|| {
                if m.current.is_some() {
                    return Err((401, "Проверка КМ уже запущена".into()));
                }
                let p = &task["params"];
                let imc = p["imc"]
                    .as_str()
                    .ok_or((501, "Поле \"params.imc\" отсутствует".to_string()))?;
                let code = decode(imc).ok_or((
                    501,
                    "Некорректное значение поля \"params.imc\" (not-base64-string)".to_string(),
                ))?;
                let status = p["itemEstimatedStatus"].as_str().unwrap_or("itemPieceSold").to_string();
                let short_tail = code.split('\u{1d}').any(|part| part.starts_with("93"));
                let offline = if short_tail {
                    json!({"fmCheck": false, "fmCheckResult": false, "fmCheckErrorReason": "typeIncorrect"})
                } else {
                    let ok = !serial(&code).starts_with("FNREFUSE");
                    json!({"fmCheck": true, "fmCheckResult": ok, "fmCheckErrorReason": if ok { "checked" } else { "other" }})
                };
                m.current = Some((code, status, false));
                Ok(json!({"offlineValidation": offline}))
            })(),
            "getMarkingCodeValidationStatus" => match &mut m.current {
                None => Err((410, "Неверное состояние".into())),
                Some((_, _, ready @ false)) => {
                    *ready = true;
                    Ok(json!({"ready": false}))
                }
                Some((code, status, true)) if faults.ism_down => {
                    let _ = (code, status);
                    Ok(json!({"ready": true, "sentImcRequest": true,
                              "driverError": {"code": 411, "description": "Ошибка обмена с ИСМ", "error": "serverNoConnect"}}))
                }
                Some((code, status, true)) => Ok(json!({"ready": true, "sentImcRequest": true,
                    "driverError": {"code": 0, "description": "Ошибок нет"},
                    "onlineValidation": {"itemInfoCheckResult": info(code, status),
                                         "markOperatorResponseResult": "correct", "imcModeProcessing": 0}})),
            },
            "acceptMarkingCode" => match m.current.take() {
                Some((code, status, true)) => {
                    let i = info(&code, &status);
                    m.accepted.push(code);
                    Ok(json!({"itemInfoCheckResult": i}))
                }
                other => {
                    m.current = other;
                    Err((410, "Неверное состояние".into()))
                }
            },
            "declineMarkingCode" | "cancelMarkingCodeValidation" => {
                m.current = None;
                Ok(json!({}))
            }
            "clearMarkingCodeValidationResult" => {
                m.accepted.clear();
                Ok(json!({}))
            }
            _ => return None,
        };
        if result.is_ok() {
            self.executed.push(crate::counter::Executed {
                task: kind.into(),
                uuid: String::new(),
                sum: 0.0,
            });
        }
        Some(result)
    }

    /// A receipt's marked items must have been accepted; the sale uses them up.
    pub fn take_accepted(&mut self, task: &Value) -> Result<(), TaskError> {
        let codes: Vec<String> = task["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["imcParams"]["imc"].as_str())
            .map(|imc| decode(imc).unwrap_or_else(|| imc.to_string()))
            .collect();
        for code in &codes {
            if !self.marks.accepted.contains(code) {
                return Err((422, "КМ отсутствует в таблице".into()));
            }
        }
        for code in codes {
            if let Some(i) = self.marks.accepted.iter().position(|c| *c == code) {
                self.marks.accepted.remove(i);
            }
        }
        Ok(())
    }
}
