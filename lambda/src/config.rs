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
    /// `PICOPIC_REASK_SECS`: after an upload's first answer, how long requests with other
    /// options are still answered from it, and results kept. Default: 300.
    pub reask: Duration,
    /// `PICOPIC_ALLOWED_ORIGIN`: the origin CORS allows; none means no CORS headers.
    pub allowed_origin: Option<String>,
    /// `PICOPIC_S3_ENDPOINT`: an S3-compatible endpoint, addressed path-style.
    pub s3_endpoint: Option<String>,
    /// `PICOPIC_S3_TIMEOUT_SECS`: how long one S3 attempt may wait for an answer; a connect
    /// may take 2 s at most, and each call makes at most 3 attempts. Default: 5.
    pub s3_timeout: Duration,
    /// `PICOPIC_MAX_CONCURRENT`: optimizations run at once; default: the available cores
    /// (one in Lambda).
    pub max_concurrent: usize,
    /// `PICOPIC_MAX_QUEUE`: requests that may wait for one; past it, 503 at once. Default: 256.
    pub max_queue: usize,
    /// `PICOPIC_MEMORY_MB`, else Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`: the memory the
    /// process may use, in MiB. The engine's memory limit per image follows from it; none
    /// leaves the engine's default.
    pub memory_mb: Option<u64>,
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
            reask: Duration::from_secs(number("PICOPIC_REASK_SECS", 300, week)?),
            allowed_origin: text("PICOPIC_ALLOWED_ORIGIN"),
            s3_endpoint: s3_endpoint.map(|e| e.trim_end_matches('/').to_string()),
            s3_timeout: Duration::from_secs(number("PICOPIC_S3_TIMEOUT_SECS", 5, 60)?),
            // A Lambda instance serves one request at a time.
            max_concurrent: number(
                "PICOPIC_MAX_CONCURRENT",
                if lambda {
                    1
                } else {
                    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
                },
                1024,
            )? as usize,
            max_queue: number("PICOPIC_MAX_QUEUE", 256, 1 << 20)? as usize,
            memory_mb: match text("PICOPIC_MEMORY_MB") {
                Some(_) => Some(number("PICOPIC_MEMORY_MB", 0, 1 << 20)?),
                None if text("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_some() => {
                    Some(number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, 1 << 20)?)
                }
                None => None,
            },
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
        let e = with(&[("PICOPIC_MEMORY_MB", "-1")], false).unwrap_err();
        assert_eq!(e.name, "PICOPIC_MEMORY_MB");
    }

    #[test]
    fn memory_comes_from_lambda_unless_set() {
        assert_eq!(with(&[], false).unwrap().memory_mb, None);
        let lambda = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")];
        assert_eq!(with(&lambda, false).unwrap().memory_mb, Some(1024));
        let both = [lambda[0], ("PICOPIC_MEMORY_MB", "512")];
        assert_eq!(with(&both, false).unwrap().memory_mb, Some(512));
    }
}
