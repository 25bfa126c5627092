//! detect → limits → decode → codec → guards → result.

use std::time::{Duration, Instant};

use crate::codecs::{self, Attempt};
use crate::error::{Error, Result};
use crate::format::{Format, detect};
use crate::guard::same_frames;
use crate::limits::{Header, Limits};
use crate::lossy;
use crate::options::{Mode, Options};
use crate::work::Deadline;

/// How much a note matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// What was done.
    Info,
    /// Something was skipped; the result is still sound.
    Warn,
    /// A guard caught a bad candidate; the input was returned instead.
    Error,
}

/// One line of what happened to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// How much it matters.
    pub level: Level,
    /// What happened.
    pub message: String,
}

/// The result of [`optimize`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Optimized {
    /// The output: a smaller encoding, or the input bytes when nothing smaller passed the guards.
    pub data: Vec<u8>,
    /// The detected input format.
    pub format_in: Format,
    /// The format of `data`.
    pub format_out: Format,
    /// True when `data` differs from the input (and is then strictly smaller).
    pub changed: bool,
    /// What was done, what was skipped, and any guard that fired.
    pub notes: Vec<Note>,
    /// The SSIMULACRA2 score of a lossy result against the input as displayed, measured on
    /// the output decoded; `None` when the pixels did not change.
    pub ssimulacra2: Option<f64>,
    /// Lossy encodes tried (each decoded and scored).
    pub encodes: u32,
}

impl Optimized {
    /// The most serious level among the notes.
    #[must_use]
    pub fn worst(&self) -> Level {
        self.notes
            .iter()
            .map(|n| n.level)
            .max()
            .unwrap_or(Level::Info)
    }
}

/// Optimizes one image held in memory.
///
/// The format comes from the bytes; limits, the estimated peak memory included, are checked
/// against the header before any pixel buffer exists; the input is decoded (so damaged files
/// fail here); then the codec's candidate must be smaller and decode to the same pixels, or
/// the input is returned.
///
/// The effort comes from the decoded size and [`Options::time_budget`]; should the work still
/// run past the budget, the codec stops there and its best candidate so far is checked (or
/// the input comes back), with a warning note. Past [`Options::deadline`] the call fails with
/// [`Error::Deadline`], unless the codec has already made a candidate, which is checked too.
///
/// In [`Mode::Lossy`], the lossless result competes with, per format the options allow, the
/// smallest encoding found whose decoded pixels score at least the target (SSIMULACRA2)
/// against the input as displayed; the smallest of them, never bigger than the input, wins.
///
/// # Errors
/// [`Error::UnsupportedFormat`], [`Error::LimitExceeded`], [`Error::Decode`] for inputs the
/// engine refuses; [`Error::InvalidOption`], [`Error::Encode`], [`Error::Deadline`] otherwise.
pub fn optimize(input: &[u8], options: &Options) -> Result<Optimized> {
    options.validate()?;
    match options.mode {
        Mode::Lossless => lossless(input, options),
        Mode::Lossy(target) => lossy::optimize(input, options, target),
    }
}

/// The input's format and header, checked against the limits before any pixel is decoded.
pub(crate) fn checked_header(input: &[u8], limits: &Limits) -> Result<(Format, Header)> {
    limits.check_input(input.len())?;
    let format = detect(input)?;
    let header = codecs::probe(format, input, limits)?;
    limits.check(&header)?;
    Ok((format, header))
}

/// The lossless pipeline.
pub(crate) fn lossless(input: &[u8], options: &Options) -> Result<Optimized> {
    let start = Instant::now();
    let limits = &options.limits;
    let (format, header) = checked_header(input, limits)?;
    limits.check_memory(codecs::peak_memory(format, input, &header))?;
    let (codec, stop) = codec_budget(format, &header, options);
    let deadline = Deadline::with_stop(options.deadline, Some(stop));
    // Damaged inputs fail here. The pixels are not kept while the codec works: the guard
    // decodes the input again, so the peak holds one of the two, not both.
    let guarded = codecs::decode(format, input, limits)?.is_some();
    deadline.check_limit()?;
    let attempt = match codecs::optimize(format, input, &header, &codec, &deadline) {
        Err(Error::Deadline(_)) if deadline.check_limit().is_ok() => {
            Attempt::unchanged("stopped at the time budget with nothing smaller")
        }
        other => other?,
    };
    let mut notes = info(attempt.actions);
    if deadline.check().is_err() {
        if attempt.data.is_none() {
            deadline.check_limit()?;
        }
        notes.push(note(
            Level::Warn,
            format!(
                "stopped after {:.2} s (budget {:.2} s); the best candidate found by then is \
                 checked and kept",
                start.elapsed().as_secs_f64(),
                options.time_budget.as_secs_f64()
            ),
        ));
    }
    if !guarded {
        return Ok(unchanged(input, format, notes));
    }
    settle(input, format, attempt.data, notes, limits)
}

