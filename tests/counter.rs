//! A cashier's day (docs/contract.md §11, issue 20): open the shift with the cashier, cash in,
//! sales and a refund, X-report, cash out, Z-report — every total checked against the sales,
//! every operation replayed once (the same bytes back) and on the register exactly once; on the
//! mock register and on `mock-atol` answering as ATOL's task scripts do.

use kkt_tests::*;
use serde_json::{Value, json};
use std::time::Duration;

const CASHIER: &str = r#"{"name":"Иванова А.А.","inn":"500100732259"}"#;

/// Posts an operation with the admin token (as the window does) under `key`.
async fn post(t: &TestApp, path: &str, key: &str, body: &str) -> (u16, Vec<u8>, bool) {
    let r = t
        .client
        .post(t.url(path))
        .bearer_auth(&t.token)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let replayed = r.headers().contains_key("idempotent-replayed");
    (status, r.bytes().await.unwrap().to_vec(), replayed)
}

/// Does an operation and replays it once: `200`, and the replay answers the very same bytes.
async fn once(t: &TestApp, path: &str, body: &str) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let (status, first, replayed) = post(t, path, &key, body).await;
    let answer: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!((status, replayed), (200, false), "{path}: {answer}");
    let (status, again, replayed) = post(t, path, &key, body).await;
    assert_eq!((status, replayed), (200, true), "{path} replayed");
    assert_eq!(again, first, "{path}: a replay answers the same bytes");
    answer
}

/// Repeats the key until the operation's answer is `200` (it waited for the register), and
/// returns it.
async fn until_done(t: &TestApp, path: &str, key: &str, body: &str, what: &str) -> Value {
    wait_for(Duration::from_secs(15), what, || async {
        let (status, answer, _) = post(t, path, key, body).await;
        (status == 200).then(|| serde_json::from_slice::<Value>(&answer).unwrap())
    })
    .await
}

async fn sell(t: &TestApp, body: &str) {
    let r = t.post_receipt(Some(&uuid::Uuid::new_v4().to_string()), body).await;
    assert_eq!(r.status(), 200, "{body}");
}

fn with(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(SEED_BODY).unwrap();
    edit(&mut v);
    v.to_string()
}

/// `operations[type].payments[kind]` of a report, as a number.
fn paid(report: &Value, kind: &str, payment: &str) -> f64 {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == kind)
        .and_then(|o| o["payments"].as_array().unwrap().iter().find(|p| p["type"] == payment))
        .map_or(0.0, |p| p["amount"].as_f64().unwrap())
}

fn operation<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

