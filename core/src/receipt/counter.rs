//! The counter operations' requests (docs/contract.md §11) as the till sends them and the
//! buffer stores them: open and close the shift with the cashier, the X-report, cash in and
//! out, the drawer, a non-fiscal slip, a copy of a receipt. What the register answers is in
//! `kkt::ops`.

use super::Cashier;
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};

/// Into or out of the drawer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashDirection {
    /// Внесение: the float in the morning, change brought from the bank.
    In,
    /// Выплата (изъятие): the evening's collection.
    Out,
}

/// One counter operation, as stored in its intent row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged (`{"cash": {…}}`): an internally tagged enum buffers its fields, and money
// is read from the JSON text itself (`Kopecks`), which a buffer no longer holds.
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ShiftOpen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
    },
    ShiftClose {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
    },
    ReportX {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
    },
    Cash {
        direction: CashDirection,
        amount: Kopecks,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
    },
    DrawerOpen,
    /// Non-fiscal text, e.g. the bank terminal's slip.
    Print {
        lines: Vec<String>,
    },
    /// A copy of a receipt's document, read from the FN.
    Copy {
        receipt_id: String,
        fiscal_doc_number: i64,
    },
}

impl Operation {
    /// The operation's name in the API and the buffer (`shift_open`, `cash`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::ShiftOpen { .. } => "shift_open",
            Operation::ShiftClose { .. } => "shift_close",
            Operation::ReportX { .. } => "report_x",
            Operation::Cash { .. } => "cash",
            Operation::DrawerOpen => "drawer_open",
            Operation::Print { .. } => "print",
            Operation::Copy { .. } => "copy",
        }
    }

    /// The cashier it is done by, if the request names one.
    pub fn cashier(&self) -> Option<&Cashier> {
        match self {
            Operation::ShiftOpen { cashier }
            | Operation::ShiftClose { cashier }
            | Operation::ReportX { cashier }
            | Operation::Cash { cashier, .. } => cashier.as_ref(),
            _ => None,
        }
    }

    /// In Russian, for logs, the tray and the window.
    pub fn describe(&self) -> String {
        match self {
            Operation::ShiftOpen { .. } => "открытие смены".into(),
            Operation::ShiftClose { .. } => "закрытие смены (Z-отчёт)".into(),
            Operation::ReportX { .. } => "X-отчёт".into(),
            Operation::Cash {
                direction: CashDirection::In,
                amount,
                ..
            } => format!("внесение {amount} ₽"),
            Operation::Cash {
                direction: CashDirection::Out,
                amount,
                ..
            } => format!("выплата {amount} ₽"),
            Operation::DrawerOpen => "открытие денежного ящика".into(),
            Operation::Print { .. } => "печать нефискального документа".into(),
            Operation::Copy { fiscal_doc_number, .. } => format!("копия чека ФД № {fiscal_doc_number}"),
        }
    }
}
