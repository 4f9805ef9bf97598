//! Counter operations on an ATOL register (docs/contract.md §11), each one job of one task, as
//! the driver's own scripts take them (S1 AlexanderYekat/atolexamplesjson @ 84cf9b3, collected
//! in docs/research/atol-counter-operations.md — the section of each is cited below):
//! - `openShift` / `closeShift` `{operator {name, vatin}}` → `fiscalParams` (§2);
//! - `reportX` `{operator}` → nothing (§3); its totals are read with `getShiftTotals` (§7);
//! - `cashIn` / `cashOut` `{cashSum, operator}` → `counters.cashSum`, the drawer after it (§4);
//! - `openCashDrawer`, `nonFiscal {items: [{type: "text", text}]}`, `printFnDocument
//!   {fiscalDocumentNumber}` → nothing (§5, §6).
//!
//! Exactly once (§10 of the note; docs/contract.md §11): before each attempt the journal keeps
//! its job's uuid and what the register showed just before it — the shift's state and number,
//! its totals (`getShiftTotals`: receipts, `income`/`outcome` counts and sums, the drawer). An
//! interrupted attempt is looked up by its uuid; if the server lost the job, the register's
//! own counters decide: a shift opened or closed since, one more cash-in or cash-out of exactly
//! this sum. A cash count that moved by anything else cannot be judged: a person decides. The
//! X-report, the drawer and the slips move nothing: a lost one is done again (paper only).

use super::AtolKkt;
use super::client::{Job, unavailable};
use super::journal::uuid_of;
use crate::kkt::ops::{
    CashDirection, CashMoved, Movement, OpTask, Operation, Printed, ShiftOpened, ShiftTotals, XReport, to_result,
};
use crate::kkt::{DeviceError, OpResult, OperationSum, PaymentSum, ZReport};
use crate::money::Kopecks;
use crate::receipt::{Cashier, PaymentType, ReceiptType};
use serde_json::{Value, json};

/// Roubles as the driver gives them (a JSON number) to kopecks.
fn kopecks(v: &Value) -> Kopecks {
    Kopecks((v.as_f64().unwrap_or(0.0) * 100.0).round() as i64)
}

fn roubles(k: Kopecks) -> Value {
    json!(k.0 as f64 / 100.0)
}

/// The operator the scripts log in (tags 1021, 1203; §1 item 4 of the note).
fn operator(cashier: Option<&Cashier>) -> Option<Value> {
    cashier.map(|c| match &c.inn {
        Some(inn) => json!({"name": c.name, "vatin": inn}),
        None => json!({"name": c.name}),
    })
}

/// The operation as the driver's task.
fn task_of(op: &Operation) -> Value {
    let mut task = match op {
        Operation::ShiftOpen { .. } => json!({"type": "openShift"}),
        Operation::ShiftClose { .. } => json!({"type": "closeShift"}),
        Operation::ReportX { .. } => json!({"type": "reportX"}),
        Operation::Cash { direction, amount, .. } => json!({
            "type": if *direction == CashDirection::In { "cashIn" } else { "cashOut" },
            "cashSum": roubles(*amount),
        }),
        Operation::DrawerOpen => json!({"type": "openCashDrawer"}),
        Operation::Print { lines } => json!({
            "type": "nonFiscal",
            "printFooter": false,
            "items": lines.iter().map(|l| json!({"type": "text", "text": l})).collect::<Vec<_>>(),
        }),
        Operation::Copy { fiscal_doc_number, .. } => {
            json!({"type": "printFnDocument", "fiscalDocumentNumber": fiscal_doc_number})
        }
    };
    if let Some(o) = operator(op.cashier()) {
        task["operator"] = o;
    }
    task
}

