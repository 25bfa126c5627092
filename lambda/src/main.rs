//! `picopic-lambda`: in Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves the router through
//! `lambda_http`; `picopic-lambda serve` (the default `local` feature) runs the same router on
//! a local port with the web page at `/`, and an embedded S3-compatible store unless
//! `PICOPIC_S3_ENDPOINT` names one.

use std::process::ExitCode;
use std::sync::Arc;

use picopic_lambda::local::aws_store;
use picopic_lambda::{App, Config, lambda_service};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("picopic-lambda: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        runtime.block_on(lambda())
    } else {
        local::main(&runtime)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("picopic-lambda: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn lambda() -> Result<(), String> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .without_time()
        .init();
    let config = Config::from_env(true).map_err(|e| e.to_string())?;
    let store = aws_store(&config).await?;
    let app = Arc::new(App::new(config, store));
    lambda_http::run(lambda_service(app))
        .await
        .map_err(|e| e.to_string())
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}

/// The Lambda build (`--no-default-features`) has no `serve`.
#[cfg(not(feature = "local"))]
mod local {
    pub fn main(_: &tokio::runtime::Runtime) -> Result<(), String> {
        Err(
            "AWS_LAMBDA_RUNTIME_API is not set, and this build has no `serve` \
             (it was built without the `local` feature)"
                .into(),
        )
    }
}

/// `picopic-lambda serve`.
#[cfg(feature = "local")]
mod local {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::Arc;

    use aws_credential_types::Credentials;
    use clap::{Parser, Subcommand};
    use picopic_lambda::local::{
        LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, aws_store, endpoint_store,
        start_embedded_s3_with_cors,
    };
    use picopic_lambda::{App, Config, page, router};

    use super::filter;

    #[derive(Debug, Parser)]
    #[command(
        name = "picopic-lambda",
        version,
        about = "picopic's upload and download endpoints"
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, Subcommand)]
    enum Command {
        /// Run the router and the web page on a local port.
        Serve {
            /// Address of the API and the page.
            #[arg(long, default_value = "127.0.0.1:3000")]
            addr: SocketAddr,
            /// Where the embedded S3 store keeps objects.
            #[arg(long)]
            data_dir: Option<PathBuf>,
        },
    }

    pub fn main(runtime: &tokio::runtime::Runtime) -> Result<(), String> {
        let Command::Serve { addr, data_dir } = Cli::parse().command;
        runtime.block_on(serve(addr, data_dir))
    }

    /// The origins a browser gives the page served on `local`: the address itself, and for a
    /// loopback or unspecified address both loopback spellings.
    fn own_origins(local: SocketAddr) -> Vec<String> {
        let port = local.port();
        let mut origins = vec![format!("http://{local}")];
        if local.ip().is_loopback() || local.ip().is_unspecified() {
            origins.insert(0, format!("http://127.0.0.1:{port}"));
            origins.push(format!("http://localhost:{port}"));
        }
        origins.retain(|o| !o.starts_with("http://0.0.0.0:") && !o.starts_with("http://[::]:"));
        origins.dedup();
        origins
    }

    async fn serve(addr: SocketAddr, data_dir: Option<PathBuf>) -> Result<(), String> {
        tracing_subscriber::fmt().with_env_filter(filter()).init();
        let mut config = Config::from_env(false).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // The page served here must work with no settings: the store allows its origins
        // beside the configured one, and the API allows them when none is configured.
        let mut origins = own_origins(local);
        match config
            .allowed_origin
            .as_deref()
            .map(|o| o.trim_end_matches('/'))
        {
            Some(origin) => {
                origins.retain(|o| o != origin);
                origins.insert(0, origin.to_string());
            }
            None => config.allowed_origin = origins.first().cloned(),
        }
        let mut embedded = None;
        let store = match &config.s3_endpoint {
            Some(_) => aws_store(&config).await?,
            None => {
                let dir = data_dir.unwrap_or_else(|| std::env::temp_dir().join("picopic-s3"));
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let s3 = start_embedded_s3_with_cors(&dir, loopback, &origins)
                    .await
                    .map_err(|e| format!("embedded S3 on {}: {e}", dir.display()))?;
                let credentials = Credentials::new(
                    LOCAL_ACCESS_KEY,
                    LOCAL_SECRET_KEY,
                    None,
                    None,
                    "picopic-local",
                );
                let store = endpoint_store(&config, &s3.endpoint, credentials, LOCAL_REGION);
                store.ensure_bucket().await.map_err(|e| e.to_string())?;
                println!("S3:     {} (data in {})", s3.endpoint, dir.display());
                println!("        CORS for {}", origins.join(", "));
                embedded = Some(s3);
                store
            }
        };
        println!("bucket: {}", store.bucket());
        println!("API:    http://{local}");
        if let Some(origin) = &config.allowed_origin {
            println!("        CORS for {origin}");
        }
        println!("page:   http://{local}/");
        let app = Arc::new(App::new(config, store));
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        axum::serve(listener, router(app).merge(page::router()))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| e.to_string())?;
        drop(embedded);
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_loopback_page_has_both_spellings_of_its_origin() {
            let at = |s: &str| own_origins(s.parse().expect("address"));
            assert_eq!(
                at("127.0.0.1:3000"),
                ["http://127.0.0.1:3000", "http://localhost:3000"]
            );
            assert_eq!(
                at("0.0.0.0:8080"),
                ["http://127.0.0.1:8080", "http://localhost:8080"]
            );
            assert_eq!(at("192.0.2.7:3000"), ["http://192.0.2.7:3000"]);
        }
    }
}
