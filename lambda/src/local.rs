//! SDK clients for S3 or an S3-compatible endpoint, and, with the `local` feature, the
//! embedded S3-compatible store (s3s + s3s-fs) that `serve` runs on a loopback port, with the
//! CORS rule of the deployed bucket.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation};

use crate::config::Config;
use crate::store::Store;

#[cfg(feature = "local")]
pub use embedded::{
    EmbeddedS3, LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, start_embedded_s3,
    start_embedded_s3_with_cors,
};

/// Each S3 call: 2 s to connect, `s3_timeout` for an answer to start and twice that for a
/// whole attempt, three attempts within eight times it.
fn timeouts(config: &Config) -> TimeoutConfig {
    let answer = config.s3_timeout;
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(answer)
        .operation_attempt_timeout(answer * 2)
        .operation_timeout(answer * 8)
        .build()
}

/// The SDK's standard mode (retries throttling, 5xx and connection errors), three attempts,
/// backing off from 200 ms: a person is waiting.
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(2))
}

/// A store on an S3-compatible endpoint with explicit credentials (path-style addressing).
#[must_use]
pub fn endpoint_store(
    config: &Config,
    endpoint: &str,
    credentials: Credentials,
    region: &str,
) -> Store {
    let provider = SharedCredentialsProvider::new(credentials);
    let s3 = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .credentials_provider(provider.clone())
        .timeout_config(timeouts(config))
        .retry_config(retries())
        .build();
    let url = format!("{endpoint}/{}", config.bucket);
    Store::new(
        aws_sdk_s3::Client::from_conf(s3),
        provider,
        config.bucket.clone(),
        region.to_string(),
        url,
    )
}

/// A store from the environment's AWS configuration (Lambda, or a shell with credentials),
/// honouring `PICOPIC_S3_ENDPOINT`.
///
/// # Errors
/// When the environment has no region or no credentials.
pub async fn aws_store(config: &Config) -> Result<Store, String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let region = sdk
        .region()
        .map(ToString::to_string)
        .ok_or("no AWS region configured (AWS_REGION)")?;
    let provider = sdk
        .credentials_provider()
        .ok_or("no AWS credentials configured")?;
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .timeout_config(timeouts(config))
        .retry_config(retries());
    let url = match &config.s3_endpoint {
        Some(endpoint) => {
            s3 = s3.endpoint_url(endpoint).force_path_style(true);
            format!("{endpoint}/{}", config.bucket)
        }
        None => format!("https://{}.s3.{region}.amazonaws.com", config.bucket),
    };
    let client = aws_sdk_s3::Client::from_conf(s3.build());
    Ok(Store::new(
        client,
        provider,
        config.bucket.clone(),
        region,
        url,
    ))
}

