//! The seeded catalog: products, categories and sellers derived lazily from
//! (seed, index), and the deal events that move their prices.
//!
//! Nothing is stored: product `i` is generated from the seed and `i` when
//! a request names it, so a catalog of 100 000 products costs nothing until
//! asked. Histories are prefix-stable: the product seen at a later time has
//! the same past as the product seen earlier, plus what happened since.
//!
//! Shape of a product (what a harvester can rely on):
//!
//! - About 60 % are books (root 283155, ISBN-10 ASINs such as
//!   `0316769487`); the rest spread over Electronics, Home & Kitchen, Toys,
//!   Beauty and Sports (ASINs `B0XXXXXXXX`).
//! - csv histories: AMAZON (some products), NEW, USED (all books, some
//!   others), SALES rank, LISTPRICE, COUNT_NEW, COUNT_USED, RATING,
//!   COUNT_REVIEWS and BUY_BOX_SHIPPING; the other types are `null`.
//!   Prices step every few days over months; the rank moves about every
//!   30 h; offer counts move weekly.
//! - Every deal event of the feed is written into the history of its price
//!   type: a drop at the deal's minute, a recovery one to five days later.

use keepa::KeepaMinutes;
use rand::Rng;

use crate::rng::{coprime_multiplier, hash, mod_inverse, rng, unit};

/// Number of csv histories Keepa sends.
pub(crate) const CSV_LEN: usize = 36;
/// csv type indices used by the generator.
pub(crate) mod csv_type {
    pub(crate) const AMAZON: usize = 0;
    pub(crate) const NEW: usize = 1;
    pub(crate) const USED: usize = 2;
    pub(crate) const SALES: usize = 3;
    pub(crate) const LISTPRICE: usize = 4;
    pub(crate) const COUNT_NEW: usize = 11;
    pub(crate) const COUNT_USED: usize = 12;
    pub(crate) const RATING: usize = 16;
    pub(crate) const COUNT_REVIEWS: usize = 17;
    pub(crate) const BUY_BOX_SHIPPING: usize = 18;
}
use csv_type::*;

pub(crate) const MINUTES_PER_DAY: i64 = 1440;
const TAG_PRODUCT: u64 = 1;
const TAG_SERIES: u64 = 2;
const TAG_EVENT_PCT: u64 = 4;
const TAG_EVENT_TYPE: u64 = 5;
const TAG_EVENT_RECOVERY: u64 = 6;
const TAG_EVENT_JITTER: u64 = 7;
const TAG_SELLER: u64 = 8;
const TAG_OFFER: u64 = 9;

/// A category of the fake catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CategoryDef {
    pub(crate) id: i64,
    pub(crate) name: &'static str,
    pub(crate) parent: i64,
}

