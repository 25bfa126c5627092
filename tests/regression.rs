//! Replays every minimised fuzz crash kept in corpus/regress/<format>/ as the `optimize` fuzz
//! target saw it: each must end in a clean result or error, never a panic.

use std::path::Path;

use picopic_engine::optimize;

use crate::fuzz_input;

#[test]
fn fuzz_regressions_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/regress");
    let mut replayed = 0;
    for folder in std::fs::read_dir(&root).expect("corpus/regress").flatten() {
        if !folder.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path()).expect("folder").flatten() {
            let data = std::fs::read(file.path()).expect("read");
            let Some((options, input)) = fuzz_input::split(&data) else {
                continue;
            };
            if let Ok(out) = optimize(input, &options) {
                assert!(out.data.len() <= input.len(), "{}", file.path().display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz regressions");
}
