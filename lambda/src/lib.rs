//! picopic's HTTP shell around `picopic-engine`: presigned S3 uploads, and downloads that
//! optimize the stored image first. One axum router serves Lambda and local runs; the
//! `local` feature (default) adds what only `picopic-lambda serve` needs: the embedded S3
//! store and the web page.
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod local;
#[cfg(feature = "local")]
pub mod page;
pub mod presign;
pub mod queue;
pub mod request;
pub mod routes;
pub mod store;

pub use config::Config;
pub use routes::{App, lambda_service, router};
pub use store::Store;
