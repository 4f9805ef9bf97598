//! Web POS pages calling the vendor fronts from the till's browser (docs/contract.md §13 "Web
//! pages (CORS)", `[compat] allowed_origins`): what the adapter answers a browser's preflight and
//! a page's request, on the main listener and on a vendor's port. A real browser's side of it:
//! tests/e2e/cors.test.mjs.

use kkt_tests::*;
use serde_json::{Value, json};

/// A kkmserver check of one loaf of bread for cash, under a new `IdCommand`.
fn register_check() -> Value {
    json!({"Command": "RegisterCheck", "IdCommand": uuid::Uuid::new_v4().to_string(), "Cash": 50,
        "CheckStrings": [{"Register": {"Name": "Хлеб", "Quantity": 1, "Price": 50, "Amount": 50, "Tax": 10,
                                       "SignMethodCalculation": 4, "SignCalculationObject": 1}}]})
}

/// A web POS or CRM page calling the front from the till's browser (kkmserver's own JavaScript
/// client does so): its origin in `[compat] allowed_origins` gets CORS on the fronts' routes,
/// on the main listener and on the vendor's port; any other origin, and that one on the native
/// routes, stays refused.
#[tokio::test]
async fn a_web_pos_page_of_an_allowed_origin_calls_the_fronts_and_nothing_else() {
    const PAGE: &str = "https://crm.example.ru";
    let t = TestApp::start_with(|s| {
        s.compat.allowed_origins = vec!["HTTPS://CRM.example.ru:443/".to_string().try_into().unwrap()];
        s.compat.kkmserver_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let vendor = t.app().front_addr(kkt_core::api::Front::Kkmserver).unwrap();
    for base in [t.url(""), format!("http://{vendor}")] {
        // The browser's preflight: kkmserver's client sends Authorization and JSON.
        let r = t
            .client
            .request(reqwest::Method::OPTIONS, format!("{base}/Execute"))
            .header("Origin", PAGE)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type")
            .header("Access-Control-Request-Private-Network", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], PAGE);
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        let allowed = h["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert_eq!(h["access-control-allow-private-network"], "true");

        let r = t
            .client
            .post(format!("{base}/Execute"))
            .header("Origin", PAGE)
            .json(&register_check())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], PAGE);
        assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
        let a: Value = r.json().await.unwrap();
        assert_eq!(a["Status"], 0, "{a}");

        // Another page: refused before anything runs, and told nothing it could read.
        let r = t
            .client
            .post(format!("{base}/Execute"))
            .header("Origin", "https://crm.example.ru.evil.example")
            .json(&register_check())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{base}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    assert_eq!(
        t.receipts().await.len(),
        2,
        "one check per listener, none for the other page"
    );

    // ATOL's front too (a job not found is still an answer the page may read).
    let r = t
        .client
        .get(t.url("/api/v2/requests/0a1b2c3d-0000-4000-8000-000000000000"))
        .header("Origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["access-control-allow-origin"], PAGE);
    // The native intake and reads stay closed to the page.
    let r = t
        .client
        .post(t.url("/v1/kkt/receipt"))
        .header("Origin", PAGE)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(
            &json!({"pos_id": "POS-1", "type": "sale", "items": [{"name": "x", "price": 1, "qty": 1}],
                      "payments": [{"type": "cash", "amount": 1}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = t
        .client
        .get(t.url("/v1/kkt/shift"))
        .header("Origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn without_allowed_origins_the_fronts_answer_no_preflight() {
    let t = TestApp::start().await;
    let r = t
        .client
        .request(reqwest::Method::OPTIONS, t.url("/Execute"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = t
        .client
        .post(t.url("/Execute"))
        .header("Origin", "https://crm.example.ru")
        .json(&json!({"Command": "GetDataKKT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
