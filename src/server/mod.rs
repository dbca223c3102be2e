//! The engine as a service: an admin HTTP API over a durable tenant store,
//! Prometheus metrics and utilization alerts (feature `server`).
//!
//! The pieces, each in its own file:
//!
//! - [`Store`]/[`SqliteStore`]: tenants on disk in SQLite (WAL,
//!   `synchronous=FULL`); every write is synced before it returns.
//! - `RedisStore` (feature `cluster`): tenants in Redis, shared by several
//!   admin servers; each change is one Lua script that checks the tenant's
//!   version, writes it and appends it to a change stream.
//! - `ClusterSync` (feature `cluster`): for a broker, holds every tenant's
//!   rate quotas cluster-wide with the other brokers, through Redis, while
//!   `enforce_*` stays local.
//! - `Follower` (feature `cluster`): for a broker, keeps its `Manager`
//!   equal to the tenants in Redis by tailing that change stream, with a
//!   local snapshot to start from while Redis is down.
//! - [`FollowerStatus`]: a follower's health (Redis reachable, lag in
//!   versions and seconds), shown by `/metrics` and `/healthz`.
//! - [`Admin`]: the durable admin path. Each change is validated, written to
//!   the store, and only then applied to the engine, one change at a time; a
//!   change that fails to persist is not applied. At start it rebuilds the
//!   engine from the store.
//! - [`router`]: the `axum::Router` with `/api/v1/tenants...`, the seed's
//!   `/admin/tenants` aliases, `/api/v1/openapi.json`, `/metrics`,
//!   `/healthz` and the dashboard. A broker mounts it in its own HTTP
//!   server around its own `Arc<Manager>`.
//! - The dashboard: a page at `/` (script and stylesheet under `/ui/`),
//!   embedded in the binary, that shows every tenant against its quotas
//!   from the API with the token the operator enters; [`History`] keeps
//!   the last 15 minutes of the tenants it watches for its charts.
//! - [`Metrics`]: a `prometheus-client` collector that reads the counters
//!   the engine already keeps at scrape time, so the enforce path pays
//!   nothing for them; [`TenantSeries`] limits which tenants get per-tenant
//!   series. `/metrics` renders on the blocking pool, one scrape at a time,
//!   and streams the text as it comes.
//! - [`Alerts`]: samples utilization periodically and logs each crossing of
//!   80% (warning) and 95% (critical) once, through `tracing`.
//! - [`Config`]/[`Tiers`]: the TOML file and the named quota tiers.
//! - [`Tokens`]: named bearer tokens with a [`Role`] (`admin` or `read`),
//!   compared in constant time; every change is written to an audit log.
//! - [`Limits`]/[`serve`]: timeouts and limits (header read, request,
//!   connections, concurrent requests, body size) and the accept loop.
//! - [`DataDir`]: the data directory, private and locked by one server.
//! - [`DEFAULT_PAGE_LIMIT`]/[`MAX_PAGE_LIMIT`]: the pages of the tenant list
//!   (`?limit=N&after=<id>`, answered with `count`, `total` and `next`).
//!
//! # Usage
//!
//! ```no_run
//! use std::sync::Arc;
//! use streambus_tenancy::Manager;
//! use streambus_tenancy::server::{self, Admin, ApiState, SqliteStore, Token};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Arc::new(Manager::new()); // the broker's own manager
//! let store = SqliteStore::open("tenants.db")?;
//! let admin = Admin::open(Arc::clone(&manager), store)?; // restores the tenants
//! let state = ApiState::new(Arc::new(admin), Token::new("a-secret-of-16-or-more-chars")?);
//! let app: axum::Router = server::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7420").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Changes made through [`Admin`] (or the API) are durable. A broker that
//! also calls the manager's lifecycle methods directly bypasses the store:
//! those changes are lost at restart.

mod admin;
mod alerts;
mod api;
mod auth;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod dashboard;
mod datadir;
mod error;
mod extract;
#[cfg(feature = "cluster")]
mod follower;
mod handlers;
mod health;
mod history;
mod limits;
mod metrics;
mod paging;
#[cfg(feature = "cluster")]
mod redis_conn;
#[cfg(feature = "cluster")]
mod redis_store;
mod router;
pub(crate) mod schema;
mod scrape;
mod store;

pub use admin::{Admin, AdminError, MAX_DESCRIPTION_LEN, MAX_METADATA_ENTRIES};
pub use alerts::{
    Alert, AlertEvent, AlertLevel, Alerts, CRITICAL_PERCENT, HYSTERESIS_PERCENT, WARNING_PERCENT,
};
pub use api::{
    AlertJson, CountersJson, CreateTenantRequest, ErrorBody, QuotasJson, StatsJson, TenantJson,
    TenantListJson, UpdateTenantRequest, UsageJson,
};
pub use auth::{NamedToken, Role, Token, TokenSource, Tokens};
#[cfg(feature = "cluster")]
pub use cluster::{
    ClusterOptions, ClusterStatus, ClusterSync, TenantView, BROKER_TTL, LEASE_TIMEOUT,
    ROUND_TIMEOUT,
};
pub use config::{
    parse_size, Config, ConfigError, LimitsConfig, RedisSetting, Tiers, DEFAULT_ALERT_INTERVAL,
    DEFAULT_DATA_DIR, DEFAULT_LISTEN,
};
pub use datadir::{DataDir, LOCK_FILE};
pub use error::ApiError;
#[cfg(feature = "cluster")]
pub use follower::{Follower, MAX_BACKOFF, SNAPSHOT_INTERVAL};
pub use health::FollowerStatus;
pub use history::{History, HistoryJson, HistoryPoint, HISTORY_WINDOW, MAX_SAMPLES, MAX_WATCHED};
pub use limits::{
    serve, Limits, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT,
};
pub use metrics::{Metrics, ParseTenantSeriesError, TenantSeries};
pub use paging::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
#[cfg(feature = "cluster")]
pub use redis_conn::RedisUrl;
#[cfg(feature = "cluster")]
pub use redis_store::{RedisStore, CHANGE_STREAM_LEN, REDIS_SCHEMA_VERSION};
pub use router::{openapi, router, ApiState, MAX_BODY_BYTES, MIN_ALERT_INTERVAL};
pub use store::{SqliteStore, Store, StoreError, StoreErrorKind};
