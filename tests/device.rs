//! `GET /v1/kkt/device` (docs/contract.md §11, issue 20): the register's own state — model,
//! serial, FFD, the FN and its validity, the shift, paper, the FN's unsent documents and the
//! cash in the drawer — from the mock register and from `mock-atol` answering as the ATOL
//! driver's tasks do (S1 `json_getDeviceInfo.js`, `json_getDeviceStatus.js`, `json_getFnInfo.js`,
//! `json_ofdExchangeStatus.js`, `json_getShiftTotals.js`).

use kkt_core::kkt::MockFaults;
use kkt_tests::*;
use mock_atol::Faults;
use serde_json::{Value, json};
use std::time::Duration;

fn with(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(SEED_BODY).unwrap();
    edit(&mut v);
    v.to_string()
}

#[tokio::test]
async fn the_mock_register_reports_its_shift_paper_and_the_cash_its_receipts_put_in_the_drawer() {
    // The tills' rules, as for receipts: with a POS token set, no token is no answer.
    const TILL: &str = "till-token-0123456789abcdef0123456789";
    let t = TestApp::start_with(|s| s.http.pos_token = Some(TILL.into())).await;
    let r = t.client.get(t.url("/v1/kkt/device")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the tills' and the manager's, not anyone's");
    let r = t
        .client
        .get(t.url("/v1/kkt/device"))
        .bearer_auth(TILL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a till reads it");
    let (code, d) = t.get("/v1/kkt/device").await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(
        (
            d["shift"].as_str(),
            d["cash_in_drawer"].as_f64(),
            d["paper_present"].as_bool()
        ),
        (Some("closed"), Some(0.0), Some(true)),
        "{d}"
    );
    let sell = |body: String| {
        let t = &t;
        async move {
            let key = uuid::Uuid::new_v4().to_string();
            let r = t.post_receipt_as(TILL, &key, &body).await;
            assert_eq!(r.status(), 200, "{body}");
        }
    };
    sell(SEED_BODY.into()).await; // 100 in cash
    sell(SEED_BODY.into()).await; // 100 in cash
    sell(with(|v| v["type"] = json!("sale_refund"))).await; // 100 back out
    sell(with(|v| v["payments"][0]["type"] = json!("card"))).await; // not in the drawer
    sell(with(|v| {
        // 500 handed over for 100: 400 change, 100 stays
        v["payments"][0]["amount"] = json!(500);
    }))
    .await;
    let (_, d) = t.get("/v1/kkt/device").await;
    assert_eq!(
        (
            d["shift"].as_str(),
            d["shift_number"].as_i64(),
            d["cash_in_drawer"].as_f64(),
            d["fn_number"].as_str(),
            d["ffd_version"].as_str()
        ),
        (
            Some("open"),
            Some(1),
            Some(200.0),
            Some(t.settings.kkt.fn_number.as_str()),
            Some("1.2")
        ),
        "{d}"
    );
    assert!(d["model"].as_str().unwrap().contains("mock"), "{d}");
    t.app().mock_kkt().unwrap().set_faults(MockFaults {
        paper_out: true,
        ..MockFaults::default()
    });
    let (_, d) = t.get("/v1/kkt/device").await;
    assert_eq!(d["paper_present"], false, "{d}");
}

#[tokio::test]
async fn the_atol_register_reports_model_fn_validity_unsent_documents_and_the_drawer() {
    let (atol, t) = TestApp::start_on_atol(Duration::from_millis(10), |_| {}).await;
    atol.set_faults(Faults {
        ofd_down: true,
        ..Faults::default()
    });
    t.receipt(SEED_BODY).await;
    t.receipt(&with(|v| v["payments"][0]["amount"] = json!(150))).await; // 50 change
    let (code, d) = t.get("/v1/kkt/device").await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(
        (
            d["model"].as_str(),
            d["fn_number"].as_str(),
            d["shift"].as_str(),
            d["cash_in_drawer"].as_f64(),
            d["paper_present"].as_bool(),
            d["fn_phase"].as_str()
        ),
        (
            Some("АТОЛ 30Ф (эмулятор)"),
            Some("7380440700000001"),
            Some("open"),
            Some(200.0),
            Some(true),
            Some("fiscalMode")
        ),
        "{d}"
    );
    assert!(
        d["fn_valid_until"].is_string() && d["serial"].as_str().is_some_and(|s| !s.is_empty()),
        "{d}"
    );
    // The OFD is down: the shift's opening and both receipts wait in the FN.
    assert_eq!(
        (d["fn_unsent"].as_i64(), d["fn_unsent_first"].as_i64()),
        (Some(3), Some(1)),
        "{d}"
    );
    atol.set_faults(Faults {
        paper_out: true,
        ..Faults::default()
    });
    let (_, d) = t.get("/v1/kkt/device").await;
    assert_eq!(
        (d["paper_present"].as_bool(), d["fn_unsent"].as_i64()),
        (Some(false), Some(0)),
        "{d}"
    );
}
