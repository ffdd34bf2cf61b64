#!/usr/bin/env bash
# Takes docs/dashboard.png: a sandbox run with the dashboard (`run --ui`),
# photographed by headless Chromium (Debian's `chromium` package) once it
# has stored some deals. Usage: examples/dashboard-screenshot.sh [OUT.png]
# Builds the binary (release) first, unless KEEPA_HARVEST_BIN names one;
# needs chromium on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/dashboard.png}"
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 2; }
bin="${KEEPA_HARVEST_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release -q -p keepa-harvest
  bin=target/release/keepa-harvest
fi
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" run --sandbox --db "$work/harvest.db" --target-deals 2000 --ui 127.0.0.1:0 \
  >/dev/null 2>"$work/stderr" &
pid=$!
# The address, then 30 s of harvest (5 h of Keepa time at the default ×600).
for _ in $(seq 1 60); do
  url="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/stderr" | head -n1 || true)"
  [ -n "$url" ] && break
  sleep 1
done
[ -n "$url" ] || { cat "$work/stderr" >&2; exit 1; }
sleep 30
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic \
  --no-first-run --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --virtual-time-budget=5000 \
  --window-size=1200,900 --screenshot="$(pwd)/$out" "$url/" 2>/dev/null
echo "wrote $out from $url"
