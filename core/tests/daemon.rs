//! The `kkt-adapterd` process itself: flags, signals, crashes, and refusing to run unsafely.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkt-adapterd");
const SEED: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

struct Daemon {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

fn command(data: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(data.join("none.toml"))
    .args(extra)
    .env_remove("KKT_CONFIG")
    .env("KKT_LOG", "info");
    c
}

impl Daemon {
    /// Starts the daemon and waits for its "listening on" line.
    fn start(data: &std::path::Path, extra: &[&str]) -> Daemon {
        std::fs::write(data.join("none.toml"), "").unwrap();
        // Reaped in `Drop` (kill + wait), whatever the test does.
        #[allow(clippy::zombie_processes)]
        let mut child = command(data, extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("daemon announces its address");
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

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
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

async fn post(client: &reqwest::Client, base: &str, key: &str) -> reqwest::Response {
    client
        .post(format!("{base}/v1/kkt/receipt"))
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(SEED)
        .send()
        .await
        .unwrap()
}

async fn status(client: &reqwest::Client, base: &str) -> serde_json::Value {
    client
        .get(format!("{base}/v1/kkt/buffer/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--listen",
        "--ofd-url",
        "--admin-token",
        "KKT_CONFIG",
        "KKT_DATA_DIR",
        "KKT_LISTEN",
        "KKT_OFD_URL",
        "KKT_ADMIN_TOKEN",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    assert_eq!(post(&client, &d.base, "a").await.status(), 200);
    d.signal("-TERM");
    let status = d.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let logs: Vec<String> = d.log.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
}

#[tokio::test]
async fn a_second_instance_on_the_same_data_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Daemon::start(dir.path(), &[]);
    let out = command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another KKT Adapter instance is already running"), "{err}");
}

#[test]
fn a_corrupt_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = b"this is not an sqlite database, but somebody's receipts might be in it".repeat(100);
    std::fs::write(dir.path().join("buffer.db"), &garbage).unwrap();
    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let out = command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a valid KKT Adapter buffer") && err.contains("untouched"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join("buffer.db")).unwrap(), garbage);
}

#[test]
fn an_unusable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            file.join("sub").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot create the data directory"), "{err}");
}

#[tokio::test]
async fn sigkill_during_sends_loses_nothing_and_the_restart_delivers_each_receipt_once() {
    let ofd = mock_ofd::spawn(
        "127.0.0.1:0".parse().unwrap(),
        None,
        mock_ofd::Faults {
            hang: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = ofd.url();
    let mut d = Daemon::start(dir.path(), &["--ofd-url", &url]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = post(&client, &d.base, &format!("k{i}")).await;
        assert_eq!(r.status(), 200);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["receipt_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Wait until sends are in flight (rows `syncing`), then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&client, &d.base).await["syncing"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "nothing reached syncing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.signal("-KILL");
    d.wait_exit(Duration::from_secs(10));
    drop(d);
    ofd.set_faults(mock_ofd::Faults::default());
    let d = Daemon::start(dir.path(), &["--ofd-url", &url]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&client, &d.base).await;
        if s["synced"] == 6 {
            assert_eq!(s["total_receipts"], 6);
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered after restart: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = ofd.deliveries();
    for id in &ids {
        assert_eq!(
            deliveries.get(id),
            Some(&1),
            "{id} delivered {:?} times",
            deliveries.get(id)
        );
    }
    // Replays after the crash still give the original answers.
    let r = post(&client, &d.base, "k0").await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
}
