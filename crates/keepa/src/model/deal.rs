//! Deals (`/deal`): the deal object and the page that carries it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::csv::CsvType;
use super::sentinel::{null_default, KeepaValue};
use crate::time::KeepaMinutes;

/// A deal interval (Keepa's `dateRange`, the `DealInterval` of its Java
/// client). The discriminant is Keepa's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DateRange {
    /// 0: the last day. Keepa computes the "day" average over 48 hours.
    Day = 0,
    /// 1: the last 7 days.
    Week = 1,
    /// 2: the last 31 days.
    Month = 2,
    /// 3: the last 90 days.
    Quarter = 3,
}

impl DateRange {
    /// All four, in index order.
    pub const ALL: [DateRange; 4] = [
        DateRange::Day,
        DateRange::Week,
        DateRange::Month,
        DateRange::Quarter,
    ];

    /// Keepa's index, `0..4`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The range at Keepa's index, `None` outside `0..4`.
    pub fn from_index(index: usize) -> Option<DateRange> {
        DateRange::ALL.get(index).copied()
    }
}

impl Serialize for DateRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for DateRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let i = i64::deserialize(d)?;
        usize::try_from(i)
            .ok()
            .and_then(DateRange::from_index)
            .ok_or_else(|| serde::de::Error::custom(format!("no dateRange {i} (valid: 0..4)")))
    }
}

/// A product that recently changed, as the deal feed lists it.
///
/// The per-type arrays stay raw; read them with the accessors, which never
/// panic (absent or short arrays read as `Unknown`/`None`).
///
/// # Dimension order of `avg`, `delta`, `deltaPercent`
///
/// Read as `[dateRange][priceType]`: 4 rows ([`DateRange`]) of up to 36
/// columns ([`CsvType`]). The sources disagree, and this is the evidence:
///
/// - Keepa's Java client (`keepacom/api_backend`, `structs/Deal.java`): the
///   prose of `delta` says "First dimension uses the Date Range indexing,
///   second the Price Type indexing", while the `<p>` line under `delta`,
///   `deltaPercent` and `avg` says "First dimension uses CsvType, second
///   dimension DealInterval". The PHP client (`keepacom/php_api`,
///   `objects/Deal.php`) repeats both sentences verbatim, so it settles
///   nothing.
/// - Third-party code that reads real `/deal` bodies prints
///   `deltaPercent[0]` … `[3]` as the day, week, month and 90-day rows; a
///   third-party write-up of a live probe (amazon.de, May 2026) found
///   `deltaPercent[3][AMAZON]` equal to the drop computed from the
///   product's `stats.avg90` for all 25 deals it checked, and reports that
///   its first draft, indexing the other way, read sales ranks as drops.
/// - Shape: `DateRange` has 4 values and the price types 36; the prose
///   reading gives 4 arrays of 36, which is what those bodies show.
/// - This project's fake server writes `[dateRange][priceType]`, and the
///   test against it checks `delta = avg − current` in every cell.
///
/// No real `/deal` body is in the fixtures, so this stays a reading. The
/// private `cell` function is the only code that knows the order; should
/// Keepa ever send the transposed shape (more than 4 rows, each of at most
/// 4 entries) it reads that the other way round instead of returning a
/// wrong cell.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    /// The ASIN (empty only if Keepa omitted it).
    #[serde(default, deserialize_with = "null_default")]
    pub asin: String,
    /// Parent ASIN of a variation.
    #[serde(default)]
    pub parent_asin: Option<String>,
    /// Title; may contain HTML markup.
    #[serde(default)]
    pub title: Option<String>,
    /// Root category id (`0` or `i64::MAX` when unknown).
    #[serde(default)]
    pub root_cat: Option<i64>,
    /// Leaf category ids.
    #[serde(default, deserialize_with = "null_default")]
    pub categories: Vec<i64>,
    /// Image file name as character codes (see [`Deal::image_name`]).
    #[serde(default, deserialize_with = "null_default")]
    pub image: Vec<i64>,
    /// Current value per csv type.
    #[serde(default, deserialize_with = "null_default")]
    pub current: Vec<KeepaValue>,
    /// Raw time (Keepa minutes) since which each current value holds.
    #[serde(default, deserialize_with = "null_default")]
    pub current_since: Vec<i64>,
    /// Raw difference between the last two values, per type (see
    /// [`Deal::delta_last`] for the sign).
    #[serde(default, deserialize_with = "null_default")]
    pub delta_last: Vec<i64>,
    /// Raw `[dateRange][priceType]` average − current (positive: dropped).
    #[serde(default, deserialize_with = "null_default")]
    pub delta: Vec<Vec<i64>>,
    /// Raw `[dateRange][priceType]` delta in percent of the average.
    #[serde(default, deserialize_with = "null_default")]
    pub delta_percent: Vec<Vec<i64>>,
    /// Raw `[dateRange][priceType]` weighted averages.
    #[serde(default, deserialize_with = "null_default")]
    pub avg: Vec<Vec<i64>>,
    /// When the deal was found.
    #[serde(default)]
    pub creation_date: Option<KeepaMinutes>,
    /// Last update of the deal.
    #[serde(default)]
    pub last_update: Option<KeepaMinutes>,
    /// End of a lightning deal; `0` when not one (see [`Deal::lightning_ends`]).
    #[serde(default)]
    pub lightning_end: Option<KeepaMinutes>,
    /// Condition code of the cheapest warehouse deal (0 none/unknown, 2–5 used grades).
    #[serde(default)]
    pub warehouse_condition: Option<i64>,
    /// Comment of the cheapest warehouse deal.
    #[serde(default)]
    pub warehouse_condition_comment: Option<String>,
    /// Minimum rating of the request (`-1` inactive).
    #[serde(default)]
    pub min_rating: Option<i64>,
}

