//! [`ClickFold`]: a batch of clicks as the rows a store adds them to.

use crate::records::{ClassifiedClick, Dimension};
use chrono::NaiveDate;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use uuid::Uuid;

/// A batch of new clicks folded into per-(link, day) and per-(link, day, dimension,
/// value) deltas, so a store writes one row per key instead of several per click.
///
/// Fold only clicks the store has just recorded for the first time (its
/// de-duplication decides which), so that a redelivered batch adds nothing. Every list
/// is sorted by key: stores that lock rows in key order cannot deadlock with each
/// other. Strings are borrowed from the batch; folding allocates per distinct key,
/// never per click.
///
/// ```
/// use hoplink::records::{ClassifiedClick, ClickFold, Dimension};
/// # use chrono::Utc;
/// # let link = uuid::Uuid::now_v7();
/// # let click = |visitor: &str, is_bot: bool| ClassifiedClick {
/// #     event_id: uuid::Uuid::now_v7(), link_id: link, day: Utc::now().date_naive(),
/// #     visitor: visitor.into(), is_bot, referrer: "t.co".into(), browser: "Firefox".into(),
/// #     os: "Linux".into(), device: "desktop".into(), country: "DE".into(),
/// #     counted_at_redirect: false, at: Utc::now(),
/// # };
/// let batch = [click("a", false), click("a", false), click("b", true)];
/// let fold = ClickFold::of(&batch);
/// assert_eq!((fold.days[0].clicks, fold.days[0].bot_clicks), (2, 1));
/// assert_eq!(fold.visitors.len(), 1); // bots have no unique visitors
/// assert_eq!(fold.breakdowns.iter().filter(|b| b.dimension == Dimension::Os).count(), 1);
/// assert_eq!(fold.counts, vec![(link, 2)]);
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClickFold<'a> {
    /// Clicks per link and day.
    pub days: Vec<DayDelta>,
    /// Human clicks per link, day, dimension and value.
    pub breakdowns: Vec<BreakdownDelta<'a>>,
    /// The distinct (link, day, visitor) of human clicks that carry a visitor: the store
    /// counts those it had not seen that day as unique visitors.
    pub visitors: Vec<(Uuid, NaiveDate, &'a str)>,
    /// Human clicks per link that `click_count` does not hold yet (not counted at
    /// redirect time).
    pub counts: Vec<(Uuid, u64)>,
}

/// One link's clicks on one day, in a [`ClickFold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayDelta {
    /// The link.
    pub link_id: Uuid,
    /// The UTC day.
    pub day: NaiveDate,
    /// Human clicks.
    pub clicks: u64,
    /// Bot clicks.
    pub bot_clicks: u64,
}

/// One value's human clicks on one link and day, in a [`ClickFold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakdownDelta<'a> {
    /// The link.
    pub link_id: Uuid,
    /// The UTC day.
    pub day: NaiveDate,
    /// The dimension.
    pub dimension: Dimension,
    /// The value (a referrer host, a browser family...).
    pub value: &'a str,
    /// Human clicks.
    pub clicks: u64,
}

