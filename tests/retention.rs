//! Bounded growth and LAN mode: synced receipts and old events are purged after the retention,
//! DLQ entries and waiting receipts are kept, numbering goes on; a non-loopback address needs a
//! POS token and receipt calls without it are refused.

use kkt_tests::*;
use std::time::Duration;

/// An adapter whose retention is 300 ms (purged every 100 ms) and whose OFD rejects `POS-BAD`.
async fn short_retention_rejecting_pos_bad() -> (mock_ofd::MockOfd, TestApp) {
    short_retention_rejecting_pos_bad_with(|_| {}).await
}

/// The same, with more settings.
async fn short_retention_rejecting_pos_bad_with(
    more: impl FnOnce(&mut kkt_core::Settings),
) -> (mock_ofd::MockOfd, TestApp) {
    let ofd = mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        reject_pos_ids: vec!["POS-BAD".into()],
        ..Default::default()
    });
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(ofd.url());
        s.buffer.retention = Duration::from_millis(300);
        s.buffer.purge_interval = Duration::from_millis(100);
        more(s);
    })
    .await;
    (ofd, t)
}

#[tokio::test]
async fn synced_receipts_and_their_events_are_purged_after_the_retention_but_the_dlq_is_kept() {
    let (_ofd, mut t) = short_retention_rejecting_pos_bad().await;
    for _ in 0..3 {
        t.receipt(SEED_BODY).await;
    }
    let bad = t.receipt(&SEED_BODY.replace("POS-001", "POS-BAD")).await;
    let bad_id = bad["receipt_id"].as_str().unwrap();
    let s = t
        .wait_status(Duration::from_secs(20), "3 purged, 1 kept in the DLQ", |s| {
            n(s, "dlq_size") == 1 && n(s, "total_receipts") == 1 && n(s, "synced") == 0
        })
        .await;
    assert_eq!(n(&s, "failed"), 1);
    let (code, kept) = t.get(&format!("/v1/kkt/receipt/{bad_id}")).await;
    assert_eq!(code, 200);
    assert!(
        !kept["events"].as_array().unwrap().is_empty(),
        "a DLQ entry keeps its history: {kept}"
    );
    // The purge's own event is purged too once it is older than the retention, and the next
    // round logs a new one, a moment later: wait for it rather than read once.
    let page = wait_for(Duration::from_secs(10), "a buffer_purged event", || async {
        let (_, page) = t.get("/v1/kkt/buffer/events?limit=1000").await;
        let any = page["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["event_type"] == "buffer_purged"));
        any.then_some(page)
    })
    .await;
    let events = page["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event_type"] == "buffer_purged"), "{page}");
    assert!(
        events
            .iter()
            .all(|e| e["receipt_id"].is_null() || e["receipt_id"] == bad_id),
        "events of purged receipts are gone: {page}"
    );
    // Fiscal numbering is not affected by the purge, and survives a restart after it.
    t.restart().await;
    let next = t.receipt(SEED_BODY).await;
    assert_eq!(
        next["fiscal_doc"]["fiscal_doc_number"], 6,
        "document 1 opened the shift"
    );
}

#[tokio::test]
async fn lan_mode_needs_a_pos_token_and_receipt_calls_without_it_are_refused() {
    let refused = kkt_core::App::build({
        let mut s = settings(tempfile::tempdir().unwrap().path());
        s.listen = "0.0.0.0:0".parse().unwrap();
        s
    })
    .await;
    let err = format!("{:#}", refused.err().expect("no POS token, no LAN mode"));
    assert!(err.contains("POS token"), "{err}");

    let t = TestApp::start_with(|s| {
        s.listen = "0.0.0.0:0".parse().unwrap();
        s.http.pos_token = Some("till-secret-0123456789abcdef-0123456789".into());
    })
    .await;
    // The tills reach the machine by an address: any IP literal is a valid Host on 0.0.0.0.
    let url = t.url("/v1/kkt/receipt");
    let post = |token: Option<&str>, key: &str| {
        let mut r = t
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .body(SEED_BODY);
        if let Some(tok) = token {
            r = r.bearer_auth(tok);
        }
        r.send()
    };
    for token in [None, Some("wrong"), Some("till-secret-0123456789abcdef-0123456789 ")] {
        let r = post(token, "k1").await.unwrap();
        let code = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        if token == Some("till-secret-0123456789abcdef-0123456789 ") {
            // Surrounding blanks are trimmed from the header value: this is the right token.
            assert_eq!(code, 200, "{body}");
        } else {
            assert_eq!(code, 401, "{token:?}: {body}");
            assert_eq!(body["code"], "unauthorized");
        }
    }
    let r = post(Some("till-secret-0123456789abcdef-0123456789"), "k2")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {}", t.token);
    let admin = [("Authorization", bearer.as_str())];
    let path = format!("/v1/kkt/receipt/{id}");
    assert_eq!(t.get_with(&path, &[]).await.status(), 401);
    assert_eq!(
        t.get_with(&path, &admin).await.status(),
        200,
        "the admin token reads too"
    );
    // The DLQ and the event log name receipts: token needed. Counters stay readable.
    for path in ["/v1/kkt/dlq", "/v1/kkt/buffer/events"] {
        assert_eq!(t.get_with(path, &[]).await.status(), 401, "{path}");
        assert_eq!(t.get_with(path, &admin).await.status(), 200, "{path}");
    }
    assert_eq!(t.get_with("/v1/kkt/buffer/status", &[]).await.status(), 200);
    // A page of another address may not call; the adapter's own page (Origin = Host) may.
    // (Host and Origin carry the adapter's own port: an Origin is compared in full.)
    let port = t.app().local_addr().port();
    let host = format!("192.0.2.10:{port}");
    let foreign = [("Host", host.as_str()), ("Origin", "http://203.0.113.7")];
    assert_eq!(t.get_with("/v1/kkt/buffer/status", &foreign).await.status(), 403);
    let own_origin = format!("http://192.0.2.10:{port}");
    let own = [("Host", host.as_str()), ("Origin", own_origin.as_str())];
    assert_eq!(t.get_with("/v1/kkt/buffer/status", &own).await.status(), 200);
    // A foreign host name is still refused.
    let rebinding = t.get_with("/v1/health", &[("Host", "evil.example")]).await;
    assert_eq!(rebinding.status(), 403);
}

