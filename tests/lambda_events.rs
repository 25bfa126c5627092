//! Lambda mode: API Gateway HTTP API (payload 2.0), REST API (1.0) and load balancer events
//! go through `lambda_http`'s own types and adapter, around the service `lambda_http::run`
//! is given, and come back as the JSON the runtime would post to Lambda. The store is the
//! embedded S3 server over HTTP.
//!
//! Also the CORS both sides of a deployment apply, checked against template.yaml: API
//! Gateway's `CorsConfiguration` answers preflights itself and overrides the function's CORS
//! headers, so the router must allow what the template allows; and the embedded store
//! applies the bucket's `CorsConfiguration`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use aws_credential_types::Credentials;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use picopic_lambda::local::{
    EmbeddedS3, LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, endpoint_store,
    start_embedded_s3, start_embedded_s3_with_cors,
};
use picopic_lambda::{App, Config, lambda_service};
use serde_json::{Value, json};

use crate::common::{fixture, frames};

const ORIGIN: &str = "https://app.example";
const HOST: &str = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";

/// The router as a Lambda function over an embedded store.
struct Function {
    app: Arc<App>,
    http: reqwest::Client,
    _s3: EmbeddedS3,
    _dir: tempfile::TempDir,
}

impl Function {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let s3 = start_embedded_s3(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("s3");
        let vars = [
            ("PICOPIC_BUCKET", "picopic-test"),
            ("PICOPIC_MAX_AGE_SECS", "300"),
            ("PICOPIC_ALLOWED_ORIGIN", ORIGIN),
        ];
        let config = Config::from_lookup(
            |n| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_string())
            },
            true,
        )
        .expect("config");
        let credentials = Credentials::new(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, None, None, "test");
        let store = endpoint_store(&config, &s3.endpoint, credentials, LOCAL_REGION);
        store.ensure_bucket().await.expect("bucket");
        Self {
            app: Arc::new(App::new(config, store)),
            http: reqwest::Client::new(),
            _s3: s3,
            _dir: dir,
        }
    }

    /// One invocation: the event as Lambda delivers it, the response as the runtime sends it.
    async fn invoke(&self, event: Value) -> Answer {
        let (v2, alb) = (
            event["version"] == "2.0",
            event["requestContext"]["elb"].is_object(),
        );
        let request: LambdaRequest = serde_json::from_value(event).expect("a Lambda HTTP event");
        assert!(
            match request {
                LambdaRequest::ApiGatewayV2(_) => v2,
                LambdaRequest::ApiGatewayV1(_) => !v2 && !alb,
                LambdaRequest::Alb(_) => alb,
                _ => false,
            },
            "read as another kind of event: {request:?}"
        );
        let response = Adapter::from(lambda_service(self.app.clone()))
            .oneshot(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the router never fails");
        Answer(serde_json::to_value(response).expect("a response serializes"))
    }

    /// A presigned POST through Lambda, used to upload `file`; returns the key.
    async fn upload(&self, file: Vec<u8>) -> String {
        let answer = self.invoke(get("/upload-url", None)).await;
        assert_eq!(answer.status(), 200, "{answer:?}");
        let grant = answer.body();
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in grant["fields"].as_object().expect("fields") {
            form = form.text(k.clone(), v.as_str().expect("string").to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("upload"),
        );
        let posted = self
            .http
            .post(grant["url"].as_str().expect("url"))
            .multipart(form)
            .send()
            .await
            .expect("post");
        assert_eq!(posted.status(), 204);
        grant["key"].as_str().expect("key").to_string()
    }
}

/// The JSON `lambda_http` hands the runtime for API Gateway to turn into an HTTP response.
#[derive(Debug)]
struct Answer(Value);

impl Answer {
    fn status(&self) -> u64 {
        self.0["statusCode"].as_u64().expect("statusCode")
    }

    /// A header, from `headers` (payload 2.0) or `multiValueHeaders` (1.0).
    fn header(&self, name: &str) -> Option<&str> {
        self.0["headers"][name]
            .as_str()
            .or_else(|| self.0["multiValueHeaders"][name][0].as_str())
    }

    fn body(&self) -> Value {
        assert_eq!(self.0["isBase64Encoded"], false, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_str(self.0["body"].as_str().expect("a text body")).expect("JSON")
    }

    fn message(&self) -> String {
        self.body()["message"]
            .as_str()
            .expect("message")
            .to_string()
    }

    /// The answer carries CORS for the frontend's origin, as the router's layer adds it.
    fn assert_cors(&self) {
        assert_eq!(
            self.header("access-control-allow-origin"),
            Some(ORIGIN),
            "{self:?}"
        );
        let vary = self.header("vary").unwrap_or_default().to_ascii_lowercase();
        assert!(vary.contains("origin"), "{self:?}");
    }
}

/// An API Gateway HTTP API payload 2.0 event, as the `$default` stage delivers it.
fn event(method: &str, route_key: &str, raw_path: &str, key: Option<&str>, origin: &str) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "accept-encoding": "gzip, deflate, br",
            "content-length": "0",
            "host": HOST,
            "origin": origin,
            "referer": format!("{origin}/"),
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": HOST,
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": route_key,
            "stage": "$default",
            "time": "27/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_780_800_000_i64
        },
        "isBase64Encoded": false
    });
    if let Some(key) = key {
        event["pathParameters"] = json!({ "key": key });
    }
    event
}

