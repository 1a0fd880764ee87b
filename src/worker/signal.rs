//! [`shutdown_signal`]: the signals a service manager stops a receiver with.

/// Resolves on SIGTERM (what docker, Kubernetes and systemd send) or Ctrl-C (SIGINT).
///
/// Pass it to the server's graceful shutdown, then shut the worker down, so every delivery that
/// got its 200 is finished or left stored:
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router,
/// #     worker: printone_webhooks::worker::WorkerHandle) -> Result<(), Box<dyn std::error::Error>> {
/// axum::serve(listener, app)
///     .with_graceful_shutdown(printone_webhooks::shutdown_signal())
///     .await?;
/// let report = worker.shutdown().await?;
/// # Ok(()) }
/// ```
///
/// When a signal cannot be listened for (no signal support), that signal never resolves it.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
        () = ctrl_c => {},
        () = terminate => {},
    }
}