#[tokio::test]
async fn a_dlq_entry_past_retention_loses_its_personal_data_and_stays() {
    let (_ofd, t) = short_retention_rejecting_pos_bad().await;
    let body = SEED_BODY.replace("POS-001", "POS-BAD").replace(
        r#""type":"sale","#,
        r#""type":"sale","customer":{"phone":"+79001234567"},"cashier":{"name":"Петрова","inn":"500100732259"},"#,
    );
    let bad = t.receipt(&body).await;
    let id = bad["receipt_id"].as_str().unwrap();
    let path = format!("/v1/kkt/receipt/{id}");
    let kept = wait_for(Duration::from_secs(20), "the contact removed", || async {
        let (_, v) = t.get(&path).await;
        (v["status"] == "failed" && v["request"].get("customer").is_none()).then_some(v)
    })
    .await;
    assert_eq!(
        kept["request"]["cashier"]["name"], "Петрова",
        "the name stays, the INN goes: {kept}"
    );
    assert!(kept["request"]["cashier"].get("inn").is_none(), "{kept}");
    assert!(!kept.to_string().contains("+79001234567") && !kept.to_string().contains("500100732259"));
    assert!(
        kept["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event_type"] == "personal_data_removed"),
        "{kept}"
    );
    assert_eq!(n(&t.status().await, "dlq_size"), 1, "the entry itself stays in the DLQ");
}

#[tokio::test]
async fn a_fronts_job_is_purged_with_its_receipt_and_kept_while_its_receipt_is() {
    use serde_json::json;
    let (_ofd, t) = short_retention_rejecting_pos_bad_with(|s| s.compat.atol_pos_id = "POS-BAD".into()).await;
    // An ATOL sale whose receipt the OFD rejects (kept in the DLQ) and a kkmserver sale it takes.
    let sale = json!({"uuid": "kept-with-its-receipt", "request": [{"type": "sell",
        "items": [{"type": "position", "name": "Хлеб", "price": 50, "quantity": 1, "amount": 50, "tax": {"type": "vat10"}}],
        "payments": [{"type": "cash", "sum": 50}]}]});
    assert_eq!(t.post_json("/api/v2/requests", &sale).await.0, 201);
    let check = json!({"Command": "RegisterCheck", "IdCommand": "gone-with-its-receipt", "Cash": 50, "CheckStrings":
        [{"Register": {"Name": "Хлеб", "Quantity": 1, "Price": 50, "Amount": 50, "Tax": 10,
                       "SignMethodCalculation": 4, "SignCalculationObject": 1}}]});
    let (_, a) = t.post_json("/Execute", &check).await;
    assert_eq!(a["Status"], 0, "{a}");
    let rezult = json!({"Command": "GetRezult", "IdCommand": "gone-with-its-receipt"});
    wait_for(
        Duration::from_secs(20),
        "the synced receipt's command purged",
        || async {
            let (_, a) = t.post_json("/Execute", &rezult).await;
            (a["Status"] == 3).then_some(())
        },
    )
    .await;
    let (code, kept) = t.get("/api/v2/requests/kept-with-its-receipt").await;
    assert_eq!(code, 200, "the job stays while its receipt is in the DLQ: {kept}");
    assert_eq!(kept["results"][0]["status"], "ready", "{kept}");
}
