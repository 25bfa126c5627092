#![no_main]
//! The whole pipeline under tight limits: no panic, never bigger, unchanged means identical.

use libfuzzer_sys::fuzz_target;
use picopic_engine::optimize;

#[path = "../../tests/fuzz_input.rs"]
mod fuzz_input;

fuzz_target!(|data: &[u8]| {
    let Some((options, input)) = fuzz_input::split(data) else {
        return;
    };
    if let Ok(out) = optimize(input, &options) {
        assert!(out.data.len() <= input.len());
        assert_eq!(out.changed, out.data != input);
    }
});
