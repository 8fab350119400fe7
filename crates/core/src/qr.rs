//! QR codes of short URLs, as PNG or SVG.

use crate::error::{Error, Result};
use qrcode::{Color, QrCode};

/// Output format of a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrFormat {
    /// `image/png`, 1 bit per pixel.
    #[default]
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl QrFormat {
    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            QrFormat::Png => "image/png",
            QrFormat::Svg => "image/svg+xml",
        }
    }

    /// Parses `png` or `svg` (any case).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "png" => Ok(QrFormat::Png),
            "svg" => Ok(QrFormat::Svg),
            _ => Err(Error::invalid(
                "format",
                "invalid_format",
                format!("{text:?} is not png or svg"),
            )),
        }
    }
}

/// Smallest image side, in pixels.
pub const MIN_QR_SIZE: u32 = 64;
/// Largest image side, in pixels.
pub const MAX_QR_SIZE: u32 = 2048;
/// Image side when none is asked for.
pub const DEFAULT_QR_SIZE: u32 = 256;
/// Light modules around the code, as the QR specification asks.
const QUIET_ZONE: usize = 4;

/// Renders `data` as a QR code of `size`×`size` pixels.
pub fn render(data: &str, format: QrFormat, size: u32) -> Result<Vec<u8>> {
    if !(MIN_QR_SIZE..=MAX_QR_SIZE).contains(&size) {
        return Err(Error::invalid(
            "size",
            "invalid_size",
            format!("must be between {MIN_QR_SIZE} and {MAX_QR_SIZE} pixels, got {size}"),
        ));
    }
    let code = QrCode::new(data.as_bytes()).map_err(|e| {
        Error::invalid(
            "url",
            "invalid_url",
            format!("cannot be encoded as a QR code: {e}"),
        )
    })?;
    let width = code.width();
    let dark = code.to_colors();
    let is_dark = |x: usize, y: usize| -> bool {
        // Coordinates in modules, quiet zone included.
        x >= QUIET_ZONE
            && y >= QUIET_ZONE
            && x < width + QUIET_ZONE
            && y < width + QUIET_ZONE
            && dark[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Dark
    };
    let modules = width + 2 * QUIET_ZONE;
    match format {
        QrFormat::Svg => Ok(render_svg(modules, size, is_dark).into_bytes()),
        QrFormat::Png => render_png(modules, size, is_dark),
    }
}

fn render_svg(modules: usize, size: u32, is_dark: impl Fn(usize, usize) -> bool) -> String {
    let mut path = String::with_capacity(modules * modules * 4);
    for y in 0..modules {
        for x in 0..modules {
            if is_dark(x, y) {
                path.push_str(&format!("M{x} {y}h1v1h-1z"));
            }
        }
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" "#,
            r#"viewBox="0 0 {m} {m}" shape-rendering="crispEdges">"#,
            r##"<rect width="{m}" height="{m}" fill="#ffffff"/>"##,
            r##"<path d="{path}" fill="#000000"/></svg>"##
        ),
        size = size,
        m = modules,
        path = path
    )
}

fn render_png(
    modules: usize,
    size: u32,
    is_dark: impl Fn(usize, usize) -> bool,
) -> Result<Vec<u8>> {
    let side = size as usize;
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0u8; row_bytes * side];
    // Each pixel takes the module it falls in (nearest neighbour), so the image is
    // exactly `size` pixels wide whatever the module count.
    let module_of: Vec<usize> = (0..side).map(|p| p * modules / side).collect();
    for (py, row) in pixels.chunks_mut(row_bytes).enumerate() {
        for px in 0..side {
            if !is_dark(module_of[px], module_of[py]) {
                row[px / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let fail = |e: png::EncodingError| Error::backend("qr", format!("PNG encoding failed: {e}"));
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&pixels).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_the_asked_size() {
        let png = render("https://sho.rt/abcdefg", QrFormat::Png, 200).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (200, 200));
    }

    #[test]
    fn svg_is_an_svg_document() {
        let svg =
            String::from_utf8(render("https://sho.rt/x", QrFormat::Svg, 64).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains(r#"width="64""#) && svg.ends_with("</svg>"));
    }

    #[test]
    fn refuses_bad_sizes_and_formats() {
        assert!(render("x", QrFormat::Png, 63).is_err());
        assert!(render("x", QrFormat::Png, 2049).is_err());
        assert!(QrFormat::parse("gif").is_err());
        assert_eq!(QrFormat::parse("SVG").unwrap(), QrFormat::Svg);
    }
}
