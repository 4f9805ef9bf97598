//! Issue 19, who reads what: each token (admin, read, a till's own, the shared POS token, none)
//! against each route, from loopback and from a LAN address — the address set on the request by
//! hand, through the router, since every test server here listens on loopback; wrong tokens
//! throttled; security headers; CSV formulas; private files; tokens and OFD URLs checked at start.

use axum::body::Body;
use axum::http::Request;
use kkt_core::api::Peer;
use kkt_tests::{SEED_BODY, TestApp};
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

const TILL_1: &str = "till-one-token-0123456789abcdef-0123456";
const TILL_2: &str = "till-two-token-0123456789abcdef-0123456";
const SHARED: &str = "shared-pos-token-0123456789abcdef-01234";
const READER: &str = "reader-token-0123456789abcdef-0123456789";

async fn call(
    t: &TestApp,
    peer: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "127.0.0.1:8000");
    if let Some(tok) = token {
        r = r.header("Authorization", format!("Bearer {tok}"));
    }
    let mut r = match body {
        Some(b) => r
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => r.body(Body::empty()).unwrap(),
    };
    r.extensions_mut().insert(Peer(peer.parse().unwrap()));
    let answer = t.app().router().oneshot(r).await.unwrap();
    let status = answer.status().as_u16();
    let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn body(pos: &str) -> String {
    SEED_BODY.replace("POS-001", pos).replace(
        r#""type":"sale","#,
        r#""type":"sale","customer":{"email":"buyer@example.ru"},"cashier":{"name":"Иванова","inn":"500100732259"},"#,
    )
}

