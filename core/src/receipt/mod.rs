//! The receipt model (FFD 1.2, docs/contract.md §6) and its validation ([`parse`]).
//!
//! A [`Receipt`] is what a till asked for, validated and completed: every amount exact in
//! kopecks, every FFD value list resolved ([`ffd`]), the defaults of the settings filled in
//! ([`Defaults`]), and what follows from the rest computed once — the total, the VAT of each
//! item and per rate, and the change. It is stored as its own serialisation and read back from
//! it, so a stored receipt never has to pass validation again.

pub mod counter;
pub mod ffd;
pub mod mark;
mod parse;

pub use ffd::{CorrectionKind, Measure, PaymentMethod, PaymentObject, PaymentType, ReceiptType, Taxation, Vat};
pub use parse::counter::{OpKind, operation as parse_operation};
pub use parse::{FieldError, Invalid, parse};

use crate::money::{Kopecks, Quantity};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub const MAX_ITEMS: usize = 1000;
pub const MAX_PAYMENTS: usize = 20;
pub const MAX_POS_ID: usize = 64;
/// Tag 1030.
pub const MAX_NAME: usize = 128;
/// The fiscal drive's counters are 32-bit kopecks: no amount may exceed 42 949 672.95 ₽.
pub const MAX_AMOUNT: Kopecks = Kopecks(4_294_967_295);
/// 22 % replaced 20 % on this day.
pub fn vat22_since() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
}

/// What the settings give a receipt that does not say (`[fiscal]`).
#[derive(Debug, Clone)]
pub struct Defaults {
    pub taxation: Taxation,
    pub cashier: Option<Cashier>,
    /// The VAT of an item that names none.
    pub vat: Vat,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            taxation: Taxation::Osn,
            cashier: None,
            vat: Vat::None,
        }
    }
}

/// Tags 1021 / 1203.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cashier {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
}

/// What the check of an item's marking code said, kept with the receipt and sent to the
/// register: 2106 (the FN's check) and, for the permissive mode, the requisite 1260 (1265 =
/// `UUID=<req_id>&Time=<req_timestamp>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMarking {
    pub check_id: String,
    /// `allowed` or `unknown` (a refused code is never registered).
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_2106: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_timestamp: Option<String>,
}

/// Tag 1008: where the electronic receipt goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Customer {
    Email(String),
    Phone(String),
}

impl Customer {
    pub fn contact(&self) -> &str {
        match self {
            Customer::Email(s) | Customer::Phone(s) => s,
        }
    }
}

/// Tags 1173 and 1174 (1178, 1179).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub kind: CorrectionKind,
    /// The date of the settlement being corrected (1178).
    pub base_date: NaiveDate,
    /// The tax authority's order number (1179); required for an ordered correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_number: Option<String>,
}

/// One item (tag 1059).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub price: Kopecks,
    pub quantity: Quantity,
    /// What the buyer pays for the item (1043): price × quantity less any discount.
    pub total: Kopecks,
    /// price × quantity − total (0 when there is none).
    #[serde(default)]
    pub discount: Kopecks,
    #[serde(default = "piece")]
    pub measure: Measure,
    #[serde(default = "full_payment")]
    pub payment_method: PaymentMethod,
    #[serde(default = "commodity")]
    pub payment_object: PaymentObject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking_code: Option<String>,
    /// The check the till made before payment (`POST /v1/kkt/marking/check`, §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking_check_id: Option<String>,
    /// The code's verdict, attached by the adapter before registration (§12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marking: Option<ItemMarking>,
    #[serde(default = "no_vat")]
    pub vat: Vat,
    /// The VAT inside `total` (1200).
    #[serde(default)]
    pub vat_amount: Kopecks,
}

fn piece() -> Measure {
    Measure::Piece
}
fn full_payment() -> PaymentMethod {
    PaymentMethod::FullPayment
}
fn commodity() -> PaymentObject {
    PaymentObject::Commodity
}
fn no_vat() -> Vat {
    Vat::None
}
fn osn() -> Taxation {
    Taxation::Osn
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Kopecks,
}

/// The VAT of one rate over the whole receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatSum {
    pub vat: Vat,
    pub amount: Kopecks,
}

/// A validated receipt: every amount exact, every rule of docs/contract.md §6 checked. It is
/// stored as its own serialisation (`request_json`) and read back from it (`Deserialize`) when
/// an interrupted intake is resumed or the OFD document is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub pos_id: String,
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    #[serde(default = "osn")]
    pub taxation: Taxation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<Cashier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// An electronic receipt (docs/contract.md §11): sent to the customer's contact by the FN
    /// through the OFD and not printed (ATOL `electronically`); needs `customer`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub electronic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    /// A refund's original settlement date, when the till gives it (for a 20 % VAT refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_date: Option<NaiveDate>,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
    /// Sum of the item totals (1020).
    pub total: Kopecks,
    /// What the cashier hands back: cash paid beyond the total.
    #[serde(default)]
    pub change: Kopecks,
}

impl Receipt {
    /// The VAT per rate, in the order the rates first appear (rates without VAT included with 0,
    /// as the fiscal document carries the sums "at 0 %" and "without VAT" too).
    pub fn vat_sums(&self) -> Vec<VatSum> {
        let mut sums: Vec<VatSum> = Vec::new();
        for item in &self.items {
            match sums.iter_mut().find(|s| s.vat == item.vat) {
                Some(s) => s.amount = Kopecks(s.amount.0 + item.vat_amount.0),
                None => sums.push(VatSum {
                    vat: item.vat,
                    amount: item.vat_amount,
                }),
            }
        }
        sums
    }

    /// The self-initiated correction receipt (tag 1173 = 0, 1178 = the day the buyer paid)
    /// that registers this settlement when it was made without the register (54-FZ art. 4.3;
    /// README "Late sales"). A correction stays what it is.
    pub fn late_correction(&self, paid_on: NaiveDate) -> Receipt {
        if self.kind.is_correction() {
            return self.clone();
        }
        Receipt {
            kind: self.kind.correction(),
            correction: Some(Correction {
                kind: CorrectionKind::SelfMade,
                base_date: paid_on,
                base_number: None,
            }),
            ..self.clone()
        }
    }

    /// What was paid in each form (after change: cash counts what stays in the drawer).
    pub fn paid_by(&self, kind: PaymentType) -> Kopecks {
        let sum: i64 = self
            .payments
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.amount.0)
            .sum();
        if kind == PaymentType::Cash {
            Kopecks(sum - self.change.0)
        } else {
            Kopecks(sum)
        }
    }
}
