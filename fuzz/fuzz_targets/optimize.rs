#![no_main]
//! The whole pipeline under tight limits: no panic, never bigger, unchanged means identical.

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use picopic_engine::{Limits, Metadata, Options, optimize};

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

fuzz_target!(|data: &[u8]| {
    // The first byte picks the metadata policy, so every mode is covered.
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let metadata = [Metadata::Essential, Metadata::All, Metadata::None][usize::from(pick % 3)];
    if let Ok(out) = optimize(input, &options(metadata)) {
        assert!(out.data.len() <= input.len());
        assert_eq!(out.changed, out.data != input);
    }
});
