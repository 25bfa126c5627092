//! Configuration, read once at start from the environment and validated.

use std::time::Duration;

/// Settings of the HTTP shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `PICOPIC_BUCKET`: the bucket uploads go to. Required in Lambda; `picopic` locally.
    pub bucket: String,
    /// `PICOPIC_MAX_UPLOAD_BYTES`: upper bound of the POST policy's content-length-range.
    pub max_upload_bytes: u64,
    /// `PICOPIC_UPLOAD_URL_TTL_SECS`: lifetime of the presigned POST.
    pub upload_url_ttl: Duration,
    /// `PICOPIC_DOWNLOAD_URL_TTL_SECS`: lifetime of the presigned GET.
    pub download_url_ttl: Duration,
    /// `PICOPIC_MAX_AGE_SECS`: objects older than this are stale: deleted, then 404.
    pub max_age: Duration,
    /// `PICOPIC_ALLOWED_ORIGIN`: the origin CORS allows; none means no CORS headers.
    pub allowed_origin: Option<String>,
    /// `PICOPIC_S3_ENDPOINT`: an S3-compatible endpoint, addressed path-style.
    pub s3_endpoint: Option<String>,
}

/// A configuration variable with a bad value.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// Reads the process environment; `lambda` makes the bucket required.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable.
    pub fn from_env(lambda: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), lambda)
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid variable.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        lambda: bool,
    ) -> Result<Self, ConfigError> {
        let text = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            let Some(raw) = text(name) else {
                return Ok(default);
            };
            match raw.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    name,
                    problem: format!("expected a whole number from 1 to {max}, got {raw:?}"),
                }),
            }
        };
        let bucket = match text("PICOPIC_BUCKET") {
            Some(b) => b,
            None if lambda => {
                return Err(ConfigError {
                    name: "PICOPIC_BUCKET",
                    problem: "required in Lambda".into(),
                });
            }
            None => "picopic".into(),
        };
        if !valid_bucket(&bucket) {
            return Err(ConfigError {
                name: "PICOPIC_BUCKET",
                problem: format!("{bucket:?} is not a valid S3 bucket name"),
            });
        }
        let s3_endpoint = text("PICOPIC_S3_ENDPOINT");
        if let Some(e) = &s3_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError {
                name: "PICOPIC_S3_ENDPOINT",
                problem: format!("expected an http:// or https:// URL, got {e:?}"),
            });
        }
        let week = 7 * 24 * 3600;
        Ok(Self {
            bucket,
            max_upload_bytes: number("PICOPIC_MAX_UPLOAD_BYTES", 1 << 20, 5 << 30)?,
            upload_url_ttl: Duration::from_secs(number("PICOPIC_UPLOAD_URL_TTL_SECS", 10, week)?),
            download_url_ttl: Duration::from_secs(number(
                "PICOPIC_DOWNLOAD_URL_TTL_SECS",
                10,
                week,
            )?),
            max_age: Duration::from_secs(number("PICOPIC_MAX_AGE_SECS", 5, week)?),
            allowed_origin: text("PICOPIC_ALLOWED_ORIGIN"),
            s3_endpoint: s3_endpoint.map(|e| e.trim_end_matches('/').to_string()),
        })
    }
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], lambda: bool) -> Result<Config, ConfigError> {
        Config::from_lookup(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_string())
            },
            lambda,
        )
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = with(&[], false).unwrap();
        assert_eq!(c.bucket, "picopic");
        assert_eq!(c.max_upload_bytes, 1_048_576);
        assert_eq!(c.upload_url_ttl, Duration::from_secs(10));
        assert_eq!(c.download_url_ttl, Duration::from_secs(10));
        assert_eq!(c.max_age, Duration::from_secs(5));
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(with(&[], true).unwrap_err().name, "PICOPIC_BUCKET");
        let e = with(&[("PICOPIC_MAX_UPLOAD_BYTES", "lots")], false).unwrap_err();
        assert_eq!(e.name, "PICOPIC_MAX_UPLOAD_BYTES");
        let e = with(&[("PICOPIC_MAX_AGE_SECS", "0")], false).unwrap_err();
        assert_eq!(e.name, "PICOPIC_MAX_AGE_SECS");
        let e = with(&[("PICOPIC_BUCKET", "Bad_Bucket")], false).unwrap_err();
        assert_eq!(e.name, "PICOPIC_BUCKET");
        let e = with(&[("PICOPIC_S3_ENDPOINT", "localhost:9000")], false).unwrap_err();
        assert_eq!(e.name, "PICOPIC_S3_ENDPOINT");
    }
}