/// A GET from the frontend's origin, on one of the template's routes when `key` says which.
fn get(path: &str, key: Option<&str>) -> Value {
    let route = if key.is_some() {
        "GET /download-url/{key}"
    } else {
        "GET /upload-url"
    };
    event("GET", route, path, key, ORIGIN)
}

#[tokio::test]
async fn upload_url_answers_a_presigned_post_with_cors() {
    let f = Function::start().await;
    let answer = f.invoke(get("/upload-url", None)).await;
    println!("GET /upload-url -> {}", answer.0);
    assert_eq!(answer.status(), 200, "{answer:?}");
    assert_eq!(answer.0["cookies"], json!([]), "not a payload 2.0 response");
    answer.assert_cors();
    let body = answer.body();
    let key = body["key"].as_str().expect("key");
    assert_eq!(key.len(), 43);
    assert_eq!(body["fields"]["key"], key);
    assert_eq!(body["max_bytes"], 1_048_576);
    assert!(
        body["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/picopic-test")),
        "{body}"
    );
    for field in [
        "policy",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
    ] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
}

#[tokio::test]
async fn download_url_optimizes_the_upload_its_path_names() {
    let f = Function::start().await;
    let input = fixture("tiny", "rgba8_stored_should_shrink.png");
    let key = f.upload(input.clone()).await;
    let path = format!("/download-url/{key}");

    let answer = f.invoke(get(&path, Some(&key))).await;
    println!("GET /download-url/{{key}} -> {}", answer.0);
    assert_eq!(answer.status(), 200, "{answer:?}");
    answer.assert_cors();
    let body = answer.body();
    assert_eq!(
        (&body["format"], &body["bytes_in"], &body["optimized_now"]),
        (&json!("png"), &json!(input.len()), &json!(true))
    );
    let result = f
        .http
        .get(body["url"].as_str().expect("url"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert!(result.len() < input.len());
    assert_eq!(body["bytes_out"], result.len());
    assert_eq!(frames(&result), frames(&input));

    let again = f.invoke(get(&path, Some(&key))).await;
    assert_eq!(
        (again.status(), again.body()["optimized_now"].as_bool()),
        (200, Some(false))
    );

    let unknown = "A".repeat(43);
    let missing = f
        .invoke(get(&format!("/download-url/{unknown}"), Some(&unknown)))
        .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.message(), "Image does not exist.");
    missing.assert_cors();

    let text = f.upload(b"not an image".to_vec()).await;
    let refused = f
        .invoke(get(&format!("/download-url/{text}"), Some(&text)))
        .await;
    assert_eq!(
        (refused.status(), refused.message().as_str()),
        (415, "File type not allowed.")
    );
    refused.assert_cors();
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let f = Function::start().await;
    let answer = f
        .invoke(event("GET", "$default", "/nope", None, ORIGIN))
        .await;
    println!("GET /nope -> {}", answer.0);
    assert_eq!(
        (answer.status(), answer.message().as_str()),
        (404, "Not found.")
    );
    answer.assert_cors();

    let post = f
        .invoke(event("POST", "$default", "/upload-url", None, ORIGIN))
        .await;
    assert_eq!(
        (post.status(), post.message().as_str()),
        (405, "Method not allowed.")
    );

    // A named stage's name is not a route.
    let staged = on_stage(event("GET", "$default", "/prod/nope", None, ORIGIN), "prod");
    assert_eq!(f.invoke(staged).await.status(), 404);
    let unstaged = event("GET", "GET /upload-url", "/prod/upload-url", None, ORIGIN);
    assert_eq!(f.invoke(unstaged).await.status(), 404);
}

/// `event` (payload 2.0) on a named stage, which an HTTP API puts in front of the path.
fn on_stage(mut event: Value, stage: &str) -> Value {
    let path = format!("/{stage}{}", event["rawPath"].as_str().expect("rawPath"));
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["stage"] = json!(stage);
    event
}

/// `event` (payload 2.0) with a query string, as API Gateway passes it both ways.
fn with_query(mut event: Value, query: &[(&str, &str)]) -> Value {
    let raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    event["rawQueryString"] = json!(raw.join("&"));
    event["queryStringParameters"] = json!(query.iter().copied().collect::<BTreeMap<_, _>>());
    event
}

/// An API Gateway REST API (payload 1.0) GET on the `prod` stage, as a SAM `Api` event or a
/// console-made REST API delivers it: `path` without the stage, the query in two maps.
fn rest_get(path: &str, key: Option<&str>, query: &[(&str, &str)]) -> Value {
    let resource = if key.is_some() {
        "/download-url/{key}"
    } else {
        path
    };
    let single: BTreeMap<_, _> = query.iter().copied().collect();
    let multi: BTreeMap<_, _> = query.iter().map(|&(k, v)| (k, [v])).collect();
    let (single, multi) = if query.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!(single), json!(multi))
    };
    json!({
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": { "Accept": "*/*", "Host": HOST, "Origin": ORIGIN },
        "multiValueHeaders": { "Accept": ["*/*"], "Host": [HOST], "Origin": [ORIGIN] },
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": key.map(|k| json!({ "key": k })),
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": HOST,
            "httpMethod": "GET",
            "identity": { "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)" },
            "path": format!("/prod{path}"),
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1_795_780_800_000_i64,
            "resourceId": "a1b2c3",
            "resourcePath": resource,
            "stage": "prod"
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// An Application Load Balancer GET (multi-value headers off, the target group's default).
fn alb_get(path: &str, query: &[(&str, &str)]) -> Value {
    json!({
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/picopic/0123456789abcdef"
            }
        },
        "httpMethod": "GET",
        "path": path,
        "queryStringParameters": query.iter().copied().collect::<BTreeMap<_, _>>(),
        "headers": {
            "accept": "*/*",
            "host": "picopic-123456789.eu-west-1.elb.amazonaws.com",
            "origin": ORIGIN,
            "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "body": "",
        "isBase64Encoded": false
    })
}

#[tokio::test]
async fn load_balancer_events_reach_the_routes() {
    let f = Function::start().await;
    let answer = f.invoke(alb_get("/upload-url", &[])).await;
    println!("ALB GET /upload-url -> {}", answer.0);
    assert_eq!(answer.status(), 200, "{answer:?}");
    answer.assert_cors();
    let key = f
        .upload(fixture("tiny", "rgba8_stored_should_shrink.png"))
        .await;
    let path = format!("/download-url/{key}");
    let answer = f.invoke(alb_get(&path, &[])).await;
    assert_eq!(answer.status(), 200, "{answer:?}");
    assert_eq!(answer.body()["format"], "png");
    let answer = f.invoke(alb_get(&path, &[("format", "gif")])).await;
    assert_eq!(answer.status(), 400, "{answer:?}");
    assert!(answer.message().contains("format"), "{answer:?}");
}

#[tokio::test]
async fn named_stages_and_queries_reach_the_routes() {
    let f = Function::start().await;
    // A REST API (payload 1.0): lambda_http puts the stage in front of the path.
    let answer = f.invoke(rest_get("/upload-url", None, &[])).await;
    println!("REST GET /upload-url -> {}", answer.0);
    assert_eq!(answer.status(), 200, "{answer:?}");
    answer.assert_cors();
    assert!(answer.body()["fields"]["policy"].is_string());

    let input = fixture("dev", "photo_coffee.png");
    let key = f.upload(input.clone()).await;
    let path = format!("/download-url/{key}");
    let lossy = [("format", "webp"), ("quality", "high")];
    let answer = f.invoke(rest_get(&path, Some(&key), &lossy)).await;
    assert_eq!(answer.status(), 200, "{answer:?}");
    let body = answer.body();
    assert_eq!(body["format"], "webp", "{body}");
    assert!(body["ssimulacra2"].as_f64().expect("score") >= 80.0);
    assert!(body["bytes_out"].as_u64().expect("bytes") < input.len() as u64);

    // An HTTP API's named stage is in the raw path already.
    let bad = with_query(get(&path, Some(&key)), &[("quality", "great")]);
    let answer = f.invoke(on_stage(bad, "prod")).await;
    assert_eq!(answer.status(), 400, "{answer:?}");
    assert!(answer.message().contains("quality"), "{answer:?}");
    answer.assert_cors();
    let again = with_query(get(&path, Some(&key)), &lossy);
    let answer = f.invoke(on_stage(again, "prod")).await;
    assert_eq!(
        (answer.status(), answer.body()["optimized_now"].as_bool()),
        (200, Some(false)),
        "{answer:?}"
    );
}

/// The lines under `header` (the first line whose trimmed text, less a list dash, is
/// `header`) that are indented deeper than it.
fn yaml_block<'a>(lines: &[&'a str], header: &str) -> Vec<&'a str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let at = lines
        .iter()
        .position(|l| l.trim().trim_start_matches("- ") == header)
        .unwrap_or_else(|| panic!("template.yaml has no {header}"));
    // The key of `- key:` starts after the dash.
    let line = lines[at].trim_end();
    let depth = indent(line)
        + if line.trim_start().starts_with("- ") {
            2
        } else {
            0
        };
    lines[at + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > depth)
        .copied()
        .collect()
}

