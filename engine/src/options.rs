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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: Mode::Lossless,
            metadata: Metadata::Essential,
            limits: Limits::default(),
            time_budget: Duration::from_secs(20),
            deadline: None,
        }
    }
}

impl Options {
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
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidOption("deadline must be above zero".into()));
        }
        Ok(())
    }
}
