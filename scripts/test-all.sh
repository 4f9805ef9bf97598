#!/usr/bin/env bash
# Runs every test of KKT Adapter: format and lints, the Rust suites under coverage (the core's
# line coverage must be >= 85 %), browser end-to-end tests (Debian's chromium via npm
# playwright-core), and the desktop app under Xvfb (smoke test with a system tray, and WebDriver
# through tauri-driver + WebKitWebDriver), then the packages (scripts/package.sh) with the Windows
# daemon under Wine and the .deb and the installer installed as a shop would. The reliability scenarios (crashes, OFD faults,
# storage faults, hostile input) are Rust tests; their figures are printed at the end. Installs what it needs on a fresh Debian 12 machine (as root).
# CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=never
export PATH="$HOME/.cargo/bin:$PATH"

# Each step says the time and the disk space left: the whole run writes about 20 GB (target/ with the
# debug, coverage, release and Windows builds, and the packages' Wine prefixes under /tmp), and a full
# disk fails late steps (an installer, a link) in ways that look like the product's own faults.
free_gb() { df -P -BG . | awk 'NR == 2 { sub("G", "", $4); print $4 }'; }
step() { printf '\n==== %s ==== (%s, %s GB free)\n' "$*" "$(date -u +%H:%M:%S)" "$(free_gb)"; }

if [ "$(free_gb)" -lt 24 ] && [ ! -d target/llvm-cov-target ]; then
  echo "WARNING: $(free_gb) GB free here; a first run of this suite needs about 20 GB (README: Set-up)." >&2
fi

step "system packages"
pkgs=(build-essential pkg-config
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev
  xvfb xauth x11-utils xdotool imagemagick webkit2gtk-driver chromium dbus trayer python3-xlib dunst prometheus
  wine64 desktop-file-utils)
need=()
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

step "tools: coverage, tauri-driver"
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview
command -v cargo-llvm-cov >/dev/null 2>&1 || cargo install cargo-llvm-cov --locked --quiet
command -v tauri-driver >/dev/null 2>&1 || cargo install tauri-driver --locked --quiet

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "the core depends on no GUI library (kkt-adapterd builds headless)"
if cargo tree -p kkt-core -e normal,build --prefix none | grep -Ei '^(tauri|gtk|webkit|wry|tao) '; then
  echo "kkt-core must not depend on a GUI library" >&2
  exit 1
fi
echo "ok: no tauri/gtk/webkit/wry/tao in kkt-core's dependency tree"

step "layout: no production file over 500 lines, no module cycle in the core"
python3 tests/tools/layout.py

step "unit, worker, black-box and process tests (instrumented for coverage)"
# Coverage is reported for the core crate: the mock OFD, the test support and the desktop shell
# (exercised by the desktop tests below, not instrumented) are not counted.
cargo llvm-cov --workspace --exclude kkt-adapter-desktop \
  --ignore-filename-regex '(mock-ofd/|mock-atol/|mock-marking/|tests/|/bin/|src-tauri/)' \
  --fail-under-lines 85 --summary-only

step "build the programs for the end-to-end tests"
cargo build --bin kkt-adapterd --bin mock-ofd --bin mock-atol
cargo build -p kkt-adapter-desktop

step "the desktop shell on Tauri's mock runtime (start, window, stop in order; no display)"
cargo test -p kkt-adapter-desktop

step "browser end-to-end tests (chromium + playwright-core)"
(cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
(cd tests/e2e && node --test --test-concurrency=1 browser.test.mjs window.test.mjs review.test.mjs shift.test.mjs marking.test.mjs cors.test.mjs)

step "fleet monitoring: the alert rules (promtool) and a real Prometheus scraping the daemon"
python3 tests/e2e/prometheus.py

step "desktop app under Xvfb: smoke test and WebDriver (tauri-driver)"
(cd tests/e2e && xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- \
  node --test --test-concurrency=1 smoke.test.mjs)
(cd tests/e2e && xvfb-run -a -s "-screen 0 1280x900x24" dbus-run-session -- \
  node --test --test-concurrency=1 desktop.test.mjs)
echo "screenshots and desktop figures: tests/out/"

step "packages: .deb, Windows builds and installer (scripts/package.sh)"
bash scripts/package.sh

step "the Windows daemon under Wine (the .exe a shop runs)"
python3 tests/e2e/wine.py

step "the packages installed as a shop would (dpkg -i / upgrade / remove / purge; setup.exe /S under Wine)"
python3 tests/e2e/packages.py

step "reliability figures of this run (RELIABILITY.md)"
python3 tests/tools/reliability.py

step "done"
