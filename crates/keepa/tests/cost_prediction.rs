//! Cost prediction: the rules of KEEPA_API.md §4 on worked examples, and how
//! close the learned offer-page estimate gets on a stream of observed costs.

use keepa::cost::{
    cached_product_cost, offers_part_bounds, product_cost, CostModel, CostPrediction,
};
use keepa::request::{
    BestsellersRequest, CategoryRequest, DealSelection, ProductRequest, QueryRequest, Request,
    SellerRequest,
};
use keepa::Domain;
use serde_json::json;

fn asins(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("B{i:09}")).collect()
}

fn p(expected: u32, upper_bound: u32) -> CostPrediction {
    CostPrediction {
        expected,
        upper_bound,
    }
}

#[test]
fn offers_40_on_a_product_with_18_offers_costs_12() {
    let req = ProductRequest::asins(Domain::Com, asins(1))
        .offers(40)
        .build()
        .unwrap();
    assert_eq!(product_cost(&req.shape(), 18), 12);
    let mut model = CostModel::new();
    assert_eq!(model.predict(&req).upper_bound, 24);
    for _ in 0..20 {
        model.observe(&req, 1, 12);
    }
    assert_eq!(model.predict(&req), p(12, 24));
}

#[test]
fn fifteen_asins_with_offers_20_cost_about_90() {
    let req = ProductRequest::asins(Domain::Com, asins(15))
        .offers(20)
        .build()
        .unwrap();
    // By the rules: 15 products with at most 10 offers each, one page each.
    let actual: u32 = [3, 10, 7, 1, 9, 10, 2, 5, 8, 6, 4, 10, 1, 3, 9]
        .iter()
        .map(|&offers| product_cost(&req.shape(), offers))
        .sum();
    assert_eq!(actual, 90);
    let mut model = CostModel::new();
    let before = model.predict(&req);
    assert_eq!(before.upper_bound, 180);
    assert!(before.expected >= 90 && before.expected <= 180);
    // The measured 90 pulls the estimate down to what the account pays.
    for _ in 0..10 {
        model.observe(&req, 15, 90);
    }
    let after = model.predict(&req);
    assert!(after.expected.abs_diff(90) <= 2, "{after:?}");
    assert_eq!(after.upper_bound, 180);
}

#[test]
fn fixed_rules_per_endpoint() {
    let m = CostModel::new();
    assert_eq!(m.predict(&Request::token()), p(0, 0));
    assert_eq!(
        m.predict(&DealSelection::new(Domain::Com, 0).build().unwrap()),
        p(5, 5)
    );
    let plain = ProductRequest::asins(Domain::Com, asins(10))
        .build()
        .unwrap();
    assert_eq!(m.predict(&plain), p(10, 10));
    let flags = ProductRequest::asins(Domain::Com, asins(10))
        .update(0)
        .rating(true)
        .buybox(true)
        .build()
        .unwrap();
    assert_eq!(
        m.predict(&flags),
        p(50, 50),
        "1 + update 1 + rating 1 + buybox 2"
    );
    // buybox is ignored with offers; stock adds 2.
    let offers = ProductRequest::asins(Domain::Com, asins(2))
        .offers(20)
        .buybox(true)
        .stock(true)
        .build()
        .unwrap();
    assert_eq!(m.predict(&offers).upper_bound, 2 * (12 + 2));
    assert_eq!(product_cost(&offers.shape(), 0), 6 + 2, "at least one page");
    assert_eq!(
        product_cost(&offers.shape(), 95),
        12 + 2,
        "capped at the pages asked"
    );
    let sellers = SellerRequest::new(Domain::Com, ["A1", "A2", "A3"])
        .build()
        .unwrap();
    assert_eq!(m.predict(&sellers), p(3, 3));
    let store = SellerRequest::new(Domain::Com, ["A1"])
        .storefront(true)
        .build()
        .unwrap();
    assert_eq!(m.predict(&store), p(10, 10));
    let query = QueryRequest::new(Domain::Com, json!({"perPage": 250}))
        .build()
        .unwrap();
    assert_eq!(m.predict(&query), p(13, 13));
    let bs = BestsellersRequest::new(Domain::Com, 283155)
        .build()
        .unwrap();
    assert_eq!(m.predict(&bs), p(50, 50));
    let cat = CategoryRequest::new(Domain::Com, [1, 2]).build().unwrap();
    assert_eq!(m.predict(&cat), p(1, 1));
}