/// A root category: (id, name, leaves as (id, name)).
pub(crate) type RootDef = (i64, &'static str, &'static [(i64, &'static str)]);

/// Root categories; books first.
pub(crate) const ROOTS: &[RootDef] = &[
    (
        283155,
        "Books",
        &[
            (1, "Arts & Photography"),
            (2, "Biographies & Memoirs"),
            (3, "Business & Money"),
            (4, "Children's Books"),
            (5, "Computers & Technology"),
            (6, "Cookbooks, Food & Wine"),
            (9, "History"),
            (17, "Literature & Fiction"),
            (18, "Mystery, Thriller & Suspense"),
            (25, "Science Fiction & Fantasy"),
            (75, "Science & Math"),
        ],
    ),
    (
        172282,
        "Electronics",
        &[
            (541966, "Computers & Accessories"),
            (172541, "Headphones"),
            (281407, "Accessories & Supplies"),
        ],
    ),
    (
        1055398,
        "Home & Kitchen",
        &[(284507, "Kitchen & Dining"), (1063498, "Home Décor")],
    ),
    (
        165793011,
        "Toys & Games",
        &[(166220011, "Puzzles"), (166118011, "Dolls & Accessories")],
    ),
    (
        3760911,
        "Beauty & Personal Care",
        &[(11060451, "Skin Care"), (11058281, "Makeup")],
    ),
    (
        3375251,
        "Sports & Outdoors",
        &[
            (3407731, "Exercise & Fitness"),
            (3400371, "Outdoor Recreation"),
        ],
    ),
];

/// Every category, roots first.
pub(crate) fn all_categories() -> Vec<CategoryDef> {
    let mut out: Vec<CategoryDef> = ROOTS
        .iter()
        .map(|&(id, name, _)| CategoryDef {
            id,
            name,
            parent: 0,
        })
        .collect();
    for &(root, _, leaves) in ROOTS {
        out.extend(leaves.iter().map(|&(id, name)| CategoryDef {
            id,
            name,
            parent: root,
        }));
    }
    out
}

/// The category with this id.
pub(crate) fn category(id: i64) -> Option<CategoryDef> {
    all_categories().into_iter().find(|c| c.id == id)
}

/// Parameters of the catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatalogParams {
    /// Number of products (default 100 000).
    pub products: u32,
    /// Share of books among them (default 0.6).
    pub book_share: f64,
    /// Number of marketplace sellers (default 2 000).
    pub sellers: u32,
}

impl Default for CatalogParams {
    fn default() -> Self {
        CatalogParams {
            products: 100_000,
            book_share: 0.6,
            sellers: 2_000,
        }
    }
}

/// When deal events happen: a backlog spread over the 12 h before the
/// start, then a steady rate.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) start_ms: i64,
    pub(crate) backlog: i64,
    pub(crate) window_ms: i64,
    /// Milliseconds between live events; `None`: no live events.
    pub(crate) live_slot_ms: Option<f64>,
    pub(crate) seed: u64,
}

pub(crate) const FRESH_WINDOW_MS: i64 = 12 * 3_600_000;

impl Schedule {
    pub(crate) fn new(start_ms: i64, backlog: u32, deals_per_hour: f64, seed: u64) -> Self {
        let live = if deals_per_hour.is_finite() && deals_per_hour > 0.0 {
            Some(3_600_000.0 / deals_per_hour.min(3_600_000.0))
        } else {
            None
        };
        Schedule {
            start_ms,
            backlog: i64::from(backlog),
            window_ms: FRESH_WINDOW_MS,
            live_slot_ms: live,
            seed,
        }
    }

    /// The time of event `k`, if it exists. Monotone in `k`.
    pub(crate) fn time_ms(&self, k: i64) -> Option<i64> {
        let jitter = unit(hash(self.seed, TAG_EVENT_JITTER, k as u64)) * 0.999;
        if k < 0 {
            if k < -self.backlog {
                return None;
            }
            let slot = self.window_ms as f64 / self.backlog as f64;
            let off = (((k + self.backlog) as f64 + jitter) * slot) as i64 + 1;
            Some((self.start_ms - self.window_ms + off).min(self.start_ms - 1))
        } else {
            let slot = self.live_slot_ms?;
            Some(self.start_ms + ((k as f64 + jitter) * slot) as i64 + 1)
        }
    }

    /// The first event index that exists.
    pub(crate) fn first_index(&self) -> Option<i64> {
        if self.backlog > 0 {
            Some(-self.backlog)
        } else if self.live_slot_ms.is_some() {
            Some(0)
        } else {
            None
        }
    }

    /// The last event at or before `t_ms`.
    pub(crate) fn last_at_or_before(&self, t_ms: i64) -> Option<i64> {
        let lo = self.first_index()?;
        if self.time_ms(lo)? > t_ms {
            return None;
        }
        let hi = match self.live_slot_ms {
            Some(slot) if t_ms >= self.start_ms => {
                (((t_ms - self.start_ms) as f64 / slot) as i64).saturating_add(2)
            }
            _ => -1,
        };
        // Binary search the last k in [lo, hi] with time(k) <= t_ms.
        let (mut a, mut b) = (lo, hi.max(lo));
        while a < b {
            let mid = a + (b - a + 1) / 2;
            match self.time_ms(mid) {
                Some(t) if t <= t_ms => a = mid,
                _ => b = mid - 1,
            }
        }
        Some(a)
    }
}

/// One deal event applied to a product's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DealHit {
    pub(crate) k: i64,
    pub(crate) at_min: i64,
    pub(crate) price_type: usize,
    pub(crate) pct: f64,
    pub(crate) end_min: i64,
}

/// The catalog: a pure function of (seed, params, anchor).
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    pub(crate) seed: u64,
    pub(crate) params: CatalogParams,
    pub(crate) schedule: Schedule,
    perm_mul: u64,
    perm_add: u64,
    perm_inv: u64,
    book_mul: u128,
    book_add: u128,
    book_inv: u128,
    other_mul: u128,
    other_add: u128,
    other_inv: u128,
    seller_mul: u128,
    seller_add: u128,
    seller_inv: u128,
}

const BOOK_SPACE: u128 = 1_000_000_000;
const OTHER_SPACE: u128 = 2_821_109_907_456; // 36^8
const SELLER_SPACE: u128 = 4_738_381_338_321_616_896; // 36^12

/// What is cheap to know about a product without its histories.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) index: u32,
    pub(crate) is_book: bool,
    pub(crate) root: i64,
    pub(crate) leaf: i64,
    pub(crate) base_rank: i64,
}

