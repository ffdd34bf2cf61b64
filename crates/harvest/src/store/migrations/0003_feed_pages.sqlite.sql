-- keepa-harvest store, version 3 (SQLite): the feed pages a job finished,
-- so that several processes can share one walk of the deal feed (each page
-- is claimed by one of them) and a restart knows which pages are done.
CREATE TABLE IF NOT EXISTS feed_pages (
    job           TEXT    NOT NULL CHECK (length(job) > 0),
    page          INTEGER NOT NULL CHECK (page >= 0),
    deals         INTEGER NOT NULL CHECK (deals >= 0),
    done_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (job, page)
);
