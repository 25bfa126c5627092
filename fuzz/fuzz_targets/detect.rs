#![no_main]
//! Detection reads only leading bytes and never panics.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(format) = picopic_engine::detect(data) {
        assert!(!format.mime().is_empty());
    }
});
