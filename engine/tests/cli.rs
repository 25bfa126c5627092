//! The `picopic` binary end to end: exit codes, what is written under `-o`, and `--json`.

#![cfg(feature = "cli")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const GOOD: &str = "tiny/rgba8_stored_should_shrink.png";
const CORRUPT: &str = "bad/crc_error.png";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(name)
}

/// A fresh working folder; the binary runs inside it so paths in messages stay short.
fn workdir() -> TempDir {
    tempfile::tempdir().expect("temporary folder")
}

/// Copies a corpus file to `dir/relative`, creating folders on the way.
fn place(dir: &Path, corpus_name: &str, relative: &str) -> PathBuf {
    let target = dir.join(relative);
    fs::create_dir_all(target.parent().expect("parent")).expect("create folder");
    fs::copy(fixture(corpus_name), &target).expect("copy fixture");
    target
}

/// Runs `picopic --budget 0.1 ARGS` in `dir`.
fn picopic(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picopic"))
        .current_dir(dir)
        .args(["--budget", "0.1"])
        .args(args)
        .output()
        .expect("run picopic")
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in fs::read_dir(dir).expect("read folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).expect("under root");
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut found = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut found);
    }
    found.sort();
    found
}

/// Width, height and 8-bit RGBA pixels, decoded with the `png` crate, whatever the colour type.
fn rgba8(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut buffer).expect("png frame");
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "fixture is 8-bit");
    let pixels = &buffer[..frame.buffer_size()];
    let rgba = match frame.color_type {
        png::ColorType::Rgba => pixels.to_vec(),
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => panic!("EXPAND leaves no palette"),
    };
    (frame.width, frame.height, rgba)
}

#[test]
fn good_file_is_written_smaller_and_pixel_exact() {
    let dir = workdir();
    let input = place(dir.path(), GOOD, "in/x.png");
    let output = picopic(dir.path(), &["in/x.png", "-o", "out"]);
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));

    assert_eq!(files_under(&dir.path().join("out")), ["x.png"]);
    let before = fs::read(&input).expect("input");
    let after = fs::read(dir.path().join("out/x.png")).expect("output");
    assert!(
        after.len() < before.len(),
        "{} -> {} bytes",
        before.len(),
        after.len()
    );
    assert_eq!(rgba8(&after), rgba8(&before));
    assert_eq!(fs::read(&input).expect("input"), before, "input untouched");
}

#[test]
fn corrupt_input_exits_1_and_writes_only_the_good_file() {
    let dir = workdir();
    place(dir.path(), GOOD, "in/good.png");
    place(dir.path(), CORRUPT, "in/corrupt.png");
    let output = picopic(dir.path(), &["in/good.png", "in/corrupt.png", "-o", "out"]);
    assert_eq!(code(&output), Some(1), "{}", stderr(&output));
    // No `corrupt.png`, and no temporary file left beside the good one.
    assert_eq!(files_under(&dir.path().join("out")), ["good.png"]);
}

