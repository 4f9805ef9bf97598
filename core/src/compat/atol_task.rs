//! ATOL Web Requests front, the receipt (docs/contract.md §13; the task's shape as the driver's
//! own scripts read it — docs/research/atol-web-server.md §2.1–§3, S1 `myscripts_base_receipt.js`,
//! `myscripts_items.js`, `myscripts_validators.js`; the inverse of `kkt::atol::tasks`): a `sell`,
//! `sellReturn`, `buy`, `buyReturn` or correction task becomes the body of `POST
//! /v1/kkt/receipt`, which the receipt parser then checks as any other, so a POS written for
//! ATOL's server gets the same rules and the same exactly-once path.
//!
//! What a receipt task may hold that the adapter does not take is refused with the driver's own
//! error (501 «Некорректное значение поля …») naming the field — never dropped silently.

use crate::kkt::atol::{kind_of, payment_method, payment_object, tax};
use crate::receipt::{Measure, PaymentMethod, PaymentObject, Vat};
use serde_json::{Map, Value, json};

/// A driver error: code and description (ATOL `errorCode`, `errorDescription`).
pub type TaskError = (i64, String);

fn field(path: &str) -> TaskError {
    (501, format!("Некорректное значение поля \"{path}\""))
}

fn missing(path: &str) -> TaskError {
    (501, format!("Поле \"{path}\" отсутствует"))
}

/// Our name of a value whose ATOL name `f` gives, among `names` (the parser's list).
fn inverse<T: Copy>(
    atol: &str,
    names: String,
    parse: fn(&str) -> Option<T>,
    f: impl Fn(T) -> String,
) -> Option<String> {
    names
        .split(", ")
        .find(|n| parse(n).is_some_and(|v| f(v) == atol))
        .map(str::to_string)
}

fn money(v: &Value) -> Option<Value> {
    v.as_f64().map(|_| v.clone())
}

/// The task's `taxationType` as ours (§2.1).
fn taxation(t: &str) -> Option<&'static str> {
    Some(match t {
        "osn" => "osn",
        "usnIncome" => "usn_income",
        "usnIncomeOutcome" => "usn_income_outcome",
        "esn" => "esn",
        "patent" => "patent",
        _ => return None,
    })
}

/// One `position` item.
fn position(i: usize, item: &Value) -> Result<Value, TaskError> {
    let path = |f: &str| format!("items[{i}].{f}");
    let name = item["name"].as_str().ok_or_else(|| missing(&path("name")))?;
    let price = money(&item["price"]).ok_or_else(|| missing(&path("price")))?;
    let quantity = money(&item["quantity"]).ok_or_else(|| missing(&path("quantity")))?;
    let mut out = json!({"name": name, "price": price, "quantity": quantity});
    if let Some(amount) = money(&item["amount"]) {
        out["total"] = amount;
    }
    if let Some(t) = item["tax"]["type"].as_str() {
        let vat =
            inverse(t, Vat::names(), Vat::parse, |v| tax(v).to_string()).ok_or_else(|| field(&path("tax.type")))?;
        out["vat"] = json!(vat);
    }
    if let Some(m) = item["paymentMethod"].as_str() {
        let ours = inverse(m, PaymentMethod::names(), PaymentMethod::parse, |v| {
            payment_method(v).to_string()
        })
        .ok_or_else(|| field(&path("paymentMethod")))?;
        out["payment_method"] = json!(ours);
    }
    if let Some(o) = item["paymentObject"]
        .as_str()
        .map(str::to_string)
        .or_else(|| item["paymentObject"].as_i64().map(|n| n.to_string()))
    {
        let ours = inverse(&o, PaymentObject::names(), PaymentObject::parse, payment_object)
            .ok_or_else(|| field(&path("paymentObject")))?;
        out["payment_object"] = json!(ours);
    }
    if let Some(unit) = item["measurementUnit"]
        .as_i64()
        .or_else(|| item["measurementUnit"].as_str().and_then(|s| s.parse().ok()))
    {
        let ours = inverse(&unit.to_string(), Measure::names(), Measure::parse, |m| {
            m.code().to_string()
        })
        .ok_or_else(|| field(&path("measurementUnit")))?;
        out["measure"] = json!(ours);
    }
    // Requisites the adapter does not pass to the register yet: refused, never dropped.
    for unsupported in [
        "agentInfo",
        "supplierInfo",
        "excise",
        "exciseSum",
        "countryCode",
        "declarationNumber",
        "customsDeclaration",
        "productCodes",
        "userData",
        "additionalAttribute",
        "industryInfo",
        // FFD 1.05 marking: a marked item must come as `imcParams` (FFD 1.2).
        "markingCode",
        "nomenclatureCode",
    ] {
        if !item[unsupported].is_null() {
            return Err(field(&path(unsupported)));
        }
    }
    if !item["imcParams"]["itemFractionalAmount"].is_null() {
        return Err(field(&path("imcParams.itemFractionalAmount")));
    }
    if let Some(imc) = item["imcParams"]["imc"].as_str() {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(imc)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| imc.to_string());
        out["marking_code"] = json!(raw);
    }
    Ok(out)
}

