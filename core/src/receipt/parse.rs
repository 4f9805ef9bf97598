//! Validation of a receipt request (docs/contract.md §1 and §6).
//!
//! The body is read field by field from its raw JSON text so that every problem is reported
//! against the field that has it (`items[0].price`), wrong types included, in words a POS
//! developer can act on, and so that money is parsed exactly from the text. The seed's body
//! (`qty`, no `total`) and the original adapter's body (`quantity`, `total`, numeric `vat_rate`)
//! are accepted; FFD 1.2 fields are optional and take their defaults.

use super::*;
use crate::money::DecimalError;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

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

/// A field that is present and not `null`.
fn present<'a>(obj: &Object<'a>, key: &str) -> Option<&'a RawValue> {
    obj.get(key).copied().filter(|r| !is_null(r))
}

/// Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder the text around
/// them on screen and on the slip ("Trojan Source"): a receipt line must read as it is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A text with a length range (in characters) and no control characters (`allowed` excepted).
fn text(raw: &RawValue, path: &str, max: usize, allowed: &[char], errors: &mut Errors) -> Option<String> {
    let Some(s) = as_string(raw) else {
        errors.add(path, "must be a string");
        return None;
    };
    let len = s.chars().count();
    if s.trim().is_empty() {
        errors.add(path, "must not be empty");
    } else if len > max {
        errors.add(path, format!("must be at most {max} characters (it has {len})"));
    } else if s.chars().any(|c| c.is_control() && !allowed.contains(&c)) {
        errors.add(path, "must not contain control characters");
    } else if s.chars().any(is_bidi_control) {
        errors.add(path, "must not contain bidirectional override characters");
    } else {
        return Some(s);
    }
    None
}

/// A required string field.
fn string_field(obj: &Object<'_>, key: &str, path: &str, max: usize, errors: &mut Errors) -> Option<String> {
    match present(obj, key) {
        None => {
            errors.add(path, "is required");
            None
        }
        Some(raw) => text(raw, path, max, &[], errors),
    }
}

/// A value of an FFD list, named by string; `None` (nothing recorded) when absent.
fn listed<T>(
    obj: &Object<'_>,
    key: &str,
    path: &str,
    parse: fn(&str) -> Option<T>,
    names: fn() -> String,
    errors: &mut Errors,
) -> Result<Option<T>, ()> {
    let Some(raw) = present(obj, key) else {
        return Ok(None);
    };
    match as_string(raw).as_deref().and_then(parse) {
        Some(v) => Ok(Some(v)),
        None => {
            errors.add(path, format!("must be one of {}", names()));
            Err(())
        }
    }
}

/// A positive decimal field parsed with `parse`; `None` after recording the problem.
fn positive<T: Copy, F>(
    raw: Option<&RawValue>,
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
            errors.add(path, e.to_string());
            None
        }
    }
}

/// An amount of money > 0 and within the fiscal drive's counter.
fn amount(raw: Option<&RawValue>, path: &str, errors: &mut Errors) -> Option<Kopecks> {
    let k = positive(raw, path, Kopecks::parse, |k| k.0 > 0, errors)?;
    within_limit(k, path, errors)
}

fn within_limit(k: Kopecks, path: &str, errors: &mut Errors) -> Option<Kopecks> {
    if k > MAX_AMOUNT {
        errors.add(
            path,
            format!("must be at most {MAX_AMOUNT} (the fiscal drive's counter limit), got {k}"),
        );
        return None;
    }
    Some(k)
}

/// A date `YYYY-MM-DD`.
fn date(raw: &RawValue, path: &str, errors: &mut Errors) -> Option<NaiveDate> {
    match as_string(raw).and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()) {
        Some(d) => Some(d),
        None => {
            errors.add(path, "must be a date written YYYY-MM-DD");
            None
        }
    }
}

/// The older numeric (or `"none"`, `"vat22"`…) `vat_rate` of the original adapter.
fn legacy_vat(raw: &RawValue) -> Option<Vat> {
    if let Some(s) = as_string(raw) {
        let s = s.trim().to_ascii_lowercase();
        if let Some(v) = Vat::parse(&s) {
            return Some(v);
        }
        return s.parse::<u8>().ok().and_then(Vat::from_percent);
    }
    crate::money::parse_scaled(raw.get(), 0)
        .ok()
        .and_then(|p| u8::try_from(p).ok())
        .and_then(Vat::from_percent)
}

