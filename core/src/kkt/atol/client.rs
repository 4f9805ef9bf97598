//! The ATOL web server's job queue over HTTP (docs/research/atol-web-server.md §1; the notes on
//! its answers in docs/research/atol-exactly-once.md §3): post a job, read its state, poll it.
//!
//! What the servers answer, and what it means here:
//! - `201` — the job is queued; `409` with "задание с таким UUID уже есть" — the server already
//!   holds a job with this uuid (the duplicate check runs first, kktsite-agent `src/device.js`):
//!   it is polled, never posted again; `409` with any other text — "ККТ [id] не подключена"
//!   (Web Requests) — the job was **not** accepted: device trouble. A 409 whose text says
//!   neither is settled by asking for the uuid.
//! - `401`/`403` — the server wants (other) credentials: a configuration error, never retried
//!   as device trouble (HTTP Basic, `WWW-Authenticate: Basic realm=…`, kktsite-agent
//!   `src/server.js`).
//! - `GET` → `{results: [{status, error: {code, description} | errorCode/errorDescription,
//!   result}]}` (both shapes, §1.3); `404` — the server does not know the uuid.

use crate::kkt::{DeviceError, NotTaken};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Answers larger than this are not read (a device answer is a few KiB).
const MAX_ANSWER: u64 = 1 << 20;

/// A job's state as the server reports it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Job {
    /// `ready`: every task's `result`, in order.
    Ready(Vec<Value>),
    /// `error` (or `interrupted`, `canceled`): the first failed task's code and text.
    Failed { code: i64, description: String },
    /// `wait`, `inProgress`, `blocked`: not decided yet.
    Pending(String),
    /// 404: the server does not know the uuid.
    Unknown,
}

/// What a post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Posted {
    /// Queued now.
    Queued,
    /// The server already had a job with this uuid.
    Exists,
}

pub(super) struct Client {
    http: ureq::Agent,
    base: String,
    /// `Authorization: Basic …`, when credentials are set.
    auth: Option<String>,
    job_bound: Duration,
    poll_every: Duration,
}

pub(super) fn unavailable(why: impl Into<String>) -> DeviceError {
    DeviceError::Unavailable(why.into())
}

fn misconfigured(why: impl Into<String>) -> DeviceError {
    DeviceError::NotTaken {
        reason: NotTaken::Misconfigured,
        message: why.into(),
    }
}

/// `error.code`/`error.description`, or the older flat `errorCode`/`errorDescription` (§1.3).
pub(super) fn error_of(v: &Value) -> (i64, String) {
    let code = v["error"]["code"]
        .as_i64()
        .or_else(|| v["errorCode"].as_i64())
        .unwrap_or(0);
    let description = v["error"]["description"]
        .as_str()
        .or_else(|| v["errorDescription"].as_str())
        .unwrap_or_default()
        .to_string();
    (code, description)
}

