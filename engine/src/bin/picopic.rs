//! `picopic`: optimize image files and folders with the picopic engine.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use picopic_engine::{Format, Level, Metadata, Mode, Options, Output, Target, detect, optimize};
use serde_json::json;

/// Shrink PNG, APNG, JPEG, WebP and AVIF images: losslessly by default, or to the smallest
/// JPEG, WebP, AVIF or palette PNG that meets a perceptual target (--mode lossy).
///
/// Without --out-dir nothing is written: the run only reports.
#[derive(Debug, Parser)]
#[command(name = "picopic", version)]
struct Cli {
    /// Files or folders; folders are recursed and their image files (by content) processed.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write each result under DIR with the same relative path.
    #[arg(short, long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Print one JSON object per input on stdout.
    #[arg(long)]
    json: bool,
    /// Encoder effort per image, in seconds: small images get the expensive search.
    #[arg(
        long,
        value_name = "SECS",
        allow_negative_numbers = true,
        default_value_t = Options::default().time_budget.as_secs_f64()
    )]
    budget: f64,
    /// Hard cap per image, in seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    deadline: Option<f64>,
    /// Which metadata to keep.
    #[arg(long, value_enum, default_value_t = MetadataArg::Essential)]
    metadata: MetadataArg,
    /// lossless, or lossy (the default when --target is given).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Lossy target: visually-lossless (SSIMULACRA2 90), high (80, the default), medium (70),
    /// or a score.
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// Output format: keep, auto (the smallest of all four), jpeg, png, webp or avif. Results
    /// in another format get that format's extension.
    #[arg(long, value_name = "FORMAT", default_value = "keep")]
    format: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Pixels stay exactly as they are.
    Lossless,
    /// Pixels may change within the target.
    Lossy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MetadataArg {
    /// ICC profile and EXIF orientation.
    Essential,
    /// Everything.
    All,
    /// Nothing.
    None,
}

/// One input file and where its result goes, relative to the output folder.
#[derive(Debug)]
struct Job {
    /// Position in the run, unique per job; names the job's temporary file.
    index: usize,
    path: PathBuf,
    relative: PathBuf,
}

/// What happened to one input.
#[derive(Debug)]
struct Report {
    path: PathBuf,
    status: &'static str,
    format_in: Option<Format>,
    format_out: Option<Format>,
    output: Option<PathBuf>,
    ssimulacra2: Option<f64>,
    encodes: u32,
    notes: Vec<String>,
    bytes_in: u64,
    bytes_out: u64,
    millis: u128,
    error: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match options(&cli) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("picopic: {message}");
            return ExitCode::from(2);
        }
    };
    let jobs = match collect(&cli.inputs) {
        Ok(jobs) => jobs,
        Err(message) => {
            eprintln!("picopic: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(out_dir) = cli.out_dir.as_deref()
        && let Err(clashes) = check_collisions(&jobs, out_dir, options.output)
    {
        for clash in clashes {
            eprintln!("picopic: {clash}");
        }
        return ExitCode::from(2);
    }
    let bar = progress(jobs.len());
    let reports = each_on_its_thread(&jobs, |job| {
        let report = run(job, &options, cli.out_dir.as_deref());
        if cli.json {
            println!("{}", to_json(&report));
        }
        bar.inc(1);
        report
    });
    bar.finish_and_clear();
    if !std::io::stderr().is_terminal() {
        summary(&reports);
    }
    if reports.iter().any(|r| r.error.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `work` on every job, as many at once as there are cores, each on a thread of its own
/// rather than a rayon task: the engine's own rayon joins, waiting, would otherwise run other
/// images' whole jobs on top of their stack, and a folder of many images overflowed it.
fn each_on_its_thread<T: Sync, R: Send>(jobs: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(jobs.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else {
                            return done;
                        };
                        done.push((index, work(job)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, report)| report).collect()
}

fn options(cli: &Cli) -> Result<Options, String> {
    let seconds = |name: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| format!("--{name} must be a number of seconds, 0 or more"))
    };
    let metadata = match cli.metadata {
        MetadataArg::Essential => Metadata::Essential,
        MetadataArg::All => Metadata::All,
        MetadataArg::None => Metadata::None,
    };
    let output: Output = cli.format.parse().map_err(|e| format!("--format: {e}"))?;
    let target: Option<Target> = cli
        .target
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| format!("--target: {e}"))?;
    let mode = match (cli.mode, target) {
        (Some(ModeArg::Lossless), Some(_)) => {
            return Err("--target applies to --mode lossy only".into());
        }
        (Some(ModeArg::Lossless), None) | (None, None) => Mode::Lossless,
        (Some(ModeArg::Lossy) | None, target) => Mode::Lossy(target.unwrap_or_default()),
    };
    if mode == Mode::Lossless && !matches!(output, Output::Keep | Output::Auto) {
        return Err(format!(
            "--format {}: lossless results keep the input's format; add --mode lossy",
            cli.format
        ));
    }
    let mut options = Options::default()
        .with_mode(mode)
        .with_output(output)
        .with_metadata(metadata)
        .with_time_budget(seconds("budget", cli.budget)?);
    if let Some(deadline) = cli.deadline {
        options = options.with_deadline(seconds("deadline", deadline)?);
    }
    Ok(options)
}

/// Expands folders. Named files are always taken; files found in folders only when their
/// first bytes are an image signature.
fn collect(inputs: &[PathBuf]) -> Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.map_err(|e| e.to_string())?;
                if entry.file_type().is_file() && looks_like_image(entry.path()) {
                    let relative = entry.path().strip_prefix(input).unwrap_or(entry.path());
                    jobs.push(Job {
                        index: jobs.len(),
                        path: entry.path().to_path_buf(),
                        relative: relative.to_path_buf(),
                    });
                }
            }
        } else if input.exists() {
            let name = input
                .file_name()
                .map_or_else(|| input.clone(), PathBuf::from);
            jobs.push(Job {
                index: jobs.len(),
                path: input.clone(),
                relative: name,
            });
        } else {
            return Err(format!("{}: no such file or folder", input.display()));
        }
    }
    Ok(jobs)
}

