//! Configuration: every setting, as environment variable and command-line flag.

use clap::{Args, Parser, Subcommand, ValueEnum};
use hoplink::Quota;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::str::FromStr;

/// hoplink: a URL shortener. With no subcommand it serves.
#[derive(Debug, Parser)]
#[command(name = "hoplink", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Ask a running server's `/api/v1/health` (at `BIND`) and exit 0 when it answers 200:
    /// a container health check that needs no curl in the image.
    Healthcheck,
    /// Import links from a CSV file (hoplink's export, Bitly's or Shlink's) into an
    /// account, through the configured stores (`DATABASE_URL`); prints a summary.
    Import {
        /// The email of the account that will own the links.
        #[arg(long)]
        owner: String,
        /// The CSV file.
        file: std::path::PathBuf,
    },
}

/// A rate limit setting: `N/SECONDS` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSetting(pub Option<Quota>);

impl FromStr for QuotaSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quota::parse(s)
            .map(QuotaSetting)
            .map_err(|_| format!("{s:?} is not N/SECONDS (e.g. 20/60) or off"))
    }
}

/// Which event bus carries clicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventBusKind {
    /// In process.
    Memory,
    /// Redis Streams (needs `REDIS_URL`).
    Redis,
    /// Kafka (needs `KAFKA_BROKERS`).
    Kafka,
}

/// What the Redis rate limiter does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RateLimitFailure {
    /// Each instance enforces the limits alone (in memory) until Redis returns.
    Open,
    /// Refuse rate-limited requests with 429 until Redis returns.
    Closed,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

fn batch_size(s: &str) -> Result<usize, String> {
    let max = hoplink::AnalyticsConfig::MAX_BATCH_SIZE;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a whole number from 1 to {max}")),
    }
}

fn positive_u64(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

fn cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8) or an IP address"))
}

fn origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Ok(s.to_string());
    }
    let bad = || format!("{s:?} is not an origin such as https://app.example.com, or *");
    let url = url::Url::parse(s).map_err(|_| bad())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.username().is_empty()
        && !s.ends_with('/');
    if bare { Ok(s.to_string()) } else { Err(bad()) }
}

