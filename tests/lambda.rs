//! The browser flow against the embedded S3 server over real HTTP: presigned POST upload,
//! download-url, presigned GET.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use picopic_lambda::local::{
    EmbeddedS3, LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, endpoint_store, start_embedded_s3,
};
use picopic_lambda::store::Fetched;
use picopic_lambda::{App, Config, Store, router};
use serde_json::Value;

use crate::common::{corpus, frames, name};

/// An API and its embedded S3 on ephemeral loopback ports.
struct Harness {
    api: String,
    store: Store,
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
        let store = endpoint_store(&config, &s3.endpoint, credentials, LOCAL_REGION);
        store.ensure_bucket().await.expect("bucket");
        let app = Arc::new(App::new(config, store.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(app)).await;
        });
        Self {
            api,
            store,
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
        let response = self
            .http
            .get(format!("{}/download-url/{key}", self.api))
            .send()
            .await
            .expect("download-url");
        let status = response.status().as_u16();
        assert_eq!(response.headers()["content-type"], "application/json");
        (status, response.json().await.expect("json"))
    }

    async fn stored(&self, key: &str) -> bool {
        self.store
            .get(key, u64::MAX)
            .await
            .expect("s3 get")
            .is_some()
    }
}

fn fixture(folder: &str, file: &str) -> Vec<u8> {
    let path = corpus(folder)
        .into_iter()
        .find(|p| name(p) == file)
        .expect(file);
    std::fs::read(path).expect("read")
}

#[tokio::test]
async fn png_and_jpeg_come_back_smaller_and_pixel_exact() {
    let h = Harness::start(&[]).await;
    for (folder, file, ext) in [
        ("tiny", "rgba8_stored_should_shrink.png", "png"),
        ("dev", "photo_rocket_icc_orient6.jpg", "jpg"),
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

#[tokio::test]
async fn s3_rejects_bad_posts_and_stores_nothing() {
    let h = Harness::start(&[
        ("PICOPIC_MAX_UPLOAD_BYTES", "2048"),
        ("PICOPIC_UPLOAD_URL_TTL_SECS", "1"),
    ])
    .await;
    let url = |g: &Value| g["url"].as_str().expect("url").to_string();
    let key = |g: &Value| g["fields"]["key"].as_str().expect("key").to_string();

    let grant = h.upload_url().await;
    assert_rejected(
        h.post(&url(&grant), &grant["fields"], vec![7; 2049]).await,
        "over the limit",
    );
    assert!(!h.stored(&key(&grant)).await);
    assert_rejected(
        h.post(&url(&grant), &grant["fields"], Vec::new()).await,
        "empty file",
    );
    assert!(!h.stored(&key(&grant)).await);

    let grant = h.upload_url().await;
    let other = h.upload_url().await;
    let mut fields = grant["fields"].clone();
    fields["key"] = other["fields"]["key"].clone();
    assert_rejected(
        h.post(&url(&grant), &fields, vec![1; 10]).await,
        "tampered key",
    );
    assert!(!h.stored(&key(&grant)).await && !h.stored(&key(&other)).await);

    let mut fields = grant["fields"].clone();
    let signature = fields["x-amz-signature"].as_str().expect("sig").to_string();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    fields["x-amz-signature"] = Value::from(format!("{flipped}{}", &signature[1..]));
    assert_rejected(
        h.post(&url(&grant), &fields, vec![1; 10]).await,
        "tampered signature",
    );
    assert!(!h.stored(&key(&grant)).await);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_rejected(
        h.post(&url(&grant), &grant["fields"], vec![1; 10]).await,
        "expired policy",
    );
    assert!(!h.stored(&key(&grant)).await);
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
async fn a_retry_returns_the_same_bytes_without_optimizing_again() {
    let h = Harness::start(&[]).await;
    let key = h
        .upload(fixture("tiny", "rgba8_stored_should_shrink.png"))
        .await;
    let (first, a) = h.download(&key).await;
    let (second, b) = h.download(&key).await;
    assert_eq!((first, second), (200, 200));
    assert_eq!(
        (a["optimized_now"].as_bool(), b["optimized_now"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(a["bytes_in"], b["bytes_in"]);
    let get = |v: &Value| {
        h.http
            .get(v["url"].as_str().expect("url").to_string())
            .send()
    };
    let x = get(&a).await.expect("a").bytes().await.expect("a");
    let y = get(&b).await.expect("b").bytes().await.expect("b");
    assert_eq!(x, y);
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
    for (i, key) in keys.iter().enumerate() {
        let Some(Fetched::Object(object)) = h.store.get(key, u64::MAX).await.expect("get") else {
            panic!("{key} missing");
        };
        assert_eq!(
            object.metadata.get("picopic-optimized").map(String::as_str),
            Some("true")
        );
        let input = if i % 2 == 0 { &png } else { &jpeg };
        assert!(object.data.len() <= input.len());
        assert_eq!(frames(input), frames(&object.data));
    }
}
