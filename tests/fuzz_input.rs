//! How the `optimize` fuzz target reads its input. `tests/regression.rs` uses the same code, so
//! a saved crash replays as the fuzzer ran it; the fuzz target includes this file by path.

use std::time::Duration;

use picopic_engine::{Limits, Metadata, Options};

/// The options and the image of a fuzz input: its first byte picks the metadata policy.
pub fn split(data: &[u8]) -> Option<(Options, &[u8])> {
    let (&pick, image) = data.split_first()?;
    let metadata = [Metadata::Essential, Metadata::All, Metadata::None][usize::from(pick % 3)];
    Some((options(metadata), image))
}

/// Tight limits and a small budget, so each input is cheap.
fn options(metadata: Metadata) -> Options {
    let mut limits = Limits::default();
    limits.max_input_bytes = 1 << 20;
    limits.max_pixels = 1 << 20;
    limits.max_dimension = 4096;
    limits.max_frames = 16;
    limits.max_animation_pixels = 4 << 20;
    limits.max_metadata_bytes = 64 << 10;
    Options::default()
        .with_limits(limits)
        .with_metadata(metadata)
        .with_time_budget(Duration::from_millis(20))
        .with_deadline(Duration::from_secs(5))
}
