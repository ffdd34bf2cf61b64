#!/usr/bin/env bash
# Harvest cost: default pipeline vs the seed's full-fetch pipeline, same sandbox feed, one script.
set -e
BIN=${BIN:-target/release/keepa-harvest}
for p in default full-fetch; do
  cfg=""; [ $p = full-fetch ] && cfg="--config examples/full-fetch.toml"
  /usr/bin/time -v $BIN $cfg run --sandbox --target-deals 500 --summary-json $p.json --db $p.db --quiet > $p.out 2> $p.time
done