impl<'a> ClickFold<'a> {
    /// Folds `clicks` (all of them: filter out duplicates first).
    pub fn of(clicks: impl IntoIterator<Item = &'a ClassifiedClick>) -> ClickFold<'a> {
        let clicks = clicks.into_iter();
        let hint = clicks.size_hint().0;
        let mut days: HashMap<(Uuid, NaiveDate), (u64, u64)> = HashMap::with_capacity(hint / 2);
        let mut breakdowns: HashMap<(Uuid, NaiveDate, Dimension, &'a str), u64> =
            HashMap::with_capacity(hint * 2);
        let mut visitors: HashSet<(Uuid, NaiveDate, &'a str)> = HashSet::with_capacity(hint);
        let mut counts: HashMap<Uuid, u64> = HashMap::with_capacity(hint / 2);
        for click in clicks {
            let day = days.entry((click.link_id, click.day)).or_default();
            if click.is_bot {
                day.1 += 1;
                continue;
            }
            day.0 += 1;
            for dimension in Dimension::ALL {
                *breakdowns
                    .entry((click.link_id, click.day, dimension, dimension.of(click)))
                    .or_default() += 1;
            }
            if !click.visitor.is_empty() {
                visitors.insert((click.link_id, click.day, &click.visitor));
            }
            if !click.counted_at_redirect {
                *counts.entry(click.link_id).or_default() += 1;
            }
        }
        let mut fold = ClickFold {
            days: days
                .into_iter()
                .map(|((link_id, day), (clicks, bot_clicks))| DayDelta {
                    link_id,
                    day,
                    clicks,
                    bot_clicks,
                })
                .collect(),
            breakdowns: breakdowns
                .into_iter()
                .map(
                    |((link_id, day, dimension, value), clicks)| BreakdownDelta {
                        link_id,
                        day,
                        dimension,
                        value,
                        clicks,
                    },
                )
                .collect(),
            visitors: visitors.into_iter().collect(),
            counts: counts.into_iter().collect(),
        };
        fold.days.sort_unstable_by_key(|d| (d.link_id, d.day));
        fold.breakdowns
            .sort_unstable_by_key(|b| (b.link_id, b.day, b.dimension, b.value));
        fold.visitors.sort_unstable();
        fold.counts.sort_unstable();
        fold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn click(link: u128, day: u32, visitor: &str, referrer: &str, bot: bool) -> ClassifiedClick {
        let at = Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap();
        ClassifiedClick {
            event_id: Uuid::now_v7(),
            link_id: Uuid::from_u128(link),
            day: at.date_naive(),
            visitor: visitor.into(),
            is_bot: bot,
            referrer: referrer.into(),
            browser: "Firefox".into(),
            os: "Linux".into(),
            device: "desktop".into(),
            country: "DE".into(),
            counted_at_redirect: false,
            at,
        }
    }

    #[test]
    fn a_batch_folds_into_one_delta_per_key_in_key_order() {
        let mut batch = vec![
            click(2, 1, "v1", "t.co", false),
            click(1, 1, "v1", "t.co", false),
            click(1, 1, "v1", "direct", false),
            click(1, 1, "v2", "t.co", false),
            click(1, 2, "v1", "t.co", false),
            click(1, 1, "", "t.co", true),
        ];
        batch[1].counted_at_redirect = true;
        let fold = ClickFold::of(&batch);
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        assert_eq!(
            fold.days
                .iter()
                .map(|d| (d.link_id, d.day, d.clicks, d.bot_clicks))
                .collect::<Vec<_>>(),
            vec![(one, d(1), 3, 1), (one, d(2), 1, 0), (two, d(1), 1, 0)]
        );
        assert_eq!(
            fold.visitors,
            vec![
                (one, d(1), "v1"),
                (one, d(1), "v2"),
                (one, d(2), "v1"),
                (two, d(1), "v1")
            ]
        );
        let referrers: Vec<_> = fold
            .breakdowns
            .iter()
            .filter(|b| b.dimension == Dimension::Referrer)
            .map(|b| (b.link_id, b.day, b.value, b.clicks))
            .collect();
        assert_eq!(
            referrers,
            vec![
                (one, d(1), "direct", 1),
                (one, d(1), "t.co", 2),
                (one, d(2), "t.co", 1),
                (two, d(1), "t.co", 1)
            ]
        );
        // Five dimensions, each with the human clicks of its key and nothing for bots.
        let human: u64 = fold.days.iter().map(|d| d.clicks).sum();
        for dim in Dimension::ALL {
            let sum: u64 = fold
                .breakdowns
                .iter()
                .filter(|b| b.dimension == dim)
                .map(|b| b.clicks)
                .sum();
            assert_eq!(sum, human, "{dim:?}");
        }
        // The click counted at redirect time is not counted again.
        assert_eq!(fold.counts, vec![(one, 3), (two, 1)]);
        assert!(fold.breakdowns.windows(2).all(|w| {
            (w[0].link_id, w[0].day, w[0].dimension, w[0].value)
                < (w[1].link_id, w[1].day, w[1].dimension, w[1].value)
        }));
        assert_eq!(ClickFold::of(&[]), ClickFold::default());
    }
}
