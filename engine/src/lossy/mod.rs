//! Lossy mode: per image, the smallest encoding that meets a perceptual target.

pub(crate) mod score;
