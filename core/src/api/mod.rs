//! The local HTTP API (docs/contract.md §1): `router(state)` builds it; `app` serves it.

mod admin;
pub mod answers;
mod atol_front;
mod browse;
pub mod conn;
mod counter;
mod error;
pub mod guards;
mod headers;
pub mod jobs;
mod kkm_front;
mod marking;
mod receipts;
mod review;
pub mod serve;
mod shift;
mod status;
mod telemetry;
mod ui;

pub use error::ApiError;
pub use guards::{Access, Caller, Peer};

use crate::buffer::Buffer;
use crate::counters::Metrics;
use crate::status::StatusSource;
use crate::worker::WorkerHandle;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
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
    /// The other tokens (read, POS) and what they open; wrong tokens counted per address.
    pub access: Arc<guards::Access>,
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
    /// Marked goods' checks (§12).
    pub marking: crate::marking::Checker,
    /// The vendor fronts (§13): their settings and the jobs being run.
    pub compat: Arc<crate::compat::CompatSettings>,
    pub jobs: Arc<jobs::Jobs>,
}

/// The whole API as a router, without serving it (tests call it directly or over a socket):
/// one router per audience, each guard a layer — open to all (health, metrics), the public
/// reads, the tills' calls, the personal-data reads (admin or read token), the operator's
/// changes (the admin token) — behind the local-security layer (host, origin, who is calling)
/// and the request span (which also stamps the security headers). SECURITY.md "Who reads what" is the table.
pub fn router(state: AppState) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state as guard};
    let routes = Router::new()
        .merge(open())
        .merge(public().route_layer(from_fn(guards::public)))
        .merge(pos().route_layer(guard(state.clone(), guards::pos_only)))
        .merge(atol().route_layer(guard(state.clone(), guards::compat_only)))
        .merge(kkmserver().route_layer(guard(state.clone(), guards::compat_only)))
        .route(KKM_VERSION, get(kkm_front::version))
        .merge(readers().route_layer(from_fn(guards::readers_only)))
        .merge(admin().route_layer(from_fn(guards::admin_only)))
        .fallback(guards::not_found)
        .method_not_allowed_fallback(guards::method_not_allowed);
    with_front_cors(routes, &state.compat)
        .layer(guard(state.clone(), guards::local_only))
        .layer(from_fn(telemetry::request_span))
        .with_state(state)
}

/// What anyone may read, from the network too: health and metrics (counts, no receipts).
fn open() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(status::health))
        .route("/metrics", get(status::metrics))
}

/// What anyone on the machine may read (from the network: any token of ours): the status, the
/// shift, the 24-hour activity, the window's files, the OpenAPI spec.
fn public() -> Router<AppState> {
    Router::new()
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

/// The tills' calls: a receipt in, and a receipt's state back (a till's own token sees only its
/// own receipts; without one, the view leaves out personal data); the register's own state.
fn pos() -> Router<AppState> {
    Router::new()
        .route("/v1/kkt/receipt", post(receipts::create))
        .route("/v1/kkt/receipt/{receipt_id}", get(receipts::show))
        .route("/v1/kkt/device", get(shift::device))
        .route("/v1/kkt/marking/check", post(marking::check))
        .route("/v1/kkt/shift/open", post(counter::shift_open))
        .route("/v1/kkt/shift/close", post(counter::shift_close))
        .route("/v1/kkt/report/x", post(counter::report_x))
        .route("/v1/kkt/cash", post(counter::cash))
        .route("/v1/kkt/drawer/open", post(counter::drawer_open))
        .route("/v1/kkt/print", post(counter::print))
        .route("/v1/kkt/receipt/{receipt_id}/copy", post(counter::copy))
}

/// The fronts' paths (§13), named once for their routes and for [`is_front_path`].
const ATOL_REQUESTS: &str = "/api/v2/requests";
const ATOL_REQUEST: &str = "/api/v2/requests/{uuid}";
const KKM_EXECUTE: &str = "/Execute";
const KKM_EXECUTE_SYNC: &str = "/Execute/sync";
const KKM_VERSION: &str = "/VersionJSON";

/// Whether a path is one of the fronts' routes: the only ones `[compat] allowed_origins` opens
/// to a web page of another origin.
pub(crate) fn is_front_path(path: &str) -> bool {
    let one_job = path
        .strip_prefix(ATOL_REQUESTS)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|uuid| !uuid.is_empty() && !uuid.contains('/'));
    one_job || [ATOL_REQUESTS, KKM_EXECUTE, KKM_EXECUTE_SYNC, KKM_VERSION].contains(&path)
}

