//! The register's shift (docs/contract.md §6), `GET /v1/kkt/shift`, and the register itself,
//! `GET /v1/kkt/device` (§11): reads, each asking the register off the runtime. Closing the
//! shift and the other counter operations are in `counter`.

use super::{ApiError, AppState};
use crate::kkt::{DeviceError, Kkt};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Runs a register call on the blocking pool (a device is slow).
pub(super) async fn on_register<T: Send + 'static>(
    kkt: Arc<dyn Kkt>,
    call: impl FnOnce(&dyn Kkt) -> Result<T, DeviceError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || call(kkt.as_ref()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::from)
}

/// `GET /v1/kkt/shift`: state (open, expired, closed), number, opened_at, receipts.
pub async fn show(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = state.clock.utc();
    let shift = on_register(state.kkt.clone(), move |k| k.shift(now)).await?;
    Ok(Json(shift).into_response())
}

/// `GET /v1/kkt/device`: model, serial, FFD, the FN and its validity, the shift, paper and
/// cover, the FN's unsent documents, the cash in the drawer — read from the register now.
pub async fn device(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = state.clock.utc();
    let info = on_register(state.kkt.clone(), move |k| k.device_info(now)).await?;
    Ok(Json(info).into_response())
}
