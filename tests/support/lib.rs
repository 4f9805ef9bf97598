//! Test support: start the real app on port 0 with a fresh data directory, talk HTTP to it,
//! and wait on conditions with deadlines (never fixed sleeps).

use kkt_core::{App, Settings};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// The seed's `curl` body, verbatim.
pub const SEED_BODY: &str = r#"{"pos_id":"POS-001","type":"sale","items":[{"name":"Test","price":100,"qty":1}],"payments":[{"type":"cash","amount":100}]}"#;

/// A body in the original adapter's shape: `quantity`, `total`, `vat_rate` (22 %: since
/// 2026-01-01 the original's 20 % on a sale is refused, see README "Compatibility").
pub const ORIGINAL_BODY: &str = r#"{"pos_id":"POS-002","type":"sale","items":[{"name":"Хлеб","price":45.50,"quantity":2,"total":91.00,"vat_rate":10},{"name":"Сыр","price":899.90,"quantity":0.350,"total":314.97,"vat_rate":22}],"payments":[{"type":"card","amount":405.97}]}"#;

pub struct TestApp {
    app: Option<App>,
    pub settings: Settings,
    /// The app's clock; `clock.advance(…)` moves the whole program forward (kept across restarts).
    pub clock: kkt_core::time::Clock,
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    _dir: Option<tempfile::TempDir>,
}

pub fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::for_data_dir(dir);
    // Fast policy so outages and recoveries fit in a test; the shape of the policy is unchanged.
    s.sync.backoff_base = Duration::from_millis(100);
    s.sync.backoff_max = Duration::from_millis(500);
    s.sync.interval = Duration::from_millis(200);
    s.breaker.open_max = Duration::from_millis(500);
    s.ofd.simulator_latency = Duration::from_millis(1);
    s.kkt.device_retry = Duration::from_millis(50);
    s
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = settings(dir.path());
        configure(&mut s);
        let mut t = TestApp::launch(s, kkt_core::time::Clock::new()).await;
        t._dir = Some(dir);
        t
    }

    /// A `mock-atol` register on a free loopback port (FN 7380440700000001), and the app on the
    /// ATOL driver against it with the tests' timings — jobs bounded at 2 s and polled every
    /// `poll`, a till answered within 3 s — then `configure`.
    pub async fn start_on_atol(
        poll: Duration,
        configure: impl FnOnce(&mut Settings),
    ) -> (mock_atol::MockAtol, TestApp) {
        let atol = mock_atol::spawn("127.0.0.1:0".parse().expect("address"), None, "7380440700000001")
            .await
            .expect("mock-atol starts");
        let url = atol.url();
        let t = TestApp::start_with(|s| {
            s.kkt.driver = kkt_core::settings::KktDriver::Atol;
            s.kkt.atol.url = url;
            s.kkt.atol.job_bound = Duration::from_secs(2);
            s.kkt.atol.poll_every = poll;
            s.kkt.answer_within = Duration::from_secs(3);
            configure(s);
        })
        .await;
        (atol, t)
    }

    async fn launch(settings: Settings, clock: kkt_core::time::Clock) -> TestApp {
        let app = App::build_with_clock(settings.clone(), clock.clone())
            .await
            .expect("app starts");
        let base = format!("http://{}", app.local_addr());
        let token = app.admin_token().to_string();
        TestApp {
            app: Some(app),
            settings,
            clock,
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            token,
            _dir: None,
        }
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().expect("running")
    }

    /// Delivers operator alerts to `notifier` (as the desktop shell and the daemon do).
    pub fn spawn_alerts(&mut self, notifier: std::sync::Arc<dyn kkt_core::alerts::Notifier>) {
        self.app.as_mut().expect("running").spawn_alerts(notifier);
    }

    /// Graceful stop and start on the same data directory (a new port).
    pub async fn restart(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        let dir = self._dir.take();
        let mut next = TestApp::launch(self.settings.clone(), self.clock.clone()).await;
        next._dir = dir;
        *self = next;
    }

    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_receipt(&self, key: Option<&str>, body: &str) -> reqwest::Response {
        let mut r = self
            .client
            .post(self.url("/v1/kkt/receipt"))
            .header("Content-Type", "application/json");
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        r.body(body.to_string()).send().await.expect("request")
    }

    /// Posts a receipt as a till holding `token` (`Authorization: Bearer`).
    pub async fn post_receipt_as(&self, token: &str, key: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/kkt/receipt"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// Posts a receipt with a fresh key and returns its JSON answer (panics unless 200).
    pub async fn receipt(&self, body: &str) -> Value {
        let key = uuid::Uuid::new_v4().to_string();
        let r = self.post_receipt(Some(&key), body).await;
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// A GET as the window makes it: with the admin token (receipts, events and the DLQ are
    /// personal data, SECURITY.md "Who reads what"); [`TestApp::get_with`] sends what it is given.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A POST of JSON without a token (as a vendor's POS on loopback sends it): the status and
    /// the JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The newest receipts (up to 50) as the window lists them.
    pub async fn receipts(&self) -> Vec<Value> {
        let (_, found) = self.get("/v1/kkt/receipts?limit=50").await;
        found["receipts"].as_array().cloned().unwrap_or_default()
    }

    /// The `/metrics` page's text.
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        r.text().await.expect("the metrics' text")
    }

    /// The types of the newest receipts (up to 50), sorted.
    pub async fn receipt_types(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .receipts()
            .await
            .iter()
            .filter_map(|r| r["type"].as_str().map(str::to_string))
            .collect();
        kinds.sort_unstable();
        kinds
    }

    /// A GET with extra headers (`Host`, `Origin`, `Authorization`, …).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut r = self.client.get(self.url(path));
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        r.send().await.expect("request")
    }

    /// Posts `body` with a fresh key; returns the status and the JSON answer.
    pub async fn try_receipt(&self, body: &str) -> (u16, Value) {
        let key = uuid::Uuid::new_v4().to_string();
        let r = self.post_receipt(Some(&key), body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.client.post(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn status(&self) -> Value {
        self.get("/v1/kkt/buffer/status").await.1
    }

    /// Polls the buffer status until `f` holds; panics with the last status after `limit`.
    pub async fn wait_status(&self, limit: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(limit, what, || async {
            let s = self.status().await;
            f(&s).then_some(s)
        })
        .await
    }
}

/// Polls `check` until it yields a value; panics after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a mock OFD on a free loopback port.
pub async fn mock_ofd() -> mock_ofd::MockOfd {
    mock_ofd::spawn("127.0.0.1:0".parse().expect("addr"), None, mock_ofd::Faults::default())
        .await
        .expect("mock-ofd starts")
}

/// A loopback URL where nothing listens (connection refused).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

pub fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Records a scenario's figures in `tests/out/reliability/<name>.json` (RELIABILITY.md is
/// written from these by `tests/tools/reliability.py`).
pub fn report(name: &str, figures: Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("out/reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.json")), format!("{figures:#}\n"));
    eprintln!("RELIABILITY {name}: {figures}");
}

