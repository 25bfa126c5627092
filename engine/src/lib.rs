//! picopic's image engine: detect a format from its bytes, check limits from the header,
//! optimize losslessly with tuned per-format encoders, and guard every result.
//!
//! - PNG and APNG: oxipng, effort chosen from the pixel count and [`Options::time_budget`].
//! - JPEG: mozjpeg lossless transcode (progressive, optimized Huffman tables).
//! - WebP lossless: libwebp re-encode at the strongest preset the budget allows.
//! - Lossy or animated WebP, GIF and AVIF: validated and kept as they are.
//!
//! Every result is never bigger than the input, and a changed result decodes to exactly the
//! input's pixels (every channel, bit depth and frame); otherwise the input comes back.
//!
//! ```
//! use picopic_engine::{optimize, Options, Format};
//!
//! // A 1x1 RGBA PNG with an uncompressed (stored) zlib stream.
//! let png = include_bytes!("../../corpus/tiny/rgba8_stored_should_shrink.png");
//! let result = optimize(png, &Options::default()).unwrap();
//! assert_eq!(result.format_in, Format::Png);
//! assert!(result.data.len() <= png.len());
//! ```
#![deny(missing_docs)]

mod codecs;
mod colour;
mod error;
mod format;
mod guard;
mod limits;
mod lossy;
mod metadata;
mod options;
mod pipeline;
mod pixels;
mod work;

pub use error::{Error, Result};
pub use format::{Format, detect};
pub use limits::{Limit, Limits};
pub use lossy::score;
pub use options::{Accept, Metadata, Mode, Options, Output, Target};
pub use pipeline::{Level, Note, Optimized, optimize};
