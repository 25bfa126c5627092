//! Resource limits, checked against the header before any pixel buffer exists.

use std::fmt;

use crate::error::{Error, Result};

/// Caps on what one input may ask of the machine. Every format, animations included, is
/// checked against them from its header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted input, in bytes. Default: 64 MiB.
    pub max_input_bytes: u64,
    /// Largest canvas or frame, in pixels. Default: 64 megapixels.
    pub max_pixels: u64,
    /// Longest side of the canvas or of a frame. Default: 32768.
    pub max_dimension: u32,
    /// Most frames in an animation. Default: 1000.
    pub max_frames: u64,
    /// Most pixels summed over all frames of an animation. Default: 256 megapixels.
    pub max_animation_pixels: u64,
    /// Most metadata (ICC, EXIF, XMP, text), in bytes after inflating. Default: 4 MiB.
    pub max_metadata_bytes: u64,
    /// Most memory one call may need, as estimated from the header before decoding: the
    /// input, plus the decoded pixels times the copies the engine holds at once for that
    /// format. Set it from the memory the caller can give one image. Default: 8 GiB.
    pub max_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 << 20,
            max_pixels: 64_000_000,
            max_dimension: 32768,
            max_frames: 1000,
            max_animation_pixels: 256_000_000,
            max_metadata_bytes: 4 << 20,
            max_memory_bytes: 8 << 30,
        }
    }
}

/// Names one of the [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_input_bytes`].
    InputBytes,
    /// [`Limits::max_pixels`].
    Pixels,
    /// [`Limits::max_dimension`].
    Dimension,
    /// [`Limits::max_frames`].
    Frames,
    /// [`Limits::max_animation_pixels`].
    AnimationPixels,
    /// [`Limits::max_metadata_bytes`].
    MetadataBytes,
    /// [`Limits::max_memory_bytes`].
    Memory,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InputBytes => "input size",
            Self::Pixels => "pixel count",
            Self::Dimension => "dimension",
            Self::Frames => "frame count",
            Self::AnimationPixels => "animation pixel count",
            Self::MetadataBytes => "metadata size",
            Self::Memory => "memory",
        })
    }
}

/// What a header tells about an image, gathered without decoding pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// Frames in the image; 1 for a still.
    pub frames: u64,
    /// Largest frame side seen (frames may differ from the canvas).
    pub max_frame_side: u32,
    /// Largest frame, in pixels.
    pub max_frame_pixels: u64,
    /// Pixels summed over frames.
    pub total_pixels: u64,
    /// Metadata bytes, inflated where the format compresses them.
    pub metadata_bytes: u64,
    /// Bytes per pixel of the engine's decode (channels times 1 or 2 bytes a sample); 0 for
    /// a format the engine does not decode.
    pub bytes_per_pixel: u8,
}

impl Header {
    /// A still image of one frame.
    pub fn still(width: u32, height: u32) -> Self {
        let mut header = Self {
            width,
            height,
            ..Self::default()
        };
        header.add_frame(width, height);
        header
    }

    pub fn add_frame(&mut self, width: u32, height: u32) {
        let pixels = u64::from(width) * u64::from(height);
        self.frames += 1;
        self.max_frame_side = self.max_frame_side.max(width).max(height);
        self.max_frame_pixels = self.max_frame_pixels.max(pixels);
        self.total_pixels = self.total_pixels.saturating_add(pixels);
    }

    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Bytes of one decode of every frame.
    pub fn decoded_bytes(&self) -> u64 {
        self.total_pixels
            .saturating_mul(u64::from(self.bytes_per_pixel))
    }
}

impl Limits {
    pub(crate) fn check_input(&self, len: usize) -> Result<()> {
        exceeds(Limit::InputBytes, len as u64, self.max_input_bytes)
    }

    /// Checks the estimated peak memory of one call.
    pub(crate) fn check_memory(&self, bytes: u64) -> Result<()> {
        exceeds(Limit::Memory, bytes, self.max_memory_bytes)
    }

    pub(crate) fn check_metadata(&self, bytes: u64) -> Result<()> {
        exceeds(Limit::MetadataBytes, bytes, self.max_metadata_bytes)
    }

    /// Checks a header; zero-sized canvases are malformed rather than over a limit.
    pub(crate) fn check(&self, header: &Header) -> Result<()> {
        let side = header.width.max(header.height).max(header.max_frame_side);
        exceeds(Limit::Dimension, side.into(), self.max_dimension.into())?;
        exceeds(Limit::Pixels, header.pixels(), self.max_pixels)?;
        exceeds(Limit::Pixels, header.max_frame_pixels, self.max_pixels)?;
        exceeds(Limit::Frames, header.frames, self.max_frames)?;
        exceeds(
            Limit::AnimationPixels,
            header.total_pixels,
            self.max_animation_pixels,
        )?;
        self.check_metadata(header.metadata_bytes)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let fields = [
            ("max_input_bytes", self.max_input_bytes),
            ("max_pixels", self.max_pixels),
            ("max_dimension", self.max_dimension.into()),
            ("max_frames", self.max_frames),
            ("max_animation_pixels", self.max_animation_pixels),
            ("max_memory_bytes", self.max_memory_bytes),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(Error::InvalidOption(format!(
                "limits.{name} must be at least 1"
            ))),
            None => Ok(()),
        }
    }
}

fn exceeds(limit: Limit, actual: u64, max: u64) -> Result<()> {
    if actual > max {
        Err(Error::LimitExceeded { limit, actual, max })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn animation_totals_are_capped() {
        let limits = Limits {
            max_animation_pixels: 1000,
            ..Limits::default()
        };
        let mut header = Header::still(10, 10);
        for _ in 0..9 {
            header.add_frame(10, 10);
        }
        assert!(limits.check(&header).is_ok());
        header.add_frame(1, 1);
        let err = limits.check(&header).unwrap_err();
        assert!(matches!(
            err,
            Error::LimitExceeded {
                limit: Limit::AnimationPixels,
                actual: 1001,
                max: 1000
            }
        ));
    }

    #[test]
    fn frame_larger_than_canvas_is_caught() {
        let limits = Limits {
            max_pixels: 100,
            ..Limits::default()
        };
        let mut header = Header::still(10, 10);
        header.add_frame(11, 10);
        assert!(matches!(
            limits.check(&header),
            Err(Error::LimitExceeded {
                limit: Limit::Pixels,
                ..
            })
        ));
    }
}