/// The day; returns the Z-report.
async fn a_day(t: &TestApp) -> Value {
    let opened = once(t, "/v1/kkt/shift/open", &format!(r#"{{"cashier":{CASHIER}}}"#)).await;
    assert_eq!(opened["operation"], "shift_open");
    assert_eq!(opened["cashier"]["name"], "Иванова А.А.", "{opened}");
    let shift = opened["shift_number"].as_i64().unwrap();
    let (_, s) = t.get("/v1/kkt/shift").await;
    assert_eq!(
        (s["state"].as_str(), s["number"].as_i64()),
        (Some("open"), Some(shift)),
        "{s}"
    );
    // Opening an open shift again (a new key) is refused by the register, and nothing happens.
    let (status, body, _) = post(t, "/v1/kkt/shift/open", "second-open", "{}").await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));

    let float = once(t, "/v1/kkt/cash", r#"{"direction":"in","amount":1000.00}"#).await;
    assert_eq!(float["cash_in_drawer"].as_f64(), Some(1000.0), "{float}");

    sell(t, SEED_BODY).await; // 100 cash
    sell(t, ORIGINAL_BODY).await; // 405.97 card
    sell(t, &with(|v| v["payments"][0]["amount"] = json!(500))).await; // 500 for 100: 100 stays
    sell(t, &with(|v| v["type"] = json!("sale_refund"))).await; // 100 cash back

    let x = once(t, "/v1/kkt/report/x", &format!(r#"{{"cashier":{CASHIER}}}"#)).await;
    let sale = operation(&x, "sale");
    assert_eq!(
        (sale["count"].as_i64(), sale["total"].as_f64()),
        (Some(3), Some(605.97)),
        "{x}"
    );
    assert_eq!(paid(&x, "sale", "cash"), 200.0, "{x}");
    assert_eq!(paid(&x, "sale", "card"), 405.97, "{x}");
    let refund = operation(&x, "sale_refund");
    assert_eq!(
        (refund["count"].as_i64(), refund["total"].as_f64()),
        (Some(1), Some(100.0)),
        "{x}"
    );
    assert_eq!(paid(&x, "sale_refund", "cash"), 100.0, "{x}");
    assert_eq!(
        (x["cash_in"]["count"].as_i64(), x["cash_in"]["sum"].as_f64()),
        (Some(1), Some(1000.0))
    );
    assert_eq!(x["cash_out"]["count"].as_i64(), Some(0), "{x}");
    assert_eq!(
        x["cash_in_drawer"].as_f64(),
        Some(1100.0),
        "1000 + 200 in cash − 100 refunded: {x}"
    );
    assert_eq!(x["receipts"].as_i64(), Some(4), "{x}");
    let (_, s) = t.get("/v1/kkt/shift").await;
    assert_eq!(s["state"], "open", "an X-report leaves the shift open");

    // The evening's collection: more than the drawer holds is refused; all of it is taken.
    let (status, body, _) = post(t, "/v1/kkt/cash", "too-much", r#"{"direction":"out","amount":1100.01}"#).await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let collected = once(t, "/v1/kkt/cash", r#"{"direction":"out","amount":1100}"#).await;
    assert_eq!(collected["cash_in_drawer"].as_f64(), Some(0.0), "{collected}");

    let z = once(t, "/v1/kkt/shift/close", &format!(r#"{{"cashier":{CASHIER}}}"#)).await;
    assert_eq!(z["shift_number"].as_i64(), Some(shift), "{z}");
    assert_eq!(z["cashier"]["name"], "Иванова А.А.", "{z}");
    assert_eq!(
        z["operations"], x["operations"],
        "the Z-report's totals are the X-report's: {z}"
    );
    assert_eq!(z["receipts"].as_i64(), Some(4), "{z}");
    assert_eq!(
        (z["cash_out"]["count"].as_i64(), z["cash_out"]["sum"].as_f64()),
        (Some(1), Some(1100.0))
    );
    assert_eq!(z["cash_in"], x["cash_in"], "{z}");
    assert_eq!(z["cash_in_drawer"].as_f64(), Some(0.0), "{z}");
    let (_, s) = t.get("/v1/kkt/shift").await;
    assert_eq!(s["state"], "closed", "{s}");

    // The same key with another body is another request: 422, nothing done.
    let key = uuid::Uuid::new_v4().to_string();
    let (status, _, _) = post(t, "/v1/kkt/cash", &key, r#"{"direction":"in","amount":5}"#).await;
    assert_eq!(status, 200);
    let (status, _, _) = post(t, "/v1/kkt/cash", &key, r#"{"direction":"in","amount":6}"#).await;
    assert_eq!(status, 422);
    let (status, _, _) = post(t, "/v1/kkt/report/x", &key, "{}").await;
    assert_eq!(status, 422, "the key on another endpoint is another body");
    z
}

#[tokio::test]
async fn a_whole_day_on_the_mock_register_adds_up_and_each_operation_happens_once() {
    let t = TestApp::start().await;
    let z = a_day(&t).await;
    // Documents in the FN: the shift's opening, 4 receipts, its closing — no second of either;
    // and the 5 roubles of the key's first request opened the next shift (a cash-in does, as
    // on an ATOL register).
    assert_eq!(z["fiscal_doc_number"].as_i64(), Some(6), "{z}");
    let (_, s) = t.get("/v1/kkt/shift").await;
    assert_eq!(
        (s["number"].as_i64(), s["last_fiscal_doc_number"].as_i64()),
        (Some(2), Some(7)),
        "{s}"
    );
    let (_, d) = t.get("/v1/kkt/device").await;
    assert_eq!(d["cash_in_drawer"].as_f64(), Some(5.0), "{d}");
}

#[tokio::test]
async fn operations_need_a_key_and_a_valid_body_and_follow_the_tills_token_rules() {
    const TILL: &str = "till-token-0123456789abcdef0123456789";
    // The till's own token: the adapter knows which till calls.
    let t = TestApp::start_with(|s| {
        s.http.pos_tokens.insert("POS-001".into(), TILL.into());
    })
    .await;
    let r = t
        .client
        .post(t.url("/v1/kkt/report/x"))
        .header("Idempotency-Key", "k1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token, no operation");
    let r = t
        .client
        .post(t.url("/v1/kkt/drawer/open"))
        .bearer_auth(TILL)
        .header("Idempotency-Key", "k1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a till opens the drawer");
    let (status, body, _) = post(&t, "/v1/kkt/cash", "k2", r#"{"direction":"up","amount":-1}"#).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["details"].as_array().map(Vec::len), Some(2), "{v}");
    let r = t
        .client
        .post(t.url("/v1/kkt/cash"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the Idempotency-Key is required");
    // X-report on a closed shift: nothing to report, nothing stored — the key can be used again.
    let (status, _, _) = post(&t, "/v1/kkt/report/x", "k3", "{}").await;
    assert_eq!(status, 409);
    once(&t, "/v1/kkt/shift/open", "{}").await;
    let (status, _, _) = post(&t, "/v1/kkt/report/x", "k3", "{}").await;
    assert_eq!(status, 200, "the same key once the shift is open");
    // A slip, and a copy of a receipt from the FN; a receipt that does not exist has none.
    let printed = once(&t, "/v1/kkt/print", r#"{"lines":["Слип оплаты","Сумма 179.80"]}"#).await;
    assert_eq!(printed["lines"].as_i64(), Some(2), "{printed}");
    let r = t
        .post_receipt_as(TILL, "sale-1", SEED_BODY)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let id = r["receipt_id"].as_str().unwrap();
    let copy = once(&t, &format!("/v1/kkt/receipt/{id}/copy"), "").await;
    assert_eq!(
        copy["fiscal_doc_number"], r["fiscal_doc"]["fiscal_doc_number"],
        "{copy}"
    );
    let (status, _, _) = post(&t, "/v1/kkt/receipt/no-such-receipt/copy", "k4", "").await;
    assert_eq!(status, 404);
    // A key stands for one request: the same key for another receipt's copy, from another
    // till, or already a receipt's is another request (422), never someone else's answer.
    let other = t
        .post_receipt_as(TILL, "sale-2", SEED_BODY)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let (status, _, _) = post(&t, &format!("/v1/kkt/receipt/{id}/copy"), "copy-key", "").await;
    assert_eq!(status, 200);
    let other_copy = format!("/v1/kkt/receipt/{}/copy", other["receipt_id"].as_str().unwrap());
    let (status, _, _) = post(&t, &other_copy, "copy-key", "").await;
    assert_eq!(status, 422, "the same key for another receipt's copy");
    let r = t
        .client
        .post(t.url("/v1/kkt/drawer/open"))
        .bearer_auth(TILL)
        .header("Idempotency-Key", "k1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the same till, the same key: its replay");
    let (status, _, _) = post(&t, "/v1/kkt/drawer/open", "k1", "").await;
    assert_eq!(status, 422, "the same key from another caller is another request");
    let (status, _, _) = post(&t, "/v1/kkt/drawer/open", "sale-1", "").await;
    assert_eq!(status, 422, "a receipt's key");
}

#[tokio::test]
async fn an_operation_waiting_for_the_register_holds_the_ones_after_it_in_order() {
    let t = TestApp::start().await;
    once(&t, "/v1/kkt/shift/open", "{}").await;
    let kkt = t.app().mock_kkt().expect("the mock register");
    kkt.set_faults(kkt_core::kkt::MockFaults {
        paper_out: true,
        ..Default::default()
    });
    let (status, body, _) = post(&t, "/v1/kkt/cash", "float", r#"{"direction":"in","amount":700}"#).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let (status, body, _) = post(&t, "/v1/kkt/shift/close", "evening", "{}").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 202, "the Z waits behind the cash-in: {v}");
    assert!(
        v["reason"].as_str().unwrap().contains("ждёт предыдущую операцию"),
        "{v}"
    );
    let (status, _, _) = post(&t, "/v1/kkt/cash", "float", r#"{"direction":"in","amount":700}"#).await;
    assert_eq!(status, 202, "a replay while it waits: 202 again, never 409");
    kkt.set_faults(kkt_core::kkt::MockFaults::default());
    let z = until_done(
        &t,
        "/v1/kkt/shift/close",
        "evening",
        "{}",
        "the Z-report after the cash-in",
    )
    .await;
    assert_eq!(
        (z["cash_in"]["count"].as_i64(), z["cash_in"]["sum"].as_f64()),
        (Some(1), Some(700.0)),
        "{z}"
    );
}

#[tokio::test]
async fn an_operation_whose_answer_was_lost_is_read_back_from_the_register_not_done_again() {
    let t = TestApp::start().await;
    once(&t, "/v1/kkt/shift/open", "{}").await;
    // The register takes the cash-in and the link drops before its answer: the caller is told
    // to come back; the device thread asks the register, finds it done, and stores its result.
    let kkt = t.app().mock_kkt().expect("the mock register");
    kkt.set_faults(kkt_core::kkt::MockFaults {
        lose_after_write: 1,
        ..Default::default()
    });
    let (status, body, _) = post(&t, "/v1/kkt/cash", "lost", r#"{"direction":"in","amount":300}"#).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, v["status"].as_str()), (202, Some("awaiting_device")), "{v}");
    let done = until_done(
        &t,
        "/v1/kkt/cash",
        "lost",
        r#"{"direction":"in","amount":300}"#,
        "the cash-in read back",
    )
    .await;
    assert_eq!(done["cash_in_drawer"].as_f64(), Some(300.0), "{done}");
    let x = once(&t, "/v1/kkt/report/x", "{}").await;
    assert_eq!(x["cash_in"]["count"].as_i64(), Some(1), "once on the register: {x}");
}

#[tokio::test]
async fn a_whole_day_on_an_atol_register_adds_up_and_each_operation_happens_once() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    let z = a_day(&t).await;
    assert!(z["fiscal_doc_number"].as_i64().unwrap() > 0, "{z}");
    let (tasks, opened, closed, receipts) = on_device(&atol);
    // Replayed once each, done once each: two cash-ins (the float, and the 5 roubles of the
    // key test, which opened the next shift), one collection, one X-report.
    let expected: std::collections::BTreeMap<String, usize> = [("cashIn", 2), ("cashOut", 1), ("reportX", 1)]
        .map(|(k, n)| (k.to_string(), n))
        .into();
    assert_eq!(tasks, expected);
    assert_eq!((opened, closed, receipts), (2, 1, 4));
    let (_, d) = t.get("/v1/kkt/device").await;
    assert_eq!(d["cash_in_drawer"].as_f64(), Some(5.0), "{d}");
}

#[tokio::test]
async fn a_slow_register_answers_202_and_a_replay_of_the_key_gets_202_until_it_is_done() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |s| {
        s.kkt.answer_within = Duration::from_millis(300);
    })
    .await;
    once(&t, "/v1/kkt/shift/open", "{}").await;
    // X-report on an ATOL register whose shift is closed: nothing to report, nothing posted.
    once(&t, "/v1/kkt/shift/close", "{}").await;
    let (status, _, _) = post(&t, "/v1/kkt/report/x", "x-closed", "{}").await;
    assert_eq!(status, 409);
    assert_eq!(on_device(&atol).0.get("reportX"), None);
    once(&t, "/v1/kkt/shift/open", "{}").await;
    atol.set_faults(mock_atol::Faults {
        hang: true,
        ..Default::default()
    });
    let body = r#"{"direction":"in","amount":40}"#;
    let (status, first, _) = post(&t, "/v1/kkt/cash", "slow", body).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&first));
    let (status, again, _) = post(&t, "/v1/kkt/cash", "slow", body).await;
    assert_eq!(
        status,
        202,
        "told to come back, then 202 again: {}",
        String::from_utf8_lossy(&again)
    );
    atol.set_faults(mock_atol::Faults::default());
    let done = until_done(&t, "/v1/kkt/cash", "slow", body, "the slow cash-in done").await;
    assert_eq!(done["cash_in_drawer"].as_f64(), Some(40.0), "{done}");
    assert_eq!(on_device(&atol).0.get("cashIn"), Some(&1));
}

#[tokio::test]
async fn a_cash_operation_whose_job_was_lost_is_judged_from_the_registers_counters() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    once(&t, "/v1/kkt/shift/open", "{}").await;
    // The server dies after the register took the money: its job is gone.
    atol.set_faults(mock_atol::Faults {
        crash_after_register: true,
        ..Default::default()
    });
    let body = r#"{"direction":"in","amount":250.50}"#;
    let (status, answer, _) = post(&t, "/v1/kkt/cash", "lost-job", body).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let done = until_done(
        &t,
        "/v1/kkt/cash",
        "lost-job",
        r#"{"direction":"in","amount":250.50}"#,
        "the cash-in judged done",
    )
    .await;
    assert_eq!(done["cash_in_drawer"].as_f64(), Some(250.5), "{done}");
    // The script failed reading the drawer after the money went in: the job says error, the
    // counters say done.
    atol.set_faults(mock_atol::Faults {
        error_after_write: Some(2),
        ..Default::default()
    });
    let (status, _, _) = post(
        &t,
        "/v1/kkt/cash",
        "failed-after",
        r#"{"direction":"out","amount":50.50}"#,
    )
    .await;
    assert!(matches!(status, 200 | 202 | 503), "{status}");
    let out = until_done(
        &t,
        "/v1/kkt/cash",
        "failed-after",
        r#"{"direction":"out","amount":50.50}"#,
        "the cash-out judged done",
    )
    .await;
    assert_eq!(out["cash_in_drawer"].as_f64(), Some(200.0), "{out}");
    let (tasks, ..) = on_device(&atol);
    assert_eq!(
        (tasks.get("cashIn"), tasks.get("cashOut")),
        (Some(&1), Some(&1)),
        "each once on the register"
    );
}
