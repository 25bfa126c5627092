//! The browser flow against the embedded S3 server over real HTTP: presigned POST upload,
//! download-url, presigned GET.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use picopic_lambda::local::{
    EmbeddedS3, LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, endpoint_store, start_embedded_s3,
};
use picopic_lambda::store::{Fetched, Object};
use picopic_lambda::{App, Config, Store, router};
use serde_json::Value;

use crate::common::{fixture, frames};
use crate::proxy::{Fault, Proxy};

/// An API and its embedded S3 on ephemeral loopback ports, the API reaching S3 through a
/// fault-injecting proxy; the tests' own store reaches S3 directly.
struct Harness {
    api: String,
    app: Arc<App>,
    store: Store,
    proxy: Proxy,
    http: reqwest::Client,
    _s3: EmbeddedS3,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let s3 = start_embedded_s3(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("s3");
        let proxy = Proxy::start(&s3.endpoint).await;
        let mut all = vec![
            ("PICOPIC_BUCKET", "picopic-test"),
            ("PICOPIC_MAX_AGE_SECS", "300"),
            ("PICOPIC_ALLOWED_ORIGIN", "https://app.example"),
        ];
        all.extend_from_slice(vars);
        let config = Config::from_lookup(
            |n| {
                all.iter()
                    .rev()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_string())
            },
            false,
        )
        .expect("config");
        let credentials = Credentials::new(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None, None, "test");
        let store = endpoint_store(&config, &s3.endpoint, credentials.clone(), LOCAL_REGION);
        store.ensure_bucket().await.expect("bucket");
        let proxied = endpoint_store(&config, &proxy.endpoint, credentials, LOCAL_REGION);
        let app = Arc::new(App::new(config, proxied));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        let served = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(served)).await;
        });
        Self {
            api,
            app,
            store,
            proxy,
            http: reqwest::Client::new(),
            _s3: s3,
            _dir: dir,
        }
    }

    async fn upload_url(&self) -> Value {
        let response = self
            .http
            .get(format!("{}/upload-url", self.api))
            .send()
            .await
            .expect("upload-url");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Posts `fields` plus `file` as the browser does; returns S3's status.
    async fn post(&self, url: &str, fields: &Value, file: Vec<u8>) -> u16 {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields.as_object().expect("fields") {
            form = form.text(k.clone(), v.as_str().expect("string").to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("upload"),
        );
        self.http
            .post(url)
            .multipart(form)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    /// A full upload; returns the key.
    async fn upload(&self, file: Vec<u8>) -> String {
        let grant = self.upload_url().await;
        assert_eq!(
            self.post(grant["url"].as_str().expect("url"), &grant["fields"], file)
                .await,
            204
        );
        grant["fields"]["key"].as_str().expect("key").to_string()
    }

    async fn download(&self, key: &str) -> (u16, Value) {
        self.download_with(key, "", None).await
    }

    /// download-url with a query string (`?...` or empty) and an `Accept` header.
    async fn download_with(&self, key: &str, query: &str, accept: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .get(format!("{}/download-url/{key}{query}", self.api));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("download-url");
        let status = response.status().as_u16();
        assert_eq!(response.headers()["content-type"], "application/json");
        (status, response.json().await.expect("json"))
    }

    /// The stored result of an upload.
    async fn result(&self, key: &str) -> Object {
        let at = format!("optimized/{key}/lossless");
        match self.store.get(&at, u64::MAX).await.expect("s3 get") {
            Some(Fetched::Object(object)) => object,
            _ => panic!("no result at {at}"),
        }
    }

    async fn stored(&self, key: &str) -> bool {
        self.store
            .get(key, u64::MAX)
            .await
            .expect("s3 get")
            .is_some()
    }
}

#[tokio::test]
async fn lossy_auto_is_negotiated_and_re_asks_start_from_the_upload() {
    // S3's Last-Modified counts whole seconds, so an upload can look up to a second older
    // than it is: at a max age of 3 s, a first call within 2 s is never stale.
    let h = Harness::start(&[("PICOPIC_MAX_AGE_SECS", "3")]).await;
    let input = fixture("dev", "photo_coffee.png");
    let key = h.upload(input.clone()).await;
    // An old browser that names WebP but not AVIF.
    let (status, body) = h
        .download_with(&key, "?format=auto&quality=high", Some("image/webp,*/*"))
        .await;
    assert_eq!(status, 200, "{body}");
    let format = body["format"].as_str().expect("format").to_string();
    assert!(["jpeg", "webp"].contains(&format.as_str()), "{body}");
    assert!(
        body["ssimulacra2"].as_f64().expect("score") >= 80.0,
        "{body}"
    );
    let got = h
        .http
        .get(body["url"].as_str().expect("url"))
        .send()
        .await
        .expect("get");
    let ext = if format == "jpeg" { "jpg" } else { "webp" };
    assert_eq!(
        got.headers()["content-disposition"],
        format!("attachment; filename=optimized.{ext}").as_str()
    );
    assert_eq!(
        got.headers()["content-type"],
        format!("image/{format}").as_str()
    );
    let output = got.bytes().await.expect("body");
    assert!(output.len() < input.len());
    assert_eq!(body["bytes_out"], output.len());

    // Past the max age, other options are still made from the original upload.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, lossless) = h.download(&key).await;
    assert_eq!(status, 200, "{lossless}");
    assert_eq!(lossless["format"], "png");
    assert!(lossless.get("ssimulacra2").is_none());
    assert_eq!(frames(&input), frames(&h.result(&key).await.data));
    assert_eq!(h.app.optimizations(), 2);

    for (query, word) in [
        ("?format=gif", "format"),
        ("?quality=great", "quality"),
        ("?format=avif&quality=lossless", "lossless"),
    ] {
        let (status, body) = h.download_with(&key, query, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["message"].as_str().expect("message").contains(word),
            "{body}"
        );
    }
    assert!(
        h.stored(&key).await,
        "a bad parameter must not cost the upload"
    );

    let transparent = h
        .upload(fixture("dev", "alpha_icon_user_trash_full_256.png"))
        .await;
    let (status, body) = h
        .download_with(&transparent, "?format=jpeg&quality=high", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("transparency"),
        "{body}"
    );
    assert!(h.stored(&transparent).await);
}

#[tokio::test]
async fn png_and_jpeg_come_back_smaller_and_pixel_exact() {
    let h = Harness::start(&[]).await;
    for (folder, file, ext, mime) in [
        ("tiny", "rgba8_stored_should_shrink.png", "png", "image/png"),
        ("dev", "photo_rocket_icc_orient6.jpg", "jpg", "image/jpeg"),
    ] {
        let input = fixture(folder, file);
        let key = h.upload(input.clone()).await;
        let (status, body) = h.download(&key).await;
        assert_eq!(status, 200, "{file}: {body}");
        assert_eq!(body["bytes_in"], input.len());
        let got = h
            .http
            .get(body["url"].as_str().expect("url"))
            .send()
            .await
            .expect("get");
        assert_eq!(got.status(), 200);
        let disposition = got.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert_eq!(disposition, format!("attachment; filename=optimized.{ext}"));
        assert_eq!(got.headers()["content-type"], mime);
        let output = got.bytes().await.expect("body").to_vec();
        assert!(output.len() < input.len(), "{file}: not smaller");
        assert_eq!(body["bytes_out"], output.len());
        assert_eq!(frames(&input), frames(&output), "{file}: pixels differ");
    }
    let response = h
        .http
        .get(format!("{}/upload-url", h.api))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("cors");
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

/// S3 refuses with a client error (AWS says 403 or 400 depending on the check).
fn assert_rejected(status: u16, what: &str) {
    assert!((400..500).contains(&status), "{what}: S3 answered {status}");
}

/// Each bad POST is refused and stores nothing, and a good POST under the same grant and
/// settings, made right after, is accepted: the refusal came from what was changed.
#[tokio::test]
async fn s3_rejects_bad_posts_and_stores_nothing() {
    let h = Harness::start(&[
        ("PICOPIC_MAX_UPLOAD_BYTES", "2048"),
        ("PICOPIC_UPLOAD_URL_TTL_SECS", "60"),
    ])
    .await;
    let url = |g: &Value| g["url"].as_str().expect("url").to_string();
    let key = |g: &Value| g["fields"]["key"].as_str().expect("key").to_string();
    let fields = |g: &Value, change: &dyn Fn(&mut Value)| {
        let mut f = g["fields"].clone();
        change(&mut f);
        f
    };
    let grant = h.upload_url().await;
    let other = h.upload_url().await;
    let flip = |f: &mut Value| {
        let signature = f["x-amz-signature"].as_str().expect("sig").to_string();
        let first = if signature.starts_with('0') { "1" } else { "0" };
        f["x-amz-signature"] = Value::from(format!("{first}{}", &signature[1..]));
    };
    let cases: [(&str, Value, Vec<u8>); 5] = [
        ("over the limit", grant["fields"].clone(), vec![7; 2049]),
        ("empty file", grant["fields"].clone(), Vec::new()),
        (
            "tampered key",
            fields(&grant, &|f| f["key"] = other["fields"]["key"].clone()),
            vec![1; 10],
        ),
        ("tampered signature", fields(&grant, &flip), vec![1; 10]),
        (
            "a field the policy does not list",
            fields(&grant, &|f| {
                f["x-amz-meta-picopic-optimized"] = Value::from("true");
            }),
            vec![1; 10],
        ),
    ];
    for (what, form, file) in cases {
        assert_rejected(h.post(&url(&grant), &form, file).await, what);
        assert!(!h.stored(&key(&grant)).await, "{what}: stored");
        assert!(!h.stored(&key(&other)).await, "{what}: stored");
    }
    let limit = vec![7; 2048];
    assert_eq!(h.post(&url(&grant), &grant["fields"], limit).await, 204);
    assert!(h.stored(&key(&grant)).await);
    assert_eq!(h.post(&url(&other), &other["fields"], vec![1]).await, 204);
}

/// s3s's POST form reader refused a file once a body frame ended as the boundary begins
/// (`\r`) and the next one passed 64 KiB, which hyper's reads of a fast upload do; a file of
/// carriage returns ends every frame so. The embedded store hands s3s smaller frames.
#[tokio::test]
async fn uploads_whose_bytes_begin_boundaries_are_stored_whole() {
    let h = Harness::start(&[("PICOPIC_MAX_UPLOAD_BYTES", "4000000")]).await;
    for len in [500_000, 3_000_000] {
        let file = vec![b'\r'; len];
        let key = h.upload(file.clone()).await;
        match h.store.get(&key, u64::MAX).await.expect("s3 get") {
            Some(Fetched::Object(object)) => assert!(object.data == file, "{len}: other bytes"),
            _ => panic!("{len}: nothing stored"),
        }
    }
}

#[tokio::test]
async fn s3_rejects_an_expired_post() {
    let h = Harness::start(&[("PICOPIC_UPLOAD_URL_TTL_SECS", "1")]).await;
    let url = |g: &Value| g["url"].as_str().expect("url").to_string();
    let (early, late) = (h.upload_url().await, h.upload_url().await);
    assert_eq!(
        h.post(&url(&early), &early["fields"], vec![1; 10]).await,
        204
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_rejected(
        h.post(&url(&late), &late["fields"], vec![1; 10]).await,
        "expired policy",
    );
    assert!(!h.stored(late["fields"]["key"].as_str().expect("key")).await);
}

#[tokio::test]
async fn non_images_and_corrupt_images_are_refused_and_deleted() {
    let h = Harness::start(&[]).await;
    let key = h.upload(b"just some text, not an image".to_vec()).await;
    let (status, body) = h.download(&key).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (415, Some("File type not allowed."))
    );
    assert!(!h.stored(&key).await);

    let key = h.upload(fixture("bad", "crc_error.png")).await;
    let (status, body) = h.download(&key).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("CRC")),
        "{body}"
    );
    assert!(!h.stored(&key).await);
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_404() {
    let h = Harness::start(&[]).await;
    let unknown = "A".repeat(43);
    for key in [unknown.as_str(), "..%2Fx", &"a".repeat(300), ""] {
        let response = h
            .http
            .get(format!("{}/download-url/{key}", h.api))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 404, "{key}");
        let body: Value = response.json().await.expect("json");
        assert!(body["message"].is_string());
    }
    assert_eq!(
        h.download(&unknown).await.1["message"],
        "Image does not exist."
    );
}

#[tokio::test]
async fn stale_uploads_are_deleted() {
    let h = Harness::start(&[("PICOPIC_MAX_AGE_SECS", "1")]).await;
    let key = h
        .upload(fixture("tiny", "rgba8_stored_should_shrink.png"))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(h.download(&key).await.0, 404);
    assert!(!h.stored(&key).await);
}

#[tokio::test]
async fn a_retry_returns_the_same_result_without_optimizing_again() {
    let h = Harness::start(&[]).await;
    let key = h
        .upload(fixture("tiny", "rgba8_stored_should_shrink.png"))
        .await;
    let (first, a) = h.download(&key).await;
    assert_eq!(h.app.optimizations(), 1);
    let written = h.result(&key).await;
    let (second, b) = h.download(&key).await;
    assert_eq!((first, second), (200, 200));
    assert_eq!(h.app.optimizations(), 1, "the retry optimized again");
    assert_eq!(
        (a["optimized_now"].as_bool(), b["optimized_now"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        (&a["bytes_in"], &a["bytes_out"]),
        (&b["bytes_in"], &b["bytes_out"])
    );
    let again = h.result(&key).await;
    assert_eq!(
        (written.last_modified, written.data),
        (again.last_modified, again.data),
        "the result was written again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_downloads_over_ten_keys() {
    let h = Arc::new(Harness::start(&[]).await);
    let png = fixture("tiny", "rgba8_stored_should_shrink.png");
    let jpeg = fixture("dev", "tiny_flatfield.jpg");
    let mut keys = Vec::new();
    for i in 0..10 {
        keys.push(
            h.upload(if i % 2 == 0 {
                png.clone()
            } else {
                jpeg.clone()
            })
            .await,
        );
    }
    let mut tasks = Vec::new();
    for _ in 0..5 {
        for key in &keys {
            let (h, key) = (h.clone(), key.clone());
            tasks.push(tokio::spawn(async move { h.download(&key).await.0 }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), 200);
    }
    assert_eq!(h.app.optimizations(), 10, "one optimization a key");
    for (i, key) in keys.iter().enumerate() {
        let object = h.result(key).await;
        assert_eq!(
            object.metadata.get("picopic-optimized").map(String::as_str),
            Some("true")
        );
        let input = if i % 2 == 0 { &png } else { &jpeg };
        assert!(object.data.len() <= input.len());
        assert_eq!(frames(input), frames(&object.data));
    }
}

/// Deployed without `s3:ListBucket`, S3 answers 403 AccessDenied for a missing key: still a
/// 404 to the client, and uploads still work.
#[tokio::test]
async fn a_missing_key_is_404_when_s3_denies_instead() {
    let h = Harness::start(&[]).await;
    h.proxy.set(Fault::MissingAsDenied);
    let (status, body) = h.download(&"A".repeat(43)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Image does not exist."))
    );
    let key = h
        .upload(fixture("tiny", "rgba8_stored_should_shrink.png"))
        .await;
    assert_eq!(h.download(&key).await.0, 200);
    let key = h.upload(b"not an image".to_vec()).await;
    assert_eq!(h.download(&key).await.0, 415);
    let (status, body) = h.download(&key).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("Image does not exist."))
    );
}

/// The upload form stays valid after the result is written; whatever its holder posts
/// again, the issued link serves the checked result, typed as the image it is.
#[tokio::test]
async fn a_reposted_form_cannot_change_what_the_link_serves() {
    let h = Harness::start(&[("PICOPIC_UPLOAD_URL_TTL_SECS", "60")]).await;
    let input = fixture("tiny", "rgba8_stored_should_shrink.png");
    let grant = h.upload_url().await;
    let url = grant["url"].as_str().expect("url");
    assert_eq!(h.post(url, &grant["fields"], input.clone()).await, 204);
    let key = grant["fields"]["key"].as_str().expect("key");
    let (status, body) = h.download(key).await;
    assert_eq!(status, 200);
    let link = body["url"].as_str().expect("url").to_string();

    let html = b"<html><script>alert(1)</script></html>".to_vec();
    assert_eq!(h.post(url, &grant["fields"], html).await, 204);
    let served = h.http.get(&link).send().await.expect("get");
    assert_eq!(served.headers()["content-type"], "image/png");
    let bytes = served.bytes().await.expect("body");
    assert_eq!(frames(&bytes), frames(&input));
    let (status, again) = h.download(key).await;
    assert_eq!(
        (status, again["optimized_now"].as_bool()),
        (200, Some(false))
    );
}

/// The memory a process gives one image bounds the images it takes, from the header.
#[tokio::test]
async fn images_over_the_memory_limit_are_refused_before_decoding() {
    let h = Harness::start(&[("PICOPIC_MEMORY_MB", "256")]).await;
    // 3000x3000 16-bit RGBA of one colour: 72 MB decoded, a few hundred KB as a PNG.
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, 3000, 3000);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    let mut writer = encoder.write_header().expect("header");
    writer
        .write_image_data(&vec![0x5a; 3000 * 3000 * 8])
        .expect("data");
    writer.finish().expect("png");
    let key = h.upload(png).await;
    let (status, body) = h.download(&key).await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("memory"), "{message}");
    assert!(!h.stored(&key).await);
    assert_eq!(h.app.optimizations(), 1);
}

/// Waits until `done` holds, polling.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

/// One slot and a queue of one: a third request is turned away at once with 503 and
/// Retry-After while the first still runs, its upload untouched, and its retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_turns_requests_away_at_once_and_retries_succeed() {
    let h = Arc::new(
        Harness::start(&[("PICOPIC_MAX_CONCURRENT", "1"), ("PICOPIC_MAX_QUEUE", "1")]).await,
    );
    let input = fixture("dev", "photo_coffee.png");
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(h.upload(input.clone()).await);
    }
    let spawn = |key: String| {
        let h = h.clone();
        tokio::spawn(async move { h.download(&key).await.0 })
    };
    let running = spawn(keys[0].clone());
    until("the first optimization starts", || {
        h.app.optimizations() == 1
    })
    .await;
    let queued = spawn(keys[1].clone());
    until("the second request queues", || h.app.waiting() == 1).await;
    let response = h
        .http
        .get(format!("{}/download-url/{}", h.api, keys[2]))
        .send()
        .await
        .expect("get");
    assert!(
        !running.is_finished(),
        "the 503 came only after the first finished"
    );
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.expect("json");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("busy")));
    assert!(h.stored(&keys[2]).await, "the turned-away upload is kept");
    assert_eq!(
        (running.await.expect("a"), queued.await.expect("b")),
        (200, 200)
    );
    assert_eq!(h.download(&keys[2]).await.0, 200, "the retry");
    assert_eq!(h.app.optimizations(), 3);
    for key in &keys {
        assert_eq!(frames(&h.result(key).await.data), frames(&input));
    }
}

