//! Replays every minimised fuzz crash kept in corpus/regress/<format>/ with the fuzz
//! target's tight limits: each must end in a clean result or error, never a panic.

use std::path::Path;
use std::time::Duration;

use picopic_engine::{Limits, Metadata, Options, optimize};

fn fuzz_options(metadata: Metadata) -> Options {
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
}

#[test]
fn fuzz_regressions_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/regress");
    let mut replayed = 0;
    for folder in std::fs::read_dir(&root).expect("corpus/regress").flatten() {
        if !folder.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path()).expect("folder").flatten() {
            let input = std::fs::read(file.path()).expect("read");
            // As in the fuzz target: the first byte picks the metadata policy.
            let Some((&pick, body)) = input.split_first() else {
                continue;
            };
            let metadata =
                [Metadata::Essential, Metadata::All, Metadata::None][usize::from(pick % 3)];
            if let Ok(out) = optimize(body, &fuzz_options(metadata)) {
                assert!(out.data.len() <= body.len(), "{}", file.path().display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz regressions");
}
