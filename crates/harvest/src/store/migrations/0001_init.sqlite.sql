-- keepa-harvest store, version 1 (SQLite). Times are Unix ms.
CREATE TABLE IF NOT EXISTS deals (
    domain                 INTEGER NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    title                  TEXT,
    root_category          INTEGER,
    price_type             INTEGER NOT NULL,
    current_amazon         INTEGER,
    current_new            INTEGER,
    current_used           INTEGER,
    current_buy_box        INTEGER,
    sales_rank             INTEGER,
    delta_percent_day      INTEGER,
    delta_percent_week     INTEGER,
    delta_percent_month    INTEGER,
    delta_percent_quarter  INTEGER,
    creation_date_ms       INTEGER,
    last_update_ms         INTEGER,
    first_seen_ms          INTEGER NOT NULL,
    last_seen_ms           INTEGER NOT NULL,
    PRIMARY KEY (domain, asin)
);

CREATE TABLE IF NOT EXISTS products (
    domain                 INTEGER NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    title                  TEXT,
    current_amazon         INTEGER,
    current_new            INTEGER,
    current_used           INTEGER,
    current_buy_box        INTEGER,
    avg30_amazon           INTEGER,
    avg30_new              INTEGER,
    avg30_used             INTEGER,
    avg30_buy_box          INTEGER,
    avg90_amazon           INTEGER,
    avg90_new              INTEGER,
    avg90_used             INTEGER,
    avg90_buy_box          INTEGER,
    avg180_amazon          INTEGER,
    avg180_new             INTEGER,
    avg180_used            INTEGER,
    avg180_buy_box         INTEGER,
    sales_rank             INTEGER,
    sales_rank_avg90       INTEGER,
    sales_rank_drops30     INTEGER,
    sales_rank_drops90     INTEGER,
    sales_rank_drops180    INTEGER,
    sales_rank_drops365    INTEGER,
    offer_count_new        INTEGER,
    offer_count_used       INTEGER,
    offer_count_fba        INTEGER,
    offer_count_fbm        INTEGER,
    lowest_used_price      INTEGER,
    lowest_used_seller     TEXT,
    lowest_used_condition  INTEGER,
    lowest_new_price       INTEGER,
    monthly_sold           INTEGER,
    keepa_last_update_ms   INTEGER,
    fetched_at_ms          INTEGER NOT NULL,
    stage                  TEXT    NOT NULL,
    tokens_charged         INTEGER NOT NULL,
    PRIMARY KEY (domain, asin)
);
CREATE INDEX IF NOT EXISTS products_by_age ON products (domain, fetched_at_ms);

CREATE TABLE IF NOT EXISTS rejections (
    domain                 INTEGER NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    stage                  TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    rejected_at_ms         INTEGER NOT NULL,
    expires_at_ms          INTEGER NOT NULL,
    PRIMARY KEY (domain, asin)
);
CREATE INDEX IF NOT EXISTS rejections_by_expiry ON rejections (expires_at_ms);

CREATE TABLE IF NOT EXISTS checkpoints (
    job                    TEXT    NOT NULL PRIMARY KEY CHECK (length(job) > 0),
    value                  TEXT    NOT NULL,
    updated_at_ms          INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS requests (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms                  INTEGER NOT NULL,
    job                    TEXT    NOT NULL,
    stage                  TEXT    NOT NULL,
    endpoint               TEXT    NOT NULL,
    items                  INTEGER NOT NULL CHECK (items >= 0),
    predicted              INTEGER NOT NULL,
    charged                INTEGER,
    tokens_left            INTEGER,
    status                 TEXT    NOT NULL
);
-- A replayed request row is the same row: NULLs compare equal through COALESCE.
CREATE UNIQUE INDEX IF NOT EXISTS requests_identity ON requests (
    at_ms, job, stage, endpoint, items, predicted,
    COALESCE(charged, -9223372036854775807), COALESCE(tokens_left, -9223372036854775807), status
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (at_ms);
