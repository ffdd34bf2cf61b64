-- keepa-harvest store, version 6 (PostgreSQL): each product's csv
-- histories as Keepa sent them (the JSON array of `csv`), when the run
-- keeps them (`keep_history = true`); `export --history` decodes them.
-- Replaced by a fetch at least as new, like the product row.
CREATE TABLE IF NOT EXISTS product_histories (
    domain         BIGINT NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin           TEXT   NOT NULL CHECK (length(asin) > 0),
    csv            TEXT   NOT NULL,
    fetched_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (domain, asin)
);
