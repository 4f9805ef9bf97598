//! The fiscal document as the OFD receives it (docs/contract.md §2): the receipt's type, items,
//! payments and total with the register's fiscal attributes, amounts as numbers with two
//! decimals. The items and payments are the validated request's, passed on verbatim.

use crate::buffer::Claimed;
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The parts of the stored request the document reuses verbatim.
#[derive(Deserialize)]
struct StoredRequest<'a> {
    #[serde(borrow)]
    items: &'a RawValue,
    #[serde(borrow)]
    payments: &'a RawValue,
}

#[derive(Serialize)]
struct Document<'a> {
    receipt_id: &'a str,
    pos_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    items: &'a RawValue,
    payments: &'a RawValue,
    total: Kopecks,
    fiscal_doc_number: i64,
    fiscal_sign: &'a str,
    fiscal_datetime: &'a str,
    fn_number: &'a str,
    kkt_number: &'a str,
    shift_number: i64,
}

/// The JSON body of `POST {ofd_url}/ofd/v1/receipt` for a claimed receipt.
pub fn render(c: &Claimed) -> Result<String, serde_json::Error> {
    let stored: StoredRequest<'_> = serde_json::from_str(&c.request_json)?;
    let f = &c.fiscal;
    serde_json::to_string(&Document {
        receipt_id: &c.receipt_id,
        pos_id: &c.pos_id,
        kind: &c.kind,
        items: stored.items,
        payments: stored.payments,
        total: c.total,
        fiscal_doc_number: f.fiscal_doc_number,
        fiscal_sign: &f.fiscal_sign,
        fiscal_datetime: &f.fiscal_datetime,
        fn_number: &f.fn_number,
        kkt_number: &f.kkt_number,
        shift_number: f.shift_number,
    })
}