#[tokio::test]
async fn who_reads_what_per_token_and_peer() {
    let t = TestApp::start_with(|s| {
        s.http.pos_tokens.insert("POS-001".into(), TILL_1.into());
        s.http.pos_tokens.insert("POS-002".into(), TILL_2.into());
        s.http.pos_token = Some(SHARED.into());
        s.http.read_token = Some(READER.into());
    })
    .await;
    let lan = "192.168.1.10:40000";
    let local = "127.0.0.1:40000";
    // Intake: a till's own token for its own pos_id only; the shared one for any; never the reader's.
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/receipt", Some(TILL_1), Some(&body("POS-001")))
            .await
            .0,
        200
    );
    let (code, v) = call(&t, lan, "POST", "/v1/kkt/receipt", Some(TILL_1), Some(&body("POS-002"))).await;
    assert_eq!((code, v["code"].as_str()), (403, Some("pos_id_mismatch")), "{v}");
    let (_, two) = call(&t, lan, "POST", "/v1/kkt/receipt", Some(TILL_2), Some(&body("POS-002"))).await;
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/receipt", Some(SHARED), Some(&body("POS-003")))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/receipt", Some(READER), Some(&body("POS-003")))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/receipt", None, Some(&body("POS-003")))
            .await
            .0,
        401
    );
    // With POS tokens configured, loopback needs one too (LAN mode).
    assert_eq!(
        call(&t, local, "POST", "/v1/kkt/receipt", None, Some(&body("POS-003")))
            .await
            .0,
        401
    );

    // A receipt: whole to its own till, the reader and the admin; "not found" to another till;
    // without the customer and cashier to the shared token.
    let path = format!("/v1/kkt/receipt/{}", two["receipt_id"].as_str().unwrap());
    for tok in [TILL_2, READER, t.token.as_str()] {
        let (code, v) = call(&t, lan, "GET", &path, Some(tok), None).await;
        assert_eq!(code, 200);
        assert_eq!(v["request"]["customer"]["email"], "buyer@example.ru");
    }
    assert_eq!(call(&t, lan, "GET", &path, Some(TILL_1), None).await.0, 404);
    let (code, v) = call(&t, lan, "GET", &path, Some(SHARED), None).await;
    assert_eq!(code, 200);
    assert!(
        v["request"].get("customer").is_none() && v["request"].get("cashier").is_none(),
        "{v}"
    );
    assert!(!v.to_string().contains("buyer@example.ru") && !v.to_string().contains("500100732259"));
    assert_eq!(call(&t, lan, "GET", &path, None, None).await.0, 401);

    // Personal-data reads: the admin and the read token only, from anywhere.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let personal = [
        format!("{path}/slip"),
        format!("{path}/qr.svg"),
        "/v1/kkt/receipts?pos_id=POS-002".into(),
        format!("/v1/kkt/receipts.csv?date={today}"),
        "/v1/kkt/dlq.csv".into(),
        "/v1/kkt/buffer/events".into(),
        "/v1/kkt/dlq".into(),
        "/v1/kkt/review".into(),
    ];
    for p in &personal {
        for peer in [lan, local] {
            for tok in [None, Some(TILL_1), Some(SHARED)] {
                assert_eq!(
                    call(&t, peer, "GET", p, tok, None).await.0,
                    401,
                    "{p} from {peer} with {tok:?}"
                );
            }
            for tok in [READER, t.token.as_str()] {
                assert_eq!(
                    call(&t, peer, "GET", p, Some(tok), None).await.0,
                    200,
                    "{p} from {peer}"
                );
            }
        }
    }
    // Counter operations (docs/contract.md §11): the tills' rules, as for receipts; a till's own
    // token copies only its own receipts.
    for tok in [TILL_1, SHARED, t.token.as_str()] {
        assert_eq!(
            call(&t, lan, "POST", "/v1/kkt/drawer/open", Some(tok), Some("{}"))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/drawer/open", Some(READER), Some("{}"))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&t, lan, "POST", "/v1/kkt/drawer/open", None, Some("{}")).await.0,
        401
    );
    assert_eq!(
        call(&t, local, "POST", "/v1/kkt/report/x", None, Some("{}")).await.0,
        401
    );
    let copy = format!("{path}/copy");
    assert_eq!(call(&t, lan, "POST", &copy, Some(TILL_1), Some("{}")).await.0, 404);
    assert_eq!(call(&t, lan, "POST", &copy, Some(TILL_2), Some("{}")).await.0, 200);
    // Changes: the admin token only.
    for tok in [None, Some(READER), Some(TILL_1), Some(SHARED)] {
        assert_eq!(call(&t, local, "POST", "/v1/kkt/dlq/retry", tok, None).await.0, 401);
    }
    assert_eq!(
        call(&t, local, "POST", "/v1/kkt/dlq/retry", Some(&t.token), None)
            .await
            .0,
        200
    );
    // From the network, only health and metrics are open; the rest needs a token.
    for p in ["/v1/health", "/metrics"] {
        assert_eq!(call(&t, lan, "GET", p, None, None).await.0, 200, "{p}");
    }
    for p in [
        "/v1/kkt/buffer/status",
        "/v1/kkt/worker/status",
        "/v1/kkt/shift",
        "/v1/kkt/activity",
        "/ui/",
        "/openapi.json",
    ] {
        assert_eq!(call(&t, lan, "GET", p, None, None).await.0, 401, "{p}");
        assert_eq!(call(&t, lan, "GET", p, Some(TILL_1), None).await.0, 200, "{p}");
        assert_eq!(call(&t, local, "GET", p, None, None).await.0, 200, "{p}");
    }
    // The window shows the shared POS token to the admin for the tills' set-up.
    let (code, v) = call(&t, local, "GET", "/v1/kkt/pos-token", Some(&t.token), None).await;
    assert_eq!(
        (code, v["shared"].as_str(), v["required"].as_bool()),
        (200, Some(SHARED), Some(true))
    );
    assert_eq!(v["tills"], json!(["POS-001", "POS-002"]));
    assert_eq!(
        call(&t, local, "GET", "/v1/kkt/pos-token", Some(READER), None).await.0,
        401
    );
}

