//! The vendor-compatible fronts (docs/contract.md §13): what ATOL Web Requests and kkmserver
//! callers send, turned into the native receipt and operation bodies, and the native answers
//! turned back into the vendors' shapes. Pure mappings; the HTTP side and the jobs' runner are
//! in `api::atol_front`, `api::kkm_front` and `api::jobs`.

pub mod atol_result;
pub mod atol_task;
pub mod kkm;
pub mod settings;

pub use settings::CompatSettings;
