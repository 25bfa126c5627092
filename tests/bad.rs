//! Hostile inputs: each gives a typed error or comes back byte-identical, with no panic and
//! bounded memory.

use picopic_engine::{Error, Limit, Options, optimize};

use crate::alloc::peak_bytes;
use crate::common::{corpus, name};

/// What each file in corpus/bad must produce.
fn expected(file: &str) -> &'static str {
    match file {
        "bomb_claims_100000x100000.png"
        | "gif_huge_logical_screen.gif"
        | "jpeg_claims_65500x65500.jpg"
        | "webp_canvas_16777216_square.webp" => "dimension",
        "ztxt_bomb.png" | "iccp_bomb.png" => "metadata",
        "apng_claims_a_billion_frames.png" => "frames",
        "empty.png" | "text_named_as.png" | "html_named_as.jpg" => "unsupported",
        "bomb_idat_inflates_past_image.png" => "pass-through",
        _ => "decode",
    }
}

#[test]
fn bad_inputs_fail_cleanly_within_bounded_memory() {
    let files = corpus("bad");
    assert!(files.len() >= 20, "bad corpus missing");
    for path in files {
        let file = name(&path);
        let input = std::fs::read(&path).expect("read");
        let (result, peak) = peak_bytes(|| optimize(&input, &Options::default()));
        assert!(peak < 48 << 20, "{file}: peak {peak} bytes");
        let got = match &result {
            Ok(out) if out.data == input && !out.changed => "pass-through",
            Ok(_) => "changed",
            Err(Error::LimitExceeded {
                limit: Limit::Dimension,
                ..
            }) => "dimension",
            Err(Error::LimitExceeded {
                limit: Limit::MetadataBytes,
                ..
            }) => "metadata",
            Err(Error::LimitExceeded {
                limit: Limit::Frames,
                ..
            }) => "frames",
            Err(Error::UnsupportedFormat) => "unsupported",
            Err(Error::Decode { .. }) => "decode",
            Err(_) => "other error",
        };
        assert_eq!(got, expected(&file), "{file}: {result:?}");
    }
}

#[test]
fn input_size_limit_is_checked_first() {
    let mut options = Options::default();
    options.limits.max_input_bytes = 10;
    let err = optimize(b"GIF89a and more than ten bytes", &options).unwrap_err();
    assert!(matches!(
        err,
        Error::LimitExceeded {
            limit: Limit::InputBytes,
            actual: 30,
            max: 10
        }
    ));
}

#[test]
fn invalid_options_are_errors_not_panics() {
    let mut options = Options::default();
    options.limits.max_pixels = 0;
    assert!(matches!(
        optimize(b"", &options),
        Err(Error::InvalidOption(_))
    ));
    let options = Options::default().with_time_budget(std::time::Duration::ZERO);
    assert!(matches!(
        optimize(b"", &options),
        Err(Error::InvalidOption(_))
    ));
}

#[test]
fn every_truncation_of_a_small_png_is_handled() {
    let png = std::fs::read(
        corpus("tiny")
            .into_iter()
            .find(|p| name(p) == "rgba8_stored_should_shrink.png")
            .expect("fixture"),
    )
    .expect("read");
    for len in 0..png.len() {
        let result = optimize(&png[..len], &Options::default());
        assert!(result.is_err(), "truncated at {len} must not pass");
    }
}
