//! Requests from the operating system to stop, turned into one orderly stop (the same on every
//! platform): stop taking receipts, let in-flight work finish (bounded), drain the writer, exit 0.
//!
//! - Unix: SIGTERM and SIGINT.
//! - Windows (console programs such as `kkt-adapterd.exe`): Ctrl+C, Ctrl+Break, the console
//!   window closed, the user logging off and the system shutting down. Windows ends the process as
//!   soon as the handler returns from the last three (and at the latest 5 s after a close), so the
//!   handler holds the process until [`stopped`] is called, for at most [`WINDOWS_HOLD`]. What is
//!   cut short there is what a crash would cut short: the next start recovers it (RELIABILITY.md).

/// How long a Windows close, logoff or shutdown event is held open for the orderly stop: under
/// the 5 s Windows gives a console after a close.
pub const WINDOWS_HOLD: std::time::Duration = std::time::Duration::from_millis(4500);

/// The stop handlers, installed the moment this is created: a request that arrives while the
/// program is still starting is kept, not left to the default action (which would kill the
/// process without an orderly stop). Create it first thing, inside the runtime.
pub struct ShutdownSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(windows)]
        {
            windows::install()?;
            Ok(ShutdownSignals {})
        }
        #[cfg(not(any(unix, windows)))]
        Ok(ShutdownSignals {})
    }

    /// Resolves when a stop is requested.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(windows)]
        {
            let _ = &mut self;
            windows::requested().await;
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The orderly stop is done: a Windows close, logoff or shutdown handler waiting for it returns
/// and lets Windows end the process. Does nothing elsewhere.
pub fn stopped() {
    #[cfg(windows)]
    windows::stopped();
}

#[cfg(windows)]
mod windows {
    use super::WINDOWS_HOLD;
    use std::sync::{Condvar, Mutex, OnceLock};
    use tokio::sync::Notify;
    use windows_sys::Win32::System::Console::{
        CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT, SetConsoleCtrlHandler,
    };

    struct Shared {
        /// `notify_one` keeps a permit when nobody waits yet: an early request is not lost.
        requested: Notify,
        stopped: Mutex<bool>,
        done: Condvar,
    }

    static SHARED: OnceLock<Shared> = OnceLock::new();
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

    fn shared() -> &'static Shared {
        SHARED.get_or_init(|| Shared {
            requested: Notify::new(),
            stopped: Mutex::new(false),
            done: Condvar::new(),
        })
    }

    /// Runs on a thread Windows creates for the event. TRUE: handled (no default action).
    unsafe extern "system" fn handler(event: u32) -> windows_sys::core::BOOL {
        let s = shared();
        match event {
            CTRL_C_EVENT | CTRL_BREAK_EVENT => {
                s.requested.notify_one();
                1
            }
            CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => {
                s.requested.notify_one();
                let guard = s.stopped.lock().unwrap_or_else(|e| e.into_inner());
                let _ = s.done.wait_timeout_while(guard, WINDOWS_HOLD, |stopped| !*stopped);
                1
            }
            _ => 0,
        }
    }

    pub(super) fn install() -> std::io::Result<()> {
        shared();
        let result = INSTALLED.get_or_init(|| {
            // SAFETY: `handler` is a plain function that lives as long as the program and touches
            // only process-wide synchronisation objects.
            if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
                Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
            } else {
                Ok(())
            }
        });
        result.map_err(std::io::Error::from_raw_os_error)
    }

    pub(super) async fn requested() {
        shared().requested.notified().await;
    }

    pub(super) fn stopped() {
        let s = shared();
        *s.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        s.done.notify_all();
    }
}
