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

/// The aom speeds an AVIF search uses: `AVIF_FINE` (sharp's default effort 4) when the budget
/// allows, else `AVIF_MIDDLE`, else `AVIF_COARSE`. At one SSIMULACRA2 score on six corpus
/// images, speed 6 was 10 % bigger than 5 for a quarter of the time, speed 9 47 % bigger for
/// a tenth; speed 4 was no smaller than 5.
pub(crate) const AVIF_FINE: u8 = 5;
pub(crate) const AVIF_MIDDLE: u8 = 6;
pub(crate) const AVIF_COARSE: u8 = 9;

/// One encoder setting other than the knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoder {
    /// mozjpeg at quality 1 to 100 in half steps (see [`Encoder::setting`]).
    Jpeg(Chroma),
    /// libwebp lossy at quality 1 to 100 in half steps, method 4; sharp RGB to YUV
    /// conversion when true.
    WebP { sharp: bool },
    /// libaom at a speed (cpu-used, 0 slowest to 9), its screen-content tools forced on when
    /// `screen`; the knob (1 to 64) is 64 less aom's quantizer (cq-level 63 to 0).
    Avif { speed: u8, screen: bool },
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
            Self::Avif { .. } => (1, AVIF_FINEST),
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

    /// The same AVIF encoder at another speed; the others as they are.
    pub fn at_speed(self, speed: u8) -> Self {
        match self {
            Self::Avif { screen, .. } => Self::Avif { speed, screen },
            other => other,
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
    /// on photos; the search measures the real slope after two probes. AVIF's slope is its
    /// line's (aom at speed 5 gained 0.6 to 1.5 points a quantizer step near 80 on the
    /// corpus's photos and screenshots; 2.3, ravif's slope carried to aom's scale, made the
    /// second probe stop short: 1.25 saves an encode on 9 of 36 corpus images).
    pub fn start(self, target: f64) -> (i32, f64) {
        // Linear between (target 70, setting a) and (target 90, setting b); the slope is
        // per setting step.
        let (a, b, slope) = match self {
            Self::Jpeg(_) => (72.0, 94.0, 0.8),
            Self::WebP { .. } => (75.0, 92.0, 0.7),
            Self::Avif { .. } => (31.0, 47.0, 1.25),
            Self::Palette { .. } => (20.0, 32.0, 2.0),
        };
        let step = f64::from(self.step());
        let setting = (a + (b - a) * (target - 70.0) / 20.0).round();
        let (low, high) = self.range();
        (((setting * step) as i32).clamp(low, high), slope / step)
    }

    /// Seconds per megapixel of one encode and the decode that checks it; AVIF's depend on
    /// whether aom's screen-content tools are on. `tests::timing` measures them at the start
    /// for target 80 on a 4 MP photo and a screenshot (tools on): mozjpeg 0.04-0.07, libwebp
    /// 0.06-0.08, palette 0.16-0.18, and aom (10-bit 4:4:4, two threads) 1.0 and 2.0 at speed
    /// 5, 0.22 and 1.22 at 6, 0.07-0.08 at 9. With the tools on, the estimates stay under
    /// those: more would leave screenshots fewer encodes, which cost more bytes than the
    /// time they saved.
    pub fn cost(self, screen_tools: bool) -> f64 {
        match self {
            Self::Jpeg(_) => 0.08,
            Self::WebP { .. } => 0.1,
            Self::Avif { speed, .. } => match (speed, screen_tools) {
                (0..=4, _) => 3.0,
                (5, true) => 1.5,
                (5, false) => 1.0,
                (6, true) => 0.5,
                (6, false) => 0.25,
                (7..=8, _) => 0.2,
                _ => 0.1,
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
            Self::Avif {
                speed,
                screen: false,
            } => format!("avif speed {speed}"),
            Self::Avif {
                speed,
                screen: true,
            } => format!("avif screen-content speed {speed}"),
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
            Self::Avif { speed, screen } => {
                avif_encode::encode(image, avif_quantizer(knob), speed, screen)
            }
            Self::Palette { dither } => {
                let indexed = palette::quantize(image, colours(knob), dither, icc)?;
                compress_png(indexed, limits, deadline)
            }
        }
    }
}

/// aom's quantizer for an AVIF knob.
fn avif_quantizer(knob: i32) -> u8 {
    (AVIF_FINEST - knob.clamp(1, AVIF_FINEST)) as u8
}

/// The AVIF knob of aom's finest quantizer, 0.
const AVIF_FINEST: i32 = 1 + avif_encode::MAX_QUANTIZER as i32;

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

    #[test]
    fn avif_knob_covers_every_quantizer_once() {
        let (low, high) = Encoder::Avif {
            speed: AVIF_MIDDLE,
            screen: false,
        }
        .range();
        let quantizers: Vec<u8> = (low..=high).map(avif_quantizer).collect();
        assert_eq!(quantizers.first(), Some(&avif_encode::MAX_QUANTIZER));
        assert_eq!(quantizers.last(), Some(&0));
        assert!(quantizers.windows(2).all(|w| w[0] == w[1] + 1));
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
                Encoder::Avif {
                    speed: AVIF_FINE,
                    screen: false,
                },
                Encoder::Avif {
                    speed: AVIF_MIDDLE,
                    screen: false,
                },
                Encoder::Avif {
                    speed: AVIF_COARSE,
                    screen: false,
                },
                Encoder::Avif {
                    speed: AVIF_MIDDLE,
                    screen: true,
                },
                Encoder::Palette { dither: true },
            ] {
                let start = std::time::Instant::now();
                let knob = encoder.start(80.0).0;
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

/// The AVIF speeds compared: `FILES="a.png b.jpg" SPEEDS=4,5,6,9 cargo test --release -p
/// picopic-engine --lib formats::speeds::avif_speeds -- --ignored --nocapture` bisects aom's
/// quantizer per file and speed to the smallest AVIF scoring at least `TARGET` (default 80.25)
/// and prints its bytes and the seconds per megapixel of an encode with its check.
#[cfg(test)]
mod speeds {
    use super::super::score::Reference;
    use super::*;

    #[test]
    #[ignore = "measurement, run by hand in release"]
    fn avif_speeds() {
        let limits = Limits::default();
        let env = |name: &str| std::env::var(name).unwrap_or_default();
        let speeds: Vec<u8> = env("SPEEDS")
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect();
        let target: f64 = env("TARGET").parse().unwrap_or(80.25);
        let mut totals = vec![0; speeds.len()];
        for path in env("FILES").split_whitespace() {
            let bytes = std::fs::read(path).unwrap();
            let format = crate::format::detect(&bytes).unwrap();
            let image =
                Rgba8::from_frame(&source(format, &bytes, &limits).unwrap().unwrap()).unwrap();
            let reference = Reference::new(&image.to_frame()).unwrap();
            let megapixels = f64::from(image.width * image.height) / 1e6;
            let mut line = format!("{path} {megapixels:.2} MP:");
            for (total, &speed) in totals.iter_mut().zip(&speeds) {
                let (mut low, mut high, mut best, mut encodes) = (0, 63, None, 0);
                let start = std::time::Instant::now();
                while low <= high {
                    let quantizer = (low + high) / 2;
                    let avif = avif_encode::encode(&image, quantizer, speed, false).unwrap();
                    encodes += 1;
                    let score = reference
                        .score(&decode(Format::Avif, &avif, &limits).unwrap())
                        .unwrap();
                    if score >= target {
                        best = Some((quantizer, avif.len(), score));
                        low = quantizer + 1;
                    } else if quantizer == 0 {
                        break;
                    } else {
                        high = quantizer - 1;
                    }
                }
                let per_mp = start.elapsed().as_secs_f64() / f64::from(encodes) / megapixels;
                let (quantizer, len, score) = best.unwrap();
                *total += len;
                line += &format!(
                    " speed {speed}: q{quantizer} {len} B ({score:.2}), {per_mp:.2} s/MP;"
                );
            }
            eprintln!("{line}");
        }
        for (total, speed) in totals.iter().zip(&speeds) {
            eprintln!("speed {speed}: {total} B");
        }
    }
}