#[test]
fn missing_input_exits_2_and_writes_nothing() {
    let dir = workdir();
    place(dir.path(), GOOD, "in/good.png");
    let output = picopic(dir.path(), &["in/good.png", "in/missing.png", "-o", "out"]);
    assert_eq!(code(&output), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("in/missing.png"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn bad_option_exits_2_and_writes_nothing() {
    let dir = workdir();
    place(dir.path(), GOOD, "in/good.png");
    for bad in [
        &["--budget", "-1"][..],
        &["--budget=-1"],
        &["--budget", "soon"],
        &["--deadline", "-1"],
        &["--deadline", "inf"],
        &["--metadata", "some"],
        &["--no-such-option"],
    ] {
        let mut args = bad.to_vec();
        args.extend(["in/good.png", "-o", "out"]);
        let output = picopic(dir.path(), &args);
        assert_eq!(code(&output), Some(2), "{bad:?}: {}", stderr(&output));
        assert!(!dir.path().join("out").exists(), "{bad:?} wrote output");
    }
}

#[test]
fn two_inputs_with_one_output_path_are_refused() {
    let dir = workdir();
    place(dir.path(), GOOD, "a/x.png");
    place(dir.path(), GOOD, "b/x.png");

    let output = picopic(dir.path(), &["a/x.png", "b/x.png", "-o", "out"]);
    assert_eq!(code(&output), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    for name in ["a/x.png", "b/x.png", "out/x.png"] {
        assert!(message.contains(name), "{name} not named in: {message}");
    }
    assert!(!dir.path().join("out").exists(), "nothing may be written");

    // Two folders holding the same relative path collide the same way.
    let output = picopic(dir.path(), &["a", "b", "-o", "out"]);
    assert_eq!(code(&output), Some(2), "{}", stderr(&output));
    assert!(!dir.path().join("out").exists(), "nothing may be written");
}

#[test]
fn folder_input_keeps_relative_paths() {
    let dir = workdir();
    place(dir.path(), GOOD, "dir/a/x.png");
    place(dir.path(), GOOD, "dir/b/x.png");
    let output = picopic(dir.path(), &["dir", "-o", "out"]);
    assert_eq!(code(&output), Some(0), "{}", stderr(&output));
    let out = dir.path().join("out");
    assert_eq!(files_under(&out), ["a/x.png", "b/x.png"]);
    let original = rgba8(&fs::read(fixture(GOOD)).expect("fixture"));
    for name in ["a/x.png", "b/x.png"] {
        assert_eq!(rgba8(&fs::read(out.join(name)).expect("output")), original);
    }
}

#[test]
fn json_prints_one_object_per_input_with_status() {
    let dir = workdir();
    place(dir.path(), GOOD, "good.png");
    place(dir.path(), CORRUPT, "corrupt.png");
    let output = picopic(dir.path(), &["--json", "good.png", "corrupt.png"]);
    assert_eq!(code(&output), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 stdout");
    let mut statuses: Vec<(String, String)> = stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("one JSON object");
            assert!(value.is_object(), "{line}");
            (
                value["path"].as_str().expect("path").to_owned(),
                value["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("corrupt.png".to_owned(), "error".to_owned()),
            ("good.png".to_owned(), "optimized".to_owned()),
        ]
    );
    // Without -o nothing is written.
    assert_eq!(files_under(dir.path()), ["corrupt.png", "good.png"]);
}

#[test]
fn lossy_results_take_their_format_extension_and_report_it() {
    let dir = workdir();
    place(dir.path(), "dev/photo_coffee.png", "in/coffee.png");
    let run = Command::new(env!("CARGO_BIN_EXE_picopic"))
        .current_dir(dir.path())
        .args([
            "--target", "high", "--format", "jpeg", "--json", "-o", "out", "in",
        ])
        .output()
        .expect("run picopic");
    assert_eq!(code(&run), Some(0), "{}", stderr(&run));
    assert_eq!(files_under(&dir.path().join("out")), ["coffee.jpg"]);
    let line = String::from_utf8_lossy(&run.stdout);
    let json: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(json["format_out"], "jpeg");
    assert_eq!(json["output"], "out/coffee.jpg");
    assert!(
        json["ssimulacra2"].as_f64().expect("score") >= 80.0,
        "{json}"
    );
    assert!(json["encodes"].as_u64().expect("encodes") >= 1);
}

#[test]
fn inputs_that_could_meet_at_one_output_path_are_refused() {
    let dir = workdir();
    place(dir.path(), GOOD, "in/x.png");
    place(dir.path(), "dev/tiny_flatfield.jpg", "in/x.jpg");
    let run = picopic(
        dir.path(),
        &["--target", "high", "--format", "auto", "-o", "out", "in"],
    );
    assert_eq!(code(&run), Some(2));
    assert!(
        stderr(&run).contains("x.png") && stderr(&run).contains("x.jpg"),
        "{}",
        stderr(&run)
    );
    assert!(!dir.path().join("out").exists(), "nothing may be written");
    // Keeping the format, the two names cannot meet.
    let run = picopic(dir.path(), &["-o", "out", "in"]);
    assert_eq!(code(&run), Some(0), "{}", stderr(&run));
}

#[test]
fn invalid_lossy_values_exit_2_naming_the_flag() {
    let dir = workdir();
    place(dir.path(), GOOD, "a.png");
    for (args, flag) in [
        (&["--target", "superb", "a.png"][..], "--target"),
        (&["--target", "120", "a.png"][..], "--target"),
        (&["--format", "gif", "a.png"][..], "--format"),
        (
            &["--mode", "lossless", "--format", "avif", "a.png"][..],
            "--format",
        ),
        (
            &["--mode", "lossless", "--target", "high", "a.png"][..],
            "--target",
        ),
        (&["--mode", "blurry", "a.png"][..], "--mode"),
    ] {
        let run = picopic(dir.path(), args);
        assert_eq!(code(&run), Some(2), "{args:?}");
        assert!(stderr(&run).contains(flag), "{args:?}: {}", stderr(&run));
    }
}
