//! Criterion benchmarks: detection, decoding, and each codec's lossless path over the corpus,
//! grouped by format and size class, with throughput in pixels (criterion's "elem/s" is
//! pixels per second here) and in bytes; the lossy search per output format, and scoring.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use picopic_engine::{Limits, Mode, Options, Output, Target, detect, optimize, score};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/dev");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus/dev")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect()
}

/// Pixels of the first frame, read from the header; 0 when `image` cannot read it.
fn pixels(bytes: &[u8]) -> u64 {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .map_or(0, |(w, h)| u64::from(w) * u64::from(h))
}

fn throughput(bytes: &[u8]) -> Throughput {
    match pixels(bytes) {
        0 => Throughput::Bytes(bytes.len() as u64),
        elements => Throughput::ElementsAndBytes {
            elements,
            bytes: bytes.len() as u64,
        },
    }
}

/// "small" under 64 KiB, "medium" under 1 MiB, "large" beyond.
fn size_class(len: usize) -> &'static str {
    match len {
        0..65_536 => "small",
        65_536..1_048_576 => "medium",
        _ => "large",
    }
}

fn benches(c: &mut Criterion) {
    let files = corpus();
    // Detection reads a few leading bytes, so a throughput over the whole file would mislead.
    let mut group = c.benchmark_group("detect");
    for (name, bytes) in &files {
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| detect(black_box(bytes)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode");
    for (name, bytes) in files.iter().filter(|(_, b)| b.len() < 1 << 20) {
        group.throughput(throughput(bytes));
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| image::load_from_memory(black_box(bytes)).ok())
        });
    }
    group.finish();

    // The lossless path with a small budget so the suite finishes; one sample set per file.
    let options = Options::default().with_time_budget(Duration::from_millis(200));
    for (name, bytes) in &files {
        let Ok(format) = detect(bytes) else { continue };
        let mut group = c.benchmark_group(format!("lossless/{format}/{}", size_class(bytes.len())));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.throughput(throughput(bytes));
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| optimize(black_box(bytes), &options))
        });
        group.finish();
    }

    // The lossy search per output format, on still photos and screenshots under 1 MiB.
    let stills = files.iter().filter(|(name, bytes)| {
        bytes.len() < 1 << 20
            && (name.starts_with("photo") || name.starts_with("screenshot"))
            && !name.ends_with(".gif")
    });
    for (name, bytes) in stills.clone() {
        for (label, output) in [
            ("jpeg", Output::Jpeg),
            ("webp", Output::WebP),
            ("avif", Output::Avif),
            ("auto", Output::Auto),
        ] {
            let options = Options::default()
                .with_mode(Mode::Lossy(Target::HIGH))
                .with_output(output)
                .with_time_budget(Duration::from_secs(4));
            let mut group = c.benchmark_group(format!("lossy/{label}"));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(10));
            group.throughput(throughput(bytes));
            group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
                b.iter(|| optimize(black_box(bytes), &options))
            });
            group.finish();
        }
    }

    // One score of a lossy JPEG against its source: both decoded, the source's side included.
    let jpeg = Options::default()
        .with_mode(Mode::Lossy(Target::MEDIUM))
        .with_output(Output::Jpeg);
    let mut group = c.benchmark_group("score");
    group.sample_size(10);
    for (name, bytes) in stills {
        let Ok(lossy) = optimize(bytes, &jpeg) else {
            continue;
        };
        group.throughput(throughput(bytes));
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| score(black_box(bytes), &lossy.data, &Limits::default()))
        });
    }
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
