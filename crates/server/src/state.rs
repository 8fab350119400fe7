//! What every handler shares.

use crate::config::Config;
use crate::metrics::Metrics;
use hoplink::Shortener;

/// The service, its configuration, its metrics and its documents.
#[derive(Debug)]
pub struct AppState {
    /// The service.
    pub shortener: Shortener,
    /// The configuration it was built from.
    pub config: Config,
    /// Request metrics.
    pub metrics: Metrics,
    /// The OpenAPI document served at `/openapi.json`.
    pub document: String,
    /// The same document, parsed (to explain refused requests by its rules).
    pub spec: serde_json::Value,
    /// The page served at `/docs`.
    pub docs_html: String,
}
