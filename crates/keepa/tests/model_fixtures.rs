//! The wire model against real Keepa responses (fixtures/keepa), a
//! hand-written deal, malformed input, and the fake server.

use keepa::model::{
    Coupon, CsvType, DateRange, DealResponse, History, KeepaValue, ProductResponse, ShippingPoint,
};
use keepa::KeepaMinutes;

const SINGLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/keepa/product_B0D8W1YVBX.json"
));
const PAIR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/keepa/products_B0D8W1YVBX_B0F7XPYCSJ_sanitized.json"
));

#[test]
fn real_product_parses_with_values_read_from_the_file() {
    let r: ProductResponse = serde_json::from_str(SINGLE).unwrap();
    assert_eq!(r.envelope.tokens_left, Some(42));
    assert_eq!(r.envelope.refill_in, Some(0));
    assert_eq!(r.envelope.timestamp, None);
    assert_eq!(r.products.len(), 1);
    let p = &r.products[0];
    assert_eq!(p.asin, "B0D8W1YVBX");
    assert!(p
        .title
        .as_deref()
        .unwrap()
        .starts_with("EQQUALBERRY Vitamin Illuminating Serum"));
    assert_eq!(p.domain_id, Some(1));
    assert_eq!(p.domain(), Some(keepa::Domain::Com));
    assert_eq!(p.brand.as_deref(), Some("EQQUALBERRY"));
    assert_eq!(p.root_category, Some(3_760_911));
    assert_eq!(p.categories, vec![7_792_528_011]);
    assert_eq!(p.category_tree[0].name, "Beauty & Personal Care");
    assert_eq!(p.last_update, Some(KeepaMinutes(8_075_762)));
    assert_eq!(p.monthly_sold, Some(100_000));
    assert_eq!(p.ean_list, vec!["8809875456477".to_string()]);
    assert_eq!(p.fba_fees.as_ref().unwrap().pick_and_pack_fee, Some(409));
    assert_eq!(p.binding, None);
    assert!(p.live_offers().is_empty());

    // 36 histories; null ones stay absent.
    assert_eq!(p.csv.len(), 36);
    for ty in CsvType::ALL {
        let h = p.history(ty).unwrap();
        assert_eq!(h.is_some(), p.csv[ty.index()].is_some(), "{ty}");
        if let Some(h) = h {
            assert_eq!(
                h.len() * ty.stride(),
                p.csv[ty.index()].as_ref().unwrap().len()
            );
        }
    }
    assert_eq!(p.history(CsvType::Collectible).unwrap(), None);
    // AMAZON: a single "no offer" point.
    assert_eq!(
        p.history(CsvType::Amazon).unwrap().unwrap(),
        History::Plain(vec![(KeepaMinutes(7_207_224), KeepaValue::NoData)])
    );
    let new = p.history(CsvType::New).unwrap().unwrap();
    assert_eq!(new.len(), 129);
    assert_eq!(
        new.points()[0],
        (KeepaMinutes(7_207_224), KeepaValue::Known(2499))
    );
    assert_eq!(
        new.last(),
        Some((KeepaMinutes(8_057_266), KeepaValue::Known(1499)))
    );
    // BUY_BOX_SHIPPING is triples.
    let bb = p.history(CsvType::BuyBoxShipping).unwrap().unwrap();
    assert_eq!(bb.len(), 249);
    assert_eq!(
        bb.as_shipping().unwrap()[0],
        ShippingPoint {
            time: KeepaMinutes(7_207_224),
            price: KeepaValue::Known(2499),
            shipping: KeepaValue::Known(0)
        }
    );
    // Sales rank: first point of the root category's history.
    let ranks = p.sales_rank_history(3_760_911).unwrap().unwrap();
    assert_eq!(
        ranks[0],
        (KeepaMinutes(7_208_104), KeepaValue::Known(272_670))
    );
    assert_eq!(p.last_value(CsvType::Sales), Some(KeepaValue::Known(23)));

    // Stats.
    let s = p.stats.as_ref().unwrap();
    assert_eq!(s.current(CsvType::New), KeepaValue::Known(1499));
    assert_eq!(s.current(CsvType::Amazon), KeepaValue::NoData);
    assert_eq!(s.avg90(CsvType::New), KeepaValue::Known(1797));
    assert_eq!(s.avg30(CsvType::Sales), KeepaValue::Known(43));
    assert_eq!(s.avg365(CsvType::PrimeExcl), KeepaValue::Known(1598));
    assert_eq!(s.avg180(CsvType::CountNewFbm), KeepaValue::Known(1));
    assert_eq!(
        s.min(CsvType::New),
        Some((KeepaMinutes(8_009_716), KeepaValue::Known(1499)))
    );
    assert_eq!(s.min(CsvType::Amazon), None);
    // A real `[-1, -1]` placeholder reads as absent.
    assert_eq!(s.max_in_interval(CsvType::PrimeExcl), None);
    assert_eq!(s.sales_rank_drops30, KeepaValue::Known(35));
    assert_eq!(s.sales_rank_drops365, KeepaValue::Known(424));
    assert_eq!(s.total_offer_count, KeepaValue::Known(5));
    assert_eq!(s.offer_count_fba, KeepaValue::Unknown); // -2 on the wire
    assert_eq!(s.trade_in_price, KeepaValue::Unknown);
    assert_eq!(s.buy_box_price, KeepaValue::Known(1499));
    assert_eq!(s.buy_box_shipping, KeepaValue::Known(0));
    assert_eq!(s.buy_box_seller_id.as_deref(), Some("AFZNN5H6MIT2Z"));
    assert_eq!(s.buy_box_is_fba, Some(true));
    assert_eq!(s.buy_box_is_amazon, Some(false));
    assert_eq!(s.is_lowest(CsvType::New), Some(true));
    let won = s.buy_box_stats.as_ref().unwrap()["A13ASQDJPF4YGN"].percentage_won;
    assert!((won.unwrap() - 0.259).abs() < 0.001);
    assert_eq!(
        p.buy_box_seller_history().unwrap()[0],
        (KeepaMinutes(7_207_224), Some("AFZNN5H6MIT2Z".to_string()))
    );

    // Fields a reseller reads beyond the basics, as in the file.
    assert_eq!(p.buy_box_eligible_offer_counts, [3, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(p.competitive_price_threshold, Some(2624));
    assert_eq!(p.referral_fee_percent, Some(15.0));
    assert_eq!(p.referral_fee_percentage, Some(15.01));
    assert_eq!(p.is_sns, Some(true));
    assert_eq!(p.is_eligible_for_trade_in, Some(false));
    assert_eq!(p.last_sold_update, Some(KeepaMinutes(8_075_762)));
    assert_eq!(p.amazon_product_type.as_deref(), Some("SKIN_SERUM"));
    assert_eq!(p.item_weight, Some(28));
    assert_eq!(p.coupons(), None); // `coupon: null`
    assert_eq!(
        p.coupon_history().unwrap()[0],
        (KeepaMinutes(7_231_676), Coupon::Percent(5), Coupon::None)
    );
    let promo = &p.promotions[0];
    assert_eq!(promo.kind.as_deref(), Some("SNS"));
    assert_eq!(promo.amount, Some(1799));
    assert_eq!(promo.discount_percent, Some(10.0));
    let refs = p.sales_rank_reference_history().unwrap();
    assert_eq!(refs[0], (KeepaMinutes(7_208_104), Some(3_760_911)));
    assert_eq!(refs[1], (KeepaMinutes(7_394_036), None)); // -1
    let parents = p.parent_asin_history().unwrap();
    assert_eq!(parents[0], (KeepaMinutes(7_281_540), None)); // "-1"
    assert_eq!(
        parents[1],
        (KeepaMinutes(7_775_884), Some("B0DLWLLHFK".to_string()))
    );
    assert_eq!(
        s.out_of_stock_percentage180(CsvType::Amazon),
        KeepaValue::Known(100)
    );
    assert_eq!(
        s.out_of_stock_percentage365(CsvType::BuyBoxShipping),
        KeepaValue::Known(1)
    );
    assert_eq!(
        s.out_of_stock_percentage90(CsvType::Sales),
        KeepaValue::NoData
    );
    assert_eq!(s.out_of_stock_count_amazon30, Some(1));
    // -2 % here is a real change, not the "unknown" sentinel.
    assert_eq!(s.delta_percent90_monthly_sold, Some(-2));
    assert_eq!(
        s.lightning_deal(),
        Some((KeepaMinutes(8_040_456), Some(KeepaMinutes(8_041_144))))
    );
    assert_eq!(s.buy_box_is_shippable, Some(true));
    assert_eq!(s.buy_box_is_prime_exclusive, None); // null
    assert_eq!(s.buy_box_availability_message.as_deref(), Some("IN_STOCK"));
    assert_eq!(s.buy_box_saving_basis, Some(2499));
    assert_eq!(s.buy_box_saving_percentage, Some(40.0));
    assert_eq!(s.buy_box_landed(), KeepaValue::Known(1499));
    assert_eq!(s.seller_ids_lowest_fba, None);
    assert_eq!(s.stock_buy_box, KeepaValue::Unknown); // absent without offers
}

#[test]
fn sanitized_pair_parses_despite_extra_top_level_keys() {
    let r: ProductResponse = serde_json::from_str(PAIR).unwrap();
    assert!(r.envelope.tokens_left.is_none());
    let asins: Vec<&str> = r.products.iter().map(|p| p.asin.as_str()).collect();
    assert_eq!(asins, ["B0D8W1YVBX", "B0F7XPYCSJ"]);
    let p = &r.products[1];
    assert_eq!(p.number_of_items, Some(10));
    assert_eq!(p.monthly_sold, Some(300));
    assert_eq!(p.upc_list, vec!["747474801770".to_string()]);
    assert!(p.offers.is_none());
    let s = p.stats.as_ref().unwrap();
    assert_eq!(s.buy_box_price, KeepaValue::Unknown); // -2
    assert_eq!(s.buy_box_seller_id, None); // null
    assert_eq!(s.current(CsvType::Sales), KeepaValue::NoData);
    assert_eq!(s.avg90(CsvType::Sales), KeepaValue::Known(11_253));
    assert_eq!(s.sales_rank_drops30, KeepaValue::Known(13));
    assert_eq!(s.delta_percent90_monthly_sold, Some(-18));
    assert_eq!(s.lightning_deal(), None); // null
    assert_eq!(s.buy_box_landed(), KeepaValue::Unknown); // -2 and -2
    assert_eq!(p.history(CsvType::Used).unwrap().unwrap().len(), 1);
    assert_eq!(p.history(CsvType::BuyBoxShipping).unwrap(), None);
    assert!(p.sales_rank(16_310_091).is_some());
    // Round trip through our own serialization keeps what we model.
    let again: ProductResponse = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn hand_written_deal_parses_with_unknown_fields() {
    let body = r#"{
      "timestamp": 1750000000000, "tokensLeft": 95, "refillIn": 1000, "refillRate": 20,
      "tokensConsumed": 5, "processingTimeInMs": 12, "someNewEnvelopeField": true,
      "deals": {
        "dr": [{
          "asin": "0316769487", "parentAsin": null,
          "title": "The Catcher in the Rye <b>(Paperback)</b>",
          "rootCat": 283155, "categories": [10159], "futureField": {"a": [1, 2]},
          "image": [54,49,107,51,76,97,121,55,74,85,76,46,106,112,103],
          "current": [-1, 899, 450, 12000, -2],
          "currentSince": [-1, 8075000, 8075500, 8075600, -1],
          "deltaLast": [0, 0, 150, -300, 0],
          "avg":          [[-1, 950, 600, 11000], [-1, 990, 640, 10000], [-1, 999, 700, 9000], [-1, 1100, 750, 8000]],
          "delta":        [[0, 51, 150, -1000],   [0, 91, 190, -2000],   [0, 100, 250, -3000],  [0, 201, 300, -4000]],
          "deltaPercent": [[0, 5, 25, -9],        [0, 9, 30, -20],       [0, 10, 36, -33],      [0, 18, 40, -50]],
          "creationDate": 8075500, "lastUpdate": 8075600, "lightningEnd": 0,
          "warehouseCondition": 0, "warehouseConditionComment": null, "minRating": -1
        }],
        "categoryIds": [283155], "categoryNames": ["Books"], "categoryCount": [1]
      }
    }"#;
    let r: DealResponse = serde_json::from_str(body).unwrap();
    assert_eq!(r.envelope.tokens_consumed, Some(5));
    let d = &r.deals.dr[0];
    assert_eq!(d.asin, "0316769487");
    assert!(d.title.as_deref().unwrap().contains("<b>"));
    assert_eq!(d.image_name().as_deref(), Some("61k3Lay7JUL.jpg"));
    assert_eq!(d.current(CsvType::Used), KeepaValue::Known(450));
    assert_eq!(d.current(CsvType::Amazon), KeepaValue::NoData);
    assert_eq!(d.current(CsvType::ListPrice), KeepaValue::Unknown);
    assert_eq!(d.current(CsvType::CountNewFbm), KeepaValue::Unknown); // short array
    assert_eq!(
        d.current_since(CsvType::Used),
        Some(KeepaMinutes(8_075_500))
    );
    assert_eq!(d.current_since(CsvType::Amazon), None);
    assert_eq!(d.avg(CsvType::Used, DateRange::Day), KeepaValue::Known(600));
    assert_eq!(
        d.avg(CsvType::Used, DateRange::Quarter),
        KeepaValue::Known(750)
    );
    assert_eq!(d.delta(CsvType::Used, DateRange::Week), Some(190));
    assert_eq!(d.delta_percent(CsvType::Used, DateRange::Month), Some(36));
    assert_eq!(
        d.delta_percent(CsvType::Sales, DateRange::Quarter),
        Some(-50)
    );
    assert_eq!(d.delta_last(CsvType::Used), Some(150));
    assert_eq!(d.lightning_ends(), None);
    assert_eq!(d.creation_date, Some(KeepaMinutes(8_075_500)));
    let cats: Vec<_> = r.deals.category_summary().collect();
    assert_eq!(cats, vec![(283_155, "Books", 1)]);
}

#[test]
fn malformed_series_are_errors_not_panics() {
    let body = r#"{"products":[{"asin":"B000000000",
        "csv":[[1,2,3],null,[],[5,6],null,null,null,[1,2,3,4]],
        "salesRanks":{"1":[1]},"buyBoxSellerIdHistory":["1"],
        "offers":[{"offerCSV":[1,2]}],"liveOffersOrder":[0],
        "stats":{"current":null,"min":[[1],[1,2,3]],"max":"garbage?"}}]}"#;
    // A stats field of the wrong JSON type is a parse error (not a panic).
    assert!(serde_json::from_str::<ProductResponse>(body).is_err());
    let body = body.replace(r#","max":"garbage?""#, "");
    let r: ProductResponse = serde_json::from_str(&body).unwrap();
    let p = &r.products[0];
    assert!(p.history(CsvType::Amazon).is_err());
    assert_eq!(p.history(CsvType::New).unwrap(), None);
    assert!(p.history(CsvType::Used).unwrap().unwrap().is_empty());
    assert!(p.history(CsvType::NewFbmShipping).is_err());
    assert_eq!(p.history(CsvType::RefurbishedShipping).unwrap(), None);
    assert_eq!(p.last_value(CsvType::Amazon), None);
    assert!(p.sales_rank_history(1).is_err());
    assert_eq!(p.sales_rank(1), None);
    assert!(p.buy_box_seller_history().is_err());
    let offers = p.offers.as_ref().unwrap();
    assert!(offers[0].history().is_err());
    assert_eq!(offers[0].current(), None);
    assert!(p.lowest_offer(keepa::ConditionFilter::Any).is_none());
    let s = p.stats.as_ref().unwrap();
    assert_eq!(s.current(CsvType::New), KeepaValue::Unknown);
    assert_eq!(s.min(CsvType::Amazon), None);
    assert_eq!(s.min(CsvType::New), None);
    assert_eq!(s.max(CsvType::New), None);
}