/// Where the result of `job` is written under `out_dir`: its relative path, with the
/// extension of `format` when the result changed format. Both the write and the collision
/// check go through here.
fn output_path(job: &Job, out_dir: &Path, format: Option<(Format, Format)>) -> PathBuf {
    let path = out_dir.join(&job.relative);
    match format {
        Some((from, to)) if from != to => path.with_extension(to.extension()),
        _ => path,
    }
}

/// What two jobs must not share: the output path, or, when the format may change, the path
/// without its extension (`x.png` and `x.jpg` could both become `x.avif`).
fn collision_key(job: &Job, out_dir: &Path, output: Output) -> PathBuf {
    let path = output_path(job, out_dir, None);
    if output == Output::Keep {
        path
    } else {
        path.with_extension("")
    }
}

/// One message per pair of jobs that would write the same output file: run together, the
/// later write would silently replace the earlier result. Writing over a job's own input
/// (`-o` naming the input folder) is allowed.
fn check_collisions(jobs: &[Job], out_dir: &Path, output: Output) -> Result<(), Vec<String>> {
    let mut first_writer: HashMap<PathBuf, &Job> = HashMap::new();
    let mut clashes = Vec::new();
    for job in jobs {
        match first_writer.entry(collision_key(job, out_dir, output)) {
            Entry::Vacant(slot) => {
                slot.insert(job);
            }
            Entry::Occupied(slot) => clashes.push(format!(
                "{} and {} would both be written to {}; pass their folder instead, \
                 or run them separately",
                slot.get().path.display(),
                job.path.display(),
                slot.key().display()
            )),
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes)
    }
}

fn looks_like_image(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let read = fs::File::open(path).and_then(|mut f| f.read(&mut head));
    read.is_ok_and(|n| detect(&head[..n]).is_ok())
}

