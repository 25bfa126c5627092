//! The router: `GET /upload-url` and `GET /download-url/{key}`, the same for Lambda and local.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use lambda_http::tower::ServiceExt as _;
use lambda_http::tower::util::MapRequest;
use picopic_engine::{Format, Mode, Options, optimize};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::error::{ApiError, from_engine};
use crate::presign::{Upload, presign_post};
use crate::queue::Queue;
use crate::request::Asked;
use crate::store::{Fetched, Store};

/// Metadata names written on optimized objects.
const OPTIMIZED: &str = "picopic-optimized";
const BYTES_IN: &str = "picopic-bytes-in";
const FORMAT: &str = "picopic-format";
const SCORE: &str = "picopic-ssimulacra2";

/// The marker written beside an upload's first result; re-asks are answered from the
/// upload while it is younger than `Config::reask`.
const ANSWERED: &str = "answered";

/// Effort budget per upload, for the person waiting: on one core every corpus PNG up to
/// 1 MiB is answered within about 1.5 s (README, "Time budget").
const ENGINE_BUDGET: Duration = Duration::from_secs(2);

/// Effort budget of a lossy request: its search decodes and scores each encode (README,
/// "Lossy").
const LOSSY_BUDGET: Duration = Duration::from_secs(8);

/// Time the engine may take for one image, well inside API Gateway's 30 s.
const ENGINE_DEADLINE: Duration = Duration::from_secs(20);

/// Shared state of the handlers.
#[derive(Debug)]
pub struct App {
    config: Config,
    store: Store,
    engine: Options,
    locks: KeyLocks,
    queue: Queue,
    optimizations: AtomicU64,
}

impl App {
    /// State for `config` over `store`.
    #[must_use]
    pub fn new(config: Config, store: Store) -> Self {
        let mut engine = Options::default()
            .with_time_budget(ENGINE_BUDGET)
            .with_deadline(ENGINE_DEADLINE);
        engine.limits.max_input_bytes = config.max_upload_bytes;
        if let Some(mb) = config.memory_mb {
            engine.limits.max_memory_bytes = memory_per_image(mb, config.max_concurrent);
        }
        Self {
            queue: Queue::new(config.max_concurrent, config.max_queue),
            config,
            store,
            engine,
            locks: KeyLocks::default(),
            optimizations: AtomicU64::new(0),
        }
    }

    /// How many optimizations this process has started.
    #[must_use]
    pub fn optimizations(&self) -> u64 {
        self.optimizations.load(Ordering::Relaxed)
    }

    /// Requests waiting for an optimization slot.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.queue.waiting()
    }

    /// The engine's settings for every upload.
    #[must_use]
    pub fn engine(&self) -> &Options {
        &self.engine
    }
}

/// Memory the process keeps for itself: the runtime, the SDK, and the upload and result
/// buffers of the request.
const PROCESS_MIB: u64 = 96;

/// The engine's memory limit for one image in a process of `mb` MiB running `slots`
/// optimizations at once: three quarters of it, less what the process keeps for itself,
/// shared between the slots.
fn memory_per_image(mb: u64, slots: usize) -> u64 {
    ((mb * 3 / 4).saturating_sub(PROCESS_MIB).max(1) << 20) / slots.max(1) as u64
}

/// One async lock a key, so concurrent calls for one upload optimize it once.
#[derive(Debug, Default)]
struct KeyLocks(Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>);

impl KeyLocks {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, weak| weak.strong_count() > 0);
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key.to_string(), Arc::downgrade(&lock));
        lock
    }
}

/// The router with CORS for the configured origin and JSON for every answer.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/upload-url", get(upload_url))
        .route("/download-url/{key}", get(download_url))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not found.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
        });
    if let Some(origin) = app
        .config
        .allowed_origin
        .as_deref()
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list([origin]))
                .allow_methods([Method::GET, Method::OPTIONS])
                .expose_headers([axum::http::header::RETRY_AFTER]),
        );
    }
    router.with_state(app)
}

/// The router as the Lambda function serves it. API Gateway puts a named stage in front of
/// the path (`/prod/upload-url`: a REST API's stage, which `lambda_http` adds, or an HTTP
/// API's named stage); the routes are the same on every stage, so it is taken off first.
pub fn lambda_service(
    app: Arc<App>,
) -> MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request> {
    router(app).map_request(without_stage as fn(_) -> _)
}

