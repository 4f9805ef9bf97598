//! The kkmserver front (docs/contract.md §13, issue 22), driven with kkmserver's own command
//! JSON: the recorded exchanges of a real server (K3's VCR cassettes, 2017) and the vendor's
//! examples quoted by the typed clients (K1, K2), rewritten for FFD 1.2 (docs/research/
//! kkmserver.md). Every command, an `IdCommand` replayed before and after a restart and reused
//! for another command, the register out of paper (`Status 1`, then `GetRezult`), refusals,
//! HTTP Basic as kkmserver asks for it.

use kkt_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

/// K3 `register.yml`'s command: a card sale of three pairs of boots, with a text line before.
fn register_check(id: &str) -> Value {
    json!({"Command": "RegisterCheck", "NumDevice": 0, "IdCommand": id, "Timeout": 30,
        "IsFiscalCheck": true, "TypeCheck": 0, "NotPrint": false, "NumberCopies": 0,
        "CashierName": "Иванова А.А.", "CashierVATIN": "500100732259", "ClientAddress": "", "TaxVariant": "",
        "Cash": 0.0, "ElectronicPayment": 301.5, "AdvancePayment": 0.0, "Credit": 0.0, "CashProvision": 0.0,
        "CheckStrings": [
            {"PrintText": {"Text": "<<->>"}},
            {"Register": {"Name": "Сапоги женские DF-3099-1", "Quantity": 3, "Price": 100.5, "Amount": 301.5,
                          "Department": 0, "Tax": 22, "EAN13": "1254789547853",
                          "SignMethodCalculation": 4, "SignCalculationObject": 1}}]})
}

async fn execute_raw(t: &TestApp, body: &Value) -> (u16, Value) {
    t.post_json("/Execute", body).await
}

/// Runs a command: HTTP 200 (kkmserver answers every outcome so), and its answer.
async fn execute(t: &TestApp, body: Value) -> Value {
    let (status, a) = execute_raw(t, &body).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["Command"], body["Command"], "{a}");
    a
}

fn ok(a: &Value) -> &Value {
    assert_eq!((a["Status"].as_i64(), a["Error"].as_str()), (Some(0), Some("")), "{a}");
    a
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn a_check_and_its_id_command_replayed_before_and_after_a_restart_prints_once() {
    let mut t = TestApp::start().await;
    let cmd = register_check("326656bb-427f-4c65-8fc0-ffe14d4fc396");
    let first = execute(&t, cmd.clone()).await;
    ok(&first);
    assert!(first["CheckNumber"].as_i64().unwrap() > 0, "{first}");
    assert!(first["SessionNumber"].as_i64().unwrap() > 0, "{first}");
    assert!(first["QRCode"].as_str().unwrap().contains("&s=301.50&"), "{first}");
    assert!(
        first["Warning"].as_str().unwrap().contains("<<->>"),
        "the text line left out is said: {first}"
    );

    // The same IdCommand again (a client whose HTTP call timed out): the stored answer, not a
    // second receipt and not kkmserver's Status 5.
    let mut retry = cmd.clone();
    retry["Timeout"] = json!(5);
    assert_eq!(execute(&t, retry).await, first);
    // The same IdCommand for another check: Status 5, and that check is not made.
    let mut other = cmd.clone();
    other["CheckStrings"][1]["Register"]["Quantity"] = json!(1);
    other["ElectronicPayment"] = json!(100.5);
    let five = execute(&t, other).await;
    assert_eq!(five["Status"], 5, "{five}");
    assert!(five["Error"].as_str().unwrap().contains("уже была выполнена"), "{five}");

    t.restart().await;
    assert_eq!(
        execute(&t, cmd.clone()).await,
        first,
        "kkmserver forgets after a restart; the adapter does not"
    );
    let rezult = execute(&t, json!({"Command": "GetRezult", "IdCommand": cmd["IdCommand"]})).await;
    ok(&rezult);
    assert_eq!(rezult["IdCommand"], "", "{rezult}");
    assert_eq!(rezult["Rezult"], first);
    let rows = t.receipts().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["front"].as_str(), rows[0]["pos_id"].as_str()),
        (Some("kkmserver"), Some("kkmserver"))
    );

    let missing = execute(&t, json!({"Command": "GetRezult", "IdCommand": "no-such-command"})).await;
    assert_eq!(
        (missing["Status"].as_i64(), missing["Rezult"]["Status"].as_i64()),
        (Some(3), Some(3)),
        "{missing}"
    );
}

