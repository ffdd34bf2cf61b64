//! The deal feed: deal records derived from the catalog's deal events, the
//! `/deal` selection, its filters, sorting and paging.
//!
//! Behaviour (choices where Keepa's documentation is silent are marked):
//!
//! - Only deals whose event lies in the last 12 h of server time are listed
//!   (Keepa: "only products updated in the last 12 h").
//! - The feed is evaluated at server time rounded down to 120 s, like
//!   Keepa's ~120 s result cache: paging within one 2-minute slot is stable.
//! - A page holds 150 deals; results beyond the first 10 000 are never
//!   returned; a page past the end is empty (not an error).
//! - `avg`, `delta` and `deltaPercent` are written `[dateRange][priceType]`
//!   (4 rows: day, week, month, 90 days; 36 columns). Keepa's sources
//!   disagree on the order; this is the reading of the Java client's prose.
//!   The "day" average covers 48 h, as Keepa documents.
//! - A positive delta means the value dropped: `delta = avg − current`.
//! - Range filters (`deltaPercentRange`, `deltaRange`, `currentRange`,
//!   `deltaLastRange`) apply only with `isRangeEnabled: true`; the switches
//!   (`isLowest`, `isLowest90`, `hasReviews`, `minRating`, `titleSearch`)
//!   only with `isFilterEnabled: true`. Categories and `salesRankRange`
//!   always apply. An upper bound of −1 means "no upper bound".
//! - `sortType`: 1 newest first; 2 absolute delta, 3 sales rank (lowest
//!   first), 4 percent delta; negative inverts 2-4. Keepa documents that
//!   deal age (1) is not invertible, so −1 is served as 1. 0, absent or
//!   unknown is served as 1.
//! - Integers must be JSON numbers: a string `"4"` is ignored, as Keepa does.
//! - Only AMAZON (0), NEW (1) and USED (2) deals are generated; every other
//!   valid price type yields an empty feed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::catalog::{
    csv_type::*, extremes, weighted_avg, Catalog, CSV_LEN, FRESH_WINDOW_MS, MINUTES_PER_DAY,
};

/// Deals per page.
pub const PAGE_SIZE: usize = 150;
/// The most deals paging ever reaches.
pub const PAGING_CAP: usize = 10_000;
/// Price types Keepa accepts in a deal selection.
pub const DEAL_PRICE_TYPES: [i64; 17] = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 18, 19, 20, 21, 22, 32, 33];
const RANGE_MINUTES: [i64; 4] = [
    2 * MINUTES_PER_DAY,
    7 * MINUTES_PER_DAY,
    31 * MINUTES_PER_DAY,
    90 * MINUTES_PER_DAY,
];

/// One deal: a product at the minute its price dropped.
#[derive(Debug, Clone)]
pub(crate) struct DealRecord {
    pub(crate) price_type: usize,
    pub(crate) at_min: i64,
    pub(crate) asin: String,
    pub(crate) title: String,
    pub(crate) root: i64,
    pub(crate) leaf: i64,
    pub(crate) image: String,
    pub(crate) current: Vec<i64>,
    pub(crate) current_since: Vec<i64>,
    pub(crate) delta_last: Vec<i64>,
    pub(crate) avg: Vec<Vec<i64>>,
    pub(crate) delta: Vec<Vec<i64>>,
    pub(crate) delta_pct: Vec<Vec<i64>>,
    pub(crate) lowest_ever: bool,
    pub(crate) lowest_90: bool,
    pub(crate) rating: i64,
    pub(crate) reviews: i64,
}

/// A parsed, validated deal selection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    pub(crate) domain_id: i64,
    pub(crate) price_type: i64,
    pub(crate) page: i64,
    pub(crate) date_range: usize,
    pub(crate) sort_type: i64,
    pub(crate) filter_enabled: bool,
    pub(crate) range_enabled: bool,
    pub(crate) delta_percent_range: Option<(i64, i64)>,
    pub(crate) delta_range: Option<(i64, i64)>,
    pub(crate) current_range: Option<(i64, i64)>,
    pub(crate) delta_last_range: Option<(i64, i64)>,
    pub(crate) sales_rank_range: Option<(i64, i64)>,
    pub(crate) include_categories: Vec<i64>,
    pub(crate) exclude_categories: Vec<i64>,
    pub(crate) is_lowest: bool,
    pub(crate) is_lowest90: bool,
    pub(crate) has_reviews: bool,
    pub(crate) min_rating: i64,
    pub(crate) title_search: Vec<String>,
}

