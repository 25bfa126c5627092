//! AVIF encoding with ravif (rav1e).

use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::Rgba8;

/// An AVIF of `image` at ravif `quality` (1 to 100) and rav1e `speed` (1 slowest to 10);
/// alpha, when any pixel is not opaque, encoded as an alpha item.
pub(crate) fn encode(image: &Rgba8, quality: f32, speed: u8) -> Result<Vec<u8>> {
    let _ = (image, quality, speed);
    Err(Error::encode(Format::Avif, "encoder not written yet"))
}
