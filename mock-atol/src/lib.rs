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
//!   `closeShift`, `getShiftStatus`, `getDeviceStatus`, `ofdExchangeStatus`, `getFnStatus`,
//!   `getFnDocument` with the result shapes of §2 (`fiscalParams`, `shiftStatus`, `deviceStatus`,
//!   `status`/`errors`, `fnStatus`, `documentTLV`);
//! - device errors with the driver's codes: 2 no connection, 44 no paper, 45 cover open, 68 shift
//!   over 24 hours, 501 a task it cannot parse, 66 not fully paid.
//!
//! Faults (`POST /mock/control`, merged): `paper_out`, `cover_open`, `disconnected`, `hang` (tasks
//! stay `inProgress`), `crash_after_register` (the next fiscal task is registered in the FN and
//! then the job is lost, as if the server died before storing its result: `GET` answers 404),
//! `ofd_down` (the FN sends nothing to the OFD), `task_ms` (execution time), `flat_errors`,
//! `garbage` (answers that are not JSON), `huge` (a 5 MiB answer), `trickle` (answers dribbled
//! out byte by byte). `POST /mock/clock` `{"advance_secs": n}` moves the device's clock.
//! `GET /mock/stats` lists every fiscal document with the uuid of the task that made it.

mod device;
mod documents;
mod faults;
mod jobs;
mod server;
mod slow;

pub use documents::{Document, Item};
pub use faults::Faults;
pub use server::{MockAtol, spawn};