/// The items of the list `key:` in `block`, unquoted.
fn yaml_list(block: &[&str], key: &str) -> BTreeSet<String> {
    let header = format!("{key}:");
    if !block
        .iter()
        .any(|l| l.trim().trim_start_matches("- ") == header)
    {
        return BTreeSet::new();
    }
    yaml_block(block, &header)
        .iter()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|v| v.trim_matches('"').to_ascii_uppercase())
        .collect()
}

/// The value of `key: value` in `block`.
fn yaml_scalar(block: &[&str], key: &str) -> Option<String> {
    let prefix = format!("{key}: ");
    block
        .iter()
        .find_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix(prefix.as_str())
        })
        .map(|v| v.trim_matches('"').to_string())
}

/// A comma-separated header as a set of upper-case items.
fn items(value: Option<&str>) -> BTreeSet<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Deployed, API Gateway answers preflights and sets the CORS headers of every response from
/// template.yaml's `CorsConfiguration`, whatever the function says. The router gives the
/// same answers, so a local run behaves as the deployment does: same origin (the
/// `AllowedOrigin` parameter, which is also the function's `PICOPIC_ALLOWED_ORIGIN`), same
/// methods, same exposed and allowed headers (names compared without case).
#[tokio::test]
async fn cors_matches_the_templates_api_cors_configuration() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .expect("template.yaml");
    let lines: Vec<&str> = template.lines().collect();
    assert!(
        yaml_block(&lines, "Variables:")
            .iter()
            .any(|l| l.trim() == "PICOPIC_ALLOWED_ORIGIN: !Ref AllowedOrigin"),
        "the functions' PICOPIC_ALLOWED_ORIGIN is not the AllowedOrigin parameter"
    );
    let api = yaml_block(&lines, "Api:");
    let cors = yaml_block(&api, "CorsConfiguration:");
    assert_eq!(
        yaml_list(&cors, "AllowOrigins"),
        BTreeSet::from(["!REF ALLOWEDORIGIN".to_string()])
    );
    let methods = yaml_list(&cors, "AllowMethods");

    let f = Function::start().await;
    let mut preflight = event("OPTIONS", "$default", "/upload-url", None, ORIGIN);
    preflight["headers"]["access-control-request-method"] = json!("GET");
    let answer = f.invoke(preflight.clone()).await;
    println!("OPTIONS /upload-url -> {}", answer.0);
    assert_eq!(answer.status(), 200, "{answer:?}");
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        items(answer.header("access-control-allow-methods")),
        methods,
        "the router and the template's AllowMethods differ"
    );
    assert_eq!(
        items(answer.header("access-control-allow-headers")),
        yaml_list(&cors, "AllowHeaders"),
    );
    assert_eq!(
        answer.header("access-control-max-age").map(String::from),
        yaml_scalar(&cors, "MaxAge"),
    );
    let got = f.invoke(get("/upload-url", None)).await;
    assert_eq!(
        items(got.header("access-control-expose-headers")),
        yaml_list(&cors, "ExposeHeaders"),
    );

    // Another origin is never allowed. (API Gateway leaves the header out; the router's
    // `AllowOrigin::exact` sends the configured origin, which the browser refuses all the
    // same.)
    let elsewhere = "https://elsewhere.example";
    preflight["headers"]["origin"] = json!(elsewhere);
    let other = f.invoke(preflight).await;
    assert_ne!(other.header("access-control-allow-origin"), Some(elsewhere));
    let other = f
        .invoke(event(
            "GET",
            "GET /upload-url",
            "/upload-url",
            None,
            elsewhere,
        ))
        .await;
    assert_eq!(other.status(), 200);
    assert_ne!(other.header("access-control-allow-origin"), Some(elsewhere));
}

