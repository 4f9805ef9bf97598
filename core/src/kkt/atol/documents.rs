//! Documents read back from the FN (`getFnDocument`, docs/research/atol-exactly-once.md §1)
//! and how one is matched to a receipt (docs/contract.md §10.2).
//!
//! The driver's `json_getFnDocument.js` (AlexanderYekat/atolexamplesjson @ 84cf9b3) answers
//! `{documentTLV: {"<tag>": value, …, fiscalDocumentType, short, qr}}`:
//! - full mode: every top-level TLV the FN archive holds — 1012 time, 1040 number, 1077 the
//!   fiscal sign as 12 hex digits (6 bytes), 1054 operation, 1020 total, 1038 shift, 1042
//!   receipt number, 1059 items, 1192 our tag, …; 1041 (the FN number) may be missing;
//! - short mode (`short: true`, when the FN cannot give the TLVs): only 1012, 1040, 1077 (the
//!   hex of the integer sign) and, for receipts, 1054 and 1020 — no tag, no items;
//! - the decimal fiscal sign of the QR code (`fp=`) is the last 4 bytes of 1077, big-endian —
//!   the driver's own `qr` gets it wrong in short mode, so it is computed here.

use crate::money::Kopecks;
use crate::receipt::{Receipt, ReceiptType};
use serde_json::Value;

/// One document of the FN as read back.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FnDocument {
    pub number: i64,
    /// `receipt`, `receiptCorrection`, `openShift`, …
    pub kind: String,
    pub short: bool,
    /// 1054: 1 sale, 2 sale refund, 3 buy, 4 buy refund.
    pub operation: Option<i64>,
    /// 1020 as given (roubles in full mode; the short mode's unit is not documented).
    pub total: Option<f64>,
    /// 1192.
    pub tag: Option<String>,
    /// 1059: (name 1030, sum 1043 in kopecks), in full mode.
    pub items: Option<Vec<(String, Kopecks)>>,
    pub datetime: Option<String>,
    /// The decimal fiscal sign.
    pub sign: Option<String>,
    pub fn_number: Option<String>,
    pub registration: Option<String>,
    pub shift: Option<i64>,
    pub in_shift: Option<i64>,
}

/// The decimal fiscal sign from 1077: a hex string (its last 8 digits) or a number.
pub(super) fn decimal_sign(v: &Value) -> Option<String> {
    if let Some(n) = v.as_u64() {
        return Some(n.to_string());
    }
    let hex = v.as_str()?.trim();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tail = &hex[hex.len().saturating_sub(8)..];
    u32::from_str_radix(tail, 16).ok().map(|n| n.to_string())
}

fn kopecks(v: &Value) -> Option<Kopecks> {
    v.as_f64().map(|r| Kopecks((r * 100.0).round() as i64))
}

impl FnDocument {
    /// Parses the `getFnDocument` result for document `number`.
    pub fn parse(number: i64, result: &Value) -> FnDocument {
        let t = &result["documentTLV"];
        let text = |tag: &str| t[tag].as_str().map(str::to_string);
        let items = t["1059"].as_array().map(|items| {
            items
                .iter()
                .map(|i| {
                    let name = i["1030"].as_str().unwrap_or_default().trim().to_string();
                    (name, kopecks(&i["1043"]).unwrap_or(Kopecks(-1)))
                })
                .collect()
        });
        FnDocument {
            number: t["1040"].as_i64().unwrap_or(number),
            kind: t["fiscalDocumentType"].as_str().unwrap_or_default().to_string(),
            short: t["short"].as_bool().unwrap_or(false),
            operation: t["1054"].as_i64(),
            total: t["1020"].as_f64(),
            tag: text("1192").filter(|s| !s.is_empty()),
            items,
            datetime: text("1012"),
            sign: decimal_sign(&t["1077"]),
            fn_number: text("1041").filter(|s| !s.is_empty()),
            registration: text("1037"),
            shift: t["1038"].as_i64(),
            in_shift: t["1042"].as_i64(),
        }
    }

    pub fn is_receipt(&self) -> bool {
        self.kind == "receipt" || self.kind == "receiptCorrection"
    }

