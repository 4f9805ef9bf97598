//! Desktop notifications for the core's alerts, through notify-rust. Without a notification
//! daemon the first failure is logged as a warning and later ones quietly skipped.

use kkt_core::alerts::{Alert, Notifier};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub struct DesktopNotifier {
    warned: AtomicBool,
}

impl Notifier for DesktopNotifier {
    fn notify(&self, alert: &Alert) {
        let (title, body) = alert.text();
        tracing::info!(%title, "notification");
        let mut n = notify_rust::Notification::new();
        n.appname("KKT Adapter").summary(&title).body(&body);
        #[cfg(all(unix, not(target_os = "macos")))]
        if alert.is_critical() {
            n.urgency(notify_rust::Urgency::Critical);
        }
        if let Err(e) = n.show()
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "desktop notifications are unavailable (no notification daemon?); alerts go to the log only");
        }
    }
}
