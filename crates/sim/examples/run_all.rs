//! Runs every workload in `workloads/` under every policy and prints
//! one line each, with the simulation speed.
//!
//! `cargo run --release -p sim --example run_all [-- FILTER]`

use std::time::Instant;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workloads");
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("workloads dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    for f in files {
        let w = sim::Workload::from_file(&f).expect("workload");
        for p in budget::PolicyKind::NAMES {
            let t0 = Instant::now();
            let run = sim::simulate(&w, p).expect("simulate");
            let dt = t0.elapsed();
            let r = &run.report;
            println!(
                "{:16} {:18} fin={} days={:>8} front={:>7} eff={:>6} served={}/{} ontime={} p99={:?} max={:?} minb={} waste={} 429={} sync={} ev={} {:.0} ev/s {:?} {}",
                r.workload,
                r.policy,
                r.finished,
                r.days_to_target.map_or("-".into(), |d| format!("{d:.3}")),
                r.frontier_days.map_or("-".into(), |d| format!("{d:.3}")),
                r.efficiency.map_or("-".into(), |d| format!("{d:.4}")),
                r.refresh_runs_served,
                r.refresh_runs_due,
                r.refresh_runs_on_time,
                r.refresh_delay_p99_s,
                r.refresh_delay_max_s,
                r.min_balance,
                r.wasted_refill_tokens,
                r.rejected_429,
                r.token_syncs,
                r.events,
                r.events as f64 / dt.as_secs_f64(),
                dt,
                r.refused.join("; "),
            );
            if let Some(ps) = &r.pipelines {
                for p in ps {
                    println!(
                        "    pipeline {:18} tpsd={:?} days={:?} stored={}",
                        p.name, p.tokens_per_stored_deal, p.days_to_target, p.stored
                    );
                }
            }
        }
    }
}