/// The ATOL Web Requests front (§13): the tills' rules, or HTTP Basic (`guards::compat_only`).
fn atol() -> Router<AppState> {
    Router::new()
        .route(ATOL_REQUESTS, post(atol_front::post))
        .route(ATOL_REQUEST, get(atol_front::get).delete(atol_front::delete))
}

/// The kkmserver front (§13).
fn kkmserver() -> Router<AppState> {
    Router::new()
        .route(KKM_EXECUTE, post(kkm_front::execute))
        .route(KKM_EXECUTE_SYNC, post(kkm_front::execute))
}

/// CORS on the fronts' routes for the web POS pages of `[compat] allowed_origins`: their
/// preflights answered (the headers asked for allowed, credentials too, as kkmserver does), the
/// origin echoed on every answer, Private Network Access granted when Chrome asks. Other routes
/// pass through untouched; with none configured there is no layer at all (an `OPTIONS` stays
/// 405). Inside `guards::local_only`, which lets those origins through to the fronts' routes only.
fn with_front_cors(routes: Router<AppState>, compat: &crate::compat::CompatSettings) -> Router<AppState> {
    use axum::http::{HeaderValue, Method};
    use tower::{Layer, ServiceExt};
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    let list: Vec<HeaderValue> = compat
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    if list.is_empty() {
        // No layer at all: the default set-up's requests pay nothing for this.
        return routes;
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .allow_private_network(true)
        .max_age(std::time::Duration::from_secs(600));
    routes.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
        // Cloned for the fronts' requests only.
        let cors = is_front_path(request.uri().path()).then(|| cors.clone());
        async move {
            match cors {
                Some(cors) => match cors.layer(next).oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => next.run(request).await,
            }
        }
    }))
}

/// Which vendor's front an extra listener serves (`[compat] atol_listen`, `kkmserver_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Atol,
    Kkmserver,
}

/// One vendor's front alone, for its own listener on the vendor's port: the same guards as on
/// the main listener (host, origin, who is calling, the Basic layer), with `state.local_addr`
/// this listener's address.
pub fn front_router(state: AppState, front: Front) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state as guard};
    let (routes, open) = match front {
        Front::Atol => (atol(), Router::new()),
        Front::Kkmserver => (kkmserver(), Router::new().route(KKM_VERSION, get(kkm_front::version))),
    };
    let routes = Router::new()
        .merge(routes.route_layer(guard(state.clone(), guards::compat_only)))
        .merge(open)
        .route("/v1/health", get(status::health))
        .fallback(guards::not_found)
        .method_not_allowed_fallback(guards::method_not_allowed);
    with_front_cors(routes, &state.compat)
        .layer(guard(state.clone(), guards::local_only))
        .layer(from_fn(telemetry::request_span))
        .with_state(state)
}

/// What names customers, cashiers and every till's sales: the admin or the read token.
fn readers() -> Router<AppState> {
    Router::new()
        .route("/v1/kkt/receipt/{receipt_id}/slip", get(browse::slip))
        .route("/v1/kkt/receipt/{receipt_id}/qr.svg", get(browse::qr))
        .route("/v1/kkt/receipts", get(browse::search))
        .route("/v1/kkt/receipts.csv", get(browse::day_csv))
        .route("/v1/kkt/dlq.csv", get(browse::dlq_csv))
        .route("/v1/kkt/buffer/events", get(status::events))
        .route("/v1/kkt/dlq", get(admin::dlq_list))
        .route("/v1/kkt/review", get(review::list))
        .route("/v1/kkt/marking/checks", get(marking::day))
}

/// Changes an operator makes (the admin token).
fn admin() -> Router<AppState> {
    Router::new()
        .route("/v1/kkt/buffer/sync", post(admin::sync_now))
        .route("/v1/kkt/dlq/retry", post(admin::dlq_retry_all))
        .route("/v1/kkt/dlq/{receipt_id}/retry", post(admin::dlq_retry_one))
        .route("/v1/kkt/receipt/{receipt_id}/resolve", post(review::resolve))
        .route("/v1/kkt/pos-token", get(admin::pos_token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_fronts_routes_are_front_paths() {
        for front in [
            "/api/v2/requests",
            "/api/v2/requests/3b6f0c9e",
            "/Execute",
            "/Execute/sync",
            "/VersionJSON",
        ] {
            assert!(super::is_front_path(front), "{front}");
        }
        for other in [
            "/api/v2/requestsX",
            "/api/v2/requests/",
            "/api/v2/requests/a/b",
            "/v1/kkt/receipt",
            "/ui/",
        ] {
            assert!(!super::is_front_path(other), "{other}");
        }
    }
}
