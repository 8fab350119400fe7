//! The `hoplink` binary: serves the API, or prints its OpenAPI document.

use clap::Parser;
use hoplink_server::config::{Cli, Command};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            let state =
                match hoplink_server::build_shortener(&hoplink_server::config::Config::default())
                    .await
                {
                    Ok(shortener) => std::sync::Arc::new(hoplink_server::state::AppState {
                        shortener,
                        config: cli.config,
                        metrics: Default::default(),
                    }),
                    Err(e) => {
                        eprintln!("hoplink: {e}");
                        return ExitCode::FAILURE;
                    }
                };
            print!("{}", hoplink_server::openapi_document(state));
            ExitCode::SUCCESS
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
