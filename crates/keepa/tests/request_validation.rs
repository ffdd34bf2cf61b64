//! Every validation rule of the request builders: a bad request is refused
//! before any IO, with an error naming the parameter and the rule.

use keepa::request::{
    BestsellersRequest, CategoryRequest, DealSelection, Endpoint, Method, ProductRequest,
    QueryRequest, Request, SellerRequest,
};
use keepa::Domain;
use serde_json::json;

const A: &str = "B0D8W1YVBX";

fn product() -> ProductRequest {
    ProductRequest::asins(Domain::Com, [A])
}

fn err(r: Result<Request, keepa::ValidationError>) -> String {
    r.expect_err("must be refused").to_string()
}

#[test]
fn offers_must_be_between_20_and_100() {
    assert_eq!(
        err(product().offers(5).build()),
        "offers=5: must be between 20 and 100"
    );
    assert_eq!(
        err(product().offers(101).build()),
        "offers=101: must be between 20 and 100"
    );
    assert!(product().offers(20).build().is_ok());
    assert!(product().offers(100).build().is_ok());
}

#[test]
fn asin_must_be_ten_alphanumerics() {
    let e = ProductRequest::asins(Domain::Com, ["B0D8W1YVB"])
        .build()
        .unwrap_err();
    assert_eq!(e.param, "asin");
    assert_eq!(
        e.to_string(),
        "asin=B0D8W1YVB: must be 10 characters A-Z/0-9"
    );
    assert!(ProductRequest::asins(Domain::Com, ["B0D8W1YV-X"])
        .build()
        .is_err());
    // Lower case and stray spaces are normalised, not refused.
    let req = ProductRequest::asins(Domain::Com, [" b0d8w1yvbx "])
        .build()
        .unwrap();
    assert!(req.query().contains(&("asin".into(), A.into())));
}

#[test]
fn asin_xor_code_and_at_most_100() {
    let both = ProductRequest::asins(Domain::Com, [A]).add_codes(["9780262033848"]);
    assert!(err(both.build()).contains("not both"));
    assert!(err(ProductRequest::empty(Domain::Com).build()).contains("one of asin or code"));
    let many: Vec<String> = (0..101).map(|i| format!("B{i:09}")).collect();
    assert_eq!(
        err(ProductRequest::asins(Domain::Com, &many).build()),
        "asin=(101 given): at most 100 per call"
    );
    let hundred = &many[..100];
    assert_eq!(
        ProductRequest::asins(Domain::Com, hundred)
            .build()
            .unwrap()
            .items(),
        100
    );
    // Duplicates are dropped, so they are neither counted nor charged twice.
    assert_eq!(
        ProductRequest::asins(Domain::Com, [A, A])
            .build()
            .unwrap()
            .items(),
        1
    );
    let codes = ProductRequest::codes(Domain::De, ["9780262033848"])
        .build()
        .unwrap();
    assert!(codes
        .query()
        .contains(&("code".into(), "9780262033848".into())));
    assert!(err(ProductRequest::codes(Domain::De, ["97802-62"]).build()).starts_with("code="));
}

#[test]
fn stock_and_only_live_offers_need_offers() {
    assert_eq!(
        err(product().stock(true).build()),
        "stock=1: needs offers (set offers to 20-100)"
    );
    assert!(err(product().only_live_offers(true).build())
        .starts_with("only-live-offers=1: needs offers"));
    let ok = product()
        .offers(20)
        .stock(true)
        .only_live_offers(true)
        .build()
        .unwrap();
    assert!(ok.shape().stock);
}

#[test]
fn update_stats_days_rules() {
    assert!(err(product().update(-2).build()).starts_with("update=-2: must be -1"));
    for u in [-1, 0, 1, 48] {
        assert!(product().update(u).build().is_ok());
    }
    assert!(product().update(0).build().unwrap().shape().force_update);
    assert!(!product().update(1).build().unwrap().shape().force_update);
    assert_eq!(
        err(product().stats(0).build()),
        "stats=0: must be at least 1 day"
    );
    assert!(err(product().stats_between(10, 5).build()).starts_with("stats=10,5"));
    assert_eq!(err(product().days(0).build()), "days=0: must be at least 1");
}

