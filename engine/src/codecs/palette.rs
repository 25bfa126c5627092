//! Palette PNG: quantize to at most 256 colours, optionally dithered, written as an indexed
//! PNG that the lossless PNG pipeline then compresses.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::Rgba8;

/// An indexed PNG (with `tRNS` for alpha and `iCCP` for `icc`) of `image` quantized to at
/// most `colors` colours (2 to 256), error-diffusion dithered when `dither`.
pub(crate) fn quantize(
    image: &Rgba8,
    colors: u16,
    dither: bool,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let _ = (image, colors, dither, icc);
    Err(Error::encode(Format::Png, "quantizer not written yet"))
}
