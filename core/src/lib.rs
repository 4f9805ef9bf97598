//! KKT Adapter core — everything that matters, with no GUI.
//!
//! POS software posts a sale to the local HTTP API ([`api`]). The handler validates it exactly
//! ([`receipt`], [`money`]: integer kopecks, never floats) and hands it to the [`buffer`], whose
//! single writer thread groups waiting requests into one SQLite transaction: idempotency check
//! and the intent row — one commit, one fsync for the batch. The buffer's device thread then has
//! the fiscal register ([`kkt`]: a trait for real registers, the mock behind it) register the
//! receipts; the register's fiscal attributes and the exact answer go back through the writer in
//! the next commit, with their event ([`events`]), and only then does the till get its answer
//! (or `202 awaiting_device` past a bound). The sync [`worker`] (one loop, woken by intake,
//! manual sync, the breaker's probe time or a timer) claims due receipts in fiscal order and
//! delivers them to the OFD through [`ofd`] (HTTP client, or a simulator in demo mode) behind the
//! [`breaker`];
//! outcomes go back through the writer (retry with backoff, DLQ after 20 attempts or a
//! rejection). [`status`] folds counts, breaker and worker heartbeat into one snapshot read by
//! the API, [`metrics`], the web UI and the desktop shell; [`alerts`] turns events and that
//! snapshot into rate-limited operator notifications. [`app`] wires it all together from
//! [`settings`] and shuts it down in order ([`datadir`]: the lock and the admin token file);
//! [`retention`] keeps the database and slips bounded.

pub mod alerts;
pub mod api;
pub mod app;
pub mod breaker;
pub mod buffer;
pub mod compat;
pub mod counters;
pub mod datadir;
pub mod events;
pub mod failpoint;
pub mod kkt;
pub mod marking;
pub mod metrics;
pub mod money;
pub mod ofd;
#[cfg(windows)]
pub mod protect_windows;
pub mod receipt;
pub mod retention;
pub mod settings;
pub mod signals;
pub mod status;
pub mod telemetry;
pub mod time;
pub mod units;
pub mod watch;
pub mod worker;

pub use app::App;
pub use settings::Settings;
