//! kkmserver front, the mappings (docs/contract.md §13; the fields and answers from
//! docs/research/kkmserver.md §2–§8, sources K1–K4 named there): a command's fields read as
//! kkmserver reads them (names in any case, numbers also as strings), `RegisterCheck` turned
//! into the native receipt's body, the cash and shift commands into native operations, and the
//! native answers and the register's state into kkmserver's envelope (`Status`, `Error`,
//! `CheckNumber`, `SessionNumber`, `QRCode`, …).

use crate::kkt::{DeviceInfo, ShiftState};
use crate::receipt::{Measure, OpKind, PaymentMethod, PaymentObject};
use serde_json::{Map, Value, json};

/// kkmserver's `Status` (K4 `Unit.ExecuteStatus`).
pub const OK: i64 = 0;
pub const RUN: i64 = 1;
pub const ERROR: i64 = 2;
pub const NOT_FOUND: i64 = 3;
pub const ALREADY_DONE: i64 = 5;

/// A field by name in any letter case (kkmserver's deserializer matches so; K4, Newtonsoft).
pub fn field<'a>(obj: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match obj.as_object() {
        Some(map) => map
            .get(name)
            .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
            .unwrap_or(&NULL),
        None => &NULL,
    }
}

/// A number, also given as a string (`"1.01"`, `"1,01"`).
pub fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().replace(',', ".").parse().ok()))
}

fn text<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    field(obj, name).as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn flag(obj: &Value, name: &str) -> bool {
    match field(obj, name) {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// What the adapter does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    RegisterCheck,
    Operation(OpKind),
    /// `DepositingCash` (in) or `PaymentCash` (out).
    Cash(bool),
    OpenCashDrawer,
    GetDataKkt,
    List,
    GetRezult,
    ValidationMarkingCode,
}

/// The command's kind; `Err(name)` for one the adapter does not run.
pub fn classify(name: &str) -> Result<Command, String> {
    Ok(match name {
        "RegisterCheck" => Command::RegisterCheck,
        "OpenShift" => Command::Operation(OpKind::ShiftOpen),
        "CloseShift" | "ZReport" => Command::Operation(OpKind::ShiftClose),
        "XReport" => Command::Operation(OpKind::ReportX),
        "DepositingCash" => Command::Cash(true),
        "PaymentCash" => Command::Cash(false),
        "OpenCashDrawer" => Command::OpenCashDrawer,
        "GetDataKKT" => Command::GetDataKkt,
        "List" => Command::List,
        "GetRezult" => Command::GetRezult,
        "ValidationMarkingCode" => Command::ValidationMarkingCode,
        other => return Err(other.to_string()),
    })
}

/// Whether a command changes the register (stored under its `IdCommand`, done once).
pub fn is_keyed(c: Command) -> bool {
    matches!(
        c,
        Command::RegisterCheck | Command::Operation(_) | Command::Cash(_) | Command::OpenCashDrawer
    )
}

fn cashier(cmd: &Value) -> Option<Value> {
    let name = text(cmd, "CashierName")?;
    let mut c = json!({"name": name});
    if let Some(inn) = text(cmd, "CashierVATIN") {
        c["inn"] = json!(inn);
    }
    Some(c)
}

/// `TypeCheck` (tag 1054 with the correction types; K1, K6) as the native receipt type.
fn receipt_type(n: i64) -> Option<&'static str> {
    Some(match n {
        0 => "sale",
        1 => "sale_refund",
        2 => "sale_correction",
        3 => "sale_refund_correction",
        10 => "buy",
        11 => "buy_refund",
        12 => "buy_correction",
        13 => "buy_refund_correction",
        _ => return None,
    })
}

/// `TaxVariant` (K1: 0 ОСН, 1 УСН доход, 2 УСН доход−расход, 3 ЕНВД, 4 ЕСХН, 5 патент).
fn taxation(v: &Value) -> Result<Option<&'static str>, String> {
    let n = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        _ => number(v).ok_or("Не правильно указана система налогообложения (TaxVariant)")?,
    };
    Ok(Some(match n as i64 {
        0 => "osn",
        1 => "usn_income",
        2 => "usn_income_outcome",
        4 => "esn",
        5 => "patent",
        3 => return Err("ЕНВД (TaxVariant 3) отменён с 2021 года: укажите другую систему налогообложения".into()),
        _ => return Err("Не правильно указана система налогообложения (TaxVariant)".into()),
    }))
}

