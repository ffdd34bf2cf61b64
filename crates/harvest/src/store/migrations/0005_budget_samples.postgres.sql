-- keepa-harvest store, version 5 (PostgreSQL): the budget over time, for
-- the dashboard. `run` writes one row at a bounded rate (at most one every
-- few seconds of wall time) from the newest envelope it has seen: the
-- balance, the plan's refill rate and the tokens it had been charged so far.
CREATE TABLE IF NOT EXISTS budget_samples (
    at_ms         BIGINT NOT NULL PRIMARY KEY,
    tokens_left   BIGINT NOT NULL,
    refill_rate   BIGINT NOT NULL,
    tokens_spent  BIGINT NOT NULL
);
