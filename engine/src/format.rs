//! Image formats and detection from magic bytes.

use std::fmt;

use crate::error::{Error, Result};

/// An image format the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Still PNG.
    Png,
    /// Animated PNG (a PNG with an `acTL` chunk before its image data).
    Apng,
    /// JPEG (JFIF, EXIF or bare).
    Jpeg,
    /// GIF, still or animated.
    Gif,
    /// WebP: lossy, lossless or animated.
    WebP,
    /// AVIF (HEIF container with AV1 images).
    Avif,
}

impl Format {
    /// The MIME type of the format.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Apng => "image/apng",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// The usual file extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png | Self::Apng => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Avif => "avif",
        }
    }

    /// A short lowercase name, as used in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Apng => "apng",
            Self::Jpeg => "jpeg",
            Self::Gif => "gif",
            Self::WebP => "webp",
            Self::Avif => "avif",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Detects the format from the leading bytes only; the file name plays no part.
///
/// # Errors
/// [`Error::UnsupportedFormat`] when no known signature matches.
///
/// ```
/// use picopic_engine::{detect, Format};
/// assert_eq!(detect(b"GIF89a\x01\x00\x01\x00").unwrap(), Format::Gif);
/// assert!(detect(b"<html>").is_err());
/// ```
pub fn detect(bytes: &[u8]) -> Result<Format> {
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(if png_is_animated(bytes) {
            Format::Apng
        } else {
            Format::Png
        });
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    if is_avif(bytes) {
        return Ok(Format::Avif);
    }
    Err(Error::UnsupportedFormat)
}

/// Walks PNG chunks up to the first `IDAT`, looking for `acTL`.
fn png_is_animated(bytes: &[u8]) -> bool {
    let mut pos = PNG_SIGNATURE.len();
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"acTL" => return true,
            b"IDAT" | b"IEND" => return false,
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    false
}

/// An ISO-BMFF `ftyp` box whose major or compatible brands name AVIF.
fn is_avif(bytes: &[u8]) -> bool {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return false;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = size.min(bytes.len()).min(4096);
    if end < 16 {
        return false;
    }
    let major = &bytes[8..12];
    let compatible = bytes[16..end].chunks_exact(4);
    std::iter::once(major)
        .chain(compatible)
        .any(|brand| brand == b"avif" || brand == b"avis")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(detect(b"\xFF\xD8\xFF\xE0").unwrap(), Format::Jpeg);
        assert_eq!(detect(b"GIF87a").unwrap(), Format::Gif);
        assert_eq!(detect(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), Format::WebP);
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        assert_eq!(detect(avif).unwrap(), Format::Avif);
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert!(detect(heic).is_err());
        assert!(detect(b"").is_err());
        assert!(detect(b"RIFF\0\0\0\0WAVE").is_err());
    }

    #[test]
    fn apng_needs_actl_before_idat() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(&[0, 0, 0, 8]);
        png.extend_from_slice(b"acTL");
        png.extend_from_slice(&[0; 12]);
        assert_eq!(detect(&png).unwrap(), Format::Apng);
        let mut still = PNG_SIGNATURE.to_vec();
        still.extend_from_slice(&[0, 0, 0, 0]);
        still.extend_from_slice(b"IDAT");
        still.extend_from_slice(&[0; 4]);
        still.extend_from_slice(&[0, 0, 0, 8]);
        still.extend_from_slice(b"acTL");
        assert_eq!(detect(&still).unwrap(), Format::Png);
    }
}
