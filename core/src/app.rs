//! The composition root: `App::build(settings)` opens the buffer, starts the one sync worker and
//! binds the API (port 0 allowed); `shutdown()` stops intake, lets in-flight requests and sends
//! finish, drains the writer, and returns.

use crate::alerts::{self, Alerter, Notifier};
use crate::api::{self, AppState};
use crate::breaker::Breaker;
use crate::buffer::{Buffer, BufferConfig};
use crate::counters::Metrics;
use crate::datadir;
use crate::kkt::{Kkt, MockKkt, MockKktConfig};
use crate::ofd::{FnDelivery, HttpOfd, Ofd, SimulatedOfd};
use crate::retention::{self, Retention};
use crate::settings::Settings;
use crate::status::StatusSource;
use crate::time::Clock;
use crate::worker::{self, WorkerHandle};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::signals::ShutdownSignals;

/// How long shutdown waits for in-flight requests and sends before giving up on them
/// (an interrupted send stays `syncing` and is recovered at the next start).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct App {
    addr: SocketAddr,
    state: AppState,
    cancel: CancellationToken,
    tracker: TaskTracker,
    alerter: Option<Alerter>,
    /// The runtime the app was built on: later spawns go there, whichever thread asks.
    runtime: tokio::runtime::Handle,
    /// The mock register, when it is the driver (its faults, for tests and the demo).
    mock_kkt: Option<Arc<MockKkt>>,
    /// The vendor fronts' own listeners (`[compat]`), as bound.
    fronts: Vec<(api::Front, SocketAddr)>,
    /// Held for the life of the process: one instance per data directory.
    _lock: File,
}

/// The register as the buffer drives it, and the mock also as itself (for its faults).
type Register = (Arc<dyn Kkt>, Option<Arc<MockKkt>>);