/// A deal and a product from the project's fake server, through the real
/// client: the `[dateRange][priceType]` reading must agree with the fake's
/// own arithmetic (`delta = avg − current`, percent of `avg`), and the
/// deal's current USED price with the product's history at the deal time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_server_deal_and_product_agree_with_the_model() {
    use keepa::client::{ApiKey, Client};
    use keepa::model::ConditionFilter;
    use keepa::request::{DealSelection, ProductRequest};
    use keepa::Domain;

    let server = fake_keepa::FakeKeepa::builder()
        .keys(["k"])
        .seed(7)
        .start()
        .await
        .unwrap();
    let client = Client::builder(ApiKey::new("k").unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();

    let mut sel = DealSelection::new(Domain::Com, CsvType::Used.index() as u8);
    sel.date_range = Some(0);
    let resp = client.send(&sel.build().unwrap()).await.unwrap();
    let page: DealResponse = resp.parse().unwrap();
    assert!(page.envelope.tokens_left.is_some());
    assert!(
        !page.deals.dr.is_empty(),
        "the fake's backlog has USED deals"
    );
    assert_eq!(
        page.deals.category_ids.len(),
        page.deals.category_count.len()
    );
    let mut checked = 0;
    for d in &page.deals.dr {
        assert!(d.image_name().is_some());
        // Every cell of all four rows is readable, also for types ≥ 4: a
        // transposed reading of a 4 × 36 array could not do that.
        for r in DateRange::ALL {
            assert!(d.delta(CsvType::CountNewFbm, r).is_some());
            for ty in CsvType::ALL {
                let (avg, cur) = (d.avg(ty, r), d.current(ty));
                let delta = d.delta(ty, r).unwrap();
                let pct = d.delta_percent(ty, r).unwrap();
                if let (Some(a), Some(c)) = (avg.known(), cur.known()) {
                    if a > 0 {
                        assert_eq!(delta, a - c, "{} {ty} {r:?}", d.asin);
                        let want = ((a - c) as f64 * 100.0 / a as f64).round() as i64;
                        assert_eq!(pct, want, "{} {ty} {r:?}", d.asin);
                        checked += 1;
                    }
                }
            }
        }
        // A USED deal: the used price is known and dropped (or at least did
        // not rise) against the 48-hour average.
        assert!(d.current(CsvType::Used).is_known());
        let pct = d.delta_percent(CsvType::Used, DateRange::Day).unwrap();
        assert!((0..=100).contains(&pct), "{} {pct}", d.asin);
    }
    assert!(checked > 0);

    // The product behind the first deal, through Client + Response::parse.
    let deal = &page.deals.dr[0];
    let req = ProductRequest::asins(Domain::Com, [deal.asin.as_str()])
        .stats(90)
        .history(true)
        .offers(20)
        .build()
        .unwrap();
    let resp = client.send(&req).await.unwrap();
    let products: ProductResponse = resp.parse().unwrap();
    assert!(products.envelope.tokens_consumed.unwrap_or(0) >= 6);
    let p = &products.products[0];
    assert_eq!(p.asin, deal.asin);
    let used = p.history(CsvType::Used).unwrap().unwrap();
    assert_eq!(
        used.value_at(deal.creation_date.unwrap()),
        Some(deal.current(CsvType::Used))
    );
    let stats = p.stats.as_ref().unwrap();
    assert_eq!(
        stats.current(CsvType::Used),
        p.last_value(CsvType::Used).unwrap()
    );
    // The lowest live offer is the cheapest price + shipping over
    // liveOffersOrder, computed here by hand.
    let live = p.live_offers();
    assert!(!live.is_empty());
    let by_hand = live
        .iter()
        .filter_map(|(_, o)| {
            let c = o.current()?;
            Some(c.price.known()? + c.shipping.known()?)
        })
        .min();
    let lowest = p.lowest_offer(ConditionFilter::Any).unwrap();
    assert_eq!(Some(lowest.total), by_hand);
    assert!(lowest.seller_id.is_some());
    if let Some(u) = p.lowest_offer(ConditionFilter::Used) {
        assert!(u.condition.is_used() && u.total >= lowest.total);
    }
    server.shutdown().await;
}

