//! Catalog invariants: ids round-trip, schedules are searchable, histories are prefix-stable.

use super::csv_type::{COUNT_NEW, NEW, SALES};
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

#[test]
fn offers_age_with_the_clock_and_a_share_is_fresh() {
    let c = catalog(11);
    let now = c.anchor_min();
    let n = 20_000;
    let (mut hour, mut day) = (0, 0);
    for i in 0..n {
        let at = c.offers_collected_at(i, now);
        assert!(at <= now, "product {i}: collected in the future");
        // Aging: seen later, the same collection until the next one.
        let later = c.offers_collected_at(i, now + 30);
        assert!(later == at || (later > now && later <= now + 30), "{i}");
        assert_eq!(at, catalog(11).offers_collected_at(i, now), "seeded");
        hour += usize::from(now - at < 60);
        day += usize::from(now - at < 24 * 60);
    }
    let (hour, day) = (hour as f64 / n as f64, day as f64 / n as f64);
    assert!((0.12..0.19).contains(&hour), "{hour}");
    assert!((0.55..0.70).contains(&day), "{day}");
}
