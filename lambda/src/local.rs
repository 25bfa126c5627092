//! Local runs: an embedded S3-compatible store (s3s + s3s-fs) on a loopback port, and SDK
//! clients for it or for real S3.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::store::Store;

/// Access key of the embedded store (local only; it listens on loopback).
pub const LOCAL_ACCESS_KEY: &str = "picopic-local";
/// Secret key of the embedded store.
pub const LOCAL_SECRET_KEY: &str = "picopic-local-secret";
/// Region the embedded store signs with.
pub const LOCAL_REGION: &str = "us-east-1";

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

/// Starts an S3-compatible server over `data_dir` on `addr` (port 0 picks one). It checks
/// SigV4 signatures and POST policies with the local credentials.
///
/// # Errors
/// When the folder or the port cannot be used.
pub async fn start_embedded_s3(data_dir: &Path, addr: SocketAddr) -> std::io::Result<EmbeddedS3> {
    std::fs::create_dir_all(data_dir)?;
    let fs =
        s3s_fs::FileSystem::new(data_dir).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY));
    let service = builder.build();
    let listener = TcpListener::bind(addr).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "S3 connection ended");
                }
            });
        }
    });
    Ok(EmbeddedS3 { endpoint, task })
}

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