fn run(job: &Job, options: &Options, out_dir: Option<&Path>) -> Report {
    let start = Instant::now();
    let mut report = Report {
        path: job.path.clone(),
        status: "error",
        format_in: None,
        format_out: None,
        output: None,
        ssimulacra2: None,
        encodes: 0,
        notes: Vec::new(),
        bytes_in: 0,
        bytes_out: 0,
        millis: 0,
        error: None,
    };
    let outcome = fs::read(&job.path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|input| {
            report.bytes_in = input.len() as u64;
            optimize(&input, options).map_err(|e| e.to_string())
        })
        .and_then(|result| {
            if let Some(dir) = out_dir {
                let formats = Some((result.format_in, result.format_out));
                let path = output_path(job, dir, formats);
                write_atomically(&path, job.index, &result.data)?;
                report.output = Some(path);
            }
            Ok(result)
        });
    report.millis = start.elapsed().as_millis();
    match outcome {
        Ok(result) => {
            for note in result.notes.iter().filter(|n| n.level >= Level::Warn) {
                eprintln!("{}: {}", job.path.display(), note.message);
            }
            report.status = if result.changed {
                "optimized"
            } else {
                "unchanged"
            };
            report.format_in = Some(result.format_in);
            report.format_out = Some(result.format_out);
            report.bytes_out = result.data.len() as u64;
            report.ssimulacra2 = result.ssimulacra2;
            report.encodes = result.encodes;
            report.notes = result.notes.iter().map(|n| n.message.clone()).collect();
        }
        Err(message) => report.error = Some(message),
    }
    report
}

/// Writes beside the target and renames, so a failure leaves no partial file. The temporary
/// name carries the process id and the job index, so no two writes ever share it.
fn write_atomically(target: &Path, job_index: usize, data: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", target.display());
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(fail)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.{}-{job_index}.picopic-tmp",
        std::process::id()
    ));
    let written = fs::File::create(&temp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&temp, target));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

fn to_json(report: &Report) -> serde_json::Value {
    let mut value = json!({
        "path": report.path.display().to_string(),
        "status": report.status,
        "format_in": report.format_in.map(Format::name),
        "format_out": report.format_out.map(Format::name),
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
        "millis": report.millis,
        "encodes": report.encodes,
        "notes": report.notes,
    });
    if let Some(output) = &report.output {
        value["output"] = json!(output.display().to_string());
    }
    if let Some(score) = report.ssimulacra2 {
        value["ssimulacra2"] = json!((score * 100.0).round() / 100.0);
    }
    if let Some(error) = &report.error {
        value["error"] = json!(error);
    }
    value
}

fn progress(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed}") {
        bar.set_style(style);
    }
    bar
}

fn summary(reports: &[Report]) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{:<10} {:>11} {:>11} {:>7} {:>8}  path",
        "status", "bytes in", "bytes out", "saved", "ms"
    );
    for r in reports {
        let saved = if r.bytes_in == 0 {
            0.0
        } else {
            100.0 * (1.0 - r.bytes_out as f64 / r.bytes_in as f64)
        };
        let _ = writeln!(
            err,
            "{:<10} {:>11} {:>11} {:>6.2}% {:>8}  {}{}",
            r.status,
            r.bytes_in,
            r.bytes_out,
            if r.error.is_some() { 0.0 } else { saved },
            r.millis,
            r.path.display(),
            r.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    let ok: Vec<&Report> = reports.iter().filter(|r| r.error.is_none()).collect();
    let (bytes_in, bytes_out) = ok
        .iter()
        .fold((0, 0), |(a, b), r| (a + r.bytes_in, b + r.bytes_out));
    let _ = writeln!(
        err,
        "{} files, {} failed; {bytes_in} -> {bytes_out} bytes ({} saved)",
        reports.len(),
        reports.len() - ok.len(),
        bytes_in - bytes_out
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each image runs on a thread outside rayon's pool, so the engine's joins never run
    /// another image's job on its stack; reports come back in the jobs' order.
    #[test]
    fn jobs_run_outside_the_rayon_pool_in_order() {
        let jobs: Vec<usize> = (0..50).collect();
        let done = each_on_its_thread(&jobs, |&job| {
            let (inside, _) = rayon::join(rayon::current_thread_index, || ());
            (job, rayon::current_thread_index(), inside.is_some())
        });
        assert_eq!(done.len(), 50);
        for (index, (job, pool_thread, joined_in_pool)) in done.into_iter().enumerate() {
            assert_eq!((job, pool_thread, joined_in_pool), (index, None, true));
        }
        assert!(each_on_its_thread(&[] as &[u8], |_| ()).is_empty());
    }
}
