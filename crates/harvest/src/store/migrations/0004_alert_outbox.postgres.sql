-- keepa-harvest store, version 4 (PostgreSQL): the alert outbox. A row is
-- written in the same transaction as the deal that matched an [[alert]],
-- so a stored match is never without its alert; the delivery worker sends
-- pending rows and marks them delivered. UNIQUE dedups a (deal, version)
-- matched again. Times are Unix ms, wall clock.
CREATE TABLE IF NOT EXISTS alert_outbox (
    id              BIGSERIAL PRIMARY KEY,
    alert           TEXT    NOT NULL CHECK (length(alert) > 0),
    domain          INTEGER NOT NULL,
    asin            TEXT    NOT NULL CHECK (length(asin) > 0),
    kind            TEXT    NOT NULL CHECK (kind IN ('new', 'price_drop')),
    version         TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_ms      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT  NOT NULL,
    delivered_ms    BIGINT,
    last_error      TEXT,
    claimed_ms      BIGINT,
    UNIQUE (alert, domain, asin, kind, version)
);
CREATE INDEX IF NOT EXISTS alert_outbox_pending
    ON alert_outbox (next_attempt_ms) WHERE delivered_ms IS NULL;
