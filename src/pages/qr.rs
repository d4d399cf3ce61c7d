//! The enrollment QR code as an inline SVG.
//!
//! The `qrcode` crate encodes the otpauth URI into modules (error correction level M, which
//! survives a glare spot or a scratched screen); this module draws them itself rather than
//! using the crate's SVG renderer, for three reasons: the output can go straight into HTML
//! (no XML prolog), it scales with CSS (a `viewBox` and no fixed size), and each row's dark
//! runs become one path segment, which keeps the page small.
//!
//! The symbol is always black on white with the standard four-module quiet zone (ISO/IEC
//! 18004), whatever the page theme, because scanners expect dark modules on a light field.
//! It carries `role="img"`, an `aria-label` and a `<title>`, so screen readers announce it
//! and the pairing code beside it, instead of reading out path data.

use std::fmt::Write;

use maud::{Markup, html};
use qrcode::{Color, EcLevel, QrCode};

/// Width of the light border around the symbol, in modules (ISO/IEC 18004: four).
const QUIET_ZONE: usize = 4;

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The data does not fit in the largest QR code.
    #[error(
        "the otpauth URI ({len} bytes) does not fit in a QR code; shorten the configured \
         issuer or the account name"
    )]
    Encode {
        len: usize,
        #[source]
        source: qrcode::types::QrError,
    },
}

/// Draws `data` as a QR code: an `<svg>` element labelled with `label` for assistive
/// technology. The label is escaped like any template value; the data only appears as
/// modules, drawn as path data made of numbers.
pub fn qr_svg(data: &str, label: &str) -> Result<Markup, QrError> {
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|source| {
            QrError::Encode {
                len: data.len(),
                source,
            }
        })?;
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let view_box = format!("0 0 {size} {size}");
    Ok(html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(view_box) role="img" aria-label=(label)
            shape-rendering="crispEdges" {
            title { (label) }
            rect width=(size) height=(size) fill="#fff" {}
            path fill="#000" d=(module_path(&code.to_colors(), width)) {}
        }
    })
}

/// SVG path data covering every dark module; one `M x y h n v1 h -n z` rectangle per
/// horizontal run of dark modules, offset by the quiet zone.
fn module_path(colors: &[Color], width: usize) -> String {
    let mut d = String::new();
    for (y, row) in colors.chunks(width.max(1)).enumerate() {
        let mut run_start: Option<usize> = None;
        // A light sentinel at the end closes a run that reaches the right edge.
        let cells = row.iter().copied().chain(std::iter::once(Color::Light));
        for (x, color) in cells.enumerate() {
            match (color, run_start) {
                (Color::Dark, None) => run_start = Some(x),
                (Color::Light, Some(start)) => {
                    let len = x - start;
                    let _ = write!(
                        d,
                        "M{} {}h{len}v1h-{len}z",
                        start + QUIET_ZONE,
                        y + QUIET_ZONE
                    );
                    run_start = None;
                }
                _ => {}
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const URI: &str = "otpauth://totp/Acme%20VMS:jan%40example.nl?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%20VMS";

    /// Reconstructs the module grid from the path, to check the drawing against the code.
    fn decode_path(svg: &str, size: usize) -> Vec<bool> {
        let d = svg
            .split(r#" d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut grid = vec![false; size * size];
        for rect in d.split('z').filter(|s| !s.is_empty()) {
            let rest = rect.strip_prefix('M').unwrap();
            let (x, rest) = rest.split_once(' ').unwrap();
            let (y, rest) = rest.split_once('h').unwrap();
            let (len, _) = rest.split_once('v').unwrap();
            let (x, y, len): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), len.parse().unwrap());
            for i in x..x + len {
                assert!(!grid[y * size + i], "module drawn twice");
                grid[y * size + i] = true;
            }
        }
        grid
    }

    #[test]
    fn svg_is_inline_labelled_and_scalable() {
        let svg = qr_svg(URI, "QR code").unwrap().into_string();
        assert!(svg.starts_with("<svg "));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(svg.contains(r#"role="img" aria-label="QR code""#));
        assert!(svg.contains("<title>QR code</title>"));
        assert!(svg.contains(r##"<rect width="##) && svg.contains(r##"fill="#fff""##));
        assert!(svg.contains(r##"<path fill="#000" d="M"##));
        assert!(!svg.contains("width=\"100") && svg.contains("viewBox=\"0 0 "));
    }

    #[test]
    fn drawing_matches_the_encoded_modules() {
        let code = QrCode::with_error_correction_level(URI.as_bytes(), EcLevel::M).unwrap();
        let width = code.width();
        let size = width + 2 * QUIET_ZONE;
        let svg = qr_svg(URI, "x").unwrap().into_string();
        assert!(svg.contains(&format!(r#"viewBox="0 0 {size} {size}""#)));
        let grid = decode_path(&svg, size);
        for (i, color) in code.to_colors().iter().enumerate() {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            assert_eq!(grid[y * size + x], *color == Color::Dark, "module {x},{y}");
        }
        // The quiet zone stays light.
        assert!(grid[..QUIET_ZONE * size].iter().all(|dark| !dark));
        // Top-left finder pattern: a run of seven dark modules at the quiet-zone corner.
        assert!(svg.contains(r#"d="M4 4h7v1h-7z"#));
    }

    #[test]
    fn label_is_escaped_and_data_never_appears_as_text() {
        let svg = qr_svg("<script>alert(1)</script>", r#"a "quoted" <label>"#)
            .unwrap()
            .into_string();
        assert!(svg.contains("aria-label=\"a &quot;quoted&quot; &lt;label&gt;\""));
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<label>"));
        assert!(!svg.contains("alert"));
    }

    #[test]
    fn data_too_long_is_an_error_not_a_panic() {
        let huge = "x".repeat(4000);
        let err = qr_svg(&huge, "x").unwrap_err();
        assert!(err.to_string().contains("4000 bytes"), "{err}");
    }
}
