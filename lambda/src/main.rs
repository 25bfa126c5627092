//! `picopic-lambda`: in Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves the router through
//! `lambda_http`; `picopic-lambda serve` runs the same router on a local port, with an
//! embedded S3-compatible store unless `PICOPIC_S3_ENDPOINT` names one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use aws_credential_types::Credentials;
use clap::{Parser, Subcommand};
use picopic_lambda::local::{
    LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY, aws_store, endpoint_store, start_embedded_s3,
};
use picopic_lambda::{App, Config, router};

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
    /// Run the router on a local port.
    Serve {
        /// Address of the API.
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Where the embedded S3 store keeps objects.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

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
        let Command::Serve { addr, data_dir } = Cli::parse().command;
        runtime.block_on(serve(addr, data_dir))
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
    lambda_http::run(router(app))
        .await
        .map_err(|e| e.to_string())
}

async fn serve(addr: SocketAddr, data_dir: Option<PathBuf>) -> Result<(), String> {
    tracing_subscriber::fmt().with_env_filter(filter()).init();
    let config = Config::from_env(false).map_err(|e| e.to_string())?;
    let mut embedded = None;
    let store = match &config.s3_endpoint {
        Some(_) => aws_store(&config).await?,
        None => {
            let dir = data_dir.unwrap_or_else(|| std::env::temp_dir().join("picopic-s3"));
            let s3 = start_embedded_s3(&dir, SocketAddr::from(([127, 0, 0, 1], 0)))
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
            embedded = Some(s3);
            store
        }
    };
    println!("bucket: {}", store.bucket());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("API:    http://{local}");
    let app = Arc::new(App::new(config, store));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| e.to_string())?;
    drop(embedded);
    Ok(())
}

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}
