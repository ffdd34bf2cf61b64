//! Reading csv histories: `(Keepa minute, value)` steps, −1 for "none".

/// The last value at or before `t`, −1 if none.
pub(crate) fn value_at(series: &[(i64, i64)], t: i64) -> i64 {
    let i = series.partition_point(|&(at, _)| at <= t);
    if i == 0 {
        -1
    } else {
        series[i - 1].1
    }
}

/// Time-weighted mean of the valid (≥ 0) values over `[from, to]`; −1 if none.
pub(crate) fn weighted_avg(series: &[(i64, i64)], from: i64, to: i64) -> i64 {
    if to <= from {
        return -1;
    }
    let (mut sum, mut weight) = (0_f64, 0_f64);
    let mut cur = value_at(series, from);
    let mut t = from;
    let start = series.partition_point(|&(at, _)| at <= from);
    for &(at, v) in &series[start..] {
        if at > to {
            break;
        }
        if cur >= 0 {
            sum += cur as f64 * (at - t) as f64;
            weight += (at - t) as f64;
        }
        cur = v;
        t = at;
    }
    if cur >= 0 {
        sum += cur as f64 * (to - t) as f64;
        weight += (to - t) as f64;
    }
    if weight <= 0.0 {
        -1
    } else {
        (sum / weight).round() as i64
    }
}

/// Lowest and highest valid value in `[from, to]` as `(t, v)`, including the value carried into `from`.
pub(crate) fn extremes(
    series: &[(i64, i64)],
    from: i64,
    to: i64,
) -> Option<((i64, i64), (i64, i64))> {
    let start = series.partition_point(|&(at, _)| at <= from);
    let carried = start.checked_sub(1).map(|i| series[i]);
    let mut min: Option<(i64, i64)> = None;
    let mut max: Option<(i64, i64)> = None;
    for &(t, v) in carried.iter().chain(series[start..].iter()) {
        if t > to || v < 0 {
            continue;
        }
        if min.is_none_or(|(_, m)| v < m) {
            min = Some((t, v));
        }
        if max.is_none_or(|(_, m)| v > m) {
            max = Some((t, v));
        }
    }
    Some((min?, max?))
}

/// Number of rank improvements (a lower rank than the previous point) in `(from, to]`.
pub(crate) fn rank_drops(series: &[(i64, i64)], from: i64, to: i64) -> i64 {
    series
        .windows(2)
        .filter(|w| w[1].0 > from && w[1].0 <= to && w[0].1 > 0 && w[1].1 > 0 && w[1].1 < w[0].1)
        .count() as i64
}
