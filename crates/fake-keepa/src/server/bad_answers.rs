//! Bad answers on demand: HTTP 200s that are not what was asked for (the
//! faults `inbody`, `inbody_limit`, `nopayload`, `bad_deal`, `offers_failed`, `no_consumed`
//! and `missing_asin`; see [`crate::faults`]). They apply to `/product` and
//! `/deal` only, and draw from their own generator, so the other faults
//! keep their sequence.

use rand::Rng;
use serde_json::{Map, Value};

use super::validate::Work;
use super::{lock, uniforms, Shared};

/// The bad-answer faults drawn for one request.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct BadDraw {
    /// Answer 200 with an error object and no payload: `Some(true)` of a
    /// token limit (`inbody_limit`), `Some(false)` of a failed request
    /// (`inbody`).
    pub(super) in_body: Option<bool>,
    /// Drop the payload (`Some(true)`: leave it out; `Some(false)`: `null`).
    pub(super) no_payload: Option<bool>,
    /// Break one deal of the page, at this fraction of its length.
    pub(super) bad_deal: Option<f64>,
    /// Leave `tokensConsumed` out.
    pub(super) no_consumed: bool,
}

/// Draws the faults of one request to `endpoint`: none but for `/product`
/// and `/deal`, and none when no bad-answer fault is configured.
pub(super) fn draw(shared: &Shared, endpoint: &str) -> BadDraw {
    let spec = &shared.settings.faults;
    let any =
        spec.in_body + spec.in_body_limit + spec.no_payload + spec.bad_deal + spec.no_consumed
            > 0.0;
    if !any || !matches!(endpoint, "product" | "deal") {
        return BadDraw::default();
    }
    let [a, b, c, d, e, f, g] = uniforms(&shared.bad_rng);
    BadDraw {
        in_body: if a < spec.in_body {
            Some(false)
        } else {
            (g < spec.in_body_limit).then_some(true)
        },
        no_payload: (b < spec.no_payload).then_some(e < 0.5),
        bad_deal: (endpoint == "deal" && c < spec.bad_deal).then_some(f),
        no_consumed: d < spec.no_consumed,
    }
}

/// Leaves ASINs out of a `/product` request before it runs (`missing_asin`,
/// each with its probability): they are neither served nor charged.
pub(super) fn leave_out(shared: &Shared, work: &mut Work) {
    let p = shared.settings.faults.missing_asin;
    let Work::Product { indices, .. } = work else {
        return;
    };
    if p <= 0.0 {
        return;
    }
    let before = indices.len();
    {
        let mut r = lock(&shared.bad_rng);
        indices.retain(|_| r.random::<f64>() >= p);
    }
    lock(&shared.books).faults.missing_asins += (before - indices.len()) as u64;
}

/// Spoils the payload of an answer that ran: drops it (`nopayload`),
/// breaks one deal (`bad_deal`), or fails the offers collection of some
/// products (`offers_failed`). The charge is left as it was.
pub(super) fn spoil(shared: &Shared, bad: &BadDraw, work: &Work, payload: &mut Map<String, Value>) {
    let field = match work {
        Work::Product { .. } => "products",
        Work::Deal(_) => "deals",
        _ => return,
    };
    if let Some(absent) = bad.no_payload {
        if absent {
            payload.remove(field);
        } else {
            payload.insert(field.into(), Value::Null);
        }
        lock(&shared.books).faults.no_payload += 1;
        return;
    }
    if let (Some(at), Some(Value::Array(dr))) = (
        bad.bad_deal,
        payload.get_mut("deals").and_then(|d| d.get_mut("dr")),
    ) {
        let i = ((dr.len() as f64) * at) as usize;
        if let Some(Value::Object(deal)) = dr.get_mut(i) {
            deal.insert("asin".into(), Value::Null);
            lock(&shared.books).faults.bad_deals += 1;
        }
    }
    let p = shared.settings.faults.offers_failed;
    let asked_offers = matches!(work, Work::Product { opt, .. } if opt.offers.is_some());
    if p > 0.0 && asked_offers {
        if let Some(Value::Array(products)) = payload.get_mut("products") {
            let mut failed = 0;
            let mut r = lock(&shared.bad_rng);
            for product in products.iter_mut().filter_map(Value::as_object_mut) {
                if r.random::<f64>() < p {
                    product.insert("offersSuccessful".into(), Value::Bool(false));
                    product.remove("offers");
                    product.remove("liveOffersOrder");
                    failed += 1;
                }
            }
            drop(r);
            lock(&shared.books).faults.offers_failed += failed;
        }
    }
}

/// Takes `tokensConsumed` out of an answer's body (`no_consumed`).
pub(super) fn drop_consumed(shared: &Shared, bad: &BadDraw, body: &mut Value) {
    if !bad.no_consumed {
        return;
    }
    if let Some(m) = body.as_object_mut() {
        m.remove("tokensConsumed");
        lock(&shared.books).faults.no_consumed += 1;
    }
}
