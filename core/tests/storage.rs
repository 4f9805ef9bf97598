//! Storage faults (issue 5): a full disk (a small tmpfs, or the database size cap where mounting
//! is not allowed) answers 503 `storage_unavailable`, acknowledges nothing, and recovers when
//! space returns; a read-only data directory is a clear error and a non-zero exit.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "[kkt]\nwrite_slips = false\n";

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop. `None` where mounting is
/// not allowed (not root, or no CAP_SYS_ADMIN in a container).
struct Mount {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    fn tmpfs(options: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Mount { path, _dir: dir })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system of `dir` to the last byte with a ballast file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.write_all(&[0u8; 1]);
    let _ = f.sync_all();
    path
}

/// A receipt of `lines` long lines (~300 bytes each), so a few hundred fill a small database.
fn big_body(lines: usize) -> String {
    let item = format!(r#"{{"name":"{}","price":1,"qty":1}}"#, "Позиция ".repeat(16));
    let items = vec![item; lines].join(",");
    format!(r#"{{"pos_id":"POS-1","type":"sale","items":[{items}],"payments":[{{"type":"cash","amount":{lines}}}]}}"#)
}

async fn post_body(client: &reqwest::Client, base: &str, key: &str, body: &str) -> (u16, Value) {
    let r = client
        .post(format!("{base}/v1/kkt/receipt"))
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Posts receipts until one is refused; returns (acknowledged keys, the refused key, its answer).
async fn post_until_refused(base: &str, body: &str, max: usize) -> (Vec<String>, String, Value) {
    let client = reqwest::Client::new();
    let mut acked = Vec::new();
    for i in 0..max {
        let key = format!("fill-{i}");
        let (code, v) = post_body(&client, base, &key, body).await;
        match code {
            200 => acked.push(key),
            503 => return (acked, key, v),
            // The register's own memory shares the disk and may be the first to find it full:
            // the receipt is stored, not registered, and the till is told to come back.
            202 if v["reason"].as_str().is_some_and(|r| r.contains("full")) => return (acked, key, v),
            other => panic!("{key}: unexpected {other}: {v}"),
        }
    }
    panic!("no refusal after {max} receipts");
}

async fn health(base: &str) -> Value {
    reqwest::get(format!("{base}/v1/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Checks that after recovery every key has exactly one receipt and numbers are 2..=n+1
/// (document 1 opened the shift).
async fn check_numbers(base: &str, keys: &[String], body: &str) {
    let client = reqwest::Client::new();
    let mut numbers = Vec::new();
    for key in keys {
        let (code, v) = post_body(&client, base, key, body).await;
        assert_eq!(code, 200, "{key}: {v}");
        numbers.push(v["fiscal_doc"]["fiscal_doc_number"].as_i64().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (2..=keys.len() as i64 + 1).collect::<Vec<_>>(),
        "gap-free, unique"
    );
}

#[tokio::test]
async fn a_full_disk_answers_storage_unavailable_acknowledges_nothing_and_recovers_when_space_returns() {
    let Some(fs) = Mount::tmpfs("size=3m") else {
        // Covered without a mount by the size-cap test below; said on the real stderr (not the
        // captured one) and recorded, so the skip is visible in the log and in RELIABILITY.md.
        notice(
            "SKIPPED a_full_disk…: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the size-cap test covers the path",
        );
        report(
            "storage_disk_full",
            json!({"skipped": true, "why": "tmpfs cannot be mounted here"}),
        );
        return;
    };
    let data = fs.path.join("data");
    std::fs::create_dir(&data).unwrap();
    let mut d = Daemon::start_with_config(&data, CONFIG, &[]);
    let body = big_body(20);
    let client = reqwest::Client::new();
    // Some receipts while there is room; then the disk fills up.
    for i in 0..5 {
        assert_eq!(post_body(&client, &d.base, &format!("early-{i}"), &body).await.0, 200);
    }
    let ballast = fill(&fs.path);
    let (acked, refused, answer) = post_until_refused(&d.base, &body, 5000).await;
    // Which file meets the full disk first depends on which WAL has room left: the buffer's
    // (503 storage_unavailable, the database unhealthy) or the register's memory (202
    // awaiting_device: stored, not registered). Either way nothing is acknowledged.
    let buffer_full = answer["code"] == "storage_unavailable";
    assert!(buffer_full || answer["status"] == "awaiting_device", "{answer}");
    let s = status(&client, &d.base).await;
    if buffer_full {
        let h = health(&d.base).await;
        assert_eq!(h["components"]["database"]["status"], "unhealthy", "{h}");
        // The manager's window and the tray see it too (they read the status).
        assert!(s["storage_error"].as_str().is_some_and(|e| e.contains("full")), "{s}");
    }
    // Nothing was acknowledged for the refused key. (If the disk filled between its intent and
    // the register's result, the intent waits as `fiscalizing`: on the register, unacknowledged,
    // and answered when the till asks again.)
    let taken = s["total_receipts"].as_u64().unwrap() - s["fiscalizing"].as_u64().unwrap();
    assert_eq!(taken as usize, 5 + acked.len(), "{s}");
    // Space returns: the same key goes through, health recovers, numbering has no gap.
    std::fs::remove_file(ballast).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (code, v) = loop {
        let (code, v) = post_body(&client, &d.base, &refused, &body).await;
        if code != 202 || std::time::Instant::now() > deadline {
            break (code, v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 200, "{v}");
    assert_eq!(health(&d.base).await["components"]["database"]["status"], "healthy");
    assert!(status(&client, &d.base).await["storage_error"].is_null());
    let mut keys: Vec<String> = (0..5).map(|i| format!("early-{i}")).collect();
    keys.extend(acked.iter().cloned());
    keys.push(refused.clone());
    check_numbers(&d.base, &keys, &body).await;
    // And it is all durable: a clean restart finds every receipt.
    d.signal("-TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(30)).code(), Some(0));
    let d = Daemon::start_with_config(&data, CONFIG, &[]);
    assert_eq!(
        status(&client, &d.base).await["total_receipts"].as_u64().unwrap() as usize,
        keys.len()
    );
    report(
        "storage_disk_full",
        json!({"fs": "tmpfs 3 MiB", "acknowledged_before_full": 5 + acked.len(),
               "refused_with_503": u8::from(buffer_full), "awaiting_device_202": u8::from(!buffer_full),
               "acknowledged_after_space_returned": 1, "lost": 0, "issued_twice": 0}),
    );
}

#[tokio::test]
async fn the_database_size_cap_refuses_with_storage_unavailable_and_a_larger_cap_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let capped = format!("{CONFIG}[buffer]\nmax_db_mb = 1\n");
    let mut d = Daemon::start_with_config(dir.path(), &capped, &[]);
    let body = big_body(20);
    let (acked, refused, answer) = post_until_refused(&d.base, &body, 5000).await;
    assert_eq!(answer["code"], "storage_unavailable", "{answer}");
    assert!(!acked.is_empty());
    let client = reqwest::Client::new();
    let s = status(&client, &d.base).await;
    let taken = s["total_receipts"].as_u64().unwrap() - s["fiscalizing"].as_u64().unwrap();
    assert_eq!(taken as usize, acked.len(), "{s}");
    // Still refusing, still up, still answering reads.
    let again = post_body(&client, &d.base, &refused, &body).await;
    if again.0 != 503 {
        let logs: Vec<String> = d.log.try_iter().collect();
        panic!("{again:?}\n{}", logs.join("\n"));
    }
    assert_eq!(health(&d.base).await["components"]["database"]["status"], "unhealthy");
    d.signal("-TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(30)).code(), Some(0));
    drop(d);
    let d = Daemon::start_with_config(dir.path(), &format!("{CONFIG}[buffer]\nmax_db_mb = 16\n"), &[]);
    let (code, v) = post_body(&client, &d.base, &refused, &body).await;
    assert_eq!(code, 200, "{v}");
    let mut keys = acked.clone();
    keys.push(refused);
    check_numbers(&d.base, &keys, &body).await;
    report(
        "storage_size_cap",
        json!({"cap": "1 MiB", "acknowledged_before_full": acked.len(), "refused_with_503": 2,
               "acknowledged_after_cap_raised": 1, "lost": 0, "issued_twice": 0}),
    );
}

#[test]
fn a_read_only_data_directory_is_a_clear_error_and_a_non_zero_exit() {
    // Root ignores permission bits, so as root the directory is a read-only tmpfs, or (where
    // mounting is not allowed) a directory of sysfs, where nobody may create files.
    let (dir_path, _keep): (PathBuf, Box<dyn std::any::Any>) = if is_root() {
        match Mount::tmpfs("ro,size=1m") {
            Some(m) => (m.path.clone(), Box::new(m)),
            None => (PathBuf::from("/sys/kernel"), Box::new(())),
        }
    } else {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ro");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        (p, Box::new(d))
    };
    let err = refused_start(&dir_path);
    assert!(err.contains("is not writable"), "{err}");
}

#[test]
fn a_missing_data_directory_that_was_given_is_refused_and_the_default_one_is_created() {
    let dir = tempfile::tempdir().unwrap();
    // Given explicitly (flag, environment or config): it must exist — an unmounted drive must
    // not silently get a new, empty buffer.
    let given = dir.path().join("mnt/shop/kkt");
    let err = refused_start(&given);
    assert!(
        err.contains("does not exist") && err.contains(given.to_str().unwrap()),
        "{err}"
    );
    assert!(!given.exists(), "nothing is created");
    // The default per-user directory is created at first start.
    let home = dir.path().join("home");
    let mut child = Command::new(BIN)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("KKT_DATA_DIR")
        .env_remove("KKT_CONFIG")
        .args(["--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = home.join("data/kkt-adapter/buffer.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(db.exists(), "the default data directory was created");
}

/// A line on the real stderr, not libtest's captured one.
fn notice(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
