//! [`ClickFold`]: a batch of clicks as the rows a store adds them to.

use crate::records::{ClassifiedClick, Dimension};
use chrono::NaiveDate;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use uuid::Uuid;

/// A batch of new clicks folded into per-(link, day) and per-(link, day, combination of
/// dimension values) deltas, so a store writes one row per key instead of several per
/// click.
///
/// A combination (the five values of one click) is the unit of the breakdowns rather
/// than a single value: a link's only click of a batch, the usual case for the long
/// tail of links, is then one breakdown row instead of one per dimension. Stores sum the
/// combinations per dimension when they read.
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
/// assert_eq!(fold.combinations.len(), 1); // both human clicks share every value
/// assert_eq!(fold.combinations[0].value(Dimension::Os), "Linux");
/// assert_eq!(fold.counts, vec![(link, 2)]);
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClickFold<'a> {
    /// Clicks per link and day.
    pub days: Vec<DayDelta>,
    /// Human clicks per link, day and combination of dimension values.
    pub combinations: Vec<CombinationDelta<'a>>,
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

/// The human clicks of one combination of dimension values on one link and day, in a
/// [`ClickFold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CombinationDelta<'a> {
    /// The link.
    pub link_id: Uuid,
    /// The UTC day.
    pub day: NaiveDate,
    /// The clicks' value (a referrer host, a browser family...) for each of
    /// [`Dimension::ALL`], in that order.
    pub values: [&'a str; Dimension::ALL.len()],
    /// Human clicks.
    pub clicks: u64,
}

impl<'a> CombinationDelta<'a> {
    /// The combination's value for `dimension`.
    pub fn value(&self, dimension: Dimension) -> &'a str {
        self.values[dimension.index()]
    }
}

impl<'a> ClickFold<'a> {
    /// Folds `clicks` (all of them: filter out duplicates first).
    pub fn of(clicks: impl IntoIterator<Item = &'a ClassifiedClick>) -> ClickFold<'a> {
        let clicks = clicks.into_iter();
        let hint = clicks.size_hint().0;
        let mut days: HashMap<(Uuid, NaiveDate), (u64, u64)> = HashMap::with_capacity(hint / 2);
        let mut combinations: HashMap<(Uuid, NaiveDate, [&'a str; 5]), u64> =
            HashMap::with_capacity(hint);
        let mut visitors: HashSet<(Uuid, NaiveDate, &'a str)> = HashSet::with_capacity(hint);
        let mut counts: HashMap<Uuid, u64> = HashMap::with_capacity(hint / 2);
        for click in clicks {
            let day = days.entry((click.link_id, click.day)).or_default();
            if click.is_bot {
                day.1 += 1;
                continue;
            }
            day.0 += 1;
            *combinations
                .entry((
                    click.link_id,
                    click.day,
                    Dimension::ALL.map(|d| d.of(click)),
                ))
                .or_default() += 1;
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
            combinations: combinations
                .into_iter()
                .map(|((link_id, day, values), clicks)| CombinationDelta {
                    link_id,
                    day,
                    values,
                    clicks,
                })
                .collect(),
            visitors: visitors.into_iter().collect(),
            counts: counts.into_iter().collect(),
        };
        fold.days.sort_unstable_by_key(|d| (d.link_id, d.day));
        fold.combinations
            .sort_unstable_by_key(|c| (c.link_id, c.day, c.values));
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
            referrer: referrer.to_string().into(),
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
            .combinations
            .iter()
            .map(|c| (c.link_id, c.day, c.value(Dimension::Referrer), c.clicks))
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
        // Every combination carries the clicks' five values, and nothing for bots.
        let human: u64 = fold.days.iter().map(|d| d.clicks).sum();
        assert_eq!(
            fold.combinations.iter().map(|c| c.clicks).sum::<u64>(),
            human
        );
        for c in &fold.combinations {
            assert_eq!(
                c.values[1..],
                ["Firefox", "Linux", "desktop", "DE"],
                "{c:?}"
            );
            assert_eq!(c.value(Dimension::Country), "DE");
        }
        for (i, dim) in Dimension::ALL.into_iter().enumerate() {
            assert_eq!(dim.index(), i, "{dim:?}");
        }
        // The click counted at redirect time is not counted again.
        assert_eq!(fold.counts, vec![(one, 3), (two, 1)]);
        assert!(fold.combinations.windows(2).all(|w| {
            (w[0].link_id, w[0].day, w[0].values) < (w[1].link_id, w[1].day, w[1].values)
        }));
        assert_eq!(ClickFold::of(&[]), ClickFold::default());
    }
}
