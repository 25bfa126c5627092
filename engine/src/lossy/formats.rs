//! The lossy encoders seen by the search: one knob each, a few variants, a decoder for the
//! check, a starting point and a cost.

use std::time::Duration;

use crate::codecs::jpeg::Chroma;
use crate::codecs::{self, avif, avif_encode, jpeg, palette, png, webp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::Frame;
use crate::limits::Limits;
use crate::options::{Metadata, Mode, Options, Output};
use crate::pixels::Rgba8;
use crate::work::Deadline;

use super::search::Bounds;

/// One encoder setting other than the knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoder {
    /// mozjpeg at quality 1 to 100 in half steps (see [`Encoder::setting`]).
    Jpeg(Chroma),
    /// libwebp lossy at quality 1 to 100 in half steps, method 4; sharp RGB to YUV
    /// conversion when true.
    WebP { sharp: bool },
    /// ravif at a rav1e speed; the knob (1 to 100) moves rav1e's quantizer in equal steps
    /// (see [`avif_quality`]).
    Avif { speed: u8 },
    /// A palette PNG; the knob is 4 × log2 of the colour count (4 to 32: 2 to 256 colours).
    Palette { dither: bool },
}

impl Encoder {
    pub fn format(self) -> Format {
        match self {
            Self::Jpeg(_) => Format::Jpeg,
            Self::WebP { .. } => Format::WebP,
            Self::Avif { .. } => Format::Avif,
            Self::Palette { .. } => Format::Png,
        }
    }

    /// Knob range.
    pub fn range(self) -> (i32, i32) {
        match self {
            Self::Palette { .. } => (4, 32),
            _ => (self.step(), 100 * self.step()),
        }
    }

    /// A search's bounds on this encoder's knob: its range and step, and the rest as given
    /// (see [`Bounds`]).
    pub fn bounds(self, start: i32, slope: f64, probes: u32, beat: usize, last: bool) -> Bounds {
        let (low, high) = self.range();
        Bounds {
            low,
            high,
            step: self.step(),
            start,
            slope,
            probes,
            beat,
            last,
        }
    }

    /// The setting a knob stands for, as notes show it.
    pub fn setting(self, knob: i32) -> f32 {
        knob as f32 / self.step() as f32
    }

    /// Knob units per whole setting step: the search moves by whole steps until it brackets
    /// the target closer than two, then by single units. JPEG's and WebP's knob is twice the
    /// quality: a whole quality step moves mozjpeg's quantizers by 5 % near quality 80, a
    /// half step by half that (its scale factor is 200 - 2 × quality from quality 50), so a
    /// search that has bracketed the target between two qualities can try the half between.
    pub fn step(self) -> i32 {
        match self {
            Self::Jpeg(_) | Self::WebP { .. } => 2,
            Self::Avif { .. } | Self::Palette { .. } => 1,
        }
    }

    /// The knob to try first for a target score, and the score gained per knob step near
    /// it. Starting points: the settings where these encoders typically reach the target
    /// on photos; the search measures the real slope after two probes.
    pub fn start(self, target: f64) -> (i32, f64) {
        // Linear between (target 70, setting a) and (target 90, setting b); the slope is
        // per setting step.
        let (a, b, slope) = match self {
            Self::Jpeg(_) => (72.0, 94.0, 0.8),
            Self::WebP { .. } => (75.0, 92.0, 0.7),
            Self::Avif { .. } => (45.0, 69.0, 1.5),
            Self::Palette { .. } => (20.0, 32.0, 2.0),
        };
        let step = f64::from(self.step());
        let setting = (a + (b - a) * (target - 70.0) / 20.0).round();
        let (low, high) = self.range();
        (((setting * step) as i32).clamp(low, high), slope / step)
    }

