//! The one error type of the engine.

use crate::format::Format;
use crate::limits::Limit;

/// Everything that can go wrong while optimizing an image.
///
/// Each variant belongs to one stage of the pipeline, so callers can map them to their own
/// answers (the HTTP shell maps them to status codes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a PNG, APNG, JPEG, GIF, WebP or AVIF image.
    #[error("not a supported image: expected PNG, JPEG, GIF, WebP or AVIF")]
    UnsupportedFormat,
    /// The image, as its header describes it, is larger than a configured limit.
    #[error("image exceeds the {limit} limit: {actual} > {max}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The value the input asks for.
        actual: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The image is malformed, truncated or uses a feature the decoder lacks.
    #[error("cannot decode {format}: {reason}")]
    Decode {
        /// The detected format.
        format: Format,
        /// What the decoder reported.
        reason: String,
    },
    /// An encoder failed on an image that decoded fine.
    #[error("cannot encode {format}: {reason}")]
    Encode {
        /// The format being written.
        format: Format,
        /// What the encoder reported.
        reason: String,
    },
    /// An [`Options`](crate::Options) value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The deadline in [`Options::deadline`](crate::Options::deadline) passed.
    #[error("deadline of {0:?} exceeded")]
    Deadline(std::time::Duration),
}

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn decode(format: Format, reason: impl std::fmt::Display) -> Self {
        Self::Decode {
            format,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn encode(format: Format, reason: impl std::fmt::Display) -> Self {
        Self::Encode {
            format,
            reason: reason.to_string(),
        }
    }
}