#[tokio::test]
async fn the_defaults_keep_the_seeds_curl_and_require_pos_token_closes_loopback() {
    // Defaults: the seed's curl (no token) works on loopback and reads back its till view.
    let t = TestApp::start().await;
    let r = t.post_receipt(Some("seed"), SEED_BODY).await;
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["receipt_id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = t.get_with(&format!("/v1/kkt/receipt/{id}"), &[]).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(t.get_with("/v1/kkt/buffer/events", &[]).await.status(), 401);
    drop(t);

    // require_pos_token without a token given: one is generated (0600) and the window shows it.
    let t = TestApp::start_with(|s| s.http.require_pos_token = true).await;
    assert_eq!(t.post_receipt(Some("k"), SEED_BODY).await.status(), 401);
    let (_, p) = t.get("/v1/kkt/pos-token").await;
    let token = p["shared"].as_str().expect("generated").to_string();
    assert_eq!(token.len(), 64);
    let file = t.settings.config_dir.join("pos_token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    assert_eq!(t.post_receipt_as(&token, "k", SEED_BODY).await.status(), 200);
}

#[tokio::test]
async fn wrong_tokens_from_a_lan_address_are_throttled_and_loopback_is_not() {
    let t = TestApp::start_with(|s| s.http.pos_token = Some(SHARED.into())).await;
    let wrong = "wrong-token-0123456789abcdef-0123456789ab";
    let lan = "192.168.1.77:5000";
    for _ in 0..10 {
        assert_eq!(call(&t, lan, "GET", "/v1/kkt/dlq", Some(wrong), None).await.0, 401);
    }
    let (code, v) = call(&t, lan, "GET", "/v1/kkt/dlq", Some(&t.token), None).await;
    assert_eq!((code, v["code"].as_str()), (429, Some("too_many_auth_failures")), "{v}");
    // Another address is not affected; neither is loopback, however many wrong tokens it sends.
    assert_eq!(
        call(&t, "192.168.1.78:5000", "GET", "/v1/kkt/dlq", Some(&t.token), None)
            .await
            .0,
        200
    );
    for _ in 0..15 {
        assert_eq!(
            call(&t, "127.0.0.1:1", "GET", "/v1/kkt/dlq", Some(wrong), None).await.0,
            401
        );
    }
    assert_eq!(
        call(&t, "127.0.0.1:1", "GET", "/v1/kkt/dlq", Some(&t.token), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let t = TestApp::start().await;
    for path in ["/v1/kkt/buffer/status", "/v1/health", "/v1/kkt/dlq"] {
        let r = t
            .get_with(path, &[("Authorization", &format!("Bearer {}", t.token))])
            .await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
    let r = t.get_with("/ui/", &[]).await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn csv_cells_that_would_run_as_formulas_are_text() {
    let ofd = kkt_tests::mock_ofd().await;
    ofd.set_faults(mock_ofd::Faults {
        reject_pos_ids: vec!["=HYPERLINK(\"http://x\";\"y\")".into()],
        reject_status: 422,
        ..Default::default()
    });
    let t = TestApp::start_with(|s| s.ofd_url = Some(ofd.url())).await;
    let evil = SEED_BODY.replace("POS-001", "=HYPERLINK(\\\"http://x\\\";\\\"y\\\")");
    let r = t.post_receipt(Some("evil-key"), &evil).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    t.wait_status(Duration::from_secs(10), "the receipt in the DLQ", |s| {
        s["dlq_size"] == 1
    })
    .await;
    let auth = format!("Bearer {}", t.token);
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    for path in [
        "/v1/kkt/dlq.csv".to_string(),
        format!("/v1/kkt/receipts.csv?date={today}"),
    ] {
        let text = t
            .get_with(&path, &[("Authorization", &auth)])
            .await
            .text()
            .await
            .unwrap();
        assert!(text.contains("'=HYPERLINK"), "{path}: {text}");
        assert!(
            !text.contains(";=HYPERLINK") && !text.contains("\n=HYPERLINK") && !text.contains(";\"=HYPERLINK"),
            "{path}: {text}"
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private_to_the_user_and_old_ones_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let set = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // What an older version left: a 0755 directory, a 0644 slip and a 0644 token file.
    let t = TestApp::start_with(|s| {
        set(&s.data_dir, 0o755);
        std::fs::write(s.data_dir.join("old-slip.txt"), "x").unwrap();
        set(&s.data_dir.join("old-slip.txt"), 0o644);
        std::fs::create_dir_all(&s.config_dir).unwrap();
        std::fs::write(s.config_dir.join("admin_token"), "a".repeat(64)).unwrap();
        set(&s.config_dir.join("admin_token"), 0o644);
    })
    .await;
    t.receipt(SEED_BODY).await;
    let data = &t.settings.data_dir;
    assert_eq!(mode(data), 0o700);
    assert_eq!(mode(&data.join("old-slip.txt")), 0o600);
    assert_eq!(mode(&t.settings.config_dir.join("admin_token")), 0o600);
    for entry in std::fs::read_dir(data).unwrap().flatten() {
        let p = entry.path();
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

#[tokio::test]
async fn short_tokens_and_clear_text_ofd_urls_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = kkt_tests::settings(dir.path());
    s.admin_token = Some("short".into());
    let e = kkt_core::App::build(s).await.err().expect("refused").to_string();
    assert!(e.contains("at least 32") && !e.contains("short\""), "{e}");
    let mut s = kkt_tests::settings(dir.path());
    s.http.pos_token = Some("x".repeat(40).into());
    s.http.read_token = Some("x".repeat(40).into());
    let e = kkt_core::App::build(s).await.err().expect("refused").to_string();
    assert!(e.contains("same token"), "{e}");
    let mut s = kkt_tests::settings(dir.path());
    s.ofd_url = Some("http://ofd.example.ru".into());
    let e = kkt_core::App::build(s).await.err().expect("refused").to_string();
    assert!(e.contains("https://"), "{e}");
}
