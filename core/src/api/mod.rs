//! The local HTTP API (docs/contract.md §1): `router(state)` builds it; `app` serves it.

mod admin;
pub mod answers;
mod browse;
pub mod conn;
mod error;
mod guards;
mod receipts;
mod review;
mod shift;
mod status;
mod telemetry;
mod ui;

pub use error::ApiError;

use crate::buffer::Buffer;
use crate::counters::Metrics;
use crate::status::StatusSource;
use crate::worker::WorkerHandle;
use axum::Router;
use axum::routing::{get, post};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Everything the handlers need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub buffer: Buffer,
    pub worker: WorkerHandle,
    pub status: StatusSource,
    pub metrics: Arc<Metrics>,
    /// Stays a secret type until it is compared (`guards`): `Debug` prints `***`.
    pub admin_token: Arc<secrecy::SecretString>,
    /// When set, receipt intake and lookup need `Authorization: Bearer <pos token>` (LAN mode).
    pub pos_token: Option<Arc<secrecy::SecretString>>,
    /// Host names accepted besides loopback names (DNS-rebinding guard).
    pub allowed_hosts: Arc<[String]>,
    /// The address the API is bound to (its IP is an accepted Host too).
    pub local_addr: SocketAddr,
    /// Idempotency keys whose first request is being processed right now.
    pub in_flight: Arc<Mutex<HashSet<String>>>,
    /// What the settings give a receipt that does not say (`[fiscal]`).
    pub defaults: Arc<crate::receipt::Defaults>,
    /// The fiscal register, for its shift (receipts go through the buffer).
    pub kkt: Arc<dyn crate::kkt::Kkt>,
    pub clock: crate::time::Clock,
    /// The slip's header (`[fiscal]`), for the window's copy of a slip.
    pub seller: Arc<crate::kkt::slip::Seller>,
    /// The register's time zone: slips, a shop's day, CSV times.
    pub zone: crate::time::Zone,
}

/// The whole API as a router, without serving it (tests call it directly or over a socket):
/// one router per audience, each guard a layer — the public reads, the tills' calls (the POS
/// token in LAN mode), the operator's changes (the admin token) — behind the local-security
/// layer and a request span.
pub fn router(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state as guard;
    Router::new()
        .merge(public())
        .merge(pos().route_layer(guard(state.clone(), guards::pos_only)))
        .merge(admin().route_layer(guard(state.clone(), guards::admin_only)))
        .fallback(guards::not_found)
        .method_not_allowed_fallback(guards::method_not_allowed)
        .layer(guard(state.clone(), guards::local_only))
        .layer(axum::middleware::from_fn(telemetry::request_span))
        .with_state(state)
}

/// What anyone on the machine (or, in LAN mode, the network) may read: health, metrics, the
/// status, the shift, the 24-hour activity, the window's files, the OpenAPI spec.
fn public() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(status::health))
        .route("/metrics", get(status::metrics))
        .route("/v1/kkt/buffer/status", get(status::buffer_status))
        .route("/v1/kkt/worker/status", get(status::worker_status))
        .route("/v1/kkt/shift", get(shift::show))
        .route("/v1/kkt/activity", get(browse::activity))
        .route("/openapi.json", get(ui::openapi))
        .route("/", get(ui::root))
        .route("/ui", get(ui::root))
        .route("/ui/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/ui/locales/{file}", get(ui::locale))
}

/// The tills' calls: receipts and what is read about them (the POS token in LAN mode).
fn pos() -> Router<AppState> {
    Router::new()
        .route("/v1/kkt/receipt", post(receipts::create))
        .route("/v1/kkt/receipt/{receipt_id}", get(receipts::show))
        .route("/v1/kkt/receipt/{receipt_id}/slip", get(browse::slip))
        .route("/v1/kkt/receipt/{receipt_id}/qr.svg", get(browse::qr))
        .route("/v1/kkt/receipts", get(browse::search))
        .route("/v1/kkt/receipts.csv", get(browse::day_csv))
        .route("/v1/kkt/dlq.csv", get(browse::dlq_csv))
        .route("/v1/kkt/buffer/events", get(status::events))
        .route("/v1/kkt/dlq", get(admin::dlq_list))
        .route("/v1/kkt/review", get(review::list))
}

/// Changes an operator makes (the admin token).
fn admin() -> Router<AppState> {
    Router::new()
        .route("/v1/kkt/buffer/sync", post(admin::sync_now))
        .route("/v1/kkt/dlq/retry", post(admin::dlq_retry_all))
        .route("/v1/kkt/dlq/{receipt_id}/retry", post(admin::dlq_retry_one))
        .route("/v1/kkt/shift/close", post(shift::close))
        .route("/v1/kkt/receipt/{receipt_id}/resolve", post(review::resolve))
}