/// `Tax` (K1: −1 без НДС, 0, 10, 20, 110, 120; K4 also 5, 7, 22, 105, 107, 122).
fn vat(v: &Value) -> Option<String> {
    match number(v)? as i64 {
        -1 => Some("none".into()),
        n @ (0 | 5 | 7 | 10 | 20 | 22 | 105 | 107 | 110 | 120 | 122) => Some(format!("vat{n}")),
        _ => None,
    }
}

fn by_code<T: Copy>(all: &[T], code: impl Fn(T) -> u16, name: impl Fn(T) -> &'static str, v: &Value) -> Option<String> {
    let n = number(v)? as i64;
    all.iter()
        .find(|x| i64::from(code(**x)) == n)
        .map(|x| name(*x).to_string())
}

/// One `Register` line as the native item.
fn item(i: usize, r: &Value) -> Result<Value, String> {
    let name = text(r, "Name").ok_or_else(|| format!("CheckStrings[{i}]: Не указано наименование товара/услуги!"))?;
    let quantity = number(field(r, "Quantity")).ok_or_else(|| format!("CheckStrings[{i}]: Не указано количество"))?;
    let price = number(field(r, "Price")).ok_or_else(|| format!("CheckStrings[{i}]: Не указана цена"))?;
    let mut out = json!({"name": name, "quantity": quantity, "price": price});
    if let Some(amount) = number(field(r, "Amount")) {
        out["total"] = json!(amount);
    }
    let tax = field(r, "Tax");
    if !tax.is_null() {
        out["vat"] = json!(vat(tax).ok_or_else(|| format!("CheckStrings[{i}]: Не правильно указана ставка НДС!"))?);
    }
    let method = field(r, "SignMethodCalculation");
    if !method.is_null() {
        let m = by_code(PaymentMethod::ALL, PaymentMethod::code, PaymentMethod::as_str, method)
            .ok_or_else(|| format!("CheckStrings[{i}]: Не правильно указан признак способа расчета!"))?;
        out["payment_method"] = json!(m);
    }
    let object = field(r, "SignCalculationObject");
    if !object.is_null() {
        let o = by_code(PaymentObject::ALL, PaymentObject::code, PaymentObject::as_str, object)
            .ok_or_else(|| format!("CheckStrings[{i}]: Не правильно указан признак предмета расчета!"))?;
        out["payment_object"] = json!(o);
    }
    let measure = field(r, "MeasureOfQuantity");
    if !measure.is_null() {
        let m = by_code(Measure::ALL, Measure::code, Measure::as_str, measure)
            .ok_or_else(|| format!("CheckStrings[{i}]: Не правильно указана мера количества (MeasureOfQuantity)"))?;
        out["measure"] = json!(m);
    }
    let good = field(r, "GoodCodeData");
    if let Some(code) = text(good, "BarCode") {
        out["marking_code"] = json!(code);
    } else if let Some(b64) = text(good, "MarkingCodeBase64") {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("CheckStrings[{i}]: MarkingCodeBase64 не в base64"))?;
        out["marking_code"] = json!(raw);
    }
    if !field(field(r, "GoodCodeData"), "IndustryProps").is_null() {
        return Err(format!(
            "CheckStrings[{i}]: GoodCodeData.IndustryProps адаптер не передаёт в ККТ (README «Use your existing POS»)"
        ));
    }
    for unsupported in [
        "AgentSign",
        "AgentData",
        "PurveyorData",
        "ExciseAmount",
        "CustomsDeclaration",
        "CountryOfOrigin",
        "AdditionalAttribute",
        "PackageQuantity",
    ] {
        if !field(r, unsupported).is_null() {
            return Err(format!(
                "CheckStrings[{i}]: поле {unsupported} адаптер не передаёт в ККТ (README «Use your existing POS»)"
            ));
        }
    }
    Ok(out)
}

/// The lines a `PrintText` element prints (a non-fiscal check, or text the adapter leaves out).
fn print_text(s: &Value) -> Option<String> {
    field(field(s, "PrintText"), "Text").as_str().map(str::to_string)
}

