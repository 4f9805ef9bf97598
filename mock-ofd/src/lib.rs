//! `mock-ofd`: a real HTTP server speaking the OFD protocol of docs/contract.md §2, for tests,
//! benchmarks and demos. It de-duplicates by `Idempotency-Key` (a repeat gets 409), counts what it
//! receives, and injects faults switchable at run time through `POST /ofd/v1/_control`:
//! latency, a failure rate with a status (and `Retry-After`), `down` (every connection is reset),
//! `hang` (requests never answered), and rejection rules. An FFD 1.2 document (`ffd_version: 4`)
//! is checked against the format's rules first ([`ffd`]) and refused with 422 and the list of
//! problems if it breaks one.
//!
//! Endpoints: `POST /ofd/v1/receipt`, `GET /ofd/v1/health`, `POST /ofd/v1/_test/reset`,
//! `GET|POST /ofd/v1/_control`, `GET /ofd/v1/_stats`. A second, always-up control port can be
//! opened so the faults can be switched off while the main port is `down`.

pub mod ffd;
mod listener;
mod server;

pub use server::{Faults, MockOfd, Stats, spawn};