/// A product at one instant, with its full merged histories.
#[derive(Debug, Clone)]
pub(crate) struct ProductData {
    pub(crate) summary: Summary,
    pub(crate) asin: String,
    pub(crate) title: String,
    pub(crate) author: Option<String>,
    pub(crate) brand: String,
    pub(crate) image: String,
    pub(crate) listed_since: i64,
    pub(crate) tracking_since: i64,
    pub(crate) at_min: i64,
    pub(crate) last_update: i64,
    pub(crate) last_rating_update: i64,
    pub(crate) csv: Vec<Option<Vec<(i64, i64)>>>,
    pub(crate) monthly_sold: i64,
    pub(crate) pages: i64,
    pub(crate) hits: Vec<DealHit>,
}

impl ProductData {
    /// The value of csv type `i` at `t` (−1 if none).
    pub(crate) fn value_at(&self, i: usize, t: i64) -> i64 {
        self.csv
            .get(i)
            .and_then(|s| s.as_deref())
            .map_or(-1, |s| value_at(s, t))
    }

    /// The current value of csv type `i`.
    pub(crate) fn current(&self, i: usize) -> i64 {
        self.value_at(i, self.at_min)
    }
}

/// The last value at or before `t`, −1 if none.
pub(crate) fn value_at(series: &[(i64, i64)], t: i64) -> i64 {
    let i = series.partition_point(|&(at, _)| at <= t);
    if i == 0 {
        -1
    } else {
        series[i - 1].1
    }
}

/// Time-weighted mean of the valid (≥ 0) values over `[from, to]`; −1 if none.
pub(crate) fn weighted_avg(series: &[(i64, i64)], from: i64, to: i64) -> i64 {
    if to <= from {
        return -1;
    }
    let (mut sum, mut weight) = (0_f64, 0_f64);
    let mut cur = value_at(series, from);
    let mut t = from;
    let start = series.partition_point(|&(at, _)| at <= from);
    for &(at, v) in &series[start..] {
        if at > to {
            break;
        }
        if cur >= 0 {
            sum += cur as f64 * (at - t) as f64;
            weight += (at - t) as f64;
        }
        cur = v;
        t = at;
    }
    if cur >= 0 {
        sum += cur as f64 * (to - t) as f64;
        weight += (to - t) as f64;
    }
    if weight <= 0.0 {
        -1
    } else {
        (sum / weight).round() as i64
    }
}

/// Lowest and highest valid value in `[from, to]` as `(t, v)`, including the value carried into `from`.
pub(crate) fn extremes(
    series: &[(i64, i64)],
    from: i64,
    to: i64,
) -> Option<((i64, i64), (i64, i64))> {
    let start = series.partition_point(|&(at, _)| at <= from);
    let carried = start.checked_sub(1).map(|i| series[i]);
    let mut min: Option<(i64, i64)> = None;
    let mut max: Option<(i64, i64)> = None;
    for &(t, v) in carried.iter().chain(series[start..].iter()) {
        if t > to || v < 0 {
            continue;
        }
        if min.is_none_or(|(_, m)| v < m) {
            min = Some((t, v));
        }
        if max.is_none_or(|(_, m)| v > m) {
            max = Some((t, v));
        }
    }
    Some((min?, max?))
}

/// Number of rank improvements (a lower rank than the previous point) in `(from, to]`.
pub(crate) fn rank_drops(series: &[(i64, i64)], from: i64, to: i64) -> i64 {
    series
        .windows(2)
        .filter(|w| w[1].0 > from && w[1].0 <= to && w[0].1 > 0 && w[1].1 > 0 && w[1].1 < w[0].1)
        .count() as i64
}

fn round_price(x: f64) -> i64 {
    let c = x.max(100.0) as i64;
    (c / 10) * 10 + 9
}

const ADJ: &[&str] = &[
    "Silent",
    "Hidden",
    "Broken",
    "Golden",
    "Last",
    "Lost",
    "Quiet",
    "Wild",
    "Secret",
    "Distant",
    "Burning",
    "Frozen",
    "Northern",
    "Little",
    "Practical",
    "Modern",
    "Complete",
    "Essential",
];
const NOUN: &[&str] = &[
    "River",
    "Garden",
    "Kingdom",
    "Algorithm",
    "Harbor",
    "Empire",
    "Orchard",
    "Machine",
    "Lantern",
    "Mountain",
    "Library",
    "Compass",
    "Winter",
    "Signal",
    "Island",
    "Theory",
    "Atlas",
    "Voyage",
];
const FIRST: &[&str] = &[
    "Anna", "James", "Maria", "David", "Elena", "Robert", "Sofia", "Thomas", "Laura", "Peter",
];
const LAST: &[&str] = &[
    "Keller",
    "Morgan",
    "Okafor",
    "Lindqvist",
    "Tanaka",
    "Rossi",
    "Novak",
    "Harper",
    "Duval",
];
const BRANDS: &[&str] = &[
    "Northwind",
    "Acmeline",
    "Brightway",
    "Kestrel",
    "Orbis",
    "Tallis",
    "Verdant",
    "Lumio",
];
const GOODS: &[&str] = &[
    "Wireless Earbuds",
    "Chef's Knife",
    "Jigsaw Puzzle 1000 Pieces",
    "Face Serum",
    "Yoga Mat",
    "USB-C Hub",
    "Throw Pillow",
    "Water Bottle",
    "Desk Lamp",
    "Travel Mug",
];

