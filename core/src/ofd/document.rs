//! The fiscal document as the OFD receives it (docs/contract.md §2, §6): the fields of §2 that the
//! original mock OFD reads (`receipt_id, pos_id, type, items, payments, total` and the register's
//! attributes) and, beside each FFD 1.2 value, its tag's value — operation 1054, taxation 1055,
//! measure 2108, payment method 1214, payment object 1212, VAT rate 1199 and amount 1200, the
//! payment sums 1031/1081/1215/1216/1217, cashier 1021/1203, customer 1008, correction 1173/1178/
//! 1179, marking code 2000 — with `ffd_version: 4` (tag 1209, FFD 1.2). Amounts are numbers with
//! two decimals.

use crate::buffer::Claimed;
use crate::money::{Kopecks, Quantity};
use crate::receipt::{Receipt, Vat, VatSum};
use serde::Serialize;

/// Tag 1209: FFD 1.2.
pub const FFD_VERSION: u8 = 4;

#[derive(Serialize)]
struct Document<'a> {
    receipt_id: &'a str,
    pos_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    ffd_version: u8,
    /// 1054
    operation: u16,
    /// 1055 (the bit of the taxation system)
    taxation: u16,
    items: Vec<Item<'a>>,
    payments: Vec<Payment>,
    /// 1020
    total: Kopecks,
    change: Kopecks,
    vat: Vec<VatTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cashier: Option<Cashier<'a>>,
    /// 1008
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correction: Option<Correction<'a>>,
    fiscal_doc_number: i64,
    fiscal_sign: &'a str,
    fiscal_datetime: &'a str,
    fn_number: &'a str,
    kkt_number: &'a str,
    shift_number: i64,
}

#[derive(Serialize)]
struct Item<'a> {
    /// 1030
    name: &'a str,
    /// 1079
    price: Kopecks,
    /// 1023
    quantity: Quantity,
    /// 1043
    total: Kopecks,
    discount: Kopecks,
    /// 2108
    measure: u16,
    /// 1214
    payment_method: u16,
    /// 1212
    payment_object: u16,
    /// 1199
    vat: u16,
    /// 1200
    vat_amount: Kopecks,
    /// 2000
    #[serde(skip_serializing_if = "Option::is_none")]
    marking_code: Option<&'a str>,
}

#[derive(Serialize)]
struct Payment {
    #[serde(rename = "type")]
    kind: &'static str,
    /// The tag of the sum: 1031 cash, 1081 card, 1215 prepaid, 1216 credit, 1217 other.
    tag: u16,
    amount: Kopecks,
}

#[derive(Serialize)]
struct VatTotal {
    /// 1199
    vat: u16,
    amount: Kopecks,
}

#[derive(Serialize)]
struct Cashier<'a> {
    /// 1021
    name: &'a str,
    /// 1203
    #[serde(skip_serializing_if = "Option::is_none")]
    inn: Option<&'a str>,
}

#[derive(Serialize)]
struct Correction<'a> {
    /// 1173: 0 on the seller's own initiative, 1 ordered by the tax authority.
    #[serde(rename = "type")]
    kind: u16,
    /// 1178
    base_date: String,
    /// 1179
    #[serde(skip_serializing_if = "Option::is_none")]
    base_number: Option<&'a str>,
}

fn vat_total(s: &VatSum) -> VatTotal {
    VatTotal {
        vat: s.vat.code(),
        amount: s.amount,
    }
}

/// The JSON body of `POST {ofd_url}/ofd/v1/receipt` for a claimed receipt.
pub fn render(c: &Claimed) -> Result<String, serde_json::Error> {
    let r: Receipt = serde_json::from_str(&c.request_json)?;
    let f = &c.fiscal;
    serde_json::to_string(&Document {
        receipt_id: &c.receipt_id,
        pos_id: &r.pos_id,
        kind: r.kind.as_str(),
        ffd_version: FFD_VERSION,
        operation: r.kind.code(),
        taxation: r.taxation.code(),
        items: r
            .items
            .iter()
            .map(|i| Item {
                name: &i.name,
                price: i.price,
                quantity: i.quantity,
                total: i.total,
                discount: i.discount,
                measure: i.measure.code(),
                payment_method: i.payment_method.code(),
                payment_object: i.payment_object.code(),
                vat: i.vat.code(),
                vat_amount: i.vat_amount,
                marking_code: i.marking_code.as_deref(),
            })
            .collect(),
        payments: r
            .payments
            .iter()
            .map(|p| Payment {
                kind: p.kind.as_str(),
                tag: p.kind.code(),
                amount: p.amount,
            })
            .collect(),
        total: r.total,
        change: r.change,
        vat: r
            .vat_sums()
            .iter()
            .filter(|s| s.vat != Vat::None)
            .map(vat_total)
            .collect(),
        cashier: r.cashier.as_ref().map(|c| Cashier {
            name: &c.name,
            inn: c.inn.as_deref(),
        }),
        customer: r.customer.as_ref().map(|c| c.contact()),
        correction: r.correction.as_ref().map(|c| Correction {
            kind: c.kind.code(),
            base_date: c.base_date.format("%Y-%m-%d").to_string(),
            base_number: c.base_number.as_deref(),
        }),
        fiscal_doc_number: f.fiscal_doc_number,
        fiscal_sign: &f.fiscal_sign,
        fiscal_datetime: &f.fiscal_datetime,
        fn_number: &f.fn_number,
        kkt_number: &f.kkt_number,
        shift_number: f.shift_number,
    })
}
