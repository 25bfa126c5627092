//! A fault-injecting HTTP proxy between the service and the embedded S3 store: it passes
//! requests through (Host header and SigV4 signature untouched) or fails them on purpose.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the proxy does to the requests it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward unchanged.
    None,
    /// Answer 403 AccessDenied where S3 says 404, as S3 does to a caller without
    /// `s3:ListBucket`.
    MissingAsDenied,
    /// Answer every request with this status and S3 error code.
    Status(u16, &'static str),
    /// Wait this long before forwarding.
    Delay(Duration),
    /// Close every connection as soon as it is accepted.
    Refuse,
    /// Read half of a PUT's body, then drop the connection without an answer.
    DropPut,
}

/// A running proxy; its fault can be changed while it runs.
pub struct Proxy {
    pub endpoint: String,
    fault: Arc<Mutex<Fault>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let fault = Arc::new(Mutex::new(Fault::None));
        let client = reqwest::Client::new();
        let upstream = upstream.to_string();
        let shared = fault.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                if *shared.lock().unwrap_or_else(PoisonError::into_inner) == Fault::Refuse {
                    drop(socket);
                    continue;
                }
                let (client, upstream, fault) = (client.clone(), upstream.clone(), shared.clone());
                let service = service_fn(move |request| {
                    let fault = fault.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    forward(client.clone(), upstream.clone(), fault, request)
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            fault,
            task,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }
}

type Answer = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

fn s3_error(status: u16, code: &str) -> Answer {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{code} (injected by the test proxy)</Message></Error>"
    );
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))?)
}

async fn forward(
    client: reqwest::Client,
    upstream: String,
    fault: Fault,
    request: Request<Incoming>,
) -> Answer {
    match &fault {
        // A connection kept alive from before the fault is cut too.
        Fault::Refuse => return Err("connection refused".into()),
        Fault::Status(status, code) => return s3_error(*status, code),
        Fault::Delay(delay) => tokio::time::sleep(*delay).await,
        _ => {}
    }
    let (parts, body) = request.into_parts();
    if fault == Fault::DropPut && parts.method == hyper::Method::PUT {
        let expected: usize = parts
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = body;
        let mut read = 0;
        while read < expected / 2 {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
        return Err("connection dropped in the middle of a PUT".into());
    }
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = client.request(parts.method, format!("{upstream}{path}"));
    // The body is re-framed on each side; everything else, Host included, passes as it is.
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.body(body).send().await?;
    let status = answer.status().as_u16();
    if fault == Fault::MissingAsDenied && status == 404 {
        return s3_error(403, "AccessDenied");
    }
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !matches!(name.as_str(), "transfer-encoding" | "connection") {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Full::new(answer.bytes().await?))?)
}
