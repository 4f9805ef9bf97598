//! The receipt request model and its validation (docs/contract.md §1).
//!
//! The body is read field by field from its raw JSON text so that every problem is reported
//! against the field that has it (`items[0].price`), wrong types included, and so that money is
//! parsed exactly from the text. Both the seed's body (`qty`, no `total`) and the original
//! adapter's body (`quantity`, `total`, `vat_rate`) are accepted.

use crate::money::{DecimalError, Kopecks, Quantity};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;

pub const MAX_ITEMS: usize = 1000;
pub const MAX_PAYMENTS: usize = 20;
pub const MAX_POS_ID: usize = 64;
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptType {
    Sale,
    Refund,
    Correction,
}

impl ReceiptType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptType::Sale => "sale",
            ReceiptType::Refund => "refund",
            ReceiptType::Correction => "correction",
        }
    }

    /// The operation sign `n` of the receipt QR code: 1 income (sale, correction of income),
    /// 2 return of income (refund).
    pub fn qr_operation(self) -> u8 {
        match self {
            ReceiptType::Sale | ReceiptType::Correction => 1,
            ReceiptType::Refund => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentType {
    Cash,
    Card,
    Other,
}

/// VAT rate of an item: a percentage or `none` (no VAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VatRate {
    Percent(u8),
    None,
}

impl<'de> Deserialize<'de> for VatRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "none" => Ok(VatRate::None),
            serde_json::Value::Number(n) => n
                .as_u64()
                .and_then(|p| u8::try_from(p).ok())
                .map(VatRate::Percent)
                .ok_or_else(|| serde::de::Error::custom("a VAT rate")),
            other => Err(serde::de::Error::custom(format!("not a VAT rate: {other}"))),
        }
    }
}

impl Serialize for VatRate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VatRate::Percent(p) => s.serialize_u8(*p),
            VatRate::None => s.serialize_str("none"),
        }
    }
}

const VAT_RATES: [u8; 6] = [0, 5, 7, 10, 20, 22];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub price: Kopecks,
    pub quantity: Quantity,
    pub total: Kopecks,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<VatRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    #[serde(rename = "type")]
    pub kind: PaymentType,
    pub amount: Kopecks,
}

/// A validated receipt: every amount exact, every rule of docs/contract.md §1 checked. It is
/// stored as its own serialisation (`request_json`) and read back from it (`Deserialize`) when
/// an interrupted intake is resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub pos_id: String,
    #[serde(rename = "type")]
    pub kind: ReceiptType,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
    /// Sum of the item totals.
    pub total: Kopecks,
}

/// One problem with one field of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Why a request body is not a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not JSON at all (or not an object).
    Malformed(String),
    /// JSON, but fields break the rules.
    Fields(Vec<FieldError>),
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        // A hostile body with thousands of bad fields gets a bounded answer.
        if self.0.len() < 100 {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }
}

type Object<'a> = HashMap<String, &'a RawValue>;

fn as_object<'a>(raw: &'a RawValue) -> Option<Object<'a>> {
    serde_json::from_str::<Object<'a>>(raw.get()).ok()
}

fn as_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder the text around
/// them on screen and on the slip ("Trojan Source"): a receipt line must read as it is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A string field with a length range (in characters) and no control characters.
fn string_field(obj: &Object<'_>, key: &str, path: &str, max: usize, errors: &mut Errors) -> Option<String> {
    match obj.get(key) {
        None => errors.add(path, "is required"),
        Some(raw) if is_null(raw) => errors.add(path, "is required"),
        Some(raw) => match as_string(raw) {
            None => errors.add(path, "must be a string"),
            Some(s) => {
                let len = s.chars().count();
                if s.trim().is_empty() {
                    errors.add(path, "must not be empty");
                } else if len > max {
                    errors.add(path, format!("must be at most {max} characters"));
                } else if s.chars().any(char::is_control) {
                    errors.add(path, "must not contain control characters");
                } else if s.chars().any(is_bidi_control) {
                    errors.add(path, "must not contain bidirectional override characters");
                } else {
                    return Some(s);
                }
            }
        },
    }
    None
}

