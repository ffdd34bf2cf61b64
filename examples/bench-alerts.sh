#!/usr/bin/env bash
# Alert delivery: delay from commit to receipt (p50, p99) at a local webhook
# receiver during a sandbox run, and the harvest's utilization without and
# with alerts (same seed, same feed, same plan), in one script.
# Writes noalerts.* and alerts.* in the current directory.
set -euo pipefail
BIN=${BIN:-target/release/keepa-harvest}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${TARGET:-500}
rm -f noalerts.* alerts.* receipts.log

# The receiver: records "key<TAB>receipt Unix ms" per POST, answers 204.
python3 - <<'PY' > receiver.port &
import http.server, json, sys, time, threading
log = open("receipts.log", "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        now = time.time() * 1000
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        log.write(f"{body.get('key','')}\t{now:.1f}\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
RECEIVER=$!
trap 'kill $RECEIVER' EXIT
while [ ! -s receiver.port ]; do sleep 0.1; done
PORT=$(cat receiver.port)

# The built-in configuration, plus one alert on every new deal.
cp "$REPO/crates/harvest/src/config/default.toml" alerts.toml
cat >> alerts.toml <<TOML

[[alert]]
name = "bench"
url = "http://127.0.0.1:$PORT/hook"
format = "json"
on = ["new"]
TOML

$BIN --config "$REPO/crates/harvest/src/config/default.toml" run --sandbox --quiet \
  --target-deals "$TARGET" --db noalerts.db --summary-json noalerts.json
$BIN --config alerts.toml run --sandbox --quiet \
  --target-deals "$TARGET" --db alerts.db --summary-json alerts.json

python3 - <<'PY'
import json, sqlite3
got = {}
for line in open("receipts.log"):
    key, at = line.rstrip("\n").split("\t")
    got.setdefault(key, float(at))  # the first receipt of each key
db = sqlite3.connect("alerts.db")
rows = db.execute("SELECT alert, domain, asin, kind, version, created_ms FROM alert_outbox").fetchall()
pairs = [(c, got[f"{a}:{d}:{s}:{k}:{v}"] - c) for a, d, s, k, v, c in rows if f"{a}:{d}:{s}:{k}:{v}" in got]
delays = sorted(x for _, x in pairs)
start = min(c for c, _ in pairs)
later = sorted(x for c, x in pairs if c >= start + 5000)  # after the run's first 5 s
deals = db.execute("SELECT COUNT(*) FROM deals").fetchone()[0]
def pct(p, d=delays):
    return d[min(len(d) - 1, max(0, round(p / 100 * len(d) + 0.5) - 1))]
no, yes = json.load(open("noalerts.json")), json.load(open("alerts.json"))
print(f"deals {deals}, alerts queued {len(rows)}, received {len(got)} keys")
print(f"delay commit->receipt ms: p50 {pct(50):.1f}, p99 {pct(99):.1f}, max {delays[-1]:.1f}")
print(f"  alerts committed after the first 5 s ({len(later)}): p50 {pct(50, later):.1f}, p99 {pct(99, later):.1f}, max {later[-1]:.1f}")
for name, s in (("without alerts", no), ("with alerts", yes)):
    print(f"{name}: deals {s['deals_stored']}, utilization {s['utilization']:.3f}, "
          f"tokens/deal {s['tokens_per_stored_deal']:.1f}, wall {s['wall_elapsed_s']:.1f} s, alerts {s['alerts']}")
PY
