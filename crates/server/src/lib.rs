//! `hoplink-server`: the HTTP server of hoplink, a thin adapter over
//! [`hoplink::Shortener`].
//!
//! The binary is `hoplink`: with no subcommand it serves, `hoplink openapi` prints the
//! OpenAPI document. [`start`] runs the same server inside another program (the
//! end-to-end tests use it).
//!
//! - [`routes`]: the route table, the one list of every path.
//! - `serve`: hyper's connection loop; recognises each request by the table, answers
//!   redirects and pages itself, hands API operations to poem-openapi ([`api`]).
//! - [`http`]: request ids, client addresses, the API layer (body limit, credentials,
//!   rate limits); [`problem`]: every error as an RFC 9457 problem document.
//! - [`spec`]: the OpenAPI document, completed from the table.

pub mod api;
mod compress;
pub mod config;
pub mod conn;
mod cors;
mod dashboard;
mod head_timer;
mod html;
pub mod http;
pub mod metrics;
mod pages;
pub mod problem;
mod redirect;
mod redirect_headers;
pub mod routes;
mod serve;
pub mod spec;
pub mod state;

use crate::config::{Config, EventBusKind, LogFormat, RateLimitFailure};
use crate::http::ApiGuard;
use crate::metrics::{BackendCounter, Metrics};
use crate::state::AppState;
use hoplink::{AnalyticsConfig, Shortener};
use poem::{Endpoint, EndpointExt, IntoEndpoint};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Largest accepted request body (a full bulk request fits).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// A setting is unusable.
    Config(String),
    /// The listener could not bind.
    Bind(std::io::Error),
}

impl std::error::Error for StartError {}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(m) => write!(f, "invalid configuration: {m}"),
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

fn secret_u64(secret: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // Stable across processes and builds (SipHash with fixed keys, via DefaultHasher::new).
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x686f_706c, 0x696e_6b21);
    secret.hash(&mut h);
    h.finish()
}

/// Builds the service from the configuration, connecting to the configured backends.
pub async fn build_shortener(config: &Config) -> Result<Shortener, StartError> {
    build(config).await.map(|(shortener, _)| shortener)
}

/// A Kafka delivery counter: name, help, and the field of the bus's stats.
type KafkaCounter = (
    &'static str,
    &'static str,
    fn(hoplink_kafka::KafkaStats) -> u64,
);

