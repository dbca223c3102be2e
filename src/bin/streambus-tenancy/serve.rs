//! `streambus-tenancy serve`: the engine over its durable store, the admin
//! API, `/metrics` and `/healthz`, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use streambus_tenancy::server::{
    self, Admin, ApiState, Config, SqliteStore, Tiers, Token, TokenSource, DEFAULT_ALERT_INTERVAL,
    DEFAULT_DATA_DIR, DEFAULT_LISTEN,
};
use streambus_tenancy::Manager;

/// How long in-flight requests get to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7420; port 0 picks a free one].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the tenant database and the token file
    /// [default: ./streambus-tenancy-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config: listen, data_dir, token_file, alert_interval, [tiers.NAME].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Admin token (else STREAMBUS_TENANCY_TOKEN, else the token file, else a
    /// new one is generated into it).
    #[arg(long)]
    token: Option<String>,
    /// How often utilization is sampled for alerts, e.g. 10s [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    alert_interval: Option<Duration>,
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    init_tracing();
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let listen = match args.listen.or(config.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse().map_err(|e| format!("{e}"))?,
    };
    let data_dir = args
        .data_dir
        .or(config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    create_private_dir(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let token_file = config
        .token_file
        .clone()
        .unwrap_or_else(|| data_dir.join("token"));
    let given = args.token.or_else(|| {
        std::env::var("STREAMBUS_TENANCY_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    let (token, source) = Token::resolve(given, &token_file)?;
    let alert_interval = args
        .alert_interval
        .or(config.alert_interval)
        .unwrap_or(DEFAULT_ALERT_INTERVAL);

    let db = data_dir.join("tenants.db");
    let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
    let manager = Arc::new(Manager::new());
    let admin = Arc::new(Admin::open(Arc::clone(&manager), store).map_err(|e| e.to_string())?);
    let state =
        ApiState::new(Arc::clone(&admin), token.clone()).with_tiers(Tiers::with(&config.tiers));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("streambus-tenancy")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let sampler = state.spawn_alert_sampler(alert_interval);
        announce(addr, &db, &token, &source, manager.len());

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let mut graceful = stop_rx.clone();
        let serve =
            axum::serve(listener, server::router(state)).with_graceful_shutdown(async move {
                let _ = graceful.changed().await;
                tracing::info!("shutting down: finishing in-flight requests");
            });
        let mut deadline = stop_rx;
        let result = tokio::select! {
            r = serve => r.map_err(|e| format!("server error: {e}")),
            _ = async {
                let _ = deadline.changed().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!("requests still open after {SHUTDOWN_GRACE:?}; closing anyway");
                Ok(())
            }
        };
        sampler.abort();
        result
    });
    // Lets changes still running on the blocking pool finish (each one is a
    // single synced store write), then closes the store.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    let closed = admin.close().map_err(|e| e.to_string());
    served?;
    closed?;
    tracing::info!("stopped; the tenant store is closed");
    Ok(())
}

fn announce(addr: SocketAddr, db: &std::path::Path, token: &Token, source: &TokenSource, n: usize) {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "streambus-tenancy listening on http://{addr}");
    let _ = writeln!(text, "  tenants: {n} restored from {}", db.display());
    match source {
        TokenSource::Generated(path) => {
            let _ = writeln!(
                text,
                "  admin token (generated, saved to {} with mode 0600; shown only this once):\n    {}",
                path.display(),
                token.expose()
            );
        }
        TokenSource::File(path) => {
            let _ = writeln!(text, "  admin token: in {}", path.display());
        }
        TokenSource::Given => {
            let _ = writeln!(text, "  admin token: as given");
        }
    }
    let _ = writeln!(
        text,
        "  try: curl -H \"Authorization: Bearer $TOKEN\" http://{addr}/api/v1/tenants"
    );
    // A closed stdout must not stop the server.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Creates the data directory, readable by its owner only (it holds the
/// token).
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}