/// Whether 20 % VAT may be used: only for a refund or correction of a settlement made before
/// 2026-01-01 (its `base_date`).
#[derive(Clone, Copy)]
struct TwentyAllowed(bool);

const TWENTY_REPLACED: &str = "22 % replaced 20 % on 2026-01-01: use vat22 (or vat22_122). vat20 and vat20_120 \
are accepted only on refunds and corrections of settlements made before 2026-01-01, with that date as base_date";

fn item(raw: &RawValue, i: usize, defaults: &Defaults, twenty: TwentyAllowed, errors: &mut Errors) -> Option<Item> {
    let path = |f: &str| format!("items[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("items[{i}]"), "must be an object");
        return None;
    };
    let name = string_field(&obj, "name", &path("name"), MAX_NAME, errors);
    let price = amount(present(&obj, "price"), &path("price"), errors);
    let (qty_key, qty_raw) = match (present(&obj, "quantity"), present(&obj, "qty")) {
        (Some(q), _) => ("quantity", Some(q)),
        (None, Some(q)) => ("qty", Some(q)),
        (None, None) => ("quantity", None),
    };
    let quantity = positive(qty_raw, &path(qty_key), Quantity::parse, |q| q.0 > 0, errors);
    let measure = listed(
        &obj,
        "measure",
        &path("measure"),
        Measure::parse,
        Measure::names,
        errors,
    );
    let method = listed(
        &obj,
        "payment_method",
        &path("payment_method"),
        PaymentMethod::parse,
        PaymentMethod::names,
        errors,
    );
    let object = listed(
        &obj,
        "payment_object",
        &path("payment_object"),
        PaymentObject::parse,
        PaymentObject::names,
        errors,
    );
    let marking_code = present(&obj, "marking_code").and_then(|raw| {
        // As scanned: GS (U+001D) separates the code's groups and stays.
        text(raw, &path("marking_code"), 223, &['\u{1d}'], errors)
    });
    let payment_object = match (object, &marking_code) {
        (Ok(Some(o)), Some(_)) if !o.needs_marking_code() => {
            errors.add(
                path("payment_object"),
                format!(
                    "is {} but the item has a marking code: goods sold with their code are commodity_marked or excise_marked",
                    o.as_str()
                ),
            );
            None
        }
        (Ok(Some(o)), None) if o.needs_marking_code() => {
            errors.add(path("marking_code"), format!("is required for {} goods", o.as_str()));
            None
        }
        (Ok(Some(o)), _) => Some(o),
        // A marking code says what the goods are.
        (Ok(None), Some(_)) => Some(PaymentObject::CommodityMarked),
        (Ok(None), None) => Some(PaymentObject::Commodity),
        (Err(()), _) => None,
    };
    let vat = match (present(&obj, "vat"), present(&obj, "vat_rate")) {
        (Some(raw), _) => match as_string(raw).as_deref().and_then(Vat::parse) {
            Some(v) => Some(v),
            None => {
                errors.add(path("vat"), format!("must be one of {}", Vat::names()));
                None
            }
        },
        (None, Some(raw)) => match legacy_vat(raw) {
            Some(v) => Some(v),
            None => {
                errors.add(
                    path("vat_rate"),
                    "must be one of 0, 5, 7, 10, 22 or \"none\" (or use vat)",
                );
                None
            }
        },
        (None, None) => Some(defaults.vat),
    };
    let vat = match vat {
        Some(v) if v.is_twenty() && !twenty.0 => {
            let key = if present(&obj, "vat").is_some() {
                "vat"
            } else {
                "vat_rate"
            };
            errors.add(path(key), TWENTY_REPLACED);
            None
        }
        other => other,
    };
    let computed = match (price, quantity) {
        (Some(p), Some(q)) => match p
            .times_quantity(q)
            .and_then(|t| within_limit(t, &path("total"), errors))
        {
            Some(t) => Some(t),
            None => {
                if p.times_quantity(q).is_none() {
                    errors.add(path("total"), "is too large");
                }
                None
            }
        },
        _ => None,
    };
    let total = match present(&obj, "total") {
        None => computed,
        Some(raw) => match Kopecks::parse(raw.get()) {
            Err(e) => {
                errors.add(path("total"), e.to_string());
                None
            }
            Ok(given) if given.0 < 0 => {
                errors.add(path("total"), "must not be negative");
                None
            }
            Ok(given) => match computed {
                // A total up to a kopeck over price × quantity is rounding (the original rule);
                // one under it is a discount.
                Some(c) if given.0 <= c.0 + 1 => Some(given),
                Some(c) => {
                    errors.add(
                        path("total"),
                        format!("must not exceed price × quantity = {c} (less is a discount), got {given}"),
                    );
                    None
                }
                None => None,
            },
        },
    };
    let (name, price, quantity, total, payment_object, vat) = (name?, price?, quantity?, total?, payment_object?, vat?);
    let full = computed.unwrap_or(total);
    Some(Item {
        name,
        price,
        quantity,
        total,
        discount: Kopecks((full.0 - total.0).max(0)),
        measure: measure.ok()?.unwrap_or(Measure::Piece),
        payment_method: method.ok()?.unwrap_or(PaymentMethod::FullPayment),
        payment_object,
        marking_code,
        vat,
        vat_amount: vat.amount(total),
    })
}