/// The service and the counters its backends keep for `/metrics`.
async fn build(config: &Config) -> Result<(Shortener, Vec<BackendCounter>), StartError> {
    let mut counters = Vec::new();
    let mut builder = Shortener::builder();
    if let Some(url) = &config.database_url {
        let store = hoplink_postgres::PgStore::connect(url)
            .await
            .map_err(|e| StartError::Config(format!("DATABASE_URL: {e}")))?;
        tracing::info!("links, users and analytics in PostgreSQL");
        let store = Arc::new(store);
        builder = builder.store(store.clone()).id_allocator(store);
    }
    let redis = match &config.redis_url {
        Some(url) => {
            let options = hoplink_redis::RedisOptions::new(url).prefix(&config.redis_prefix);
            let redis = hoplink_redis::Redis::connect_with(options)
                .await
                .map_err(|e| StartError::Config(format!("REDIS_URL: {e}")))?;
            let on_failure = match config.rate_limit_failure {
                RateLimitFailure::Open => hoplink_redis::FailurePolicy::Open,
                RateLimitFailure::Closed => hoplink_redis::FailurePolicy::Closed,
            };
            let limiter = redis.rate_limiter(on_failure);
            let reading = limiter.clone();
            counters.push(BackendCounter {
                name: "hoplink_rate_limit_fallbacks_total",
                help: "Rate-limit decisions made without Redis while it was unreachable.",
                read: Box::new(move || reading.fallback_decisions()),
            });
            builder = builder
                .cache(Arc::new(redis.cache()))
                .rate_limiter(Arc::new(limiter));
            // A PostgreSQL sequence outlives a Redis without persistence: prefer it.
            if config.database_url.is_none() {
                builder = builder.id_allocator(Arc::new(redis.id_allocator()));
            }
            tracing::info!("shared cache, rate limits and invalidation on Redis");
            Some(redis)
        }
        None => None,
    };
    match config.event_bus {
        EventBusKind::Memory => {}
        EventBusKind::Redis => {
            let Some(redis) = &redis else {
                return Err(StartError::Config("EVENT_BUS=redis needs REDIS_URL".into()));
            };
            builder = builder.event_bus(Arc::new(
                redis.event_bus(hoplink_redis::StreamOptions::default()),
            ));
            tracing::info!("click events on a Redis stream");
        }
        EventBusKind::Kafka => {
            let Some(brokers) = &config.kafka_brokers else {
                return Err(StartError::Config(
                    "EVENT_BUS=kafka needs KAFKA_BROKERS".into(),
                ));
            };
            let options = hoplink_kafka::KafkaOptions {
                partitions: config.kafka_partitions,
                ..hoplink_kafka::KafkaOptions::new(brokers).topic(&config.kafka_topic)
            };
            let bus = hoplink_kafka::KafkaEventBus::connect(options)
                .await
                .map_err(|e| StartError::Config(format!("KAFKA_BROKERS: {e}")))?;
            let kafka_counters: [KafkaCounter; 3] = [
                (
                    "hoplink_kafka_events_delivered_total",
                    "Click events the Kafka broker acknowledged.",
                    |s| s.delivered,
                ),
                (
                    "hoplink_kafka_delivery_failures_total",
                    "Click events the Kafka producer gave up on.",
                    |s| s.failed,
                ),
                (
                    "hoplink_kafka_queue_full_total",
                    "Publishes refused because the Kafka producer's queue was full.",
                    |s| s.queue_full,
                ),
            ];
            for (name, help, field) in kafka_counters {
                let reading = bus.clone();
                counters.push(BackendCounter {
                    name,
                    help,
                    read: Box::new(move || field(reading.stats())),
                });
            }
            builder = builder.event_bus(Arc::new(bus));
            tracing::info!(topic = %config.kafka_topic, "click events on Kafka");
        }
    }
    if let Some(path) = &config.geoip_db {
        let geoip = hoplink::GeoIp::open(path).map_err(|e| {
            StartError::Config(format!(
                "GEOIP_DB: {}",
                match &e {
                    hoplink::Error::Invalid { reason, .. } => reason.clone(),
                    other => other.to_string(),
                }
            ))
        })?;
        tracing::info!(path = %path.display(), "countries from the GeoIP database");
        builder = builder.geoip(geoip);
    }
    builder = builder
        .base_url(config.base_url.clone())
        .reserved_aliases(routes::reserved_names())
        .admin_emails(&config.admin_emails)
        .refresh_grace(Duration::from_secs(config.refresh_reuse_grace))
        .webhooks_allow_private(config.webhook_allow_private)
        .click_retention(Duration::from_secs(
            u64::from(config.click_retention_days) * 86_400,
        ))
        .rate_limits(config.rate_limits())
        .analytics(AnalyticsConfig {
            batch_size: config.analytics_batch_size,
            flush_interval: Duration::from_millis(config.analytics_flush_ms),
            ..AnalyticsConfig::default()
        });
    match &config.jwt_secret {
        Some(secret) if secret.len() < 16 => {
            return Err(StartError::Config(
                "JWT_SECRET must be at least 16 characters".into(),
            ));
        }
        Some(secret) => {
            builder = builder
                .jwt_secret(secret.as_bytes().to_vec())
                .code_secret(secret_u64(secret));
        }
        None => tracing::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens die with this process and instances cannot share them"
        ),
    }
    let shortener = builder
        .build()
        .map_err(|e| StartError::Config(e.to_string()))?;
    Ok((shortener, counters))
}

/// The OpenAPI document the server serves (and `openapi/openapi.json` holds).
pub fn openapi_document() -> String {
    spec::complete(&api::service().spec())
}

