//! The shell on Tauri's mock runtime (`tauri::test::mock_builder()`): no display, no tray, no
//! webview — the order of things is what is tested. The real tray and window are driven under
//! Xvfb by tests/e2e/smoke.test.mjs and desktop.test.mjs.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;

fn get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn start(dir: &std::path::Path, hidden: bool) -> tauri::App<tauri::test::MockRuntime> {
    let options = Options {
        hidden,
        window_in_process: true,
        tray: false,
    };
    let mut app = run_app(
        tauri::test::mock_builder(),
        tauri::test::mock_context(tauri::test::noop_assets()),
        Settings::for_data_dir(dir),
        options,
    )
    .unwrap();
    // The setup runs when the loop starts: one iteration of the mock loop runs it.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    app
}

#[test]
fn the_shell_starts_the_core_opens_the_window_with_the_token_and_stops_the_core_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), false);
    let (url, token) = {
        let shell = app.state::<Shell>();
        (shell.url.clone(), shell.token.clone())
    };
    let addr = url.trim_start_matches("http://").trim_end_matches("/ui/").to_string();
    // The core is up before the window: the window's page is served.
    let health = get(&addr, "/v1/health").unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let page = get(&addr, "/ui/").unwrap();
    assert!(page.contains("content-security-policy: default-src 'none'"), "{page}");
    // The window opened at the core's page; the admin token is not in its address (issue 19: it
    // goes by an origin-guarded init script; the WebDriver test sees the page use it).
    let window = app.get_webview_window(window::LABEL).expect("the window was opened");
    assert_eq!(window.url().unwrap().as_str(), url);
    assert!(!token.is_empty() && !window.url().unwrap().as_str().contains(&token));
    // Quit's first half: the core stops, its port closes, its data directory is free again.
    tauri::async_runtime::block_on(stop_core(app.handle()));
    assert!(
        get(&addr, "/v1/health").is_err(),
        "the API still answers after the stop"
    );
    assert!(app.state::<Shell>().core.lock().unwrap().is_none());
    tauri::async_runtime::block_on(stop_core(app.handle())); // a second Quit finds nothing to stop
    let again = tauri::async_runtime::block_on(kkt_core::App::build(Settings::for_data_dir(dir.path())));
    let again = again.expect("the data directory's lock was released");
    tauri::async_runtime::block_on(again.shutdown());
}

#[test]
fn hidden_starts_the_core_without_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), true);
    assert!(app.get_webview_window(window::LABEL).is_none());
    let url = app.state::<Shell>().url.clone();
    let addr = url.trim_start_matches("http://").trim_end_matches("/ui/").to_string();
    assert!(get(&addr, "/v1/health").unwrap().starts_with("HTTP/1.1 200"));
    tauri::async_runtime::block_on(stop_core(app.handle()));
}

#[test]
fn the_run_value_quotes_a_path_with_spaces() {
    let exe = std::path::Path::new(r"C:\Users\Кассир\AppData\Local\Programs\KKT Adapter\kkt-adapter.exe");
    assert_eq!(
        super::run_value(exe),
        r#""C:\Users\Кассир\AppData\Local\Programs\KKT Adapter\kkt-adapter.exe" --hidden"#
    );
}
