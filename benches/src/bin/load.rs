//! `load`: starts `picopic-lambda serve`, uploads N corpus images through presigned POSTs,
//! fires N concurrent `GET /download-url/{key}`, then fetches every result and checks it
//! pixel-exact against its input. Prints answers by status, latency p50/p99/max, wall time and
//! the server's peak RSS; exits 1 when any answer stays other than 200 or any result differs.
//!
//! Usage: `load --server target/release/picopic-lambda [-n 200] [--retry] FOLDER...`
//! The server's settings come from the environment (`PICOPIC_MAX_CONCURRENT`, ...).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use picopic_engine::{Format, detect};
use serde_json::Value;

/// A response: status, headers (lower-case names) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on its own connection (`http://host:port/path` URLs only).
fn request(method: &str, url: &str, content_type: &str, body: &[u8]) -> Result<Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("{url}: {e}"))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
    let mut response = Response {
        status,
        headers,
        body,
    };
    if response.header("transfer-encoding") == Some("chunked") {
        response.body = dechunk(&response.body);
    }
    Ok(response)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = data.get(end + 4 + size..).unwrap_or_default();
    }
    out
}

/// Posts `fields` and `file` as multipart form data, as a browser does.
fn post_form(url: &str, fields: &Value, file: &[u8]) -> Result<u16, String> {
    let boundary = "picopic-load-boundary-7d3f";
    let mut body = Vec::new();
    for (name, value) in fields.as_object().ok_or("no form fields")? {
        let value = value.as_str().unwrap_or_default();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    request("POST", url, &content_type, &body).map(|r| r.status)
}

/// Every PNG, JPEG and WebP under `folders` of at most `max` bytes, sorted.
fn images(folders: &[PathBuf], max: u64) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let kind = detect(&bytes);
            if (bytes.len() as u64) <= max
                && matches!(kind, Ok(Format::Png | Format::Jpeg | Format::WebP))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Starts the server and reads its API address from its output.
fn start(server: &Path, data: &Path) -> Result<(Child, String), String> {
    let mut child = Command::new(server)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("PICOPIC_MAX_AGE_SECS", "3600")
        .env("PICOPIC_UPLOAD_URL_TTL_SECS", "600")
        .env("PICOPIC_DOWNLOAD_URL_TTL_SECS", "600")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", server.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        if let Some(api) = line.strip_prefix("API:") {
            // Keep reading, so that the server's later output never meets a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, api.trim().to_string()));
        }
    }
    Err("the server stopped before printing its address".into())
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pixels(bytes: &[u8]) -> Option<Vec<u16>> {
    image::load_from_memory(bytes)
        .ok()
        .map(|i| i.into_rgba16().into_raw())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(at).copied().unwrap_or_default()
}