/// The codec's options and when it must stop: it picks its effort from its share of the
/// budget, what the three decodes (the input's check, the guard's two) leave, and stops in
/// time for the guard to fit.
fn codec_budget(format: Format, header: &Header, options: &Options) -> (Options, Duration) {
    let decode = Duration::from_secs_f64(codecs::decode_seconds(format, header));
    let stop = options
        .time_budget
        .saturating_sub(decode * 2)
        .max(options.time_budget / 4);
    let codec = Options {
        time_budget: stop.saturating_sub(decode).max(options.time_budget / 4),
        ..options.clone()
    };
    (codec, stop)
}

/// Whether [`lossless`] at `options` would work harder than at [`Options::quick`].
pub(crate) fn quick_is_less(
    format: Format,
    input: &[u8],
    header: &Header,
    options: &Options,
) -> bool {
    codecs::quick_is_less(
        format,
        input,
        header,
        &codec_budget(format, header, options).0,
    )
}

/// The input as the result.
pub(crate) fn unchanged(input: &[u8], format: Format, notes: Vec<Note>) -> Optimized {
    Optimized {
        data: input.to_vec(),
        format_in: format,
        format_out: format,
        changed: false,
        notes,
        ssimulacra2: None,
        encodes: 0,
    }
}

/// The guards: `candidate` is the result only when it is smaller than `input` and decodes to
/// the input's pixels; otherwise the input comes back, with an error note when a guard caught
/// a bad candidate.
fn settle(
    input: &[u8],
    format: Format,
    candidate: Option<Vec<u8>>,
    mut notes: Vec<Note>,
    limits: &Limits,
) -> Result<Optimized> {
    let Some(candidate) = candidate.filter(|c| c.len() < input.len()) else {
        notes.push(note(Level::Info, "no smaller encoding found; input kept"));
        return Ok(unchanged(input, format, notes));
    };
    let frames = codecs::decode(format, input, limits)?.unwrap_or_default();
    let format_out = detect(&candidate).unwrap_or(format);
    let verdict = codecs::decode(format_out, &candidate, limits)
        .map(|decoded| decoded.is_some_and(|d| same_frames(&frames, &d)));
    let failure = match verdict {
        Ok(true) => {
            return Ok(Optimized {
                data: candidate,
                format_in: format,
                format_out,
                changed: true,
                notes,
                ssimulacra2: None,
                encodes: 0,
            });
        }
        Ok(false) => "guard: output pixels differ from input; input kept".to_string(),
        Err(e) => format!("guard: output does not decode ({e}); input kept"),
    };
    notes.push(note(Level::Error, failure));
    Ok(unchanged(input, format, notes))
}

pub(crate) fn note(level: Level, message: impl Into<String>) -> Note {
    Note {
        level,
        message: message.into(),
    }
}

