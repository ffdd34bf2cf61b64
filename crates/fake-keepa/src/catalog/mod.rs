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

mod events;
mod names;
mod offers;
mod product;
mod series;
#[cfg(test)]
mod tests;

use keepa::KeepaMinutes;

use crate::rng::{coprime_multiplier, hash, mod_inverse, unit};
pub(crate) use events::{DealHit, Schedule, FRESH_WINDOW_MS};
pub(crate) use offers::{OfferData, SellerData, AMAZON_SELLER_ID};
pub(crate) use series::{extremes, rank_drops, value_at, weighted_avg};

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

fn round_price(x: f64) -> i64 {
    let c = x.max(100.0) as i64;
    (c / 10) * 10 + 9
}

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
}