/// Server settings. Secrets are redacted from `Debug`.
#[derive(Clone, Args)]
pub struct Config {
    /// Listen address.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Prefix of short URLs.
    #[arg(long, env = "BASE_URL", default_value = "http://localhost:8080")]
    pub base_url: String,
    /// `postgres://…`: links, users and analytics in PostgreSQL (default: in memory).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// `redis://…`: shared cache, rate limiter and id blocks (default: in memory).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so deployments can share a Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "hoplink:")]
    pub redis_prefix: String,
    /// With `REDIS_URL`: what rate limits do while Redis is unreachable.
    #[arg(long, env = "RATE_LIMIT_FAILURE", value_enum, default_value = "open")]
    pub rate_limit_failure: RateLimitFailure,
    /// Event bus for clicks.
    #[arg(long, env = "EVENT_BUS", value_enum, default_value = "memory")]
    pub event_bus: EventBusKind,
    /// Kafka bootstrap servers when `EVENT_BUS=kafka`.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topic of click events when `EVENT_BUS=kafka` (created when missing).
    #[arg(long, env = "KAFKA_TOPIC", default_value = "hoplink-clicks")]
    pub kafka_topic: String,
    /// Partitions of the topic when it is created: the most analytics workers that share
    /// the work.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value = "6", value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub kafka_partitions: i32,
    /// HS256 secret of access tokens (default: random per process, with a warning).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Anonymous API requests per client IP: `N/SECONDS` or `off`.
    #[arg(long, env = "RATE_LIMIT_ANON", default_value = "20/60")]
    pub rate_limit_anon: QuotaSetting,
    /// Authenticated API requests per user.
    #[arg(long, env = "RATE_LIMIT_AUTH", default_value = "100/60")]
    pub rate_limit_auth: QuotaSetting,
    /// Registrations per client IP.
    #[arg(long, env = "RATE_LIMIT_REGISTER", default_value = "10/3600")]
    pub rate_limit_register: QuotaSetting,
    /// Logins per client IP.
    #[arg(long, env = "RATE_LIMIT_LOGIN", default_value = "20/300")]
    pub rate_limit_login: QuotaSetting,
    /// Redirects per client IP (flood guard).
    #[arg(long, env = "RATE_LIMIT_REDIRECT", default_value = "600/60")]
    pub rate_limit_redirect: QuotaSetting,
    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = cidr)]
    pub trusted_proxies: Vec<IpNet>,
    /// Header with the client's country, set by a trusted proxy (e.g. `CF-IPCountry`).
    #[arg(long, env = "COUNTRY_HEADER")]
    pub country_header: Option<String>,
    /// Clicks written per batch.
    #[arg(long, env = "ANALYTICS_BATCH_SIZE", default_value = "500", value_parser = batch_size)]
    pub analytics_batch_size: usize,
    /// Longest a click waits before its batch is written, in ms.
    #[arg(long, env = "ANALYTICS_FLUSH_MS", default_value = "1000", value_parser = positive_u64)]
    pub analytics_flush_ms: u64,
    /// Bearer token `/metrics` requires (default: open).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Most open client connections (lowered to what the process may open, with room to
    /// spare); past it new connections get 503 and are closed.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "10000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Most open connections from one client address (trusted proxies excepted); past it
    /// new ones get 429 and are closed.
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value = "1000", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_ip: u32,
    /// Seconds a connection may take to send a request's headers, from when it starts
    /// waiting for them: silent new connections, slow senders and idle keep-alive
    /// connections are closed after it.
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10", value_parser = positive_u64)]
    pub header_read_timeout: u64,
    /// Seconds a refresh token, once exchanged, still gets the same successor back (two
    /// tabs refreshing at once); past it, presenting it again revokes the login.
    #[arg(long, env = "REFRESH_REUSE_GRACE", default_value = "10")]
    pub refresh_reuse_grace: u64,
    /// Comma-separated emails of administrators: they manage domains, the blocklist,
    /// reports and every owner's links. There is no email verification, so register
    /// these accounts before anyone else can.
    #[arg(long, env = "ADMIN_EMAILS", value_delimiter = ',')]
    pub admin_emails: Vec<String>,
    /// A file of blocked host patterns, one per line (`#` comments), read at start and
    /// again on `SIGHUP`; added to those of the API.
    #[arg(long, env = "BLOCKLIST_FILE")]
    pub blocklist_file: Option<std::path::PathBuf>,
    /// A MaxMind DB file (`.mmdb`, country or city edition): the country of clicks and of
    /// `country` redirect rules when no trusted proxy header names one.
    #[arg(long, env = "GEOIP_DB")]
    pub geoip_db: Option<std::path::PathBuf>,
    /// Days raw clicks are kept (`GET /api/v1/analytics/{code}/clicks`); older ones are
    /// deleted every hour. Daily rollups, and so summaries, are kept.
    #[arg(long, env = "CLICK_RETENTION_DAYS", default_value = "90", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub click_retention_days: u32,
    /// Let webhook deliveries go to private and loopback addresses (receivers inside the
    /// operator's network, tests). Refused by default, checked again on the resolved
    /// address at each delivery.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", default_value = "false", action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Comma-separated origins (`https://app.example.com`) whose browser scripts may call
    /// the API; `*` allows any. Empty: no cross-origin access.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_origins: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        let redact_url = |v: &Option<String>| {
            v.as_ref().map(|u| match url_without_password(u) {
                Some(clean) => clean,
                None => "<unparsable>".into(),
            })
        };
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("rate_limit_failure", &self.rate_limit_failure)
            .field("event_bus", &self.event_bus)
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_topic", &self.kafka_topic)
            .field("kafka_partitions", &self.kafka_partitions)
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field("rate_limit_anon", &self.rate_limit_anon)
            .field("rate_limit_auth", &self.rate_limit_auth)
            .field("rate_limit_register", &self.rate_limit_register)
            .field("rate_limit_login", &self.rate_limit_login)
            .field("rate_limit_redirect", &self.rate_limit_redirect)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("country_header", &self.country_header)
            .field("analytics_batch_size", &self.analytics_batch_size)
            .field("analytics_flush_ms", &self.analytics_flush_ms)
            .field("metrics_token", &redact(&self.metrics_token))
            .field("log_format", &self.log_format)
            .field("cors_origins", &self.cors_origins)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("admin_emails", &self.admin_emails)
            .field("blocklist_file", &self.blocklist_file)
            .field("geoip_db", &self.geoip_db)
            .field("click_retention_days", &self.click_retention_days)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .finish()
    }
}