/// Records alerts instead of showing them, as the desktop shell would.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<kkt_core::alerts::Alert>>);

impl kkt_core::alerts::Notifier for Recorder {
    fn notify(&self, alert: &kkt_core::alerts::Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

impl Recorder {
    /// Waits up to `limit` for an alert that `f` accepts.
    pub async fn wait(&self, limit: Duration, what: &str, f: impl Fn(&kkt_core::alerts::Alert) -> bool) {
        wait_for(limit, what, || async {
            self.0.lock().unwrap().iter().any(&f).then_some(())
        })
        .await
    }
}

/// An answer read off a raw socket.
pub struct RawAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Sends `request` as is and reads the whole answer (the request asks to close the connection).
pub async fn raw_http(addr: &str, request: &[u8]) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rx, mut tx) = s.into_split();
    // The server may answer and close before it has read everything (413, 431): read while
    // writing, so the answer is taken before the reset that unread data causes; a failed write
    // of the rest is not an error as long as an answer comes.
    let request = request.to_vec();
    let writer = tokio::spawn(async move {
        let _ = tx.write_all(&request).await;
        tx
    });
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), rx.read_to_end(&mut out))
        .await
        .expect("an answer within 20 s")
        .ok();
    drop(writer.await);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let mut body = out[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = plain;
    }
    RawAnswer {
        status,
        content_type: header("content-type"),
        body,
    }
}

/// How many times the device carried out each counter task, and its shift documents.
pub fn on_device(atol: &mock_atol::MockAtol) -> (std::collections::BTreeMap<String, usize>, usize, usize, usize) {
    let mut tasks = std::collections::BTreeMap::new();
    for e in atol.executed() {
        *tasks.entry(e.task).or_insert(0) += 1;
    }
    let docs = atol.documents();
    let count = |kind: &str| docs.iter().filter(|d| d.kind == kind).count();
    (tasks, count("openShift"), count("closeShift"), count("receipt"))
}