#[test]
fn learning_is_per_domain_and_shape_and_ignores_noise() {
    let mut m = CostModel::new();
    let com = ProductRequest::asins(Domain::Com, asins(10))
        .offers(40)
        .build()
        .unwrap();
    let de = ProductRequest::asins(Domain::De, asins(10))
        .offers(40)
        .build()
        .unwrap();
    let com20 = ProductRequest::asins(Domain::Com, asins(10))
        .offers(20)
        .build()
        .unwrap();
    let before_de = m.predict(&de);
    let before_20 = m.predict(&com20);
    for _ in 0..50 {
        m.observe(&com, 10, 240); // 4 pages each
    }
    assert!(m.predict(&com).expected >= 238, "{:?}", m.predict(&com));
    assert_eq!(m.predict(&com).upper_bound, 240);
    assert_eq!(m.predict(&de), before_de);
    assert_eq!(m.predict(&com20), before_20);
    // Absurd charges are clamped to [5/6, max pages] (5: offers served from
    // Keepa's cache); nothing-found and
    // negative charges teach nothing.
    m.observe(&com, 10, 100_000);
    let pages = m.expected_offer_pages(Some(Domain::Com), com.shape());
    assert!((3.9..=4.0).contains(&pages), "{pages}");
    let n = m
        .estimate(Some(Domain::Com), com.shape())
        .unwrap()
        .observations;
    m.observe(&com, 0, 50);
    m.observe(&com, 10, -5);
    assert_eq!(
        m.estimate(Some(Domain::Com), com.shape())
            .unwrap()
            .observations,
        n
    );
    for _ in 0..200 {
        m.observe(&com, 10, 1);
    }
    let pages = m.expected_offer_pages(Some(Domain::Com), com.shape());
    assert!((5.0 / 6.0..0.87).contains(&pages), "{pages}");
}

#[test]
fn offers_cost_follows_update_as_keepa_documents() {
    let shape = |u: Option<i64>| {
        let mut r = ProductRequest::asins(Domain::Com, asins(10)).offers(20);
        if let Some(u) = u {
            r = r.update(u);
        }
        r.build().unwrap()
    };
    let m = CostModel::new();
    // update=-1 never collects: exactly the flat 5 per product.
    let never = shape(Some(-1));
    assert_eq!(
        m.predict(&never),
        CostPrediction {
            expected: 50,
            upper_bound: 50
        }
    );
    assert_eq!(cached_product_cost(&never.shape()), 5);
    // update=0 always collects: 6 per page, +1 when the data is fresh.
    let force = shape(Some(0));
    assert_eq!(offers_part_bounds(&force.shape()), (6, 12));
    assert_eq!(m.predict(&force).upper_bound, 130);
    // update=24 (or the default 1 h): from 5 (cached) to 6 per page.
    let day = shape(Some(24));
    assert_eq!(offers_part_bounds(&day.shape()), (5, 12));
    assert_eq!(offers_part_bounds(&shape(None).shape()), (5, 12));
    assert_eq!(m.predict(&day).upper_bound, 120);
    // Learning: every product served from the cache at 5.
    let mut m = CostModel::new();
    for _ in 0..100 {
        m.observe(&day, 10, 50);
    }
    let learned = m.predict(&day).expected;
    assert!((50..=51).contains(&learned), "{learned}: near 5 a product");
    // Each `update` learns apart: the default shape still has its prior.
    assert_eq!(
        m.predict(&shape(None)),
        CostModel::new().predict(&shape(None))
    );
    // A forced collection is never predicted below a page.
    let mut m = CostModel::new();
    for _ in 0..100 {
        m.observe(&force, 10, 50);
    }
    let forced = m.predict(&force).expected;
    assert!(
        (70..=71).contains(&forced),
        "{forced}: 6 a page + 1 for update=0"
    );
}

/// A small deterministic generator, so the test is reproducible.
struct XorShift(u64);
impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn prediction_converges_on_what_the_account_pays() {
    // Real offer pages per product: 1 (50 %), 2 (35 %), 3 (10 %), 4 (5 %):
    // mean 1.7 pages, so a 20-product offers=40 call costs 204 on average.
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let req = ProductRequest::asins(Domain::Com, asins(20))
        .offers(40)
        .build()
        .unwrap();
    let true_mean = 20.0 * 6.0 * 1.7;
    let mut model = CostModel::new();
    let mut report = Vec::new();
    let mut worst_after_20 = 0.0_f64;
    let mut sum_after_20 = 0.0_f64;
    for call in 1..=100 {
        let found = 18 + (rng.next_f64() * 3.0) as u32; // 18..=20 found
        let mut tokens = 0;
        for _ in 0..found {
            let u = rng.next_f64();
            let pages = if u < 0.5 {
                1
            } else if u < 0.85 {
                2
            } else if u < 0.95 {
                3
            } else {
                4
            };
            tokens += 6 * pages;
        }
        model.observe(&req, found, tokens);
        let expected = f64::from(model.predict(&req).expected);
        let err = (expected - true_mean).abs() / true_mean;
        if call >= 20 {
            worst_after_20 = worst_after_20.max(err);
            sum_after_20 += err;
        }
        if [1, 5, 10, 20, 50, 100].contains(&call) {
            report.push(format!("after {call:3} calls: expected {expected:.0} vs true mean {true_mean:.0} ({:.1} %)", err * 100.0));
        }
    }
    let pages = model.expected_offer_pages(Some(Domain::Com), req.shape());
    println!("cost learning, offers=40, 20 ASINs/call, true 1.7 pages/product:");
    for line in &report {
        println!("  {line}");
    }
    let mean_after_20 = sum_after_20 / 81.0;
    println!(
        "  learned {pages:.3} pages/product; after 20 calls: mean error {:.1} %, worst {:.1} %",
        mean_after_20 * 100.0,
        worst_after_20 * 100.0
    );
    assert!(
        mean_after_20 < 0.03,
        "mean error after 20 calls {mean_after_20}"
    );
    assert!(
        worst_after_20 < 0.06,
        "worst error after 20 calls {worst_after_20}"
    );
    assert!(
        (pages - 1.7).abs() < 0.085,
        "final estimate {pages} not within 5 %"
    );
}
