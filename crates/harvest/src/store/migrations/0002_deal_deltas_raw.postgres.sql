-- keepa-harvest store, version 2 (PostgreSQL): the absolute price drop of
-- the feed's price type (what a buyer sorts on beside the percent), and the
-- deal object exactly as Keepa sent it, when the run keeps it.
ALTER TABLE deals ADD COLUMN IF NOT EXISTS delta_day BIGINT;
ALTER TABLE deals ADD COLUMN IF NOT EXISTS delta_week BIGINT;
ALTER TABLE deals ADD COLUMN IF NOT EXISTS delta_month BIGINT;
ALTER TABLE deals ADD COLUMN IF NOT EXISTS delta_quarter BIGINT;
ALTER TABLE deals ADD COLUMN IF NOT EXISTS raw_json TEXT;
