//! One module per format. Each knows how to read its header, decode frames for the guard, and
//! produce a smaller candidate. FFI and `unsafe` live only in these files.

mod avif;
mod gif;
mod jpeg;
mod png;
mod webp;

use crate::error::Result;
use crate::format::Format;
use crate::guard::Frame;
use crate::limits::{Header, Limits};
use crate::options::Options;
use crate::pipeline::Deadline;

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

/// Decodes the input. Returns the frames the pixel-exact guard needs when the codec may
/// produce a candidate; `None` when the format is only validated and kept as it is (GIF,
/// lossy or animated WebP) or cannot be decoded here (AVIF: header checks only).
pub(crate) fn decode(format: Format, bytes: &[u8], limits: &Limits) -> Result<Option<Vec<Frame>>> {
    match format {
        Format::Png | Format::Apng => png::decode(bytes, limits).map(Some),
        Format::Jpeg => jpeg::decode(bytes, limits).map(Some),
        Format::Gif => gif::validate(bytes, limits).map(|()| None),
        Format::WebP => webp::decode(bytes),
        Format::Avif => Ok(None),
    }
}

/// Produces a lossless candidate (or none) for an image whose header passed the limits;
/// `frames` are the decoded input.
pub(crate) fn optimize(
    format: Format,
    bytes: &[u8],
    header: &Header,
    frames: &[Frame],
    options: &Options,
    deadline: &Deadline,
) -> Result<Attempt> {
    match format {
        Format::Png | Format::Apng => png::optimize(bytes, header, options, deadline),
        Format::Jpeg => jpeg::optimize(bytes, options),
        Format::Gif => Ok(Attempt::unchanged(
            "gif: kept as is (no lossless GIF re-encoder)",
        )),
        Format::WebP => webp::optimize(bytes, header, frames, options, deadline),
        Format::Avif => Ok(Attempt::unchanged(
            "avif: kept as is (re-encoding AV1 is lossy)",
        )),
    }
}
