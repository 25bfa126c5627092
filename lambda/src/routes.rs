//! The router: `GET /upload-url` and `GET /download-url/{key}`, the same for Lambda and local.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use picopic_engine::{Format, Options, optimize};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::error::{ApiError, from_engine};
use crate::presign::{Upload, presign_post};
use crate::store::{Fetched, Store};

/// Metadata names written on optimized objects.
const OPTIMIZED: &str = "picopic-optimized";
const BYTES_IN: &str = "picopic-bytes-in";
const FORMAT: &str = "picopic-format";

/// Effort budget per upload: uploads are small and a person waits for the answer.
const ENGINE_BUDGET: Duration = Duration::from_secs(3);

/// Time the engine may take for one image, well inside API Gateway's 30 s.
const ENGINE_DEADLINE: Duration = Duration::from_secs(20);

/// Shared state of the handlers.
#[derive(Debug)]
pub struct App {
    config: Config,
    store: Store,
    engine: Options,
    locks: KeyLocks,
}

impl App {
    /// State for `config` over `store`.
    #[must_use]
    pub fn new(config: Config, store: Store) -> Self {
        let mut engine = Options::default()
            .with_time_budget(ENGINE_BUDGET)
            .with_deadline(ENGINE_DEADLINE);
        engine.limits.max_input_bytes = config.max_upload_bytes;
        Self {
            config,
            store,
            engine,
            locks: KeyLocks::default(),
        }
    }
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
                .allow_origin(AllowOrigin::exact(origin))
                .allow_methods([Method::GET, Method::OPTIONS]),
        );
    }
    router.with_state(app)
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
) -> Result<Response, ApiError> {
    if !is_key(&key) {
        return Err(ApiError::missing());
    }
    let lock = app.locks.get(&key);
    let _guard = lock.lock().await;
    let storage = |e: crate::store::StoreError| {
        tracing::error!(error = %e, key, "S3 failure");
        ApiError::storage()
    };
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
    let age = SystemTime::now()
        .duration_since(object.last_modified)
        .unwrap_or_default();
    if age > app.config.max_age {
        app.store.delete(&key).await.map_err(storage)?;
        tracing::info!(key, age_secs = age.as_secs(), "stale upload deleted");
        return Err(ApiError::missing());
    }
    if object.metadata.get(OPTIMIZED).is_some_and(|v| v == "true") {
        let format = object.metadata.get(FORMAT).cloned().unwrap_or_default();
        let bytes_in: u64 = object
            .metadata
            .get(BYTES_IN)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        return answer(
            &app,
            &key,
            &format,
            bytes_in,
            object.data.len() as u64,
            false,
        )
        .await;
    }
    let bytes_in = object.data.len() as u64;
    let options = app.engine.clone();
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
    for note in optimized
        .notes
        .iter()
        .filter(|n| n.level >= picopic_engine::Level::Warn)
    {
        tracing::error!(key, note = note.message, "engine note");
    }
    let format = optimized.format_out;
    let bytes_out = optimized.data.len() as u64;
    let metadata = HashMap::from([
        (OPTIMIZED.to_string(), "true".to_string()),
        (BYTES_IN.to_string(), bytes_in.to_string()),
        (FORMAT.to_string(), format.name().to_string()),
    ]);
    app.store
        .put(&key, optimized.data, format.mime(), metadata)
        .await
        .map_err(storage)?;
    tracing::info!(
        key,
        bytes_in,
        bytes_out,
        format = format.name(),
        changed = optimized.changed,
        "optimized"
    );
    answer(&app, &key, format.name(), bytes_in, bytes_out, true).await
}

async fn answer(
    app: &App,
    key: &str,
    format: &str,
    bytes_in: u64,
    bytes_out: u64,
    optimized_now: bool,
) -> Result<Response, ApiError> {
    let extension = extension(format);
    let url = app
        .store
        .presign_get(
            key,
            app.config.download_url_ttl,
            &format!("optimized.{extension}"),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, key, "presigning failed");
            ApiError::storage()
        })?;
    Ok(Json(json!({
        "url": url,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "format": format,
        "optimized_now": optimized_now,
    }))
    .into_response())
}

fn extension(format: &str) -> &'static str {
    [
        Format::Png,
        Format::Apng,
        Format::Jpeg,
        Format::Gif,
        Format::WebP,
        Format::Avif,
    ]
    .into_iter()
    .find(|f| f.name() == format)
    .map_or("bin", Format::extension)
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