fn decimal_message(e: &DecimalError) -> String {
    e.to_string()
}

/// A positive decimal field parsed with `parse`; `None` after recording the problem.
fn positive<T: Copy, F>(
    raw: Option<&&RawValue>,
    path: &str,
    parse: F,
    is_positive: fn(T) -> bool,
    errors: &mut Errors,
) -> Option<T>
where
    F: Fn(&str) -> Result<T, DecimalError>,
{
    let Some(raw) = raw.filter(|r| !is_null(r)) else {
        errors.add(path, "is required");
        return None;
    };
    match parse(raw.get()) {
        Ok(v) if is_positive(v) => Some(v),
        Ok(_) => {
            errors.add(path, "must be greater than 0");
            None
        }
        Err(e) => {
            errors.add(path, decimal_message(&e));
            None
        }
    }
}

fn parse_vat(raw: &RawValue) -> Option<VatRate> {
    if let Some(s) = as_string(raw) {
        let s = s.trim().to_ascii_lowercase();
        if s == "none" {
            return Some(VatRate::None);
        }
        let s = s.strip_prefix("vat").unwrap_or(&s);
        return s
            .parse::<u8>()
            .ok()
            .filter(|p| VAT_RATES.contains(p))
            .map(VatRate::Percent);
    }
    crate::money::parse_scaled(raw.get(), 0)
        .ok()
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| VAT_RATES.contains(p))
        .map(VatRate::Percent)
}

fn item(raw: &RawValue, i: usize, errors: &mut Errors) -> Option<Item> {
    let path = |f: &str| format!("items[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("items[{i}]"), "must be an object");
        return None;
    };
    let name = string_field(&obj, "name", &path("name"), MAX_NAME, errors);
    let price = positive(obj.get("price"), &path("price"), Kopecks::parse, |k| k.0 > 0, errors);
    let (qty_key, qty_raw) = match (obj.get("quantity"), obj.get("qty")) {
        (Some(q), _) => ("quantity", Some(q)),
        (None, Some(q)) => ("qty", Some(q)),
        (None, None) => ("quantity", None),
    };
    let quantity = positive(qty_raw, &path(qty_key), Quantity::parse, |q| q.0 > 0, errors);
    let vat_rate = match obj.get("vat_rate") {
        None => None,
        Some(r) if is_null(r) => None,
        Some(r) => match parse_vat(r) {
            Some(v) => Some(v),
            None => {
                errors.add(path("vat_rate"), "must be one of 0, 5, 7, 10, 20, 22 or \"none\"");
                None
            }
        },
    };
    let computed = match (price, quantity) {
        (Some(p), Some(q)) => match p.times_quantity(q) {
            Some(t) => Some(t),
            None => {
                errors.add(path("total"), "is too large");
                None
            }
        },
        _ => None,
    };
    let total = match obj.get("total").filter(|r| !is_null(r)) {
        None => computed,
        Some(raw) => match Kopecks::parse(raw.get()) {
            Err(e) => {
                errors.add(path("total"), decimal_message(&e));
                None
            }
            Ok(given) => match computed {
                Some(c) if (given.0 - c.0).abs() <= 1 => Some(given),
                Some(c) => {
                    errors.add(
                        path("total"),
                        format!("must equal price × quantity = {c} (±0.01), got {given}"),
                    );
                    None
                }
                None => None,
            },
        },
    };
    Some(Item {
        name: name?,
        price: price?,
        quantity: quantity?,
        total: total?,
        vat_rate,
    })
}

fn payment(raw: &RawValue, i: usize, errors: &mut Errors) -> Option<Payment> {
    let path = |f: &str| format!("payments[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("payments[{i}]"), "must be an object");
        return None;
    };
    let kind = match obj.get("type") {
        None => {
            errors.add(path("type"), "is required");
            None
        }
        Some(r) => match as_string(r).as_deref() {
            Some("cash") => Some(PaymentType::Cash),
            Some("card") => Some(PaymentType::Card),
            Some("other") => Some(PaymentType::Other),
            _ => {
                errors.add(path("type"), "must be one of cash, card, other");
                None
            }
        },
    };
    let amount = positive(obj.get("amount"), &path("amount"), Kopecks::parse, |k| k.0 > 0, errors);
    Some(Payment {
        kind: kind?,
        amount: amount?,
    })
}