/// Each S3 fault gives a JSON 502 naming no internals, leaves the upload as it was and no
/// partial result, and the retry succeeds once S3 is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_faults_keep_the_upload_and_a_retry_succeeds() {
    let h = Harness::start(&[("PICOPIC_S3_TIMEOUT_SECS", "1")]).await;
    let input = fixture("tiny", "rgba8_stored_should_shrink.png");
    let faults = [
        Fault::Refuse,
        Fault::Status(500, "InternalError"),
        Fault::Status(503, "SlowDown"),
        Fault::Delay(Duration::from_secs(4)),
        Fault::DropPut,
    ];
    for fault in faults {
        let key = h.upload(input.clone()).await;
        h.proxy.set(fault.clone());
        let (status, body) = h.download(&key).await;
        h.proxy.set(Fault::None);
        assert_eq!(status, 502, "{fault:?}: {body}");
        assert_eq!(
            body["message"], "Storage is unavailable; try again.",
            "{fault:?}"
        );
        let upload = h.store.get(&key, u64::MAX).await.expect("get");
        assert!(
            matches!(upload, Some(Fetched::Object(ref o)) if o.data == input),
            "{fault:?}: the upload changed"
        );
        let result = format!("optimized/{key}/lossless");
        assert!(!h.stored(&result).await, "{fault:?}: a result was written");
        let (status, body) = h.download(&key).await;
        assert_eq!(status, 200, "{fault:?}: the retry: {body}");
        assert_eq!(frames(&h.result(&key).await.data), frames(&input));
    }
}