/// `request` with its API Gateway stage, other than `$default`, taken off the path's front.
fn without_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return request;
    };
    let uri = request.uri();
    let Some(path) = uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()))
        .filter(|p| p.starts_with('/'))
    else {
        return request;
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(p) = path_and_query.parse() {
        parts.path_and_query = Some(p);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A fresh 256-bit key, URL-safe base64 without padding (43 characters).
fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn is_key(key: &str) -> bool {
    key.len() == 43
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn upload_url(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let key = new_key().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a key");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot create an upload.",
        )
    })?;
    let credentials = app.store.credentials().await.map_err(|e| {
        tracing::error!(error = %e, "no credentials to sign with");
        ApiError::storage()
    })?;
    let upload = Upload {
        url: app.store.url(),
        bucket: app.store.bucket(),
        key: &key,
        max_bytes: app.config.max_upload_bytes,
        region: app.store.region(),
        ttl: app.config.upload_url_ttl,
    };
    let post = presign_post(&upload, &credentials, SystemTime::now());
    Ok(Json(json!({
        "url": post.url,
        "fields": post.fields,
        "key": key,
        "max_bytes": app.config.max_upload_bytes,
        "expires_in": app.config.upload_url_ttl.as_secs(),
    }))
    .into_response())
}

async fn download_url(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_key(&key) {
        return Err(ApiError::missing());
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let asked = Asked::parse(&query, accept)?;
    // Ages count from the request's arrival: waiting for a slot never makes an upload stale.
    let arrived = SystemTime::now();
    let Some(_slot) = app.queue.enter().await else {
        tracing::warn!(key, "queue full; turned away");
        return Err(ApiError::busy());
    };
    let lock = app.locks.get(&key);
    let _guard = lock.lock().await;
    let storage = |e: crate::store::StoreError| {
        tracing::error!(error = %e, key, "S3 failure");
        ApiError::storage()
    };
    let older = |written: SystemTime, limit: Duration| {
        arrived.duration_since(written).is_ok_and(|age| age > limit)
    };
    let result_key = result_key(&key, &asked);
    let answered_key = format!("optimized/{key}/{ANSWERED}");
    let forget = async |keys: &[&str]| -> Result<(), ApiError> {
        for k in keys {
            app.store.delete(k).await.map_err(storage)?;
        }
        Ok(())
    };
    if let Some(done) = app.store.head(&result_key).await.map_err(storage)? {
        if older(done.last_modified, app.config.reask) {
            forget(&[&result_key, &key, &answered_key]).await?;
            tracing::info!(key, "stale result deleted");
            return Err(ApiError::missing());
        }
        let stored = Stored {
            format: done.metadata.get(FORMAT).cloned().unwrap_or_default(),
            bytes_in: done
                .metadata
                .get(BYTES_IN)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            bytes_out: done.length,
            score: done.metadata.get(SCORE).and_then(|v| v.parse().ok()),
        };
        return answer(&app, &result_key, &stored, false).await;
    }
    let limit = app.config.max_upload_bytes;
    let object = match app.store.get(&key, limit).await.map_err(storage)? {
        None => return Err(ApiError::missing()),
        Some(Fetched::TooLarge { length, .. }) => {
            app.store.delete(&key).await.map_err(storage)?;
            let message = format!("Image too large: {length} bytes, the limit is {limit}.");
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        Some(Fetched::Object(object)) => object,
    };
    // The max age guards the first call; a re-ask with other options is answered from the
    // upload while the first answer is younger than `reask`.
    let answered = app.store.head(&answered_key).await.map_err(storage)?;
    let reask = answered
        .as_ref()
        .is_some_and(|a| !older(a.last_modified, app.config.reask));
    if older(object.last_modified, app.config.max_age) && !reask {
        forget(&[&key, &answered_key]).await?;
        tracing::info!(key, "stale upload deleted");
        return Err(ApiError::missing());
    }
    let bytes_in = object.data.len() as u64;
    let mut options = app.engine.clone();
    options.mode = asked.mode;
    options.output = asked.output;
    options.accept = asked.accept;
    if matches!(asked.mode, Mode::Lossy(_)) {
        options.time_budget = LOSSY_BUDGET;
    }
    app.optimizations.fetch_add(1, Ordering::Relaxed);
    let result = tokio::task::spawn_blocking(move || optimize(&object.data, &options))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, key, "engine task failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Optimization failed.")
        })?;
    let optimized = match result {
        Ok(optimized) => optimized,
        Err(e) => {
            let (error, delete) = from_engine(&e);
            tracing::warn!(key, error = %e, status = error.status.as_u16(), "rejected upload");
            if delete {
                app.store.delete(&key).await.map_err(storage)?;
            }
            return Err(error);
        }
    };
    for note in &optimized.notes {
        match note.level {
            picopic_engine::Level::Info => {}
            picopic_engine::Level::Warn => tracing::warn!(key, note = note.message, "engine"),
            _ => tracing::error!(key, note = note.message, "engine"),
        }
    }
    let format = optimized.format_out;
    let stored = Stored {
        format: format.name().to_string(),
        bytes_in,
        bytes_out: optimized.data.len() as u64,
        score: optimized.ssimulacra2,
    };
    let mut metadata = HashMap::from([
        (OPTIMIZED.to_string(), "true".to_string()),
        (BYTES_IN.to_string(), bytes_in.to_string()),
        (FORMAT.to_string(), stored.format.clone()),
    ]);
    if let Some(score) = stored.score {
        metadata.insert(SCORE.to_string(), format!("{score:.2}"));
    }
    app.store
        .put(&result_key, optimized.data, format.mime(), metadata)
        .await
        .map_err(storage)?;
    if answered.is_none() {
        // One byte: s3s refuses the signature of an empty PUT through the SDK.
        let mark = HashMap::from([(OPTIMIZED.to_string(), "marker".to_string())]);
        app.store
            .put(&answered_key, b"1".to_vec(), "text/plain", mark)
            .await
            .map_err(storage)?;
    }
    tracing::info!(
        key,
        bytes_in,
        bytes_out = stored.bytes_out,
        format = format.name(),
        options = asked.name(),
        changed = optimized.changed,
        "optimized"
    );
    answer(&app, &result_key, &stored, true).await
}

