#!/usr/bin/env python3
"""Checks keepa-harvest's Parquet exports the way an analyst reads them.

    python3 examples/check-parquet.py DEALS.parquet HISTORY.parquet DB.sqlite

- pyarrow reads both files with the documented Arrow types: integers
  int64, times timestamp[ms, tz=UTC], text string;
- pandas (dtype_backend="pyarrow") keeps those types, nulls included;
- no price is a Keepa sentinel (-1/-2 are nulls);
- the history export of every stored product equals its csv, decoded here
  independently from the `product_histories` table of the SQLite database.

Exits non-zero with a message naming the first mismatch. Needs pyarrow
and pandas (`pip install pyarrow pandas`).
"""

import datetime
import json
import sqlite3
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEEPA_EPOCH_MINUTES = 21_564_000  # 2011-01-01T00:00Z in Unix minutes
SHIPPING_TYPES = {7, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 32}
NAMES = [
    "AMAZON", "NEW", "USED", "SALES", "LISTPRICE", "COLLECTIBLE", "REFURBISHED",
    "NEW_FBM_SHIPPING", "LIGHTNING_DEAL", "WAREHOUSE", "NEW_FBA", "COUNT_NEW",
    "COUNT_USED", "COUNT_REFURBISHED", "COUNT_COLLECTIBLE", "EXTRA_INFO_UPDATES",
    "RATING", "COUNT_REVIEWS", "BUY_BOX_SHIPPING", "USED_NEW_SHIPPING",
    "USED_VERY_GOOD_SHIPPING", "USED_GOOD_SHIPPING", "USED_ACCEPTABLE_SHIPPING",
    "COLLECTIBLE_NEW_SHIPPING", "COLLECTIBLE_VERY_GOOD_SHIPPING",
    "COLLECTIBLE_GOOD_SHIPPING", "COLLECTIBLE_ACCEPTABLE_SHIPPING",
    "REFURBISHED_SHIPPING", "EBAY_NEW_SHIPPING", "EBAY_USED_SHIPPING", "TRADE_IN",
    "RENT", "BUY_BOX_USED_SHIPPING", "PRIME_EXCL", "COUNT_NEW_FBA", "COUNT_NEW_FBM",
]
TEXT = {"asin", "title", "product_title", "lowest_used_seller", "product_stage", "series"}
TIMESTAMP = pa.timestamp("ms", tz="UTC")


def fail(msg):
    sys.exit(f"check-parquet: {msg}")


def expected_type(name):
    if name in TEXT:
        return pa.string()
    if name.endswith("_ms") or name == "time":
        return TIMESTAMP
    return pa.int64()


def check_types(path):
    schema = pq.read_schema(path)
    for field in schema:
        want = expected_type(field.name)
        if field.type != want:
            fail(f"{path}: column {field.name} is {field.type}, expected {want}")
        if not field.nullable:
            fail(f"{path}: column {field.name} is not nullable")
    df = pd.read_parquet(path, dtype_backend="pyarrow")
    for name, dtype in df.dtypes.items():
        if not isinstance(dtype, pd.ArrowDtype) or dtype.pyarrow_dtype != expected_type(name):
            fail(f"{path}: pandas reads {name} as {dtype}")
    return df


def decode(csv):
    """(series, time, value) rows of one product's csv, as documented."""
    rows = []
    for index, raw in enumerate(csv):
        if raw is None or index >= len(NAMES):
            continue
        stride = 3 if index in SHIPPING_TYPES else 2
        if len(raw) % stride:
            continue  # reported by the export as left out
        for i in range(0, len(raw), stride):
            minutes, value = raw[i], raw[i + 1]
            if stride == 3 and value not in (-1, -2):
                value += max(raw[i + 2], 0) if raw[i + 2] not in (-1, -2) else 0
            when = datetime.datetime.fromtimestamp(
                (minutes + KEEPA_EPOCH_MINUTES) * 60, tz=datetime.timezone.utc
            )
            rows.append((NAMES[index], when, None if value in (-1, -2) else value))
    return rows


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    deals_path, history_path, db_path = sys.argv[1:]
    deals = check_types(deals_path)
    history = check_types(history_path)
    if deals.empty or history.empty:
        fail("an export is empty")
    prices = [c for c in deals.columns if c.startswith(("current_", "avg", "lowest_")) and c != "lowest_used_seller"]
    for c in prices:
        if (deals[c].dropna() < 0).any():
            fail(f"{deals_path}: {c} holds a negative price (a Keepa sentinel?)")
    if history["value"].isin([-1, -2]).any():
        fail(f"{history_path}: a value is a Keepa sentinel, not a null")

    stored = sqlite3.connect(db_path).execute(
        "SELECT domain, asin, csv FROM product_histories ORDER BY domain, asin"
    ).fetchall()
    if len(stored) != history["asin"].nunique():
        fail(f"{len(stored)} products hold a history, the export has {history['asin'].nunique()}")
    by_asin = {asin: group for asin, group in history.groupby("asin", sort=False)}
    points = 0
    for domain, asin, csv in stored:
        want = decode(json.loads(csv))
        got = by_asin[asin]
        if (got["domain"] != domain).any():
            fail(f"{asin}: domain differs")
        got_rows = [
            (s, t.to_pydatetime(), None if pd.isna(v) else int(v))
            for s, t, v in zip(got["series"], got["time"], got["value"])
        ]
        if got_rows != want:
            for i, (g, w) in enumerate(zip(got_rows, want)):
                if g != w:
                    fail(f"{asin}: row {i} is {g}, its csv decodes to {w}")
            fail(f"{asin}: {len(got_rows)} rows exported, its csv decodes to {len(want)}")
        points += len(want)
    nulls = int(history["value"].isna().sum())
    print(
        f"check-parquet: ok: {len(deals)} deals ({len(deals.columns)} columns), "
        f"{points} history points of {len(stored)} products ({nulls} nulls) equal their decoded csv"
    )


if __name__ == "__main__":
    main()
