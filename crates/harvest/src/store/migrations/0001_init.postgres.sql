-- keepa-harvest store, version 1 (PostgreSQL). Times are Unix ms.
CREATE TABLE IF NOT EXISTS deals (
    domain                 BIGINT NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    title                  TEXT,
    root_category          BIGINT,
    price_type             BIGINT NOT NULL,
    current_amazon         BIGINT,
    current_new            BIGINT,
    current_used           BIGINT,
    current_buy_box        BIGINT,
    sales_rank             BIGINT,
    delta_percent_day      BIGINT,
    delta_percent_week     BIGINT,
    delta_percent_month    BIGINT,
    delta_percent_quarter  BIGINT,
    creation_date_ms       BIGINT,
    last_update_ms         BIGINT,
    first_seen_ms          BIGINT NOT NULL,
    last_seen_ms           BIGINT NOT NULL,
    PRIMARY KEY (domain, asin)
);

CREATE TABLE IF NOT EXISTS products (
    domain                 BIGINT NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    title                  TEXT,
    current_amazon         BIGINT,
    current_new            BIGINT,
    current_used           BIGINT,
    current_buy_box        BIGINT,
    avg30_amazon           BIGINT,
    avg30_new              BIGINT,
    avg30_used             BIGINT,
    avg30_buy_box          BIGINT,
    avg90_amazon           BIGINT,
    avg90_new              BIGINT,
    avg90_used             BIGINT,
    avg90_buy_box          BIGINT,
    avg180_amazon          BIGINT,
    avg180_new             BIGINT,
    avg180_used            BIGINT,
    avg180_buy_box         BIGINT,
    sales_rank             BIGINT,
    sales_rank_avg90       BIGINT,
    sales_rank_drops30     BIGINT,
    sales_rank_drops90     BIGINT,
    sales_rank_drops180    BIGINT,
    sales_rank_drops365    BIGINT,
    offer_count_new        BIGINT,
    offer_count_used       BIGINT,
    offer_count_fba        BIGINT,
    offer_count_fbm        BIGINT,
    lowest_used_price      BIGINT,
    lowest_used_seller     TEXT,
    lowest_used_condition  BIGINT,
    lowest_new_price       BIGINT,
    monthly_sold           BIGINT,
    keepa_last_update_ms   BIGINT,
    fetched_at_ms          BIGINT NOT NULL,
    stage                  TEXT    NOT NULL,
    tokens_charged         BIGINT NOT NULL,
    PRIMARY KEY (domain, asin)
);
CREATE INDEX IF NOT EXISTS products_by_age ON products (domain, fetched_at_ms);

CREATE TABLE IF NOT EXISTS rejections (
    domain                 BIGINT NOT NULL CHECK (domain BETWEEN 1 AND 255),
    asin                   TEXT    NOT NULL CHECK (length(asin) > 0),
    stage                  TEXT    NOT NULL,
    reason                 TEXT    NOT NULL,
    rejected_at_ms         BIGINT NOT NULL,
    expires_at_ms          BIGINT NOT NULL,
    PRIMARY KEY (domain, asin)
);
CREATE INDEX IF NOT EXISTS rejections_by_expiry ON rejections (expires_at_ms);

CREATE TABLE IF NOT EXISTS checkpoints (
    job                    TEXT    NOT NULL PRIMARY KEY CHECK (length(job) > 0),
    value                  TEXT    NOT NULL,
    updated_at_ms          BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS requests (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms                  BIGINT NOT NULL,
    job                    TEXT    NOT NULL,
    stage                  TEXT    NOT NULL,
    endpoint               TEXT    NOT NULL,
    items                  BIGINT NOT NULL CHECK (items >= 0),
    predicted              BIGINT NOT NULL,
    charged                BIGINT,
    tokens_left            BIGINT,
    status                 TEXT    NOT NULL
);
-- A replayed request row is the same row: NULLs compare equal through COALESCE.
CREATE UNIQUE INDEX IF NOT EXISTS requests_identity ON requests (
    at_ms, job, stage, endpoint, items, predicted,
    COALESCE(charged, -9223372036854775807), COALESCE(tokens_left, -9223372036854775807), status
);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests (at_ms);
