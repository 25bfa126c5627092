//! detect → limits → decode → codec → guards → result.

use std::time::{Duration, Instant};

use crate::codecs;
use crate::error::{Error, Result};
use crate::format::{Format, detect};
use crate::guard::same_frames;
use crate::options::Options;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A time limit shared by the stages of one call.
#[derive(Debug)]
pub(crate) struct Deadline {
    start: Instant,
    limit: Option<Duration>,
}

impl Deadline {
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self {
            start: Instant::now(),
            limit,
        }
    }

    /// Time left, or `None` when there is no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.limit.map(|l| l.saturating_sub(self.start.elapsed()))
    }

    pub fn check(&self) -> Result<()> {
        match self.limit {
            Some(limit) if self.start.elapsed() > limit => Err(Error::Deadline(limit)),
            _ => Ok(()),
        }
    }
}

/// An empty buffer with room for `len` bytes, a size that came from an input, failing
/// cleanly instead of aborting.
pub(crate) fn room_for(len: usize) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(len)
        .map_err(|e| Error::InvalidOption(format!("cannot allocate {len} bytes: {e}")))?;
    Ok(buffer)
}

/// A zero-filled buffer whose size came from an input, failing cleanly instead of aborting.
pub(crate) fn zeroed(len: usize) -> Result<Vec<u8>> {
    let mut buffer = room_for(len)?;
    buffer.resize(len, 0);
    Ok(buffer)
}

/// Optimizes one image held in memory.
///
/// The format comes from the bytes; limits are checked against the header before any pixel
/// buffer exists; the input is decoded (so damaged files fail here); then the codec's
/// candidate must be smaller and decode to the same pixels, or the input is returned.
///
/// # Errors
/// [`Error::UnsupportedFormat`], [`Error::LimitExceeded`], [`Error::Decode`] for inputs the
/// engine refuses; [`Error::InvalidOption`], [`Error::Encode`], [`Error::Deadline`] otherwise.
pub fn optimize(input: &[u8], options: &Options) -> Result<Optimized> {
    options.validate()?;
    let deadline = Deadline::new(options.deadline);
    let limits = &options.limits;
    limits.check_input(input.len())?;
    let format = detect(input)?;
    let header = codecs::probe(format, input, limits)?;
    limits.check(&header)?;
    let frames = codecs::decode(format, input, limits)?;
    deadline.check()?;
    let unchanged = |notes: Vec<Note>| Optimized {
        data: input.to_vec(),
        format_in: format,
        format_out: format,
        changed: false,
        notes,
    };
    let Some(frames) = frames else {
        let attempt = codecs::optimize(format, input, &header, &[], options, &deadline)?;
        return Ok(unchanged(info(attempt.actions)));
    };
    let attempt = codecs::optimize(format, input, &header, &frames, options, &deadline)?;
    deadline.check()?;
    let mut notes = info(attempt.actions);
    let Some(candidate) = attempt.data.filter(|c| c.len() < input.len()) else {
        notes.push(note(Level::Info, "no smaller encoding found; input kept"));
        return Ok(unchanged(notes));
    };
    let format_out = detect(&candidate).unwrap_or(format);
    let verdict = codecs::decode(format_out, &candidate, limits)
        .map(|decoded| decoded.is_some_and(|d| same_frames(&frames, &d)));
    match verdict {
        Ok(true) => Ok(Optimized {
            data: candidate,
            format_in: format,
            format_out,
            changed: true,
            notes,
        }),
        Ok(false) => {
            notes.push(note(
                Level::Error,
                "guard: output pixels differ from input; input kept",
            ));
            Ok(unchanged(notes))
        }
        Err(e) => {
            notes.push(note(
                Level::Error,
                format!("guard: output does not decode ({e}); input kept"),
            ));
            Ok(unchanged(notes))
        }
    }
}

fn note(level: Level, message: impl Into<String>) -> Note {
    Note {
        level,
        message: message.into(),
    }
}

fn info(actions: Vec<String>) -> Vec<Note> {
    actions.into_iter().map(|a| note(Level::Info, a)).collect()
}
