//! Counter operations (docs/contract.md §11): what a cashier does on the register besides a
//! sale — open and close the shift with the cashier, the X-report, cash in and out, the drawer,
//! a non-fiscal slip, a copy of a receipt.
//!
//! Each goes through the buffer as a receipt does (docs/contract.md §11, README "A day at the
//! counter"): its intent row is made durable under the till's `Idempotency-Key`, the device
//! thread hands the register an [`OpTask`] whose id never changes, and the register's result is
//! stored with the exact answer bytes before anyone is answered. An operation interrupted
//! before its result came back is looked up first ([`super::Kkt::operation_lookup`]) and sent
//! again only when the register shows it never happened.

use super::OperationSum;
use crate::money::Kopecks;
use crate::receipt::Cashier;
pub use crate::receipt::counter::{CashDirection, Operation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One operation to run on the register: its id (the intent row's, stable across retries and
/// restarts) and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTask {
    pub id: String,
    pub op: Operation,
    pub requested_at: DateTime<Utc>,
}

/// Cash put in or taken out in a shift: how many times and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Movement {
    pub count: i64,
    pub sum: Kopecks,
}

/// What the register counted in a shift so far: the X-report, and the body of the Z-report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftTotals {
    pub shift_number: i64,
    /// Receipts in the shift, every type.
    pub receipts: i64,
    /// Per receipt type, per payment form (and VAT rate where the register tells).
    pub operations: Vec<OperationSum>,
    pub cash_in: Movement,
    pub cash_out: Movement,
    /// The drawer's counter: what should be in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_in_drawer: Option<Kopecks>,
}

/// The X-report: the shift's totals now; the shift stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XReport {
    #[serde(flatten)]
    pub totals: ShiftTotals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
    pub printed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
}

/// A shift opened: its number, its document, the cashier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftOpened {
    pub shift_number: i64,
    pub opened_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_doc_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_sign: Option<String>,
    pub fn_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
}

/// Cash put in or taken out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashMoved {
    pub direction: CashDirection,
    pub amount: Kopecks,
    /// The drawer's counter after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_in_drawer: Option<Kopecks>,
    pub shift_number: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
}

/// An operation that only prints or moves the drawer: what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Printed {
    /// `drawer_opened`, `printed`, `copy_printed`.
    pub done: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_doc_number: Option<i64>,
}

/// The result of an operation as the till gets it (without the `operation_id`, which the
/// buffer adds): one of the result structs above, as JSON object text (text, so that money
/// keeps its two decimals: `1500.00`).
pub type OpResult = String;

/// A result struct as JSON object text (they all serialize to an object).
pub fn to_result<T: Serialize>(value: &T) -> OpResult {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_is_stored_as_tagged_json_and_read_back() {
        let op = Operation::Cash {
            direction: CashDirection::Out,
            amount: Kopecks(150_000),
            cashier: Some(Cashier {
                name: "Иванова А.А.".into(),
                inn: None,
            }),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(
            text,
            r#"{"cash":{"direction":"out","amount":1500.00,"cashier":{"name":"Иванова А.А."}}}"#
        );
        assert_eq!(serde_json::from_str::<Operation>(&text).unwrap(), op);
        assert_eq!(op.describe(), "выплата 1500.00 ₽");
    }
}
