//! Live offers and marketplace sellers.

use rand::Rng;

use super::csv_type::{AMAZON, COUNT_NEW, COUNT_USED, NEW, USED};
use super::names::{pick, LAST};
use super::{base36, from_base36, round_price, Catalog, ProductData, BASE36, MINUTES_PER_DAY};
use super::{SELLER_SPACE, TAG_OFFER, TAG_SELLER};
use crate::rng::{hash, rng, unit};

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

    /// When Keepa last collected the offers of product `index`, as seen at
    /// Keepa minute `at_min`, counting only everyone else's requests: they
    /// collect a product's offers every `period` (seeded per product,
    /// log-uniform from 1 h to 30 days, so popular products are collected
    /// often) at a seeded phase. About 15 % of products were collected
    /// within the last hour, 60 % within the last day. Never after
    /// `at_min`; the same at every `at_min` until the next collection.
    pub(crate) fn offers_collected_at(&self, index: u32, at_min: i64) -> i64 {
        let h = |tag: u64| hash(self.seed, TAG_OFFER * 1000 + tag, u64::from(index));
        let (lo, hi) = (60_f64.ln(), (30.0 * MINUTES_PER_DAY as f64).ln());
        let period = (lo + (hi - lo) * unit(h(1))).exp().max(60.0) as i64;
        let phase = (h(2) % period as u64) as i64;
        at_min - (at_min - phase).rem_euclid(period)
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
