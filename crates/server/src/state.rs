//! What every handler shares.

use crate::compress::Encoding;
use crate::config::Config;
use crate::metrics::Metrics;
use hoplink::Shortener;
use hyper::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The service, its configuration, its metrics and its documents.
#[derive(Debug)]
pub struct AppState {
    /// The service.
    pub shortener: Shortener,
    /// The configuration it was built from.
    pub config: Config,
    /// Request and connection metrics.
    pub metrics: Arc<Metrics>,
    /// The OpenAPI document served at `/openapi.json`.
    pub document: String,
    /// The same document, parsed (to explain refused requests by its rules).
    pub spec: serde_json::Value,
    /// The page served at `/docs`.
    pub docs_html: String,
    /// Pages compressed once per encoding.
    pub compressed_pages: Mutex<HashMap<(&'static str, Encoding), Bytes>>,
}
