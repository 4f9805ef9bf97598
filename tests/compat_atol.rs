//! The ATOL Web Requests front (docs/contract.md §13, issue 22), driven with ATOL's own task
//! JSON — the driver's example tasks (S1 `json_*.js`, shapes in docs/research/atol-web-server.md
//! §2) — and the web server's job protocol (§1: `POST /api/v2/requests` → 201, `GET` → results,
//! a used uuid → 409): every task, replays of a uuid before and after a restart, a used uuid
//! with another body, the register out of paper ("blocked", then "ready" by itself, printed
//! once), refusals, Basic auth and the vendor's own port.

use kkt_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

/// A sale as ATOL's example task gives it (S1 `json_sell.js`), 22 % VAT as of 2026.
fn sell() -> Value {
    json!({
        "type": "sell",
        "taxationType": "osn",
        "operator": {"name": "Иванов", "vatin": "123654789507"},
        "items": [
            {"type": "position", "name": "Бананы", "price": 73.15, "quantity": 1.123, "amount": 82.15,
             "tax": {"type": "vat22"}, "paymentMethod": "fullPayment", "paymentObject": "commodity",
             "measurementUnit": 11},
            {"type": "position", "name": "Кефир", "price": 48.45, "quantity": 1, "amount": 48.45,
             "tax": {"type": "vat10"}}
        ],
        "payments": [{"type": "cash", "sum": 100.00}, {"type": "electronically", "sum": 30.60}],
        "total": 130.60
    })
}

async fn post(t: &TestApp, body: &Value) -> (u16, Value) {
    t.post_json("/api/v2/requests", body).await
}

/// A job of these tasks under a new uuid: `201`, and its results.
async fn job(t: &TestApp, tasks: Value) -> Vec<Value> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let (status, answer) = post(t, &json!({"uuid": uuid, "request": tasks})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["uuid"], uuid.as_str());
    results(t, &uuid).await
}

async fn results(t: &TestApp, uuid: &str) -> Vec<Value> {
    let (status, v) = t.get(&format!("/api/v2/requests/{uuid}")).await;
    assert_eq!(status, 200, "{v}");
    v["results"].as_array().unwrap().clone()
}

fn ready(r: &Value) -> &Value {
    assert_eq!(r["status"], "ready", "{r}");
    assert_eq!(
        (r["errorCode"].as_i64(), r["error"]["code"].as_i64()),
        (Some(0), Some(0)),
        "{r}"
    );
    &r["result"]
}

#[tokio::test]
async fn a_sale_is_ready_at_once_and_its_uuid_never_prints_twice_even_after_a_restart() {
    let mut t = TestApp::start_with(|s| s.fiscal.timezone = "Asia/Yekaterinburg".into()).await;
    let uuid = "3b6f0c9e-6d4f-4f0e-9a3e-0c1d2e3f4a5b";
    let request = json!({"uuid": uuid, "request": [sell()]});
    let (status, answer) = post(&t, &request).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["isBlocked"], false, "{answer}");
    let first = results(&t, uuid).await;
    let params = ready(&first[0])["fiscalParams"].clone();
    assert_eq!(params["total"], 130.60, "{params}");
    assert!(params["fiscalDocumentNumber"].as_i64().unwrap() > 0, "{params}");
    assert_eq!(params["fnNumber"], t.settings.kkt.fn_number.as_str());

    // The same job again (a POS that timed out): 409, as ATOL's server; nothing printed again.
    let (status, again) = post(&t, &request).await;
    assert_eq!(status, 409, "{again}");
    assert!(
        again["error"]["description"].as_str().unwrap().contains("UUID"),
        "{again}"
    );
    // The same uuid with another sale: 409 too, saying so; that sale is not made.
    let mut other = sell();
    other["items"][1]["quantity"] = json!(2);
    let (status, conflict) = post(&t, &json!({"uuid": uuid, "request": [other]})).await;
    assert_eq!(status, 409, "{conflict}");
    assert!(
        conflict["error"]["description"].as_str().unwrap().contains("другие"),
        "{conflict}"
    );

    t.restart().await;
    let after = results(&t, uuid).await;
    assert_eq!(after, first, "the job's results survive a restart");
    assert_eq!(
        post(&t, &request).await.0,
        409,
        "a used uuid stays used after a restart"
    );
    let rows = t.receipts().await;
    assert_eq!(rows.len(), 1, "one receipt for every attempt: {rows:?}");
    assert_eq!(rows[0]["front"], "atol", "the window shows the front: {rows:?}");
    // The document's time as ATOL's server gives it: the register's local time with its offset,
    // the same instant as ours (UTC on the wire).
    let theirs = params["fiscalDocumentDateTime"].as_str().unwrap();
    assert!(theirs.ends_with("+05:00"), "{theirs}");
    let ours = rows[0]["fiscal_datetime"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(theirs).unwrap(),
        chrono::DateTime::parse_from_rfc3339(ours).unwrap(),
        "{theirs} vs {ours}"
    );
    assert_eq!(rows[0]["pos_id"], "atol-web");
    let (_, view) = t
        .get(&format!("/v1/kkt/receipt/{}", rows[0]["receipt_id"].as_str().unwrap()))
        .await;
    assert_eq!(view["front"], "atol", "{view}");
    let (_, status) = t.get("/v1/kkt/buffer/status").await;
    assert!(n(&status, "pending") + n(&status, "synced") >= 1, "{status}");
    let unknown = t.get("/api/v2/requests/no-such-job").await;
    assert_eq!(unknown.0, 404, "{:?}", unknown.1);
}

