//! The vendor-compatible fronts (docs/contract.md §13, issue 22 — work in progress on this
//! branch): ATOL Web Requests and kkmserver on top of the same durable core.

pub mod atol_task;
