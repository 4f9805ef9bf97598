//! The static web UI (`ui/` at the repository root, embedded at build time: the page, its ES
//! modules, its words in `ui/locales/`) and the OpenAPI spec.

use super::ApiError;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../../../ui/index.html");
const OPENAPI: &str = include_str!("../../openapi.json");
const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/ui/`, with its type.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", INDEX, "text/html; charset=utf-8"),
    (
        "style.css",
        include_str!("../../../ui/style.css"),
        "text/css; charset=utf-8",
    ),
    ("app.js", include_str!("../../../ui/app.js"), JS),
    ("i18n.js", include_str!("../../../ui/i18n.js"), JS),
    ("format.js", include_str!("../../../ui/format.js"), JS),
    ("api.js", include_str!("../../../ui/api.js"), JS),
    ("status.js", include_str!("../../../ui/status.js"), JS),
    ("dlq.js", include_str!("../../../ui/dlq.js"), JS),
    ("events.js", include_str!("../../../ui/events.js"), JS),
    ("chart.js", include_str!("../../../ui/chart.js"), JS),
    ("receipt.js", include_str!("../../../ui/receipt.js"), JS),
    ("review.js", include_str!("../../../ui/review.js"), JS),
    ("shift.js", include_str!("../../../ui/shift.js"), JS),
    ("marking.js", include_str!("../../../ui/marking.js"), JS),
    (
        "locales/ru.json",
        include_str!("../../../ui/locales/ru.json"),
        "application/json",
    ),
    (
        "locales/en.json",
        include_str!("../../../ui/locales/en.json"),
        "application/json",
    ),
];

pub async fn root() -> Redirect {
    Redirect::permanent("/ui/")
}

/// The window's Content Security Policy (issue 18/19): its own modules, styles, images and API
/// only — no inline script or style, no other origin, no plugins, no framing. The desktop
/// window loads this page from the API, so this header is what guards it there too
/// (tauri.conf.json's `csp` covers only files Tauri itself would serve).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    serve(INDEX, "text/html; charset=utf-8")
}

fn file(name: &str) -> Result<Response, ApiError> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, body, kind)| serve(body, kind))
        .ok_or(ApiError::NotFound("file"))
}

pub async fn asset(name: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|_| ApiError::NotFound("file"))?;
    file(&name)
}

pub async fn locale(name: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(name) = name.map_err(|_| ApiError::NotFound("file"))?;
    file(&format!("locales/{name}"))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_ui_folder_is_served_and_every_module_it_imports_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
        let mut on_disk = Vec::new();
        for sub in ["", "locales/"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    on_disk.push(format!("{sub}{}", e.file_name().to_string_lossy()));
                }
            }
        }
        for name in &on_disk {
            assert!(FILES.iter().any(|(n, _, _)| n == name), "ui/{name} is not served");
        }
        for (name, body, _) in FILES.iter().filter(|(n, _, _)| n.ends_with(".js")) {
            for import in body.split("from \"./").skip(1).filter_map(|r| r.split('"').next()) {
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == import),
                    "{name} imports {import}, which is not served"
                );
            }
            let lines = body.lines().count();
            assert!(lines <= 400, "ui/{name} has {lines} lines (at most 400)");
            // The CSP allows no eval and no inline style set from script.
            for banned in ["eval(", "new Function", ".style.", "setAttribute(\"style\""] {
                assert!(!body.contains(banned), "ui/{name} uses {banned}, which the CSP forbids");
            }
        }
        for banned in ["<script>", " style=\"", " onclick=", "<style"] {
            assert!(
                !INDEX.contains(banned),
                "index.html has {banned}, which the CSP forbids"
            );
        }
        let page = serve(INDEX, "text/html");
        assert_eq!(page.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        let ru: serde_json::Value = serde_json::from_str(file_text("locales/ru.json")).unwrap();
        let en: serde_json::Value = serde_json::from_str(file_text("locales/en.json")).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ru), keys(&en), "both languages have the same words");
    }

    fn file_text(name: &str) -> &'static str {
        FILES.iter().find(|(n, _, _)| *n == name).map(|(_, b, _)| *b).unwrap()
    }
}
