//! How the `optimize` fuzz target reads its input. `tests/regression.rs` uses the same code, so
//! a saved crash replays as the fuzzer ran it; the fuzz target includes this file by path.

use std::time::Duration;

use picopic_engine::{Limits, Metadata, Mode, Options, Output, Target};

/// The options and the image of a fuzz input. Its first byte picks the metadata policy
/// (byte % 3), lossless or lossy ((byte / 3) % 2) and, for lossy, the output format
/// ((byte / 6) % 6: keep, auto, jpeg, png, webp, avif).
pub fn split(data: &[u8]) -> Option<(Options, &[u8])> {
    let (&pick, image) = data.split_first()?;
    let metadata = [Metadata::Essential, Metadata::All, Metadata::None][usize::from(pick % 3)];
    let mut options = options(metadata);
    if (pick / 3) % 2 == 1 {
        let outputs = [
            Output::Keep,
            Output::Auto,
            Output::Jpeg,
            Output::Png,
            Output::WebP,
            Output::Avif,
        ];
        // Lossy work decodes and scores every encode: smaller images, a larger budget.
        options.limits.max_pixels = 1 << 14;
        options.limits.max_animation_pixels = 1 << 16;
        options = options
            .with_mode(Mode::Lossy(Target::HIGH))
            .with_output(outputs[usize::from(pick / 6) % 6])
            .with_time_budget(Duration::from_millis(400));
    }
    Some((options, image))
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
