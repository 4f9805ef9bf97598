//! Shared by the process tests: start `kkt-adapterd`, signal it, talk HTTP to it, and record
//! a scenario's figures for RELIABILITY.md.
#![allow(dead_code)] // each test file uses a different part

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_kkt-adapterd");
pub const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub log: mpsc::Receiver<String>,
}

pub fn command(data: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--data-dir", data.to_str().unwrap(), "--config"])
        .arg(data.join("none.toml"));
    if !extra.contains(&"--listen") {
        c.args(["--listen", "127.0.0.1:0"]);
    }
    c.args(extra).env_remove("KKT_CONFIG").env("KKT_LOG", "info");
    c
}

impl Daemon {
    /// Starts the daemon and waits for its "listening on" line.
    pub fn start(data: &std::path::Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_config(data, "", extra)
    }

    /// Starts the daemon with `config` as its config file (TOML).
    pub fn start_with_config(data: &std::path::Path, config: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(data, config, extra, &[])
    }

    /// [`Daemon::start_with_config`] with extra environment variables.
    pub fn start_with_env(data: &std::path::Path, config: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        std::fs::write(data.join("none.toml"), config).unwrap();
        let mut cmd = command(data, extra);
        cmd.envs(env.iter().copied());
        // Reaped in `Drop` (kill + wait), whatever the test does.
        #[allow(clippy::zombie_processes)]
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| {
                    // Leave no daemon behind (it may hold a fixed port other tests need).
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the daemon did not announce its address ({e}); it said: {seen:#?}")
                });
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap();
                return Daemon {
                    child,
                    base: format!("http://{addr}"),
                    log: rx,
                };
            }
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts the seed receipt under `key`.
pub async fn post(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    send(client, base, key, SEED.to_string()).await.unwrap()
}

/// Posts a receipt; the error is the connection's (the daemon may be down).
pub async fn send(client: &reqwest::Client, base: &str, key: &str, body: String) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/v1/kkt/receipt"))
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
}

/// Sends a till's sale again (`key` as [`till`] names them: `till<C>-<I>`) with its own body.
pub async fn resend(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    let (c, i) = key.trim_start_matches("till").split_once('-').expect("a till's key");
    send(client, base, key, body(c.parse().unwrap(), i.parse().unwrap()))
        .await
        .unwrap()
}

pub async fn status(client: &reqwest::Client, base: &str) -> serde_json::Value {
    client
        .get(format!("{base}/v1/kkt/buffer/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the daemon on `data_dir` (with an empty config file of its own), expects it to refuse
/// to start without a panic, and returns what it said on stderr.
pub fn refused_start(data_dir: &std::path::Path) -> String {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(cfg.path().join("c.toml"), "").unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(cfg.path().join("c.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("KKT_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the daemon started: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Records a scenario's figures in `tests/out/reliability/<name>.json`.
pub fn report(name: &str, figures: serde_json::Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/out/reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.json")), format!("{figures:#}\n"));
    eprintln!("RELIABILITY {name}: {figures}");
}

/// A fixed loopback address (the daemon is restarted on it) and its base URL.
pub fn fixed_address() -> (String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    (listen, base)
}

pub fn body(client: usize, i: usize) -> String {
    let kopecks = 100 + i * 7 + client;
    let price = format!("{}.{:02}", kopecks / 100, kopecks % 100);
    format!(
        r#"{{"pos_id":"POS-{client}","type":"sale","items":[{{"name":"Товар {i}","price":{price},"qty":1}}],"payments":[{{"type":"card","amount":{price}}}]}}"#
    )
}

/// One till: posts receipts one after another until `stop`, retrying each with the same key
/// until an answer comes (the daemon may be dead or starting). Returns key → (first answer, tries).
pub async fn till(
    base: String,
    client: usize,
    stop: Arc<AtomicBool>,
    retries: Arc<AtomicU64>,
) -> BTreeMap<String, (Vec<u8>, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acked = BTreeMap::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("till{client}-{i}");
        let payload = body(client, i);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "{key}: no answer within 60 s");
            let sent = send(&http, &base, &key, payload.clone()).await;
            match sent {
                Ok(r) if r.status() == 200 => {
                    let bytes = r.bytes().await.map(|b| b.to_vec());
                    if let Ok(bytes) = bytes {
                        let v: Value = serde_json::from_slice(&bytes).unwrap();
                        let id = v["receipt_id"].as_str().unwrap().to_string();
                        acked.insert(key.clone(), (bytes, id));
                        break;
                    }
                }
                // In flight on a connection that died, storage/capacity, or the register not
                // done yet (202 awaiting_device): the same key again.
                Ok(r) if r.status() == 409 || r.status() == 503 || r.status() == 202 => {}
                Ok(r) => panic!("{key}: unexpected {} {:?}", r.status(), r.text().await),
                Err(_) => {} // connection refused or reset: the daemon is down
            }
            retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acked
}
