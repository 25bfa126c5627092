//! SSIMULACRA2 scores against a reference prepared once.

use crate::error::{Error, Result};
use crate::guard::Frame;

/// The source image's side of the score, computed once and reused for every candidate.
#[derive(Debug)]
pub(crate) struct Reference {
    width: u32,
    height: u32,
}

impl Reference {
    /// Prepares `source` (gray, gray+alpha, RGB or RGBA; 8 or 16 bits; sRGB assumed, already
    /// upright). With any non-opaque pixel, both sides are judged flattened on black and on
    /// white, and the lower score counts.
    pub fn new(source: &Frame) -> Result<Self> {
        Ok(Self {
            width: source.width,
            height: source.height,
        })
    }

    /// The SSIMULACRA2 score of `candidate` (same size, any layout) against the source.
    pub fn score(&self, candidate: &Frame) -> Result<f64> {
        let _ = (candidate, self.width, self.height);
        Err(Error::InvalidOption("scorer not written yet".into()))
    }
}
