//! The demands a waiter decides on: this process's jobs and, over a shared
//! store, other processes' (the fair queue), and the no-spin rule for waits.

use std::collections::BTreeMap;

use super::{Shared, REMOTE_JOB_BASE};
use crate::demand::{Demand, JobId, Millis, Need, Periodic};
use crate::policy::Policy;
use crate::store::Loaded;

/// Takes in what a load says about the fair queue, and lists the demands
/// to decide on: this process's, then other processes' (ids from
/// [`REMOTE_JOB_BASE`]).
pub(super) fn adopt_and_demands<P: Policy, L>(
    sh: &mut Shared<P, L>,
    loaded: &Loaded,
    now: Millis,
) -> Vec<Demand> {
    let mut out = demands(sh, now);
    if loaded.others.is_empty() && loaded.own_vtimes.is_empty() {
        return out;
    }
    let memory = sh.sched.memory_mut();
    memory.bulk_vtime.retain(|j, _| j.0 < REMOTE_JOB_BASE);
    for (j, v) in &loaded.own_vtimes {
        let e = memory.bulk_vtime.entry(*j).or_insert(*v);
        *e = e.max(*v);
    }
    for (i, r) in loaded.others.iter().enumerate() {
        let job = JobId(REMOTE_JOB_BASE.saturating_add(i as u32));
        match (r.waiting, r.periodic) {
            (Some(Need::Bulk(b)), _) => {
                if let Some(v) = r.vtime {
                    memory.bulk_vtime.insert(job, v);
                }
                out.push(Demand {
                    job,
                    need: Need::Bulk(b),
                });
            }
            // Another process's periodic job counts for the reserve; only
            // its own process grants it.
            (Some(Need::Periodic(p)), _) | (None, Some(p)) => {
                let mut p = p;
                if p.next_due <= now {
                    p.next_due = now + 1;
                }
                out.push(Demand {
                    job,
                    need: Need::Periodic(p),
                });
            }
            (None, None) => {}
        }
    }
    out
}

/// A wake-up the policy names for `now + 1` because of a periodic run that
/// is overdue but not asking here (its own process or waiter decides for
/// it; it counts only for the reserve) would wake this waiter again and
/// again without anything changing. Such a wait lasts instead until the next
/// refill step, the instant the balance next moves by itself (a settlement,
/// an envelope or a new waiter wakes it earlier).
pub(super) fn not_before_a_step(
    until: Option<Millis>,
    now: Millis,
    demands: &[Demand],
    waiting: &BTreeMap<JobId, Need>,
    loaded: &Loaded,
) -> Option<Millis> {
    let soon = |d: &Demand| matches!(d.need, Need::Periodic(p) if p.next_due <= now + 1);
    let idle_overdue = demands
        .iter()
        .any(|d| soon(d) && !waiting.contains_key(&d.job));
    // A periodic run that is asking here and falls due keeps its wake-up.
    let asking = demands
        .iter()
        .any(|d| soon(d) && waiting.contains_key(&d.job));
    match (until, &loaded.view) {
        (Some(t), Some(view)) if t <= now + 1 && idle_overdue && !asking => {
            Some(view.bucket.refill_step_after(now))
        }
        _ => until,
    }
}

/// This process's demands, their instants (read from the gate's clock)
/// in server time, as `now` is.
fn demands<P, L>(sh: &Shared<P, L>, now: Millis) -> Vec<Demand> {
    let mut out = Vec::with_capacity(sh.periodic.len() + sh.waiting.len());
    let server = |mut p: Periodic| {
        p.next_due = sh.offset.to_server(p.next_due);
        p
    };
    for (job, p) in &sh.periodic {
        if sh.waiting.contains_key(job) {
            continue;
        }
        // A periodic job not waiting right now still counts for the reserve,
        // but cannot be granted: its next run is treated as not yet due.
        let mut p = server(*p);
        if p.next_due <= now {
            p.next_due = now + 1;
        }
        out.push(Demand {
            job: *job,
            need: Need::Periodic(p),
        });
    }
    for (job, need) in &sh.waiting {
        let need = match need {
            Need::Periodic(p) => Need::Periodic(server(*sh.periodic.get(job).unwrap_or(p))),
            Need::Bulk(b) if b.not_before != Millis::MIN => Need::Bulk(crate::demand::Bulk {
                not_before: sh.offset.to_server(b.not_before),
                ..*b
            }),
            Need::Bulk(_) => *need,
        };
        out.push(Demand { job: *job, need });
    }
    out
}

#[cfg(test)]
mod tests {
    use keepa::TokenSnapshot;

    use super::*;
    use crate::demand::Prediction;
    use crate::ledger::Ledger;

    const NOW: Millis = 1_000_000;

    fn loaded() -> Loaded {
        let mut ledger = Ledger::default();
        // Next refill step 20 s from now.
        ledger.observe(TokenSnapshot {
            timestamp_ms: NOW,
            tokens_left: 3,
            refill_in_ms: 20_000,
            refill_rate: 5,
        });
        Loaded {
            view: ledger.view(),
            version: 0,
            others: vec![],
            own_vtimes: vec![],
            recheck_in_ms: None,
        }
    }

    fn periodic(job: u32) -> Demand {
        Demand {
            job: JobId(job),
            need: Need::Periodic(Periodic {
                next_due: NOW + 1,
                period_ms: 60_000,
                max_delay_ms: 60_000,
                cost: Prediction::new(1, 1),
                ..Default::default()
            }),
        }
    }

    fn waiting(jobs: &[u32]) -> BTreeMap<JobId, Need> {
        jobs.iter().map(|&j| (JobId(j), periodic(j).need)).collect()
    }

    #[test]
    fn a_wait_for_an_idle_overdue_run_lasts_until_the_next_refill_step() {
        // Job 1 (periodic) is overdue and not asking; job 2 waits. Without
        // the fix the policy's `now + 1` wakes job 2 every millisecond.
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 1), NOW, &demands, &waiting(&[2]), &loaded());
        assert_eq!(until, Some(NOW + 20_000));
    }

    #[test]
    fn a_periodic_run_asking_here_keeps_its_wake_up() {
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 1), NOW, &demands, &waiting(&[1]), &loaded());
        assert_eq!(until, Some(NOW + 1));
    }

    #[test]
    fn a_later_wake_up_is_left_alone() {
        let demands = [periodic(1)];
        let until = not_before_a_step(Some(NOW + 5_000), NOW, &demands, &waiting(&[2]), &loaded());
        assert_eq!(until, Some(NOW + 5_000));
        assert_eq!(
            not_before_a_step(None, NOW, &demands, &waiting(&[2]), &loaded()),
            None
        );
    }
}
