//! `streambus-tenancy serve`: the engine over its durable store, the admin
//! API, `/metrics` and `/healthz`, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use streambus_tenancy::server::{
    self, parse_size, Admin, ApiState, Config, DataDir, Follower, Limits, LimitsConfig, Metrics,
    RedisSetting, RedisStore, Role, SqliteStore, Store, TenantSeries, Tiers, Token, TokenSource,
    Tokens, DEFAULT_ALERT_INTERVAL, DEFAULT_DATA_DIR, DEFAULT_LISTEN, MIN_ALERT_INTERVAL,
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
    /// Admin token (visible in `ps`: prefer STREAMBUS_TENANCY_TOKEN or the
    /// token file; else a new one is generated into the token file).
    #[arg(long)]
    token: Option<String>,
    /// TOML file of named tokens with roles (admin or read), accepted beside
    /// the admin token; mode 0600.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Serve /metrics without a token (it lists every tenant id).
    #[arg(long)]
    public_metrics: bool,
    /// Which tenants get per-tenant series in /metrics: all, none, or
    /// above:N (a quota at N% utilization or more) [default: all].
    #[arg(long, value_name = "all|none|above:N")]
    metrics_tenants: Option<TenantSeries>,
    /// How often utilization is sampled for alerts, e.g. 10s [default: 10s;
    /// at least 10ms].
    #[arg(long, value_parser = humantime::parse_duration)]
    alert_interval: Option<Duration>,
    /// Time a client has to send a request's headers, and a kept-alive
    /// connection may sit idle [default: 10s; 100ms to 10m].
    #[arg(long, value_parser = humantime::parse_duration)]
    header_read_timeout: Option<Duration>,
    /// Time a request may take, body included [default: 30s; 100ms to 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// Open connections at most [default: 256; 1 to 65536].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Requests handled at once at most [default: 64; 1 to 65536].
    #[arg(long)]
    max_concurrent_requests: Option<usize>,
    /// Start even if a stored tenant cannot be read or restored: leave it out
    /// (and as it is in the store), and log which and why.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Largest request body, e.g. 1MiB [default: 1MiB; 1KiB to 64MiB].
    #[arg(long, value_parser = parse_size)]
    max_body_bytes: Option<usize>,
    /// Keep tenants in Redis instead of SQLite, shared with every server on
    /// the same Redis: redis://[USER:PASSWORD@]HOST:PORT[/DB], or rediss://
    /// for TLS [or STREAMBUS_TENANCY_REDIS, or `redis` in the config file;
    /// a password here is visible in `ps`].
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    init_tracing();
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    // Every option is checked before anything is opened or bound.
    let cli_limits = LimitsConfig {
        header_read_timeout: args.header_read_timeout,
        request_timeout: args.request_timeout,
        max_connections: args.max_connections,
        max_concurrent_requests: args.max_concurrent_requests,
        max_body_bytes: args.max_body_bytes,
    };
    let limits = cli_limits.apply(config.limits.apply(Limits::default()));
    limits
        .validate()
        .map_err(|e| format!("--{}", e.replacen('_', "-", 3)))?;
    let alert_interval = args
        .alert_interval
        .or(config.alert_interval)
        .unwrap_or(DEFAULT_ALERT_INTERVAL);
    if alert_interval < MIN_ALERT_INTERVAL {
        return Err(format!(
            "--alert-interval: {} is too short; use at least {}",
            humantime::format_duration(alert_interval),
            humantime::format_duration(MIN_ALERT_INTERVAL)
        ));
    }
    let listen = match args.listen.or(config.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse().map_err(|e| format!("{e}"))?,
    };
    let data_dir = args
        .data_dir
        .or(config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    // The tokens file and the Redis URL are checked before the data dir is
    // made or a token generated, like every other option.
    let named_tokens = match args.tokens_file.or(config.tokens_file.clone()) {
        Some(path) => Some((Tokens::load(&path)?, path)),
        None => None,
    };
    let redis = redis_setting(args.redis, config.redis.clone())?;
    let data = DataDir::open(&data_dir)?;
    let token_file = config
        .token_file
        .clone()
        .unwrap_or_else(|| data_dir.join("token"));
    if args.token.is_some() {
        tracing::warn!(
            "--token is visible to every user in `ps`; \
             prefer STREAMBUS_TENANCY_TOKEN or the token file"
        );
    }
    if token_file.parent() == Some(data_dir.as_path()) {
        data.tighten("token")?;
    }
    let given = args.token.or_else(|| {
        std::env::var("STREAMBUS_TENANCY_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    let (token, token_source) = Token::resolve(given, &token_file)?;
    let tokens = match named_tokens {
        None => Tokens::from(token.clone()),
        Some((file, path)) => {
            let mut all = vec![("admin".to_owned(), Role::Admin, token.clone())];
            for t in file.iter() {
                all.push((t.name().to_owned(), t.role(), t.token().clone()));
            }
            Tokens::new(all).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    let public_metrics = args.public_metrics || config.public_metrics.unwrap_or(false);

    let (store, source): (Box<dyn Store>, String) = match &redis {
        Some(url) => {
            let store = RedisStore::open(url.expose()).map_err(|e| e.to_string())?;
            (Box::new(store), format!("Redis at {url}"))
        }
        None => {
            let db = data.private_file("tenants.db")?;
            let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
            for extra in ["tenants.db-wal", "tenants.db-shm"] {
                data.tighten(extra)?;
            }
            (Box::new(store), db.display().to_string())
        }
    };
    let manager = Arc::new(Manager::new());
    let admin = if args.skip_bad_rows {
        let (admin, skipped) = Admin::open_skipping_bad_rows(Arc::clone(&manager), store)
            .map_err(|e| e.to_string())?;
        if !skipped.is_empty() {
            tracing::warn!(
                "started without {} stored tenant(s) that could not be read (--skip-bad-rows)",
                skipped.len()
            );
        }
        admin
    } else {
        Admin::open(Arc::clone(&manager), store).map_err(|e| e.to_string())?
    };
    let admin = Arc::new(admin);
    // With Redis, changes made through other servers reach this one's
    // engine, so its reads, /metrics and alerts reflect them.
    let follower = match &redis {
        Some(url) => Some(
            Follower::start_for_admin(Arc::clone(&admin), url.expose())
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let series = args
        .metrics_tenants
        .or(config.metrics_tenants)
        .unwrap_or_default();
    let mut state = ApiState::new(Arc::clone(&admin), token.clone());
    let mut metrics =
        Metrics::new(Arc::clone(&manager), Arc::clone(state.alerts())).with_tenant_series(series);
    // /healthz and /metrics show Redis as the follower sees it.
    if let Some(f) = &follower {
        metrics = metrics.with_follower(f.status());
        state = state.with_follower(f.status());
    }
    let state = state
        .with_metrics(metrics)
        .with_tokens(tokens)
        .with_tiers(Tiers::with(&config.tiers))
        .with_public_metrics(public_metrics)
        .with_limits(limits)?;

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
        announce(addr, &source, &token, &token_source, manager.len());

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let mut graceful = stop_rx.clone();
        let serve = server::serve(listener, server::router(state), limits, async move {
            let _ = graceful.changed().await;
            tracing::info!("shutting down: finishing in-flight requests");
        });
        let mut deadline = stop_rx;
        let result = tokio::select! {
            r = serve => r,
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
    if let Some(f) = follower {
        f.stop();
    }
    let closed = admin.close().map_err(|e| e.to_string());
    // Held to here: the data dir stays locked until the store is closed.
    drop(data);
    served?;
    closed?;
    tracing::info!("stopped; the tenant store is closed");
    Ok(())
}

/// The Redis URL from `--redis`, else `STREAMBUS_TENANCY_REDIS`, else the
/// config file; a password on the command line is warned about.
fn redis_setting(
    flag: Option<String>,
    config: Option<RedisSetting>,
) -> Result<Option<RedisSetting>, String> {
    if let Some(url) = flag {
        let url = RedisSetting::new(url).map_err(|e| format!("--{e}"))?;
        if url.has_password() {
            tracing::warn!(
                "--redis with a password is visible to every user in `ps`; \
                 prefer STREAMBUS_TENANCY_REDIS or `redis` in the config file"
            );
        }
        return Ok(Some(url));
    }
    match std::env::var("STREAMBUS_TENANCY_REDIS") {
        Ok(url) if !url.trim().is_empty() => RedisSetting::new(url)
            .map(Some)
            .map_err(|e| format!("STREAMBUS_TENANCY_REDIS: {e}")),
        _ => Ok(config),
    }
}

fn announce(addr: SocketAddr, store: &str, token: &Token, source: &TokenSource, n: usize) {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(text, "streambus-tenancy listening on http://{addr}");
    let _ = writeln!(text, "  tenants: {n} restored from {store}");
    let _ = writeln!(text, "  dashboard: http://{addr}/ (sign in with a token)");
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
