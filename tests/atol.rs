//! The ATOL driver (issue 11, docs/contract.md §7) against `mock-atol`, a server of ATOL's web
//! server protocol with a persistent FN and device faults: the seed's flow with the device's own
//! numbers, device trouble answered 202 and registered once the device is back, a refusal as
//! 422, a job lost after the FN registered it, shifts, and hostile device answers.

use kkt_tests::*;
use mock_atol::Faults;
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

async fn setup(configure: impl FnOnce(&mut kkt_core::Settings)) -> (mock_atol::MockAtol, TestApp) {
    TestApp::start_on_atol(Duration::from_millis(20), configure).await
}

/// The device's receipts made for a receipt id (its job uuids are `<id>` or `<id>.<n>`).
fn on_device(atol: &mock_atol::MockAtol, receipt_id: &str) -> Vec<mock_atol::Document> {
    atol.documents()
        .into_iter()
        .filter(|d| d.kind == "receipt" && (d.uuid == receipt_id || d.uuid.starts_with(&format!("{receipt_id}."))))
        .collect()
}

/// Posts with `key` until the answer is final (200 or 422), as a till repeating its key does.
async fn until_final(t: &TestApp, key: &str, body: &str) -> (u16, Value) {
    wait_for(LIMIT, "a final answer", || async {
        let r = t.post_receipt(Some(key), body).await;
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        (code == 200 || code == 422).then_some((code, v))
    })
    .await
}

#[tokio::test]
async fn a_sale_carries_the_devices_own_fiscal_attributes_and_is_on_the_device_once() {
    let (atol, t) = setup(|_| {}).await;
    let r = t.post_receipt(Some("seed"), SEED_BODY).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let id = v["receipt_id"].as_str().unwrap();
    let docs = on_device(&atol, id);
    assert_eq!(docs.len(), 1, "{:?}", atol.documents());
    let doc = &v["fiscal_doc"];
    assert_eq!(
        doc["fiscal_doc_number"].as_i64(),
        Some(docs[0].number),
        "the adapter's number is the device's"
    );
    assert_eq!(doc["fiscal_sign"].as_str(), Some(docs[0].sign.as_str()));
    assert_eq!(doc["fn_number"], "7380440700000001");
    assert!(
        doc["qr_code_data"]
            .as_str()
            .unwrap()
            .contains(&format!("&i={}&fp={}&n=1", docs[0].number, docs[0].sign))
    );
    let again = t.post_receipt(Some("seed"), SEED_BODY).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(on_device(&atol, id).len(), 1, "a replay never reaches the device");
    // The shift is the device's.
    let (_, shift) = t.get("/v1/kkt/shift").await;
    assert_eq!(
        (shift["state"].as_str(), shift["number"].as_i64()),
        (Some("open"), Some(1)),
        "{shift}"
    );
    let (code, z) = t.admin_post("/v1/kkt/shift/close", Some(&t.token)).await;
    assert_eq!((code, z["receipts"].as_i64()), (200, Some(1)), "{z}");
}

#[tokio::test]
async fn no_paper_gets_the_till_a_202_and_the_receipt_is_registered_once_the_paper_is_back() {
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        paper_out: true,
        ..Faults::default()
    });
    let r = t.post_receipt(Some("paper"), SEED_BODY).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "awaiting_device");
    assert!(
        v["reason"].as_str().unwrap().contains("нет бумаги"),
        "the cause in Russian: {v}"
    );
    let id = v["receipt_id"].as_str().unwrap().to_string();
    let again = t.post_receipt(Some("paper"), SEED_BODY).await;
    assert_eq!(again.status(), 202, "a replay meanwhile gets the same interim answer");
    atol.set_faults(Faults::default());
    let (code, done) = until_final(&t, "paper", SEED_BODY).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["receipt_id"], id.as_str());
    assert_eq!(
        on_device(&atol, &id).len(),
        1,
        "registered once: {:?}",
        atol.documents()
    );
}

#[tokio::test]
async fn a_receipt_the_device_refuses_is_a_422_with_its_code_and_never_sent_again() {
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        refuse: true,
        ..Faults::default()
    });
    let r = t.post_receipt(Some("bad"), SEED_BODY).await;
    assert_eq!(r.status(), 422);
    let first = r.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(
        (v["code"].as_str(), v["device_error"]["code"].as_str()),
        (Some("kkt_refused"), Some("501")),
        "{v}"
    );
    atol.set_faults(Faults::default());
    let again = t.post_receipt(Some("bad"), SEED_BODY).await;
    assert_eq!(again.status(), 422);
    assert_eq!(again.bytes().await.unwrap(), first, "the same answer, not a second try");
    assert!(atol.documents().iter().all(|d| d.kind != "receipt"));
}