fn pick<'a>(list: &'a [&'a str], h: u64) -> &'a str {
    list[(h % list.len() as u64) as usize]
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE36: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn base36(mut x: u128, digits: usize) -> String {
    let mut out = vec![b'0'; digits];
    for slot in out.iter_mut().rev() {
        *slot = BASE36[(x % 36) as usize];
        x /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(text: &str) -> Option<u128> {
    let mut x: u128 = 0;
    for c in text.bytes() {
        let d = BASE36.iter().position(|&b| b == c.to_ascii_uppercase())? as u128;
        x = x.checked_mul(36)?.checked_add(d)?;
    }
    Some(x)
}

fn isbn10_check(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| (10 - i as u32) * u32::from(d - b'0'))
        .sum();
    match (11 - sum % 11) % 11 {
        10 => b'X',
        c => b'0' + c as u8,
    }
}

/// A live offer of a product.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OfferData {
    pub(crate) seller: u32,
    pub(crate) seller_id: String,
    pub(crate) is_amazon: bool,
    pub(crate) condition: i64,
    pub(crate) price: i64,
    pub(crate) shipping: i64,
    pub(crate) is_fba: bool,
    pub(crate) is_prime: bool,
    pub(crate) since: i64,
    pub(crate) stock: i64,
}

/// A marketplace seller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SellerData {
    pub(crate) index: u32,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) rating: i64,
    pub(crate) rating_count: i64,
    pub(crate) has_fba: bool,
    pub(crate) tracked_since: i64,
    pub(crate) storefront: Vec<u32>,
}

/// Amazon's own seller id on amazon.com.
pub(crate) const AMAZON_SELLER_ID: &str = "ATVPDKIKX0DER";

impl Catalog {
    pub(crate) fn new(seed: u64, params: CatalogParams, schedule: Schedule) -> Self {
        let n = u64::from(params.products.max(1));
        let perm_mul = coprime_multiplier(hash(seed, 100, 0) % n.max(3) + 1, n);
        let book_mul = u128::from(coprime_multiplier(
            387_420_489 + hash(seed, 101, 0) % 1000,
            BOOK_SPACE as u64,
        ));
        let other_mul = u128::from(coprime_multiplier(
            1_000_000_007 + hash(seed, 102, 0) % 1000,
            OTHER_SPACE as u64,
        ));
        let seller_mul = 1_000_000_000_000_000_003_u128; // odd, not a multiple of 3
        let seller_mul = if seller_mul.is_multiple_of(3) {
            seller_mul + 2
        } else {
            seller_mul
        };
        Catalog {
            seed,
            params: CatalogParams {
                products: params.products.max(1),
                sellers: params.sellers.max(1),
                book_share: params.book_share.clamp(0.0, 1.0),
            },
            schedule,
            perm_mul,
            perm_add: hash(seed, 103, 0) % n,
            perm_inv: mod_inverse(u128::from(perm_mul), u128::from(n)) as u64,
            book_mul,
            book_add: u128::from(hash(seed, 104, 0)) % BOOK_SPACE,
            book_inv: mod_inverse(book_mul, BOOK_SPACE),
            other_mul,
            other_add: u128::from(hash(seed, 105, 0)) % OTHER_SPACE,
            other_inv: mod_inverse(other_mul, OTHER_SPACE),
            seller_mul,
            seller_add: u128::from(hash(seed, 106, 0)) % SELLER_SPACE,
            seller_inv: mod_inverse(seller_mul, SELLER_SPACE),
        }
    }

    /// Keepa minute of the catalog's anchor (the server start).
    pub(crate) fn anchor_min(&self) -> i64 {
        KeepaMinutes::from_unix_ms(self.schedule.start_ms).0
    }

