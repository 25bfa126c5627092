//! `lossy-report`: picopic's lossy mode beside sharp (mozjpeg, AVIF) and cwebp, every output
//! scored by a scorer that shares no code with picopic, and each reference encoder's "oracle":
//! the smallest output it can make that still reaches the target score.
//!
//! ```text
//! lossy-report [--target high] [--out target/lossy-report]
//!              [--oracle-cache corpus/holdout/oracle.json] [--picopic target/release/picopic]
//!              [--sharp-script benches/scripts/sharp.js] [--ssimulacra2 ssimulacra2_rs]
//!              [--oracle-only] [--no-oracle] DIR|FILE...
//! ```
//!
//! The scorer: sharp (libvips, `benches/scripts/sharp.js`) decodes the source and the output
//! with orientation and ICC profile applied into 8-bit sRGB, flattens alpha on black and on
//! white, and `ssimulacra2_rs image` scores both pairs; the lower score counts. Needs `node`
//! with sharp (`SHARP_DIR`, or `npm install` in `benches/scripts`), `cwebp` and
//! `ssimulacra2_rs` (`cargo install ssimulacra2_rs --no-default-features`).
//!
//! Every encoder runs as a child process, one at a time, timed for wall time and peak RSS
//! (`ru_maxrss` from `wait4`); the sharp columns' times and memory include starting Node
//! (about 0.1 s and 50 MiB). Oracles bisect the quality 1..=100 and are cached by file
//! hash, anchor and target, since they take many encodes. Writes a table to stdout and
//! `report.json` and `report.html` (one bytes-against-score chart per file) to `--out`.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use picopic_engine::{Format, detect};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Command-line settings.
struct Config {
    /// The target as given (`high`), passed on to picopic.
    target_name: String,
    /// The score every output should reach.
    target: f64,
    out: PathBuf,
    oracle_cache: PathBuf,
    picopic: PathBuf,
    script: PathBuf,
    ssimulacra2: PathBuf,
    oracle_only: bool,
    no_oracle: bool,
    inputs: Vec<PathBuf>,
}

const USAGE: &str = "usage: lossy-report [--target high|visually-lossless|medium|SCORE] \
[--out DIR] [--oracle-cache FILE] [--picopic PATH] [--sharp-script PATH] \
[--ssimulacra2 PATH] [--oracle-only] [--no-oracle] DIR|FILE...";

/// The score a named target stands for, as picopic reads it.
fn target_score(name: &str) -> Option<f64> {
    match name {
        "visually-lossless" => Some(90.0),
        "high" => Some(80.0),
        "medium" => Some(70.0),
        other => other.parse().ok().filter(|s: &f64| s.is_finite()),
    }
}

fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    let mut switches = Vec::new();
    let mut inputs = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--oracle-only" | "--no-oracle" => switches.push(arg.as_str()),
            flag @ ("--target" | "--out" | "--oracle-cache" | "--picopic" | "--sharp-script"
            | "--ssimulacra2") => {
                let value = iter.next().ok_or(format!("{flag} needs a value"))?;
                values.insert(flag, value.clone());
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            input => inputs.push(PathBuf::from(input)),
        }
    }
    if inputs.is_empty() {
        return Err("no input folders or files".into());
    }
    let mut take = |flag: &str, default: &str| values.remove(flag).unwrap_or(default.into());
    let target_name = take("--target", "high");
    let target =
        target_score(&target_name).ok_or(format!("--target {target_name:?} is not a target"))?;
    Ok(Config {
        target,
        out: take("--out", "target/lossy-report").into(),
        oracle_cache: take("--oracle-cache", "corpus/holdout/oracle.json").into(),
        picopic: take("--picopic", "target/release/picopic").into(),
        script: take(
            "--sharp-script",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sharp.js"),
        )
        .into(),
        ssimulacra2: take("--ssimulacra2", "ssimulacra2_rs").into(),
        oracle_only: switches.contains(&"--oracle-only"),
        no_oracle: switches.contains(&"--no-oracle"),
        target_name,
        inputs,
    })
}