struct Args {
    server: PathBuf,
    count: usize,
    retry: bool,
    folders: Vec<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        server: PathBuf::new(),
        count: 200,
        retry: false,
        folders: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--server" => args.server = it.next().ok_or("--server needs a path")?.into(),
            "-n" => {
                args.count = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("-n needs a count")?;
            }
            "--retry" => args.retry = true,
            _ => args.folders.push(arg.into()),
        }
    }
    if args.server.as_os_str().is_empty() || args.folders.is_empty() {
        return Err("usage: load --server PATH [-n COUNT] [--retry] FOLDER...".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("load: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let args = args()?;
    let data = std::env::temp_dir().join(format!("picopic-load-{}", std::process::id()));
    let (mut server, api) = start(&args.server, &data)?;
    let result = drive(&args, &api, server.id());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
    result
}

fn drive(args: &Args, api: &str, pid: u32) -> Result<bool, String> {
    let grant = request("GET", &format!("{api}/upload-url"), "", &[])
        .map_err(|e| format!("upload-url: {e}"))?
        .json();
    let max = grant["max_bytes"].as_u64().unwrap_or(1 << 20);
    let files = images(&args.folders, max);
    if files.is_empty() {
        return Err(format!("no PNG, JPEG or WebP of at most {max} bytes found"));
    }
    let mut uploads = Vec::new();
    for path in files.iter().cycle().take(args.count) {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let grant = request("GET", &format!("{api}/upload-url"), "", &[])
            .map_err(|e| format!("upload-url: {e}"))?
            .json();
        let url = grant["url"].as_str().ok_or("no upload URL")?;
        let status = post_form(url, &grant["fields"], &bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if status != 204 {
            return Err(format!(
                "{}: S3 answered {status} to the POST",
                path.display()
            ));
        }
        let key = grant["key"].as_str().ok_or("no key")?.to_string();
        uploads.push((path.clone(), bytes, key));
    }
    println!(
        "uploaded {} files ({} distinct) to {api}",
        uploads.len(),
        files.len()
    );

    let barrier = Arc::new(Barrier::new(uploads.len()));
    let start = Instant::now();
    let answers: Vec<(u16, Duration, Value, Option<String>)> = std::thread::scope(|s| {
        let threads: Vec<_> = uploads
            .iter()
            .map(|(_, _, key)| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    let sent = Instant::now();
                    match request("GET", &format!("{api}/download-url/{key}"), "", &[]) {
                        Ok(r) => (
                            r.status,
                            sent.elapsed(),
                            r.json(),
                            r.header("retry-after").map(str::to_string),
                        ),
                        Err(e) => (0, sent.elapsed(), Value::String(e), None),
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or((0, Duration::ZERO, Value::Null, None)))
            .collect()
    });
    let wall = start.elapsed();

    let mut statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in &statuses {
        let of: Vec<Duration> = answers
            .iter()
            .filter(|a| a.0 == *status)
            .map(|a| a.1)
            .collect();
        let longest = of.iter().max().copied().unwrap_or_default();
        println!(
            "status {status}: {} answers, slowest {:.3} s",
            of.len(),
            longest.as_secs_f64()
        );
    }
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.1).collect();
    latencies.sort_unstable();
    println!(
        "latency p50 {:.3} s, p99 {:.3} s, max {:.3} s; wall {:.3} s",
        percentile(&latencies, 0.5).as_secs_f64(),
        percentile(&latencies, 0.99).as_secs_f64(),
        latencies.last().copied().unwrap_or_default().as_secs_f64(),
        wall.as_secs_f64()
    );

    let (mut exact, mut wrong, mut failed, mut retried) = (0, 0, 0, 0);
    for ((path, input, key), (status, _, body, retry_after)) in uploads.iter().zip(answers) {
        let mut answer = (status, body);
        if args.retry && answer.0 == 503 {
            let wait = retry_after.and_then(|s| s.parse().ok()).unwrap_or(1);
            std::thread::sleep(Duration::from_secs(wait));
            let again = request("GET", &format!("{api}/download-url/{key}"), "", &[])
                .map_err(|e| format!("retry: {e}"))?;
            answer = (again.status, again.json());
            retried += 1;
        }
        if answer.0 != 200 {
            failed += 1;
            eprintln!("{}: {} {}", path.display(), answer.0, answer.1);
            continue;
        }
        let url = answer.1["url"].as_str().ok_or("no download URL")?;
        let output = request("GET", url, "", &[]).map_err(|e| format!("{url}: {e}"))?;
        if output.status == 200
            && pixels(&output.body).is_some()
            && pixels(&output.body) == pixels(input)
        {
            exact += 1;
        } else {
            wrong += 1;
            eprintln!(
                "{}: the stored result differs from the upload",
                path.display()
            );
        }
    }
    println!(
        "results: {exact} pixel-exact, {wrong} differ, {failed} without a result ({retried} retried after 503)"
    );
    println!("server peak RSS: {} MiB", peak_rss_kib(pid) / 1024);
    Ok(wrong == 0 && failed == 0)
}