/// The body of our receipt for an ATOL receipt task; `pos_id` names the front's till.
pub fn receipt_body(task: &Value, pos_id: &str) -> Result<Value, TaskError> {
    let kind = task["type"].as_str().and_then(kind_of).ok_or_else(|| field("type"))?;
    let mut body = Map::new();
    body.insert("pos_id".into(), json!(pos_id));
    body.insert("type".into(), json!(kind.as_str()));
    if let Some(t) = task["taxationType"].as_str() {
        body.insert(
            "taxation".into(),
            json!(taxation(t).ok_or_else(|| field("taxationType"))?),
        );
    }
    if let Some(name) = task["operator"]["name"].as_str() {
        let mut c = json!({"name": name});
        if let Some(v) = task["operator"]["vatin"].as_str() {
            c["inn"] = json!(v);
        }
        body.insert("cashier".into(), c);
    }
    for unsupported in [
        "name",
        "vatin",
        "birthDate",
        "citizenship",
        "identityDocumentCode",
        "address",
    ] {
        if !task["clientInfo"][unsupported].is_null() {
            return Err(field(&format!("clientInfo.{unsupported}")));
        }
    }
    // `companyInfo` (the seller's e-mail 1117, its INN and СНО) is the register's registration's;
    // it is read from there and from `[fiscal]`, whatever the task says (README).
    for unsupported in [
        "agentInfo",
        "supplierInfo",
        "operatingCheckProps",
        "sectoralCheckProps",
        "operationInfo",
        "industryInfo",
        "preItems",
        "postItems",
        "correctionBaseName",
    ] {
        if !task[unsupported].is_null() {
            return Err(field(unsupported));
        }
    }
    if let Some(contact) = task["clientInfo"]["emailOrPhone"].as_str() {
        let key = if contact.contains('@') { "email" } else { "phone" };
        body.insert("customer".into(), json!({key: contact}));
    }
    if task["electronically"] == true {
        body.insert("electronic".into(), json!(true));
    }
    let mut items = Vec::new();
    for (i, item) in task["items"]
        .as_array()
        .ok_or_else(|| missing("items"))?
        .iter()
        .enumerate()
    {
        match item["type"].as_str() {
            Some("position") => items.push(position(i, item)?),
            // The receipt's tag (1192) is the adapter's own (docs/contract.md §10.2).
            Some("additionalAttribute") => return Err(field(&format!("items[{i}].type"))),
            _ => return Err(field(&format!("items[{i}].type"))),
        }
    }
    body.insert("items".into(), json!(items));
    let mut payments = Vec::new();
    for (i, p) in task["payments"]
        .as_array()
        .ok_or_else(|| missing("payments"))?
        .iter()
        .enumerate()
    {
        let kind = match p["type"]
            .as_str()
            .map(str::to_string)
            .or_else(|| p["type"].as_i64().map(|n| n.to_string()))
            .as_deref()
        {
            Some("cash" | "0") => "cash",
            Some("electronically" | "1") => "card",
            Some("prepaid" | "2") => "prepaid",
            Some("credit" | "3") => "credit",
            Some("other" | "4") => "other",
            _ => return Err(field(&format!("payments[{i}].type"))),
        };
        let sum = money(&p["sum"]).ok_or_else(|| missing(&format!("payments[{i}].sum")))?;
        payments.push(json!({"type": kind, "amount": sum}));
    }
    body.insert("payments".into(), json!(payments));
    if kind.is_correction() {
        let self_made = match task["correctionType"].as_str() {
            Some("self") => true,
            None => return Err(missing("correctionType")),
            Some("instruction") => false,
            Some(_) => return Err(field("correctionType")),
        };
        let date = task["correctionBaseDate"]
            .as_str()
            .ok_or_else(|| missing("correctionBaseDate"))?;
        let mut c = json!({"kind": if self_made { "self" } else { "ordered" }, "base_date": date.replace('.', "-")});
        if let Some(n) = task["correctionBaseNumber"].as_str().filter(|n| !n.is_empty()) {
            c["base_number"] = json!(n);
        }
        body.insert("correction".into(), c);
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{Defaults, parse};

    /// A sale as ATOL's own example task gives it (S1 `json_sell.js`, the shape of
    /// docs/research/atol-web-server.md §2.1).
    const SELL: &str = r#"{"type": "sell", "taxationType": "usnIncome", "electronically": false,
        "operator": {"name": "Иванов", "vatin": "123654789507"},
        "clientInfo": {"emailOrPhone": "+79161234567"},
        "items": [
            {"type": "position", "name": "Бананы", "price": 73.15, "quantity": 1.123, "amount": 82.15,
             "tax": {"type": "vat22"}, "paymentMethod": "fullPayment", "paymentObject": "commodity", "measurementUnit": 11},
            {"type": "position", "name": "Кефир", "price": 48.45, "quantity": 1, "amount": 48.45,
             "tax": {"type": "vat10"}, "measurementUnit": 0}
        ],
        "payments": [{"type": "cash", "sum": 100.00}, {"type": "electronically", "sum": 30.60}],
        "total": 130.60}"#;

    #[test]
    fn an_atol_sale_becomes_our_receipt_and_passes_the_same_checks() {
        let task: Value = serde_json::from_str(SELL).unwrap();
        let body = receipt_body(&task, "ATOL-WEB").unwrap();
        assert_eq!(body["type"], "sale");
        assert_eq!(body["taxation"], "usn_income");
        assert_eq!(body["cashier"], json!({"name": "Иванов", "inn": "123654789507"}));
        assert_eq!(body["customer"], json!({"phone": "+79161234567"}));
        assert_eq!(body["items"][0]["vat"], "vat22");
        assert_eq!(body["items"][0]["measure"], "kilogram");
        assert_eq!(body["payments"][1], json!({"type": "card", "amount": 30.60}));
        let r = parse(body.to_string().as_bytes(), &Defaults::default()).unwrap();
        assert_eq!(r.total.0, 13060);
    }

    #[test]
    fn what_the_adapter_does_not_take_is_the_drivers_own_error_naming_the_field() {
        let mut task: Value = serde_json::from_str(SELL).unwrap();
        task["items"][0]["tax"]["type"] = json!("vat99");
        assert_eq!(
            receipt_body(&task, "P").unwrap_err(),
            (501, "Некорректное значение поля \"items[0].tax.type\"".into())
        );
        let mut task: Value = serde_json::from_str(SELL).unwrap();
        task["items"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "text", "text": "Спасибо"}));
        assert_eq!(receipt_body(&task, "P").unwrap_err().0, 501);
        let mut task: Value = serde_json::from_str(SELL).unwrap();
        task.as_object_mut().unwrap().remove("payments");
        assert_eq!(
            receipt_body(&task, "P").unwrap_err(),
            (501, "Поле \"payments\" отсутствует".into())
        );
    }
}