/// Whether `program` runs at all: a path that exists or a name found on `PATH`.
fn available(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn check_tools(config: &Config) -> Result<(), String> {
    let mut needed = vec![
        (PathBuf::from("node"), "Node.js"),
        (PathBuf::from("cwebp"), "the webp package"),
        (
            config.ssimulacra2.clone(),
            "cargo install ssimulacra2_rs --no-default-features",
        ),
        (config.script.clone(), "--sharp-script"),
    ];
    if !config.oracle_only {
        needed.push((
            config.picopic.clone(),
            "cargo build --release -p picopic-engine",
        ));
    }
    let missing: Vec<String> = needed
        .iter()
        .filter(|(program, _)| !available(program))
        .map(|(program, hint)| format!("{} ({hint})", program.display()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not found: {}", missing.join(", ")))
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// A finished child: its stdout, wall time and peak resident memory.
struct Measured {
    stdout: String,
    seconds: f64,
    peak_kib: u64,
}

/// Runs a child to completion, timing it and reading its peak RSS from `wait4`. Its stderr
/// goes to `stderr_file`, quoted in the error when it fails.
fn measure(command: &mut Command, stderr_file: &Path) -> Result<Measured, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let stderr = File::create(stderr_file).map_err(|e| format!("{}: {e}", s(stderr_file)))?;
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our own child, not yet reaped (std never waited on it); the pointers
    // are to live locals for the duration of the call.
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return Err(format!("{name}: wait4 failed"));
    }
    let seconds = start.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = std::fs::read_to_string(stderr_file).unwrap_or_default();
        return Err(format!("{name} failed: {}", reason(&stdout, &stderr)));
    }
    Ok(Measured {
        stdout,
        seconds,
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

/// Runs a helper (decoder, scorer, oracle encode) that is not measured; returns its stdout.
fn run(command: &mut Command) -> Result<String, String> {
    let name = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| format!("{name}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{name} failed: {}", last_line(&stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Why a child failed: the `error` of a JSON line it printed (picopic `--json`), else the
/// last line of its stderr.
fn reason(stdout: &str, stderr: &str) -> String {
    json_line(stdout)
        .ok()
        .and_then(|line| line["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| last_line(stderr).to_owned())
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_owned)
        .ok_or(format!("sha256sum {}: no hash", s(path)))
}

// ---------------------------------------------------------------------------------------------
// The independent scorer
// ---------------------------------------------------------------------------------------------

/// An image as sharp displays it: 8-bit sRGB PNGs flattened on black and, for images with
/// alpha, on white.
#[derive(Clone)]
struct Decoded {
    black: PathBuf,
    white: Option<PathBuf>,
    width: u64,
    height: u64,
}

fn decode(config: &Config, image: &Path, prefix: &Path) -> Result<Decoded, String> {
    let out = run(Command::new("node")
        .arg(&config.script)
        .arg("decode")
        .arg(image)
        .arg(prefix))?;
    let info: Value = serde_json::from_str(out.trim()).map_err(|e| format!("sharp.js: {e}"))?;
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}.png", s(prefix)));
    Ok(Decoded {
        black: with("black"),
        white: info["alpha"]
            .as_bool()
            .unwrap_or(false)
            .then(|| with("white")),
        width: info["width"].as_u64().unwrap_or(0),
        height: info["height"].as_u64().unwrap_or(0),
    })
}

/// The source's flattened PNGs, kept in `cache_dir` by content hash across runs.
fn decode_source(config: &Config, path: &Path, sha: &str) -> Result<Decoded, String> {
    let cache_dir = config.out.join("sources");
    std::fs::create_dir_all(&cache_dir).map_err(|e| format!("{}: {e}", s(&cache_dir)))?;
    let prefix = cache_dir.join(sha.get(..16).unwrap_or(sha));
    let meta = prefix.with_extension("json");
    if let Some(decoded) = cached_source(&meta) {
        return Ok(decoded);
    }
    let decoded = decode(config, path, &prefix)?;
    let info = json!({
        "black": s(&decoded.black),
        "white": decoded.white.as_deref().map(s),
        "width": decoded.width, "height": decoded.height,
    });
    std::fs::write(&meta, info.to_string()).map_err(|e| format!("{}: {e}", s(&meta)))?;
    Ok(decoded)
}

/// A source decoded by an earlier run, if its PNGs are all still there.
fn cached_source(meta: &Path) -> Option<Decoded> {
    let info: Value = serde_json::from_str(&std::fs::read_to_string(meta).ok()?).ok()?;
    let decoded = Decoded {
        black: PathBuf::from(info["black"].as_str()?),
        white: info["white"].as_str().map(PathBuf::from),
        width: info["width"].as_u64()?,
        height: info["height"].as_u64()?,
    };
    let present = decoded.black.is_file() && decoded.white.as_ref().is_none_or(|w| w.is_file());
    present.then_some(decoded)
}

/// The score in `ssimulacra2_rs`'s output: the last number it prints.
fn parse_score(text: &str) -> Option<f64> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '=')
        .filter_map(|t| t.parse::<f64>().ok())
        .rfind(|v| v.is_finite())
}

fn ssimulacra2(config: &Config, source: &Path, distorted: &Path) -> Result<f64, String> {
    let out = run(Command::new(&config.ssimulacra2)
        .arg("image")
        .arg(source)
        .arg(distorted))?;
    parse_score(&out).ok_or(format!("no score in {:?}", out.trim()))
}

/// An output's independent score on black and, when either image has alpha, on white.
#[derive(Clone, Copy)]
struct Score {
    black: f64,
    white: Option<f64>,
}

impl Score {
    /// The score that counts: the lower of the two backgrounds.
    fn min(self) -> f64 {
        self.white.map_or(self.black, |w| w.min(self.black))
    }
}

fn score(config: &Config, source: &Decoded, output: &Path, prefix: &Path) -> Result<Score, String> {
    let out = decode(config, output, prefix)?;
    if (out.width, out.height) != (source.width, source.height) {
        return Err(format!(
            "displayed size {}x{} differs from the source's {}x{}",
            out.width, out.height, source.width, source.height
        ));
    }
    let black = ssimulacra2(config, &source.black, &out.black)?;
    // An opaque image looks the same on any background.
    let white = if source.white.is_some() || out.white.is_some() {
        let src = source.white.as_ref().unwrap_or(&source.black);
        let dst = out.white.as_ref().unwrap_or(&out.black);
        Some(ssimulacra2(config, src, dst)?)
    } else {
        None
    };
    Ok(Score { black, white })
}

// ---------------------------------------------------------------------------------------------
// Encoders
// ---------------------------------------------------------------------------------------------

/// A reference encoder with a quality knob: the tools picopic is compared with, and the
/// oracles' anchors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Mozjpeg,
    Cwebp,
    Avif,
}

const ANCHORS: [Anchor; 3] = [Anchor::Mozjpeg, Anchor::Cwebp, Anchor::Avif];

impl Anchor {
    fn name(self) -> &'static str {
        match self {
            Self::Mozjpeg => "mozjpeg",
            Self::Cwebp => "cwebp",
            Self::Avif => "avif",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Mozjpeg => "jpg",
            Self::Cwebp => "webp",
            Self::Avif => "avif",
        }
    }

    /// The command that encodes `input` at `quality` into `output`.
    fn command(self, config: &Config, quality: u8, input: &Path, output: &Path) -> Command {
        let mut command;
        match self {
            Self::Mozjpeg | Self::Avif => {
                let format = if self == Self::Avif { "avif" } else { "jpeg" };
                command = Command::new("node");
                command
                    .arg(&config.script)
                    .args(["encode", format, &quality.to_string()])
                    .arg(input)
                    .arg(output);
            }
            Self::Cwebp => {
                command = Command::new("cwebp");
                command
                    .args(["-quiet", "-q", &quality.to_string(), "-metadata", "icc"])
                    .arg(input)
                    .arg("-o")
                    .arg(output);
            }
        }
        command
    }
}

/// One column of the comparison.
#[derive(Clone, Copy)]
enum Tool {
    /// picopic's lossy mode with this `--format`.
    Picopic(&'static str),
    /// A reference encoder at a fixed quality.
    Fixed(Anchor, u8),
}

const TOOLS: [(&str, Tool); 5] = [
    ("picopic auto", Tool::Picopic("auto")),
    ("picopic jpeg", Tool::Picopic("jpeg")),
    ("sharp mozjpeg q80", Tool::Fixed(Anchor::Mozjpeg, 80)),
    ("sharp avif q55", Tool::Fixed(Anchor::Avif, 55)),
    ("cwebp q80", Tool::Fixed(Anchor::Cwebp, 80)),
];

/// One tool on one file.
struct Run {
    bytes: u64,
    seconds: f64,
    peak_kib: u64,
    score: Result<Score, String>,
    /// picopic only: its `encodes`, its own score and the format it chose.
    encodes: Option<u64>,
    own_score: Option<f64>,
    format_out: Option<String>,
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn run_tool(
    config: &Config,
    (name, tool): (&str, Tool),
    input: &Path,
    source: &Decoded,
) -> Result<Run, String> {
    let scratch = config.out.join("scratch");
    let stderr = scratch.join("stderr.txt");
    let (output, measured, picopic) = match tool {
        Tool::Picopic(format) => {
            let dir = scratch.join(slug(name));
            let measured = measure(
                Command::new(&config.picopic)
                    .args(["--mode", "lossy", "--target", &config.target_name])
                    .args(["--format", format, "--json", "-o"])
                    .arg(&dir)
                    .arg(input),
                &stderr,
            )?;
            let line = json_line(&measured.stdout)?;
            if let Some(error) = line["error"].as_str() {
                return Err(format!("picopic: {error}"));
            }
            // Nothing written when nothing beat the input: the input stands.
            let output = line["output"]
                .as_str()
                .map_or_else(|| input.to_path_buf(), PathBuf::from);
            (output, measured, Some(line))
        }
        Tool::Fixed(anchor, quality) => {
            let output = scratch.join(format!("{}.{}", slug(name), anchor.extension()));
            let _ = std::fs::remove_file(&output);
            let measured = measure(
                &mut anchor.command(config, quality, input, &output),
                &stderr,
            )?;
            (output, measured, None)
        }
    };
    let bytes = std::fs::metadata(&output)
        .map_err(|e| format!("{}: {e}", s(&output)))?
        .len();
    let score = score(
        config,
        source,
        &output,
        &scratch.join(format!("{}-out", slug(name))),
    );
    Ok(Run {
        bytes,
        seconds: measured.seconds,
        peak_kib: measured.peak_kib,
        score,
        encodes: picopic.as_ref().and_then(|l| l["encodes"].as_u64()),
        own_score: picopic.as_ref().and_then(|l| l["ssimulacra2"].as_f64()),
        format_out: picopic.and_then(|l| l["format_out"].as_str().map(str::to_owned)),
    })
}

/// The first JSON object picopic's `--json` printed.
fn json_line(stdout: &str) -> Result<Value, String> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or(format!(
            "picopic --json printed no JSON: {:?}",
            last_line(stdout)
        ))?;
    serde_json::from_str(line).map_err(|e| format!("picopic --json: {e}"))
}

/// picopic's lossless result size: the floor of the `auto` oracle.
fn lossless_bytes(config: &Config, input: &Path) -> Result<u64, String> {
    let out = run(Command::new(&config.picopic).arg("--json").arg(input))?;
    let line = json_line(&out)?;
    line["bytes_out"]
        .as_u64()
        .ok_or(format!("picopic: no bytes_out in {:?}", out.trim()))
}

// ---------------------------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------------------------

/// One encode of a bisection.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    quality: u8,
    bytes: u64,
    score: f64,
}

/// An anchor's bisection on one file: every encode tried and the smallest that reached the
/// target, if any did.
#[derive(Clone, Debug, PartialEq)]
struct Oracle {
    best: Option<Step>,
    steps: Vec<Step>,
}

/// Bisects quality 1..=100 for the lowest that reaches `target`, assuming the score grows
/// with quality. Seven encodes; the smallest passing output among them is the answer.
fn bisect(
    target: f64,
    mut encode: impl FnMut(u8) -> Result<(u64, f64), String>,
) -> Result<Oracle, String> {
    // Invariant: quality `fail` is known to miss (0 stands for "below the range") and `pass`
    // to reach (101 for "above the range").
    let (mut fail, mut pass) = (0u8, 101u8);
    let mut steps = Vec::new();
    while pass - fail > 1 {
        let quality = fail + (pass - fail) / 2;
        let (bytes, score) = encode(quality)?;
        steps.push(Step {
            quality,
            bytes,
            score,
        });
        if score >= target {
            pass = quality;
        } else {
            fail = quality;
        }
    }
    let best = steps
        .iter()
        .filter(|step| step.score >= target)
        .min_by_key(|step| step.bytes)
        .copied();
    Ok(Oracle { best, steps })
}

fn step_json(step: &Step) -> Value {
    json!([step.quality, step.bytes, step.score])
}

fn step_from(value: &Value) -> Option<Step> {
    Some(Step {
        quality: u8::try_from(value.get(0)?.as_u64()?).ok()?,
        bytes: value.get(1)?.as_u64()?,
        score: value.get(2)?.as_f64()?,
    })
}

fn oracle_json(oracle: &Oracle) -> Value {
    json!({
        "best": oracle.best.as_ref().map(step_json),
        "steps": oracle.steps.iter().map(step_json).collect::<Vec<_>>(),
    })
}

fn oracle_from(value: &Value) -> Option<Oracle> {
    let steps = value["steps"]
        .as_array()?
        .iter()
        .map(step_from)
        .collect::<Option<Vec<_>>>()?;
    let best = if value["best"].is_null() {
        None
    } else {
        Some(step_from(&value["best"])?)
    };
    Some(Oracle { best, steps })
}

/// The oracle cache: `sha256:anchor:target` to an oracle, one JSON object in a file.
struct Cache {
    path: PathBuf,
    entries: serde_json::Map<String, Value>,
}

impl Cache {
    fn open(path: &Path) -> Result<Self, String> {
        let entries = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", s(path)))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
            Err(e) => return Err(format!("{}: {e}", s(path))),
        };
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    fn key(sha: &str, anchor: Anchor, target: f64) -> String {
        format!("{sha}:{}:{target}", anchor.name())
    }

    fn get(&self, key: &str) -> Option<Oracle> {
        self.entries.get(key).and_then(oracle_from)
    }

    /// Stores an entry and rewrites the file (through a temporary file and a rename, so an
    /// interrupted run leaves the old cache whole).
    fn put(&mut self, key: String, oracle: &Oracle) -> Result<(), String> {
        self.entries.insert(key, oracle_json(oracle));
        let text = serde_json::to_string_pretty(&self.entries).map_err(|e| e.to_string())?;
        let temp = self.path.with_extension("json.tmp");
        std::fs::write(&temp, text + "\n")
            .and_then(|()| std::fs::rename(&temp, &self.path))
            .map_err(|e| format!("{}: {e}", s(&self.path)))
    }
}

fn find_oracle(
    config: &Config,
    cache: &mut Cache,
    anchor: Anchor,
    (input, sha): (&Path, &str),
    source: &Decoded,
) -> Result<Oracle, String> {
    let key = Cache::key(sha, anchor, config.target);
    if let Some(oracle) = cache.get(&key) {
        return Ok(oracle);
    }
    let scratch = config.out.join("scratch");
    let output = scratch.join(format!("oracle-{}.{}", anchor.name(), anchor.extension()));
    let prefix = scratch.join(format!("oracle-{}-out", anchor.name()));
    let oracle = bisect(config.target, |quality| {
        let _ = std::fs::remove_file(&output);
        run(&mut anchor.command(config, quality, input, &output))?;
        let bytes = std::fs::metadata(&output)
            .map_err(|e| format!("{}: {e}", s(&output)))?
            .len();
        let score = score(config, source, &output, &prefix)?.min();
        Ok((bytes, score))
    })?;
    cache.put(key, &oracle)?;
    Ok(oracle)
}

// ---------------------------------------------------------------------------------------------
// Per file
// ---------------------------------------------------------------------------------------------

/// Everything measured on one file.
struct FileReport {
    path: PathBuf,
    megapixels: f64,
    bytes_in: u64,
    alpha: bool,
    runs: Vec<(&'static str, Result<Run, String>)>,
    oracles: Vec<(Anchor, Result<Oracle, String>)>,
    lossless: Result<u64, String>,
}

impl FileReport {
    fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(|| s(&self.path), |n| n.to_string_lossy().into_owned())
    }

    fn run(&self, tool: &str) -> Option<&Run> {
        self.runs
            .iter()
            .find(|(name, _)| *name == tool)
            .and_then(|(_, r)| r.as_ref().ok())
    }

    fn oracle(&self, anchor: Anchor) -> Option<Step> {
        self.oracles
            .iter()
            .find(|(a, _)| *a == anchor)
            .and_then(|(_, o)| o.as_ref().ok())
            .and_then(|o| o.best)
    }

    /// The best of the three anchors' oracles.
    fn best_anchor(&self) -> Option<(Anchor, Step)> {
        ANCHORS
            .iter()
            .filter_map(|&a| Some((a, self.oracle(a)?)))
            .min_by_key(|(_, step)| step.bytes)
    }

    /// The `auto` oracle: the best anchor or the lossless result (the input when picopic's
    /// lossless run failed), whichever is smaller. `None` when no anchor ran.
    fn auto_oracle(&self) -> Option<u64> {
        if self.oracles.iter().all(|(_, o)| o.is_err()) {
            return None;
        }
        let lossless = self.lossless.as_ref().map_or(self.bytes_in, |b| *b);
        Some(
            self.best_anchor()
                .map_or(lossless, |(_, s)| s.bytes.min(lossless)),
        )
    }

    /// Bytes of a column: a tool's name, `oracle <anchor>` or `oracle auto`.
    fn bytes(&self, column: &str) -> Option<u64> {
        match column.strip_prefix("oracle ") {
            Some("auto") => self.auto_oracle(),
            Some(anchor) => ANCHORS
                .iter()
                .find(|a| a.name() == anchor)
                .and_then(|&a| self.oracle(a))
                .map(|step| step.bytes),
            None => self.run(column).map(|r| r.bytes),
        }
    }
}

/// The two checked ratios, per file: what picopic made over what the oracle could.
const RATIOS: [(&str, &str); 2] = [
    ("picopic jpeg", "oracle mozjpeg"),
    ("picopic auto", "oracle auto"),
];

fn ratio(file: &FileReport, (lhs, rhs): (&str, &str)) -> Option<f64> {
    Some(file.bytes(lhs)? as f64 / file.bytes(rhs)?.max(1) as f64)
}

fn megapixels(path: &Path) -> Option<(u32, u32)> {
    image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .ok()?
        .into_dimensions()
        .ok()
}

/// The still images in `inputs` (folders read one level deep) at least 64x64 pixels,
/// smallest first so a partial run covers many files.
fn images(inputs: &[PathBuf]) -> Vec<(PathBuf, f64)> {
    let mut paths = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input)
                .map(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.path()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            paths.extend(entries.into_iter().filter(|p| p.is_file()));
        } else {
            paths.push(input.clone());
        }
    }
    let mut out: Vec<(PathBuf, f64)> = paths
        .into_iter()
        .filter(|path| {
            let head = std::fs::read(path).unwrap_or_default();
            matches!(detect(&head), Ok(f) if !matches!(f, Format::Gif | Format::Apng))
        })
        .filter_map(|path| {
            let (w, h) = megapixels(&path)?;
            (w >= 64 && h >= 64).then(|| (path, f64::from(w) * f64::from(h) / 1e6))
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

fn report_file(
    config: &Config,
    cache: &mut Cache,
    path: &Path,
    megapixels: f64,
) -> Result<FileReport, String> {
    let bytes_in = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", s(path)))?
        .len();
    let sha = sha256(path)?;
    let source = decode_source(config, path, &sha)?;
    let mut report = FileReport {
        path: path.to_path_buf(),
        megapixels,
        bytes_in,
        alpha: source.white.is_some(),
        runs: Vec::new(),
        oracles: Vec::new(),
        lossless: Err("not run".into()),
    };
    if !config.no_oracle {
        for anchor in ANCHORS {
            let oracle = find_oracle(config, cache, anchor, (path, &sha), &source);
            report.oracles.push((anchor, oracle));
        }
    }
    if !config.oracle_only {
        report.lossless = lossless_bytes(config, path);
        for (name, tool) in TOOLS {
            report
                .runs
                .push((name, run_tool(config, (name, tool), path, &source)));
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Output: table, summary, JSON, HTML
// ---------------------------------------------------------------------------------------------

fn print_file(file: &FileReport, target: f64) {
    println!(
        "{}  {:.2} MP  {} B{}",
        file.name(),
        file.megapixels,
        file.bytes_in,
        if file.alpha { "  alpha" } else { "" }
    );
    for (name, run) in &file.runs {
        match run {
            Ok(r) => {
                let score = match &r.score {
                    Ok(sc) => format!(
                        "{:6.2}{}",
                        sc.min(),
                        if sc.min() < target { " BELOW" } else { "" }
                    ),
                    Err(e) => format!("score n/a ({e})"),
                };
                let mut extra = String::new();
                if let Some(encodes) = r.encodes {
                    let own = r.own_score.map_or("-".into(), |v| format!("{v:.2}"));
                    let fmt = r.format_out.as_deref().unwrap_or("?");
                    let _ = write!(extra, "  {fmt}, encodes {encodes}, own score {own}");
                }
                println!(
                    "  {name:<20} {:>9} B  score {score}  {:6.2} s  {:5} MiB{extra}",
                    r.bytes,
                    r.seconds,
                    r.peak_kib / 1024
                );
            }
            Err(e) => println!("  {name:<20} failed: {e}"),
        }
    }
    for (anchor, oracle) in &file.oracles {
        let label = format!("oracle {}", anchor.name());
        match oracle {
            Ok(Oracle { best: Some(b), .. }) => println!(
                "  {label:<20} {:>9} B  score {:6.2}  q{}",
                b.bytes, b.score, b.quality
            ),
            Ok(Oracle { steps, .. }) => {
                let top = steps.iter().map(|st| st.score).fold(f64::NAN, f64::max);
                println!("  {label:<20} unreachable (best score {top:.2})");
            }
            Err(e) => println!("  {label:<20} failed: {e}"),
        }
    }
    if let Some(auto) = file.auto_oracle() {
        let lossless = file
            .lossless
            .as_ref()
            .map_or_else(|e| format!("n/a: {e}"), u64::to_string);
        println!("  {:<20} {auto:>9} B  (lossless {lossless})", "oracle auto");
    }
    for pair in RATIOS {
        if let Some(r) = ratio(file, pair) {
            println!("  {} / {}: {r:.3}", pair.0, pair.1);
        }
    }
}

fn columns() -> Vec<String> {
    TOOLS
        .iter()
        .map(|(name, _)| (*name).to_string())
        .chain(ANCHORS.iter().map(|a| format!("oracle {}", a.name())))
        .chain(["oracle auto".to_string()])
        .collect()
}

fn median_max(values: &mut [f64]) -> Option<(f64, f64)> {
    values.sort_by(f64::total_cmp);
    let max = *values.last()?;
    let mid = values.len() / 2;
    let median = if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    };
    Some((median, max))
}

/// `sum(lhs) <= factor * sum(rhs)` over the files that have both.
fn check(files: &[FileReport], lhs: &str, rhs: &str, factor: f64) -> Value {
    let pairs: Vec<(u64, u64)> = files
        .iter()
        .filter_map(|f| Some((f.bytes(lhs)?, f.bytes(rhs)?)))
        .collect();
    let left: u64 = pairs.iter().map(|p| p.0).sum();
    let right: u64 = pairs.iter().map(|p| p.1).sum();
    let bound = factor * right as f64;
    let pass = !pairs.is_empty() && left as f64 <= bound;
    // The totals can hinge on one large file; the median per-file ratio shows the usual case.
    let mut per_file: Vec<f64> = pairs
        .iter()
        .map(|&(l, r)| l as f64 / r.max(1) as f64)
        .collect();
    let median = median_max(&mut per_file).map(|(median, _)| median);
    json!({
        "check": format!("{lhs} total <= {factor} x {rhs} total"),
        "files": pairs.len(), "lhs": left, "rhs": right, "bound": bound.round(),
        "ratio": if right > 0 { left as f64 / right as f64 } else { f64::NAN },
        "median_file_ratio": median,
        "pass": pass,
    })
}

fn tool_summary(files: &[FileReport], tool: &str) -> Option<Value> {
    let runs: Vec<(&FileReport, &Run)> = files
        .iter()
        .filter_map(|f| Some((f, f.run(tool)?)))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut per_mp: Vec<f64> = runs
        .iter()
        .filter(|(f, _)| f.megapixels > 0.0)
        .map(|(f, r)| r.seconds / f.megapixels)
        .collect();
    let mut rss: Vec<f64> = runs
        .iter()
        .map(|(_, r)| r.peak_kib as f64 / 1024.0)
        .collect();
    let mut encodes: Vec<f64> = runs
        .iter()
        .filter_map(|(_, r)| r.encodes)
        .map(|e| e as f64)
        .collect();
    let lowest = runs
        .iter()
        .filter_map(|(f, r)| Some((r.score.as_ref().ok()?.min(), f.name())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let unscored: Vec<String> = runs
        .iter()
        .filter(|(_, r)| r.score.is_err())
        .map(|(f, _)| f.name())
        .collect();
    let pair = |v: Option<(f64, f64)>| v.map(|(median, max)| json!({"median": median, "max": max}));
    Some(json!({
        "files": runs.len(),
        "bytes": runs.iter().map(|(_, r)| r.bytes).sum::<u64>(),
        "seconds_per_megapixel": pair(median_max(&mut per_mp)),
        "peak_rss_mib": pair(median_max(&mut rss)),
        "encodes": pair(median_max(&mut encodes)),
        "lowest_score": lowest.map(|(score, file)| json!({"score": score, "file": file})),
        "unscored": unscored,
    }))
}

fn summarize(files: &[FileReport], target: f64) -> Value {
    let columns = columns();
    // Totals over the files where every column has a value, so they compare like with like.
    let complete: Vec<&FileReport> = files
        .iter()
        .filter(|f| columns.iter().all(|c| f.bytes(c).is_some()))
        .collect();
    let totals: serde_json::Map<String, Value> = columns
        .iter()
        .map(|c| {
            let all: u64 = files.iter().filter_map(|f| f.bytes(c)).sum();
            let n = files.iter().filter(|f| f.bytes(c).is_some()).count();
            let common: u64 = complete.iter().filter_map(|f| f.bytes(c)).sum();
            (
                c.clone(),
                json!({"files": n, "bytes": all, "bytes_on_complete_files": common}),
            )
        })
        .collect();
    let tools: serde_json::Map<String, Value> = TOOLS
        .iter()
        .filter_map(|(name, _)| Some(((*name).to_string(), tool_summary(files, name)?)))
        .collect();
    let below: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            f.runs.iter().filter_map(move |(name, run)| {
                let run = run.as_ref().ok()?;
                let score = run.score.as_ref().map_or(f64::NAN, |sc| sc.min());
                let low = name.starts_with("picopic") && (score.is_nan() || score < target);
                low.then(|| json!({"file": f.name(), "tool": name, "score": score}))
            })
        })
        .collect();
    json!({
        "files": files.len(),
        "complete_files": complete.len(),
        "totals": totals,
        "checks": [
            check(files, "picopic jpeg", "oracle mozjpeg", 0.9),
            check(files, "picopic auto", "oracle auto", 1.0),
        ],
        "picopic_below_target": below,
        "tools": tools,
    })
}

fn print_summary(summary: &Value) {
    println!(
        "\n== totals ({} files; {} with every column) ==",
        summary["files"], summary["complete_files"]
    );
    for column in columns() {
        let t = &summary["totals"][&column];
        if !t.is_null() {
            println!(
                "  {column:<20} {:>11} B over {:>3} files   {:>11} B on complete files",
                t["bytes"], t["files"], t["bytes_on_complete_files"]
            );
        }
    }
    println!("\n== checks ==");
    for c in summary["checks"].as_array().into_iter().flatten() {
        println!(
            "  {}  {}: {} vs bound {} (ratio {:.3}, median per-file ratio {:.3}, {} files)",
            if c["files"].as_u64() == Some(0) {
                "N/A "
            } else if c["pass"].as_bool() == Some(true) {
                "PASS"
            } else {
                "FAIL"
            },
            c["check"].as_str().unwrap_or(""),
            c["lhs"],
            c["bound"],
            c["ratio"].as_f64().unwrap_or(f64::NAN),
            c["median_file_ratio"].as_f64().unwrap_or(f64::NAN),
            c["files"]
        );
    }
    let below = summary["picopic_below_target"]
        .as_array()
        .map_or(&[][..], |v| v);
    println!(
        "\n== picopic outputs below the target (must be none): {} ==",
        below.len()
    );
    for b in below {
        println!("  {} {} {}", b["tool"], b["file"], b["score"]);
    }
    println!("\n== per tool ==");
    for (name, _) in TOOLS {
        let t = &summary["tools"][name];
        if !t.is_null() {
            let mm = |v: &Value, digits: usize| {
                if v.is_null() {
                    "-".to_string()
                } else {
                    let median = v["median"].as_f64().unwrap_or(f64::NAN);
                    let max = v["max"].as_f64().unwrap_or(f64::NAN);
                    format!("{median:.digits$}/{max:.digits$}")
                }
            };
            let lowest = &t["lowest_score"];
            println!(
                "  {name:<20} s/MP median/max {}  peak MiB median/max {}  encodes {}  lowest score {:.2} ({})",
                mm(&t["seconds_per_megapixel"], 2),
                mm(&t["peak_rss_mib"], 0),
                mm(&t["encodes"], 0),
                lowest["score"].as_f64().unwrap_or(f64::NAN),
                lowest["file"].as_str().unwrap_or("-"),
            );
        }
    }
}

fn score_json(score: &Result<Score, String>) -> Value {
    match score {
        Ok(sc) => json!({"score": sc.min(), "black": sc.black, "white": sc.white}),
        Err(e) => json!({"score": null, "error": e}),
    }
}

fn file_json(file: &FileReport) -> Value {
    let runs: serde_json::Map<String, Value> = file
        .runs
        .iter()
        .map(|(name, run)| {
            let value = match run {
                Ok(r) => json!({
                    "bytes": r.bytes, "seconds": r.seconds, "peak_kib": r.peak_kib,
                    "independent": score_json(&r.score), "encodes": r.encodes,
                    "picopic_score": r.own_score, "format_out": r.format_out,
                }),
                Err(e) => json!({"error": e}),
            };
            ((*name).to_string(), value)
        })
        .collect();
    let oracles: serde_json::Map<String, Value> = file
        .oracles
        .iter()
        .map(|(anchor, oracle)| {
            let value = oracle
                .as_ref()
                .map_or_else(|e| json!({"error": e}), oracle_json);
            (anchor.name().to_string(), value)
        })
        .collect();
    json!({
        "file": s(&file.path), "megapixels": file.megapixels, "bytes_in": file.bytes_in,
        "alpha": file.alpha, "tools": runs, "oracles": oracles,
        "lossless_bytes": file.lossless.as_ref().ok(),
        "auto_oracle_bytes": file.auto_oracle(),
        "ratios": RATIOS
            .iter()
            .map(|&pair| (format!("{} / {}", pair.0, pair.1), json!(ratio(file, pair))))
            .collect::<serde_json::Map<_, _>>(),
    })
}

const COLORS: [&str; 9] = [
    "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#1f77b4", "#9467bd", "#2ca02c",
    "#000000",
];

/// The points of one file's chart: (column, bytes, score).
fn points(file: &FileReport) -> Vec<(usize, u64, f64)> {
    let mut out = Vec::new();
    for (i, (name, _)) in TOOLS.iter().enumerate() {
        if let Some(r) = file.run(name)
            && let Ok(sc) = &r.score
        {
            out.push((i, r.bytes, sc.min()));
        }
    }
    for (k, &anchor) in ANCHORS.iter().enumerate() {
        if let Some(step) = file.oracle(anchor) {
            out.push((TOOLS.len() + k, step.bytes, step.score));
        }
    }
    if let Some(bytes) = file.auto_oracle() {
        let score = file
            .best_anchor()
            .filter(|(_, st)| st.bytes == bytes)
            .map_or(100.0, |(_, st)| st.score);
        out.push((TOOLS.len() + ANCHORS.len(), bytes, score));
    }
    out
}

/// The plotting area of one chart: bytes `lo..hi` on a log x axis, scores `smin..100` on y.
struct Frame {
    lo: f64,
    hi: f64,
    smin: f64,
}

impl Frame {
    const WIDTH: f64 = 360.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 30.0;
    const BOTTOM: f64 = 28.0;

    fn around(pts: &[(usize, u64, f64)], target: f64) -> Self {
        let lo = pts.iter().map(|p| p.1).min().unwrap_or(1).max(1) as f64 * 0.8;
        let hi = pts.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64 * 1.25;
        // Scores far below the target (a JPEG of an alpha image) are clamped to the bottom.
        let smin = pts
            .iter()
            .map(|p| p.2)
            .fold(target - 10.0, f64::min)
            .max(target - 30.0);
        Self { lo, hi, smin }
    }

    fn x(&self, bytes: f64) -> f64 {
        let span = (self.hi.log10() - self.lo.log10()).max(1e-9);
        Self::LEFT + (bytes.log10() - self.lo.log10()) / span * (Self::WIDTH - Self::LEFT - 10.0)
    }

    fn y(&self, score: f64) -> f64 {
        let span = (100.0 - self.smin).max(1e-9);
        10.0 + (100.0 - score.max(self.smin)) / span * (Self::HEIGHT - Self::BOTTOM - 10.0)
    }

    /// Grid lines at 1, 2 and 5 times powers of ten bytes and every 10 points of score, and
    /// the target as a dashed red line.
    fn axes(&self, target: f64) -> String {
        let mut svg = String::new();
        let (right, base) = (Self::WIDTH - 10.0, Self::HEIGHT - Self::BOTTOM);
        let mut decade = 10f64.powf(self.lo.log10().floor());
        while decade <= self.hi {
            for tick in [decade, 2.0 * decade, 5.0 * decade] {
                if (self.lo..=self.hi).contains(&tick) {
                    let x = self.x(tick);
                    let _ = write!(
                        svg,
                        "<line x1={x:.1} x2={x:.1} y1=10 y2={base} stroke=#ddd /><text x={x:.1} y={} text-anchor=middle>{}</text>",
                        base + 14.0,
                        human(tick.round() as u64)
                    );
                }
            }
            decade *= 10.0;
        }
        let mut score = 100.0;
        while score >= self.smin {
            let y = self.y(score);
            let _ = write!(
                svg,
                "<line x1={} x2={right} y1={y:.1} y2={y:.1} stroke=#eee /><text x=2 y={:.1}>{score}</text>",
                Self::LEFT,
                y + 4.0
            );
            score -= 10.0;
        }
        let ty = self.y(target);
        let _ = write!(
            svg,
            "<line x1={} x2={right} y1={ty:.1} y2={ty:.1} stroke=red stroke-dasharray=4 />",
            Self::LEFT
        );
        svg
    }
}

/// A tool's dot or an oracle's square (the `auto` oracle's larger, so it frames the anchor
/// it equals), with a tooltip.
fn marker(column: usize, name: &str, (x, y): (f64, f64), bytes: u64, score: f64) -> String {
    let color = COLORS[column % COLORS.len()];
    let tip = format!("<title>{name}: {bytes} B, score {score:.2}</title>");
    if column < TOOLS.len() {
        return format!("<circle cx={x:.1} cy={y:.1} r=4 fill={color}>{tip}</circle>");
    }
    let half = if column == TOOLS.len() + ANCHORS.len() {
        7.0
    } else {
        4.0
    };
    format!(
        "<rect x={:.1} y={:.1} width={} height={} fill=none stroke={color} stroke-width=2>{tip}</rect>",
        x - half,
        y - half,
        2.0 * half,
        2.0 * half
    )
}

/// One small chart: bytes on a log x axis, independent score on y, the target as a line.
fn chart(file: &FileReport, target: f64, names: &[String]) -> String {
    let pts = points(file);
    let frame = Frame::around(&pts, target);
    let mut svg = format!(
        "<div class=c><b>{}</b> {:.2} MP, {} B in<br><svg width={} height={}>{}",
        file.name(),
        file.megapixels,
        file.bytes_in,
        Frame::WIDTH,
        Frame::HEIGHT,
        frame.axes(target)
    );
    // Backwards, so picopic's dots end on top of everything they coincide with.
    for &(column, bytes, score) in pts.iter().rev() {
        let name = names.get(column).map_or("", String::as_str);
        let at = (frame.x(bytes as f64), frame.y(score));
        svg.push_str(&marker(column, name, at, bytes, score));
    }
    svg.push_str("</svg></div>");
    svg
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{}MB", b / 1_000_000),
        b if b >= 1_000 => format!("{}kB", b / 1_000),
        b => format!("{b}B"),
    }
}

fn html(files: &[FileReport], summary: &Value, config: &Config) -> String {
    let names = columns();
    let mut page = format!(
        "<!doctype html><meta charset=utf-8><title>picopic lossy report</title><style>body{{font:13px sans-serif;margin:2em}}svg text{{font:10px sans-serif}}.c{{display:inline-block;margin:0 12px 16px 0}}</style><h1>picopic lossy report: target {} ({})</h1><p>Bytes (log) against the independent SSIMULACRA2 score (sharp decode, lower of black/white flattening). Dots: tools; squares: oracles (smallest output of that encoder reaching the target). Red dashed line: the target.</p><p>",
        config.target_name, config.target
    );
    for (i, n) in names.iter().enumerate() {
        let shape = if i < TOOLS.len() {
            "&#9679;"
        } else {
            "&#9633;"
        };
        let _ = write!(
            page,
            "<span style=\"color:{}\">{shape}</span> {n} &nbsp; ",
            COLORS[i % COLORS.len()]
        );
    }
    page.push_str("</p>");
    for file in files {
        page.push_str(&chart(file, config.target, &names));
    }
    let _ = write!(
        page,
        "<h2>Summary</h2><pre>{}</pre>",
        serde_json::to_string_pretty(summary).unwrap_or_default()
    );
    page
}

fn write_reports(config: &Config, files: &[FileReport], summary: &Value) -> Result<(), String> {
    let report = json!({
        "target": config.target_name, "target_score": config.target,
        "picopic": s(&config.picopic),
        "files": files.iter().map(file_json).collect::<Vec<_>>(),
        "summary": summary,
    });
    let json_path = config.out.join("report.json");
    let html_path = config.out.join("report.html");
    std::fs::write(&json_path, format!("{report:#}\n"))
        .and_then(|()| std::fs::write(&html_path, html(files, summary, config)))
        .map_err(|e| format!("{}: {e}", s(&config.out)))?;
    eprintln!("wrote {} and {}", s(&json_path), s(&html_path));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match parse_args(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lossy-report: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_tools(&config) {
        eprintln!("lossy-report: {e}");
        return ExitCode::from(2);
    }
    let prepared = std::fs::create_dir_all(config.out.join("scratch"))
        .map_err(|e| format!("{}: {e}", s(&config.out)))
        .and_then(|()| Cache::open(&config.oracle_cache));
    let mut cache = match prepared {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("lossy-report: {e}");
            return ExitCode::from(2);
        }
    };
    let mut files = Vec::new();
    for (path, mp) in images(&config.inputs) {
        match report_file(&config, &mut cache, &path, mp) {
            Ok(file) => {
                print_file(&file, config.target);
                files.push(file);
            }
            Err(e) => eprintln!("lossy-report: {}: {e}", s(&path)),
        }
    }
    let summary = summarize(&files, config.target);
    print_summary(&summary);
    if let Err(e) = write_reports(&config, &files, &summary) {
        eprintln!("lossy-report: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisect_finds_the_lowest_passing_quality() {
        // Score = quality, size grows with quality: the answer is exactly the target.
        let oracle = bisect(73.0, |q| Ok((u64::from(q) * 10, f64::from(q)))).unwrap();
        let best = oracle.best.unwrap();
        assert_eq!(best.quality, 73);
        assert_eq!(best.bytes, 730);
        assert!(oracle.steps.len() <= 7);
    }

    #[test]
    fn bisect_reports_unreachable_targets() {
        let oracle = bisect(80.0, |q| Ok((u64::from(q), 50.0))).unwrap();
        assert_eq!(oracle.best, None);
        assert_eq!(oracle.steps.last().unwrap().quality, 100);
    }

    #[test]
    fn bisect_handles_a_target_met_everywhere() {
        let oracle = bisect(10.0, |q| Ok((u64::from(q), 90.0))).unwrap();
        assert_eq!(oracle.best.unwrap().quality, 1);
    }

    #[test]
    fn oracles_round_trip_through_the_cache_format() {
        let oracle = bisect(60.0, |q| Ok((u64::from(q) * 3, f64::from(q) + 0.5))).unwrap();
        assert_eq!(oracle_from(&oracle_json(&oracle)), Some(oracle));
    }

    #[test]
    fn scores_are_read_from_the_last_number() {
        assert_eq!(parse_score("Score: 84.1234\n"), Some(84.1234));
        assert_eq!(parse_score("-12.5"), Some(-12.5));
        assert_eq!(parse_score("no score"), None);
    }

    #[test]
    fn targets_follow_picopic_names() {
        assert_eq!(target_score("high"), Some(80.0));
        assert_eq!(target_score("visually-lossless"), Some(90.0));
        assert_eq!(target_score("85.5"), Some(85.5));
        assert_eq!(target_score("best"), None);
    }

    #[test]
    fn medians_of_even_and_odd_lists() {
        assert_eq!(median_max(&mut [3.0, 1.0, 2.0]), Some((2.0, 3.0)));
        assert_eq!(median_max(&mut [4.0, 1.0, 2.0, 3.0]), Some((2.5, 4.0)));
        assert_eq!(median_max(&mut []), None);
    }
}
