//! `/api/v1/analytics`: what a link's clicks add up to.

use super::input::{Int, Text};
use super::{ApiResult, Auth, Tag, small};
use crate::state::AppState;
use chrono::NaiveDate;
use hoplink::{AnalyticsSummary, DayClicks, ValueCount};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;

/// Clicks on one day.
#[derive(Debug, Object)]
pub struct DayClicksBody {
    /// UTC day.
    pub date: NaiveDate,
    /// Human clicks.
    pub clicks: u64,
}

/// A value and its count.
#[derive(Debug, Object)]
pub struct ValueCountBody {
    /// Value (host, browser, OS, device class, country).
    pub value: String,
    /// Human clicks.
    pub count: u64,
}

/// Analytics of a link over a window of days.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SummaryBody {
    /// The link's code.
    pub short_code: String,
    /// Human clicks.
    pub total_clicks: u64,
    /// Distinct visitors per day, summed over the window.
    pub unique_visitors: u64,
    /// Known bots and link-preview crawlers.
    pub bot_clicks: u64,
    /// Every day of the window, oldest first, zeros included.
    pub clicks_by_day: Vec<DayClicksBody>,
    /// Top referrer hosts (`direct` without one), with `other` for the rest.
    pub top_referrers: Vec<ValueCountBody>,
    /// Browser families: `Chrome`, `Safari`, `Firefox`, `Edge`, `Opera`, `Samsung Internet`, `Internet Explorer`, `Other`.
    pub browsers: Vec<ValueCountBody>,
    /// Operating system families: `iOS`, `Android`, `Windows`, `macOS`, `Linux`, `ChromeOS`, `Other`.
    pub operating_systems: Vec<ValueCountBody>,
    /// Device classes: `desktop`, `mobile`, `tablet`, `other`.
    pub devices: Vec<ValueCountBody>,
    /// Two-letter countries (`unknown` when not known).
    pub countries: Vec<ValueCountBody>,
}

fn counts(values: Vec<ValueCount>) -> Vec<ValueCountBody> {
    values
        .into_iter()
        .map(|v| ValueCountBody {
            value: v.value,
            count: v.count,
        })
        .collect()
}

impl From<AnalyticsSummary> for SummaryBody {
    fn from(s: AnalyticsSummary) -> Self {
        SummaryBody {
            short_code: s.short_code,
            total_clicks: s.total_clicks,
            unique_visitors: s.unique_visitors,
            bot_clicks: s.bot_clicks,
            clicks_by_day: s
                .clicks_by_day
                .into_iter()
                .map(|DayClicks { date, clicks }| DayClicksBody { date, clicks })
                .collect(),
            top_referrers: counts(s.top_referrers),
            browsers: counts(s.browsers),
            operating_systems: counts(s.operating_systems),
            devices: counts(s.devices),
            countries: counts(s.countries),
        }
    }
}

impl poem_openapi::types::Example for SummaryBody {
    fn example() -> Self {
        let day = |d: u32, clicks: u64| DayClicksBody {
            date: NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default(),
            clicks,
        };
        let count = |value: &str, count: u64| ValueCountBody {
            value: value.into(),
            count,
        };
        SummaryBody {
            short_code: "launch".into(),
            total_clicks: 42,
            unique_visitors: 37,
            bot_clicks: 5,
            clicks_by_day: vec![day(21, 0), day(22, 30), day(23, 12)],
            top_referrers: vec![count("news.example.com", 25), count("direct", 17)],
            browsers: vec![count("Chrome", 24), count("Safari", 18)],
            operating_systems: vec![count("iOS", 16), count("Windows", 14), count("Android", 12)],
            devices: vec![count("mobile", 28), count("desktop", 14)],
            countries: vec![count("DE", 30), count("unknown", 12)],
        }
    }
}

#[derive(ApiResponse)]
enum OkSummary {
    /// The summary.
    #[oai(status = 200)]
    Ok(Json<SummaryBody>),
}

fn default_days() -> Int {
    Int(30)
}

pub struct AnalyticsApi;

#[OpenApi]
impl AnalyticsApi {
    /// Analytics summary of one of your links
    ///
    /// Human clicks only; bots and link-preview crawlers are in `bot_clicks`. Eventually
    /// consistent: a click shows within a few seconds.
    #[oai(
        path = "/api/v1/analytics/:short_code/summary",
        method = "get",
        operation_id = "analytics_summary",
        tag = "Tag::Analytics"
    )]
    async fn analytics_summary(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// The link's code.
        #[oai(validator(min_length = 1, max_length = 64))]
        short_code: Path<Text>,
        /// Window in days, today included.
        #[oai(
            default = "default_days",
            validator(minimum(value = "1"), maximum(value = "365"))
        )]
        days: Query<Int>,
        /// The link's short domain (its host); the default domain when absent.
        #[oai(validator(max_length = 253))]
        domain: Query<Option<Text>>,
    ) -> ApiResult<OkSummary> {
        let summary = state
            .shortener
            .analytics_summary(
                &auth.principal(),
                domain.0.as_ref().map(|d| d.0.as_str()),
                &short_code.0.0,
                small(days.0),
            )
            .await?;
        Ok(OkSummary::Ok(Json(summary.into())))
    }
}
