#!/usr/bin/env bash
# Builds KKT Adapter's packages into dist/ (docs/contract.md §8), on Debian 12 (as root):
#   dist/kkt-adapter_<version>-<revision>_amd64.deb    both programs, systemd unit, desktop entry, icons
#   dist/windows/kkt-adapterd.exe, kkt-adapter.exe, mock-ofd.exe    Windows x86-64 (cross-compiled)
#   dist/KKT-Adapter-<version>-setup.exe              the Windows installer (NSIS, per-user)
#   dist/SHA256SUMS
# The version is the workspace's (Cargo.toml [workspace.package]). DEB_REVISION (default 1) sets
# the Debian revision, e.g. for a rebuilt package. Installs what it needs (packages, the Windows
# target, cargo-deb). The tests run these artefacts: tests/e2e/wine.py and tests/e2e/packages.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=never
export PATH="$HOME/.cargo/bin:$PATH"
WIN=x86_64-pc-windows-gnu

step() { printf '\n==== package: %s ==== (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "tools"
pkgs=(build-essential pkg-config dpkg-dev libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
  gcc-mingw-w64-x86-64 nsis)
need=()
for pkg in "${pkgs[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
rustup target list --installed | grep -qx "$WIN" || rustup target add "$WIN"
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --quiet --version '^3'

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "no version in Cargo.toml [workspace.package]" >&2; exit 1; }
echo "version $version"
rm -rf dist
mkdir -p dist/windows

step "Linux release build (kkt-adapterd, kkt-adapter)"
cargo build --release -p kkt-core -p kkt-adapter-desktop --bin kkt-adapterd --bin kkt-adapter

step ".deb (cargo-deb)"
cargo deb -p kkt-adapter-desktop --no-build --strip --deb-revision "${DEB_REVISION:-1}" -o dist/

step "Windows x86-64 release build (kkt-adapterd.exe, kkt-adapter.exe, mock-ofd.exe)"
cargo build --release --target "$WIN" -p kkt-core -p mock-ofd -p kkt-adapter-desktop --bins
for exe in kkt-adapterd kkt-adapter mock-ofd; do
  # Line tables stay in target/ for crash reports; the shipped programs are stripped.
  x86_64-w64-mingw32-strip -o "dist/windows/$exe.exe" "target/$WIN/release/$exe.exe"
done

step "Windows installer (NSIS)"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp dist/windows/kkt-adapterd.exe dist/windows/kkt-adapter.exe icons/icon.ico README.md "$stage/"
sed 's/$/\r/' LICENSE > "$stage/LICENSE.txt"
makensis -V2 -DVERSION="$version" -DSRC="$stage" -DOUT="$PWD/dist/KKT-Adapter-$version-setup.exe" \
  deploy/windows/kkt-adapter.nsi

step "checksums"
(cd dist && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum > SHA256SUMS)
(cd dist && find . -type f -printf '%9s  %P\n' | sort -k2)
