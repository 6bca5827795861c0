//! Serving: load config, start telemetry, build the platform and your routes, listen, and on
//! SIGTERM/Ctrl-C stop accepting, drain in-flight requests and flush spans.
{% if messaging == "nats" %}
//! Message handlers stop fetching on the same signal and finish (and ack) what they hold.
{% endif %}
//!
//! Managed by the platform.

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::platform::config::Config;
use crate::platform::{BoxError, Platform, PlatformBuilder, telemetry};

/// Your application's hooks (see `src/app/mod.rs`).
#[derive(Debug, Clone, Copy)]
pub struct App {
    /// Swap platform extension points (key source, flag provider, idempotency store).
    pub customize: fn(PlatformBuilder) -> PlatformBuilder,
    /// Your routes.
    pub routes: fn(&Platform) -> Result<Router, BoxError>,
}

impl App {
    /// Builds the platform and the full router (platform routes and middleware around yours).
    pub async fn build(&self, builder: PlatformBuilder) -> Result<(Platform, Router), BoxError> {
        let platform = (self.customize)(builder).build().await?;
        let routes = (self.routes)(&platform)?;
        let router = crate::platform::http::router(&platform, routes);
        Ok((platform, router))
    }
}

/// Runs the server until a shutdown signal; returns the process exit code.
pub fn run(app: App) -> ExitCode {
    let (config, layers) = match Config::from_env() {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match telemetry::init(&config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: cannot start telemetry: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(app, PlatformBuilder::new(config, layers)));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "service stopped on an error");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    };
    runtime.block_on(async {
        // The exporter may block while flushing: keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    });
    code
}

async fn serve(app: App, builder: PlatformBuilder) -> Result<(), BoxError> {
    let config = builder.config().clone();
    let (platform, router) = app.build(builder).await?;
    let address = format!("{}:{}", config.server.host, config.server.port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        profile = %config.profile,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health = platform.health.clone();
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("shutdown signal received; draining in-flight requests");
        health.start_draining();
        let _ = stop_tx.send(true);
    };
{% if messaging == "nats" %}
    // Message handlers stop fetching on the same signal and finish what they hold.
    let consumers = platform.messaging.start(stop_rx.clone());
    let http = axum::serve(listener, router).with_graceful_shutdown(signal);
    let server = async move {
        let (served, ()) = tokio::join!(http.into_future(), consumers.wait());
        served
    };
{% else %}
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
{% endif %}
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let mut stopping = stop_rx.clone();
    tokio::select! {
        result = server => result?,
        () = async {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; stopping anyway"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