#[tokio::test]
async fn every_command_of_a_day_in_kkmservers_shapes() {
    let t = TestApp::start().await;
    let cashier = |c: &str| json!({"Command": c, "IdCommand": id(), "CashierName": "Иванова А.А.", "CashierVATIN": "500100732259"});
    let open = ok(&execute(&t, cashier("OpenShift")).await).clone();
    assert!(
        open["SessionNumber"].as_i64().is_some() && open["CheckNumber"].as_i64().is_some(),
        "{open}"
    );
    let mut deposit = cashier("DepositingCash");
    deposit["Amount"] = json!("1000.00");
    ok(&execute(&t, deposit).await);
    ok(&execute(&t, register_check(&id())).await);
    let mut refund = register_check(&id());
    refund["TypeCheck"] = json!(1);
    ok(&execute(&t, refund).await);
    let mut cash_sale = register_check(&id());
    cash_sale["ElectronicPayment"] = json!(0);
    cash_sale["Cash"] = json!(400);
    ok(&execute(&t, cash_sale).await);
    ok(&execute(&t, cashier("XReport")).await);
    let slip = json!({"Command": "RegisterCheck", "IdCommand": id(), "IsFiscalCheck": false,
        "CheckStrings": [{"PrintText": {"Text": "ОПЛАТА КАРТОЙ"}}, {"PrintText": {"Text": "ОДОБРЕНО"}}]});
    let printed = ok(&execute(&t, slip).await).clone();
    assert_eq!(printed["Adapter"]["lines"], 2, "{printed}");
    ok(&execute(&t, json!({"Command": "OpenCashDrawer", "IdCommand": id()})).await);
    let data = ok(&execute(&t, json!({"Command": "GetDataKKT", "NumDevice": 0})).await).clone();
    assert_eq!(data["Info"]["SessionState"], 2, "an open shift: {data}");
    assert_eq!(data["Info"]["FnNumber"], t.settings.kkt.fn_number.as_str());
    assert_eq!(
        data["Info"]["BalanceCash"], 1301.5,
        "1000 in, then a cash sale of 301.50: {data}"
    );
    let list = ok(&execute(&t, json!({"Command": "List"})).await).clone();
    assert_eq!(list["ListUnit"].as_array().unwrap().len(), 1, "{list}");
    let mut payment = cashier("PaymentCash");
    payment["Amount"] = 1301.5.into();
    ok(&execute(&t, payment).await);
    let close = ok(&execute(&t, cashier("CloseShift")).await).clone();
    assert!(
        close["CheckNumber"].as_i64().unwrap() > open["CheckNumber"].as_i64().unwrap(),
        "{close}"
    );
    // On a closed shift, the register's refusal in kkmserver's way: Status 2 and the reason.
    let again = execute(&t, cashier("CloseShift")).await;
    assert_eq!(again["Status"], 2, "{again}");
    assert!(!again["Error"].as_str().unwrap().is_empty(), "{again}");
    let data = ok(&execute(&t, json!({"Command": "GetDataKKT"})).await).clone();
    assert_eq!(data["Info"]["SessionState"], 1, "{data}");

    // ValidationMarkingCode (§12): each code's verdict in both generations' shapes.
    let code = "010460406000600021N4N57RTCBUZFV\u{1d}91EE07\u{1d}92VGhlIGNyeXB0byB0YWlsIG9mIHRoZSBjb2RlIGlzIGhlcmU=";
    let v = ok(&execute(
        &t,
        json!({"Command": "ValidationMarkingCode", "IdCommand": id(),
               "GoodCodeDatas": [{"Name": "Молоко", "BarCode": code}, {"Name": "Мусор", "BarCode": "123"}]}),
    )
    .await)
    .clone();
    let checks = v["MarkingCodeValidation"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{v}");
    assert!(checks[0]["ValidationKKT"]["ValidationResult"].is_number(), "{v}");
    assert_eq!(checks[1]["ValidationPR"]["ValidationResult"], false, "{v}");
    assert!(
        checks[1]["DecryptionResult"].as_str().unwrap().contains("формат"),
        "{v}"
    );
}

#[tokio::test]
async fn refusals_are_kkmservers_own_shapes_and_nothing_is_registered() {
    let t = TestApp::start().await;
    let mut bad = register_check(&id());
    bad["CheckStrings"][1]["Register"]["Tax"] = json!(18);
    let a = execute(&t, bad).await;
    assert_eq!(a["Status"], 2, "{a}");
    assert!(a["Error"].as_str().unwrap().contains("ставка НДС"), "{a}");
    let mut short = register_check(&id());
    short["ElectronicPayment"] = json!(10);
    let a = execute(&t, short).await;
    assert_eq!(a["Status"], 2, "{a}");
    assert!(a["Error"].as_str().unwrap().contains("payments"), "{a}");
    let mut egais = register_check(&id());
    egais["TypeCheck"] = json!(8);
    assert_eq!(execute(&t, egais).await["Status"], 2);
    let (status, a) = execute_raw(&t, &json!({"Command": "KkmRegOfd", "IdCommand": id()})).await;
    assert_eq!((status, a["Status"].as_i64()), (501, Some(2)), "{a}");
    assert!(
        a["Error"]
            .as_str()
            .unwrap()
            .starts_with("Неопознанная команда KkmRegOfd"),
        "{a}"
    );
    // Too large for the adapter (1 MiB): still kkmserver's shape, with the reason.
    let (status, a) = t
        .post_json(
            "/Execute",
            &json!({"Command": "RegisterCheck", "Pad": "x".repeat(1 << 20)}),
        )
        .await;
    assert_eq!((status, a["Status"].as_i64()), (413, Some(2)), "{a}");
    assert!(!a["Error"].as_str().unwrap().is_empty(), "{a}");
    let r = t.client.post(t.url("/Execute")).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let a: Value = r.json().await.unwrap();
    assert!(a["Error"].as_str().unwrap().starts_with("Ошибка разбора"), "{a}");
    let found = t.receipts().await;
    assert_eq!(found.len(), 0, "{found:?}");
}

#[tokio::test]
async fn out_of_paper_status_1_then_get_rezult_and_the_check_is_made_once() {
    let t = TestApp::start_with(|s| s.kkt.answer_within = Duration::from_millis(500)).await;
    let kkt = t.app().mock_kkt().unwrap();
    kkt.set_faults(kkt_core::kkt::MockFaults {
        paper_out: true,
        ..Default::default()
    });
    let cmd = register_check("paper-out-check");
    let a = execute(&t, cmd.clone()).await;
    assert_eq!(a["Status"], 1, "Run: {a}");
    assert!(a["Warning"].as_str().unwrap().contains("GetRezult"), "{a}");
    let r = execute(&t, json!({"Command": "GetRezult", "IdCommand": "paper-out-check"})).await;
    assert_eq!(r["Rezult"]["Status"], 1, "{r}");
    // The same command again meanwhile: still Run, never a second receipt.
    assert_eq!(execute(&t, cmd.clone()).await["Status"], 1);
    kkt.set_faults(Default::default());
    let done = wait_for(Duration::from_secs(15), "GetRezult turns Ok", || async {
        let r = execute(&t, json!({"Command": "GetRezult", "IdCommand": "paper-out-check"})).await;
        (r["Rezult"]["Status"] == 0).then(|| r["Rezult"].clone())
    })
    .await;
    assert!(done["CheckNumber"].as_i64().is_some(), "{done}");
    assert_eq!(execute(&t, cmd).await, done, "the command again answers the result");
    let found = t.receipts().await;
    assert_eq!(found.len(), 1, "{found:?}");
}

#[tokio::test]
async fn basic_auth_as_kkmserver_a_tills_token_as_the_password_and_the_vendors_port() {
    let t = TestApp::start_with(|s| {
        s.compat.user = Some("Admin".into());
        s.compat.password = Some("kassa".to_string().into());
        s.compat.kkmserver_listen = Some("127.0.0.1:0".parse().unwrap());
        s.http
            .pos_tokens
            .insert("POS-7".into(), "till-seven-token-0123456789abcdef".to_string().into());
    })
    .await;
    let port = t
        .app()
        .front_addr(kkt_core::api::Front::Kkmserver)
        .expect("the kkmserver listener");
    let url = format!("http://{port}/Execute");
    let cmd = json!({"Command": "GetDataKKT"});
    let r = t.client.post(&url).json(&cmd).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    // kkmserver compares the login in any case and the password exactly (K4).
    let r = t
        .client
        .post(&url)
        .basic_auth("admin", Some("kassa"))
        .json(&cmd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t
        .client
        .post(&url)
        .basic_auth("Admin", Some("KASSA"))
        .json(&cmd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A till's own POS token as the password: its receipts are that till's.
    let r = t
        .client
        .post(&url)
        .basic_auth("POS-7", Some("till-seven-token-0123456789abcdef"))
        .json(&register_check(&id()))
        .send()
        .await
        .unwrap();
    let a: Value = r.json().await.unwrap();
    ok(&a);
    let found = t.receipts().await;
    assert_eq!(found[0]["pos_id"], "POS-7", "{found:?}");
    let version: Value = t
        .client
        .get(format!("http://{port}/VersionJSON"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        version["Version"].as_str().unwrap().starts_with("KKT Adapter"),
        "{version}"
    );
}

#[tokio::test]
async fn kkmservers_own_ways_numeric_ids_device_selectors_its_default_login_and_flags_as_text() {
    let t = TestApp::start().await;
    let mut numeric = register_check("");
    numeric["IdCommand"] = json!(4815162342u64);
    let first = ok(&execute(&t, numeric.clone()).await).clone();
    assert_eq!(execute(&t, numeric).await, first, "a numeric IdCommand is an id too");
    let found = t.receipts().await;
    assert_eq!(found.len(), 1, "{found:?}");

    // Another device than this one: kkmserver's "device not found", and nothing done.
    for selector in [
        json!({"NumDevice": 5}),
        json!({"InnKkm": "7700000000"}),
        json!({"KktNumber": "0000"}),
    ] {
        let mut cmd = register_check(&id());
        cmd.as_object_mut()
            .unwrap()
            .extend(selector.as_object().unwrap().clone());
        let a = execute(&t, cmd).await;
        assert_eq!(a["Status"], 2, "{selector}: {a}");
        assert!(a["Error"].as_str().unwrap().contains("не найдено"), "{a}");
    }
    // kkmserver's clients send its default login unasked; with nothing configured it passes.
    let r = t
        .client
        .post(t.url("/Execute"))
        .basic_auth("Admin", Some(""))
        .json(&json!({"Command": "GetDataKKT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `IsFiscalCheck` as text: a slip, not a receipt.
    let slip = json!({"Command": "RegisterCheck", "IdCommand": id(), "IsFiscalCheck": "false",
        "CheckStrings": [{"PrintText": {"Text": "СЛИП"}}]});
    assert_eq!(ok(&execute(&t, slip).await)["Adapter"]["lines"], 1);
    // A correction without its type: refused rather than guessed (tag 1173).
    let mut correction = register_check(&id());
    correction["TypeCheck"] = json!(2);
    correction["CorrectionBaseDate"] = json!("2026-11-30T00:00:00");
    let a = execute(&t, correction).await;
    assert_eq!(a["Status"], 2, "{a}");
    assert!(a["Error"].as_str().unwrap().contains("CorrectionType"), "{a}");
    let found = t.receipts().await;
    assert_eq!(found.len(), 1, "still one: {found:?}");
}

#[tokio::test]
async fn every_type_check_is_a_receipt_of_its_type_also_through_execute_sync() {
    let t = TestApp::start().await;
    let mut expected = Vec::new();
    for (type_check, ours) in [
        (0, "sale"),
        (1, "sale_refund"),
        (10, "buy"),
        (11, "buy_refund"),
        (2, "sale_correction"),
        (3, "sale_refund_correction"),
        (12, "buy_correction"),
        (13, "buy_refund_correction"),
    ] {
        let mut cmd = register_check(&id());
        cmd["TypeCheck"] = json!(type_check);
        if type_check % 10 >= 2 {
            cmd["CorrectionType"] = json!(0);
            cmd["CorrectionBaseDate"] = json!("2026-11-30T00:00:00");
        }
        let r = t.client.post(t.url("/Execute/sync")).json(&cmd).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let a: Value = r.json().await.unwrap();
        ok(&a);
        expected.push(ours);
    }
    expected.sort_unstable();
    assert_eq!(t.receipt_types().await, expected);
}