/// The shift's totals from `getShiftTotals` (§7 of the note): per receipt type its count, sum
/// and payment forms; cash in and out; the drawer. Counters a model leaves out count as none.
pub(super) fn totals_of(t: &Value) -> ShiftTotals {
    let types = [
        ("sell", ReceiptType::Sale),
        ("sellReturn", ReceiptType::SaleRefund),
        ("buy", ReceiptType::Buy),
        ("buyReturn", ReceiptType::BuyRefund),
    ];
    let forms = [
        ("cash", PaymentType::Cash),
        ("electronically", PaymentType::Card),
        ("prepaid", PaymentType::Prepaid),
        ("credit", PaymentType::Credit),
        ("other", PaymentType::Other),
    ];
    let operations: Vec<OperationSum> = types
        .iter()
        .filter_map(|(name, kind)| {
            let r = &t["receipts"][name];
            let count = r["count"].as_i64().unwrap_or(0);
            (count > 0).then(|| OperationSum {
                kind: *kind,
                count,
                total: kopecks(&r["sum"]),
                payments: forms
                    .iter()
                    .map(|(form, kind)| PaymentSum {
                        kind: *kind,
                        amount: kopecks(&r["payments"][form]),
                    })
                    .filter(|p| p.amount.0 != 0)
                    .collect(),
                vat: Vec::new(),
            })
        })
        .collect();
    let movement = |v: &Value| Movement {
        count: v["count"].as_i64().unwrap_or(0),
        sum: kopecks(&v["sum"]),
    };
    ShiftTotals {
        shift_number: t["shiftNumber"].as_i64().unwrap_or(0),
        receipts: operations.iter().map(|o| o.count).sum(),
        operations,
        cash_in: movement(&t["income"]),
        cash_out: movement(&t["outcome"]),
        cash_in_drawer: t["cashDrawer"]["sum"]
            .as_f64()
            .map(|_| kopecks(&t["cashDrawer"]["sum"])),
    }
}

/// What the register shows at one moment: the shift and its totals, the FN's last document.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Seen {
    state: String,
    number: i64,
    expires: Option<String>,
    totals: Value,
    last_doc: i64,
}

impl Seen {
    fn open(&self) -> bool {
        self.state != "closed"
    }
}

/// Codes a cash task fails with before any money moves: no cash for the payout (80), a wrong
/// sum (16), a task the script refused to parse (501), a shift over 24 hours (68).
const REFUSED_BEFORE_CASH: [i64; 4] = [80, 16, 501, 68];