#[tokio::test]
async fn every_task_of_a_day_in_atols_shapes() {
    let t = TestApp::start().await;
    let operator = json!({"name": "Иванова А.А.", "vatin": "500100732259"});
    let open = job(&t, json!([{"type": "openShift", "operator": operator}])).await;
    let p = &ready(&open[0])["fiscalParams"];
    assert!(
        p["fiscalDocumentNumber"].as_i64().is_some() && p["shiftNumber"].as_i64().is_some(),
        "{p}"
    );

    let state = job(
        &t,
        json!([{"type": "getShiftStatus"}, {"type": "getDeviceStatus"}, {"type": "getFnInfo"}, {"type": "ofdExchangeStatus"}]),
    )
    .await;
    assert_eq!(ready(&state[0])["shiftStatus"]["state"], "opened", "{}", state[0]);
    let device = &ready(&state[1])["deviceStatus"];
    assert_eq!(
        (device["shift"].as_str(), device["paperPresent"].as_bool()),
        (Some("opened"), Some(true)),
        "{device}"
    );
    assert_eq!(ready(&state[2])["fnInfo"]["serial"], t.settings.kkt.fn_number.as_str());
    assert!(ready(&state[3])["status"]["notSentCount"].is_number(), "{}", state[3]);

    let cash_in = job(
        &t,
        json!([{"type": "cashIn", "cashSum": 1000.00, "operator": operator}]),
    )
    .await;
    assert_eq!(ready(&cash_in[0])["adapter"]["amount"], 1000.0, "{}", cash_in[0]);
    let sale = job(&t, json!([sell()])).await;
    ready(&sale[0]);
    let mut refund = sell();
    refund["type"] = json!("sellReturn");
    let back = job(&t, json!([refund])).await;
    ready(&back[0]);
    let x = job(&t, json!([{"type": "reportX", "operator": operator}])).await;
    assert_eq!(ready(&x[0])["adapter"]["receipts"], 2, "{}", x[0]);
    let slip = job(
        &t,
        json!([{"type": "nonFiscal", "items": [{"type": "text", "text": "ОПЛАТА КАРТОЙ\nОДОБРЕНО"}]},
               {"type": "openCashDrawer"}, {"type": "continuePrint"}]),
    )
    .await;
    assert_eq!(ready(&slip[0])["adapter"]["lines"], 2, "{}", slip[0]);
    ready(&slip[1]);
    ready(&slip[2]);
    let out = job(&t, json!([{"type": "cashOut", "cashSum": 500, "operator": operator}])).await;
    ready(&out[0]);
    let close = job(&t, json!([{"type": "closeShift", "operator": operator}])).await;
    let z = &ready(&close[0])["fiscalParams"];
    assert_eq!(z["receiptsCount"], 2, "{z}");
    // On a closed shift, ATOL's code 73 (DENIED_IN_CLOSED_SHIFT, S6 `KKTErrorType.cs`).
    let again = job(&t, json!([{"type": "closeShift"}])).await;
    assert_eq!(
        (again[0]["status"].as_str(), again[0]["errorCode"].as_i64()),
        (Some("error"), Some(73)),
        "{}",
        again[0]
    );
}

