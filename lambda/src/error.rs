//! JSON error answers and the mapping from engine errors to HTTP statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use picopic_engine::{Error, Limit};
use serde_json::json;

/// An answer with a status and a `{"message": ...}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the client is told.
    pub message: String,
    /// Seconds after which a retry may succeed, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503: every slot is busy and the queue is full; the upload is left as it is.
    #[must_use]
    pub fn busy() -> Self {
        Self {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy; try again shortly.",
            )
        }
    }

    /// 400: a request parameter the service does not know, or options that cannot be met.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with the seed's message.
    #[must_use]
    pub fn missing() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Image does not exist.")
    }

    /// 502: S3 failed; details go to the log only.
    #[must_use]
    pub fn storage() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "Storage is unavailable; try again.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"message": self.message}))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `"{what}: {error}."` with one final full stop.
fn sentence(what: &str, error: &Error) -> String {
    format!("{what}: {}.", error.to_string().trim_end_matches('.'))
}

/// What an engine error means to the client, and whether the upload is to be deleted.
#[must_use]
pub fn from_engine(error: &Error) -> (ApiError, bool) {
    match error {
        Error::UnsupportedFormat => (
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "File type not allowed."),
            true,
        ),
        Error::LimitExceeded {
            limit: Limit::InputBytes,
            ..
        } => (
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                sentence("Image too large", error),
            ),
            true,
        ),
        Error::LimitExceeded { .. } => (
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                sentence("Image too large", error),
            ),
            true,
        ),
        Error::Decode { .. } => (
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                sentence("Image cannot be read", error),
            ),
            true,
        ),
        Error::Deadline(_) => (
            ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Optimization took too long; try again later.",
                )
            },
            false,
        ),
        // Options that cannot be met for this image (jpeg asked for a transparent one); the
        // upload is sound and stays for a request with other options.
        Error::InvalidOption(reason) => (
            ApiError::bad_request(format!("Cannot make that: {reason}.")),
            false,
        ),
        _ => (
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Optimization failed."),
            false,
        ),
    }
}
