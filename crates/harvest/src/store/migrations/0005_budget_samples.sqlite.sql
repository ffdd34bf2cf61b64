-- keepa-harvest store, version 5 (SQLite): the budget over time, for the
-- dashboard. `run` writes one row at a bounded rate (at most one every few
-- seconds of wall time) from the newest envelope it has seen: the balance,
-- the plan's refill rate and the tokens it had been charged so far.
CREATE TABLE IF NOT EXISTS budget_samples (
    at_ms         INTEGER NOT NULL PRIMARY KEY,
    tokens_left   INTEGER NOT NULL,
    refill_rate   INTEGER NOT NULL,
    tokens_spent  INTEGER NOT NULL
);
