//! The vendor fronts' jobs (docs/contract.md §13): what runs them and what they call.
//!
//! A job (an ATOL uuid, a kkmserver `IdCommand`) is stored with its request before anything is
//! done (`compat_jobs`), then run by one task at a time in the background — one runner per job
//! ([`Jobs`]), so a POS that polls cannot start it twice — its results stored after each task.
//! Each task calls the native path itself ([`receipt`], [`operation`]): the receipt or operation
//! is stored under a key made from the job's id, so running a job again (after a restart, a
//! `GET` that finds it unfinished, a client's retry) replays what was done and never does it
//! twice on the register.

use super::{ApiError, AppState};
use crate::receipt::OpKind;
use crate::receipt::counter::Operation;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The jobs being run now, and which task each is on.
#[derive(Default)]
pub struct Jobs {
    running: Mutex<HashMap<(&'static str, String), usize>>,
    /// Bumped whenever a runner ends.
    ended: tokio::sync::Notify,
}

/// Removes its job from [`Jobs`] when the runner ends, however it ends.
pub(super) struct Running {
    jobs: std::sync::Arc<Jobs>,
    key: (&'static str, String),
}

impl Running {
    /// The runner is on task `i` now.
    pub fn on(&self, i: usize) {
        if let Ok(mut map) = self.jobs.running.lock() {
            map.insert(self.key.clone(), i);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(mut map) = self.jobs.running.lock() {
            map.remove(&self.key);
        }
        self.jobs.ended.notify_waiters();
    }
}

impl Jobs {
    /// Claims the job for one runner; `None` if one is running it already.
    /// Claimed before the runner is spawned, so whoever spawned it sees it running at once.
    pub(super) fn start(self: &std::sync::Arc<Self>, front: &'static str, id: &str) -> Option<Running> {
        let key = (front, id.to_string());
        let mut map = self.running.lock().ok()?;
        if map.contains_key(&key) {
            return None;
        }
        map.insert(key.clone(), 0);
        Some(Running {
            jobs: self.clone(),
            key,
        })
    }

    /// The task a running job is on; `None` when no runner has it.
    pub(super) fn on(&self, front: &'static str, id: &str) -> Option<usize> {
        self.running.lock().ok()?.get(&(front, id.to_string())).copied()
    }

    /// Waits until no runner has the job, at most `within`; `true` if none has it.
    pub(super) async fn idle(&self, front: &'static str, id: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ended = self.ended.notified();
            if self.on(front, id).is_none() {
                return true;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.on(front, id).is_none();
            }
        }
    }
}

/// A native answer: its HTTP status and JSON body.
pub(super) struct Native {
    pub http: u16,
    pub body: Value,
}

pub(super) async fn native(response: Response) -> Native {
    let http = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), super::receipts::MAX_BODY)
        .await
        .unwrap_or_default();
    Native {
        http,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A receipt through the native path (`POST /v1/kkt/receipt`) under `key`, checked by the same
/// parser and the marking gate. Counted as a till's when it is taken or refused; a replay is
/// the job run again (a POS polling a blocked job), not a till's retry, and is not counted.
pub(super) async fn receipt(state: &AppState, key: String, body: &Value) -> Native {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    match super::receipts::take(state, None, key, &bytes).await {
        Ok(r) => {
            if !super::receipts::is_replay(&r) {
                state.metrics.record_intake(crate::counters::Intake::Created);
            }
            native(r).await
        }
        Err(e) => {
            state.metrics.record_intake(crate::counters::Intake::Refused);
            native(e.into_response()).await
        }
    }
}

/// A counter operation through the native path (§11) under `key`; `None`: the drawer.
pub(super) async fn operation(state: &AppState, key: String, kind: Option<OpKind>, body: &Value) -> Native {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let op = match kind {
        None => Ok(Operation::DrawerOpen),
        Some(kind) => crate::receipt::parse_operation(kind, &bytes, &state.defaults).map_err(|e| match e {
            crate::receipt::Invalid::Malformed(m) => ApiError::MalformedJson(m),
            crate::receipt::Invalid::Fields(f) => ApiError::Validation(f),
        }),
    };
    let answer = match op {
        Ok(op) => super::counter::operate(state, None, key, &bytes, op).await,
        Err(e) => Err(e),
    };
    native(answer.unwrap_or_else(IntoResponse::into_response)).await
}

/// SHA-256 of the parts, each ended by a zero byte.
pub(super) fn hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// A job id a vendor's client may send: 1–128 printable ASCII characters (they send GUIDs).
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