/// The certificates of a PEM file (a server's own self-signed one, typically).
fn certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("kkt.atol.ca_file {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let end = "-----END CERTIFICATE-----";
    let certs: Vec<_> = text
        .split_inclusive(end)
        .filter(|block| block.contains("-----BEGIN CERTIFICATE-----"))
        .map(|block| ureq::tls::Certificate::from_pem(block.trim().as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("kkt.atol.ca_file {}: not a PEM certificate: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("kkt.atol.ca_file {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

impl Client {
    pub(super) fn new(config: &super::AtolConfig) -> Result<Client, String> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(format!(
                "kkt.atol.url {:?}: the driver's web server is reached over http:// or https://",
                config.url
            ));
        }
        let mut builder = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false);
        if let Some(path) = &config.ca_file {
            let roots = ureq::tls::RootCerts::new_with_certs(&certificates(path)?);
            builder = builder.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let auth = config.credentials.as_ref().map(|(user, password)| {
            use base64::Engine;
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {pair}")
        });
        Ok(Client {
            http: builder.build().into(),
            base: config.url.trim_end_matches('/').to_string(),
            auth,
            job_bound: config.job_bound,
            poll_every: config.poll_every,
        })
    }

    fn url(&self, path: &str, device: Option<&str>) -> String {
        match device {
            Some(id) => format!("{}{path}?deviceID={id}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    fn authorized<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        }
    }

    /// Reads an answer, at most [`MAX_ANSWER`] bytes, as JSON.
    fn answer(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<(u16, Value), DeviceError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.failed(e))?;
        if status == 401 || status == 403 {
            return Err(misconfigured(format!(
                "веб-сервер драйвера ККТ отказал в доступе (HTTP {status}): проверьте [kkt.atol] user и password"
            )));
        }
        let value = serde_json::from_slice(&body).map_err(|_| {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(80).collect();
            unavailable(format!(
                "веб-сервер драйвера ККТ ответил не JSON (HTTP {status}): {excerpt}"
            ))
        })?;
        Ok((status, value))
    }

    /// An HTTP failure in the cashier's words.
    fn failed(&self, e: ureq::Error) -> DeviceError {
        match e {
            ureq::Error::Timeout(_) => unavailable("веб-сервер драйвера ККТ не ответил вовремя"),
            ureq::Error::BodyExceedsLimit(_) => unavailable("веб-сервер драйвера ККТ прислал ответ больше 1 МиБ"),
            other => unavailable(format!("веб-сервер драйвера ККТ недоступен ({}): {other}", self.base)),
        }
    }

    /// Posts a job. Not queued (refused, not connected, unreachable): an error, and the job
    /// does not exist — unless the answer was lost, which a later [`Client::state`] tells.
    pub(super) fn post(&self, uuid: &str, device: Option<&str>, tasks: &[Value]) -> Result<Posted, DeviceError> {
        let response = self
            .authorized(self.http.post(&self.url("/api/v2/requests", device)))
            .header("Content-Type", "application/json")
            .send(json!({"uuid": uuid, "request": tasks}).to_string())
            .map_err(|e| self.failed(e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Posted::Queued);
        }
        let (_, body) = match self.answer(response) {
            Ok(answer) => answer,
            Err(e @ DeviceError::NotTaken { .. }) => return Err(e),
            Err(_) => (status, Value::Null),
        };
        let text = match error_of(&body).1 {
            t if t.is_empty() => body["error"].as_str().unwrap_or_default().to_string(),
            t => t,
        };
        if status == 409 {
            let lower = text.to_lowercase();
            if lower.contains("uuid")
                && (lower.contains("уже есть") || lower.contains("exist") || lower.contains("unique"))
            {
                return Ok(Posted::Exists);
            }
            if lower.contains("не подключен") || lower.contains("not connected") {
                return Err(unavailable(format!(
                    "ККТ не подключена к веб-серверу драйвера ({text})"
                )));
            }
            // Neither: the server says whether it holds the uuid.
            return match self.state(uuid, device)? {
                Job::Unknown => Err(unavailable(format!(
                    "веб-сервер драйвера ККТ не принял задание (HTTP 409): {text}"
                ))),
                _ => Ok(Posted::Exists),
            };
        }
        Err(unavailable(format!(
            "веб-сервер драйвера ККТ не принял задание (HTTP {status}): {text}"
        )))
    }

    /// The job's state now.
    pub(super) fn state(&self, uuid: &str, device: Option<&str>) -> Result<Job, DeviceError> {
        let response = self
            .authorized(self.http.get(&self.url(&format!("/api/v2/requests/{uuid}"), device)))
            .call()
            .map_err(|e| self.failed(e))?;
        if response.status().as_u16() == 404 {
            return Ok(Job::Unknown);
        }
        let (status, v) = self.answer(response)?;
        if !(200..300).contains(&status) {
            return Err(unavailable(format!("веб-сервер драйвера ККТ ответил HTTP {status}")));
        }
        let results = v["results"]
            .as_array()
            .ok_or_else(|| unavailable("в ответе веб-сервера нет results"))?;
        if results.is_empty() {
            return Err(unavailable("веб-сервер драйвера ККТ прислал пустой results"));
        }
        // A failed task interrupts the ones after it: the first that is not ready decides.
        for r in results {
            let (code, description) = error_of(r);
            match r["status"].as_str().unwrap_or_default() {
                "ready" => continue,
                "error" | "interrupted" | "canceled" => return Ok(Job::Failed { code, description }),
                s @ ("wait" | "inProgress" | "blocked") => return Ok(Job::Pending(s.into())),
                other => {
                    return Err(unavailable(format!(
                        "веб-сервер драйвера ККТ сообщил неизвестный статус {other:?}"
                    )));
                }
            }
        }
        Ok(Job::Ready(results.iter().map(|r| r["result"].clone()).collect()))
    }

    /// Polls the job until it is decided or the bound passes.
    pub(super) fn wait(&self, uuid: &str, device: Option<&str>) -> Result<Job, DeviceError> {
        let deadline = Instant::now() + self.job_bound;
        loop {
            match self.state(uuid, device)? {
                Job::Pending(_) if Instant::now() < deadline => std::thread::sleep(self.poll_every),
                other => return Ok(other),
            }
        }
    }

    pub(super) fn job_bound(&self) -> Duration {
        self.job_bound
    }
}

#[cfg(test)]
mod tests {
    //! The web server's 409s told apart and its 401 read as configuration, against a loopback
    //! server answering canned bytes (the texts are the servers' own: kktsite-agent
    //! `src/device.js`, Web Requests; docs/research/atol-exactly-once.md §3).

    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one canned answer per connection, in order; returns the base URL.
    fn server(answers: Vec<(u16, &'static str)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut s, _)) = listener.accept() else { return };
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 8192];
                let mut seen = Vec::new();
                // Headers, then as much body as Content-Length says (small here).
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes());
            }
        });
        format!("http://{addr}")
    }

    fn client(url: String) -> Client {
        Client::new(&super::super::AtolConfig {
            url,
            device_id: None,
            job_bound: Duration::from_millis(200),
            poll_every: Duration::from_millis(10),
            auto_shift: true,
            journal: None,
            credentials: Some(("kassa".into(), "p".into())),
            ca_file: None,
        })
        .unwrap()
    }

    #[test]
    fn a_409_for_a_uuid_the_server_holds_is_posted_already_and_never_posted_again() {
        let c = client(server(vec![(
            409,
            r#"{"error":{"code":505,"description":"Не удалось добавить задание с UUID [r1], задание с таким UUID уже есть"}}"#,
        )]));
        assert_eq!(c.post("r1", None, &[json!({"type": "sell"})]).unwrap(), Posted::Exists);
    }

    #[test]
    fn a_409_for_a_device_not_connected_is_device_trouble_the_job_does_not_exist() {
        let c = client(server(vec![(
            409,
            r#"{"error":{"code":505,"description":"ККТ [1] не подключена: Нет связи"}}"#,
        )]));
        let e = c.post("r1", None, &[json!({"type": "sell"})]).unwrap_err();
        assert!(
            matches!(&e, DeviceError::Unavailable(t) if t.contains("не подключена")),
            "{e:?}"
        );
    }

    #[test]
    fn a_409_saying_neither_is_settled_by_asking_the_server_for_the_uuid() {
        let other = r#"{"error":{"code":505,"description":"Конфликт"}}"#;
        let held = r#"{"results":[{"status":"inProgress","error":{"code":0,"description":""},"result":null}]}"#;
        let c = client(server(vec![(409, other), (200, held)]));
        assert_eq!(c.post("r1", None, &[json!({"type": "sell"})]).unwrap(), Posted::Exists);
        let c = client(server(vec![(409, other), (404, "{}")]));
        let e = c.post("r1", None, &[json!({"type": "sell"})]).unwrap_err();
        assert!(
            matches!(&e, DeviceError::Unavailable(t) if t.contains("409")),
            "not accepted: {e:?}"
        );
    }

    #[test]
    fn a_401_is_a_configuration_error_naming_the_settings() {
        let c = client(server(vec![(401, "{}")]));
        let e = c.state("r1", None).unwrap_err();
        assert!(
            matches!(&e, DeviceError::NotTaken { reason: NotTaken::Misconfigured, message } if message.contains("[kkt.atol] user")),
            "{e:?}"
        );
    }

    #[test]
    fn a_ca_file_must_hold_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let config = super::super::AtolConfig {
            url: "https://127.0.0.1:16732".into(),
            device_id: None,
            job_bound: Duration::from_millis(200),
            poll_every: Duration::from_millis(10),
            auto_shift: true,
            journal: None,
            credentials: None,
            ca_file: Some(path),
        };
        let e = Client::new(&config).err().unwrap();
        assert!(e.contains("no certificate"), "{e}");
    }
}
