//! QR codes of short links and URLs (feature `qr`).

use super::Shortener;
use crate::error::{Error, Result};
use crate::qr::{self, QrFormat};
use crate::validate::validate_url;

/// What a QR code encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrContent {
    /// The short URL of an existing link.
    Link {
        /// Its short domain (`None`: the default).
        domain: Option<String>,
        /// Its code.
        short_code: String,
    },
    /// Any http(s) URL.
    Url(String),
}

impl Shortener {
    /// A QR code of a short link or of any http(s) URL.
    pub async fn qr_code(
        &self,
        content: QrContent,
        format: QrFormat,
        size: u32,
    ) -> Result<Vec<u8>> {
        let data = match content {
            QrContent::Link { domain, short_code } => {
                let link = self.link_by_code(domain.as_deref(), &short_code).await?;
                self.short_url(link.domain.as_deref(), &link.short_code)
            }
            QrContent::Url(url) => validate_url("url", &url, &[])?.into(),
        };
        tokio::task::spawn_blocking(move || qr::render(&data, format, size))
            .await
            .map_err(|e| Error::backend("qr", e))?
    }
}