fn info(actions: Vec<String>) -> Vec<Note> {
    actions.into_iter().map(|a| note(Level::Info, a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `frames` (each `data` with its delay numerator, in tenths of a second), with
    /// a comment of `padding` bytes so that a re-encode without it is smaller.
    fn png(
        size: (u32, u32),
        color: png::ColorType,
        depth: png::BitDepth,
        frames: &[(&[u8], u16)],
        padding: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if padding > 0 {
            encoder
                .add_text_chunk("Comment".into(), "x".repeat(padding))
                .unwrap();
        }
        if frames.len() > 1 {
            encoder.set_animated(frames.len() as u32, 0).unwrap();
        }
        let mut writer = encoder.write_header().unwrap();
        for (data, delay) in frames {
            if frames.len() > 1 {
                writer.set_frame_delay(*delay, 10).unwrap();
            }
            writer.write_image_data(data).unwrap();
        }
        writer.finish().unwrap();
        out
    }

    /// `settle` on a candidate made from `bad` frames, and on one made from the input's own
    /// frames as a control: the control must pass, the bad one must come back as the input
    /// with an error note.
    fn injected(
        size: (u32, u32),
        color: png::ColorType,
        depth: png::BitDepth,
        good: &[(&[u8], u16)],
        bad: &[(&[u8], u16)],
    ) {
        let input = png(size, color, depth, good, 4096);
        let limits = Limits::default();
        let format = detect(&input).unwrap();
        let control = png(size, color, depth, good, 0);
        let passed = settle(&input, format, Some(control), Vec::new(), &limits).unwrap();
        assert!(passed.changed, "{:?}", passed.notes);
        assert!(passed.worst() < Level::Error);

        let candidate = png(size, color, depth, bad, 0);
        assert!(candidate.len() < input.len());
        let caught = settle(&input, format, Some(candidate), Vec::new(), &limits).unwrap();
        assert!(!caught.changed);
        assert_eq!(caught.data, input);
        assert_eq!(caught.worst(), Level::Error, "{:?}", caught.notes);
    }

    #[test]
    fn a_changed_sixteen_bit_low_byte_is_caught() {
        let good: Vec<u8> = (0..4 * 4 * 8).map(|i| (i * 7) as u8).collect();
        let mut bad = good.clone();
        bad[13] ^= 1; // the low byte of pixel 1's green sample
        injected(
            (4, 4),
            png::ColorType::Rgba,
            png::BitDepth::Sixteen,
            &[(&good, 1)],
            &[(&bad, 1)],
        );
    }

    #[test]
    fn a_different_colour_under_alpha_zero_is_caught() {
        let good: Vec<u8> = (0..4 * 4 * 4)
            .map(|i| if i % 4 == 3 { 0 } else { (i * 5) as u8 })
            .collect();
        let mut bad = good.clone();
        bad[4] = bad[4].wrapping_add(1); // red of a fully transparent pixel
        injected(
            (4, 4),
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            &[(&good, 1)],
            &[(&bad, 1)],
        );
    }

    #[test]
    fn a_changed_frame_delay_is_caught() {
        let a: Vec<u8> = (0..8 * 8 * 3).map(|i| i as u8).collect();
        let b: Vec<u8> = a.iter().map(|v| v.wrapping_mul(3)).collect();
        injected(
            (8, 8),
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[(&a, 1), (&b, 1)],
            &[(&a, 1), (&b, 2)],
        );
    }

    #[test]
    fn an_undecodable_candidate_is_caught() {
        let data: Vec<u8> = (0..16 * 3).map(|i| i as u8).collect();
        let input = png(
            (4, 4),
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[(&data, 1)],
            4096,
        );
        let limits = Limits::default();
        let mut broken = png(
            (4, 4),
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[(&data, 1)],
            0,
        );
        let at = broken.len() - 20;
        broken[at] ^= 0xFF; // inside the IDAT, so its CRC fails
        let caught = settle(&input, Format::Png, Some(broken), Vec::new(), &limits).unwrap();
        assert_eq!((caught.changed, caught.worst()), (false, Level::Error));
    }

    #[test]
    fn the_memory_estimate_refuses_before_decoding() {
        let data = vec![0u8; 64 * 64 * 8];
        let input = png(
            (64, 64),
            png::ColorType::Rgba,
            png::BitDepth::Sixteen,
            &[(&data, 1)],
            0,
        );
        let mut options = Options::default();
        options.limits.max_memory_bytes = 64 * 64 * 8;
        match optimize(&input, &options) {
            Err(Error::LimitExceeded {
                limit: crate::Limit::Memory,
                actual,
                ..
            }) => assert!(actual >= 64 * 64 * 8 * 2, "{actual}"),
            other => panic!("{other:?}"),
        }
        options.limits.max_memory_bytes = 64 << 20;
        assert!(optimize(&input, &options).is_ok());
    }
}