    /// Seconds per megapixel of one encode and the decode that checks it: about the median
    /// over the corpus's `auto` searches at target 80 (each probe timed, the score's share
    /// taken out; README), where `tests::timing` measures at setting 60: mozjpeg 0.04,
    /// libwebp 0.06-0.07, palette 0.22-0.24, and rav1e (ravif, 10-bit, two threads) 1.6-1.9 at
    /// speed 4, 0.79-1.00 at 6, 0.63-0.73 at 8 and 0.14-0.15 at 10. Higher settings and
    /// grainy photos take longer: speed 4 took up to 1.5 times its estimate.
    pub fn cost(self) -> f64 {
        match self {
            Self::Jpeg(_) => 0.08,
            Self::WebP { .. } => 0.1,
            Self::Avif { speed } => match speed {
                0..=3 => 7.0,
                4 => 2.2,
                5..=6 => 0.9,
                7..=8 => 0.75,
                _ => 0.15,
            },
            Self::Palette { .. } => 0.2,
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::Jpeg(Chroma::Half) => "jpeg 4:2:0".into(),
            Self::Jpeg(Chroma::Full) => "jpeg 4:4:4".into(),
            Self::WebP { sharp: false } => "webp".into(),
            Self::WebP { sharp: true } => "webp sharp-yuv".into(),
            Self::Avif { speed } => format!("avif speed {speed}"),
            Self::Palette { dither: true } => "palette png dithered".into(),
            Self::Palette { dither: false } => "palette png".into(),
        }
    }

    /// Encodes `image` at `knob`.
    pub fn encode(
        self,
        image: &Rgba8,
        knob: i32,
        icc: Option<&[u8]>,
        limits: &Limits,
        deadline: &Deadline,
    ) -> Result<Vec<u8>> {
        let quality = self.setting(knob);
        match self {
            Self::Jpeg(chroma) => jpeg::encode_lossy(image, quality, chroma, icc),
            Self::WebP { sharp } => webp::encode_lossy(image, quality, sharp, 4, icc),
            Self::Avif { speed } => avif_encode::encode(image, avif_quality(knob), speed),
            Self::Palette { dither } => {
                let indexed = palette::quantize(image, colours(knob), dither, icc)?;
                compress_png(indexed, limits, deadline)
            }
        }
    }
}

/// The ravif quality for an AVIF knob: the one whose rav1e quantizer is (100 - knob) % of
/// 255. ravif's own scale bends at quality 82, above which one step moves the quantizer five
/// times as far, and a search that interpolates on it overshoots there.
fn avif_quality(knob: i32) -> f32 {
    // ravif: quantizer / 255 is (1 - q) * 2.6 from q = 0.82, 0.875 - q / 2 from 0.25, else
    // 1 - q; inverted.
    let x = 1.0 - f64::from(knob.clamp(1, 100)) / 100.0;
    let q = if x <= 0.18 * 2.6 {
        1.0 - x / 2.6
    } else if x < 0.75 {
        (0.875 - x) * 2.0
    } else {
        1.0 - x
    };
    (q * 100.0) as f32
}

/// The colour count for a palette knob.
fn colours(knob: i32) -> u16 {
    2f64.powf(f64::from(knob) / 4.0).round().clamp(2.0, 256.0) as u16
}

/// A quantized PNG through the lossless pipeline's fastest effort.
fn compress_png(indexed: Vec<u8>, limits: &Limits, deadline: &Deadline) -> Result<Vec<u8>> {
    let header = codecs::probe(Format::Png, &indexed, limits)?;
    let quick = Options {
        mode: Mode::Lossless,
        output: Output::Keep,
        metadata: Metadata::All,
        time_budget: Duration::from_millis(1),
        ..Options::default()
    };
    let attempt = codecs::optimize(Format::Png, &indexed, &header, &quick, deadline)?;
    Ok(match attempt.data {
        Some(smaller) if smaller.len() < indexed.len() => smaller,
        _ => indexed,
    })
}

/// Decodes an output of `format` for its check: the decoder is not the encoder.
pub(crate) fn decode(format: Format, bytes: &[u8], limits: &Limits) -> Result<Frame> {
    let none = || Error::decode(format, "no frame decoded");
    match format {
        Format::Jpeg => jpeg::decode_display(bytes, limits)?.ok_or_else(none),
        Format::WebP => webp::decode_display(bytes),
        Format::Avif => avif::decode_display(bytes, limits),
        _ => codecs::decode(format, bytes, limits)?
            .and_then(|mut frames| frames.drain(..).next())
            .ok_or_else(none),
    }
}