#[test]
fn product_query_parameters_and_shape() {
    let req = product()
        .offers(40)
        .stats(180)
        .history(false)
        .days(30)
        .update(0)
        .rating(true)
        .buybox(true)
        .build()
        .unwrap();
    assert_eq!(req.endpoint(), Endpoint::Product);
    assert_eq!(req.method(), Method::Get);
    assert_eq!(req.domain(), Some(Domain::Com));
    let q: Vec<(&str, &str)> = req
        .query()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        q,
        [
            ("domain", "1"),
            ("asin", A),
            ("offers", "40"),
            ("stats", "180"),
            ("history", "0"),
            ("days", "30"),
            ("update", "0"),
            ("rating", "1"),
            ("buybox", "1"),
        ]
    );
    let s = req.shape();
    assert_eq!(
        (s.offer_pages, s.rating, s.buybox, s.force_update),
        (4, true, true, true)
    );
    assert!(req.body().is_none());
    assert!(!req.describe().contains("key"));
}

#[test]
fn deal_selection_rules() {
    let ok = DealSelection::new(Domain::Com, 0);
    let req = ok.build().unwrap();
    assert_eq!(req.method(), Method::Post);
    assert_eq!(req.endpoint(), Endpoint::Deal);
    assert_eq!(req.body().unwrap()["priceTypes"], json!([0]));

    let mut s = ok.clone();
    s.price_types = vec![4];
    assert!(err(s.build()).starts_with("priceTypes=[4]: must be one of"));
    s.price_types = vec![0, 1];
    assert!(err(s.build()).contains("exactly one"));
    s.price_types = vec![];
    assert!(err(s.build()).contains("exactly one"));

    let s = ok.clone().with_page(67);
    assert!(err(s.build()).starts_with("page=67: must be at most 66"));
    assert!(ok.clone().with_page(66).build().is_ok());

    let mut s = ok.clone();
    s.date_range = Some(4);
    assert!(err(s.build()).starts_with("dateRange=4"));
    let mut s = ok.clone();
    s.sort_type = Some(0);
    assert!(err(s.build()).starts_with("sortType=0"));
    s.sort_type = Some(-4);
    assert!(s.build().is_ok());
    s.sort_type = Some(5);
    assert!(err(s.build()).starts_with("sortType=5"));

    let mut s = ok.clone();
    s.sales_rank_range = Some([1000, -1]);
    assert!(s.build().is_ok(), "-1 is no upper bound");
    s.sales_rank_range = Some([1000, 5]);
    assert!(err(s.build()).starts_with("salesRankRange=[1000,5]"));
    let mut s = ok.clone();
    s.delta_percent_range = Some([50, 10]);
    assert!(err(s.build()).starts_with("deltaPercentRange=[50,10]"));

    let mut s = ok.clone();
    s.min_rating = Some(51);
    assert!(err(s.build()).starts_with("minRating=51"));
    let mut s = ok.clone();
    s.warehouse_conditions = Some(vec![1, 6]);
    assert!(err(s.build()).starts_with("warehouseConditions=6"));

    let mut s = ok.clone();
    s.extra.insert("perPage".into(), json!("4"));
    assert!(err(s.build()).contains("integers must be JSON numbers"));
}

