//! What the codecs share with the pipeline that calls them: the deadline of one call and
//! buffers whose sizes come from inputs.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The time limits shared by the stages of one call: `stop`, when the codecs stop working
/// and keep their best candidate so far (the time budget's safety net), and `limit`, the hard
/// deadline past which the call fails.
#[derive(Debug)]
pub(crate) struct Deadline {
    start: Instant,
    stop: Option<Duration>,
    limit: Option<Duration>,
}

impl Deadline {
    /// Work stops at `limit`, and the call fails there.
    #[cfg(test)]
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self::with_stop(limit, limit)
    }

    /// Work stops at `stop` or `limit`, whichever comes first; the call fails at `limit`.
    pub(crate) fn with_stop(limit: Option<Duration>, stop: Option<Duration>) -> Self {
        let stop = match (stop, limit) {
            (Some(s), Some(l)) => Some(s.min(l)),
            (s, l) => s.or(l),
        };
        Self {
            start: Instant::now(),
            stop,
            limit,
        }
    }

    /// Time left for work, or `None` when there is no limit.
    pub fn remaining(&self) -> Option<Duration> {
        self.stop.map(|l| l.saturating_sub(self.start.elapsed()))
    }

    /// `Err` once work must stop.
    pub fn check(&self) -> Result<()> {
        Self::past(self.stop, self.start)
    }

    /// `Err` once the hard deadline passed.
    pub fn check_limit(&self) -> Result<()> {
        Self::past(self.limit, self.start)
    }

    fn past(at: Option<Duration>, start: Instant) -> Result<()> {
        match at {
            Some(at) if start.elapsed() > at => Err(Error::Deadline(at)),
            _ => Ok(()),
        }
    }
}

/// An empty buffer with room for `len` values, a size that came from an input, failing
/// cleanly instead of aborting.
pub(crate) fn room_for<T>(len: usize) -> Result<Vec<T>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|e| {
        let bytes = len.saturating_mul(size_of::<T>());
        Error::InvalidOption(format!("cannot allocate {bytes} bytes: {e}"))
    })?;
    Ok(buffer)
}

/// A buffer of `len` zeros (the type's default) whose size came from an input, failing
/// cleanly instead of aborting.
pub(crate) fn zeroed<T: Clone + Default>(len: usize) -> Result<Vec<T>> {
    let mut buffer = room_for(len)?;
    buffer.resize(len, T::default());
    Ok(buffer)
}