fn array<'a>(obj: &Object<'a>, key: &str, max: usize, errors: &mut Errors) -> Option<Vec<&'a RawValue>> {
    let raw = match obj.get(key) {
        Some(r) if !is_null(r) => r,
        _ => {
            errors.add(key, "is required");
            return None;
        }
    };
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        errors.add(key, "must be an array");
        return None;
    };
    if list.is_empty() {
        errors.add(key, "must have at least 1 element");
        None
    } else if list.len() > max {
        errors.add(key, format!("must have at most {max} elements"));
        None
    } else {
        Some(list)
    }
}

/// Parses and validates a request body into a [`Receipt`].
pub fn parse(body: &[u8]) -> Result<Receipt, Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| Invalid::Malformed("body is not UTF-8".into()))?;
    let value: &RawValue =
        serde_json::from_str(text).map_err(|e| Invalid::Malformed(format!("body is not valid JSON: {e}")))?;
    let Some(obj) = as_object(value) else {
        return Err(Invalid::Malformed("body must be a JSON object".into()));
    };
    let mut errors = Errors(Vec::new());
    let pos_id = string_field(&obj, "pos_id", "pos_id", MAX_POS_ID, &mut errors);
    let kind = match obj.get("type") {
        None => {
            errors.add("type", "is required");
            None
        }
        Some(r) => match as_string(r).as_deref() {
            Some("sale") => Some(ReceiptType::Sale),
            Some("refund") => Some(ReceiptType::Refund),
            Some("correction") => Some(ReceiptType::Correction),
            _ => {
                errors.add("type", "must be one of sale, refund, correction");
                None
            }
        },
    };
    let items: Vec<Option<Item>> = array(&obj, "items", MAX_ITEMS, &mut errors)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| item(raw, i, &mut errors))
        .collect();
    let payments: Vec<Option<Payment>> = array(&obj, "payments", MAX_PAYMENTS, &mut errors)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| payment(raw, i, &mut errors))
        .collect();

    if !errors.0.is_empty() {
        return Err(Invalid::Fields(errors.0));
    }
    // No errors recorded means every field above is present.
    let items: Vec<Item> = items.into_iter().flatten().collect();
    let payments: Vec<Payment> = payments.into_iter().flatten().collect();
    let total = Kopecks(items.iter().map(|i| i.total.0).sum());
    let paid = Kopecks(payments.iter().map(|p| p.amount.0).sum());
    if (total.0 - paid.0).abs() > 1 {
        errors.add(
            "payments",
            format!("sum of payments {paid} must equal sum of item totals {total} (±0.01)"),
        );
        return Err(Invalid::Fields(errors.0));
    }
    match (pos_id, kind) {
        (Some(pos_id), Some(kind)) => Ok(Receipt {
            pos_id,
            kind,
            items,
            payments,
            total,
        }),
        _ => Err(Invalid::Malformed("incomplete receipt".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

    fn fields(body: &str) -> Vec<String> {
        match parse(body.as_bytes()) {
            Err(Invalid::Fields(f)) => f.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_body_with_qty_and_no_total_is_accepted() {
        let r = parse(SEED.as_bytes()).unwrap();
        assert_eq!(r.total, Kopecks(10000));
        assert_eq!(r.items[0].quantity, Quantity(1000));
        assert_eq!(r.items[0].total, Kopecks(10000));
    }

    #[test]
    fn the_original_body_with_quantity_total_and_vat_is_accepted() {
        let body = r#"{"pos_id":"POS-002","type":"refund","items":[
            {"name":"Молоко","price":89.90,"quantity":2,"total":179.80,"vat_rate":10},
            {"name":"Сыр","price":450.5,"quantity":0.352,"total":158.58,"vat_rate":"none"}],
            "payments":[{"type":"card","amount":200},{"type":"cash","amount":138.38}]}"#;
        let r = parse(body.as_bytes()).unwrap();
        assert_eq!(r.kind, ReceiptType::Refund);
        assert_eq!(r.total, Kopecks(33838));
        assert_eq!(r.items[1].vat_rate, Some(VatRate::None));
    }

    #[test]
    fn each_bad_field_is_named() {
        let body = r#"{"pos_id":"","type":"gift","items":[{"name":"A","price":-1,"qty":0},{"price":"x"}],"payments":[{"type":"crypto","amount":0}]}"#;
        let f = fields(body);
        for expected in [
            "pos_id",
            "type",
            "items[0].price",
            "items[0].qty",
            "items[1].name",
            "items[1].price",
            "items[1].quantity",
            "payments[0].type",
            "payments[0].amount",
        ] {
            assert!(f.contains(&expected.to_string()), "{expected} missing from {f:?}");
        }
    }

    #[test]
    fn a_total_that_disagrees_with_price_times_quantity_is_refused() {
        let body = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"quantity":3,"total":31}],"payments":[{"type":"cash","amount":31}]}"#;
        assert_eq!(fields(body), vec!["items[0].total"]);
        let within_a_kopeck = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"quantity":3,"total":30.01}],"payments":[{"type":"cash","amount":30.01}]}"#;
        assert!(parse(within_a_kopeck.as_bytes()).is_ok());
    }

    #[test]
    fn payments_must_cover_the_items() {
        let body = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"qty":1}],"payments":[{"type":"cash","amount":9.98}]}"#;
        assert_eq!(fields(body), vec!["payments"]);
    }

    #[test]
    fn too_many_items_and_wrong_types_are_refused() {
        let items: Vec<String> = (0..1001)
            .map(|_| r#"{"name":"A","price":1,"qty":1}"#.to_string())
            .collect();
        let body = format!(
            r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":1001}}]}}"#,
            items.join(",")
        );
        assert_eq!(fields(&body), vec!["items"]);
        assert_eq!(
            fields(r#"{"pos_id":5,"type":"sale","items":{},"payments":"x"}"#),
            vec!["pos_id", "items", "payments"]
        );
        assert_eq!(
            fields(r#"{"pos_id":"P","type":"sale","items":[],"payments":[]}"#),
            vec!["items", "payments"]
        );
    }

    #[test]
    fn vat_rates_outside_the_list_are_refused() {
        let body = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":1,"qty":1,"vat_rate":18}],"payments":[{"type":"cash","amount":1}]}"#;
        assert_eq!(fields(body), vec!["items[0].vat_rate"]);
    }

    #[test]
    fn malformed_bodies_are_not_field_errors() {
        for body in ["", "{", "[]", "null", "42", "\"x\"", "{\"a\":}"] {
            assert!(matches!(parse(body.as_bytes()), Err(Invalid::Malformed(_))), "{body}");
        }
        assert!(matches!(parse(&[0xff, 0xfe]), Err(Invalid::Malformed(_))));
    }

    #[test]
    fn control_characters_in_names_are_refused() {
        let body = "{\"pos_id\":\"P\\u0000\",\"type\":\"sale\",\"items\":[{\"name\":\"A\",\"price\":1,\"qty\":1}],\"payments\":[{\"type\":\"cash\",\"amount\":1}]}";
        assert_eq!(fields(body), vec!["pos_id"]);
    }

    proptest! {
        #[test]
        fn any_body_is_either_a_receipt_or_an_error_never_a_panic(s in "\\PC{0,200}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn valid_receipts_total_exactly(prices in proptest::collection::vec((1i64..10_000_000, 1i64..100_000), 1..20)) {
            let items: Vec<String> = prices.iter().map(|(p, q)| format!(
                r#"{{"name":"x","price":{},"quantity":{}}}"#,
                Kopecks(*p).to_decimal_string(), Quantity(*q).to_decimal_string())).collect();
            let expected: i64 = prices.iter().map(|(p, q)| Kopecks(*p).times_quantity(Quantity(*q)).unwrap().0).sum();
            let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"card","amount":{}}}]}}"#,
                items.join(","), Kopecks(expected).to_decimal_string());
            let r = parse(body.as_bytes()).unwrap();
            prop_assert_eq!(r.total, Kopecks(expected));
        }
    }
}