    /// The operation as the adapter names it (a correction when the document is one).
    pub fn receipt_type(&self) -> Option<ReceiptType> {
        let correction = self.kind == "receiptCorrection";
        Some(match (self.operation?, correction) {
            (1, false) => ReceiptType::Sale,
            (2, false) => ReceiptType::SaleRefund,
            (3, false) => ReceiptType::Buy,
            (4, false) => ReceiptType::BuyRefund,
            (1, true) => ReceiptType::SaleCorrection,
            (2, true) => ReceiptType::SaleRefundCorrection,
            (3, true) => ReceiptType::BuyCorrection,
            (4, true) => ReceiptType::BuyRefundCorrection,
            _ => return None,
        })
    }

    /// Whether 1020 is this total: roubles, or — in short mode, whose unit no source gives —
    /// kopecks.
    fn total_is(&self, total: Kopecks) -> bool {
        self.total
            .is_some_and(|t| (t * 100.0).round() as i64 == total.0 || (self.short && t.round() as i64 == total.0))
    }

    /// How this document compares with a receipt as it was sent to the register.
    pub fn likeness(&self, sent: &Receipt) -> Likeness {
        if !self.is_receipt() || self.receipt_type() != Some(sent.kind) || !self.total_is(sent.total) {
            return Likeness::Differs;
        }
        match &self.items {
            None => Likeness::Same { items: false },
            Some(items) => {
                let same = items.len() == sent.items.len()
                    && items
                        .iter()
                        .zip(&sent.items)
                        .all(|((name, sum), i)| *sum == i.total && name == i.name.trim());
                if same {
                    Likeness::Same { items: true }
                } else {
                    Likeness::Differs
                }
            }
        }
    }
}

/// A document against a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Likeness {
    /// Another operation, total or items: not this receipt.
    Differs,
    /// The same as far as the document shows; `items`: its items were compared too.
    Same { items: bool },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sale(price: &str) -> Receipt {
        let body = format!(
            r#"{{"pos_id":"P","type":"sale","items":[{{"name":"Кофе","price":{price},"qty":1}}],"payments":[{{"type":"cash","amount":{price}}}]}}"#
        );
        crate::receipt::parse(body.as_bytes(), &Default::default()).unwrap()
    }

    #[test]
    fn the_fiscal_sign_is_the_last_four_bytes_of_1077_in_either_mode() {
        // 6 bytes, full mode: 0x3104 prefix, then 0x8A2F1C5B = 2318343259.
        assert_eq!(decimal_sign(&json!("31048A2F1C5B")).as_deref(), Some("2318343259"));
        // Short mode: the hex of the integer sign itself.
        assert_eq!(decimal_sign(&json!("8A2F1C5B")).as_deref(), Some("2318343259"));
        assert_eq!(decimal_sign(&json!(2318343259u64)).as_deref(), Some("2318343259"));
        assert_eq!(decimal_sign(&json!("not hex")), None);
    }

    #[test]
    fn a_full_document_is_matched_by_operation_total_and_items_and_a_short_one_cannot_show_items() {
        let full = FnDocument::parse(
            5,
            &json!({"documentTLV": {"fiscalDocumentType": "receipt", "short": false, "1040": 5, "1054": 1,
                    "1020": 150.0, "1077": "31048A2F1C5B", "1038": 2, "1042": 3,
                    "1059": [{"1030": "Кофе", "1043": 150.0, "1023": 1, "1079": 150.0}]}}),
        );
        assert_eq!(full.likeness(&sale("150")), Likeness::Same { items: true });
        assert_eq!(full.likeness(&sale("151")), Likeness::Differs);
        assert_eq!(
            (full.shift, full.in_shift, full.fn_number.as_deref()),
            (Some(2), Some(3), None)
        );
        let short = FnDocument::parse(
            5,
            &json!({"documentTLV": {"fiscalDocumentType": "receipt", "short": true, "1040": 5, "1054": 1,
                    "1020": 150.0, "1077": "8A2F1C5B"}}),
        );
        assert_eq!(short.likeness(&sale("150")), Likeness::Same { items: false });
        let refund = FnDocument::parse(
            5,
            &json!({"documentTLV": {"fiscalDocumentType": "receipt", "short": true, "1054": 2, "1020": 150.0}}),
        );
        assert_eq!(
            refund.likeness(&sale("150")),
            Likeness::Differs,
            "a refund is not the sale"
        );
        let shift = FnDocument::parse(
            5,
            &json!({"documentTLV": {"fiscalDocumentType": "openShift", "1038": 2}}),
        );
        assert_eq!(shift.likeness(&sale("150")), Likeness::Differs);
    }
}
