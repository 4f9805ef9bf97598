#!/usr/bin/env bash
# Runs every test of KKT Adapter and prints the core crate's line coverage (must be >= 85 %).
# Installs what it needs on a fresh Debian 12 machine (as root). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=never

step() { printf '\n==== %s ====\n' "$*"; }

step "system packages"
need=()
for pkg in build-essential pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

step "coverage tools"
rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview
command -v cargo-llvm-cov >/dev/null 2>&1 || cargo install cargo-llvm-cov --locked --quiet

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "headless daemon builds without any GUI library"
cargo build --release --bin kkt-adapterd --bin mock-ofd

step "unit, worker, black-box and process tests (instrumented for coverage)"
# Coverage is reported for the core crate: the mock OFD and the test support are not product code.
cargo llvm-cov --workspace --ignore-filename-regex '(mock-ofd/|tests/|/bin/)' \
  --fail-under-lines 85 --summary-only

step "done"