#[tokio::test]
async fn refusals_are_atols_own_errors_and_the_tasks_after_them_are_interrupted() {
    let t = TestApp::start().await;
    let mut bad = sell();
    bad["items"][0]["tax"]["type"] = json!("vat99");
    let r = job(&t, json!([bad, {"type": "getShiftStatus"}])).await;
    assert_eq!(
        (r[0]["status"].as_str(), r[0]["errorCode"].as_i64()),
        (Some("error"), Some(501)),
        "{}",
        r[0]
    );
    assert!(
        r[0]["errorDescription"].as_str().unwrap().contains("items[0].tax.type"),
        "{}",
        r[0]
    );
    assert_eq!(
        (r[1]["status"].as_str(), r[1]["errorCode"].as_i64()),
        (Some("interrupted"), Some(502)),
        "{}",
        r[1]
    );
    // A sale the receipt rules refuse (it is paid short): the same checks as the native API.
    let mut short = sell();
    short["payments"] = json!([{"type": "cash", "sum": 10}]);
    let r = job(&t, json!([short])).await;
    assert_eq!(r[0]["status"], "error", "{}", r[0]);
    assert!(
        r[0]["errorDescription"].as_str().unwrap().contains("payments"),
        "{}",
        r[0]
    );
    // Print-only lines and a correction without its type: refused, naming the field.
    let mut pre = sell();
    pre["preItems"] = json!([{"type": "text", "text": "Добро пожаловать"}]);
    let r = job(&t, json!([pre])).await;
    assert_eq!(
        r[0]["errorDescription"], "Некорректное значение поля \"preItems\"",
        "{}",
        r[0]
    );
    let mut correction = sell();
    correction["type"] = json!("sellCorrection");
    correction["correctionBaseDate"] = json!("2026.11.30");
    let r = job(&t, json!([correction])).await;
    assert_eq!(
        r[0]["errorDescription"], "Поле \"correctionType\" отсутствует",
        "{}",
        r[0]
    );
    // The fronts' keys are theirs: the native API refuses them.
    let native = t.post_receipt(Some("atol:3b6f0c9e"), SEED_BODY).await;
    assert_eq!(native.status(), 400);
    let r = job(&t, json!([{"type": "fnChange"}])).await;
    assert_eq!(r[0]["errorCode"], 504, "{}", r[0]);
    let (status, v) = post(
        &t,
        &json!({"uuid": "two-fiscal", "request": [sell(), {"type": "closeShift"}]}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["description"], "Too many fiscal sub-tasks - 2");
    assert_eq!(post(&t, &json!({"uuid": "x", "request": []})).await.0, 400);
    // Too large for the adapter (1 MiB): still the web server's shape, with the reason.
    let (status, v) = post(&t, &json!({"uuid": "big", "request": [{"type": "x".repeat(1 << 20)}]})).await;
    assert_eq!(status, 413, "{v}");
    assert!(!v["error"]["description"].as_str().unwrap().is_empty(), "{v}");
    assert_eq!(post(&t, &json!({"request": [sell()]})).await.0, 400);
    let found = t.receipts().await;
    assert_eq!(found.len(), 0, "nothing was registered: {found:?}");
}

#[tokio::test]
async fn out_of_paper_the_job_is_blocked_then_ready_by_itself_and_printed_once() {
    let mut t = TestApp::start_with(|s| s.kkt.answer_within = Duration::from_millis(500)).await;
    t.app().mock_kkt().unwrap().set_faults(kkt_core::kkt::MockFaults {
        paper_out: true,
        ..Default::default()
    });
    let uuid = "paper-out-job";
    let (status, answer) = post(&t, &json!({"uuid": uuid, "request": [sell()]})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        (answer["isBlocked"].as_bool(), answer["blockedUUID"].as_str()),
        (Some(true), Some(uuid)),
        "{answer}"
    );
    let r = results(&t, uuid).await;
    assert_eq!(r[0]["status"], "blocked", "{}", r[0]);
    // The adapter restarts while the job waits (the paper is in when it is back): the stored
    // job is run on by the next GET, under its key, from the body stored with it.
    t.restart().await;
    let done = wait_for(Duration::from_secs(15), "the blocked job turns ready", || async {
        let r = results(&t, uuid).await;
        (r[0]["status"] == "ready").then(|| r[0].clone())
    })
    .await;
    assert!(
        done["result"]["fiscalParams"]["fiscalDocumentNumber"]
            .as_i64()
            .is_some(),
        "{done}"
    );
    // The GETs that ran the job on replayed its receipt: not counted as tills' retries.
    let metrics = t.metrics().await;
    assert!(metrics.contains("kkt_intake_total{result=\"replayed\"} 0"), "{metrics}");
    let found = t.receipts().await;
    assert_eq!(found.len(), 1, "{found:?}");
}

#[tokio::test]
async fn basic_auth_as_atols_server_and_the_vendors_own_port() {
    let t = TestApp::start_with(|s| {
        s.compat.user = Some("admin".into());
        s.compat.password = Some("kassa".to_string().into());
        s.compat.atol_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let request = json!({"uuid": "with-auth", "request": [{"type": "getDeviceStatus"}]});
    let r = t
        .client
        .post(t.url("/api/v2/requests"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let wrong = t
        .client
        .post(t.url("/api/v2/requests"))
        .basic_auth("admin", Some("guess"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let port = t
        .app()
        .front_addr(kkt_core::api::Front::Atol)
        .expect("the ATOL listener");
    let base = format!("http://{port}");
    let r = t
        .client
        .post(format!("{base}/api/v2/requests"))
        .basic_auth("admin", Some("kassa"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = t
        .client
        .get(format!("{base}/api/v2/requests/with-auth"))
        .basic_auth("admin", Some("kassa"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["results"][0]["status"], "ready", "{v}");
    // The vendor's port serves the vendor's API only.
    let native = t.client.post(format!("{base}/v1/kkt/receipt")).send().await.unwrap();
    assert_eq!(native.status(), 404);
}

#[tokio::test]
async fn through_the_front_onto_an_atol_register_a_job_is_on_the_device_once() {
    let (atol, mut t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    let operator = json!({"name": "Иванова А.А.", "vatin": "500100732259"});
    let open = json!({"uuid": "open-1", "request": [{"type": "openShift", "operator": operator}]});
    assert_eq!(post(&t, &open).await.0, 201);
    let request = json!({"uuid": "sale-1", "request": [sell(), {"type": "getShiftStatus"}]});
    assert_eq!(post(&t, &request).await.0, 201);
    let first = results(&t, "sale-1").await;
    ready(&first[0]);
    assert_eq!(ready(&first[1])["shiftStatus"]["documentsCount"], 1, "{}", first[1]);
    assert_eq!(post(&t, &request).await.0, 409);
    t.restart().await;
    assert_eq!(post(&t, &request).await.0, 409);
    assert_eq!(post(&t, &open).await.0, 409);
    assert_eq!(results(&t, "sale-1").await[0], first[0]);
    let (_, opened, _, receipts) = on_device(&atol);
    assert_eq!(
        (opened, receipts),
        (1, 1),
        "one shift opened and one receipt on the device"
    );
}

#[tokio::test]
async fn buys_refunds_and_corrections_each_a_receipt_of_its_type_and_a_job_cannot_be_cancelled() {
    let t = TestApp::start().await;
    let mut expected = Vec::new();
    for (atol, ours) in [
        ("buy", "buy"),
        ("buyReturn", "buy_refund"),
        ("sellCorrection", "sale_correction"),
        ("sellReturnCorrection", "sale_refund_correction"),
        ("buyCorrection", "buy_correction"),
        ("buyReturnCorrection", "buy_refund_correction"),
    ] {
        let mut task = sell();
        task["type"] = json!(atol);
        if atol.ends_with("Correction") {
            task["correctionType"] = json!("self");
            task["correctionBaseDate"] = json!("2026.11.30");
        }
        let r = job(&t, json!([task])).await;
        ready(&r[0]);
        expected.push(ours);
    }
    expected.sort_unstable();
    assert_eq!(t.receipt_types().await, expected);
    // A job starts when it is posted: nothing is left to cancel (Web Requests' 409, S5).
    let (status, _) = post(
        &t,
        &json!({"uuid": "cancel-me", "request": [{"type": "getShiftStatus"}]}),
    )
    .await;
    assert_eq!(status, 201);
    let r = t
        .client
        .delete(t.url("/api/v2/requests/cancel-me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = t
        .client
        .delete(t.url("/api/v2/requests/no-such-job"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