/// The native body of a `RegisterCheck` (`IsFiscalCheck` true), and what the adapter leaves
/// out of the slip (said in the answer's `Warning`, never dropped silently).
pub fn receipt_body(cmd: &Value, pos_id: &str) -> Result<(Value, Vec<String>), String> {
    let type_check = match field(cmd, "TypeCheck") {
        Value::Null => 0,
        v => number(v).ok_or("Не правильно указан тип чека (TypeCheck)")? as i64,
    };
    let kind = receipt_type(type_check).ok_or_else(|| {
        format!("Тип чека TypeCheck={type_check} не поддерживается (0–3, 10–13; ЕГАИС-чеки 8/9 адаптер не печатает)")
    })?;
    let mut body = Map::new();
    body.insert("pos_id".into(), json!(pos_id));
    body.insert("type".into(), json!(kind));
    if let Some(t) = taxation(field(cmd, "TaxVariant"))? {
        body.insert("taxation".into(), json!(t));
    }
    if let Some(c) = cashier(cmd) {
        body.insert("cashier".into(), c);
    }
    if let Some(contact) = text(cmd, "ClientAddress") {
        let key = if contact.contains('@') { "email" } else { "phone" };
        body.insert("customer".into(), json!({key: contact}));
    }
    if flag(cmd, "NotPrint") {
        body.insert("electronic".into(), json!(true));
    }
    let (mut items, mut left_out) = (Vec::new(), Vec::new());
    let strings = field(cmd, "CheckStrings")
        .as_array()
        .ok_or("Не указаны строки чека (CheckStrings)")?;
    for (i, s) in strings.iter().enumerate() {
        let register = field(s, "Register");
        if !register.is_null() {
            items.push(item(i, register)?);
        }
        if let Some(t) = print_text(s) {
            left_out.push(format!("CheckStrings[{i}].PrintText «{t}»"));
        }
        for other in ["BarCode", "PrintImage"] {
            if !field(s, other).is_null() {
                left_out.push(format!("CheckStrings[{i}].{other}"));
            }
        }
    }
    body.insert("items".into(), json!(items));
    let mut payments = Vec::new();
    for (name, kind) in [
        ("Cash", "cash"),
        ("ElectronicPayment", "card"),
        ("AdvancePayment", "prepaid"),
        ("Credit", "credit"),
        ("CashProvision", "other"),
    ] {
        if let Some(sum) = number(field(cmd, name)).filter(|s| *s != 0.0) {
            payments.push(json!({"type": kind, "amount": sum}));
        }
    }
    body.insert("payments".into(), json!(payments));
    if kind.ends_with("correction") {
        // K1 says 0 самостоятельно / 1 по предписанию; kkmserver itself assumes 1 when absent
        // (K4): the adapter does not guess tag 1173.
        let ordered = match number(field(cmd, "CorrectionType")).map(|n| n as i64) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err("Не указан тип коррекции (CorrectionType: 0 — самостоятельно, 1 — по предписанию)".into()),
        };
        let date = text(cmd, "CorrectionBaseDate").ok_or("Не указана дата коррекции (CorrectionBaseDate)")?;
        let mut c =
            json!({"kind": if ordered { "ordered" } else { "self" }, "base_date": date.get(..10).unwrap_or(date)});
        if let Some(n) = text(cmd, "CorrectionBaseNumber") {
            c["base_number"] = json!(n);
        }
        body.insert("correction".into(), c);
    }
    let copies = number(field(cmd, "NumberCopies")).unwrap_or(0.0);
    if copies > 0.0 {
        left_out.push(format!(
            "NumberCopies {copies} (копии — POST /v1/kkt/receipt/{{id}}/copy)"
        ));
    }
    for unsupported in [
        "PayByProcessing",
        "ClientINN",
        "ClientInfo",
        "AgentSign",
        "AgentData",
        "PurveyorData",
        "UserAttribute",
        "AdditionalAttribute",
    ] {
        if !field(cmd, unsupported).is_null() && field(cmd, unsupported) != &json!(false) {
            return Err(format!(
                "поле {unsupported} адаптер не поддерживает (README «Use your existing POS»)"
            ));
        }
    }
    Ok((Value::Object(body), left_out))
}

/// The lines of a non-fiscal `RegisterCheck` (`IsFiscalCheck: false`): its `PrintText`s.
pub fn print_lines(cmd: &Value) -> Vec<String> {
    field(cmd, "CheckStrings")
        .as_array()
        .map(|a| a.iter().filter_map(print_text).collect())
        .unwrap_or_default()
}

/// `IsFiscalCheck`: only an explicit false (`false`, `"false"`, `0`) makes a non-fiscal print.
pub fn is_fiscal_check(cmd: &Value) -> bool {
    match field(cmd, "IsFiscalCheck") {
        Value::Bool(b) => *b,
        Value::String(s) => !(s.trim().eq_ignore_ascii_case("false") || s.trim() == "0"),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    }
}

