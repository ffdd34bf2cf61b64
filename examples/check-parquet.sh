#!/usr/bin/env bash
# A sandbox harvest with `keep_history = true`, both Parquet exports, and
# examples/check-parquet.py reading them with pandas/pyarrow (types, nulls,
# each product's history equal to its decoded csv). Needs pyarrow and
# pandas. Usage: examples/check-parquet.sh [KEEPA-HARVEST-BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/keepa-harvest}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'keep_history = true\n' >"$work/harvest.toml"
"$bin" --config "$work/harvest.toml" run --sandbox --db "$work/harvest.db" --target-deals 40 >/dev/null
"$bin" export --db "$work/harvest.db" --format parquet --out "$work/deals.parquet"
"$bin" export --db "$work/harvest.db" --history --format parquet --out "$work/history.parquet"
python3 examples/check-parquet.py "$work/deals.parquet" "$work/history.parquet" "$work/harvest.db"