    pub(crate) fn summary(&self, index: u32) -> Summary {
        let h = |tag: u64| hash(self.seed, TAG_PRODUCT * 1000 + tag, u64::from(index));
        let is_book = unit(h(1)) < self.params.book_share;
        let (root, leaves) = if is_book {
            (ROOTS[0].0, ROOTS[0].2)
        } else {
            let r = &ROOTS[1 + (h(2) % (ROOTS.len() as u64 - 1)) as usize];
            (r.0, r.2)
        };
        let leaf = leaves[(h(3) % leaves.len() as u64) as usize].0;
        // log-uniform rank: books 1e3..3e6, others 1e2..5e5.
        let (lo, hi) = if is_book { (3.0, 6.477) } else { (2.0, 5.7) };
        let base_rank = 10_f64.powf(lo + (hi - lo) * unit(h(4))) as i64;
        Summary {
            index,
            is_book,
            root,
            leaf,
            base_rank,
        }
    }

    pub(crate) fn asin(&self, s: &Summary) -> String {
        let i = u128::from(s.index);
        if s.is_book {
            let x = (i * self.book_mul + self.book_add) % BOOK_SPACE;
            let mut digits = format!("{x:09}").into_bytes();
            let check = isbn10_check(&digits);
            digits.push(check);
            String::from_utf8(digits).unwrap_or_default()
        } else {
            let y = (i * self.other_mul + self.other_add) % OTHER_SPACE;
            format!("B0{}", base36(y, 8))
        }
    }

    /// The product index of an ASIN, if it is in the catalog.
    pub(crate) fn lookup(&self, asin: &str) -> Option<u32> {
        let asin = asin.trim().to_ascii_uppercase();
        if asin.len() != 10 || !asin.is_ascii() {
            return None;
        }
        let index = if let Some(rest) = asin.strip_prefix("B0") {
            let y = from_base36(rest)?;
            ((y + OTHER_SPACE - self.other_add) % OTHER_SPACE * self.other_inv) % OTHER_SPACE
        } else {
            let x: u128 = asin.get(..9)?.parse().ok()?;
            ((x + BOOK_SPACE - self.book_add) % BOOK_SPACE * self.book_inv) % BOOK_SPACE
        };
        let index = u32::try_from(index).ok()?;
        if index >= self.params.products {
            return None;
        }
        (self.asin(&self.summary(index)) == asin).then_some(index)
    }

    /// The product a deal event touches.
    pub(crate) fn event_product(&self, k: i64) -> u32 {
        let n = u64::from(self.params.products);
        let r = (k.rem_euclid(n as i64)) as u64;
        ((u128::from(r) * u128::from(self.perm_mul) + u128::from(self.perm_add)) % u128::from(n))
            as u32
    }

    fn event_residue(&self, index: u32) -> i64 {
        let n = u64::from(self.params.products);
        let d = (u64::from(index) + n - self.perm_add % n) % n;
        ((u128::from(d) * u128::from(self.perm_inv)) % u128::from(n)) as i64
    }

    /// The deal events of product `index` up to `at_min`, with their price
    /// type resolved against the base histories.
    fn hits(
        &self,
        index: u32,
        at_min: i64,
        base: &[Option<Vec<(i64, i64)>>],
        is_book: bool,
    ) -> Vec<DealHit> {
        let n = i64::from(self.params.products);
        let r = self.event_residue(index);
        let Some(first) = self.schedule.first_index() else {
            return Vec::new();
        };
        // Smallest k >= first with k ≡ r (mod n).
        let mut k = first + (r - first).rem_euclid(n);
        let mut out = Vec::new();
        while let Some(t_ms) = self.schedule.time_ms(k) {
            let t_min = KeepaMinutes::from_unix_ms(t_ms).0;
            if t_min > at_min {
                break;
            }
            let pref = unit(hash(self.seed, TAG_EVENT_TYPE, k as u64));
            let wanted = if is_book {
                if pref < 0.6 {
                    USED
                } else if pref < 0.85 {
                    NEW
                } else {
                    AMAZON
                }
            } else if pref < 0.5 {
                NEW
            } else if pref < 0.8 {
                AMAZON
            } else {
                USED
            };
            let available = |i: usize| base[i].as_deref().is_some_and(|s| value_at(s, t_min) > 0);
            let price_type = [wanted, NEW, USED].into_iter().find(|&i| available(i));
            if let Some(price_type) = price_type {
                let pct = 0.10 + 0.5 * unit(hash(self.seed, TAG_EVENT_PCT, k as u64));
                let mut rec = MINUTES_PER_DAY
                    + (unit(hash(self.seed, TAG_EVENT_RECOVERY, k as u64))
                        * 4.0
                        * MINUTES_PER_DAY as f64) as i64;
                if let Some(next) = self.schedule.time_ms(k + n) {
                    rec = rec.min((KeepaMinutes::minutes_between(t_ms, next) / 2).max(1));
                }
                out.push(DealHit {
                    k,
                    at_min: t_min,
                    price_type,
                    pct,
                    end_min: t_min + rec,
                });
            }
            k += n;
        }
        out
    }

