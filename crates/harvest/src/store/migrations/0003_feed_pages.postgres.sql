-- keepa-harvest store, version 3 (PostgreSQL): the feed pages a job
-- finished, so that several processes can share one walk of the deal feed
-- (each page is claimed by one of them) and a restart knows which are done.
CREATE TABLE IF NOT EXISTS feed_pages (
    job           TEXT   NOT NULL CHECK (length(job) > 0),
    page          BIGINT NOT NULL CHECK (page >= 0),
    deals         BIGINT NOT NULL CHECK (deals >= 0),
    done_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (job, page)
);
