//! Running the server: bind, announce (first-start credentials banner, listening line), serve until
//! SIGTERM/SIGINT, then shut down in order — stop accepting, let in-flight requests finish (bounded
//! by [`DRAIN_TIMEOUT`]), flush and close the stores, remove an ephemeral data directory.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::AuthSetting;
use crate::credentials::{self, Origin};
use crate::http;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Bind `app`'s listen address.
pub async fn bind(app: &App) -> Result<TcpListener> {
    let addrs = app.config().listen_addrs()?;
    TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {}", app.config().listen))
}

/// Bind, announce, and serve until `shutdown` (normally [`shutdown_signal`]) resolves, then shut
/// down cleanly.
pub async fn run<F>(app: App, shutdown: F) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = bind(&app).await?;
    let local = listener.local_addr()?;
    announce(&app, local);
    serve(Arc::new(app), listener, shutdown).await
}

/// Serve on `listener` until `shutdown` resolves, then drain, close the stores and drop the app.
pub async fn serve<F>(app: Arc<App>, listener: TcpListener, shutdown: F) -> Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    app.start()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        axum::serve(listener, http::router(app.clone())).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
    let mut server = tokio::spawn(server.into_future());

    tokio::select! {
        _ = shutdown => {}
        res = &mut server => {
            // The accept loop only ends on shutdown; anything else is unexpected.
            res.context("server task failed")?.context("server failed")?;
        }
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    let _ = stop_tx.send(());
    if !server.is_finished() {
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
            Ok(res) => {
                if let Err(e) = res
                    .context("server task failed")
                    .and_then(|r| r.context("server failed"))
                {
                    tracing::warn!(error = %format!("{e:#}"), "server ended with an error");
                }
            }
            Err(_) => {
                tracing::warn!(
                    timeout_s = DRAIN_TIMEOUT.as_secs(),
                    "in-flight requests did not finish; closing anyway"
                );
                server.abort();
            }
        }
    }
    finish(app).await
}

/// Close the stores and remove an ephemeral data directory.
async fn finish(app: Arc<App>) -> Result<()> {
    let closer = app.clone();
    tokio::task::spawn_blocking(move || closer.close())
        .await
        .context("close task failed")??;
    let ephemeral_dir = app.is_ephemeral().then(|| app.data_dir().to_path_buf());
    match Arc::try_unwrap(app) {
        // Dropping the app drops the stores, then the ephemeral directory (removing it).
        Ok(app) => drop(app),
        Err(still_shared) => {
            // A request that outlived the drain still holds the app; remove the directory directly.
            if let Some(dir) = ephemeral_dir.as_deref() {
                let _ = std::fs::remove_dir_all(dir);
            }
            drop(still_shared);
        }
    }
    if let Some(dir) = ephemeral_dir {
        if dir.exists() {
            // Something wrote into the directory while it was being removed (a bug: every
            // writer stops in `close`). Say what, and remove it anyway.
            let left: Vec<String> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            tracing::warn!(data_dir = %dir.display(), ?left, "ephemeral data directory was written during removal");
            let _ = std::fs::remove_dir_all(&dir);
        }
        tracing::info!(data_dir = %dir.display(), "ephemeral data directory removed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Log where we listen and, on first start, print the generated key pair once.
pub fn announce(app: &App, local: SocketAddr) {
    let endpoint = credentials::endpoint_url(local);
    if let Some((creds, origin)) = app.credentials() {
        match origin {
            Origin::Generated => {
                let file = credentials::file_path(app.data_dir());
                println!(
                    "\nopsloop generated a key pair for this data directory. It is shown only now; it is \
                     kept in {} (show it again with `opsloop credentials`).\n\
                     Point the AWS CLI at this server:\n\n{}",
                    file.display(),
                    indent(&credentials::configure_snippet(creds, &endpoint)),
                );
            }
            Origin::Stored => tracing::info!(
                access_key_id = %creds.access_key_id,
                file = %credentials::file_path(app.data_dir()).display(),
                "using the stored key pair (print it with `opsloop credentials`)"
            ),
            Origin::Configured => {
                tracing::info!(access_key_id = %creds.access_key_id, "using the configured key pair")
            }
        }
    }
    if app.config().auth == AuthSetting::AnyKey {
        tracing::warn!("auth any-key: any access key is accepted and signatures are not checked");
    }
    let services: Vec<String> = app
        .gateway()
        .services()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    tracing::info!(
        addr = %local,
        endpoint = %endpoint,
        account_id = %app.config().account_id,
        services = %services.join(","),
        reset_enabled = app.config().enable_reset,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// Install SIGTERM/SIGINT handlers now (so a signal that arrives during startup is not fatal) and
/// return a future that resolves on the first of them. A second signal exits at once (status 130).
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    let mut signals = Signals::install()?;
    Ok(async move {
        signals.wait().await;
        tokio::spawn(async move {
            signals.wait().await;
            tracing::warn!("second signal: exiting without finishing shutdown");
            std::process::exit(130);
        });
    })
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
            _ = self.int.recv() => tracing::info!(signal = "SIGINT", "signal received"),
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Self> {
        Ok(Signals)
    }

    async fn wait(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "ctrl-c", "signal received");
    }
}
