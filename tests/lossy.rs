//! Lossy mode through the public API. Outputs are decoded by `image` (zune-jpeg, image-webp,
//! the png crate), orientation applied by `image`, and scored by the `ssimulacra2` crate's
//! own entry point, not by the engine's scorer.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbaImage};
use picopic_engine::{Error, Format, Limits, Mode, Options, Output, Target, optimize};
use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};

use crate::common::fixture;

/// `high`, with a budget of 60 s: for these small images it plans the same search as 20 s,
/// and it keeps the clock's safety net (twice the budget) out of reach of a debug build
/// sharing two cores with the rest of the suite.
fn lossy(output: Output) -> Options {
    Options::default()
        .with_mode(Mode::Lossy(Target::HIGH))
        .with_output(output)
        .with_time_budget(std::time::Duration::from_secs(60))
}

/// Decodes with `image`, orientation applied; also returns the ICC profile.
fn display(bytes: &[u8]) -> (RgbaImage, Option<Vec<u8>>) {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("reader");
    let mut decoder = reader.into_decoder().expect("decoder");
    let icc = decoder.icc_profile().expect("icc");
    let orientation = decoder.orientation().expect("orientation");
    let mut image = DynamicImage::from_decoder(decoder).expect("decodes");
    image.apply_orientation(orientation);
    (image.into_rgba8(), icc)
}

/// The lower SSIMULACRA2 score of the pair flattened on black and on white.
fn score(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let flat = |img: &RgbaImage, bg: f32| {
        let data = img
            .pixels()
            .map(|p| {
                let alpha = f32::from(p[3]) / 255.0;
                let c = |v: u8| (f32::from(v) / 255.0) * alpha + bg * (1.0 - alpha);
                [c(p[0]), c(p[1]), c(p[2])]
            })
            .collect();
        let (w, h) = img.dimensions();
        Rgb::new(
            data,
            w as usize,
            h as usize,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .expect("rgb")
    };
    [0.0, 1.0]
        .into_iter()
        .map(|bg| compute_frame_ssimulacra2(flat(a, bg), flat(b, bg)).expect("score"))
        .fold(f64::INFINITY, f64::min)
}

/// Optimizes `file` with `options` and checks the result: lossy, smaller, the engine's score
/// and an independent one both at least the target.
fn check(folder: &str, file: &str, options: &Options) -> picopic_engine::Optimized {
    let input = fixture(folder, file);
    let out = optimize(&input, options).expect("optimizes");
    assert!(out.changed, "{file}: {:?}", out.notes);
    assert!(out.data.len() < input.len());
    let engine = out.ssimulacra2.expect("a lossy result has a score");
    assert!(engine >= 80.0, "{file}: {engine}");
    assert!(out.encodes >= 1);
    if out.format_out != Format::Avif {
        let (source, _) = display(&input);
        let (result, _) = display(&out.data);
        let independent = score(&source, &result);
        assert!(
            independent >= 79.5,
            "{file}: {independent} (engine {engine})"
        );
    }
    out
}

#[test]
fn a_png_photo_becomes_a_smaller_lossy_file_meeting_the_target() {
    let out = check("dev", "photo_coffee.png", &lossy(Output::Auto));
    assert_ne!(out.format_out, Format::Png, "{:?}", out.notes);
    let jpeg = check("dev", "photo_coffee.png", &lossy(Output::Jpeg));
    assert_eq!(jpeg.format_out, Format::Jpeg);
    let webp = check("dev", "photo_coffee.png", &lossy(Output::WebP));
    assert_eq!(webp.format_out, Format::WebP);
}

#[test]
fn keep_gives_a_palette_png_for_a_png_and_a_jpeg_for_a_jpeg() {
    let out = check("dev", "screenshot_gnome_calendar.png", &lossy(Output::Keep));
    assert_eq!(out.format_out, Format::Png);
    let out = check("dev", "photo_greenmeadow_1mp.jpg", &lossy(Output::Keep));
    assert_eq!(out.format_out, Format::Jpeg);
}

#[test]
fn transparency_never_becomes_jpeg() {
    let input = fixture("dev", "alpha_icon_user_trash_full_256.png");
    let out = optimize(&input, &lossy(Output::Auto)).expect("optimizes");
    assert_ne!(out.format_out, Format::Jpeg);
    match optimize(&input, &lossy(Output::Jpeg)) {
        Err(Error::InvalidOption(message)) => assert!(message.contains("jpeg"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn icc_and_orientation_survive_every_output_format() {
    let input = fixture("dev", "photo_rocket_icc_orient6.jpg");
    let (upright, icc) = display(&input);
    let icc = icc.expect("the fixture has a profile");
    for output in [Output::Jpeg, Output::WebP, Output::Png] {
        let out = optimize(&input, &lossy(output)).expect("optimizes");
        let (pixels, kept) = display(&out.data);
        assert_eq!(pixels.dimensions(), upright.dimensions(), "{output:?}");
        if out.changed {
            assert_eq!(kept.as_deref(), Some(&icc[..]), "{output:?}");
            assert!(score(&upright, &pixels) >= 79.5, "{output:?}");
        }
    }
    // AVIF cannot carry the profile: its pixels are converted to sRGB. `image` cannot decode
    // AVIF, so the engine's scorer checks it (the source colour-managed, both upright).
    let avif = optimize(&input, &lossy(Output::Avif)).expect("optimizes");
    assert_eq!(avif.format_out, Format::Avif, "{:?}", avif.notes);
    let scored = picopic_engine::score(&input, &avif.data, &Limits::default()).expect("scores");
    assert!(scored >= 80.0, "{scored}");
}

/// As oxipng puts an `sRGB` chunk in place of an sRGB `iCCP` in the lossless PNG.
#[test]
fn an_srgb_profile_is_left_out_of_lossy_outputs() {
    let input = fixture("holdout", "photo_chelsea_cat.png");
    let (source, icc) = display(&input);
    let icc = icc.expect("the fixture has a profile");
    assert!(String::from_utf8_lossy(&icc).contains("sRGB IEC61966-2.1"));
    for output in [Output::Jpeg, Output::WebP] {
        let out = check("holdout", "photo_chelsea_cat.png", &lossy(output));
        let (pixels, kept) = display(&out.data);
        assert_eq!(kept, None, "{output:?}");
        assert!(score(&source, &pixels) >= 79.5, "{output:?}");
    }
}

#[test]
fn bad_option_values_are_errors() {
    assert!(Target::new(100.5).is_err());
    assert!(Target::new(f32::NAN).is_err());
    assert!("best".parse::<Target>().is_err());
    assert_eq!("high".parse::<Target>().unwrap(), Target::HIGH);
    assert_eq!("72.5".parse::<Target>().unwrap().score(), 72.5);
    assert!("gif".parse::<Output>().is_err());
    let png = fixture("tiny", "rgb8_should_stay_exact.png");
    let invalid = Options::default().with_output(Output::Jpeg);
    assert!(matches!(
        optimize(&png, &invalid),
        Err(Error::InvalidOption(_))
    ));
}