/// Regression: `"sortType": -9223372036854775808` (found by the no-panic
/// proptest) overflowed `abs()` in `validate` and panicked in debug builds.
#[test]
fn sort_type_i64_min_abs_overflow_is_a_validation_error() {
    let sel: DealSelection =
        serde_json::from_str(r#"{"domainId":1,"priceTypes":[2],"sortType":-9223372036854775808}"#)
            .unwrap();
    assert!(err(sel.build()).starts_with("sortType=-9223372036854775808: must be 1..4"));
}

#[test]
fn deal_selection_round_trips_user_json_with_numbers_and_pass_through() {
    let text = r#"{
        "domainId": 1, "priceTypes": [0], "page": 3, "dateRange": 1, "sortType": 1,
        "isFilterEnabled": true, "isRangeEnabled": true,
        "deltaPercentRange": [20, 100], "currentRange": [500, 10000],
        "salesRankRange": [1, -1], "includeCategories": [283155],
        "excludeCategories": [], "minRating": 40, "isLowest": false, "isLowest90": true,
        "isOutOfStock": false, "hasReviews": true, "singleVariation": true,
        "titleSearch": "rust", "warehouseConditions": [1, 2],
        "mustHaveAmazonOffer": false, "filterErotic": true
    }"#;
    let sel: DealSelection = serde_json::from_str(text).unwrap();
    assert_eq!(sel.page, 3);
    assert_eq!(sel.is_lowest90, Some(true));
    assert_eq!(sel.extra["filterErotic"], json!(true));
    let req = sel.build().unwrap();
    let body = req.body().unwrap();
    assert_eq!(body["domainId"], json!(1));
    assert_eq!(body["page"], json!(3));
    assert_eq!(body["sortType"], json!(1));
    assert_eq!(body["salesRankRange"], json!([1, -1]));
    assert_eq!(body["mustHaveAmazonOffer"], json!(false));
    assert_eq!(body["isLowest90"], json!(true));
    // The serialized body parses back to the same selection.
    let again: DealSelection = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(again, sel);
    // GET form carries the same JSON in `selection`.
    let get = sel.build_get().unwrap();
    assert_eq!(get.method(), Method::Get);
    let (_, v) = get.query().iter().find(|(k, _)| k == "selection").unwrap();
    assert_eq!(&serde_json::from_str::<serde_json::Value>(v).unwrap(), body);
    // An invalid domain or a string where a number belongs is refused on parse.
    assert!(serde_json::from_str::<DealSelection>(r#"{"domainId":7,"priceTypes":[0]}"#).is_err());
    assert!(serde_json::from_str::<DealSelection>(
        r#"{"domainId":1,"priceTypes":[0],"sortType":"4"}"#
    )
    .is_err());
}

#[test]
fn seller_query_bestsellers_category_rules() {
    let many: Vec<String> = (0..101).map(|i| format!("A{i:012}")).collect();
    assert_eq!(
        err(SellerRequest::new(Domain::Com, &many).build()),
        "seller=(101 given): at most 100 per call"
    );
    assert!(err(SellerRequest::new(Domain::Com, ["bad id"]).build()).starts_with("seller=bad id"));
    assert!(
        err(SellerRequest::new(Domain::Com, Vec::<String>::new()).build()).contains("at least one")
    );
    let s = SellerRequest::new(Domain::Com, ["A2L77EE7U53NWQ"])
        .storefront(true)
        .build()
        .unwrap();
    assert!(s.shape().storefront);
    assert_eq!(s.items(), 1);

    assert!(
        err(QueryRequest::new(Domain::Com, json!([1])).build()).contains("must be a JSON object")
    );
    assert!(
        err(QueryRequest::new(Domain::Com, json!({"perPage": 0})).build()).starts_with("perPage=0")
    );
    let q = QueryRequest::new(
        Domain::Com,
        json!({"perPage": 200, "rootCategory": [283155]}),
    )
    .build()
    .unwrap();
    assert_eq!((q.method(), q.items()), (Method::Post, 200));

    assert_eq!(
        err(BestsellersRequest::new(Domain::Com, 283155)
            .range(7)
            .build()),
        "range=7: must be 0, 30, 90 or 180"
    );
    assert!(BestsellersRequest::new(Domain::Com, 283155)
        .range(30)
        .build()
        .is_ok());

    assert!(err(CategoryRequest::new(Domain::Com, 0..11).build()).contains("at most 10"));
    assert!(err(CategoryRequest::new(Domain::Com, []).build()).contains("at least one"));
    let c = CategoryRequest::new(Domain::Com, [0])
        .parents(true)
        .build()
        .unwrap();
    assert!(c.query().contains(&("parents".into(), "1".into())));

    let t = Request::token();
    assert_eq!(
        (t.endpoint(), t.items(), t.query().len()),
        (Endpoint::Token, 0, 0)
    );
}
