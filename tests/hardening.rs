//! Issue 19: the attacks of SECURITY.md, each sent as an attacker would — raw over TCP where the
//! socket is the attack, through the router with a LAN peer's address where only the address
//! matters (every test server here listens on loopback).

use axum::body::Body;
use axum::http::Request;
use kkt_core::api::Peer;
use kkt_tests::{SEED_BODY, TestApp, wait_for};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const TILL_1: &str = "till-one-token-0123456789abcdef-0123456";
const TILL_2: &str = "till-two-token-0123456789abcdef-0123456";
const SHARED: &str = "shared-pos-token-0123456789abcdef-01234";
const READER: &str = "reader-token-0123456789abcdef-0123456789";

fn addr(t: &TestApp) -> String {
    t.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the socket; `true` if it did within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_idle_sockets_than_the_cap_do_not_stop_a_till_and_are_closed_within_15_s() {
    // The defaults: 256 connections, a 10 s header timeout.
    let t = TestApp::start().await;
    let cap = t.settings.http.max_connections;
    assert_eq!(cap, 256);
    let opened = Instant::now();
    let mut idle = Vec::new();
    for i in 0..cap + 44 {
        let mut s = TcpStream::connect(addr(&t)).await.expect("connect");
        // Half send nothing; half start a request and stop (slowloris).
        if i % 2 == 1 {
            s.write_all(b"POST /v1/kkt/receipt HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    // A till's sale still goes through, at once.
    let started = Instant::now();
    let key = uuid::Uuid::new_v4().to_string();
    let r = t.post_receipt(Some(&key), SEED_BODY).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(took < Duration::from_secs(2), "the till waited {took:?}");
    // Every idle socket is closed by the server within 15 s of being opened.
    let mut still_open = 0;
    for s in &mut idle {
        let left = Duration::from_secs(15).saturating_sub(opened.elapsed());
        if !closed_within(s, left).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle sockets still open 15 s after they were opened");
    kkt_tests::report(
        "idle_sockets",
        json!({"idle_sockets": idle.len(), "cap": cap, "till_answer_ms": took.as_millis() as u64,
               "closed_within_s": opened.elapsed().as_secs_f64()}),
    );
}

#[tokio::test]
async fn a_body_trickled_past_its_deadline_gets_408() {
    let t = TestApp::start_with(|s| s.http.body_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    let head = format!(
        "POST /v1/kkt/receipt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Idempotency-Key: trickle\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        SEED_BODY.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&SEED_BODY.as_bytes()[..10]).await.unwrap();
    let mut out = Vec::new();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered")
        .ok();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(kkt_tests::n(&t.status().await, "total_receipts"), 0);
}

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
    let r = t
        .client
        .post(t.url("/v1/kkt/receipt"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", "k")
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
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

/// Sends a raw request and returns the answer's head and body as text.
async fn raw(t: &TestApp, request: &str) -> String {
    let mut s = TcpStream::connect(addr(t)).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn origins_are_compared_in_full_and_a_request_without_host_is_refused() {
    let t = TestApp::start().await;
    let port = t.app().local_addr().port();
    let get = |origin: String| {
        format!(
            "GET /v1/kkt/buffer/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
        )
    };
    assert!(
        raw(&t, &get(format!("http://127.0.0.1:{port}")))
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        raw(&t, &get(format!("http://localhost:{port}")))
            .await
            .starts_with("HTTP/1.1 200")
    );
    for foreign in [
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}"),
        "http://localhost".to_string(),
        "null".to_string(),
        "http://evil.example".to_string(),
    ] {
        let a = raw(&t, &get(foreign.clone())).await;
        assert!(a.starts_with("HTTP/1.1 403"), "{foreign}: {a}");
    }
    let a = raw(&t, "GET /v1/kkt/buffer/status HTTP/1.0\r\n\r\n").await;
    assert!(a.starts_with("HTTP/1.0 403") || a.starts_with("HTTP/1.1 403"), "{a}");
    assert!(a.contains("Host"), "{a}");
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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = data.join("old-slip.txt");
    std::fs::write(&old, "x").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = data.join("config");
    std::fs::create_dir(&config).unwrap();
    let token = config.join("admin_token");
    std::fs::write(&token, "a".repeat(64)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut s = kkt_tests::settings(&data);
    s.data_dir_explicit = true;
    let app = kkt_core::App::build(s).await.expect("starts");
    let key = "k";
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{}/v1/kkt/receipt", app.local_addr()))
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(SEED_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&old), 0o600);
    assert_eq!(mode(&token), 0o600);
    for entry in std::fs::read_dir(&data).unwrap().flatten() {
        let p = entry.path();
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    app.shutdown().await;
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

#[tokio::test]
async fn an_ofd_answer_that_never_ends_is_cut_and_the_receipt_is_still_delivered() {
    // An "OFD" that accepts, then streams its body for ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let streamed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = streamed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    )
                    .await;
                let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
                // Bounded: at most 64 MiB, 10 s.
                let until = Instant::now() + Duration::from_secs(10);
                for _ in 0..16_384 {
                    if Instant::now() > until || s.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                    count.fetch_add(4096, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let t = TestApp::start_with(|s| {
        s.ofd_url = Some(url);
        s.ofd.timeout = Duration::from_secs(30);
    })
    .await;
    t.receipt(SEED_BODY).await;
    t.wait_status(Duration::from_secs(10), "delivered", |s| s["synced"] == 1)
        .await;
    wait_for(Duration::from_secs(5), "the stream to stop", || async {
        let n = streamed.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        (n == streamed.load(std::sync::atomic::Ordering::Relaxed)).then_some(())
    })
    .await;
    let read = streamed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(read < 16 * 1024 * 1024, "the adapter kept reading: {read} bytes");
}