/// The embedded store: s3s over a folder, behind CORS as the deployed bucket applies it.
#[cfg(feature = "local")]
mod embedded {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, ready};

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::Request;
    use axum::http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
        CONTENT_TYPE, ORIGIN, VARY,
    };
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
    use axum::response::{IntoResponse, Response};
    use http_body::{Frame, SizeHint};
    use s3s::auth::SimpleAuth;
    use s3s::service::{S3Service, S3ServiceBuilder};
    use tokio::net::TcpListener;

    /// Access key of the embedded store (local only; it listens on loopback).
    pub const LOCAL_ACCESS_KEY: &str = "picopic-local";
    /// Secret key of the embedded store.
    pub const LOCAL_SECRET_KEY: &str = "picopic-local-secret";
    /// Region the embedded store signs with.
    pub const LOCAL_REGION: &str = "us-east-1";

    /// Methods the bucket's CORS rule allows (template.yaml: `AllowedMethods`).
    const CORS_METHODS: &str = "GET, POST";
    /// How long a browser may cache a preflight, in seconds (template.yaml: `MaxAge`).
    const CORS_MAX_AGE: u32 = 3000;

    /// A running embedded S3 server.
    #[derive(Debug)]
    pub struct EmbeddedS3 {
        /// `http://127.0.0.1:PORT`.
        pub endpoint: String,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for EmbeddedS3 {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Starts an S3-compatible server over `data_dir` on `addr` (port 0 picks one), without
    /// CORS: browsers on other origins cannot use it. It checks SigV4 signatures and POST
    /// policies with the local credentials.
    ///
    /// # Errors
    /// When the folder or the port cannot be used.
    pub async fn start_embedded_s3(
        data_dir: &Path,
        addr: SocketAddr,
    ) -> std::io::Result<EmbeddedS3> {
        start_embedded_s3_with_cors(data_dir, addr, &[]).await
    }

    /// [`start_embedded_s3`] with the CORS rule of the deployed bucket (template.yaml's
    /// `CorsConfiguration`) for `origins`: preflights for GET and POST from them are answered
    /// with any request headers allowed and a 3000 s max age, and their GETs and POSTs carry
    /// `Access-Control-Allow-Origin`. Any other origin gets no CORS headers, and its
    /// preflights 403, as S3 answers them.
    ///
    /// # Errors
    /// When the folder or the port cannot be used.
    pub async fn start_embedded_s3_with_cors(
        data_dir: &Path,
        addr: SocketAddr,
        origins: &[String],
    ) -> std::io::Result<EmbeddedS3> {
        std::fs::create_dir_all(data_dir)?;
        let fs = s3s_fs::FileSystem::new(data_dir)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY));
        let s3 = builder.build();
        let cors = Cors {
            origins: origins
                .iter()
                .map(|o| o.trim_end_matches('/').into())
                .collect(),
        };
        let app = Router::new().fallback(move |request: Request| s3_call(s3, cors, request));
        let listener = TcpListener::bind(addr).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "embedded S3 stopped");
            }
        });
        Ok(EmbeddedS3 { endpoint, task })
    }

    /// One request to the store: a preflight is answered here (s3s has no CORS), anything
    /// else goes to s3s and comes back with the CORS headers its origin is owed.
    async fn s3_call(s3: S3Service, cors: Cors, request: Request) -> Response {
        if request.method() == Method::OPTIONS {
            return cors.preflight(request.headers());
        }
        let origin = request.headers().get(ORIGIN).cloned();
        let request = request.map(|body| s3s::Body::http_body_unsync(SmallFrames::new(body)));
        let mut response = match s3.call(request).await {
            Ok(response) => response.map(Body::new),
            Err(e) => {
                tracing::error!(error = ?e, "embedded S3 failed");
                s3_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "Internal error.",
                )
            }
        };
        cors.decorate(origin.as_ref(), response.headers_mut());
        response
    }

    /// Bytes of one request body frame handed to s3s at most. Its POST form reader, after a
    /// frame that ends as the boundary begins (`\r`, `\r\n-`, ...), adds the next frame to
    /// what it holds and refuses the upload past 64 KiB; hyper's reads of a fast upload grow
    /// past that, so an image whose bytes fell that way was refused now and then.
    const FRAME: usize = 16 * 1024;

    /// A request body cut into frames of at most [`FRAME`] bytes.
    struct SmallFrames {
        inner: Body,
        pending: Bytes,
    }

    impl SmallFrames {
        fn new(inner: Body) -> Self {
            Self {
                inner,
                pending: Bytes::new(),
            }
        }
    }

    impl http_body::Body for SmallFrames {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            loop {
                if !self.pending.is_empty() {
                    let len = self.pending.len().min(FRAME);
                    return Poll::Ready(Some(Ok(Frame::data(self.pending.split_to(len)))));
                }
                match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => self.pending = data,
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    },
                    done => return Poll::Ready(done),
                }
            }
        }

        fn is_end_stream(&self) -> bool {
            self.pending.is_empty() && self.inner.is_end_stream()
        }

        fn size_hint(&self) -> SizeHint {
            let inner = self.inner.size_hint();
            let pending = self.pending.len() as u64;
            let mut hint = SizeHint::new();
            hint.set_lower(inner.lower().saturating_add(pending));
            if let Some(upper) = inner.upper() {
                hint.set_upper(upper.saturating_add(pending));
            }
            hint
        }
    }

    /// The bucket's one CORS rule.
    #[derive(Debug, Clone)]
    struct Cors {
        origins: Arc<[Box<str>]>,
    }

    impl Cors {
        fn allows(&self, origin: &HeaderValue) -> bool {
            origin
                .to_str()
                .is_ok_and(|o| self.origins.iter().any(|allowed| **allowed == *o))
        }

        /// Answers a preflight as S3 does: 200 with the rule for an allowed origin and
        /// method, 403 without CORS headers otherwise, 400 when it is not a preflight.
        fn preflight(&self, headers: &HeaderMap) -> Response {
            let (Some(origin), Some(method)) = (
                headers.get(ORIGIN),
                headers.get(ACCESS_CONTROL_REQUEST_METHOD),
            ) else {
                return s3_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Insufficient information. Origin and Access-Control-Request-Method \
                     request headers needed.",
                );
            };
            if !(self.allows(origin) && (method == "GET" || method == "POST")) {
                return s3_error(
                    StatusCode::FORBIDDEN,
                    "AccessForbidden",
                    "CORSResponse: This CORS request is not allowed.",
                );
            }
            let mut response = StatusCode::OK.into_response();
            let out = response.headers_mut();
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(CORS_METHODS),
            );
            // `AllowedHeaders: "*"`: whatever the browser asks for.
            if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
            }
            out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE));
            out.insert(
                VARY,
                HeaderValue::from_static(
                    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
                ),
            );
            response
        }

        /// Adds `Access-Control-Allow-Origin` for an allowed origin; with a rule at all,
        /// `Vary: Origin`, since the answer depends on it.
        fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
            if self.origins.is_empty() {
                return;
            }
            headers.append(VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = origin.filter(|o| self.allows(o)) {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            }
        }
    }

    /// An S3-style XML error.
    fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        (status, [(CONTENT_TYPE, "application/xml")], body).into_response()
    }
}
