#!/usr/bin/env bash
# Runs KKT Adapter on its embedded defaults: local API on 127.0.0.1:8000, the built-in OFD
# simulator (DEMO), data in the user's data directory. With a display it runs the desktop tray
# app (kkt-adapter); without one, the headless daemon (kkt-adapterd) with the same settings.
# Installs what it needs on Debian 12. Extra arguments go to the program (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }

desktop=0
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then desktop=1; fi
pkgs=(build-essential pkg-config)
if [ $desktop = 1 ]; then
  pkgs+=(libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
    libayatana-appindicator3-dev librsvg2-dev)
fi
need=()
for pkg in "${pkgs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ $desktop = 1 ]; then
  cargo build --release -p kkt-adapter-desktop
  echo "KKT Adapter (desktop): the window opens; the tray keeps it running; http://127.0.0.1:8000/ui/ works too." >&2
  exec ./target/release/kkt-adapter "$@"
fi
cargo build --release --bin kkt-adapterd
echo "KKT Adapter (headless, no display found): open http://127.0.0.1:8000/ui/ ; Ctrl+C stops it." >&2
exec ./target/release/kkt-adapterd "$@"