/// Seller, category and best-seller bodies from the fake server parse into
/// their wrappers, envelope included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_server_seller_category_bestsellers_parse() {
    use keepa::client::{ApiKey, Client};
    use keepa::model::{BestsellersResponse, CategoryResponse, SellerResponse};
    use keepa::request::{
        BestsellersRequest, CategoryRequest, DealSelection, ProductRequest, SellerRequest,
    };
    use keepa::Domain;

    let server = fake_keepa::FakeKeepa::builder()
        .keys(["k"])
        .seed(7)
        .start()
        .await
        .unwrap();
    let client = Client::builder(ApiKey::new("k").unwrap())
        .base_url(server.base_url())
        .build()
        .unwrap();
    let page: DealResponse = client
        .send(&DealSelection::new(Domain::Com, 1).build().unwrap())
        .await
        .unwrap()
        .parse()
        .unwrap();
    let deal = &page.deals.dr[0];
    let root = deal.root_cat.unwrap();
    let products: ProductResponse = client
        .send(
            &ProductRequest::asins(Domain::Com, [deal.asin.as_str()])
                .offers(20)
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    let seller_id = products.products[0]
        .lowest_offer(keepa::ConditionFilter::Any)
        .and_then(|o| o.seller_id)
        .unwrap();

    let sellers: SellerResponse = client
        .send(
            &SellerRequest::new(Domain::Com, [seller_id.as_str()])
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(sellers.envelope.tokens_left.is_some());
    let s = &sellers.sellers[&seller_id];
    assert_eq!(s.seller_id.as_deref(), Some(seller_id.as_str()));
    assert!(s.storefront_asin_count().is_some());

    let cats: CategoryResponse = client
        .send(
            &CategoryRequest::new(Domain::Com, [root as u64])
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cats.categories[&root].cat_id, root);
    assert!(cats.categories[&root].name.is_some());

    let best: BestsellersResponse = client
        .send(
            &BestsellersRequest::new(Domain::Com, root as u64)
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(best.envelope.tokens_consumed, Some(50));
    assert!(!best.best_sellers_list.unwrap().asin_list.is_empty());
    server.shutdown().await;
}
