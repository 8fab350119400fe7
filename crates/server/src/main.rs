//! The `hoplink` binary: serves the API, or prints its OpenAPI document.

use clap::Parser;
use hoplink_server::config::{Cli, Command};
use std::process::ExitCode;

#[allow(unsafe_code)] // a `GlobalAlloc` is unsafe to implement
mod allocator;

// Every request allocates and frees small buffers across threads: under redirect load
// glibc's malloc and free took about a tenth of the server's CPU, mimalloc about half.
#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

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
        Some(Command::Import { owner, file }) => {
            hoplink_server::init_logging(cli.config.log_format);
            match import(&cli.config, &owner, &file).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("hoplink: import: {e}");
                    ExitCode::from(2)
                }
            }
        }
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

/// Rows per call to the service: the unit of progress.
const IMPORT_STEP: usize = 500;

/// `hoplink import --owner EMAIL FILE`: the rows of `file` into `owner`'s links, with a
/// progress bar on a terminal and a summary at the end. Exit 0 when every row was
/// imported or skipped, 1 when some failed (listed on stderr), 2 when nothing could be.
async fn import(
    config: &hoplink_server::config::Config,
    owner: &str,
    file: &std::path::Path,
) -> Result<ExitCode, String> {
    use std::io::{IsTerminal, Write};
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (format, rows) = hoplink::transfer::parse_import(&bytes).map_err(|e| e.to_string())?;
    if config.database_url.is_none() {
        eprintln!(
            "hoplink: warning: no DATABASE_URL: the links go into memory and are gone when this command ends"
        );
    }
    let shortener = hoplink_server::build_shortener(config)
        .await
        .map_err(|e| e.to_string())?;
    let principal = shortener
        .principal_by_email(owner)
        .await
        .map_err(|e| format!("{owner}: {e}"))?;
    let total = rows.len();
    let bar = std::io::stderr().is_terminal();
    eprintln!("importing {total} rows ({format:?} format) for {owner}");
    let mut report = hoplink::transfer::ImportReport::default();
    let mut rows = rows.into_iter();
    let mut done = 0;
    let started = std::time::Instant::now();
    loop {
        let step: Vec<_> = rows.by_ref().take(IMPORT_STEP).collect();
        if step.is_empty() {
            break;
        }
        done += step.len();
        let part = shortener.import_rows(&principal, step).await.map_err(|e| {
            format!(
                "stopped after {} rows: {e}",
                done.saturating_sub(IMPORT_STEP)
            )
        })?;
        report.merge(part);
        if bar {
            let width = 30 * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} rows",
                "#".repeat(width),
                " ".repeat(30 - width)
            );
            let _ = std::io::stderr().flush();
        }
    }
    if bar {
        eprintln!();
    }
    shortener.shutdown().await;
    for failure in &report.failed {
        eprintln!(
            "line {}: {}: {}",
            failure.line, failure.code, failure.detail
        );
    }
    println!(
        "created {}, skipped {}, failed {} ({} rows in {:.1} s)",
        report.created,
        report.skipped,
        report.failed.len(),
        total,
        started.elapsed().as_secs_f64()
    );
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
