#!/usr/bin/env bash
# Runs KKT Adapter on its embedded defaults: local API on 127.0.0.1:8000, the built-in OFD
# simulator (DEMO), data in the user's data directory. Installs what it needs on Debian 12.
# Extra arguments go to the program (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }

cargo build --release --bin kkt-adapterd
echo "KKT Adapter: open http://127.0.0.1:8000/ui/ ; Ctrl+C stops it." >&2
exec ./target/release/kkt-adapterd "$@"
