//! Checks of an FFD 1.2 document (`"ffd_version": 4`, tag 1209), written from the format's
//! value tables independently of the adapter's own code, so that what the adapter sends is held
//! against a second reading of the rules. Sources: the FNS formats (order ЕД-7-20/662@ with the
//! 2026 VAT amendment ЕД-7-20/1050@) as tabulated in vendor protocols — Orange Data FFD 1.2
//! protocol v2.31.3, ATOL Online API v5 — collected in the adapter's docs/research/ffd-1.2.md.
//! A document without `ffd_version` is the original adapter's format and is not checked.

use serde_json::Value;

const TAXATION: [u64; 5] = [1, 2, 4, 16, 32];
const MEASURES: [u64; 24] = [
    0, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 70, 71, 72, 73, 80, 81, 82, 83, 255,
];
const PAYMENT_TAGS: [u64; 5] = [1031, 1081, 1215, 1216, 1217];

/// Kopecks from a JSON amount (the adapter sends two decimals; amounts stay far below 2^53).
fn kopecks(v: &Value) -> Option<i64> {
    v.as_f64().map(|x| (x * 100.0).round() as i64)
}

/// Tag 1199 value → the percentage inside the price (none for 0 % and "without VAT").
fn vat_percent(code: u64) -> Option<Option<i64>> {
    Some(match code {
        1 | 3 => Some(20),
        2 | 4 => Some(10),
        5 | 6 => None,
        7 | 9 => Some(5),
        8 | 10 => Some(7),
        11 | 12 => Some(22),
        _ => return None,
    })
}

