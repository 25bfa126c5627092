//! Every corpus image: optimized or unchanged, never bigger, pixels exact, colour kept.

use std::collections::BTreeMap;

use picopic_engine::{Format, Level, Mode, Options, Output, Target, optimize};

use crate::common::{color_metadata, corpus, frames, name};

/// Checks one file and returns its output size.
fn check(path: &std::path::Path) -> u64 {
    let input = std::fs::read(path).expect("read");
    let result =
        optimize(&input, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = name(path);
    assert!(
        result.worst() < Level::Error,
        "{file}: a guard fired: {:?}",
        result.notes
    );
    assert!(result.data.len() <= input.len(), "{file}: grew");
    assert_eq!(result.changed, result.data != input, "{file}: changed flag");
    if result.changed {
        assert!(
            result.data.len() < input.len(),
            "{file}: changed but not smaller"
        );
    }
    if matches!(result.format_in, Format::Gif | Format::Avif) {
        assert!(!result.changed, "{file}: kept formats must pass through");
    }
    if file.contains("should_shrink") {
        assert!(result.changed, "{file}: expected a smaller file");
    }
    if !result.changed {
        // The input itself: nothing to decode (some, like arithmetic or 12-bit JPEGs, the
        // test decoders cannot read).
        assert!(!file.contains("should_shrink"), "{file}");
        return result.data.len() as u64;
    }
    assert_eq!(
        frames(&input),
        frames(&result.data),
        "{file}: pixels differ"
    );
    assert_eq!(
        color_metadata(&input),
        color_metadata(&result.data),
        "{file}: ICC or orientation lost"
    );
    if file.contains("should_stay_animated") {
        assert_eq!(result.format_out, Format::Apng, "{file}");
    }
    if file.starts_with("webp_lossy") || file.starts_with("webp_anim") {
        assert!(
            !result.changed,
            "{file}: lossy and animated WebP pass through"
        );
    }
    result.data.len() as u64
}

/// Every file of dev/, tiny/, jpeg/ and photo/ on two threads; then the byte-regression gate.
#[test]
fn corpus_is_never_bigger_pixel_exact_and_within_baseline() {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (folder, least) in [("dev", 25), ("tiny", 25), ("jpeg", 4), ("photo", 1)] {
        let found = corpus(folder);
        assert!(found.len() >= least, "{folder} corpus missing");
        files.extend(
            found
                .into_iter()
                .map(|p| (format!("{folder}/{}", name(&p)), p)),
        );
    }
    let sizes: Vec<(String, u64)> = std::thread::scope(|s| {
        let halves: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|half| {
                s.spawn(move || {
                    half.iter()
                        .map(|(key, p)| (key.clone(), check(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    let now = BTreeMap::from([("lossless".to_string(), sizes.into_iter().collect())]);
    crate::gate::check(&now);
}

/// Lossy outputs are deterministic too: photos and screenshots of each kind, `auto` and
/// `jpeg` at `high`, in the gate; every changed result scores at least the target.
#[test]
fn lossy_outputs_meet_the_target_and_stay_within_baseline() {
    let files = [
        ("dev", "photo_coffee.png"),
        ("dev", "photo_rocket_icc_orient6.jpg"),
        ("dev", "screenshot_sddm_lines.jpg"),
        ("dev", "screenshot_gnome_topbar_icc.png"),
        ("dev", "gray_camera.png"),
        ("dev", "rgba16_red_globe.png"),
        ("dev", "alpha_icon_user_trash_full_256.png"),
        ("photo", "photo_meadow_crop_0.26mp.png"),
    ];
    let mut now = BTreeMap::new();
    for (mode, output) in [
        ("lossy-auto-high", Output::Auto),
        ("lossy-jpeg-high", Output::Jpeg),
    ] {
        let options = Options::default()
            .with_mode(Mode::Lossy(Target::HIGH))
            .with_output(output);
        let mut sizes = BTreeMap::new();
        for (folder, file) in files {
            let input = crate::common::fixture(folder, file);
            let result = match optimize(&input, &options) {
                Err(picopic_engine::Error::InvalidOption(_)) if file.starts_with("alpha") => {
                    continue;
                }
                other => other.unwrap_or_else(|e| panic!("{file}: {e}")),
            };
            assert!(result.worst() < Level::Error, "{file}: {:?}", result.notes);
            assert!(result.data.len() <= input.len(), "{file}: grew");
            if let Some(score) = result.ssimulacra2 {
                assert!(score >= 80.0, "{mode} {file}: scored {score}");
            }
            sizes.insert(format!("{folder}/{file}"), result.data.len() as u64);
        }
        now.insert(mode.to_string(), sizes);
    }
    crate::gate::check(&now);
}

#[test]
fn orientation_and_icc_survive_where_present() {
    for file in [
        "photo_rocket_icc_orient6.jpg",
        "photo_colorfulcups_icc_exif.jpg",
    ] {
        let path = corpus("dev")
            .into_iter()
            .find(|p| name(p) == file)
            .expect(file);
        let input = std::fs::read(&path).expect("read");
        let out = optimize(&input, &Options::default())
            .expect("optimizes")
            .data;
        let (icc, orientation) = color_metadata(&out);
        assert!(
            icc.is_some_and(|p| p.len() > 100),
            "{file}: ICC profile lost"
        );
        if file.contains("orient6") {
            assert_eq!(
                orientation,
                Some(image::metadata::Orientation::Rotate90),
                "{file}"
            );
        }
    }
    let png = corpus("tiny")
        .into_iter()
        .find(|p| name(p).contains("exif_orient6"))
        .expect("png with eXIf");
    let out = optimize(&std::fs::read(png).expect("read"), &Options::default()).expect("ok");
    assert_eq!(
        color_metadata(&out.data).1,
        Some(image::metadata::Orientation::Rotate90)
    );
    assert!(
        !out.data.windows(4).any(|w| w == b"tEXt"),
        "comments are dropped"
    );
}