/// The input as displayed, before orientation: `None` when the lossy path cannot show it
/// faithfully (CMYK or 12-bit JPEG, animations, GIF).
pub(crate) fn source(format: Format, bytes: &[u8], limits: &Limits) -> Result<Option<Frame>> {
    match format {
        Format::Jpeg => jpeg::decode_display(bytes, limits),
        Format::Png => decode(format, bytes, limits).map(Some),
        Format::WebP => webp::decode_display(bytes).map(Some),
        Format::Avif => avif::decode_display(bytes, limits).map(Some),
        Format::Apng | Format::Gif => Ok(None),
    }
}

/// The input's ICC profile and EXIF orientation.
pub(crate) fn colour_and_orientation(format: Format, bytes: &[u8]) -> (Option<Vec<u8>>, u16) {
    match format {
        Format::Jpeg => (jpeg::icc(bytes), jpeg::orientation(bytes)),
        Format::Png => (png::icc(bytes), png::orientation(bytes)),
        Format::WebP => (webp::icc(bytes), webp::orientation(bytes)),
        Format::Avif => (avif::icc(bytes), avif::orientation(bytes)),
        Format::Apng | Format::Gif => (None, 1),
    }
}

/// Why the input's pixels as decoded here are not what a viewer shows, when they are not
/// (see [`avif::not_shown`], [`png::not_shown`]); such an input is not re-encoded.
pub(crate) fn not_shown(format: Format, bytes: &[u8]) -> Option<String> {
    match format {
        Format::Avif => avif::not_shown(bytes),
        Format::Png => png::not_shown(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ravif 0.13's quality to quantizer mapping, as written in its source.
    fn ravif_quantizer(quality: f32) -> u8 {
        let q = quality / 100.;
        let x = if q >= 0.82 {
            (1. - q) * 2.6
        } else if q > 0.25 {
            q.mul_add(-0.5, 1. - 0.125)
        } else {
            1. - q
        };
        (x * 255.).round() as u8
    }

    #[test]
    fn avif_knob_steps_move_the_quantizer_evenly() {
        for knob in 1..=100 {
            let expected = 255.0 * (1.0 - f64::from(knob) / 100.0);
            let got = f64::from(ravif_quantizer(avif_quality(knob)));
            assert!(
                (got - expected).abs() <= 1.0,
                "knob {knob}: {got} against {expected}"
            );
        }
    }

    /// Seconds per megapixel of each encoder's encode and the decode that checks it (the
    /// figures behind [`Encoder::cost`]): `cargo test --release -p
    /// picopic-engine --lib formats::tests::timing -- --ignored --nocapture`, machine idle.
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn timing() {
        let limits = Limits::default();
        let deadline = Deadline::with_stop(None, None);
        for name in [
            "photo_colorfulcups_icc_exif.jpg",
            "screenshot_sddm_lines.jpg",
        ] {
            let path = format!("{}/../corpus/dev/{name}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(path).unwrap();
            let frame = jpeg::decode_display(&bytes, &limits).unwrap().unwrap();
            let image = Rgba8::from_frame(&frame).unwrap();
            let megapixels = f64::from(image.width * image.height) / 1e6;
            for encoder in [
                Encoder::Jpeg(Chroma::Half),
                Encoder::WebP { sharp: false },
                Encoder::Avif { speed: 4 },
                Encoder::Avif { speed: 6 },
                Encoder::Avif { speed: 10 },
                Encoder::Palette { dither: true },
            ] {
                let start = std::time::Instant::now();
                let knob = 60 * encoder.step();
                let data = encoder
                    .encode(&image, knob, None, &limits, &deadline)
                    .unwrap();
                decode(encoder.format(), &data, &limits).unwrap();
                let seconds = start.elapsed().as_secs_f64();
                eprintln!(
                    "{name}: {}: {:.2} s/MP",
                    encoder.name(),
                    seconds / megapixels
                );
            }
        }
    }
}
