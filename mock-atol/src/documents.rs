//! The fiscal documents of the mock FN and how `getFnDocument` gives them back, in the shape
//! of the driver's own `json_getFnDocument.js` (S1, AlexanderYekat/atolexamplesjson @ 84cf9b3;
//! docs/research/atol-exactly-once.md §1) — not the shape that is easiest for a client:
//! - keys are FFD tag numbers as strings; 1077 (the fiscal sign) is 12 upper-case hex digits
//!   (6 bytes: a 2-byte header, then the 4-byte sign big-endian); 1041 (the FN number) is not
//!   there — the script's own QR builder falls back to the FN serial when it is missing;
//! - 1054 (operation), 1038 (shift), 1042 (receipt in shift), 1059 (items), 1192 (the
//!   additional attribute, when the receipt had one) are there in full mode;
//! - short mode (`short: true`): only 1012, 1040, 1077 — the hex of the integer sign, 8
//!   digits — and 1054, 1020; its `qr` drops the first 4 hex digits of that as it does of the
//!   full one, so its `fp=` is wrong, as the script's is.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One item of a receipt, as its 1059 holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub price: f64,
    pub quantity: f64,
    pub amount: f64,
}

/// One fiscal document in the FN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub number: i64,
    /// `receipt`, `receiptCorrection`, `openShift`, `closeShift` (S1's `fiscalDocumentType`).
    pub kind: String,
    /// The task's type (`sell`, …) for receipts.
    pub operation: String,
    /// The job that made it (the web server's uuid); empty for another program's receipt.
    pub uuid: String,
    pub at_ms: i64,
    pub total: f64,
    /// The decimal fiscal sign (what `fiscalParams.fiscalDocumentSign` gives).
    pub sign: String,
    /// 1192, when the receipt carried an additional attribute.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub shift: i64,
    #[serde(default)]
    pub in_shift: i64,
    /// An electronic receipt (`electronically: true`): sent by the FN, not printed.
    #[serde(default)]
    pub electronically: bool,
    /// A receipt's money per payment form (`cash` net of change), for `getShiftTotals`.
    #[serde(default)]
    pub payments: std::collections::BTreeMap<String, f64>,
}

/// The device's local time (Moscow) in the driver's format `2024-05-06T12:34:00+03:00`.
pub fn local(ms: i64) -> String {
    let msk =
        FixedOffset::east_opt(3 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    t.with_timezone(&msk).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// 1054 of a receipt task.
pub fn operation_code(task_type: &str) -> i64 {
    match task_type.trim_end_matches("Correction") {
        "sell" => 1,
        "sellReturn" => 2,
        "buy" => 3,
        "buyReturn" => 4,
        _ => 0,
    }
}

impl Document {
    fn sign_u32(&self) -> u32 {
        self.sign.parse().unwrap_or(0)
    }

    /// The result of `getFnDocument` for this document.
    pub fn tlv(&self, short: bool, drop_tag: bool, fn_serial: &str, registration: &str) -> Value {
        let receipt = self.kind.starts_with("receipt");
        let hex = if short {
            format!("{:08X}", self.sign_u32())
        } else {
            format!("3104{:08X}", self.sign_u32())
        };
        let mut t = json!({"fiscalDocumentType": self.kind, "short": short, "1040": self.number,
                           "1012": local(self.at_ms), "1077": hex});
        if receipt {
            t["1054"] = json!(operation_code(&self.operation));
            t["1020"] = json!(self.total);
            // S1: the QR code drops the first 4 hex digits of 1077 — wrong in short mode.
            let fp = u64::from_str_radix(hex.get(4..).unwrap_or_default(), 16).unwrap_or(0);
            let when: String = local(self.at_ms).replace(['-', ':'], "").chars().take(13).collect();
            t["qr"] = json!(format!(
                "t={when}&s={:.2}&fn={fn_serial}&i={}&fp={fp}&n={}",
                self.total,
                self.number,
                operation_code(&self.operation)
            ));
        }
        if short {
            return json!({"documentTLV": t});
        }
        t["1037"] = json!(registration);
        t["1038"] = json!(self.shift);
        if receipt {
            t["1042"] = json!(self.in_shift);
            t["1059"] = self
                .items
                .iter()
                .map(|i| json!({"1030": i.name, "1079": i.price, "1023": i.quantity, "1043": i.amount}))
                .collect();
            if let Some(tag) = self.tag.as_ref().filter(|_| !drop_tag) {
                t["1192"] = json!(tag);
            }
        }
        json!({"documentTLV": t})
    }
}
