//! The vendor-compatible fronts (docs/contract.md §13): what ATOL Web Requests and kkmserver
//! callers send, turned into the native receipt and operation bodies, and the native answers
//! turned back into the vendors' shapes. Pure mappings; the HTTP side and the jobs' runner are
//! in `api::atol_front`, `api::kkm_front` and `api::jobs`.

pub mod atol_result;
pub mod atol_task;
pub mod kkm;
pub mod settings;

pub use settings::CompatSettings;

/// A native error answer's text for a vendor's error field: its message, with the fields a
/// validation names (`details`).
pub fn describe(body: &serde_json::Value) -> String {
    let mut text = body["message"].as_str().unwrap_or("ошибка").to_string();
    let named: Vec<String> = body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some(format!("{}: {}", f["field"].as_str()?, f["message"].as_str()?)))
        .collect();
    if !named.is_empty() {
        text = format!("{text} ({})", named.join("; "));
    }
    text
}
