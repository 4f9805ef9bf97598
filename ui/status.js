// The status cards, the device state and the banners: one render of `GET /v1/kkt/buffer/status`.
import { t, onLanguage } from "./i18n.js";
import { $, setText, human, since } from "./format.js";

let last = null;
export const lastStatus = () => last;
onLanguage(() => last && render(last));

const hook = (id) => document.querySelector(`[data-testid="${id}"]`);

export function render(s) {
  last = s;
  setText(hook("pending-count"), s.pending);
  setText(hook("synced-count"), s.synced);
  setText(hook("dlq-count"), s.dlq_size);
  setText(hook("breaker-state"), s.breaker.state);
  setText(hook("network-status"), s.network_status);
  setText(hook("oldest-pending-age"), s.oldest_pending_age_seconds ?? "");
  setText($("syncing-count"), s.syncing);
  setText($("total-count"), s.total_receipts);
  setText($("last-sync"), since(s.last_sync_at));
  setText($("breaker-label"), t(s.breaker.state));
  setText($("network-label"), t(s.network_status));
  $("oldest-seconds").hidden = s.oldest_pending_age_seconds == null;
  setText($("next-probe"), s.breaker.next_probe_in_seconds != null ? `· ${t("probe-in")} ${Math.ceil(s.breaker.next_probe_in_seconds)} ${t("s")}` : "");
  setText($("oldest-human"), s.oldest_pending_age_seconds == null ? t("none") : human(s.oldest_pending_age_seconds));
  hook("network-status").className = `raw net-${s.network_status}`;
  $("network-label").className = `net-${s.network_status}`;
  $("dlq-value").className = s.dlq_size > 0 ? "value bad" : "value";
  $("mode-badge").hidden = s.mode !== "demo";
  const fn = s.fn_age;
  const banner = $("fn-banner");
  banner.hidden = fn.level === "ok";
  banner.className = `banner ${fn.level === "warning" ? "warning" : "critical"}`;
  if (fn.level !== "ok") setText(banner, t(`fn-${fn.level}`, { age: human(fn.oldest_unsynced_age_seconds) }));
  $("misconfig-banner").hidden = !s.ofd_misconfigured;
  if (s.ofd_misconfigured) setText($("misconfig-banner"), t("misconfigured", { code: s.ofd_misconfigured }));
  const device = hook("device-state");
  if (device && s.device) {
    setText(device, s.device.ready ? t("device-ready") : s.device.problem);
    device.className = s.device.ready ? "device ok" : "device bad";
  }
  $("storage-banner").hidden = !s.storage_error;
  if (s.storage_error) setText($("storage-banner"), t("storage", { error: s.storage_error }));
}