/// An error once the job was posted: its outcome is unknown, so it is never "nothing
/// happened" — a "will not do it now" (a 401 on the poll, …) becomes device trouble, looked up
/// again later.
fn posted_error(e: DeviceError) -> DeviceError {
    match e {
        DeviceError::NotTaken { message, .. } => unavailable(message),
        other => other,
    }
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl AtolKkt {
    /// The shift, its totals and the FN's last document, in one job of queries.
    fn seen(&self) -> Result<Seen, DeviceError> {
        let r = self.run(vec![
            json!({"type": "getShiftStatus"}),
            json!({"type": "getShiftTotals"}),
            json!({"type": "getFnStatus"}),
        ])?;
        let at = |i: usize| r.get(i).cloned().unwrap_or(Value::Null);
        let status = at(0)["shiftStatus"].clone();
        Ok(Seen {
            state: status["state"].as_str().unwrap_or("closed").to_string(),
            number: status["number"].as_i64().unwrap_or(0),
            expires: status["expiredTime"].as_str().map(str::to_string),
            totals: at(1)["shiftTotals"].clone(),
            last_doc: at(2)["fnStatus"]["fiscalDocumentNumber"].as_i64().unwrap_or(0),
        })
    }

    /// Runs an operation as a new attempt: what the register shows first, into the journal,
    /// then the job.
    pub(super) fn run_operation(&self, task: &OpTask) -> Result<OpResult, DeviceError> {
        self.finish_printing();
        let attempt = self.journal.operation(&task.id)?.map_or(1, |(a, _)| a + 1);
        let before = self.seen()?;
        // No shift, nothing to report (as the mock register answers): nothing is posted.
        if matches!(task.op, Operation::ReportX { .. }) && !before.open() {
            return Err(DeviceError::NotTaken {
                reason: crate::kkt::NotTaken::NoOpenShift,
                message: "смена не открыта: X-отчёту нечего показать".into(),
            });
        }
        let text = serde_json::to_string(&before).map_err(|e| unavailable(e.to_string()))?;
        self.journal.put_operation(&task.id, attempt, &text)?;
        let uuid = uuid_of(&task.id, attempt);
        self.client.post(&uuid, self.device(), &[task_of(&task.op)])?;
        // The job exists from here on: whatever goes wrong now, its outcome is unknown and is
        // looked up before anything else (never "nothing happened").
        let job = self.client.wait(&uuid, self.device()).map_err(posted_error)?;
        match job {
            Job::Ready(results) => Ok(self.operation_result(task, &before, results.first().unwrap_or(&Value::Null))),
            // 83 DENIED_IN_OPENED_SHIFT (KKTServiceLib `KKTErrorType.cs`; §2 of the note):
            // the shift is open already — the register refuses this request, nothing is wrong
            // with its set-up.
            Job::Failed { code: 83, description } => Err(DeviceError::Refused {
                code: "83".into(),
                message: description,
            }),
            // A cash script can fail after the money was registered (S1 reads the drawer after
            // it: §4 of the note): unless the device refused the sum itself, the counters
            // decide.
            Job::Failed { code, description }
                if matches!(task.op, Operation::Cash { .. }) && !REFUSED_BEFORE_CASH.contains(&code) =>
            {
                match self.judge(task, &before).map_err(posted_error)? {
                    Some(result) => Ok(result),
                    None => Err(super::query_error(code, description)),
                }
            }
            Job::Failed { code, description } => Err(super::query_error(code, description)),
            Job::Pending(s) => Err(unavailable(format!(
                "ККТ не ответила за {} с (задание {s}); операция будет проверена",
                self.client.job_bound().as_secs()
            ))),
            Job::Unknown => Err(unavailable(
                "веб-сервер драйвера ККТ потерял задание; операция будет проверена",
            )),
        }
    }

    /// What became of an operation's last attempt: its result, `None` if it did not happen.
    pub(super) fn find_operation(&self, task: &OpTask) -> Result<Option<OpResult>, DeviceError> {
        self.look_operation_up(task).map_err(posted_error)
    }

    fn look_operation_up(&self, task: &OpTask) -> Result<Option<OpResult>, DeviceError> {
        let Some((attempt, before)) = self.journal.operation(&task.id)? else {
            return Ok(None); // never posted
        };
        let before: Seen = serde_json::from_str(&before).map_err(|e| unavailable(e.to_string()))?;
        match self.client.state(&uuid_of(&task.id, attempt), self.device())? {
            Job::Ready(results) => Ok(Some(self.operation_result(
                task,
                &before,
                results.first().unwrap_or(&Value::Null),
            ))),
            Job::Pending(s) => Err(unavailable(format!("операция ещё выполняется на ККТ ({s})"))),
            // A failed cash task may have moved the money all the same (S1 reads the drawer
            // after registering it, and fails if that read fails: §4 of the note).
            Job::Failed { .. } if matches!(task.op, Operation::Cash { .. }) => self.judge(task, &before),
            Job::Failed { .. } => Ok(None),
            Job::Unknown => self.judge(task, &before),
        }
    }

    /// The job is gone: the register's own state says whether it happened.
    fn judge(&self, task: &OpTask, before: &Seen) -> Result<Option<OpResult>, DeviceError> {
        let now = self.seen()?;
        match &task.op {
            // A shift open now that was not then: opened — by this job, or by a receipt that
            // opened it itself meanwhile; either way opening again would be refused (83).
            Operation::ShiftOpen { cashier } => Ok((now.open() && (!before.open() || now.number != before.number))
                .then(|| {
                    to_result(&ShiftOpened {
                        shift_number: now.number,
                        opened_at: now_text(),
                        fiscal_doc_number: None,
                        fiscal_sign: None,
                        fn_number: String::new(),
                        cashier: cashier.clone(),
                    })
                })),
            // The shift of then is closed now (a later receipt may have opened the next one).
            Operation::ShiftClose { cashier } => Ok((before.open() && (!now.open() || now.number != before.number))
                .then(|| {
                    let z = self.z_report(before, &json!({"shiftNumber": before.number}), cashier.clone());
                    to_result(&z)
                })),
            Operation::Cash {
                direction,
                amount,
                cashier,
            } => {
                let key = if *direction == CashDirection::In {
                    "income"
                } else {
                    "outcome"
                };
                let was = &before.totals[key];
                let is = &now.totals[key];
                if was.is_null() || is.is_null() {
                    return Err(self.cannot_tell(task, "ККТ не сообщает счётчики внесений и выплат"));
                }
                // The counters are the shift's: compared within the shift of then, or — when no
                // shift was open and the task opened the next one itself — from nothing. Any
                // other change of shift hides what the task did.
                let (count0, sum0) = if before.open() && now.open() && now.number == before.number {
                    (was["count"].as_i64().unwrap_or(0), kopecks(&was["sum"]))
                } else if !before.open() && (!now.open() || now.number == before.number + 1) {
                    (0, Kopecks(0))
                } else {
                    return Err(self.cannot_tell(task, "с тех пор сменилась смена, а её счётчики не видны"));
                };
                // A closed shift that is still closed: the task did not open it, nothing moved.
                if !before.open() && !now.open() {
                    return Ok(None);
                }
                let (count, sum) = (is["count"].as_i64().unwrap_or(0), kopecks(&is["sum"]));
                if count == count0 && sum == sum0 {
                    Ok(None)
                } else if count == count0 + 1 && sum.0 == sum0.0 + amount.0 {
                    Ok(Some(to_result(&CashMoved {
                        direction: *direction,
                        amount: *amount,
                        cash_in_drawer: now.totals["cashDrawer"]["sum"]
                            .as_f64()
                            .map(|_| kopecks(&now.totals["cashDrawer"]["sum"])),
                        shift_number: now.number,
                        cashier: cashier.clone(),
                    })))
                } else {
                    Err(self.cannot_tell(
                        task,
                        &format!(
                            "счётчик {} изменился не на эту сумму: было {count0} на {sum0} ₽, стало {count} на {sum} ₽",
                            if *direction == CashDirection::In {
                                "внесений"
                            } else {
                                "выплат"
                            }
                        ),
                    ))
                }
            }
            // Nothing counts them: done again if lost (paper only).
            Operation::ReportX { .. } | Operation::DrawerOpen | Operation::Print { .. } | Operation::Copy { .. } => {
                Ok(None)
            }
        }
    }

    fn cannot_tell(&self, task: &OpTask, why: &str) -> DeviceError {
        DeviceError::NeedsReview {
            reason: format!("{}: веб-сервер потерял задание, а {why}", task.op.describe()),
            candidates: Vec::new(),
        }
    }

    /// The Z-report: the totals read just before the close, the close's own document.
    fn z_report(&self, before: &Seen, params: &Value, cashier: Option<Cashier>) -> ZReport {
        let totals = totals_of(&before.totals);
        // `expiredTime` is the opening plus 24 hours (docs/research/atol-web-server.md §2.4).
        let opened_at = before
            .expires
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .map(|e| (e - chrono::Duration::hours(24)).to_rfc3339())
            .unwrap_or_default();
        ZReport {
            shift_number: params["shiftNumber"].as_i64().unwrap_or(before.number),
            fiscal_doc_number: params["fiscalDocumentNumber"].as_i64().unwrap_or(0),
            fiscal_sign: super::sign_of(&params["fiscalDocumentSign"]).unwrap_or_default(),
            fn_number: params["fnNumber"].as_str().unwrap_or_default().into(),
            opened_at,
            closed_at: params["fiscalDocumentDateTime"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(now_text),
            receipts: params["receiptsCount"].as_i64().unwrap_or(totals.receipts),
            operations: totals.operations,
            cash_in: Some(totals.cash_in),
            cash_out: Some(totals.cash_out),
            cash_in_drawer: totals.cash_in_drawer,
            cashier,
        }
    }

    /// The till's result from the job's result and what the register showed before it.
    fn operation_result(&self, task: &OpTask, before: &Seen, result: &Value) -> OpResult {
        self.note_printing(result);
        let params = &result["fiscalParams"];
        let cashier = task.op.cashier().cloned();
        match &task.op {
            Operation::ShiftOpen { .. } => to_result(&ShiftOpened {
                shift_number: params["shiftNumber"].as_i64().unwrap_or(before.number + 1),
                opened_at: params["fiscalDocumentDateTime"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(now_text),
                fiscal_doc_number: params["fiscalDocumentNumber"].as_i64(),
                fiscal_sign: super::sign_of(&params["fiscalDocumentSign"]),
                fn_number: params["fnNumber"].as_str().unwrap_or_default().into(),
                cashier,
            }),
            Operation::ShiftClose { .. } => to_result(&self.z_report(before, params, cashier)),
            Operation::ReportX { .. } => {
                let opened_at = before
                    .expires
                    .as_deref()
                    .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
                    .map(|e| (e - chrono::Duration::hours(24)).to_rfc3339());
                to_result(&XReport {
                    totals: totals_of(&before.totals),
                    opened_at: opened_at.filter(|_| before.open()),
                    printed_at: now_text(),
                    cashier,
                })
            }
            Operation::Cash { direction, amount, .. } => to_result(&CashMoved {
                direction: *direction,
                amount: *amount,
                cash_in_drawer: result["counters"]["cashSum"]
                    .as_f64()
                    .map(|_| kopecks(&result["counters"]["cashSum"])),
                // A closed shift is opened by the cash task itself (§4 of the note).
                shift_number: if before.open() {
                    before.number
                } else {
                    before.number + 1
                },
                cashier,
            }),
            Operation::DrawerOpen => to_result(&Printed {
                done: "drawer_opened".into(),
                lines: None,
                fiscal_doc_number: None,
            }),
            Operation::Print { lines } => to_result(&Printed {
                done: "printed".into(),
                lines: Some(lines.len()),
                fiscal_doc_number: None,
            }),
            Operation::Copy { fiscal_doc_number, .. } => to_result(&Printed {
                done: "copy_printed".into(),
                lines: None,
                fiscal_doc_number: Some(*fiscal_doc_number),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_totals_are_read_per_receipt_type_and_payment_form_and_missing_counters_count_as_none() {
        let t = totals_of(&json!({
            "shiftNumber": 18,
            "cashDrawer": {"sum": 12500.0},
            "income": {"count": 2, "sum": 5000.0},
            "receipts": {
                "sell": {"count": 40, "sum": 8679.8, "payments": {"cash": 3500.0, "electronically": 5179.8, "prepaid": 0}},
                "sellReturn": {"count": 1, "sum": 179.8, "payments": {"cash": 179.8}},
                "buy": {"count": 0, "sum": 0}
            }
        }));
        assert_eq!((t.shift_number, t.receipts), (18, 41));
        assert_eq!(t.operations.len(), 2, "types without receipts are left out");
        assert_eq!(t.operations[0].kind, ReceiptType::Sale);
        assert_eq!(t.operations[0].total, Kopecks(867_980));
        assert_eq!(
            t.operations[0].payments,
            vec![
                PaymentSum {
                    kind: PaymentType::Cash,
                    amount: Kopecks(350_000)
                },
                PaymentSum {
                    kind: PaymentType::Card,
                    amount: Kopecks(517_980)
                }
            ]
        );
        assert_eq!(
            t.cash_in,
            Movement {
                count: 2,
                sum: Kopecks(500_000)
            }
        );
        assert_eq!(t.cash_out, Movement::default(), "a model without the counter");
        assert_eq!(t.cash_in_drawer, Some(Kopecks(1_250_000)));
    }

    #[test]
    fn each_operation_is_the_task_the_scripts_read() {
        let cashier = Some(Cashier {
            name: "Иванова А.А.".into(),
            inn: Some("500100732259".into()),
        });
        assert_eq!(
            task_of(&Operation::Cash {
                direction: CashDirection::Out,
                amount: Kopecks(110_001),
                cashier: cashier.clone()
            }),
            json!({"type": "cashOut", "cashSum": 1100.01, "operator": {"name": "Иванова А.А.", "vatin": "500100732259"}})
        );
        assert_eq!(
            task_of(&Operation::ShiftOpen { cashier: None }),
            json!({"type": "openShift"})
        );
        assert_eq!(
            task_of(&Operation::Print {
                lines: vec!["Слип".into()]
            }),
            json!({"type": "nonFiscal", "printFooter": false, "items": [{"type": "text", "text": "Слип"}]})
        );
        assert_eq!(
            task_of(&Operation::Copy {
                receipt_id: "r".into(),
                fiscal_doc_number: 7
            }),
            json!({"type": "printFnDocument", "fiscalDocumentNumber": 7})
        );
    }
}
