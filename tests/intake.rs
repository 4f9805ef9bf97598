//! Phase 1 over HTTP: the seed's and the original's bodies, every error code, idempotency
//! (replay byte for byte, reuse, in flight, concurrency), restarts, and the local guards.

use futures::future::join_all;
use kkt_tests::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn the_seeds_curl_body_is_printed_and_answered_at_once() {
    let t = TestApp::start().await;
    let r = t.post_receipt(Some("seed-1"), SEED_BODY).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "printed");
    assert_eq!(v["sync_status"], "pending");
    assert_eq!(v["message"], "Receipt printed successfully");
    let doc = &v["fiscal_doc"];
    assert_eq!(doc["fiscal_doc_number"], 2, "document 1 opened the shift");
    let sign = doc["fiscal_sign"].as_str().unwrap();
    assert!(
        sign.len() <= 10 && sign.bytes().all(|b| b.is_ascii_digit()),
        "FP is decimal: {sign}"
    );
    assert_eq!(doc["fn_number"], "9999999999999999");
    assert_eq!(doc["shift_number"], 1);
    assert!(text.contains(r#""total":100.00"#), "money keeps two decimals: {text}");
    let qr = doc["qr_code_data"].as_str().unwrap();
    assert!(
        qr.starts_with("t=")
            && qr.contains(&format!("&s=100.00&fn=9999999999999999&i=2&fp={sign}&"))
            && qr.ends_with("&n=1"),
        "{qr}"
    );
    uuid::Uuid::parse_str(v["receipt_id"].as_str().unwrap()).unwrap();
}

#[tokio::test]
async fn the_original_adapters_body_with_quantity_total_and_vat_is_accepted() {
    let t = TestApp::start().await;
    let v = t.receipt(ORIGINAL_BODY).await;
    assert_eq!(v["fiscal_doc"]["total"].as_f64(), Some(405.97));
    let (code, r) = t
        .get(&format!("/v1/kkt/receipt/{}", v["receipt_id"].as_str().unwrap()))
        .await;
    assert_eq!(code, 200);
    assert_eq!(r["request"]["items"][1]["quantity"].as_f64(), Some(0.35));
    // The stored receipt speaks FFD 1.2: vat_rate 22 is vat22, its VAT computed.
    assert_eq!(r["request"]["items"][1]["vat"], "vat22");
    assert_eq!(r["request"]["items"][1]["vat_amount"].as_f64(), Some(56.8)); // 314.97 × 22/122 = 56.797…
    assert_eq!(r["request"]["items"][0]["vat"], "vat10");
}

#[tokio::test]
async fn a_missing_or_invalid_idempotency_key_is_a_400() {
    let t = TestApp::start().await;
    for key in [None, Some("has space"), Some(&*"k".repeat(256))] {
        let r = t.post_receipt(key, SEED_BODY).await;
        assert_eq!(r.status(), 400, "{key:?}");
        let v: Value = r.json().await.unwrap();
        assert!(v["code"].as_str().unwrap().starts_with("idempotency_key"), "{v}");
        assert!(v["message"].is_string());
    }
    assert_eq!(t.post_receipt(Some(&"k".repeat(255)), SEED_BODY).await.status(), 200);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415() {
    let t = TestApp::start().await;
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"] {
        let r = t
            .client
            .post(t.url("/v1/kkt/receipt"))
            .header("Idempotency-Key", "a")
            .header("Content-Type", ct)
            .body(SEED_BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unsupported_media_type");
    }
    let r = t
        .client
        .post(t.url("/v1/kkt/receipt"))
        .header("Idempotency-Key", "b")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let t = TestApp::start().await;
    let big = format!(r#"{{"pos_id":"P","pad":"{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let r = t.post_receipt(Some("big"), &big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "payload_too_large");
}

#[tokio::test]
async fn validation_errors_are_422_and_name_each_field() {
    let t = TestApp::start().await;
    let body = r#"{"pos_id":"POS-1","type":"sale","items":[{"name":"A","price":0,"qty":1},{"name":"B","price":1.005,"quantity":1}],"payments":[{"type":"cash","amount":"x"}]}"#;
    let r = t.post_receipt(Some("v1"), body).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "validation_error");
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["items[0].price", "items[1].price", "payments[0].amount"]);
    let mismatch = r#"{"pos_id":"P","type":"sale","items":[{"name":"A","price":10,"qty":1}],"payments":[{"type":"card","amount":20}]}"#;
    let v: Value = t.post_receipt(Some("v2"), mismatch).await.json().await.unwrap();
    assert_eq!(v["details"][0]["field"], "payments");
    let (_, s) = t.get("/v1/kkt/buffer/status").await;
    assert_eq!(s["total_receipts"], 0, "nothing stored for invalid requests");
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_json_error() {
    let t = TestApp::start().await;
    for body in ["{", "[1,2]", "", "{\"pos_id\": }", &"[".repeat(10_000)] {
        let r = t.post_receipt(Some("m"), body).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "malformed_json");
    }
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_original_answer_byte_for_byte() {
    let t = TestApp::start().await;
    let first = t.post_receipt(Some("same"), SEED_BODY).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.bytes().await.unwrap();
    // Wait until it is synced: the replay must still be the original answer ("pending").
    t.wait_status(Duration::from_secs(10), "synced", |s| s["synced"] == 1)
        .await;
    let again = t.post_receipt(Some("same"), SEED_BODY).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first);
    assert_eq!(t.status().await["total_receipts"], 1, "nothing new stored or printed");
}

#[tokio::test]
async fn the_original_body_with_twenty_percent_on_a_sale_gets_a_clear_422() {
    let t = TestApp::start().await;
    let body = ORIGINAL_BODY.replace(r#""vat_rate":22"#, r#""vat_rate":20"#);
    let r = t.post_receipt(Some("vat20"), &body).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["details"][0]["field"], "items[1].vat_rate", "{v}");
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("22 % replaced 20 % on 2026-01-01"),
        "{v}"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_idempotency_key_reused() {
    let t = TestApp::start().await;
    assert_eq!(t.post_receipt(Some("k"), SEED_BODY).await.status(), 200);
    let r = t.post_receipt(Some("k"), ORIGINAL_BODY).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn a_request_while_the_first_with_its_key_is_in_flight_gets_409() {
    let t = TestApp::start_with(|s| s.kkt.print_latency = Duration::from_millis(600)).await;
    let first = t.post_receipt(Some("slow"), SEED_BODY);
    let second = async {
        // The first is in flight once its row is stored and the (600 ms) print has begun.
        t.wait_status(Duration::from_secs(5), "the first row stored", |s| {
            s["total_receipts"] == 1
        })
        .await;
        t.post_receipt(Some("slow"), SEED_BODY).await
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 409);
    assert_eq!(
        b.json::<Value>().await.unwrap()["code"],
        "idempotency_request_in_progress"
    );
}

#[tokio::test]
async fn a_till_that_gives_up_during_a_slow_print_never_gets_an_answer_a_replay_contradicts() {
    // The case from the field: a 2 s print, a till whose client times out after 0.5 s and
    // retries the same key at once, and a replay 3 s later.
    let t = TestApp::start_with(|s| s.kkt.print_latency = Duration::from_millis(2000)).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let post = |client: reqwest::Client| {
        client
            .post(t.url("/v1/kkt/receipt"))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", "dropped")
            .body(SEED_BODY)
            .send()
    };
    let first = post(impatient.clone()).await;
    assert!(first.is_err(), "the till gave up: {first:?}");
    let retry = post(t.client.clone()).await.unwrap();
    let (code, retry_body) = (retry.status().as_u16(), retry.bytes().await.unwrap());
    let retry_json: Value = serde_json::from_slice(&retry_body).unwrap();
    // Either 409 (still printing) or the final answer — never an interim "buffered".
    match code {
        409 => assert_eq!(retry_json["code"], "idempotency_request_in_progress"),
        200 => assert_eq!(retry_json["status"], "printed", "{retry_json}"),
        other => panic!("unexpected {other}: {retry_json}"),
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = post(t.client.clone()).await.unwrap();
    assert_eq!(later.status(), 200);
    assert_eq!(later.headers()["idempotent-replayed"], "true");
    let later_body = later.bytes().await.unwrap();
    let later_json: Value = serde_json::from_slice(&later_body).unwrap();
    assert_eq!(later_json["status"], "printed", "{later_json}");
    if code == 200 {
        assert_eq!(retry_body, later_body, "every replay is the same bytes");
    }
    let again = post(t.client.clone()).await.unwrap().bytes().await.unwrap();
    assert_eq!(again, later_body, "every replay is the same bytes");
    assert_eq!(t.status().await["total_receipts"], 1, "one sale, one receipt");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_exactly_one_receipt() {
    let t = TestApp::start().await;
    let answers = join_all((0..24).map(|_| t.post_receipt(Some("burst"), SEED_BODY))).await;
    let mut ids = std::collections::HashSet::new();
    for a in answers {
        match a.status().as_u16() {
            200 => {
                ids.insert(
                    a.json::<Value>().await.unwrap()["receipt_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(t.status().await["total_receipts"], 1);
}

#[tokio::test]
async fn replay_and_numbering_survive_a_restart_without_gaps() {
    let mut t = TestApp::start().await;
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(
            t.post_receipt(Some(&format!("r{i}")), SEED_BODY)
                .await
                .bytes()
                .await
                .unwrap(),
        );
    }
    t.restart().await;
    let replay = t.post_receipt(Some("r3"), SEED_BODY).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.bytes().await.unwrap(), answers[3]);
    let next = t.receipt(SEED_BODY).await;
    assert_eq!(
        next["fiscal_doc"]["fiscal_doc_number"], 7,
        "numbering continues, gap-free"
    );
}

#[tokio::test]
async fn at_capacity_intake_answers_503_buffer_full_with_retry_after() {
    let t = TestApp::start_with(|s| {
        s.buffer.capacity = 2;
        s.ofd_url = Some(dead_url());
    })
    .await;
    t.receipt(SEED_BODY).await;
    t.receipt(SEED_BODY).await;
    let r = t.post_receipt(Some("third"), SEED_BODY).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "buffer_full");
    assert_eq!(t.status().await["percent_full"], 100.0);
}

#[tokio::test]
async fn a_printer_failure_after_the_row_is_stored_answers_200_buffered() {
    let t = TestApp::start_with(|s| {
        // The slip folder's name is taken by a file, so the mock printer cannot print.
        std::fs::create_dir_all(&s.data_dir).unwrap();
        std::fs::write(s.data_dir.join("receipts"), "not a folder").unwrap();
    })
    .await;
    let v = t.receipt(SEED_BODY).await;
    assert_eq!(v["status"], "buffered");
    assert!(v["message"].as_str().unwrap().contains("printing failed"), "{v}");
    t.wait_status(Duration::from_secs(10), "buffered receipt still synced", |s| {
        s["synced"] == 1
    })
    .await;
}

#[tokio::test]
async fn a_receipt_shows_its_status_fiscal_document_and_history() {
    let t = TestApp::start().await;
    let v = t.receipt(SEED_BODY).await;
    let id = v["receipt_id"].as_str().unwrap();
    t.wait_status(Duration::from_secs(10), "synced", |s| s["synced"] == 1)
        .await;
    let (code, r) = t.get(&format!("/v1/kkt/receipt/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(r["status"], "synced");
    assert_eq!(r["retry_count"], 0);
    assert_eq!(r["fiscal_doc"], v["fiscal_doc"]);
    assert!(r["synced_at"].is_string() && r["created_at"].is_string());
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["receipt_added", "sync_started", "receipt_synced"]);
    let (code, e) = t.get("/v1/kkt/receipt/00000000-0000-0000-0000-000000000000").await;
    assert_eq!((code, e["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn events_are_paged_with_after_and_limit() {
    let t = TestApp::start_with(|s| s.ofd_url = Some(dead_url())).await;
    for _ in 0..3 {
        t.receipt(SEED_BODY).await;
    }
    let (_, p1) = t.get("/v1/kkt/buffer/events?limit=2").await;
    assert_eq!(p1["events"].as_array().unwrap().len(), 2);
    let after = p1["next_after"].as_i64().unwrap();
    let (_, p2) = t.get(&format!("/v1/kkt/buffer/events?after={after}&limit=100")).await;
    assert!(p2["events"][0]["id"].as_i64().unwrap() > after);
    let (code, bad) = t.get("/v1/kkt/buffer/events?after=abc").await;
    assert_eq!((code, bad["code"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn health_and_status_say_demo_plainly_with_the_built_in_simulator() {
    let t = TestApp::start().await;
    let (code, h) = t.get("/v1/health").await;
    assert_eq!(code, 200);
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["mode"], "demo");
    for c in ["buffer", "circuit_breaker", "database", "worker"] {
        assert_eq!(h["components"][c]["status"], "healthy", "{c}");
    }
    let s = t.status().await;
    assert_eq!(s["mode"], "demo");
    for key in [
        "total_capacity",
        "current_queued",
        "percent_full",
        "network_status",
        "total_receipts",
        "pending",
        "synced",
        "failed",
        "dlq_size",
        "syncing",
        "oldest_pending_at",
        "oldest_pending_age_seconds",
        "last_sync_at",
        "breaker",
        "worker",
    ] {
        assert!(s.get(key).is_some(), "{key} missing");
    }
    assert_eq!(s["network_status"], "online");
    assert_eq!(s["breaker"]["state"], "closed");
    assert_eq!(s["worker"]["running"], true);
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_and_no_cors_is_granted() {
    let t = TestApp::start().await;
    let r = t.get_with("/v1/health", &[("Host", "attacker.example")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "forbidden");
    let r = t.get_with("/v1/health", &[("Origin", "http://attacker.example")]).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = t.get_with("/v1/health", &[("Host", "localhost:8000")]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_with_json_errors() {
    let t = TestApp::start().await;
    let (code, v) = t.get("/v1/nothing").await;
    assert_eq!((code, v["code"].as_str()), (404, Some("route_not_found")));
    let r = t.client.delete(t.url("/v1/kkt/receipt")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "method_not_allowed");
}

#[tokio::test]
async fn the_web_ui_is_served_with_its_test_hooks() {
    let t = TestApp::start().await;
    let r = t.client.get(t.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    for hook in [
        "pending-count",
        "synced-count",
        "dlq-count",
        "breaker-state",
        "network-status",
        "oldest-pending-age",
        "sync-now",
        "dlq-retry-all",
    ] {
        assert!(html.contains(&format!("data-testid=\"{hook}\"")), "{hook} missing");
    }
    let js = t.client.get(t.url("/ui/app.js")).send().await.unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.text().await.unwrap().contains("dlq-retry"));
    assert_eq!(t.client.get(t.url("/ui/style.css")).send().await.unwrap().status(), 200);
    let (code, v) = t.get("/ui/secrets.txt").await;
    assert_eq!((code, v["code"].as_str()), (404, Some("not_found")));
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(t.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/ui/");
    let (_, latest) = t.get("/v1/kkt/buffer/events?latest=5").await;
    assert!(latest["events"].is_array());
}
