//! Product generation: a product's csv histories, dates and names at one
//! instant, each drawn from its own seeded stream so that histories stay
//! prefix-stable.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::csv_type::*;
use super::events::{merge_deals, DealHit};
use super::names::{pick, ADJ, BASE62, BRANDS, FIRST, GOODS, LAST, NOUN};
use super::{round_price, value_at, Catalog, ProductData, Summary, CSV_LEN, MINUTES_PER_DAY};
use super::{TAG_PRODUCT, TAG_SERIES};
use crate::rng::{hash, rng, unit};

/// All csv histories of a product, `None` for the types it lacks.
type Csv = Vec<Option<Vec<(i64, i64)>>>;

/// The per-product hashes everything about a product is derived from.
#[derive(Clone, Copy)]
struct Seeds {
    seed: u64,
    index: u32,
}

impl Seeds {
    fn h(self, tag: u64) -> u64 {
        hash(self.seed, TAG_PRODUCT * 1000 + tag, u64::from(self.index))
    }
}

/// What fixes a product's price level and which prices it has.
struct Pricing {
    base_new: f64,
    list_price: i64,
    has_amazon: bool,
    has_used: bool,
    used_share: f64,
}

impl Pricing {
    fn new(s: &Summary, h: Seeds) -> Self {
        let base_new = if s.is_book {
            800.0 + unit(h.h(12)) * 3200.0
        } else {
            1000.0 + unit(h.h(12)) * 19000.0
        };
        Pricing {
            base_new,
            list_price: round_price(base_new * 1.25),
            has_amazon: unit(h.h(13)) < if s.is_book { 0.5 } else { 0.4 },
            has_used: s.is_book || unit(h.h(14)) < 0.3,
            used_share: 0.35 + 0.45 * unit(h.h(15)),
        }
    }
}

/// Step histories of one product from `start` to `at_min`.
struct Steps {
    seed: u64,
    index: u32,
    start: i64,
    at_min: i64,
}

impl Steps {
    /// A history of csv type `ty`: a new value from `value` at exponential
    /// gaps of `mean_days` (at least an hour), kept only when it changes.
    fn series(
        &self,
        ty: usize,
        mean_days: f64,
        mut value: impl FnMut(&mut ChaCha8Rng) -> i64,
    ) -> Vec<(i64, i64)> {
        let mut r = rng(
            self.seed,
            TAG_SERIES * 100 + ty as u64,
            u64::from(self.index),
        );
        let mut t = self.start;
        let mut out = Vec::new();
        while t <= self.at_min {
            let v = value(&mut r);
            if out.last().is_none_or(|&(_, last)| last != v) {
                out.push((t, v));
            }
            let u: f64 = r.random::<f64>().max(1e-9);
            t += ((-u.ln()) * mean_days * MINUTES_PER_DAY as f64).max(60.0) as i64;
        }
        out
    }

    /// NEW, USED and AMAZON before deal events.
    fn base_prices(&self, p: &Pricing) -> Csv {
        let base_new = p.base_new;
        let used_share = p.used_share;
        let mut csv: Csv = vec![None; CSV_LEN];
        csv[NEW] = Some(self.series(NEW, 12.0, move |r| {
            round_price(base_new * r.random_range(0.8..1.15))
        }));
        if p.has_used {
            csv[USED] = Some(self.series(USED, 5.0, move |r| {
                round_price(base_new * used_share * r.random_range(0.7..1.4))
            }));
        }
        if p.has_amazon {
            csv[AMAZON] = Some(self.series(AMAZON, 15.0, move |r| {
                if r.random::<f64>() < 0.08 {
                    -1
                } else {
                    round_price(base_new * r.random_range(0.9..1.0))
                }
            }));
        }
        csv
    }

    /// Sales rank, list price, offer counts, rating and review count.
    fn market(&self, csv: &mut Csv, s: &Summary, h: Seeds, p: &Pricing) {
        // Sales rank: a mean-reverting walk in log space, about every 30 h.
        let base_rank = s.base_rank as f64;
        let mut log_rank = base_rank.ln();
        csv[SALES] = Some(self.series(SALES, 1.25, move |r| {
            let noise: f64 = r.random_range(-0.6..0.6);
            log_rank = log_rank + 0.3 * (base_rank.ln() - log_rank) + noise;
            log_rank.exp().clamp(1.0, 9_000_000.0) as i64
        }));
        csv[LISTPRICE] = Some(vec![(self.start, p.list_price)]);
        let max_new = if s.is_book { 15 } else { 25 };
        csv[COUNT_NEW] = Some(self.series(COUNT_NEW, 9.0, move |r| r.random_range(1..=max_new)));
        if p.has_used {
            let max_used = if s.is_book { 40 } else { 6 };
            csv[COUNT_USED] =
                Some(self.series(COUNT_USED, 7.0, move |r| r.random_range(1..=max_used)));
        }
        let rating0 = 30 + (h.h(16) % 21) as i64;
        csv[RATING] = Some(self.series(RATING, 60.0, move |r| {
            (rating0 + r.random_range(-2..=2)).clamp(10, 50)
        }));
        let mut reviews = (h.h(17) % 50) as i64;
        csv[COUNT_REVIEWS] = Some(self.series(COUNT_REVIEWS, 20.0, move |r| {
            reviews += r.random_range(0..=8);
            reviews
        }));
    }
}

