//! One module per format. Each knows how to read its header, decode frames for the guard, and
//! produce a smaller candidate. FFI and `unsafe` live only in these files.

mod av1;
pub(crate) mod avif;
pub(crate) mod avif_encode;
mod avif_items;
mod gif;
pub(crate) mod jpeg;
pub(crate) mod palette;
pub(crate) mod png;
pub(crate) mod webp;

use crate::error::Result;
use crate::format::Format;
use crate::guard::Frame;
use crate::limits::{Header, Limits};
use crate::options::Options;
use crate::work::Deadline;

/// What a codec made of an image.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    /// A candidate encoding, if the codec produced one.
    pub data: Option<Vec<u8>>,
    /// What was done, or why nothing was.
    pub actions: Vec<String>,
}

impl Attempt {
    pub fn unchanged(why: impl Into<String>) -> Self {
        Self {
            data: None,
            actions: vec![why.into()],
        }
    }
}

/// Reads dimensions, frames and metadata sizes without decoding pixels.
pub(crate) fn probe(format: Format, bytes: &[u8], limits: &Limits) -> Result<Header> {
    match format {
        Format::Png | Format::Apng => png::probe(bytes, limits),
        Format::Jpeg => jpeg::probe(bytes),
        Format::Gif => gif::probe(bytes),
        Format::WebP => webp::probe(bytes),
        Format::Avif => avif::probe(bytes),
    }
}

/// Estimated peak memory of one call, from the header: the input, plus each format's decode
/// times the copies that its decode, encoder and guard hold at once. The copy counts are peak
/// RSS over decoded bytes, measured at budgets of 3 s and 20 s on noisy 1500x1500 images
/// (README, "Memory"), rounded up: PNG 8.1 (16-bit RGBA), JPEG 3.7 (4:4:4), WebP 15.3.
pub(crate) fn peak_memory(format: Format, bytes: &[u8], header: &Header) -> u64 {
    let canvas = header.max_frame_pixels.saturating_mul(4);
    let held = match format {
        // oxipng's and the filter search's working rows; then the guard's two decodes.
        Format::Png | Format::Apng => header.decoded_bytes().saturating_mul(PNG_COPIES),
        // The DCT coefficients of source and output; then the guard's two decodes.
        Format::Jpeg => header.decoded_bytes().saturating_mul(JPEG_COPIES),
        // The encoder's picture and working planes; then the guard's two decodes. A lossy or
        // animated WebP is only decoded, one canvas and one frame at a time.
        Format::WebP if webp::is_lossless_still(bytes) => {
            header.decoded_bytes().saturating_mul(WEBP_COPIES)
        }
        Format::WebP => canvas.saturating_mul(2),
        // One indexed frame at a time.
        Format::Gif => canvas,
        Format::Avif => 0,
    };
    held.saturating_add(bytes.len() as u64)
}

const PNG_COPIES: u64 = 9;
const JPEG_COPIES: u64 = 4;
const WEBP_COPIES: u64 = 16;

/// Seconds one decode of the image takes on one core, estimated from its pixel count
/// (measured in release builds; see README, "Time budget").
pub(crate) fn decode_seconds(format: Format, header: &Header) -> f64 {
    let per_megapixel = match format {
        Format::Png | Format::Apng => 0.03,
        Format::Jpeg => 0.02,
        Format::WebP => 0.03,
        Format::Gif | Format::Avif => 0.0,
    };
    per_megapixel * header.total_pixels as f64 / 1e6
}

/// Whether [`Options::quick`] lowers the effort `optimize` picks for this input at `options`.
pub(crate) fn quick_is_less(
    format: Format,
    bytes: &[u8],
    header: &Header,
    options: &Options,
) -> bool {
    match format {
        Format::Png | Format::Apng => png::quick_is_less(bytes, header, options),
        Format::WebP => webp::quick_is_less(header, options),
        Format::Jpeg | Format::Gif | Format::Avif => false,
    }
}

/// Decodes the input. Returns the frames the pixel-exact guard needs when the codec may
/// produce a candidate; `None` when the format is only validated and kept as it is (GIF,
/// lossy or animated WebP) or cannot be decoded here (AVIF and 12-bit JPEG: header checks
/// only).
pub(crate) fn decode(format: Format, bytes: &[u8], limits: &Limits) -> Result<Option<Vec<Frame>>> {
    match format {
        Format::Png | Format::Apng => png::decode(bytes, limits).map(Some),
        Format::Jpeg => jpeg::decode(bytes, limits),
        Format::Gif => gif::validate(bytes, limits).map(|()| None),
        Format::WebP => webp::decode(bytes),
        Format::Avif => Ok(None),
    }
}

/// Produces a lossless candidate (or none) for an image whose header passed the limits and
/// which decoded.
pub(crate) fn optimize(
    format: Format,
    bytes: &[u8],
    header: &Header,
    options: &Options,
    deadline: &Deadline,
) -> Result<Attempt> {
    match format {
        Format::Png | Format::Apng => png::optimize(bytes, header, options, deadline),
        Format::Jpeg => jpeg::optimize(bytes, options, deadline),
        Format::Gif => Ok(Attempt::unchanged(
            "gif: kept as is (no lossless GIF re-encoder)",
        )),
        Format::WebP => webp::optimize(bytes, header, options, deadline),
        Format::Avif => Ok(Attempt::unchanged(
            "avif: kept as is (re-encoding AV1 is lossy)",
        )),
    }
}
