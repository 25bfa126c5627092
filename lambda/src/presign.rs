//! S3 presigned POST: a policy document signed with SigV4 (aws-sdk-s3 has none, see
//! aws-sdk-rust issue 863). The signature comes from `aws-sigv4`'s public functions.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};

/// What the browser needs: where to POST, and the form fields to send before `file`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PresignedPost {
    /// The bucket URL.
    pub url: String,
    /// Form fields: key, policy, the x-amz-* signing fields.
    pub fields: BTreeMap<String, String>,
}

/// One upload: where, how big, how long.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    /// Bucket URL the form posts to.
    pub url: &'a str,
    /// Bucket name, pinned in the policy.
    pub bucket: &'a str,
    /// Object key, pinned exactly.
    pub key: &'a str,
    /// Largest accepted body; the smallest is 1 byte.
    pub max_bytes: u64,
    /// Signing region.
    pub region: &'a str,
    /// Lifetime of the policy.
    pub ttl: Duration,
}

fn utc(time: SystemTime, format: &str) -> String {
    let text = DateTime::from(time)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    // "2026-11-24T22:05:17Z", perhaps with fractional seconds; reduce to whole seconds.
    let whole = text
        .split('.')
        .next()
        .unwrap_or(&text)
        .trim_end_matches('Z')
        .to_string()
        + "Z";
    match format {
        "amz" => whole.replace(['-', ':'], ""),
        _ => whole,
    }
}

/// Builds and signs the policy for `upload`, as of `now`.
#[must_use]
pub fn presign_post(
    upload: &Upload<'_>,
    credentials: &Credentials,
    now: SystemTime,
) -> PresignedPost {
    let amz_date = utc(now, "amz");
    let day = &amz_date[..8];
    let credential = format!(
        "{}/{day}/{}/s3/aws4_request",
        credentials.access_key_id(),
        upload.region
    );
    let mut fields = BTreeMap::from([
        ("key".to_string(), upload.key.to_string()),
        (
            "x-amz-algorithm".to_string(),
            "AWS4-HMAC-SHA256".to_string(),
        ),
        ("x-amz-credential".to_string(), credential),
        ("x-amz-date".to_string(), amz_date),
    ]);
    if let Some(token) = credentials.session_token() {
        fields.insert("x-amz-security-token".into(), token.into());
    }
    let mut conditions: Vec<Value> = vec![
        json!({"bucket": upload.bucket}),
        json!(["content-length-range", 1, upload.max_bytes]),
    ];
    conditions.extend(fields.iter().map(|(k, v)| json!({ k: v })));
    let policy = json!({
        "expiration": utc(now + upload.ttl, "iso"),
        "conditions": conditions,
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let key = generate_signing_key(credentials.secret_access_key(), now, upload.region, "s3");
    let signature = calculate_signature(key, policy.as_bytes());
    fields.insert("policy".into(), policy);
    fields.insert("x-amz-signature".into(), signature);
    PresignedPost {
        url: upload.url.to_string(),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_pins_bucket_key_size_and_expiry() {
        let credentials =
            Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "test");
        let upload = Upload {
            url: "http://127.0.0.1:9000/bucket",
            bucket: "bucket",
            key: "k3y",
            max_bytes: 1024,
            region: "us-east-1",
            ttl: Duration::from_secs(10),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let post = presign_post(&upload, &credentials, now);
        let policy = base64::engine::general_purpose::STANDARD
            .decode(&post.fields["policy"])
            .unwrap();
        let policy: Value = serde_json::from_slice(&policy).unwrap();
        assert_eq!(policy["expiration"], "2023-11-14T22:13:30Z");
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!({"bucket": "bucket"})));
        assert!(conditions.contains(&json!({"key": "k3y"})));
        assert!(conditions.contains(&json!(["content-length-range", 1, 1024])));
        assert!(conditions.contains(&json!({"x-amz-security-token": "token"})));
        assert_eq!(post.fields["x-amz-date"], "20231114T221320Z");
        assert_eq!(
            post.fields["x-amz-credential"],
            "AKIDEXAMPLE/20231114/us-east-1/s3/aws4_request"
        );
        assert_eq!(post.fields["x-amz-signature"].len(), 64);
        let again = presign_post(&upload, &credentials, now);
        assert_eq!(post, again, "signing is deterministic");
    }
}