/// Why a selection was refused: `(detail type, message)`.
pub(crate) type SelectionError = (&'static str, String);

fn int(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_i64)
}

fn flag(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn range(v: &Value, name: &str) -> Result<Option<(i64, i64)>, SelectionError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_i64(), a[1].as_i64()) {
            (Some(lo), Some(hi)) => Ok(Some((lo, if hi == -1 { i64::MAX } else { hi }))),
            // Strings are ignored, like Keepa ignores "4".
            _ => Ok(None),
        },
        Some(_) => Err(("selection", format!("{name} must be [min, max]"))),
    }
}

fn ids(v: &Value, name: &str) -> Vec<i64> {
    v.get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

impl Selection {
    /// Parses a selection document; never panics on any input.
    pub(crate) fn parse(text: &[u8]) -> Result<Selection, SelectionError> {
        let v: Value = serde_json::from_slice(text)
            .map_err(|_| ("selection", "selection is not valid JSON".to_string()))?;
        if !v.is_object() {
            return Err(("selection", "selection must be a JSON object".to_string()));
        }
        let domain_id = int(&v, "domainId").ok_or(("domain", "invalid".to_string()))?;
        if keepa::Domain::try_from(domain_id).is_err() {
            return Err(("domain", "invalid".to_string()));
        }
        let types: Vec<i64> = ids(&v, "priceTypes");
        let price_type = match types.as_slice() {
            [t] if DEAL_PRICE_TYPES.contains(t) => *t,
            [_] => return Err(("priceTypes", "invalid".to_string())),
            [] => {
                return Err((
                    "priceTypes",
                    "exactly one price type is required".to_string(),
                ))
            }
            _ => {
                return Err((
                    "priceTypes",
                    "only one price type per query is supported".to_string(),
                ))
            }
        };
        let page = int(&v, "page").unwrap_or(0);
        if page < 0 {
            return Err(("page", "invalid".to_string()));
        }
        let date_range = int(&v, "dateRange").unwrap_or(0);
        if !(0..=3).contains(&date_range) {
            return Err(("dateRange", "invalid".to_string()));
        }
        let title_search = v
            .get("titleSearch")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_lowercase).collect())
            .unwrap_or_default();
        Ok(Selection {
            domain_id,
            price_type,
            page,
            date_range: date_range as usize,
            sort_type: int(&v, "sortType").unwrap_or(1),
            filter_enabled: flag(&v, "isFilterEnabled"),
            range_enabled: flag(&v, "isRangeEnabled"),
            delta_percent_range: range(&v, "deltaPercentRange")?,
            delta_range: range(&v, "deltaRange")?,
            current_range: range(&v, "currentRange")?,
            delta_last_range: range(&v, "deltaLastRange")?,
            sales_rank_range: range(&v, "salesRankRange")?,
            include_categories: ids(&v, "includeCategories"),
            exclude_categories: ids(&v, "excludeCategories"),
            is_lowest: flag(&v, "isLowest"),
            is_lowest90: flag(&v, "isLowest90"),
            has_reviews: flag(&v, "hasReviews"),
            min_rating: int(&v, "minRating").unwrap_or(-1),
            title_search,
        })
    }

    fn accepts(&self, d: &DealRecord) -> bool {
        let pt = self.price_type as usize;
        if d.price_type != pt {
            return false;
        }
        let within = |r: Option<(i64, i64)>, x: i64| r.is_none_or(|(lo, hi)| x >= lo && x <= hi);
        let cats = [d.root, d.leaf];
        if !self.include_categories.is_empty()
            && !cats.iter().any(|c| self.include_categories.contains(c))
        {
            return false;
        }
        if cats.iter().any(|c| self.exclude_categories.contains(c)) {
            return false;
        }
        if self.sales_rank_range.is_some()
            && (d.current[SALES] < 0 || !within(self.sales_rank_range, d.current[SALES]))
        {
            return false;
        }
        let r = self.date_range;
        if self.range_enabled
            && !(within(self.delta_percent_range, d.delta_pct[r][pt])
                && within(self.delta_range, d.delta[r][pt])
                && within(self.current_range, d.current[pt])
                && within(self.delta_last_range, d.delta_last[pt]))
        {
            return false;
        }
        if self.filter_enabled {
            if (self.is_lowest && !d.lowest_ever)
                || (self.is_lowest90 && !d.lowest_90)
                || (self.has_reviews && d.reviews <= 0)
                || (self.min_rating >= 0 && d.rating < self.min_rating)
            {
                return false;
            }
            let title = d.title.to_lowercase();
            if !self.title_search.iter().all(|w| title.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

/// A page of the feed and the category summary of all matches.
#[derive(Debug)]
pub(crate) struct FeedPage {
    pub(crate) deals: Vec<Arc<DealRecord>>,
    pub(crate) category_counts: Vec<(i64, usize)>,
}

/// How far past the 12 h window built records are kept, so that a request
/// whose clock reading is a little older than another's finds them still.
const CACHE_MARGIN_MS: i64 = 3_600_000;

/// The deal feed over a catalog, with a cache of built records.
///
/// The cache holds only deals that can still be listed: a query at feed
/// time `t` drops records of events at or before `t − 12 h − 1 h`, so its
/// size follows the deal rate over 13 h, not the server's age.
/// `warm` builds the window's records ahead of the first query.
#[derive(Debug)]
pub(crate) struct DealFeed {
    catalog: Arc<Catalog>,
    /// Event index → its record (`None`: the event produced no deal).
    /// Ordered, as event times are monotone in the index.
    cache: Mutex<BTreeMap<i64, Option<Arc<DealRecord>>>>,
}

impl DealFeed {
    pub(crate) fn new(catalog: Arc<Catalog>) -> Self {
        DealFeed {
            catalog,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The catalog the deals come from.
    pub(crate) fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The deal of event `k`, if the event produced one.
    pub(crate) fn record(&self, k: i64) -> Option<Arc<DealRecord>> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&k).cloned()) {
            return hit;
        }
        let rec = self.build(k).map(Arc::new);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(k, rec.clone());
        }
        rec
    }

    /// Builds the records of every event in the 12 h window at `now_ms`,
    /// on up to `threads` threads, so that no query pays for the backlog.
    /// Records are pure functions of the event: answers do not change.
    pub(crate) fn warm(&self, now_ms: i64, threads: usize) {
        let sched = &self.catalog.schedule;
        let (Some(first), Some(last)) = (sched.first_index(), sched.last_at_or_before(now_ms))
        else {
            return;
        };
        let from = sched
            .last_at_or_before(now_ms - FRESH_WINDOW_MS)
            .map_or(first, |k| k + 1);
        let todo: Vec<i64> = {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            (from..=last).filter(|k| !c.contains_key(k)).collect()
        };
        if todo.is_empty() {
            return;
        }
        let per = todo.len().div_ceil(threads.clamp(1, 16));
        let built: Vec<(i64, Option<Arc<DealRecord>>)> = std::thread::scope(|s| {
            let jobs: Vec<_> = todo
                .chunks(per)
                .map(|ks| {
                    s.spawn(move || {
                        ks.iter()
                            .map(|&k| (k, self.build(k).map(Arc::new)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            jobs.into_iter()
                .flat_map(|j| j.join().unwrap_or_default())
                .collect()
        });
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.extend(built);
    }

    /// How many records the cache holds (tests: it stays bounded).
    pub(crate) fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    fn build(&self, k: i64) -> Option<DealRecord> {
        let c = &self.catalog;
        let at_ms = c.schedule.time_ms(k)?;
        let at_min = keepa::KeepaMinutes::from_unix_ms(at_ms).0;
        let index = c.event_product(k);
        let p = c.product(index, at_min);
        let price_type = p.hits.iter().find(|h| h.k == k)?.price_type;
        let mut current = vec![-1; CSV_LEN];
        let mut current_since = vec![-1; CSV_LEN];
        let mut delta_last = vec![0; CSV_LEN];
        let mut avg = vec![vec![-1; CSV_LEN]; 4];
        let mut delta = vec![vec![0; CSV_LEN]; 4];
        let mut delta_pct = vec![vec![0; CSV_LEN]; 4];
        for (ty, s) in p.csv.iter().enumerate() {
            let Some(s) = s.as_deref() else { continue };
            let i = s.partition_point(|&(t, _)| t <= at_min);
            if i == 0 {
                continue;
            }
            let cur = s[i - 1].1;
            current[ty] = cur;
            current_since[ty] = s[i - 1].0;
            if i >= 2 && cur >= 0 && s[i - 2].1 >= 0 {
                delta_last[ty] = s[i - 2].1 - cur;
            }
            for (r, &mins) in RANGE_MINUTES.iter().enumerate() {
                let a = weighted_avg(s, at_min - mins, at_min);
                avg[r][ty] = a;
                if a > 0 && cur >= 0 {
                    delta[r][ty] = a - cur;
                    delta_pct[r][ty] = ((a - cur) as f64 * 100.0 / a as f64).round() as i64;
                }
            }
        }
        let series = p.csv[price_type].as_deref().unwrap_or_default();
        let cur = current[price_type];
        let min_before =
            |from: i64| extremes(series, from, at_min - 1).map_or(i64::MAX, |((_, v), _)| v);
        Some(DealRecord {
            price_type,
            at_min,
            asin: p.asin.clone(),
            title: p.title.clone(),
            root: p.summary.root,
            leaf: p.summary.leaf,
            image: p.image.clone(),
            lowest_ever: cur <= min_before(i64::MIN / 2),
            lowest_90: cur <= min_before(at_min - 90 * MINUTES_PER_DAY),
            rating: current[RATING],
            reviews: current[COUNT_REVIEWS],
            current,
            current_since,
            delta_last,
            avg,
            delta,
            delta_pct,
        })
    }

    /// The page the selection asks for, at server time `now_ms`.
    pub(crate) fn query(&self, sel: &Selection, now_ms: i64) -> FeedPage {
        let feed_now = now_ms - now_ms.rem_euclid(120_000);
        let sched = &self.catalog.schedule;
        let mut matches: Vec<Arc<DealRecord>> = Vec::new();
        if let Some(mut k) = sched.last_at_or_before(feed_now) {
            while let Some(t) = sched.time_ms(k) {
                if t <= feed_now - FRESH_WINDOW_MS {
                    break;
                }
                if let Some(d) = self.record(k) {
                    if sel.accepts(&d) {
                        matches.push(d);
                    }
                }
                k -= 1;
            }
        }
        self.prune(feed_now);
        let pt = sel.price_type as usize;
        let r = sel.date_range;
        let sort = sel.sort_type;
        // `matches` is newest first; sorts below are stable, so ties stay newest first.
        match sort.abs() {
            2 => matches.sort_by_key(|d| std::cmp::Reverse(d.delta[r][pt])),
            3 => matches.sort_by_key(|d| {
                if d.current[SALES] < 0 {
                    i64::MAX
                } else {
                    d.current[SALES]
                }
            }),
            4 => matches.sort_by_key(|d| std::cmp::Reverse(d.delta_pct[r][pt])),
            _ => {}
        }
        if (-4..-1).contains(&sort) {
            matches.reverse();
        }
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for d in &matches {
            *counts.entry(d.root).or_default() += 1;
        }
        let mut category_counts: Vec<(i64, usize)> = counts.into_iter().collect();
        category_counts.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
        matches.truncate(PAGING_CAP);
        let start = usize::try_from(sel.page)
            .unwrap_or(usize::MAX)
            .saturating_mul(PAGE_SIZE);
        let deals = matches.into_iter().skip(start).take(PAGE_SIZE).collect();
        FeedPage {
            deals,
            category_counts,
        }
    }

    /// Drops the records of events that no query at `feed_now` or later
    /// can list (older than the window plus `CACHE_MARGIN_MS`).
    fn prune(&self, feed_now: i64) {
        let sched = &self.catalog.schedule;
        let Some(oldest) = sched.last_at_or_before(feed_now - FRESH_WINDOW_MS - CACHE_MARGIN_MS)
        else {
            return;
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.first_key_value().is_some_and(|(&k, _)| k <= oldest) {
                *c = c.split_off(&(oldest + 1));
            }
        }
    }
}

/// The deal object, with Keepa's field names.
pub(crate) fn deal_json(d: &DealRecord) -> Value {
    json!({
        "asin": d.asin,
        "parentAsin": null,
        "title": d.title,
        "rootCat": d.root,
        "categories": [d.leaf],
        "image": d.image.bytes().map(i64::from).collect::<Vec<_>>(),
        "current": d.current,
        "currentSince": d.current_since,
        "deltaLast": d.delta_last,
        "delta": d.delta,
        "deltaPercent": d.delta_pct,
        "avg": d.avg,
        "creationDate": d.at_min,
        "lastUpdate": d.at_min,
        "lightningEnd": 0,
        "warehouseCondition": 0,
        "warehouseConditionComment": null,
        "minRating": -1,
    })
}