/// `serve`'s embedded store applies the bucket's CORS rule from template.yaml: its origins,
/// GET and POST, any request header, 3000 s; other origins get a 403 preflight and no CORS
/// headers. Without origins (`start_embedded_s3`) every preflight is refused.
#[tokio::test]
async fn embedded_store_applies_the_buckets_cors_rule() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .expect("template.yaml");
    let lines: Vec<&str> = template.lines().collect();
    let bucket = yaml_block(&lines, "ImagesBucket:");
    let rule = yaml_block(&bucket, "CorsRules:");
    assert_eq!(
        yaml_list(&rule, "AllowedOrigins"),
        BTreeSet::from(["!REF ALLOWEDORIGIN".to_string()])
    );
    assert_eq!(
        yaml_list(&rule, "AllowedHeaders"),
        BTreeSet::from(["*".into()])
    );
    let methods = yaml_list(&rule, "AllowedMethods");
    assert_eq!(yaml_scalar(&rule, "MaxAge").as_deref(), Some("3000"));

    let dir = tempfile::tempdir().expect("temp dir");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let s3 = start_embedded_s3_with_cors(dir.path(), loopback, &[ORIGIN.to_string()])
        .await
        .expect("s3");
    let http = reqwest::Client::new();
    let preflight = |endpoint: &str, origin: &str, method: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{endpoint}/picopic"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type,x-custom")
            .send()
    };
    for method in &methods {
        let answer = preflight(&s3.endpoint, ORIGIN, method)
            .await
            .expect("options");
        assert_eq!(answer.status(), 200, "{method}");
        let h = answer.headers();
        assert_eq!(h["access-control-allow-origin"], ORIGIN);
        let allowed = items(h["access-control-allow-methods"].to_str().ok());
        assert_eq!(allowed, methods);
        assert_eq!(h["access-control-allow-headers"], "content-type,x-custom");
        assert_eq!(h["access-control-max-age"], "3000");
    }
    for (origin, method) in [("https://elsewhere.example", "POST"), (ORIGIN, "PUT")] {
        let answer = preflight(&s3.endpoint, origin, method)
            .await
            .expect("options");
        assert_eq!(answer.status(), 403, "{origin} {method}");
        assert!(
            answer
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    // A real request (anonymous, so S3 refuses it) still says which origin may read it.
    for (origin, allowed) in [(ORIGIN, Some(ORIGIN)), ("https://elsewhere.example", None)] {
        let answer = http
            .get(format!("{}/picopic/missing", s3.endpoint))
            .header("origin", origin)
            .send()
            .await
            .expect("get");
        let header = answer.headers().get("access-control-allow-origin");
        assert_eq!(header.and_then(|v| v.to_str().ok()), allowed, "{origin}");
        assert!(
            answer.headers()["vary"]
                .to_str()
                .is_ok_and(|v| v.contains("Origin"))
        );
    }

    let closed = start_embedded_s3(dir.path(), loopback).await.expect("s3");
    let answer = preflight(&closed.endpoint, ORIGIN, "POST")
        .await
        .expect("options");
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
