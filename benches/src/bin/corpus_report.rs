//! `corpus-report`: picopic beside the reference tools, file by file, in one run.
//!
//! Each tool runs as a child process on one file at a time, so times and peak memory
//! (`ru_maxrss` from `wait4`) are comparable. Writes a table to stdout and `report.json` and
//! `report.html` (SVG charts) to the output folder.
#![allow(unsafe_code)]

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use picopic_engine::{Format, Options, detect, optimize};
use serde_json::{Value, json};

/// A reference tool: its name, the formats it takes and its command line.
struct Tool {
    name: &'static str,
    formats: &'static [Format],
    program: &'static str,
    args: fn(&Path, &Path) -> Vec<String>,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

const TOOLS: [Tool; 4] = [
    Tool {
        name: "oxipng -o 2",
        formats: &[Format::Png, Format::Apng],
        program: "oxipng",
        args: |i, o| {
            vec![
                "-q".into(),
                "-o".into(),
                "2".into(),
                "--out".into(),
                s(o),
                s(i),
            ]
        },
    },
    Tool {
        name: "oxipng -o max --strip safe",
        formats: &[Format::Png, Format::Apng],
        program: "oxipng",
        args: |i, o| {
            let a = ["-q", "-o", "max", "--strip", "safe", "--out"];
            a.iter()
                .map(|x| (*x).to_string())
                .chain([s(o), s(i)])
                .collect()
        },
    },
    Tool {
        name: "jpegtran -optimize -progressive",
        formats: &[Format::Jpeg],
        program: "jpegtran",
        args: |i, o| {
            let a = ["-copy", "all", "-optimize", "-progressive", "-outfile"];
            a.iter()
                .map(|x| (*x).to_string())
                .chain([s(o), s(i)])
                .collect()
        },
    },
    Tool {
        name: "cwebp -lossless -z 9",
        formats: &[Format::WebP],
        program: "cwebp",
        args: |i, o| {
            let a = [
                "-quiet",
                "-lossless",
                "-exact",
                "-z",
                "9",
                "-metadata",
                "icc",
            ];
            a.iter()
                .map(|x| (*x).to_string())
                .chain([s(i), "-o".into(), s(o)])
                .collect()
        },
    },
];

/// One tool on one file.
struct Run {
    bytes: u64,
    seconds: f64,
    peak_kib: u64,
}

/// Runs a child to completion; returns its stdout, wall time and peak resident memory.
fn measure(command: &mut Command) -> Option<(String, Duration, u64)> {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 reaps our own child and fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        return None;
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    ok.then(|| (out, start.elapsed(), usage.ru_maxrss as u64))
}

fn run_tool(tool: &Tool, input: &Path, scratch: &Path) -> Option<Run> {
    let output = scratch.join(format!("out.{}", input.extension()?.to_string_lossy()));
    let _ = std::fs::remove_file(&output);
    let (_, time, peak) = measure(Command::new(tool.program).args((tool.args)(input, &output)))?;
    let bytes_in = std::fs::metadata(input).ok()?.len();
    // Tools that find nothing smaller may write nothing; the input then stands.
    let bytes = std::fs::metadata(&output).map_or(bytes_in, |m| m.len().min(bytes_in));
    Some(Run {
        bytes,
        seconds: time.as_secs_f64(),
        peak_kib: peak,
    })
}

fn run_picopic(input: &Path, budget: &str) -> Option<Run> {
    let me = std::env::current_exe().ok()?;
    let (out, time, peak) =
        measure(Command::new(me).args(["--one", &s(input), "--budget", budget]))?;
    let value: Value = serde_json::from_str(&out).ok()?;
    Some(Run {
        bytes: value["bytes_out"].as_u64()?,
        seconds: time.as_secs_f64(),
        peak_kib: peak,
    })
}

/// The child side of `run_picopic`: optimize one file, print its size.
fn one(path: &Path, budget: f64) -> std::process::ExitCode {
    let options = Options::default().with_time_budget(Duration::from_secs_f64(budget));
    let result = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| optimize(&bytes, &options).map_err(|e| e.to_string()));
    match result {
        Ok(r) => {
            println!(
                "{}",
                json!({"bytes_out": r.data.len(), "changed": r.changed})
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::ExitCode::FAILURE
        }
    }
}

fn files(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            out.extend(entries.into_iter().filter(|p| p.is_file()));
        } else {
            out.push(input.clone());
        }
    }
    out
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    // The engine's own default unless --budget says otherwise.
    let budget = flag("--budget")
        .unwrap_or_else(|| Options::default().time_budget.as_secs_f64().to_string());
    if let Some(path) = flag("--one") {
        let Ok(seconds) = budget.parse() else {
            eprintln!("corpus-report: --budget {budget:?} is not a number of seconds");
            return std::process::ExitCode::from(2);
        };
        return one(Path::new(&path), seconds);
    }
    let out_dir = PathBuf::from(flag("--out").unwrap_or_else(|| "target/report".into()));
    let mut inputs = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = true;
        } else {
            inputs.push(PathBuf::from(a));
        }
    }
    if inputs.is_empty() {
        inputs = vec!["corpus/dev".into(), "corpus/tiny".into()];
    }
    if let Err(e) = std::fs::create_dir_all(out_dir.join("scratch")) {
        eprintln!("corpus-report: {}: {e}", out_dir.display());
        return std::process::ExitCode::from(2);
    }
    // `--tools "oxipng -o 2,jpegtran"`: only the reference tools whose names start so.
    let wanted = flag("--tools");
    let chosen = |t: &&Tool| {
        wanted
            .as_deref()
            .is_none_or(|w| w.split(',').any(|p| t.name.starts_with(p.trim())))
    };
    let installed: Vec<&Tool> = TOOLS
        .iter()
        .filter(chosen)
        .filter(|t| which(t.program))
        .collect();
    for t in TOOLS.iter().filter(|t| !which(t.program)) {
        eprintln!(
            "corpus-report: {} not installed; its column is left out",
            t.program
        );
    }
    let mut rows = Vec::new();
    for path in files(&inputs) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(format) = detect(&bytes) else { continue };
        let megapixels = image::ImageReader::open(&path)
            .and_then(|r| r.with_guessed_format())
            .ok()
            .and_then(|r| r.into_dimensions().ok())
            .map_or(0.0, |(w, h)| f64::from(w) * f64::from(h) / 1e6);
        let mut tools = serde_json::Map::new();
        if let Some(r) = run_picopic(&path, &budget) {
            tools.insert("picopic".into(), to_json(&r));
        }
        for tool in installed.iter().filter(|t| t.formats.contains(&format)) {
            if let Some(r) = run_tool(tool, &path, &out_dir.join("scratch")) {
                tools.insert(tool.name.into(), to_json(&r));
            }
        }
        let row = json!({
            "file": s(&path), "format": format.name(), "bytes_in": bytes.len(),
            "megapixels": megapixels, "tools": tools,
        });
        print_row(&row);
        rows.push(row);
    }
    let summary = summarize(&rows);
    println!(
        "\n{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    let report = json!({"budget_seconds": budget, "files": rows, "summary": summary});
    let written = std::fs::write(out_dir.join("report.json"), format!("{report:#}"))
        .and_then(|()| std::fs::write(out_dir.join("report.html"), html(&rows, &summary)));
    if let Err(e) = written {
        eprintln!("corpus-report: {e}");
        return std::process::ExitCode::FAILURE;
    }
    eprintln!(
        "wrote {0}/report.json and {0}/report.html",
        out_dir.display()
    );
    std::process::ExitCode::SUCCESS
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn to_json(r: &Run) -> Value {
    json!({"bytes_out": r.bytes, "seconds": r.seconds, "peak_kib": r.peak_kib})
}

fn print_row(row: &Value) {
    let bytes_in = row["bytes_in"].as_u64().unwrap_or(0);
    print!("{:<52} {:>9}", row["file"].as_str().unwrap_or(""), bytes_in);
    if let Some(tools) = row["tools"].as_object() {
        for (name, r) in tools {
            print!(
                " | {name}: {} ({:.2}s, {} MiB)",
                r["bytes_out"],
                r["seconds"].as_f64().unwrap_or(0.0),
                r["peak_kib"].as_u64().unwrap_or(0) / 1024
            );
        }
    }
    println!();
}

/// Per format and tool: bytes in and out over the files every tool of that format ran on,
/// and the median seconds per megapixel.
fn summarize(rows: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for format in ["png", "apng", "jpeg", "webp"] {
        let of: Vec<&Value> = rows.iter().filter(|r| r["format"] == format).collect();
        let mut names: Vec<String> = of
            .iter()
            .flat_map(|r| {
                r["tools"]
                    .as_object()
                    .map(|t| t.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        names.sort();
        names.dedup();
        let common: Vec<&&Value> = of
            .iter()
            .filter(|r| names.iter().all(|n| r["tools"].get(n).is_some()))
            .collect();
        let mut per_tool = serde_json::Map::new();
        for name in &names {
            let bytes_in: u64 = common.iter().filter_map(|r| r["bytes_in"].as_u64()).sum();
            let bytes_out: u64 = common
                .iter()
                .filter_map(|r| r["tools"][name]["bytes_out"].as_u64())
                .sum();
            let mut per_mp: Vec<f64> = common
                .iter()
                .filter(|r| r["megapixels"].as_f64().unwrap_or(0.0) > 0.0)
                .filter_map(|r| {
                    Some(r["tools"][name]["seconds"].as_f64()? / r["megapixels"].as_f64()?)
                })
                .collect();
            per_mp.sort_by(f64::total_cmp);
            let median = per_mp.get(per_mp.len() / 2).copied().unwrap_or(0.0);
            per_tool.insert(name.clone(), json!({
                "files": common.len(), "bytes_in": bytes_in, "bytes_out": bytes_out,
                "bytes_saved": bytes_in.saturating_sub(bytes_out), "median_seconds_per_megapixel": median,
            }));
        }
        if !per_tool.is_empty() {
            out.insert(format.into(), Value::Object(per_tool));
        }
    }
    Value::Object(out)
}

const COLORS: [&str; 5] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"];

fn tool_names(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r["tools"]
                .as_object()
                .map(|t| t.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    names.sort();
    names.dedup();
    if let Some(i) = names.iter().position(|n| n == "picopic") {
        let p = names.remove(i);
        names.insert(0, p);
    }
    names
}

/// A self-contained page: a legend, bars of percent saved per file and tool, and a log-log
/// scatter of seconds per megapixel against megapixels.
fn html(rows: &[Value], summary: &Value) -> String {
    let names = tool_names(rows);
    let color = |n: &str| COLORS[names.iter().position(|x| x == n).unwrap_or(0) % COLORS.len()];
    let mut page = String::from(
        "<!doctype html><meta charset=utf-8><title>picopic corpus report</title><style>body{font:13px sans-serif;margin:2em}svg text{font:11px sans-serif}</style><h1>picopic corpus report</h1><p>",
    );
    for n in &names {
        let _ = write!(
            page,
            "<span style=\"color:{}\">&#9632;</span> {n} &nbsp; ",
            color(n)
        );
    }
    let _ = write!(page, "</p><h2>Bytes saved per file (% of input)</h2>");
    let bar_h = 7.0;
    let group = bar_h * names.len() as f64 + 6.0;
    let height = group * rows.len() as f64 + 30.0;
    let _ = write!(page, "<svg width=1100 height={height}>");
    for (i, row) in rows.iter().enumerate() {
        let y0 = 20.0 + group * i as f64;
        let file = row["file"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("");
        let _ = write!(
            page,
            "<text x=395 y={} text-anchor=end>{file}</text>",
            y0 + group / 2.0
        );
        let bytes_in = row["bytes_in"].as_f64().unwrap_or(1.0).max(1.0);
        for (k, n) in names.iter().enumerate() {
            if let Some(out) = row["tools"][n]["bytes_out"].as_f64() {
                let saved = 100.0 * (1.0 - out / bytes_in);
                let _ = write!(
                    page,
                    "<rect x=400 y={} width={:.1} height={} fill={}><title>{n}: {saved:.2}%</title></rect>",
                    y0 + bar_h * k as f64,
                    saved.max(0.0) * 6.5,
                    bar_h - 1.0,
                    color(n)
                );
            }
        }
    }
    for pct in [0, 25, 50, 75, 100] {
        let x = 400.0 + f64::from(pct) * 6.5;
        let _ = write!(
            page,
            "<line x1={x} x2={x} y1=15 y2={height} stroke=#ccc /><text x={x} y=12>{pct}%</text>"
        );
    }
    page.push_str("</svg><h2>Seconds per megapixel against megapixels (log-log)</h2><svg width=800 height=460>");
    let (x0, y0, w, h) = (60.0, 20.0, 700.0, 400.0);
    let sx = |mp: f64| x0 + (mp.max(1e-4).log10() + 4.0) / 6.0 * w;
    let sy = |spmp: f64| y0 + h - (spmp.max(1e-3).log10() + 3.0) / 6.0 * h;
    for e in -4..=2 {
        let x = sx(10f64.powi(e));
        let _ = write!(
            page,
            "<line x1={x} x2={x} y1={y0} y2={} stroke=#ddd /><text x={x} y={}>1e{e} MP</text>",
            y0 + h,
            y0 + h + 15.0
        );
    }
    for e in -3..=3 {
        let y = sy(10f64.powi(e));
        let _ = write!(
            page,
            "<line x1={x0} x2={} y1={y} y2={y} stroke=#ddd /><text x=5 y={y}>1e{e} s/MP</text>",
            x0 + w
        );
    }
    for row in rows {
        let mp = row["megapixels"].as_f64().unwrap_or(0.0);
        if mp <= 0.0 {
            continue;
        }
        for n in &names {
            if let Some(sec) = row["tools"][n]["seconds"].as_f64() {
                let _ = write!(
                    page,
                    "<circle cx={:.1} cy={:.1} r=3.5 fill={} opacity=0.8><title>{} {n}: {:.3}s</title></circle>",
                    sx(mp),
                    sy(sec / mp),
                    color(n),
                    row["file"].as_str().unwrap_or(""),
                    sec
                );
            }
        }
    }
    let _ = write!(
        page,
        "</svg><h2>Summary</h2><pre>{}</pre>",
        serde_json::to_string_pretty(summary).unwrap_or_default()
    );
    page
}
