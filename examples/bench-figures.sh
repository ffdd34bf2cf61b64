#!/usr/bin/env bash
# Issue 13's checks of the figures, in one script (release build first:
# `cargo build --release -p keepa-harvest`). Writes its files under $OUT
# (default: a new temporary directory) and prints three tables:
#   1. time scales: `run --sandbox --target-deals 500` at x600, x1000, x2000 and
#      x5000, seeds 7, 8, 9: whole-run utilization and late refresh periods;
#   2. a feed-limited 10,000-deal run against a standalone fake (200/min):
#      the summary's utilization against spent / available from the fake's
#      own /_fake/stats;
#   3. `estimate --from-summary` on four sandbox runs (20 and 60 tokens/min,
#      300 and 1,000 deals) against each run's Keepa time.
set -euo pipefail
BIN=${BIN:-$PWD/target/release/keepa-harvest}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cd "$OUT"
echo "files in $OUT" >&2
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])" "$1" "$2"; }

if [ "${SKIP_SCALES:-}" != 1 ]; then
echo "| time scale | seed | deals | utilization | refresh late / due | p99 delay (s) | own 429s | limited by | wall (s) |"
echo "|---|---|---|---|---|---|---|---|---|"
for scale in ${SCALES:-600 1000 2000 5000}; do
  for seed in 7 8 9; do
    n=scale-$scale-$seed
    rm -f $n.db*
    "$BIN" run --sandbox --quiet --target-deals 500 --seed $seed --sandbox-time-scale $scale \
      --db $n.db --summary-json $n.json > $n.out 2> $n.err
    python3 - $n.json $scale $seed <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"| x{sys.argv[2]} | {sys.argv[3]} | {d['deals_stored']} | {d['utilization']:.4f} | "
      f"{d['refresh_runs_late']} / {d['refresh_runs_due']} | {d['refresh_delay_p99_s']} | {d['own_429']} | "
      f"{d['limited_by']} | {d['wall_elapsed_s']:.1f} |")
PY
  done
done
fi

if [ "${SKIP_FEED:-}" != 1 ]; then
echo
rm -f feed.db* fake.out
"$BIN" fake-keepa --port 0 --keys demo --refill-per-minute 200 --time-scale 600 --seed 7 \
  --initial-deals 8000 > fake.out 2> fake.err &
FAKE=$!
trap 'kill $FAKE 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening fake.out 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' fake.out | head -1)
KEEPA_API_KEY=demo "$BIN" run --base-url "$URL" --quiet --target-deals 10000 --until 24h \
  --db feed.db --summary-json feed.json > feed.out 2> feed.err || true
curl -s "$URL/_fake/stats" > feed-stats.json
kill $FAKE; trap - EXIT
python3 - feed.json feed-stats.json <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); f = json.load(open(sys.argv[2]))
k = [k for k in f["keys"] if k["label"] == "demo"][0]
start = 60 * 200   # the fake's bucket starts full
available = start + k["refillStepsTotal"] * k["refillRate"]
fake_util = k["tokensCharged"] / available
print("| run | deals | summary utilization | fake: charged / (start + refill) | difference | limited by | Keepa time |")
print("|---|---|---|---|---|---|---|")
print(f"| 200/min, target 10,000, backlog 8,000, 24 h | {s['deals_stored']} | {s['utilization']:.4f} | "
      f"{k['tokensCharged']} / {available} = {fake_util:.4f} | {abs(s['utilization'] - fake_util) / fake_util * 100:.2f} % | "
      f"{s['limited_by']} | {s['keepa_elapsed_s'] / 3600:.1f} h |")
PY
fi

if [ "${SKIP_ESTIMATE:-}" != 1 ]; then
echo
echo "| plan | target | deals stored | tokens / stored deal | limited by | Keepa time | estimate --from-summary | error |"
echo "|---|---|---|---|---|---|---|---|"
for plan in 20 60; do
  for target in 300 1000; do
    n=est-$plan-$target
    rm -f $n.db*
    "$BIN" run --sandbox --quiet --target-deals $target --sandbox-refill-per-minute $plan \
      --db $n.db --summary-json $n.json > $n.out 2> $n.err
    "$BIN" estimate --from-summary $n.json --json > $n.est.json 2> $n.est.err
    python3 - $n.json $n.est.json $plan $target <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2]))
real = s["keepa_elapsed_s"]
pred = e.get("seconds") or e.get("duration_s") or e["days"] * 86400
print(f"| {sys.argv[3]}/min | {sys.argv[4]} | {s['deals_stored']} | {s['tokens_per_stored_deal']:.2f} | {s['limited_by']} | "
      f"{real / 3600:.2f} h | {pred / 3600:.2f} h | {(pred - real) / real * 100:+.1f} % |")
PY
  done
done
fi
