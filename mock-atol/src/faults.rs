//! Device and server faults, switchable at run time (`POST /mock/control`, merged). Each is a
//! way a real register or its web server answers that our driver must survive; the source that
//! shows it is named with each (sources S1–S12 of docs/research/atol-web-server.md, and the
//! notes of docs/research/atol-exactly-once.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// 44 "Нет бумаги" before the receipt opens (S6 `KKTErrorType.cs`).
    pub paper_out: bool,
    /// 45 "Открыта крышка".
    pub cover_open: bool,
    /// The web server cannot reach the device: tasks end in 2 "Нет связи" (the Java servers,
    /// S2/S3, queue the job and fail it).
    pub disconnected: bool,
    /// Web Requests refuses the job itself: `409` "ККТ [1] не подключена" (S5 `src/device.js`,
    /// its duplicate-uuid check runs first).
    pub not_connected: bool,
    /// Tasks stay `inProgress` until this is switched off (our reading: a driver call that does
    /// not return; S2's "driver not opened → job stays `wait`" is the nearest public case).
    pub hang: bool,
    /// The next fiscal receipt (or cash in/out) is registered, then its job is lost (`GET` →
    /// 404), as if the server died before it stored the result.
    pub crash_after_register: bool,
    /// The next posted job with a receipt task is answered `201` and then never run nor kept
    /// (`GET` → 404): a server restarted with its queue in memory (S5 `README.md`: the queue is
    /// not persisted).
    pub vanish_next_job: bool,
    /// The next fiscal receipt is written in the FN, then its job ends in `error` with this
    /// code: the link lost while the receipt closes (2, 241), the FN's close interrupted (177),
    /// the paper running out after fiscalization (44) — the driver's sell script reports an
    /// error when `closeReceipt` fails and it cannot see the document closed (S1
    /// `myscripts_base_receipt.js`). A cash in/out meets it the same way: S1's cash scripts
    /// fail when the drawer cannot be read after the money was registered.
    pub error_after_write: Option<i64>,
    /// The next fiscal receipt is written, its job goes `blocked` for `block_ms`, then `ready`
    /// with the thin recovered result `{fiscalParams: {fiscalDocumentNumber}, warnings:
    /// {notPrinted: true}}` (S5 `src/device.js` pRecover).
    pub blocked_after_write: bool,
    pub block_ms: u64,
    /// The next fiscal receipt is written, then its job stays `inProgress` until this is
    /// switched off (then `ready`): the FN has it, the result is not read yet.
    pub hang_after_write: bool,
    /// The next fiscal receipt is written and its paper runs out before the slip is through:
    /// the job is `ready` with `warnings.notPrinted: true`, as S1's sell script answers when the
    /// FN closed the document but printing failed (`myscripts_base_receipt.js`,
    /// `getFiscalDocumentResult`); `continuePrint` prints the rest
    /// (docs/research/atol-counter-operations.md §6.3).
    pub not_printed_after_write: bool,
    /// The ОИСМ (marking operator) cannot be reached: a code check is `ready` with only
    /// `driverError` 411 `serverNoConnect`, no `onlineValidation` (S1 `driverErrorObject`).
    pub ism_down: bool,
    /// `getFnDocument` answers the short document (`short: true`: 1012, 1040, 1077, 1054,
    /// 1020 only — no tag, no items), as the driver's script does when the FN cannot give
    /// the document's TLVs (S1 `json_getFnDocument.js`).
    pub short_documents: bool,
    /// The FN keeps no additional attribute (1192): documents come back without the tag. Our
    /// reading: no public sample of a full getFnDocument with 1192 exists (research §2, §5).
    pub drop_tag: bool,
    /// The FN sends nothing to the OFD; `ofdExchangeStatus` shows a network error (shape S1/S6,
    /// atol-web-server.md §2.6; the code and text are ours).
    pub ofd_down: bool,
    /// How long a task takes, in milliseconds (a test knob, no source).
    pub task_ms: u64,
    /// Results with `errorCode`/`errorDescription` instead of `error: {code, description}`
    /// (the pre-10.7 server, S3 and S10).
    pub flat_errors: bool,
    /// The next receipt is refused as the driver refuses a task it cannot parse (501
    /// «Некорректное значение поля …»: S1 validation texts, S6 `RECEIPT_PARSE_ERROR`).
    pub refuse: bool,
    /// The next receipt meets this error code, before anything is written (for codes no table
    /// has, and for each class of `core/src/kkt/atol/codes.tsv`; a test knob, codes from S6).
    pub error_code: Option<i64>,
    /// `GET /api/v2/requests/{uuid}` answers with text that is not JSON (the Java servers'
    /// error pages, S2; a proxy's page).
    pub garbage: bool,
    /// `GET /api/v2/requests/{uuid}` answers with 5 MiB (robustness, no source).
    pub huge: bool,
    /// Answers are sent a byte at a time, slowly (robustness, no source).
    pub trickle: bool,
}
