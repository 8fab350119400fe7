//! The `hoplink` binary: serves the API, or prints its OpenAPI document.

use clap::Parser;
use hoplink_server::config::{Cli, Command};
use std::process::ExitCode;

// Every request allocates and frees small buffers across threads: under redirect load
// glibc's malloc and free took about a tenth of the server's CPU, mimalloc about half.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            print!("{}", hoplink_server::openapi_document());
            ExitCode::SUCCESS
        }
        Some(Command::Healthcheck) => match healthcheck(cli.config.bind).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hoplink: unhealthy: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Serve) | None => {
            hoplink_server::init_logging(cli.config.log_format);
            tracing::info!(config = ?cli.config, "starting");
            let server = match hoplink_server::start(cli.config).await {
                Ok(server) => server,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("hoplink: {e}");
                    return ExitCode::from(2);
                }
            };
            match server.run_until(shutdown_signal()).await {
                Ok(()) => {
                    tracing::info!("stopped");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "server failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `GET /api/v1/health` over a plain HTTP/1.0 connection to the local server.
async fn healthcheck(bind: std::net::SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /api/v1/health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within 5 s"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    match &head[9..12] {
        b"200" => Ok(()),
        status => Err(format!("status {}", String::from_utf8_lossy(status))),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