/// Reads `rows[range][ty]`: the one place that knows the 2-D order. A
/// transposed array (`[priceType][dateRange]`: more than 4 rows of at most
/// 4) is read the other way round.
fn cell(rows: &[Vec<i64>], ty: CsvType, range: DateRange) -> Option<i64> {
    let transposed =
        rows.len() > DateRange::ALL.len() && rows.iter().all(|r| r.len() <= DateRange::ALL.len());
    if transposed {
        rows.get(ty.index())?.get(range.index()).copied()
    } else {
        rows.get(range.index())?.get(ty.index()).copied()
    }
}

impl Deal {
    /// Current value of `ty`.
    pub fn current(&self, ty: CsvType) -> KeepaValue {
        self.current
            .get(ty.index())
            .copied()
            .unwrap_or(KeepaValue::Unknown)
    }

    /// Since when the current value of `ty` holds (`None` if unknown).
    pub fn current_since(&self, ty: CsvType) -> Option<KeepaMinutes> {
        self.current_since
            .get(ty.index())
            .copied()
            .filter(|t| *t >= 0)
            .map(KeepaMinutes)
    }

    /// Weighted average of `ty` over `range` (the `Day` average covers 48 h).
    pub fn avg(&self, ty: CsvType, range: DateRange) -> KeepaValue {
        cell(&self.avg, ty, range).map_or(KeepaValue::Unknown, KeepaValue::from_raw)
    }

    /// `avg − current` of `ty` over `range`: positive means the value
    /// dropped. Keepa sends `0` when unchanged *or* not computable; `None`
    /// only when the array does not hold the cell. Not sentinel-coded.
    pub fn delta(&self, ty: CsvType, range: DateRange) -> Option<i64> {
        cell(&self.delta, ty, range)
    }

    /// [`Deal::delta`] in percent of the average (positive: dropped).
    pub fn delta_percent(&self, ty: CsvType, range: DateRange) -> Option<i64> {
        cell(&self.delta_percent, ty, range)
    }

    /// Difference between the previous and the current value of `ty`
    /// (`0`: unchanged or not computable); `None` when the array does not
    /// hold the type. The sign is not settled: Keepa's Java docs say only
    /// "difference of the current and the previous price", the PHP client's
    /// comment says negative means the value dropped, and this project's
    /// fake server sends `previous − current` (positive: dropped). Compare
    /// with [`Deal::current`] and the history before relying on the sign.
    pub fn delta_last(&self, ty: CsvType) -> Option<i64> {
        self.delta_last.get(ty.index()).copied()
    }

