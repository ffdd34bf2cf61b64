//! Deal events: when they happen ([`Schedule`]), which product each one
//! touches, and how it is written into that product's price history.

use keepa::KeepaMinutes;

use super::csv_type::{AMAZON, NEW, USED};
use super::{round_price, value_at, Catalog, MINUTES_PER_DAY};
use super::{TAG_EVENT_JITTER, TAG_EVENT_PCT, TAG_EVENT_RECOVERY, TAG_EVENT_TYPE};
use crate::rng::{hash, unit};

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

impl Catalog {
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
    pub(super) fn hits(
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
}

pub(super) fn merge_deals(base: &[(i64, i64)], hits: &[DealHit], at_min: i64) -> Vec<(i64, i64)> {
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