    /// Product `index` as seen at Keepa minute `at_min`.
    pub(crate) fn product(&self, index: u32, at_min: i64) -> ProductData {
        let s = self.summary(index);
        let h = |tag: u64| hash(self.seed, TAG_PRODUCT * 1000 + tag, u64::from(index));
        let anchor = self.anchor_min();
        let listed_since = anchor - (60 + (unit(h(10)) * 1040.0) as i64) * MINUTES_PER_DAY;
        let tracking_since = listed_since + (unit(h(11)) * 2.0 * MINUTES_PER_DAY as f64) as i64;
        let base_new = if s.is_book {
            800.0 + unit(h(12)) * 3200.0
        } else {
            1000.0 + unit(h(12)) * 19000.0
        };
        let list_price = round_price(base_new * 1.25);
        let has_amazon = unit(h(13)) < if s.is_book { 0.5 } else { 0.4 };
        let has_used = s.is_book || unit(h(14)) < 0.3;
        let used_share = 0.35 + 0.45 * unit(h(15));

        let start = tracking_since;
        let series_rng = |ty: usize| rng(self.seed, TAG_SERIES * 100 + ty as u64, u64::from(index));
        let step_series =
            |ty: usize,
             mean_days: f64,
             mut value: Box<dyn FnMut(&mut rand_chacha::ChaCha8Rng) -> i64>| {
                let mut r = series_rng(ty);
                let mut t = start;
                let mut out = Vec::new();
                while t <= at_min {
                    let v = value(&mut r);
                    if out.last().is_none_or(|&(_, last)| last != v) {
                        out.push((t, v));
                    }
                    let u: f64 = r.random::<f64>().max(1e-9);
                    t += ((-u.ln()) * mean_days * MINUTES_PER_DAY as f64).max(60.0) as i64;
                }
                out
            };

        let mut base: Vec<Option<Vec<(i64, i64)>>> = vec![None; CSV_LEN];
        base[NEW] = Some(step_series(
            NEW,
            12.0,
            Box::new(move |r| round_price(base_new * r.random_range(0.8..1.15))),
        ));
        if has_used {
            base[USED] = Some(step_series(
                USED,
                5.0,
                Box::new(move |r| round_price(base_new * used_share * r.random_range(0.7..1.4))),
            ));
        }
        if has_amazon {
            base[AMAZON] = Some(step_series(
                AMAZON,
                15.0,
                Box::new(move |r| {
                    if r.random::<f64>() < 0.08 {
                        -1
                    } else {
                        round_price(base_new * r.random_range(0.9..1.0))
                    }
                }),
            ));
        }
        let hits = self.hits(index, at_min, &base, s.is_book);
        let mut csv = base;
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
        // Sales rank: a mean-reverting walk in log space, about every 30 h.
        let base_rank = s.base_rank as f64;
        let mut log_rank = base_rank.ln();
        csv[SALES] = Some(step_series(
            SALES,
            1.25,
            Box::new(move |r| {
                let noise: f64 = r.random_range(-0.6..0.6);
                log_rank = log_rank + 0.3 * (base_rank.ln() - log_rank) + noise;
                log_rank.exp().clamp(1.0, 9_000_000.0) as i64
            }),
        ));
        csv[LISTPRICE] = Some(vec![(tracking_since, list_price)]);
        let max_new = if s.is_book { 15 } else { 25 };
        csv[COUNT_NEW] = Some(step_series(
            COUNT_NEW,
            9.0,
            Box::new(move |r| r.random_range(1..=max_new)),
        ));
        if has_used {
            let max_used = if s.is_book { 40 } else { 6 };
            csv[COUNT_USED] = Some(step_series(
                COUNT_USED,
                7.0,
                Box::new(move |r| r.random_range(1..=max_used)),
            ));
        }
        let rating0 = 30 + (h(16) % 21) as i64;
        csv[RATING] = Some(step_series(
            RATING,
            60.0,
            Box::new(move |r| (rating0 + r.random_range(-2..=2)).clamp(10, 50)),
        ));
        let mut reviews = (h(17) % 50) as i64;
        csv[COUNT_REVIEWS] = Some(step_series(
            COUNT_REVIEWS,
            20.0,
            Box::new(move |r| {
                reviews += r.random_range(0..=8);
                reviews
            }),
        ));
        // Buy box: the lowest of Amazon and new, at every change of either.
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
        csv[BUY_BOX_SHIPPING] = Some(bb);

        let last_change = csv
            .iter()
            .flatten()
            .filter_map(|s| s.last().map(|&(t, _)| t))
            .max()
            .unwrap_or(tracking_since);
        // Keepa re-crawls a product every 1..12 h; lastUpdate is the later of
        // the last crawl and the last change.
        let period = 60 + (h(18) % (11 * 60)) as i64;
        let phase = (h(19) % period as u64) as i64;
        let last_crawl = at_min - (at_min - phase).rem_euclid(period);
        let last_update = last_change.max(last_crawl).min(at_min).max(tracking_since);
        let last_rating_update = at_min - (h(20) % (3 * MINUTES_PER_DAY as u64)) as i64;

        let title_seed = h(21);
        let (title, author, brand) = if s.is_book {
            let author = format!("{} {}", pick(FIRST, h(22)), pick(LAST, h(23)));
            let mut title = format!(
                "The {} {} of the {}",
                pick(ADJ, title_seed),
                pick(NOUN, title_seed >> 8),
                pick(NOUN, title_seed >> 16)
            );
            if title_seed % 7 == 0 {
                title.push_str(": A Novel");
            }
            if title_seed % 11 == 0 {
                title.push_str(" &amp; Other Stories");
            }
            let publisher = format!("{} Press", pick(LAST, h(24)));
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
        };
        let image: String = (0..11)
            .map(|i| BASE62[(hash(self.seed, 200 + i, u64::from(index)) % 62) as usize] as char)
            .collect::<String>()
            + "L.jpg";
        ProductData {
            asin: self.asin(&s),
            summary: s,
            title,
            author,
            brand,
            image,
            listed_since,
            tracking_since,
            at_min,
            last_update,
            last_rating_update,
            csv,
            monthly_sold: ((h(25) % 20) as i64) * 50,
            pages: 120 + (h(26) % 700) as i64,
            hits,
        }
    }

