//! `/api/v1/qr`: QR codes of short links and URLs.

use super::input::{Int, Text};
use super::{ApiResult, Tag, small};
use crate::state::AppState;
use hoplink::{QrContent, QrFormat};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, ResponseContent};
use std::sync::Arc;

/// Image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ImageFormat {
    /// `image/png` (default).
    #[default]
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl From<ImageFormat> for QrFormat {
    fn from(f: ImageFormat) -> QrFormat {
        match f {
            ImageFormat::Png => QrFormat::Png,
            ImageFormat::Svg => QrFormat::Svg,
        }
    }
}

/// What to encode: exactly one of `url` and `short_code`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct QrBody {
    /// Any public http(s) URL.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub url: Option<Text>,
    /// An existing short code (its short URL is encoded).
    #[oai(
        validator(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_-]+$"),
        nullable
    )]
    pub short_code: Option<Text>,
    /// The short domain of `short_code` (its host); the default domain when absent.
    #[oai(
        validator(min_length = 1, max_length = 253, pattern = r"^[A-Za-z0-9.-]+$"),
        nullable
    )]
    pub domain: Option<Text>,
    /// Image format (default `png`).
    #[oai(nullable)]
    pub format: Option<ImageFormat>,
    /// Side in pixels (default 256).
    #[oai(validator(minimum(value = "64"), maximum(value = "2048")), nullable)]
    pub size: Option<Int>,
}

impl poem_openapi::types::Example for QrBody {
    fn example() -> Self {
        QrBody {
            url: None,
            short_code: Some("launch".into()),
            domain: None,
            format: Some(ImageFormat::Svg),
            size: Some(Int(512)),
        }
    }
}

/// A QR code image.
#[derive(ResponseContent)]
pub enum QrImage {
    /// PNG.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// SVG.
    #[oai(content_type = "image/svg+xml")]
    Svg(Binary<Vec<u8>>),
}

#[derive(ApiResponse)]
enum OkQr {
    /// The image.
    #[oai(status = 200)]
    Ok(QrImage),
}

fn qr_image(format: QrFormat, bytes: Vec<u8>) -> OkQr {
    OkQr::Ok(match format {
        QrFormat::Png => QrImage::Png(Binary(bytes)),
        QrFormat::Svg => QrImage::Svg(Binary(bytes)),
    })
}

fn default_size() -> Int {
    Int(i64::from(hoplink::DEFAULT_QR_SIZE))
}

pub struct QrApi;

#[OpenApi]
impl QrApi {
    /// QR code of a short link
    #[oai(
        path = "/api/v1/qr/:short_code",
        method = "get",
        operation_id = "qr_of_link",
        tag = "Tag::Qr"
    )]
    async fn qr_of_code(
        &self,
        state: Data<&Arc<AppState>>,
        /// The link's code.
        #[oai(validator(min_length = 1, max_length = 64))]
        short_code: Path<Text>,
        /// Image format.
        format: Query<Option<ImageFormat>>,
        /// Side in pixels.
        #[oai(
            default = "default_size",
            validator(minimum(value = "64"), maximum(value = "2048"))
        )]
        size: Query<Int>,
        /// The link's short domain (its host); the default domain when absent.
        #[oai(validator(max_length = 253))]
        domain: Query<Option<Text>>,
    ) -> ApiResult<OkQr> {
        let format = QrFormat::from(format.0.unwrap_or_default());
        let content = QrContent::Link {
            domain: domain.0.map(Text::into_inner),
            short_code: short_code.0.0,
        };
        let bytes = state
            .shortener
            .qr_code(content, format, small(size.0))
            .await?;
        Ok(qr_image(format, bytes))
    }

    /// QR code of a URL or a short code
    #[oai(
        path = "/api/v1/qr",
        method = "post",
        operation_id = "qr_of_url_or_link",
        tag = "Tag::Qr"
    )]
    async fn qr(&self, state: Data<&Arc<AppState>>, body: Json<QrBody>) -> ApiResult<OkQr> {
        let body = body.0;
        let content = match (body.url, body.short_code) {
            (Some(url), None) => QrContent::Url(url.0),
            (None, Some(code)) => QrContent::Link {
                domain: body.domain.map(Text::into_inner),
                short_code: code.0,
            },
            _ => {
                return Err(hoplink::Error::invalid(
                    "url",
                    "invalid_qr_request",
                    "give exactly one of url and short_code",
                )
                .into());
            }
        };
        let format = QrFormat::from(body.format.unwrap_or_default());
        let size = body.size.map_or(hoplink::DEFAULT_QR_SIZE, small);
        let bytes = state.shortener.qr_code(content, format, size).await?;
        Ok(qr_image(format, bytes))
    }
}