/// What a command becomes, decided once when it is first taken and stored with it: the native
/// body (`{"body", "left_out"}`) or the refusal (`{"error"}`). A command run again after an
/// upgrade sends the very body stored under its key (a changed mapping cannot make the buffer
/// see another request for a receipt it holds).
pub fn prepare(command: Command, cmd: &Value, pos_id: &str) -> Value {
    let body = match command {
        Command::RegisterCheck if !is_fiscal_check(cmd) => Ok((json!({"lines": print_lines(cmd)}), Vec::new())),
        Command::RegisterCheck => receipt_body(cmd, pos_id),
        Command::Operation(_) => operation_body(cmd, None).map(|b| (b, Vec::new())),
        Command::Cash(incoming) => operation_body(cmd, Some(incoming)).map(|b| (b, Vec::new())),
        _ => Ok((json!({}), Vec::new())),
    };
    match body {
        Ok((body, left_out)) => json!({"body": body, "left_out": left_out}),
        Err(e) => json!({"error": e}),
    }
}

/// The native body of a shift, report or cash command.
pub fn operation_body(cmd: &Value, cash_in: Option<bool>) -> Result<Value, String> {
    let mut body = Map::new();
    if let Some(c) = cashier(cmd) {
        body.insert("cashier".into(), c);
    }
    if let Some(incoming) = cash_in {
        let amount = number(field(cmd, "Amount")).ok_or("Не указана сумма (Amount)")?;
        body.insert("direction".into(), json!(if incoming { "in" } else { "out" }));
        body.insert("amount".into(), json!(amount));
    }
    Ok(Value::Object(body))
}

/// The answer's envelope (K1 `response.ts`, K4 `RezultCommand`).
pub fn envelope(command: &str, id: &str, status: i64, error: &str) -> Value {
    json!({
        "Command": command,
        "Error": error,
        "Warning": "",
        "Status": status,
        "IdCommand": id,
        "NumDevice": 1,
        "MessageFrom": "KkmServer",
    })
}

/// A native answer as kkmserver's: `Status 0` with the document's numbers; `1` (Run) while the
/// register has not done it yet; `2` with the reason in Russian.
pub fn from_native(command: &str, id: &str, http: u16, body: &Value) -> Value {
    match http {
        200 => {
            let mut a = envelope(command, id, OK, "");
            let doc = if body["fiscal_doc"].is_object() {
                &body["fiscal_doc"]
            } else {
                body
            };
            for (ours, theirs) in [
                ("fiscal_doc_number", "CheckNumber"),
                ("shift_number", "SessionNumber"),
                ("receipt_number", "SessionCheckNumber"),
            ] {
                if doc[ours].as_i64().is_some_and(|n| n != 0) {
                    a[theirs] = doc[ours].clone();
                }
            }
            if let Some(qr) = doc["qr_code_data"].as_str().filter(|q| !q.is_empty()) {
                a["QRCode"] = json!(qr);
            }
            if body["status"] == "buffered" {
                a["Warning"] = json!("Чек зарегистрирован, но не напечатан (нет бумаги?): он будет отправлен в ОФД");
            }
            a["Adapter"] = body.clone();
            a
        }
        202 => {
            let mut a = envelope(command, id, RUN, "");
            a["Warning"] = json!(format!(
                "Команда сохранена и будет выполнена, когда ККТ будет готова: {}; результат — GetRezult с этим IdCommand",
                body["reason"].as_str().unwrap_or("ККТ не ответила")
            ));
            a
        }
        // The same key again later (see `atol_result::is_pending`): running, never failed.
        _ if super::atol_result::is_pending(http, body) => {
            let mut a = envelope(command, id, RUN, "");
            a["Warning"] = json!(format!(
                "Команда не завершена: {}; результат — GetRezult с этим IdCommand",
                super::describe(body)
            ));
            a
        }
        _ => {
            let device = &body["device_error"];
            let error = match device["code"].as_str() {
                Some(code) => format!(
                    "Ошибка регистрации ( {code} : {} )",
                    device["message"].as_str().unwrap_or_default()
                ),
                None => super::describe(body),
            };
            envelope(command, id, ERROR, &error)
        }
    }
}

fn session_state(s: ShiftState) -> i64 {
    match s {
        ShiftState::Closed => 1,
        ShiftState::Open => 2,
        ShiftState::Expired => 3,
    }
}