    /// The live offers of a product at its instant: as many as COUNT_NEW +
    /// COUNT_USED say, the cheapest of each condition at the csv price.
    pub(crate) fn offers(&self, p: &ProductData) -> Vec<OfferData> {
        let index = u64::from(p.summary.index);
        // Offers reshuffle every 6 h of Keepa time.
        let epoch = p.at_min.div_euclid(360) as u64;
        let mut r = rng(self.seed, TAG_OFFER, index.wrapping_mul(1_000_003) ^ epoch);
        let mut out = Vec::new();
        let new_count = p.current(COUNT_NEW).max(0);
        let used_count = p.current(COUNT_USED).max(0);
        let amazon = p.current(AMAZON);
        let new_low = p.current(NEW);
        let used_low = p.current(USED);
        let mut new_left = new_count;
        if amazon > 0 && new_left > 0 {
            out.push(OfferData {
                seller: u32::MAX,
                seller_id: AMAZON_SELLER_ID.to_string(),
                is_amazon: true,
                condition: 1,
                price: amazon,
                shipping: 0,
                is_fba: true,
                is_prime: true,
                since: p.at_min - r.random_range(60..30 * MINUTES_PER_DAY),
                stock: r.random_range(5..=99),
            });
            new_left -= 1;
        }
        let mut push = |r: &mut rand_chacha::ChaCha8Rng, condition: i64, low: i64, first: bool| {
            let seller = r.random_range(0..self.params.sellers);
            let price = if first {
                low
            } else {
                round_price(low as f64 * r.random_range(1.0..1.6))
            };
            let is_fba = r.random::<f64>() < 0.4;
            out.push(OfferData {
                seller,
                seller_id: self.seller_id(seller),
                is_amazon: false,
                condition,
                price,
                shipping: if is_fba { 0 } else { 399 },
                is_fba,
                is_prime: is_fba,
                since: p.at_min - r.random_range(60..60 * MINUTES_PER_DAY),
                stock: r.random_range(1..=30),
            });
        };
        if new_low > 0 {
            for i in 0..new_left {
                push(&mut r, 1, new_low, i == 0);
            }
        }
        if used_low > 0 {
            for i in 0..used_count {
                let condition = r.random_range(2..=5);
                push(&mut r, condition, used_low, i == 0);
            }
        }
        out
    }

    pub(crate) fn seller_id(&self, index: u32) -> String {
        let z = (u128::from(index) * self.seller_mul + self.seller_add) % SELLER_SPACE;
        let check = BASE36[(hash(self.seed, TAG_SELLER, z as u64) % 36) as usize] as char;
        format!("A{}{check}", base36(z, 12))
    }

    pub(crate) fn seller_lookup(&self, id: &str) -> Option<u32> {
        let id = id.trim().to_ascii_uppercase();
        if id.len() != 14 {
            return None;
        }
        let z = from_base36(id.get(1..13)?)?;
        if z >= SELLER_SPACE {
            return None;
        }
        let index =
            ((z + SELLER_SPACE - self.seller_add) % SELLER_SPACE * self.seller_inv) % SELLER_SPACE;
        let index = u32::try_from(index).ok()?;
        (index < self.params.sellers && self.seller_id(index) == id).then_some(index)
    }

