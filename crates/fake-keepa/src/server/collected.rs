//! What Keepa has collected, per product, and what `update` makes of it
//! (`docs/KEEPA_API.md` §7).
//!
//! The catalog's seeded times stand for everyone else's requests (the
//! product's crawl, [`crate::catalog::Catalog::offers_collected_at`]); this
//! book keeps when requests to this server collected a product and its
//! offers. The later of the two is Keepa's data age, aging with the
//! server's clock.

use std::collections::HashMap;

/// Keepa minutes of the last collections made by requests to this server.
#[derive(Debug, Clone, Copy, Default)]
struct Collected {
    product: Option<i64>,
    offers: Option<i64>,
}

/// Per product index, the collections requests made.
#[derive(Debug, Default)]
pub(super) struct Collections {
    by_index: HashMap<u32, Collected>,
}

impl Collections {
    /// The later of `seeded` and the last product collection of `index`.
    pub(super) fn product_at(&self, index: u32, seeded: i64) -> i64 {
        self.by_index
            .get(&index)
            .and_then(|c| c.product)
            .map_or(seeded, |t| t.max(seeded))
    }

    /// The later of `seeded` and the last offers collection of `index`.
    pub(super) fn offers_at(&self, index: u32, seeded: i64) -> i64 {
        self.by_index
            .get(&index)
            .and_then(|c| c.offers)
            .map_or(seeded, |t| t.max(seeded))
    }

    /// Records what a request collected at `now`.
    pub(super) fn record(&mut self, index: u32, now: i64, plan: Plan) {
        if !plan.product && !plan.offers {
            return;
        }
        let c = self.by_index.entry(index).or_default();
        // An offers collection is a live look at the product too.
        c.product = Some(now);
        if plan.offers {
            c.offers = Some(now);
        }
    }
}

/// What one product of a `/product` call collects, by Keepa's `update` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    /// The product's data is collected live.
    pub(super) product: bool,
    /// Its offers are collected (6 per page); else they come from the
    /// last collection at a flat 5 (only meaningful with `offers`).
    pub(super) offers: bool,
    /// `update=0` on data under an hour old: +1 token.
    pub(super) surcharge: i64,
}

impl Plan {
    /// `update` as sent (absent: 1 hour) against the ages, in minutes, of
    /// Keepa's product data and offers: `-1` never collects, `0` always
    /// (+1 on data under an hour old), `N` collects what is older than N
    /// hours; offers fresher than N hours are not collected.
    pub(super) fn new(update: Option<i64>, product_age: i64, offers_age: i64) -> Plan {
        match update.unwrap_or(1) {
            h if h < 0 => Plan {
                product: false,
                offers: false,
                surcharge: 0,
            },
            0 => Plan {
                product: true,
                offers: true,
                surcharge: i64::from(product_age < 60),
            },
            h => {
                let limit = h.saturating_mul(60);
                Plan {
                    product: product_age > limit,
                    offers: offers_age >= limit,
                    surcharge: 0,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_decides_what_is_collected() {
        // Default (1 h): offers of 30 min are cached, of 2 h collected.
        assert!(!Plan::new(None, 30, 30).offers);
        assert!(Plan::new(None, 30, 120).offers);
        // 24 h: a day's offers are still fresh.
        let day = Plan::new(Some(24), 600, 23 * 60);
        assert!(!day.offers && !day.product);
        assert!(Plan::new(Some(24), 600, 24 * 60).offers);
        // -1 never collects, 0 always, +1 on data under an hour old.
        assert_eq!(
            Plan::new(Some(-1), 100_000, 100_000),
            Plan {
                product: false,
                offers: false,
                surcharge: 0
            }
        );
        assert_eq!(Plan::new(Some(0), 59, 59).surcharge, 1);
        assert_eq!(Plan::new(Some(0), 61, 0).surcharge, 0);
        assert!(Plan::new(Some(0), 61, 0).offers);
    }

    #[test]
    fn our_collections_refresh_and_age() {
        let mut book = Collections::default();
        assert_eq!(book.offers_at(7, 100), 100);
        let plan = Plan::new(None, 500, 500);
        book.record(7, 1_000, plan);
        assert_eq!(book.offers_at(7, 100), 1_000);
        assert_eq!(book.product_at(7, 100), 1_000);
        // Someone else's later collection wins.
        assert_eq!(book.offers_at(7, 2_000), 2_000);
        // A call that collected nothing records nothing.
        book.record(8, 1_000, Plan::new(Some(-1), 500, 500));
        assert_eq!(book.product_at(8, 5), 5);
    }
}
