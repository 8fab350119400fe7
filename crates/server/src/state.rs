//! What every handler shares.

use crate::config::Config;
use crate::metrics::Metrics;
use hoplink::Shortener;

/// The service, its configuration and its metrics.
#[derive(Debug)]
pub struct AppState {
    /// The service.
    pub shortener: Shortener,
    /// The configuration it was built from.
    pub config: Config,
    /// Request metrics.
    pub metrics: Metrics,
}