    pub(crate) fn seller(&self, index: u32) -> SellerData {
        let h = |tag: u64| hash(self.seed, TAG_SELLER * 1000 + tag, u64::from(index));
        let n = u64::from(self.params.products);
        let count = 20 + h(1) % 180;
        SellerData {
            index,
            id: self.seller_id(index),
            name: format!(
                "{} {}",
                pick(LAST, h(2)),
                pick(&["Books", "Media", "Goods", "Outlet", "Trading"], h(3))
            ),
            rating: 80 + (h(4) % 21) as i64,
            rating_count: (h(5) % 20_000) as i64,
            has_fba: h(6) % 2 == 0,
            tracked_since: self.anchor_min() - (h(7) % 2000) as i64 * MINUTES_PER_DAY,
            storefront: (0..count)
                .map(|i| {
                    (hash(
                        self.seed,
                        TAG_SELLER * 1000 + 8,
                        u64::from(index) * 1000 + i,
                    ) % n) as u32
                })
                .collect(),
        }
    }
}

fn merge_deals(base: &[(i64, i64)], hits: &[DealHit], at_min: i64) -> Vec<(i64, i64)> {
    let inside = |t: i64| hits.iter().any(|d| t >= d.at_min && t < d.end_min);
    let mut out: Vec<(i64, i64, u8)> = base
        .iter()
        .filter(|&&(t, _)| !inside(t))
        .map(|&(t, v)| (t, v, 0))
        .collect();
    for d in hits {
        let before = value_at(base, d.at_min);
        if before <= 0 {
            continue;
        }
        out.push((
            d.at_min,
            round_price(before as f64 * (1.0 - d.pct))
                .min(before - 1)
                .max(1),
            1,
        ));
        if d.end_min <= at_min {
            out.push((d.end_min, value_at(base, d.end_min), 1));
        }
    }
    out.sort_by_key(|&(t, _, pri)| (t, pri));
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (t, v, _) in out {
        match merged.last_mut() {
            Some(last) if last.0 == t => last.1 = v,
            _ => merged.push((t, v)),
        }
    }
    merged.dedup_by(|b, a| a.1 == b.1);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(seed: u64) -> Catalog {
        let start = 1_750_000_000_000;
        Catalog::new(
            seed,
            CatalogParams::default(),
            Schedule::new(start, 3000, 300.0, seed),
        )
    }

    #[test]
    fn asins_round_trip_and_strangers_are_unknown() {
        let c = catalog(7);
        let mut books = 0;
        for i in (0..100_000).step_by(997) {
            let s = c.summary(i);
            books += usize::from(s.is_book);
            let asin = c.asin(&s);
            assert_eq!(asin.len(), 10);
            assert_eq!(c.lookup(&asin), Some(i), "{asin}");
        }
        assert!(books > 40 && books < 80, "{books}");
        assert_eq!(c.lookup("B0D8W1YVBX"), None);
        assert_eq!(c.lookup("short"), None);
        assert_eq!(c.lookup("ÄÄÄÄÄ"), None);
    }

    #[test]
    fn seller_ids_round_trip() {
        let c = catalog(7);
        for i in [0, 1, 1999] {
            assert_eq!(c.seller_lookup(&c.seller_id(i)), Some(i));
        }
        assert!(c.seller_lookup("A2D7JKJIGBZO3G").is_none());
    }

    #[test]
    fn schedule_is_monotone_and_searchable() {
        let s = Schedule::new(1_000_000_000, 100, 60.0, 1);
        let mut prev = i64::MIN;
        for k in -100..500 {
            let t = s.time_ms(k).unwrap();
            assert!(t >= prev);
            assert!(k >= 0 || (t > 1_000_000_000 - FRESH_WINDOW_MS && t < 1_000_000_000));
            prev = t;
            assert!(s.last_at_or_before(t).unwrap() >= k);
            assert!(s.last_at_or_before(t - 1).is_none_or(|j| j < k));
        }
        assert_eq!(s.time_ms(-101), None);
    }

    #[test]
    fn histories_are_prefix_stable() {
        let c = catalog(3);
        let a = c.anchor_min();
        for i in [0, 5, 77, 12345] {
            let early = c.product(i, a);
            let late = c.product(i, a + 30 * MINUTES_PER_DAY);
            for ty in [NEW, SALES, COUNT_NEW] {
                let e = early.csv[ty].as_ref().unwrap();
                let l = late.csv[ty].as_ref().unwrap();
                assert_eq!(
                    &l[..e.len() - 1],
                    &e[..e.len() - 1],
                    "type {ty} product {i}\n{e:?}\n{l:?}"
                );
            }
        }
    }
}