/// The fiscal register driver the settings name: the mock (default) or ATOL's.
fn open_kkt(settings: &Settings) -> anyhow::Result<Register> {
    if settings.kkt.driver == crate::settings::KktDriver::Atol {
        let a = &settings.kkt.atol;
        let kkt = crate::kkt::atol::AtolKkt::open(crate::kkt::atol::AtolConfig {
            url: a.url.clone(),
            device_id: Some(a.device_id.clone()).filter(|d| !d.is_empty()),
            job_bound: a.job_bound,
            poll_every: a.poll_every,
            auto_shift: settings.kkt.auto_shift,
            journal: Some(settings.data_dir.join("atol-journal.db")),
            credentials: a
                .user
                .clone()
                .zip(a.password.as_ref().map(|p| p.expose_secret().to_string())),
            ca_file: a.ca_file.clone(),
        })
        .map_err(anyhow::Error::msg)?;
        return Ok((Arc::new(kkt), None));
    }
    let fiscal = &settings.fiscal;
    let path = settings.data_dir.join("mock-kkt.db");
    let k = &settings.kkt;
    let kkt = MockKkt::open(MockKktConfig {
        fn_number: k.fn_number.clone(),
        kkt_number: k.kkt_number.clone(),
        seed: crate::buffer::legacy_kkt_counters(&settings.database_path(), &k.fn_number).unwrap_or_default(),
        state_path: Some(path.clone()),
        slip_dir: k.write_slips.then(|| settings.data_dir.join("receipts")),
        print_latency: k.print_latency,
        shift_length: k.shift_length,
        auto_shift: k.auto_shift,
        seller: fiscal.seller(),
        zone: fiscal.zone(),
    })
    .with_context(|| format!("cannot open the mock register's fiscal memory {}", path.display()))?;
    let kkt = Arc::new(kkt);
    Ok((kkt.clone(), Some(kkt)))
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        App::build_with_clock(settings, Clock::new()).await
    }

    /// [`App::build`] on a given clock: tests move it forward (a shift's 24 hours, the FN's 30 days).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<App> {
        settings.check_security()?;
        settings
            .marking
            .check(settings.ofd_url.is_none())
            .map_err(|e| anyhow::anyhow!(e))?;
        datadir::private_umask();
        let lock = datadir::lock(&settings.data_dir, settings.data_dir_explicit)?;
        let token = datadir::admin_token(&settings)?;
        let pos_token = datadir::pos_token(&settings)?;
        let (kkt, mock_kkt) = open_kkt(&settings)?;
        tracing::info!(kkt = %kkt.describe(), "fiscal register");
        let kkt_delivers_itself = settings.kkt.driver == crate::settings::KktDriver::Atol;
        let kkt_for_delivery = kkt.clone();
        let buffer = Buffer::open(
            BufferConfig {
                path: settings.database_path(),
                capacity: settings.buffer.capacity,
                max_db_bytes: settings.buffer.max_db_bytes,
                answer: api::answers::receipt,
                answer_within: settings.kkt.answer_within,
                device_retry: settings.kkt.device_retry,
                late_sale_after: settings.kkt.late_sale_after(),
                zone: settings.fiscal.zone(),
                clock: clock.clone(),
            },
            kkt.clone(),
        )?;
        let http_ofd: Option<Arc<dyn Ofd>> = match &settings.ofd_url {
            Some(url) => Some(Arc::new(HttpOfd::new(
                url,
                settings.ofd.token.as_ref().map(|t| t.expose_secret().to_string()),
                settings.ofd.connect_timeout,
                settings.ofd.timeout,
            )?)),
            None => None,
        };
        // A register whose FN sends documents itself decides delivery (docs/contract.md §7); the
        // OFD URL, if set, gets a copy.
        let ofd: Arc<dyn Ofd> = if kkt_delivers_itself {
            Arc::new(FnDelivery::new(kkt_for_delivery, http_ofd))
        } else {
            match http_ofd {
                Some(o) => o,
                None => Arc::new(SimulatedOfd::new(settings.ofd.simulator_latency)),
            }
        };
        let metrics = Arc::new(Metrics::default());
        let (worker, handle) = worker::new(
            buffer.clone(),
            ofd,
            settings.sync,
            Breaker::new(settings.breaker),
            clock.clone(),
            metrics.clone(),
        );
        let listener = tokio::net::TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another program using this port?)",
                settings.listen
            )
        })?;
        let addr = listener.local_addr().context("cannot read the bound address")?;
        let device_watch = crate::watch::DeviceWatch::default();
        let (kkt_for_marking, clock_for_marking) = (kkt.clone(), clock.clone());
        let stale = 3 * settings.sync.interval + 2 * settings.ofd.timeout + Duration::from_secs(15);
        let state = AppState {
            status: StatusSource {
                buffer: buffer.clone(),
                worker: handle.clone(),
                capacity: settings.buffer.capacity,
                fn_warn_age: settings.alerts.fn_warn_age,
                fn_critical_age: settings.alerts.fn_critical_age,
                heartbeat_stale_after: stale,
                device_watch: device_watch.clone(),
            },
            buffer,
            worker: handle,
            metrics,
            admin_token: Arc::new(secrecy::SecretString::from(token)),
            access: Arc::new(api::Access::new(
                settings.http.read_token.clone(),
                pos_token,
                settings.http.pos_tokens.clone().into_iter().collect(),
                settings.http.require_pos_token,
            )),
            allowed_hosts: settings.http.allowed_hosts.clone().into(),
            local_addr: addr,
            in_flight: Arc::new(Mutex::new(Default::default())),
            defaults: Arc::new(settings.fiscal.defaults()),
            kkt,
            clock,
            seller: Arc::new(settings.fiscal.seller()),
            zone: settings.fiscal.zone(),
            marking: crate::marking::Checker::new(
                settings.marking.clone(),
                kkt_for_marking,
                settings.kkt.fn_number.clone(),
                clock_for_marking,
            )?,
            compat: Arc::new(settings.compat.clone()),
            jobs: Default::default(),
        };
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(worker.run(cancel.child_token()));
        let retention = Retention {
            keep: settings.buffer.retention,
            every: settings.buffer.purge_interval,
            slip_dir: settings.kkt.write_slips.then(|| settings.data_dir.join("receipts")),
        };
        tracker.spawn(retention::run(state.buffer.clone(), retention, cancel.child_token()));
        tracker.spawn(crate::watch::run(
            state.kkt.clone(),
            state.clock.clone(),
            settings.kkt.watch_every,
            device_watch,
            Some(state.marking.clone()),
            cancel.child_token(),
        ));
        let router = api::router(state.clone());
        let limits = settings.http.limits();
        let stop = cancel.child_token();
        tracker.spawn(async move {
            api::serve::serve(listener, router, limits, stop).await;
        });
        let mut fronts = Vec::new();
        for (front, listen) in [
            (api::Front::Atol, settings.compat.atol_listen),
            (api::Front::Kkmserver, settings.compat.kkmserver_listen),
        ] {
            let Some(listen) = listen else { continue };
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
                format!(
                    "cannot listen on {listen} for the {front:?} front ([compat]; is the vendor's own server running?)"
                )
            })?;
            let bound = listener.local_addr().context("cannot read the bound address")?;
            let router = api::front_router(
                AppState {
                    local_addr: bound,
                    ..state.clone()
                },
                front,
            );
            let stop = cancel.child_token();
            tracker.spawn(async move { api::serve::serve(listener, router, limits, stop).await });
            tracing::info!(%bound, ?front, "vendor front listening on http://{bound}");
            fronts.push((front, bound));
        }
        tracing::info!(%addr, data_dir = %settings.data_dir.display(), "KKT Adapter listening on http://{addr}");
        Ok(App {
            addr,
            state,
            cancel,
            tracker,
            alerter: Some(Alerter::new(
                settings.alerts.dlq_threshold,
                settings.alerts.min_interval,
            )),
            runtime: tokio::runtime::Handle::current(),
            mock_kkt,
            fronts,
            _lock: lock,
        })
    }

    /// The address the API is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A vendor front's own listener's address, when `[compat]` configured one.
    pub fn front_addr(&self, front: api::Front) -> Option<SocketAddr> {
        self.fronts.iter().find(|(f, _)| *f == front).map(|(_, a)| *a)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn worker(&self) -> &WorkerHandle {
        &self.state.worker
    }

    /// The mock register, when it is the driver.
    pub fn mock_kkt(&self) -> Option<&MockKkt> {
        self.mock_kkt.as_deref()
    }

    /// The API's router on this app's state, for tests that play a peer the socket cannot (a
    /// LAN address: `api::Peer` set by hand on the request).
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// The admin token, for the desktop shell to hand to its window and for tests.
    pub fn admin_token(&self) -> &str {
        self.state.admin_token.expose_secret()
    }

    /// Starts delivering operator alerts to `notifier` (once; later calls do nothing).
    pub fn spawn_alerts(&mut self, notifier: Arc<dyn Notifier>) {
        if let Some(alerter) = self.alerter.take() {
            let source = self.state.status.clone();
            let task = alerts::run(source, notifier, alerter, self.cancel.child_token());
            self.tracker.spawn_on(task, &self.runtime);
        }
    }

    /// Stops intake and the worker, waits (bounded) for in-flight work, then drains the writer.
    pub async fn shutdown(self) {
        tracing::info!("shutting down: no new receipts are taken");
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_err() {
            tracing::warn!(
                "in-flight work did not finish in {SHUTDOWN_GRACE:?}; interrupted sends are recovered at next start"
            );
        }
        self.state.buffer.close().await;
        tracing::info!("stopped");
    }
}