#[tokio::test]
async fn a_job_the_server_lost_after_the_fn_registered_it_is_found_in_the_fn_not_sent_twice() {
    let (atol, t) = setup(|_| {}).await;
    t.receipt(SEED_BODY).await; // a receipt before, so the FN has history
    atol.set_faults(Faults {
        crash_after_register: true,
        ..Faults::default()
    });
    let body = SEED_BODY
        .replace(r#""price":100"#, r#""price":123.45"#)
        .replace(r#""amount":100"#, r#""amount":123.45"#);
    let (code, v) = until_final(&t, "lost", &body).await;
    assert_eq!(code, 200, "{v}");
    let id = v["receipt_id"].as_str().unwrap();
    let docs = on_device(&atol, id);
    assert_eq!(docs.len(), 1, "registered once: {:?}", atol.documents());
    assert_eq!(v["fiscal_doc"]["fiscal_doc_number"].as_i64(), Some(docs[0].number));
}

#[tokio::test]
async fn an_expired_shift_is_closed_before_the_next_receipt_or_refused_as_configured() {
    let (atol, t) = setup(|_| {}).await;
    t.receipt(SEED_BODY).await;
    atol.advance_clock(Duration::from_secs(25 * 3600));
    let v = t.receipt(SEED_BODY).await;
    assert_eq!(v["fiscal_doc"]["shift_number"], 2, "{v}");
    assert!(atol.documents().iter().any(|d| d.kind == "closeShift"));
    let (atol, t) = setup(|s| s.kkt.auto_shift = false).await;
    t.receipt(SEED_BODY).await;
    atol.advance_clock(Duration::from_secs(25 * 3600));
    let (code, v) = t.try_receipt(SEED_BODY).await;
    assert_eq!((code, v["code"].as_str()), (409, Some("shift_expired")), "{v}");
}

#[tokio::test]
async fn hostile_device_answers_are_clear_errors_and_nothing_is_lost_or_doubled() {
    let (atol, t) = setup(|_| {}).await;
    for (name, faults) in [
        (
            "garbage",
            Faults {
                garbage: true,
                ..Faults::default()
            },
        ),
        (
            "huge",
            Faults {
                huge: true,
                ..Faults::default()
            },
        ),
        (
            "trickle",
            Faults {
                trickle: true,
                ..Faults::default()
            },
        ),
        (
            "flat-errors",
            Faults {
                flat_errors: true,
                paper_out: true,
                ..Faults::default()
            },
        ),
        (
            "hang",
            Faults {
                hang: true,
                ..Faults::default()
            },
        ),
    ] {
        atol.set_faults(faults);
        let key = format!("hostile-{name}");
        let r = t.post_receipt(Some(&key), SEED_BODY).await;
        assert_eq!(r.status(), 202, "{name}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["reason"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: a cause is given: {v}"
        );
        atol.set_faults(Faults::default());
        let (code, done) = until_final(&t, &key, SEED_BODY).await;
        assert_eq!(code, 200, "{name}: {done}");
        let id = done["receipt_id"].as_str().unwrap();
        assert_eq!(on_device(&atol, id).len(), 1, "{name}: once on the device");
    }
}

#[tokio::test]
async fn delivery_is_what_the_fn_reports_and_its_failing_link_is_the_ofd_offline() {
    let (atol, t) = setup(|_| {}).await;
    atol.set_faults(Faults {
        ofd_down: true,
        ..Faults::default()
    });
    for _ in 0..6 {
        t.receipt(SEED_BODY).await;
    }
    // The FN holds them: not synced, the unsent count and the link's state are shown.
    let s = t
        .wait_status(LIMIT, "the FN's link reported down", |s| {
            s["fn_exchange"]["link_error"].is_string() && s["network_status"] == "offline"
        })
        .await;
    assert_eq!(s["synced"], 0, "{s}");
    assert!(
        s["fn_exchange"]["not_sent"].as_i64().unwrap() >= 1,
        "as last seen by the worker: {s}"
    );
    assert_eq!(s["dlq_size"], 0, "waiting for the FN is not a failed attempt");
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("kkt_fn_unsent_documents ") && metrics.contains("kkt_fn_link_up 0"),
        "{metrics}"
    );
    // The FN reaches the OFD again: every receipt is confirmed.
    atol.set_faults(Faults::default());
    t.admin_post("/v1/kkt/buffer/sync", Some(&t.token)).await;
    let s = t
        .wait_status(LIMIT, "all confirmed by the FN", |s| s["synced"] == 6)
        .await;
    assert_eq!(s["fn_exchange"]["not_sent"], 0, "{s}");
}
