//! `mock-atol`: a test server speaking the protocol of ATOL's "Driver KKT v10" web server, with a
//! fiscal drive that persists across restarts and device faults switchable at run time.
//!
//! Written from the public descriptions collected in the adapter's
//! `docs/research/atol-web-server.md` (sources S1–S12 there: ATOL's own JSON task scripts
//! `AlexanderYekat/atolexamplesjson`, the web-server re-implementations `ArchDemons/atolwebserver`
//! and `ShidaGitHub/AtolWebServerNSG`, the Web Requests clone `avb56/kktsite-agent`, the typed
//! wrappers `ExLuzZziVo/KKTServiceLib` and `pbardov/node-atol-rpc`). What it speaks:
//!
//! - `POST /api/v2/requests` `{uuid, request: [task]}` → 201 `{number, uuid, isBlocked,
//!   blockedUUID}`, 409 for a known uuid, 400 for a body without them or with more than one
//!   fiscal task (§1.2); tasks run in the background, `wait` → `inProgress` → `ready` | `error`;
//! - `GET /api/v2/requests/{uuid}` → `{results: [{status, error: {code, description}, result}]}`
//!   (or the older flat `errorCode`/`errorDescription` with the `flat_errors` fault), 404 unknown;
//! - tasks `sell`, `sellReturn`, `buy`, `buyReturn`, the four corrections, `openShift`,
//!   `closeShift`, `getShiftStatus`, `getDeviceStatus`, `getDeviceInfo`, `getShiftTotals` (its
//!   cash counter from each receipt's cash net of change; S1 `json_getShiftTotals.js`),
//!   `ofdExchangeStatus`, `getFnStatus`, `getFnDocument` with the result shapes of §2 (`fiscalParams`, `shiftStatus`, `deviceStatus`,
//!   `status`/`errors`, `fnStatus`, `documentTLV`);
//! - device errors with the driver's codes: 2 no connection, 44 no paper, 45 cover open, 68 shift
//!   over 24 hours, 501 a task it cannot parse, 66 not fully paid, and any code of the public
//!   table on demand;
//! - `getFnDocument` in the driver's own shape (`documentTLV`: 1077 as hex, 1041 absent, 1054,
//!   1038, 1042 present; the short mode without items or tag) — `documents.rs`, sources there;
//! - `409` for a known uuid ("задание с таким UUID уже есть") and for a device that is not
//!   connected ("ККТ [1] не подключена"), HTTP Basic authentication when credentials are set.
//!
//! Faults (`POST /mock/control`, merged; each with its public source in `faults.rs`): before the
//! FN write — `paper_out`, `cover_open`, `disconnected` (tasks end in 2), `not_connected` (the
//! 409), `hang` (tasks stay `inProgress`), `refuse`, `error_code` (any code, for each class of
//! the table); jobs that vanish before they run — `vanish_next_job`; after the FN write —
//! `crash_after_register` (the job lost), `error_after_write` (2, 241, 177, 44: an error result
//! for a written receipt), `blocked_after_write` (`blocked`, then a thin recovered `ready`),
//! `hang_after_write`; the FN — `short_documents`, `drop_tag` (1192 not kept), `ofd_down`;
//! the transport — `task_ms`, `flat_errors` (the pre-10.7 result shape), `garbage`, `huge`,
//! `trickle`. A second program printing on the same register: `MockAtol::foreign_receipt`; a
//! server restarted with its queue in memory: `MockAtol::forget_jobs`. `POST /mock/clock`
//! `{"advance_secs": n}` moves the device's clock. `GET /mock/stats` lists every fiscal document
//! with the uuid of the task that made it; `MockAtol::document_reads` counts `getFnDocument`
//! reads per document.

mod counter;
mod device;
mod documents;
mod faults;
mod jobs;
mod marks;
mod server;
mod slow;

pub use counter::Executed;
pub use documents::{Document, Item};
pub use faults::Faults;
pub use server::{MockAtol, spawn};