/// `GetDataKKT`'s `Info` (K1 `GetDataKKTInfo`, K4 `TypeRegKkmOfd`), from the register's state.
/// Its dates are the register's local time without an offset, as kkmserver's.
pub fn info(d: &DeviceInfo, inn: &str, organisation: &str, zone: &crate::time::Zone) -> Value {
    let local = |t: &Option<String>| {
        t.as_deref()
            .map_or_else(|| "0001-01-01T00:00:00".into(), |t| zone.local_iso(t))
    };
    json!({
        "KktNumber": d.serial,
        "FnNumber": d.fn_number,
        "InnOrganization": inn,
        "NameOrganization": organisation,
        "FFDVersion": d.ffd_version.clone().unwrap_or_else(|| "1.2".into()),
        "FN_IsFiscal": d.fn_phase.as_deref().is_none_or(|p| p == "fiscalMode"),
        "FN_DateEnd": local(&d.fn_valid_until),
        "SessionState": session_state(d.shift),
        "PaperOver": d.paper_present == Some(false),
        "BalanceCash": d.cash_in_drawer.map_or(-1.0, |k| k.0 as f64 / 100.0),
        "OFD_NumErrorDoc": d.fn_unsent,
        "OFD_DateErrorDoc": local(&d.fn_unsent_first_at),
        "Firmware_Version": d.firmware.clone().unwrap_or_default(),
        "OnOff": true,
        "Active": true,
        "SaleMarking": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{Defaults, parse};

    /// The real exchange of K3 `register.yml` (2017), its `Tax` 18 of that time made 22, with a
    /// cashier's INN of 12 digits (FFD 1.2).
    const CHECK: &str = r#"{"Command":"RegisterCheck","NumDevice":3,"IdCommand":"326656bb-427f-4c65-8fc0-ffe14d4fc396",
        "Cash":0.0,"ElectronicPayment":301.5,"AdvancePayment":0.0,"Credit":0.0,"CashProvision":0.0,
        "IsFiscalCheck":true,"TypeCheck":0,"NotPrint":false,"NumberCopies":0,
        "CashierName":"Кассир Иванова","CashierVATIN":"500100732259","ClientAddress":"","TaxVariant":"",
        "CheckStrings":[{"PrintText":{"Text":"<<->>"}},
         {"Register":{"Name":"Сапоги женские DF-3099-1","Quantity":3,"Price":100.5,"Amount":301.5,
          "Department":0,"Tax":22,"EAN13":"1254789547853","SignMethodCalculation":4,"SignCalculationObject":1}}]}"#;

    #[test]
    fn a_kkmserver_check_becomes_our_receipt_and_passes_the_same_checks() {
        let cmd: Value = serde_json::from_str(CHECK).unwrap();
        let (body, left_out) = receipt_body(&cmd, "kkmserver").unwrap();
        assert_eq!(body["type"], "sale");
        assert_eq!(body["items"][0]["vat"], "vat22");
        assert_eq!(body["items"][0]["payment_method"], "full_payment");
        assert_eq!(body["items"][0]["payment_object"], "commodity");
        assert_eq!(body["payments"], json!([{"type": "card", "amount": 301.5}]));
        assert_eq!(left_out, vec!["CheckStrings[0].PrintText «<<->>»".to_string()]);
        let r = parse(body.to_string().as_bytes(), &Defaults::default()).unwrap();
        assert_eq!(r.total.0, 30150);
    }

    #[test]
    fn fields_are_read_in_any_case_and_numbers_as_strings_and_refusals_are_named() {
        let cmd = json!({"typecheck": "1", "cashiername": "Петров", "CheckStrings":
            [{"Register": {"Name": "Хлеб", "Quantity": "2", "Price": "45,50", "Tax": "-1"}}], "cash": "91"});
        let (body, _) = receipt_body(&cmd, "P").unwrap();
        assert_eq!(body["type"], "sale_refund");
        assert_eq!(body["items"][0]["price"], json!(45.5));
        assert_eq!(body["items"][0]["vat"], "none");
        assert_eq!(body["cashier"]["name"], "Петров");
        let bad = json!({"CheckStrings": [{"Register": {"Name": "Хлеб", "Quantity": 1, "Price": 1, "Tax": 18}}]});
        assert_eq!(
            receipt_body(&bad, "P").unwrap_err(),
            "CheckStrings[0]: Не правильно указана ставка НДС!"
        );
        assert!(receipt_body(&json!({"TypeCheck": 8, "CheckStrings": []}), "P").is_err());
        assert_eq!(classify("KkmRegOfd"), Err("KkmRegOfd".into()));
    }
}
