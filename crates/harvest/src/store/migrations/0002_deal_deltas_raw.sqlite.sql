-- keepa-harvest store, version 2 (SQLite): the absolute price drop of the
-- feed's price type (what a buyer sorts on beside the percent), and the
-- deal object exactly as Keepa sent it, when the run keeps it.
ALTER TABLE deals ADD COLUMN delta_day INTEGER;
ALTER TABLE deals ADD COLUMN delta_week INTEGER;
ALTER TABLE deals ADD COLUMN delta_month INTEGER;
ALTER TABLE deals ADD COLUMN delta_quarter INTEGER;
ALTER TABLE deals ADD COLUMN raw_json TEXT;
