//! What the caller asks of [`optimize`](crate::optimize).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::Limits;

/// How pixels may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Every output pixel equals its input pixel; only the encoding changes.
    #[default]
    Lossless,
    /// Pixels may change as long as the output, decoded, scores at least the target against
    /// the input as displayed.
    Lossy(Target),
}

/// A SSIMULACRA2 score that a lossy result must reach (0 to 100; 100 is identical).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target(f32);

// Scores are finite: `Target::new` refuses NaN.
impl Eq for Target {}

impl Target {
    /// 90: differences are hard to see even side by side.
    pub const VISUALLY_LOSSLESS: Self = Self(90.0);
    /// 80: the default lossy target.
    pub const HIGH: Self = Self(80.0);
    /// 70: visible on close inspection.
    pub const MEDIUM: Self = Self(70.0);

    /// A target score.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] outside 0 to 100.
    pub fn new(score: f32) -> Result<Self> {
        if (0.0..=100.0).contains(&score) {
            Ok(Self(score))
        } else {
            Err(Error::InvalidOption(format!(
                "target must be a score from 0 to 100, not {score}"
            )))
        }
    }

    /// The score.
    #[must_use]
    pub fn score(self) -> f32 {
        self.0
    }
}

impl Default for Target {
    fn default() -> Self {
        Self::HIGH
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    /// `visually-lossless`, `high`, `medium`, or a score such as `85`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "visually-lossless" => Ok(Self::VISUALLY_LOSSLESS),
            "high" => Ok(Self::HIGH),
            "medium" => Ok(Self::MEDIUM),
            _ => s
                .parse::<f32>()
                .map_err(|_| {
                    Error::InvalidOption(format!(
                        "target must be visually-lossless, high, medium or a score, not {s:?}"
                    ))
                })
                .and_then(Self::new),
        }
    }
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Output {
    /// The input's format.
    #[default]
    Keep,
    /// The smallest result among the formats in [`Options::accept`].
    Auto,
    /// JPEG (lossy only; never for images with transparency).
    Jpeg,
    /// PNG (lossy: a palette PNG).
    Png,
    /// WebP (lossy).
    WebP,
    /// AVIF (lossy).
    Avif,
}

impl std::str::FromStr for Output {
    type Err = Error;

    /// `keep`, `auto`, `jpeg` (or `jpg`), `png`, `webp`, `avif`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keep" => Ok(Self::Keep),
            "auto" => Ok(Self::Auto),
            "jpeg" | "jpg" => Ok(Self::Jpeg),
            "png" => Ok(Self::Png),
            "webp" => Ok(Self::WebP),
            "avif" => Ok(Self::Avif),
            _ => Err(Error::InvalidOption(format!(
                "format must be keep, auto, jpeg, png, webp or avif, not {s:?}"
            ))),
        }
    }
}

/// The formats [`Output::Auto`] may choose from. Default: all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Accept {
    /// JPEG.
    pub jpeg: bool,
    /// PNG.
    pub png: bool,
    /// WebP.
    pub webp: bool,
    /// AVIF.
    pub avif: bool,
}

impl Default for Accept {
    fn default() -> Self {
        Self {
            jpeg: true,
            png: true,
            webp: true,
            avif: true,
        }
    }
}

/// Which metadata survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Metadata {
    /// Keep what changes how the image looks: the ICC profile (and PNG colour chunks) and the
    /// EXIF orientation. Drop GPS and other EXIF, XMP, comments and thumbnails.
    #[default]
    Essential,
    /// Keep every metadata segment or chunk as it is.
    All,
    /// Drop all metadata, the ICC profile and orientation included.
    None,
}

/// Settings of one optimization. Construct with [`Options::default`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Default: [`Mode::Lossless`].
    pub mode: Mode,
    /// Default: [`Output::Keep`].
    pub output: Output,
    /// Formats [`Output::Auto`] may choose. Default: all four.
    pub accept: Accept,
    /// Default: [`Metadata::Essential`].
    pub metadata: Metadata,
    /// Default: [`Limits::default`].
    pub limits: Limits,
    /// Wall time the engine aims for on one image, on one core: the strongest effort whose
    /// estimate for the image's decoded size fits is used, so small images get the full
    /// search and large ones a cheaper one (the estimates are measured costs, so the output
    /// does not depend on the clock). Should the work still run past it, the codec stops and
    /// the best checked result so far comes back, with a note. Default: 20 s.
    pub time_budget: Duration,
    /// Hard cap on the whole call; past it the result is [`Error::Deadline`]. Default: none.
    pub deadline: Option<Duration>,
    /// At most each codec's quick effort whatever the budget (PNG: oxipng's preset 2;
    /// lossless WebP: level 3): how a lossy search first makes its lossless candidate.
    pub(crate) quick: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: Mode::Lossless,
            output: Output::Keep,
            accept: Accept::default(),
            metadata: Metadata::Essential,
            limits: Limits::default(),
            time_budget: Duration::from_secs(20),
            deadline: None,
            quick: false,
        }
    }
}

impl Options {
    /// Sets [`Options::mode`].
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`Options::output`].
    #[must_use]
    pub fn with_output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Sets [`Options::accept`].
    #[must_use]
    pub fn with_accept(mut self, accept: Accept) -> Self {
        self.accept = accept;
        self
    }

    /// Sets [`Options::metadata`].
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets [`Options::limits`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`Options::time_budget`].
    #[must_use]
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.time_budget = budget;
        self
    }

    /// Sets [`Options::deadline`].
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        if self.time_budget.is_zero() {
            return Err(Error::InvalidOption(
                "time_budget must be above zero".into(),
            ));
        }
        if self.mode == Mode::Lossless && !matches!(self.output, Output::Keep | Output::Auto) {
            return Err(Error::InvalidOption(
                "lossless output is only made in the input's format: use keep (or auto)".into(),
            ));
        }
        if self.output == Output::Auto
            && self.accept
                == (Accept {
                    jpeg: false,
                    png: false,
                    webp: false,
                    avif: false,
                })
        {
            return Err(Error::InvalidOption(
                "auto needs at least one accepted format".into(),
            ));
        }
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidOption("deadline must be above zero".into()));
        }
        Ok(())
    }
}
