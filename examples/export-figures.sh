#!/usr/bin/env bash
# The export figures of BENCHMARKS.md: a sandbox harvest with
# `keep_history = true`, then each export timed, with its size; and what
# the kept histories weigh in the database.
# Usage: examples/export-figures.sh [KEEPA-HARVEST-BINARY] [TARGET-DEALS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/keepa-harvest}"
deals="${2:-500}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'keep_history = true\n' >"$work/harvest.toml"
"$bin" --config "$work/harvest.toml" run --sandbox --db "$work/h.db" --target-deals "$deals" >/dev/null 2>&1
python3 - "$work/h.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n, total = db.execute("SELECT COUNT(*), SUM(LENGTH(csv)) FROM product_histories").fetchone()
print(f"histories: {n} products, {total} bytes of csv, {total / n:.0f} bytes a product")
PY
for what in "" "--history"; do
  for fmt in csv parquet; do
    out="$work/out.$fmt"
    start=$(date +%s.%N)
    "$bin" export --db "$work/h.db" $what --format "$fmt" --out "$out" 2>"$work/err"
    end=$(date +%s.%N)
    printf '%-9s %-7s %8.3f s %10d bytes  %s\n' "${what:-deals}" "$fmt" "$(echo "$end - $start" | bc)" \
      "$(stat -c %s "$out")" "$(cat "$work/err")"
  done
done
