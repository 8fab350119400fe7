//! QR codes of short links and URLs (feature `qr`).

use super::Shortener;
use crate::code::is_plausible_code;
use crate::error::{Error, Result};
use crate::qr::{self, QrFormat};
use crate::validate::validate_url;

/// What a QR code encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrContent {
    /// The short URL of an existing code.
    ShortCode(String),
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
            QrContent::ShortCode(code) => {
                if !is_plausible_code(&code) {
                    return Err(Error::NotFound { what: "link" });
                }
                self.inner
                    .links
                    .get_by_code(&code)
                    .await?
                    .ok_or(Error::NotFound { what: "link" })?;
                self.short_url(&code)
            }
            QrContent::Url(url) => validate_url("url", &url, None)?.into(),
        };
        tokio::task::spawn_blocking(move || qr::render(&data, format, size))
            .await
            .map_err(|e| Error::backend("qr", e))?
    }
}