    /// End of the lightning deal, `None` when this is not one.
    pub fn lightning_ends(&self) -> Option<KeepaMinutes> {
        self.lightning_end.filter(|t| t.0 > 0)
    }

    /// The image file name (e.g. `61k3Lay7JUL.jpg`) spelled by `image`;
    /// `None` when empty or when a code is not printable ASCII.
    pub fn image_name(&self) -> Option<String> {
        if self.image.is_empty() {
            return None;
        }
        self.image
            .iter()
            .map(|&c| {
                u8::try_from(c)
                    .ok()
                    .filter(|b| b.is_ascii_graphic())
                    .map(char::from)
            })
            .collect()
    }

    /// The image's URL on Amazon's image host.
    pub fn image_url(&self) -> Option<String> {
        self.image_name()
            .map(|n| format!("https://m.media-amazon.com/images/I/{n}"))
    }
}

/// One `/deal` page: `{"dr": [...], "categoryIds": [...], ...}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DealsPayload {
    /// The deals of this page (up to 150).
    #[serde(default, deserialize_with = "null_default")]
    pub dr: Vec<Deal>,
    /// Root categories of all matching deals, parallel to the next two.
    #[serde(default, deserialize_with = "null_default")]
    pub category_ids: Vec<i64>,
    /// Their names.
    #[serde(default, deserialize_with = "null_default")]
    pub category_names: Vec<String>,
    /// Matching deals per category.
    #[serde(default, deserialize_with = "null_default")]
    pub category_count: Vec<i64>,
}

impl DealsPayload {
    /// `(id, name, count)` per category; stops at the shortest of the
    /// three arrays.
    pub fn category_summary(&self) -> impl Iterator<Item = (i64, &str, i64)> + '_ {
        self.category_ids
            .iter()
            .zip(&self.category_names)
            .zip(&self.category_count)
            .map(|((id, name), n)| (*id, name.as_str(), *n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_date_range_rows() {
        let mut avg = vec![vec![-1; 36]; 4];
        avg[1][2] = 2000; // week, USED
        let d = Deal {
            asin: "X".into(),
            avg,
            delta: vec![vec![0; 36]; 2],
            image: "61k3Lay7JUL.jpg".bytes().map(i64::from).collect(),
            ..Deal::default()
        };
        assert_eq!(
            d.avg(CsvType::Used, DateRange::Week),
            KeepaValue::Known(2000)
        );
        assert_eq!(d.avg(CsvType::Used, DateRange::Day), KeepaValue::NoData);
        assert_eq!(d.delta(CsvType::Used, DateRange::Week), Some(0));
        assert_eq!(d.delta(CsvType::Used, DateRange::Quarter), None);
        assert_eq!(d.delta_percent(CsvType::Used, DateRange::Day), None);
        assert_eq!(d.current(CsvType::Used), KeepaValue::Unknown);
        assert_eq!(d.image_name().as_deref(), Some("61k3Lay7JUL.jpg"));
        let bad = Deal {
            image: vec![54, 300],
            ..Deal::default()
        };
        assert_eq!(bad.image_name(), None);
        assert_eq!(Deal::default().image_name(), None);
    }

    #[test]
    fn transposed_arrays_are_recognised() {
        let mut avg = vec![vec![-1; 4]; 36];
        avg[2][1] = 2000; // USED, week
        let d = Deal {
            asin: "X".into(),
            avg,
            ..Deal::default()
        };
        assert_eq!(
            d.avg(CsvType::Used, DateRange::Week),
            KeepaValue::Known(2000)
        );
        assert_eq!(
            d.avg(CsvType::CountNewFbm, DateRange::Quarter),
            KeepaValue::NoData
        );
    }

    #[test]
    fn date_range_serde() {
        assert_eq!(serde_json::to_string(&DateRange::Quarter).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<DateRange>("1").unwrap(),
            DateRange::Week
        );
        assert!(serde_json::from_str::<DateRange>("4").is_err());
    }
}