/// What the answer reports about a stored result.
#[derive(Debug)]
struct Stored {
    format: String,
    bytes_in: u64,
    bytes_out: u64,
    score: Option<f64>,
}

/// Where the result of an upload is stored: a key no upload form covers (forms pin the bare
/// upload key), named by the upload and by the options it was made with.
fn result_key(key: &str, asked: &Asked) -> String {
    format!("optimized/{key}/{}", asked.name())
}

async fn answer(
    app: &App,
    result_key: &str,
    stored: &Stored,
    optimized_now: bool,
) -> Result<Response, ApiError> {
    let format = stored.format.as_str();
    let format = known_format(format).ok_or_else(|| {
        tracing::error!(result_key, format, "stored result has no known format");
        ApiError::storage()
    })?;
    let url = app
        .store
        .presign_get(
            result_key,
            app.config.download_url_ttl,
            &format!("optimized.{}", format.extension()),
            format.mime(),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, result_key, "presigning failed");
            ApiError::storage()
        })?;
    let mut body = json!({
        "url": url,
        "bytes_in": stored.bytes_in,
        "bytes_out": stored.bytes_out,
        "format": format.name(),
        "optimized_now": optimized_now,
    });
    if let Some(score) = stored.score {
        body["ssimulacra2"] = json!(score);
    }
    Ok(Json(body).into_response())
}

fn known_format(name: &str) -> Option<Format> {
    [
        Format::Png,
        Format::Apng,
        Format::Jpeg,
        Format::Gif,
        Format::WebP,
        Format::Avif,
    ]
    .into_iter()
    .find(|f| f.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_256_bit_url_safe_tokens() {
        let a = new_key().unwrap();
        let b = new_key().unwrap();
        assert!(is_key(&a) && is_key(&b));
        assert_ne!(a, b);
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&a)
                .unwrap()
                .len(),
            32
        );
        for bad in [
            "",
            "../x",
            &"a".repeat(300),
            &"a".repeat(42),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(!is_key(bad), "{bad}");
        }
    }
}
