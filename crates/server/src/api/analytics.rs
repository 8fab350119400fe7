//! `/api/v1/analytics`: what a link's clicks add up to.

use super::input::{Int, Text};
use super::{ApiResult, Auth, Tag, small};
use crate::state::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use hoplink::transfer::{CLICKS_HEADER, click_row};
use hoplink::{AnalyticsSummary, Click, ClickOptions, DayClicks, ValueCount};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, ResponseContent};
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

/// One click as the raw click log keeps it.
#[derive(Debug, Object)]
pub struct ClickBody {
    /// The click event's id (UUIDv7, so ids sort by time).
    pub id: uuid::Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// A known bot or link-preview crawler.
    pub bot: bool,
    /// The referrer's host, or `direct`.
    pub referrer: String,
    /// Browser family.
    pub browser: String,
    /// Operating system family.
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub device: String,
    /// Two-letter country, or `unknown`.
    pub country: String,
    /// The visitor's hash of that day in hex (salted daily: no address, and days can't
    /// be joined).
    pub visitor: String,
}

impl From<Click> for ClickBody {
    fn from(c: Click) -> Self {
        ClickBody {
            id: c.id,
            at: c.at,
            bot: c.bot,
            referrer: c.referrer,
            browser: c.browser,
            os: c.os,
            device: c.device,
            country: c.country,
            visitor: c.visitor,
        }
    }
}

/// A page of raw clicks, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ClickList {
    /// The clicks.
    pub items: Vec<ClickBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for ClickList {
    fn example() -> Self {
        ClickList {
            items: vec![ClickBody {
                id: uuid::Uuid::from_u128(0x0193_5a3c_7d1e_7000_8000_0000_0000_0001),
                at: DateTime::from_timestamp(1_763_797_800, 0).unwrap_or_default(),
                bot: false,
                referrer: "news.example.com".into(),
                browser: "Firefox".into(),
                os: "Linux".into(),
                device: "desktop".into(),
                country: "DE".into(),
                visitor: "9f86d081884c7d659a2feaa0c55ad015".into(),
            }],
            next_cursor: None,
        }
    }
}

/// How the click log is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ClickFormat {
    /// `application/json` (default).
    #[default]
    Json,
    /// `text/csv`: a header line, then a row per click; the next page's cursor is in
    /// the `x-next-cursor` header.
    Csv,
}

/// The click log in either format.
#[derive(ResponseContent)]
pub enum ClickContent {
    /// `{items, next_cursor}`.
    Json(Json<ClickList>),
    /// Columns `id,at,bot,referrer,browser,os,device,country,visitor`.
    #[oai(content_type = "text/csv; charset=utf-8")]
    Csv(PlainText<String>),
}

#[derive(ApiResponse)]
enum OkClicks {
    /// A page of clicks.
    #[oai(status = 200)]
    Ok(
        ClickContent,
        /// The next page's cursor (CSV answers; JSON has it in the body).
        #[oai(header = "x-next-cursor")]
        Option<String>,
    ),
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

    /// Raw clicks on one of your links
    ///
    /// Every recorded click, bots included, newest first and paged by cursor. Clicks are
    /// kept for `CLICK_RETENTION_DAYS` (90 by default); summaries outlive them.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/v1/analytics/:short_code/clicks",
        method = "get",
        operation_id = "analytics_clicks",
        tag = "Tag::Analytics"
    )]
    async fn analytics_clicks(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// The link's code.
        #[oai(validator(min_length = 1, max_length = 64))]
        short_code: Path<Text>,
        /// Page size.
        #[oai(
            default = "default_click_page",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<Int>,
        /// `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<Text>>,
        /// Only clicks at or after this instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Only clicks before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// The link's short domain (its host); the default domain when absent.
        #[oai(validator(max_length = 253))]
        domain: Query<Option<Text>>,
        /// `json` (default) or `csv`.
        format: Query<Option<ClickFormat>>,
    ) -> ApiResult<OkClicks> {
        let page = state
            .shortener
            .click_log(
                &auth.principal(),
                domain.0.as_ref().map(|d| d.0.as_str()),
                &short_code.0.0,
                ClickOptions {
                    limit: Some(small(limit.0)),
                    cursor: cursor.0.map(|c| c.0),
                    from: from.0,
                    to: to.0,
                },
            )
            .await?;
        let next_cursor = page.next_cursor.map(|c| c.encode());
        if format.0.unwrap_or_default() == ClickFormat::Csv {
            let mut csv = format!("{CLICKS_HEADER}\r\n");
            for click in &page.items {
                click_row(&mut csv, click);
            }
            return Ok(OkClicks::Ok(ClickContent::Csv(PlainText(csv)), next_cursor));
        }
        let list = ClickList {
            items: page.items.into_iter().map(ClickBody::from).collect(),
            next_cursor: next_cursor.clone(),
        };
        Ok(OkClicks::Ok(ClickContent::Json(Json(list)), None))
    }
}

fn default_click_page() -> Int {
    Int(i64::from(hoplink::DEFAULT_CLICK_PAGE))
}