/// Writes each deal event into the history of its price type.
fn apply_deals(csv: &mut Csv, hits: &[DealHit], at_min: i64) {
    for ty in [AMAZON, NEW, USED] {
        let mine: Vec<DealHit> = hits
            .iter()
            .copied()
            .filter(|d| d.price_type == ty)
            .collect();
        if mine.is_empty() {
            continue;
        }
        if let Some(series) = csv[ty].as_deref() {
            csv[ty] = Some(merge_deals(series, &mine, at_min));
        }
    }
}

/// Buy box: the lowest of Amazon and new, at every change of either.
fn buy_box(csv: &Csv) -> Vec<(i64, i64)> {
    let mut times: Vec<i64> = [AMAZON, NEW]
        .iter()
        .filter_map(|&i| csv[i].as_ref())
        .flat_map(|s| s.iter().map(|&(t, _)| t))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut bb: Vec<(i64, i64)> = Vec::new();
    for t in times {
        let a = csv[AMAZON].as_deref().map_or(-1, |s| value_at(s, t));
        let n = csv[NEW].as_deref().map_or(-1, |s| value_at(s, t));
        let v = match (a > 0, n > 0) {
            (true, true) => a.min(n),
            (true, false) => a,
            (false, true) => n,
            _ => -1,
        };
        if bb.last().is_none_or(|&(_, last)| last != v) {
            bb.push((t, v));
        }
    }
    bb
}

/// `lastUpdate`: Keepa re-crawls a product every 1..12 h; it is the later
/// of the last crawl and the last change.
fn last_update(csv: &Csv, h: Seeds, at_min: i64, tracking_since: i64) -> i64 {
    let last_change = csv
        .iter()
        .flatten()
        .filter_map(|s| s.last().map(|&(t, _)| t))
        .max()
        .unwrap_or(tracking_since);
    let period = 60 + (h.h(18) % (11 * 60)) as i64;
    let phase = (h.h(19) % period as u64) as i64;
    let last_crawl = at_min - (at_min - phase).rem_euclid(period);
    last_change.max(last_crawl).min(at_min).max(tracking_since)
}

/// Title, author (books) and brand (the publisher for books).
fn names(s: &Summary, h: Seeds) -> (String, Option<String>, String) {
    let title_seed = h.h(21);
    if s.is_book {
        let author = format!("{} {}", pick(FIRST, h.h(22)), pick(LAST, h.h(23)));
        let mut title = format!(
            "The {} {} of the {}",
            pick(ADJ, title_seed),
            pick(NOUN, title_seed >> 8),
            pick(NOUN, title_seed >> 16)
        );
        if title_seed.is_multiple_of(7) {
            title.push_str(": A Novel");
        }
        if title_seed.is_multiple_of(11) {
            title.push_str(" &amp; Other Stories");
        }
        let publisher = format!("{} Press", pick(LAST, h.h(24)));
        (title, Some(author), publisher)
    } else {
        let brand = pick(BRANDS, title_seed).to_string();
        let title = format!(
            "{} {} {}",
            brand,
            pick(GOODS, title_seed >> 8),
            100 + title_seed % 900
        );
        (title, None, brand)
    }
}

impl Catalog {
    /// Product `index` as seen at Keepa minute `at_min`.
    pub(crate) fn product(&self, index: u32, at_min: i64) -> ProductData {
        let s = self.summary(index);
        let h = Seeds {
            seed: self.seed,
            index,
        };
        let anchor = self.anchor_min();
        let listed_since = anchor - (60 + (unit(h.h(10)) * 1040.0) as i64) * MINUTES_PER_DAY;
        let tracking_since = listed_since + (unit(h.h(11)) * 2.0 * MINUTES_PER_DAY as f64) as i64;
        let pricing = Pricing::new(&s, h);
        let steps = Steps {
            seed: self.seed,
            index,
            start: tracking_since,
            at_min,
        };
        let mut csv = steps.base_prices(&pricing);
        let hits = self.hits(index, at_min, &csv, s.is_book);
        apply_deals(&mut csv, &hits, at_min);
        steps.market(&mut csv, &s, h, &pricing);
        csv[BUY_BOX_SHIPPING] = Some(buy_box(&csv));
        let last_update = last_update(&csv, h, at_min, tracking_since);
        let last_rating_update = at_min - (h.h(20) % (3 * MINUTES_PER_DAY as u64)) as i64;
        let (title, author, brand) = names(&s, h);
        ProductData {
            asin: self.asin(&s),
            summary: s,
            title,
            author,
            brand,
            image: self.image(index),
            listed_since,
            tracking_since,
            at_min,
            last_update,
            last_rating_update,
            csv,
            monthly_sold: ((h.h(25) % 20) as i64) * 50,
            pages: 120 + (h.h(26) % 700) as i64,
            hits,
        }
    }

    /// The product's image file name.
    fn image(&self, index: u32) -> String {
        (0..11)
            .map(|i| BASE62[(hash(self.seed, 200 + i, u64::from(index)) % 62) as usize] as char)
            .collect::<String>()
            + "L.jpg"
    }
}
