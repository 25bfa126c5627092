//! The S3 bucket: get, put, delete, presigned GET, and the credentials for presigned POSTs.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

/// An S3 failure other than a missing object; the message is for logs, not for clients.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} failed: {message}")]
pub struct StoreError {
    /// The S3 operation.
    pub operation: &'static str,
    /// Everything the SDK said.
    pub message: String,
}

fn failed(operation: &'static str, error: impl std::error::Error) -> StoreError {
    StoreError {
        operation,
        message: DisplayErrorContext(error).to_string(),
    }
}

/// `Ok` when `error` says the key does not exist: 404, or 403 AccessDenied, which S3 answers
/// for a missing key to a caller without `s3:ListBucket` (a deploy that lacks it must not turn
/// every unknown key into a storage failure; the warning names the fix).
fn missing<E>(
    operation: &'static str,
    key: &str,
    error: SdkError<E, HttpResponse>,
) -> Result<(), StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match error.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => Ok(()),
        Some(403) if matches!(error.code(), Some("AccessDenied") | None) => {
            tracing::warn!(
                key,
                operation,
                "S3 denied access; taken as a missing key (grant s3:ListBucket for a 404)"
            );
            Ok(())
        }
        _ => Err(failed(operation, error)),
    }
}

/// An object's size as S3 reports it; 0 when missing.
fn size(content_length: Option<i64>) -> u64 {
    content_length
        .and_then(|l| u64::try_from(l).ok())
        .unwrap_or(0)
}

/// When an object was written; the epoch when S3 does not say (so it counts as stale).
fn written(last_modified: Option<&aws_smithy_types::DateTime>) -> SystemTime {
    last_modified
        .and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// An object's metadata, read without its body.
#[derive(Debug, Clone)]
pub struct Head {
    /// Its size.
    pub length: u64,
    /// User metadata (`x-amz-meta-*`, names without the prefix).
    pub metadata: HashMap<String, String>,
    /// When it was last written.
    pub last_modified: SystemTime,
}

/// An object as read from the bucket.
#[derive(Debug, Clone)]
pub struct Object {
    /// The body.
    pub data: Vec<u8>,
    /// User metadata (`x-amz-meta-*`, names without the prefix).
    pub metadata: HashMap<String, String>,
    /// When it was last written.
    pub last_modified: SystemTime,
}

/// One bucket behind an SDK client.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    credentials: SharedCredentialsProvider,
    bucket: String,
    region: String,
    url: String,
}

impl Store {
    /// A store over `client`; `url` is where browsers POST uploads.
    #[must_use]
    pub fn new(
        client: Client,
        credentials: SharedCredentialsProvider,
        bucket: String,
        region: String,
        url: String,
    ) -> Self {
        Self {
            client,
            credentials,
            bucket,
            region,
            url,
        }
    }

    /// The bucket name.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket URL uploads are posted to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signing region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Current credentials (refreshed by the provider when they expire).
    ///
    /// # Errors
    /// When the provider has none.
    pub async fn credentials(&self) -> Result<Credentials, StoreError> {
        self.credentials
            .provide_credentials()
            .await
            .map_err(|e| failed("credentials", e))
    }

    /// Creates the bucket if it is missing (local runs).
    ///
    /// # Errors
    /// Any S3 failure but "already exists".
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(failed("CreateBucket", e)),
        }
    }

    /// Reads an object; `None` when there is no such key. Bodies larger than `max_bytes`
    /// are not read: the object comes back with an empty body and `too_large` set.
    ///
    /// # Errors
    /// Any S3 failure but a missing key.
    pub async fn get(&self, key: &str, max_bytes: u64) -> Result<Option<Fetched>, StoreError> {
        let response = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return missing("GetObject", key, e).map(|()| None),
        };
        let last_modified = written(response.last_modified());
        let metadata = response.metadata().cloned().unwrap_or_default();
        let length = size(response.content_length());
        if length > max_bytes {
            return Ok(Some(Fetched::TooLarge {
                length,
                last_modified,
            }));
        }
        let data = response
            .body
            .collect()
            .await
            .map_err(|e| failed("GetObject body", e))?
            .to_vec();
        Ok(Some(Fetched::Object(Object {
            data,
            metadata,
            last_modified,
        })))
    }

    /// Reads an object's metadata; `None` when there is no such key.
    ///
    /// # Errors
    /// Any S3 failure but a missing key.
    pub async fn head(&self, key: &str) -> Result<Option<Head>, StoreError> {
        let response = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return missing("HeadObject", key, e).map(|()| None),
        };
        Ok(Some(Head {
            length: size(response.content_length()),
            metadata: response.metadata().cloned().unwrap_or_default(),
            last_modified: written(response.last_modified()),
        }))
    }

    /// Writes an object with its content type and user metadata.
    ///
    /// # Errors
    /// Any S3 failure.
    pub async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        content_type: &str,
        metadata: HashMap<String, String>,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata(Some(metadata))
            .body(ByteStream::from(data))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("PutObject", e))
    }

    /// Deletes an object (no error when it is already gone).
    ///
    /// # Errors
    /// Any S3 failure.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("DeleteObject", e))
    }

    /// A presigned GET that downloads as an attachment named `filename`, served with
    /// `content_type` whatever the object's stored type.
    ///
    /// # Errors
    /// Any signing failure.
    pub async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        filename: &str,
        content_type: &str,
    ) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| failed("presign", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename={filename}"))
            .response_content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| failed("presign", e))?;
        Ok(request.uri().to_string())
    }
}

/// What [`Store::get`] found.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The object, body included.
    Object(Object),
    /// An object over the size cap, left unread.
    TooLarge {
        /// Its size.
        length: u64,
        /// When it was written.
        last_modified: SystemTime,
    },
}