/// The page of `/docs`: Swagger UI over the completed document.
fn docs_page(document: &str) -> String {
    let service = api::service();
    service.swagger_ui_html().replace(&service.spec(), document)
}

/// The API: poem-openapi's operations behind the API layer.
fn app(state: Arc<AppState>) -> impl Endpoint<Output = poem::Response> {
    ApiGuard {
        inner: api::service().into_endpoint().data(state.clone()),
        state,
    }
}

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The service (for tests and embedding).
    pub shortener: Shortener,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    app: Arc<poem::endpoint::BoxEndpoint<'static, poem::Response>>,
    state: Arc<AppState>,
}

impl Server {
    /// Serves one connection over `stream` (any byte stream, such as one end of
    /// [`tokio::io::duplex`]) as if it came from `peer`: the same answers as over TCP,
    /// without the network, the listener or its connection limits. For benchmarks and
    /// tests that measure or drive the server alone.
    pub fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        serve::serve_stream(
            self.app.clone(),
            self.state.clone(),
            self.addr,
            peer,
            stream,
        );
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, then drains and flushes clicks.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        };
        self.shortener.shutdown().await;
        served
    }

    /// Waits until the server stops on its own or `signal` fires, then stops it.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        signal.await;
        tracing::info!("shutting down: finishing requests, flushing clicks");
        self.stop().await
    }
}

/// Starts the server on `config.bind` (port 0 picks a free port).
pub async fn start(config: Config) -> Result<Server, StartError> {
    let (shortener, counters) = build(&config).await?;
    let bind = config.bind;
    let document = openapi_document();
    let state = Arc::new(AppState {
        shortener: shortener.clone(),
        config,
        metrics: Arc::new(Metrics::with_backend_counters(counters)),
        docs_html: docs_page(&document),
        compressed_pages: Default::default(),
        spec: serde_json::from_str(&document).unwrap_or_default(),
        document,
    });
    if let Some(path) = &state.config.blocklist_file {
        let count = load_blocklist_file(&state.shortener, path)
            .map_err(|e| StartError::Config(format!("BLOCKLIST_FILE: {e}")))?;
        tracing::info!(path = %path.display(), count, "blocklist file read; SIGHUP reads it again");
        tokio::spawn(reload_blocklist_on_hangup(
            state.shortener.clone(),
            path.clone(),
        ));
    }
    match state.shortener.unclaimed_admin_emails().await {
        Ok(unclaimed) => {
            for email in unclaimed {
                tracing::warn!(
                    %email,
                    "ADMIN_EMAILS names an address with no account yet: whoever registers it first becomes an administrator; register it now"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check ADMIN_EMAILS against the accounts"),
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let (tx, rx) = oneshot::channel::<()>();
    let endpoint = Arc::new(app(state.clone()).boxed());
    let task = tokio::spawn(serve::serve(
        listener,
        endpoint.clone(),
        state.clone(),
        rx,
        Duration::from_secs(30),
    ));
    tracing::info!(%addr, "listening");
    Ok(Server {
        addr,
        shortener,
        shutdown: Some(tx),
        task,
        app: endpoint,
        state,
    })
}

/// Reads a blocklist file (one host pattern per line, `#` comments) into the service.
fn load_blocklist_file(shortener: &Shortener, path: &std::path::Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let patterns = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty());
    shortener
        .set_file_blocklist(patterns)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the blocklist file again on every `SIGHUP`; a file that can't be read leaves
/// the patterns as they were.
async fn reload_blocklist_on_hangup(shortener: Shortener, path: std::path::PathBuf) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the blocklist file is read at start only");
            return;
        };
        while hangups.recv().await.is_some() {
            match load_blocklist_file(&shortener, &path) {
                Ok(count) => tracing::info!(count, "blocklist file read again"),
                Err(e) => {
                    tracing::error!(error = %e, "blocklist file not read; keeping the patterns in use")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (shortener, path);
}

/// Sets up logging (`RUST_LOG` filters, default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