fn url_without_password(raw: &str) -> Option<String> {
    match raw.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((creds, host)) => {
                let user = creds.split(':').next().unwrap_or_default();
                Some(format!("{scheme}://{user}:***@{host}"))
            }
            None => Some(raw.to_string()),
        },
        None => None,
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_args(std::iter::empty::<String>())
            .unwrap_or_else(|e| panic!("the defaults parse: {e}"))
    }
}

impl Config {
    /// Parses flags only (no environment), for tests and embedding.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        let args = std::iter::once(std::ffi::OsString::from("hoplink"))
            .chain(args.into_iter().map(Into::into));
        Only::try_parse_from(args).map(|o| o.config)
    }

    /// The rate limits of the service.
    pub fn rate_limits(&self) -> hoplink::RateLimits {
        hoplink::RateLimits {
            anonymous: self.rate_limit_anon.0,
            authenticated: self.rate_limit_auth.0,
            register: self.rate_limit_register.0,
            login: self.rate_limit_login.0,
            redirect: self.rate_limit_redirect.0,
            // A brute-force guard, not a tuning knob: always on.
            password: hoplink::RateLimits::default().password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_api_md() {
        let c = Config::default();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.base_url, "http://localhost:8080");
        assert_eq!(c.rate_limits(), hoplink::RateLimits::default());
        assert_eq!((c.analytics_batch_size, c.analytics_flush_ms), (500, 1000));
        assert_eq!(c.event_bus, EventBusKind::Memory);
        assert_eq!(c.click_retention_days, 90);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let err = Config::from_args(["--rate-limit-anon", "abc"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("abc") && err.contains("N/SECONDS"), "{err}");
        assert!(Config::from_args(["--analytics-batch-size", "0"]).is_err());
        assert!(Config::from_args(["--analytics-batch-size", "1000000000"]).is_err());
        assert!(Config::from_args(["--trusted-proxies", "10.0.0.0/8,nonsense"]).is_err());
        assert!(Config::from_args(["--event-bus", "rabbit"]).is_err());
        assert!(Config::from_args(["--click-retention-days", "0"]).is_err());
        assert!(Config::from_args(["--cors-origins", "https://a.example/path"]).is_err());
        assert!(Config::from_args(["--cors-origins", "javascript:x"]).is_err());
        let cors = Config::from_args(["--cors-origins", "https://a.example,http://b.example:8080"])
            .unwrap();
        assert_eq!(
            cors.cors_origins,
            ["https://a.example", "http://b.example:8080"]
        );
        let ok = Config::from_args([
            "--rate-limit-redirect",
            "off",
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1",
        ])
        .unwrap();
        assert_eq!(ok.rate_limit_redirect.0, None);
        assert_eq!(ok.trusted_proxies.len(), 2);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config::from_args([
            "--jwt-secret",
            "s3cret",
            "--database-url",
            "postgres://app:hunter2@db/x",
        ])
        .unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