fn payment(raw: &RawValue, i: usize, errors: &mut Errors) -> Option<Payment> {
    let path = |f: &str| format!("payments[{i}].{f}");
    let Some(obj) = as_object(raw) else {
        errors.add(format!("payments[{i}]"), "must be an object");
        return None;
    };
    let kind = match listed(
        &obj,
        "type",
        &path("type"),
        PaymentType::parse,
        PaymentType::names,
        errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add(path("type"), "is required");
            None
        }
        Err(()) => None,
    };
    let amount = amount(present(&obj, "amount"), &path("amount"), errors);
    Some(Payment {
        kind: kind?,
        amount: amount?,
    })
}

fn array<'a>(obj: &Object<'a>, key: &str, max: usize, errors: &mut Errors) -> Option<Vec<&'a RawValue>> {
    let Some(raw) = present(obj, key) else {
        errors.add(key, "is required");
        return None;
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

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn cashier(obj: &Object<'_>, errors: &mut Errors) -> Result<Option<Cashier>, ()> {
    let Some(raw) = present(obj, "cashier") else {
        return Ok(None);
    };
    let Some(c) = as_object(raw) else {
        errors.add("cashier", "must be an object {\"name\": …, \"inn\": …}");
        return Err(());
    };
    let name = string_field(&c, "name", "cashier.name", 64, errors);
    let inn = match present(&c, "inn") {
        None => None,
        Some(raw) => match as_string(raw) {
            Some(s) if digits(&s, 12) => Some(s),
            _ => {
                errors.add("cashier.inn", "must be the cashier's INN: 12 digits");
                return Err(());
            }
        },
    };
    match name {
        Some(name) => Ok(Some(Cashier { name, inn })),
        None => Err(()),
    }
}

fn customer(obj: &Object<'_>, errors: &mut Errors) -> Result<Option<Customer>, ()> {
    let Some(raw) = present(obj, "customer") else {
        return Ok(None);
    };
    let Some(c) = as_object(raw) else {
        errors.add("customer", "must be an object {\"email\": …} or {\"phone\": …}");
        return Err(());
    };
    match (present(&c, "email"), present(&c, "phone")) {
        (Some(raw), None) => match text(raw, "customer.email", 64, &[], errors) {
            Some(e) if is_email(&e) => Ok(Some(Customer::Email(e))),
            Some(_) => {
                errors.add("customer.email", "must be an e-mail address (name@domain)");
                Err(())
            }
            None => Err(()),
        },
        (None, Some(raw)) => match as_string(raw) {
            Some(p) if is_phone(&p) => Ok(Some(Customer::Phone(p))),
            _ => {
                errors.add(
                    "customer.phone",
                    "must be a phone number in international form: + and 7–15 digits, e.g. +79991234567",
                );
                Err(())
            }
        },
        (Some(_), Some(_)) => {
            errors.add("customer", "must have either email or phone, not both");
            Err(())
        }
        (None, None) => {
            errors.add("customer", "must have email or phone");
            Err(())
        }
    }
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

fn is_phone(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn correction(obj: &Object<'_>, kind: Option<ReceiptType>, errors: &mut Errors) -> Result<Option<Correction>, ()> {
    let raw = present(obj, "correction");
    let is_correction = kind.is_some_and(ReceiptType::is_correction);
    let Some(raw) = raw else {
        if is_correction {
            errors.add(
                "correction",
                "is required for a correction: {\"kind\": \"self\"|\"ordered\", \"base_date\": \"YYYY-MM-DD\", \"base_number\": …}",
            );
            return Err(());
        }
        return Ok(None);
    };
    if kind.is_some() && !is_correction {
        errors.add("correction", "is only for the correction types (sale_correction, …)");
        return Err(());
    }
    let Some(c) = as_object(raw) else {
        errors.add("correction", "must be an object");
        return Err(());
    };
    let kind = match listed(
        &c,
        "kind",
        "correction.kind",
        CorrectionKind::parse,
        CorrectionKind::names,
        errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add("correction.kind", "is required: self or ordered");
            None
        }
        Err(()) => None,
    };
    let base_date = match present(&c, "base_date") {
        Some(raw) => date(raw, "correction.base_date", errors),
        None => {
            errors.add(
                "correction.base_date",
                "is required: the date of the settlement being corrected",
            );
            None
        }
    };
    let base_number = match present(&c, "base_number") {
        Some(raw) => text(raw, "correction.base_number", 32, &[], errors)
            .map(Some)
            .ok_or(())?,
        None => None,
    };
    if kind == Some(CorrectionKind::Ordered) && base_number.is_none() {
        errors.add(
            "correction.base_number",
            "is required for a correction ordered by the tax authority (the order's number)",
        );
        return Err(());
    }
    match (kind, base_date) {
        (Some(kind), Some(base_date)) => Ok(Some(Correction {
            kind,
            base_date,
            base_number,
        })),
        _ => Err(()),
    }
}

/// Parses and validates a request body into a [`Receipt`], filling in `defaults`.
pub fn parse(body: &[u8], defaults: &Defaults) -> Result<Receipt, Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| Invalid::Malformed("body is not UTF-8".into()))?;
    let value: &RawValue =
        serde_json::from_str(text).map_err(|e| Invalid::Malformed(format!("body is not valid JSON: {e}")))?;
    let Some(obj) = as_object(value) else {
        return Err(Invalid::Malformed("body must be a JSON object".into()));
    };
    let mut errors = Errors(Vec::new());
    let pos_id = string_field(&obj, "pos_id", "pos_id", MAX_POS_ID, &mut errors);
    let kind = match listed(
        &obj,
        "type",
        "type",
        ReceiptType::parse,
        ReceiptType::names,
        &mut errors,
    ) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            errors.add("type", "is required");
            None
        }
        Err(()) => None,
    };
    let taxation = match present(&obj, "taxation") {
        Some(raw) if as_string(raw).as_deref() == Some("envd") => {
            errors.add(
                "taxation",
                "envd (ЕНВД) was abolished on 2021-01-01; use osn, usn_income, usn_income_outcome, esn or patent",
            );
            None
        }
        _ => listed(
            &obj,
            "taxation",
            "taxation",
            Taxation::parse,
            Taxation::names,
            &mut errors,
        )
        .ok()
        .map(|t| t.unwrap_or(defaults.taxation)),
    };
    let cashier = cashier(&obj, &mut errors).map(|c| c.or_else(|| defaults.cashier.clone()));
    let customer = customer(&obj, &mut errors);
    let correction = correction(&obj, kind, &mut errors);
    let base_date = match present(&obj, "base_date") {
        None => Ok(None),
        Some(_) if !kind.is_some_and(ReceiptType::is_refund) => {
            errors.add("base_date", "is only for refunds (the date of the sale being refunded); a correction gives it in correction.base_date");
            Err(())
        }
        Some(raw) => date(raw, "base_date", &mut errors).map(Some).ok_or(()),
    };
    let settled = match (&correction, &base_date) {
        (Ok(Some(c)), _) => Some(c.base_date),
        (_, Ok(Some(d))) => Some(*d),
        _ => None,
    };
    let twenty = TwentyAllowed(settled.is_some_and(|d| d < vat22_since()));
    let items: Vec<Option<Item>> = array(&obj, "items", MAX_ITEMS, &mut errors)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| item(raw, i, defaults, twenty, &mut errors))
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
    if within_limit(total, "items", &mut errors).is_none() {
        return Err(Invalid::Fields(errors.0));
    }
    let paid: i64 = payments.iter().map(|p| p.amount.0).sum();
    let non_cash: i64 = payments
        .iter()
        .filter(|p| p.kind != PaymentType::Cash)
        .map(|p| p.amount.0)
        .sum();
    if non_cash > total.0 {
        errors.add(
            "payments",
            format!(
                "non-cash payments {} exceed the receipt total {total}: only cash may be more than what is due (the rest is change)",
                Kopecks(non_cash)
            ),
        );
    } else if paid < total.0 {
        errors.add(
            "payments",
            format!("payments {} are less than the receipt total {total}", Kopecks(paid)),
        );
    }
    if !errors.0.is_empty() {
        return Err(Invalid::Fields(errors.0));
    }
    match (pos_id, kind, taxation, cashier, customer, correction, base_date) {
        (Some(pos_id), Some(kind), Some(taxation), Ok(cashier), Ok(customer), Ok(correction), Ok(base_date)) => {
            Ok(Receipt {
                pos_id,
                kind,
                taxation,
                cashier,
                customer,
                correction,
                base_date,
                items,
                payments,
                total,
                change: Kopecks(paid - total.0),
            })
        }
        _ => Err(Invalid::Malformed("incomplete receipt".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

    fn ok(body: &str) -> Receipt {
        parse(body.as_bytes(), &Defaults::default()).unwrap_or_else(|e| panic!("{e:?} for {body}"))
    }

    fn fields(body: &str) -> Vec<String> {
        match parse(body.as_bytes(), &Defaults::default()) {
            Err(Invalid::Fields(f)) => f.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn message(body: &str) -> String {
        match parse(body.as_bytes(), &Defaults::default()) {
            Err(Invalid::Fields(f)) => f
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_body_with_qty_and_no_total_is_accepted_with_every_default() {
        let r = ok(SEED);
        assert_eq!(r.total, Kopecks(10000));
        assert_eq!(r.items[0].quantity, Quantity(Quantity::ONE));
        assert_eq!(r.items[0].total, Kopecks(10000));
        let i = &r.items[0];
        assert_eq!(
            (i.measure, i.payment_method, i.payment_object, i.vat, i.vat_amount),
            (
                Measure::Piece,
                PaymentMethod::FullPayment,
                PaymentObject::Commodity,
                Vat::None,
                Kopecks(0)
            )
        );
        assert_eq!((r.taxation, r.change), (Taxation::Osn, Kopecks(0)));
    }

    #[test]
    fn the_original_body_with_quantity_total_and_vat_is_accepted() {
        let body = r#"{"pos_id":"POS-002","type":"refund","items":[
            {"name":"Молоко","price":89.90,"quantity":2,"total":179.80,"vat_rate":10},
            {"name":"Сыр","price":450.5,"quantity":0.352,"total":158.58,"vat_rate":"none"}],
            "payments":[{"type":"card","amount":200},{"type":"cash","amount":138.38}]}"#;
        let r = ok(body);
        assert_eq!(r.kind, ReceiptType::SaleRefund);
        assert_eq!(r.total, Kopecks(33838));
        assert_eq!(r.items[0].vat, Vat::Vat10);
        assert_eq!(r.items[0].vat_amount, Kopecks(1635)); // 179.80 × 10/110 = 16.345… → 16.35
        assert_eq!(r.items[1].vat, Vat::None);
    }

    #[test]
    fn twenty_percent_is_refused_on_a_sale_and_taken_on_a_refund_of_a_2025_sale() {
        let sale = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"qty":1,"vat_rate":20}],"payments":[{"type":"cash","amount":10}]}"#;
        assert!(
            message(sale).contains("22 % replaced 20 % on 2026-01-01"),
            "{}",
            message(sale)
        );
        let named = sale.replace(r#""vat_rate":20"#, r#""vat":"vat20_120""#);
        assert_eq!(fields(&named), vec!["items[0].vat"]);
        let refund = r#"{"pos_id":"P","type":"sale_refund","base_date":"2025-12-30","items":[{"name":"A","price":12,"qty":1,"vat":"vat20"}],"payments":[{"type":"cash","amount":12}]}"#;
        assert_eq!(ok(refund).items[0].vat_amount, Kopecks(200));
        let late = refund.replace("2025-12-30", "2026-01-01");
        assert_eq!(fields(&late), vec!["items[0].vat"]);
        let correction = r#"{"pos_id":"P","type":"sale_correction","correction":{"kind":"self","base_date":"2025-06-01"},"items":[{"name":"A","price":12,"qty":1,"vat":"vat20"}],"payments":[{"type":"card","amount":12}]}"#;
        assert_eq!(ok(correction).correction.unwrap().kind, CorrectionKind::SelfMade);
    }

    #[test]
    fn corrections_need_their_basis_and_an_ordered_one_its_order_number() {
        let base = r#"{"pos_id":"P","type":"buy_correction",CORR"items":[{"name":"A","price":1,"qty":1}],"payments":[{"type":"cash","amount":1}]}"#;
        assert_eq!(fields(&base.replace("CORR", "")), vec!["correction"]);
        assert_eq!(
            fields(&base.replace("CORR", r#""correction":{"kind":"ordered","base_date":"2026-02-01"},"#)),
            vec!["correction.base_number"]
        );
        assert_eq!(
            fields(&base.replace("CORR", r#""correction":{"kind":"self","base_date":"01.02.2026"},"#)),
            vec!["correction.base_date"]
        );
        let r = ok(&base.replace(
            "CORR",
            r#""correction":{"kind":"ordered","base_date":"2026-02-01","base_number":"12-34/5"},"#,
        ));
        assert_eq!(r.kind.qr_operation(), 3);
        let sale_with_correction = SEED.replace(
            r#""type":"sale","#,
            r#""type":"sale","correction":{"kind":"self","base_date":"2026-02-01"},"#,
        );
        assert_eq!(fields(&sale_with_correction), vec!["correction"]);
    }

    #[test]
    fn cash_may_exceed_the_total_and_the_rest_is_change_while_card_may_not() {
        let cash = SEED.replace(r#""amount":100"#, r#""amount":150"#);
        assert_eq!(ok(&cash).change, Kopecks(5000));
        let mixed = SEED.replace(
            r#"{"type":"cash","amount":100}"#,
            r#"{"type":"card","amount":60},{"type":"cash","amount":50}"#,
        );
        let r = ok(&mixed);
        assert_eq!((r.change, r.paid_by(PaymentType::Cash)), (Kopecks(1000), Kopecks(4000)));
        let card = SEED.replace(r#"{"type":"cash","amount":100}"#, r#"{"type":"card","amount":100.01}"#);
        assert!(
            message(&card).contains("non-cash payments 100.01 exceed"),
            "{}",
            message(&card)
        );
        let short = SEED.replace(r#""amount":100"#, r#""amount":99.99"#);
        assert!(message(&short).contains("less than the receipt total"));
        let electronic = SEED.replace(r#""type":"cash""#, r#""type":"electronic""#);
        assert_eq!(ok(&electronic).payments[0].kind, PaymentType::Card);
    }

    #[test]
    fn a_lower_total_is_a_discount_and_a_higher_one_is_refused() {
        let body = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"quantity":3,"total":TOTAL}],"payments":[{"type":"cash","amount":TOTAL}]}"#;
        assert_eq!(ok(&body.replace("TOTAL", "27")).items[0].discount, Kopecks(300));
        assert_eq!(
            ok(&body.replace("TOTAL", "30.01")).items[0].discount,
            Kopecks(0),
            "a kopeck of rounding"
        );
        assert!(message(&body.replace("TOTAL", "30.02")).contains("must not exceed price × quantity = 30.00"));
    }

    #[test]
    fn amounts_stop_at_the_fiscal_drives_counter() {
        let body = |p: &str| {
            format!(
                r#"{{"pos_id":"P","type":"sale","items":[{{"name":"A","price":{p},"qty":1}}],"payments":[{{"type":"cash","amount":{p}}}]}}"#
            )
        };
        assert_eq!(ok(&body("42949672.95")).total, MAX_AMOUNT);
        assert_eq!(
            fields(&body("42949672.96")),
            vec!["items[0].price", "payments[0].amount"]
        );
        let two = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":30000000,"qty":1},{"name":"B","price":30000000,"qty":1}],"payments":[{"type":"cash","amount":30000000},{"type":"cash","amount":30000000}]}"#;
        assert_eq!(fields(two), vec!["items"]);
    }

    #[test]
    fn ffd_fields_are_read_and_a_marking_code_makes_marked_goods() {
        let body = r#"{"pos_id":"P","type":"buy","taxation":"usn_income","cashier":{"name":"Иванова","inn":"123456789012"},
            "customer":{"phone":"+79991234567"},
            "items":[{"name":"Сахар","price":80,"quantity":0.5,"measure":"kilogram","payment_method":"advance","payment_object":"service","vat":"vat10_110"},
                     {"name":"Шины","price":5000,"qty":1,"marking_code":"010460043993125621JgXJ5.T\u001d8005112000"}],
            "payments":[{"type":"prepaid","amount":40},{"type":"credit","amount":5000}]}"#;
        let r = ok(body);
        assert_eq!((r.kind, r.taxation), (ReceiptType::Buy, Taxation::UsnIncome));
        assert_eq!(r.cashier.as_ref().map(|c| c.inn.as_deref()), Some(Some("123456789012")));
        assert_eq!(r.customer, Some(Customer::Phone("+79991234567".into())));
        assert_eq!(
            (r.items[0].measure, r.items[0].payment_method),
            (Measure::Kilogram, PaymentMethod::Advance)
        );
        assert_eq!(r.items[0].vat_amount, Kopecks(364)); // 40.00 × 10/110 = 3.636…
        assert_eq!(r.items[1].payment_object, PaymentObject::CommodityMarked);
        assert!(r.items[1].marking_code.as_deref().unwrap().contains('\u{1d}'));
        let plain_with_code = body.replace(
            r#""qty":1,"marking_code""#,
            r#""qty":1,"payment_object":"commodity","marking_code""#,
        );
        assert_eq!(fields(&plain_with_code), vec!["items[1].payment_object"]);
        let marked_without = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":1,"qty":1,"payment_object":"excise_marked"}],"payments":[{"type":"cash","amount":1}]}"#;
        assert_eq!(fields(marked_without), vec!["items[0].marking_code"]);
    }

    #[test]
    fn each_bad_field_is_named_with_what_is_allowed() {
        let body = r#"{"pos_id":"","type":"gift","taxation":"envd","cashier":{"name":"A","inn":"123"},"customer":{"email":"nope"},
            "items":[{"name":"A","price":-1,"qty":0,"measure":"bucket","payment_method":"gift","payment_object":"thing","vat":"vat18"},{"price":"x"}],
            "payments":[{"type":"crypto","amount":0}]}"#;
        let f = fields(body);
        for expected in [
            "pos_id",
            "type",
            "taxation",
            "cashier.inn",
            "customer.email",
            "items[0].price",
            "items[0].qty",
            "items[0].measure",
            "items[0].payment_method",
            "items[0].payment_object",
            "items[0].vat",
            "items[1].name",
            "items[1].price",
            "items[1].quantity",
            "payments[0].type",
            "payments[0].amount",
        ] {
            assert!(f.contains(&expected.to_string()), "{expected} missing from {f:?}");
        }
        assert!(message(body).contains("must be one of piece, gram, kilogram"));
        assert!(message(body).contains("ЕНВД"));
        let long = SEED.replace("\"Test\"", &format!("\"{}\"", "я".repeat(129)));
        assert!(message(&long).contains("at most 128 characters (it has 129)"));
        let fine = SEED
            .replace(r#""qty":1"#, r#""qty":0.000001"#)
            .replace(r#""amount":100"#, r#""amount":0.01"#);
        assert_eq!(ok(&fine).total, Kopecks(0), "100 × 0.000001 = 0.0001 → 0.00");
        assert_eq!(
            fields(&SEED.replace(r#""qty":1"#, r#""qty":0.0000001"#)),
            vec!["items[0].qty"]
        );
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
    fn malformed_bodies_are_not_field_errors() {
        for body in ["", "{", "[]", "null", "42", "\"x\"", "{\"a\":}"] {
            assert!(
                matches!(parse(body.as_bytes(), &Defaults::default()), Err(Invalid::Malformed(_))),
                "{body}"
            );
        }
        assert!(matches!(
            parse(&[0xff, 0xfe], &Defaults::default()),
            Err(Invalid::Malformed(_))
        ));
    }

    #[test]
    fn control_characters_in_names_are_refused() {
        let body = "{\"pos_id\":\"P\\u0000\",\"type\":\"sale\",\"items\":[{\"name\":\"A\",\"price\":1,\"qty\":1}],\"payments\":[{\"type\":\"cash\",\"amount\":1}]}";
        assert_eq!(fields(body), vec!["pos_id"]);
    }

    #[test]
    fn settings_fill_in_taxation_cashier_and_vat() {
        let defaults = Defaults {
            taxation: Taxation::Patent,
            cashier: Some(Cashier {
                name: "Старший кассир".into(),
                inn: None,
            }),
            vat: Vat::Vat22,
        };
        let r = parse(SEED.as_bytes(), &defaults).unwrap();
        assert_eq!(
            (r.taxation, r.items[0].vat, r.items[0].vat_amount),
            (Taxation::Patent, Vat::Vat22, Kopecks(1803))
        );
        assert_eq!(r.cashier.unwrap().name, "Старший кассир");
    }

    #[test]
    fn a_stored_receipt_reads_back_as_it_was() {
        let r = ok(
            r#"{"pos_id":"P","type":"sale_refund_correction","correction":{"kind":"self","base_date":"2026-03-01"},
            "customer":{"email":"a@b.ru"},"items":[{"name":"A","price":1.5,"quantity":2.125,"vat":"vat5"}],"payments":[{"type":"cash","amount":5}]}"#,
        );
        let back: Receipt = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A receipt stored by an earlier version (no FFD fields) reads with the defaults.
        let old: Receipt = serde_json::from_str(r#"{"pos_id":"P","type":"refund","items":[{"name":"A","price":1.00,"quantity":1,"total":1.00,"vat_rate":10}],"payments":[{"type":"cash","amount":1.00}],"total":1.00}"#).unwrap();
        assert_eq!(
            (old.kind, old.items[0].vat, old.taxation),
            (ReceiptType::SaleRefund, Vat::None, Taxation::Osn)
        );
    }

    proptest! {
        #[test]
        fn any_body_is_either_a_receipt_or_an_error_never_a_panic(s in "\\PC{0,200}") {
            let _ = parse(s.as_bytes(), &Defaults::default());
        }

        #[test]
        fn valid_receipts_total_exactly(prices in proptest::collection::vec((1i64..10_000_000, 1i64..100_000_000), 1..20)) {
            let items: Vec<String> = prices.iter().map(|(p, q)| format!(
                r#"{{"name":"x","price":{},"quantity":{}}}"#,
                Kopecks(*p).to_decimal_string(), Quantity(*q).to_decimal_string())).collect();
            let expected: i64 = prices.iter().map(|(p, q)| Kopecks(*p).times_quantity(Quantity(*q)).unwrap().0).sum();
            prop_assume!(expected <= MAX_AMOUNT.0);
            let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"card","amount":{}}}]}}"#,
                items.join(","), Kopecks(expected.max(1)).to_decimal_string());
            match parse(body.as_bytes(), &Defaults::default()) {
                Ok(r) => prop_assert_eq!(r.total, Kopecks(expected)),
                // A receipt of 0.00 (tiny quantities) paid 0.01 by card: card over the total.
                Err(_) => prop_assert_eq!(expected, 0),
            }
        }

        #[test]
        fn change_is_never_negative_and_cash_covers_it(total in 1i64..100_000_000, card in 0i64..100_000_000, cash in 0i64..100_000_000) {
            let payments = [("card", card), ("cash", cash)]
                .iter()
                .filter(|(_, a)| *a > 0)
                .map(|(t, a)| format!(r#"{{"type":"{t}","amount":{}}}"#, Kopecks(*a).to_decimal_string()))
                .collect::<Vec<_>>()
                .join(",");
            prop_assume!(!payments.is_empty());
            let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{{"name":"x","price":{},"qty":1}}],"payments":[{payments}]}}"#,
                Kopecks(total).to_decimal_string());
            match parse(body.as_bytes(), &Defaults::default()) {
                Ok(r) => {
                    prop_assert!(r.change.0 >= 0);
                    prop_assert!(r.change.0 <= cash, "change comes from cash only");
                    prop_assert_eq!(r.paid_by(PaymentType::Cash).0 + r.paid_by(PaymentType::Card).0, total);
                }
                Err(_) => prop_assert!(card > total || card + cash < total),
            }
        }

        #[test]
        fn vat_sums_per_rate_add_up_to_the_items_vat(rates in proptest::collection::vec((0usize..12, 1i64..1_000_000), 1..15)) {
            let items: Vec<String> = rates.iter().map(|(i, p)| {
                let vat = if Vat::ALL[*i].is_twenty() { Vat::Vat22 } else { Vat::ALL[*i] };
                format!(r#"{{"name":"x","price":{},"qty":1,"vat":"{}"}}"#, Kopecks(*p).to_decimal_string(), vat.as_str())
            }).collect();
            let total: i64 = rates.iter().map(|(_, p)| p).sum();
            let body = format!(r#"{{"pos_id":"P","type":"sale","items":[{}],"payments":[{{"type":"cash","amount":{}}}]}}"#,
                items.join(","), Kopecks(total).to_decimal_string());
            let r = parse(body.as_bytes(), &Defaults::default()).unwrap();
            let by_rate: i64 = r.vat_sums().iter().map(|s| s.amount.0).sum();
            let by_item: i64 = r.items.iter().map(|i| i.vat_amount.0).sum();
            prop_assert_eq!(by_rate, by_item);
            for s in r.vat_sums() {
                let expected: i64 = r.items.iter().filter(|i| i.vat == s.vat).map(|i| s.vat.amount(i.total).0).sum();
                prop_assert_eq!(s.amount.0, expected);
            }
        }
    }
}
