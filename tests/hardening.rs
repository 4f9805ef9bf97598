//! Issue 19, the connections: the attacks of SECURITY.md §1–2 whose weapon is the socket itself,
//! sent raw over TCP (idle and half-sent sockets, a trickled body, foreign origins and no
//! `Host`), and an OFD whose answer never ends. Who may read what: `tests/access.rs`.

use kkt_tests::{SEED_BODY, TestApp, raw_http, wait_for};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        // Half send nothing; half start a request and stop (slowloris); the last ten finish a
        // request and keep the connection open (keep-alive), idle after the answer.
        if i >= cap + 34 {
            s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .unwrap();
        } else if i % 2 == 1 {
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

#[tokio::test]
async fn origins_are_compared_in_full_and_a_request_without_host_is_refused() {
    let t = TestApp::start().await;
    let port = t.app().local_addr().port();
    let get = |origin: String| {
        format!(
            "GET /v1/kkt/buffer/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    for own in [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")] {
        assert_eq!(raw_http(&addr(&t), &get(own.clone())).await.status, 200, "{own}");
    }
    for foreign in [
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("https://127.0.0.1:{port}"),
        "http://localhost".to_string(),
        "null".to_string(),
        "http://evil.example".to_string(),
    ] {
        assert_eq!(
            raw_http(&addr(&t), &get(foreign.clone())).await.status,
            403,
            "{foreign}"
        );
    }
    let a = raw_http(&addr(&t), b"GET /v1/kkt/buffer/status HTTP/1.0\r\n\r\n").await;
    let body = String::from_utf8_lossy(&a.body);
    assert_eq!(a.status, 403, "{body}");
    assert!(body.contains("Host"), "{body}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_the_cap_with_every_one_busy_gets_a_503_not_a_silent_close() {
    let t = TestApp::start_with(|s| {
        s.http.max_connections = 2;
        s.kkt.print_latency = Duration::from_millis(1500);
    })
    .await;
    // Two sales held at the slow register: both connections busy.
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let (client, url) = (t.client.clone(), t.url("/v1/kkt/receipt"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", format!("busy-{i}"))
                    .body(SEED_BODY)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Watched through the router in-process: a socket of ours would take a connection too.
    wait_for(Duration::from_secs(5), "both sales at the register", || async {
        let request = axum::http::Request::get("/v1/kkt/buffer/status")
            .header("Host", "127.0.0.1")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = tower::ServiceExt::oneshot(t.app().router(), request).await.unwrap();
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        (status["fiscalizing"] == 2).then_some(())
    })
    .await;
    let a = raw_http(
        &addr(&t),
        b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let body: serde_json::Value = serde_json::from_slice(&a.body).expect("a JSON body");
    assert_eq!(
        (a.status, body["code"].as_str()),
        (503, Some("too_many_connections")),
        "{body}"
    );
    for b in busy {
        assert_eq!(b.await.unwrap().unwrap(), 200, "the busy sales still finish");
    }
}