/// The problems of `doc`, empty when it is a valid FFD 1.2 receipt (or not an FFD 1.2 document).
pub fn problems(doc: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if doc.get("ffd_version").and_then(Value::as_u64) != Some(4) {
        return p;
    }
    let num = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64);
    match num(doc, "operation") {
        Some(1..=4) => {}
        other => p.push(format!("1054 operation must be 1–4, got {other:?}")),
    }
    match num(doc, "taxation") {
        Some(t) if TAXATION.contains(&t) => {}
        other => p.push(format!("1055 taxation must be one of {TAXATION:?}, got {other:?}")),
    }
    let items = doc.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if items.is_empty() {
        p.push("1059 items: at least one".into());
    }
    let mut item_total = 0i64;
    let mut vat_by_rate: Vec<(u64, i64)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let name = it.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 128 {
            p.push(format!("items[{i}] 1030 name must be 1–128 characters"));
        }
        if !num(it, "measure").is_some_and(|m| MEASURES.contains(&m)) {
            p.push(format!("items[{i}] 2108 measure not in the FFD 1.2 list"));
        }
        if !num(it, "payment_method").is_some_and(|m| (1..=7).contains(&m)) {
            p.push(format!("items[{i}] 1214 payment_method must be 1–7"));
        }
        let object = num(it, "payment_object");
        if !object.is_some_and(|o| (1..=27).contains(&o) || (30..=33).contains(&o)) {
            p.push(format!("items[{i}] 1212 payment_object must be 1–27 or 30–33"));
        }
        if matches!(object, Some(31 | 33)) && it.get("marking_code").and_then(Value::as_str).is_none() {
            p.push(format!(
                "items[{i}] 2000 marking_code is required for marked goods (1212 = 31, 33)"
            ));
        }
        let (price, total) = (it.get("price").and_then(kopecks), it.get("total").and_then(kopecks));
        let quantity = it.get("quantity").and_then(Value::as_f64);
        match (price, quantity, total) {
            (Some(pr), Some(q), Some(t)) => {
                let full = (pr as f64 * q).round() as i64;
                if t > full + 1 || t < 0 {
                    p.push(format!(
                        "items[{i}] 1043 total {t} is more than price × quantity {full}"
                    ));
                }
                item_total += t;
                let code = num(it, "vat").unwrap_or(0);
                match vat_percent(code) {
                    None => p.push(format!("items[{i}] 1199 vat must be 1–12, got {code}")),
                    Some(rate) => {
                        let expected = rate.map_or(0, |r| (2 * t * r + 100 + r) / (2 * (100 + r)));
                        let got = it.get("vat_amount").and_then(kopecks).unwrap_or(-1);
                        if got != expected {
                            p.push(format!("items[{i}] 1200 vat_amount {got} should be {expected}"));
                        }
                        match vat_by_rate.iter_mut().find(|(c, _)| *c == code) {
                            Some((_, a)) => *a += got,
                            None => vat_by_rate.push((code, got)),
                        }
                    }
                }
            }
            _ => p.push(format!("items[{i}] price, quantity and total are required numbers")),
        }
    }
    let total = doc.get("total").and_then(kopecks).unwrap_or(-1);
    if total != item_total {
        p.push(format!("1020 total {total} is not the sum of the items {item_total}"));
    }
    let change = doc.get("change").and_then(kopecks).unwrap_or(0);
    let (mut paid, mut non_cash) = (0i64, 0i64);
    for (i, pay) in doc
        .get("payments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let tag = num(pay, "tag").unwrap_or(0);
        if !PAYMENT_TAGS.contains(&tag) {
            p.push(format!("payments[{i}] tag must be one of {PAYMENT_TAGS:?}"));
        }
        let amount = pay.get("amount").and_then(kopecks).unwrap_or(0);
        paid += amount;
        if tag != 1031 {
            non_cash += amount;
        }
    }
    if change < 0 || paid - change != total {
        p.push(format!(
            "payments {paid} less change {change} must equal the total {total}"
        ));
    }
    if non_cash > total {
        p.push(format!("non-cash payments {non_cash} exceed the total {total}"));
    }
    for v in doc.get("vat").and_then(Value::as_array).cloned().unwrap_or_default() {
        let code = num(&v, "vat").unwrap_or(0);
        let amount = v.get("amount").and_then(kopecks).unwrap_or(-1);
        let items_sum = vat_by_rate.iter().find(|(c, _)| *c == code).map_or(0, |(_, a)| *a);
        if amount != items_sum {
            p.push(format!(
                "VAT total of rate {code} is {amount}, the items have {items_sum}"
            ));
        }
    }
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind.ends_with("correction") {
        match doc.get("correction") {
            Some(c) => {
                let t = num(c, "type");
                if !matches!(t, Some(0 | 1)) {
                    p.push("1173 correction type must be 0 or 1".into());
                }
                if c.get("base_date").and_then(Value::as_str).is_none_or(|d| d.len() != 10) {
                    p.push("1178 correction base_date (YYYY-MM-DD) is required".into());
                }
                if t == Some(1) && c.get("base_number").and_then(Value::as_str).is_none() {
                    p.push("1179 the order's number is required for an ordered correction".into());
                }
            }
            None => p.push("1173/1174 a correction receipt needs its correction basis".into()),
        }
    }
    if let Some(inn) = doc.pointer("/cashier/inn").and_then(Value::as_str)
        && !(inn.len() == 12 && inn.bytes().all(|b| b.is_ascii_digit()))
    {
        p.push("1203 cashier INN must be 12 digits".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"ffd_version": 4, "type": "sale", "operation": 1, "taxation": 1,
               "items": [{"name": "Хлеб", "price": 61.00, "quantity": 2, "total": 122.00, "measure": 0,
                          "payment_method": 4, "payment_object": 1, "vat": 11, "vat_amount": 22.00}],
               "payments": [{"type": "cash", "tag": 1031, "amount": 150.00}], "total": 122.00, "change": 28.00,
               "vat": [{"vat": 11, "amount": 22.00}]})
    }

    #[test]
    fn a_valid_document_and_an_original_one_pass() {
        assert_eq!(problems(&good()), Vec::<String>::new());
        assert!(
            problems(&json!({"pos_id": "P", "items": []})).is_empty(),
            "no ffd_version: not checked"
        );
    }

    #[test]
    fn each_broken_rule_is_named() {
        let mut d = good();
        d["items"][0]["vat_amount"] = json!(22.01);
        d["items"][0]["payment_object"] = json!(33);
        d["change"] = json!(0);
        d["taxation"] = json!(8);
        let found = problems(&d).join("; ");
        for needle in ["1200 vat_amount", "2000 marking_code", "less change", "1055 taxation"] {
            assert!(found.contains(needle), "{needle} missing: {found}");
        }
    }
}
