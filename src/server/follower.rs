//! The follower (feature `cluster`): keeps a broker's [`Manager`] equal to
//! the tenants in Redis, change by change.
//!
//! It loads every tenant, then tails the change stream with a blocking
//! `XREAD` on its own connection and applies each entry in version order:
//! a create with [`Manager::restore`], an update (suspend and activate
//! included) with [`Manager::replace`], a delete with
//! [`Manager::delete_tenant`]. It runs on its own thread with its own small
//! tokio runtime, so a broker need not run tokio.
//!
//! # Consistency
//!
//! - Entries are applied in version order, each once: the follower reads
//!   the entries after the last version it applied.
//! - After a broken connection it reconnects (backing off up to
//!   [`MAX_BACKOFF`]) and resumes after the last version it applied. If the
//!   stream no longer holds the next version (it keeps about
//!   [`CHANGE_STREAM_LEN`](super::CHANGE_STREAM_LEN) entries), or Redis'
//!   version is behind the follower's (the data set was replaced), it
//!   reloads every tenant and reconciles: tenants gone from the store are
//!   deleted, changed ones replaced, new ones restored.
//! - With a snapshot file it writes the tenants it applied there (at most
//!   once per [`SNAPSHOT_INTERVAL`], atomically: a temporary file renamed
//!   over the old one), and at start restores them from it before it has
//!   reached Redis: a broker that starts while Redis is down enforces the
//!   last known quotas, and catches up when Redis returns.
//! - A stream entry or stored tenant that cannot be read is logged with its
//!   version or id and skipped; the engine keeps what it had.
//!
//! A broker's follower ([`Follower::start`]) must be the only writer of
//! tenants into its `Manager`. An admin server's ([`Follower::start_for_admin`])
//! shares its engine with the admin path: it applies each change under the
//! admin lock and skips those the admin path made itself.
//!
//! # Health
//!
//! [`Follower::status`] is what `/metrics` and `/healthz` show: whether
//! Redis answers, the versions applied and stored, and the lag in versions
//! and in time ([`FollowerStatus`]). Before each read of the stream the
//! follower reads the store's version counter, so an idle follower talks to
//! Redis every [`BLOCK`] and notices within [`RESPONSE_TIMEOUT`] a Redis
//! that stopped answering. Each state change (Redis reachable or not) is
//! logged once, not once per retry.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::streams::{StreamId, StreamReadReply};

use super::admin::Admin;
use super::health::FollowerStatus;
use super::redis_conn::{Connection, RedisUrl};
use super::redis_store::{decode, encode, keys, load, REDIS_SCHEMA_VERSION};
use super::store::StoreError;
use crate::{Error, Manager, Tenant};

/// Where changes are applied.
enum Target {
    /// A broker's engine, of which the follower is the only writer.
    Manager(Arc<Manager>),
    /// An admin server's engine, which its own admin path changes too: each
    /// change is applied under the admin lock, skipped if the admin path
    /// already applied it (the store knows the tenant at that version or a
    /// later one), and its version told to the store.
    Admin(Arc<Admin>),
}

impl Target {
    fn manager(&self) -> &Manager {
        match self {
            Target::Manager(m) => m,
            Target::Admin(a) => a.manager(),
        }
    }

    fn apply(&self, c: &Change) -> Result<(), String> {
        match self {
            Target::Manager(m) => apply(m, c),
            Target::Admin(a) => a
                .with_store(|m, store| {
                    if store.version_of(&c.id).is_some_and(|v| v >= c.version) {
                        return Ok(());
                    }
                    let applied = apply(m, c);
                    store.followed(&c.id, c.tenant.as_ref().map(|_| c.version));
                    applied
                })
                .map_err(|e| e.to_string())?,
        }
    }

    /// Makes the engine's tenants exactly `tenants` (with their versions),
    /// leaving those in `keep` alone.
    fn reconcile(&self, tenants: Vec<(Tenant, u64)>, keep: &HashSet<String>) {
        match self {
            Target::Manager(m) => reconcile(m, tenants.into_iter().map(|(t, _)| t), keep),
            Target::Admin(a) => {
                let done = a.with_store(|m, store| {
                    let gone: Vec<String> = m
                        .list_tenants()
                        .into_iter()
                        .map(|t| t.id)
                        .filter(|id| !keep.contains(id))
                        .collect();
                    for id in gone {
                        store.followed(&id, None);
                    }
                    for (t, v) in &tenants {
                        store.followed(&t.id, Some(*v));
                    }
                    reconcile(m, tenants.into_iter().map(|(t, _)| t), keep);
                });
                if let Err(e) = done {
                    tracing::error!("follower: {e}");
                }
            }
        }
    }
}

/// One stream entry, read.
struct Change {
    version: u64,
    id: String,
    /// The tenant after a create or update; `None` for a delete.
    tenant: Option<Tenant>,
}

/// The longest wait between two attempts to reach Redis: short, so that a
/// follower catches up within a second of Redis answering again (an
/// attempt that finds Redis down costs one refused connection).
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How often at most the snapshot file is rewritten.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// How long one blocking read waits for new entries (and so how long
/// [`Follower::stop`] may take).
const BLOCK: Duration = Duration::from_millis(500);
/// How long the follower waits for an answer from Redis (a blocking read's
/// included) before it takes Redis for unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(2000);
/// Entries read at most per `XREAD`.
const BATCH: usize = 512;

/// A running follower; stops when dropped.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// The versions applied and stored, and whether Redis answers.
    status: FollowerStatus,
    stop: AtomicBool,
    /// Signalled after each batch applied, for [`Follower::wait_for`].
    progress: Mutex<()>,
    advanced: Condvar,
}

impl Follower {
    /// Restores `manager` from `snapshot` if that file exists, then starts
    /// following the Redis store at `url` on a new thread. Redis need not be
    /// reachable yet.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is malformed, or the snapshot file exists
    /// but cannot be read (the message names it).
    pub fn start(
        manager: Arc<Manager>,
        url: &str,
        snapshot: Option<PathBuf>,
    ) -> Result<Follower, StoreError> {
        Follower::spawn(Target::Manager(manager), url, snapshot)
    }

    /// Starts following the Redis store at `url` into the engine of `admin`,
    /// an admin server over that same store: its reads then reflect the
    /// changes made through every server. Changes are applied under the
    /// admin lock, so they never interleave with the admin path's own.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is malformed.
    pub fn start_for_admin(admin: Arc<Admin>, url: &str) -> Result<Follower, StoreError> {
        Follower::spawn(Target::Admin(admin), url, None)
    }

    fn spawn(target: Target, url: &str, snapshot: Option<PathBuf>) -> Result<Follower, StoreError> {
        let url = RedisUrl::parse(url)?;
        let mut applied = 0;
        if let Some(path) = &snapshot {
            if let Some((version, tenants)) = read_snapshot(path)? {
                let manager = target.manager();
                reconcile(manager, tenants, &HashSet::new());
                applied = version;
                tracing::info!(
                    version,
                    tenants = manager.len(),
                    "tenants restored from the snapshot {}",
                    path.display()
                );
            }
        }
        let shared = Arc::new(Shared {
            status: FollowerStatus::new(),
            stop: AtomicBool::new(false),
            progress: Mutex::new(()),
            advanced: Condvar::new(),
        });
        shared.status.set_applied(applied);
        let mut run = Run {
            target,
            url,
            snapshot,
            shared: Arc::clone(&shared),
            applied,
            reload: true,
            snapshot_due: None,
            last_snapshot: None,
            reported: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("cannot start a runtime for Redis: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("tenancy-follower".into())
            .spawn(move || rt.block_on(run.follow()))
            .map_err(|e| StoreError::new(format!("cannot start the follower thread: {e}")))?;
        Ok(Follower {
            shared,
            thread: Some(thread),
        })
    }

    /// The last version applied to the manager (0 before any).
    pub fn applied_version(&self) -> u64 {
        self.shared.status.applied_version()
    }

    /// Whether the follower's last use of Redis succeeded.
    pub fn is_connected(&self) -> bool {
        self.shared.status.redis_up()
    }

    /// Its health, to show in `/metrics` ([`Metrics::with_follower`]) and
    /// `/healthz` ([`ApiState::with_follower`]); it stays current while the
    /// follower runs.
    ///
    /// [`Metrics::with_follower`]: super::Metrics::with_follower
    /// [`ApiState::with_follower`]: super::ApiState::with_follower
    pub fn status(&self) -> FollowerStatus {
        self.shared.status.clone()
    }

    /// Waits until version `version` is applied, or `timeout` passes;
    /// returns whether it was applied.
    pub fn wait_for(&self, version: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self
            .shared
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while self.applied_version() < version {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .shared
                .advanced
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Stops following (within about half a second) and writes a last
    /// snapshot.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The follower thread's state.
struct Run {
    target: Target,
    url: RedisUrl,
    snapshot: Option<PathBuf>,
    shared: Arc<Shared>,
    applied: u64,
    /// Reload every tenant before reading the stream again.
    reload: bool,
    /// A change is applied that the snapshot file does not have yet.
    snapshot_due: Option<Instant>,
    last_snapshot: Option<Instant>,
    /// Whether Redis was last logged as reachable (`None` before the first
    /// attempt).
    reported: Option<bool>,
}

impl Run {
    async fn follow(&mut self) {
        let mut backoff = Duration::from_millis(50);
        let mut conn: Option<Connection> = None;
        while !self.shared.stop.load(Ordering::SeqCst) {
            let result = match conn.as_mut() {
                Some(c) => self.step(c).await,
                None => match self.connect().await {
                    Ok(c) => {
                        conn = Some(c);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    self.set_connected(true, None);
                }
                Err(e) => {
                    conn = None;
                    self.set_connected(false, Some(&e));
                    self.write_snapshot_if_due(true);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            self.write_snapshot_if_due(false);
        }
        self.write_snapshot_if_due(true);
    }

    /// Publishes whether Redis answers, and logs it when that changes (and
    /// after the first attempt), never once per retry.
    fn set_connected(&mut self, now: bool, why: Option<&StoreError>) {
        self.shared.status.set_redis_up(now);
        if self.reported == Some(now) {
            return;
        }
        self.reported = Some(now);
        match why {
            None => tracing::info!(
                redis = %self.url,
                version = self.applied,
                "follower: Redis reachable; following its changes"
            ),
            Some(e) => tracing::warn!(
                redis = %self.url,
                version = self.applied,
                "follower: {e}; enforcing the last known tenants until Redis is back"
            ),
        }
    }

    /// Connects, refuses a store of a newer schema, and decides whether
    /// the stream can be resumed.
    async fn connect(&mut self) -> Result<Connection, StoreError> {
        let mut c = self
            .url
            .connect_quietly(RESPONSE_TIMEOUT)
            .await
            .map_err(|e| self.failed(&e))?;
        let (schema, version): (Option<String>, Option<u64>) = redis::pipe()
            .get(keys::SCHEMA)
            .get(keys::VERSION)
            .query_async(&mut c)
            .await
            .map_err(|e| self.failed(&e))?;
        match schema.as_deref().map(str::parse::<u64>) {
            None | Some(Ok(REDIS_SCHEMA_VERSION)) => {}
            Some(_) => {
                return Err(StoreError::new(format!(
                    "the tenant store in Redis has schema version {:?}; this build reads \
                     {REDIS_SCHEMA_VERSION}: upgrade it",
                    schema.unwrap_or_default()
                )))
            }
        }
        if version.unwrap_or(0) < self.applied {
            tracing::warn!(
                applied = self.applied,
                redis_version = version.unwrap_or(0),
                "follower: Redis is at an older version than applied here; reloading"
            );
            self.reload = true;
        }
        Ok(c)
    }

    /// Reloads if needed, else reads and applies the next entries.
    async fn step(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        if self.reload {
            let read_at = Instant::now();
            let (last, rows) = load(&self.url, conn).await?;
            let mut tenants = Vec::with_capacity(rows.len());
            let mut unreadable = HashSet::new();
            for (id, row, version) in rows {
                match row {
                    Ok(t) => tenants.push((t, version)),
                    Err(e) => {
                        tracing::error!("follower: {e}; keeping what this broker has of it");
                        unreadable.insert(id);
                    }
                }
            }
            self.target.reconcile(tenants, &unreadable);
            tracing::info!(
                version = last,
                tenants = self.target.manager().len(),
                "follower: tenants reloaded from Redis"
            );
            self.reload = false;
            self.advance(last);
            self.shared.status.set_store(last, read_at);
            return Ok(());
        }
        // The store's counter first: once the entries up to it are applied,
        // the engine was caught up at `read_at`.
        let read_at = Instant::now();
        let stored: Option<u64> = redis::cmd("GET")
            .arg(keys::VERSION)
            .query_async(conn)
            .await
            .map_err(|e| self.failed(&e))?;
        self.shared.status.set_store(stored.unwrap_or(0), read_at);
        if stored.unwrap_or(0) < self.applied {
            // The store went back (flushed, or replaced by an older copy):
            // what this engine applied is no longer what the store holds.
            tracing::warn!(
                applied = self.applied,
                stored = stored.unwrap_or(0),
                "follower: the store's version went back; reloading"
            );
            self.reload = true;
            return Ok(());
        }
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(keys::CHANGES)
            .arg(format!("{}-0", self.applied))
            .query_async(conn)
            .await
            .map_err(|e| self.failed(&e))?;
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        for entry in entries {
            let Some(version) = entry_version(&entry) else {
                tracing::error!(entry = %entry.id, "follower: skipped a stream entry with a bad ID");
                continue;
            };
            if version > self.applied + 1 {
                tracing::warn!(
                    applied = self.applied,
                    next = version,
                    "follower: the stream no longer holds the next change; reloading"
                );
                self.reload = true;
                return Ok(());
            }
            match read_change(version, &entry) {
                Ok(change) => {
                    if let Err(e) = self.target.apply(&change) {
                        tracing::error!(version, "follower: skipped change {version}: {e}");
                    }
                }
                Err(e) => tracing::error!(version, "follower: skipped change {version}: {e}"),
            }
            self.advance(version);
        }
        self.shared.status.check_caught_up(read_at);
        Ok(())
    }

    /// A Redis error, summed up; logged in full only at debug level, since
    /// the follower logs Redis going away once ([`Run::set_connected`]).
    fn failed(&self, e: &redis::RedisError) -> StoreError {
        tracing::debug!(redis = %self.url, error = %e, "follower: cannot use Redis");
        self.url.failure(e)
    }

    fn advance(&mut self, version: u64) {
        self.applied = version;
        let _guard = self.shared.progress.lock();
        self.shared.status.set_applied(version);
        self.shared.advanced.notify_all();
        self.snapshot_due.get_or_insert_with(Instant::now);
    }

    fn write_snapshot_if_due(&mut self, now: bool) {
        let Some(path) = &self.snapshot else { return };
        if self.snapshot_due.is_none() {
            return;
        }
        if !now
            && self
                .last_snapshot
                .is_some_and(|t| t.elapsed() < SNAPSHOT_INTERVAL)
        {
            return;
        }
        match write_snapshot(path, self.applied, &self.target.manager().list_tenants()) {
            Ok(()) => {
                self.snapshot_due = None;
                self.last_snapshot = Some(Instant::now());
            }
            Err(e) => tracing::error!("follower: cannot write {}: {e}", path.display()),
        }
    }
}

/// The version in a stream entry's ID (`VERSION-0`).
fn entry_version(entry: &StreamId) -> Option<u64> {
    let (ms, seq) = entry.id.split_once('-')?;
    (seq == "0").then_some(())?;
    ms.parse().ok()
}

/// Reads one stream entry.
fn read_change(version: u64, entry: &StreamId) -> Result<Change, String> {
    let field = |name: &str| {
        entry
            .get::<String>(name)
            .ok_or_else(|| format!("the entry has no {name} field"))
    };
    let (op, id) = (field("op")?, field("id")?);
    let tenant = match op.as_str() {
        "create" | "update" => {
            Some(decode(&id, &field("tenant")?).map_err(|e| e.message().to_owned())?)
        }
        "delete" => None,
        other => return Err(format!("unknown op {other:?}")),
    };
    Ok(Change {
        version,
        id,
        tenant,
    })
}

/// Applies one change to `manager`.
fn apply(manager: &Manager, c: &Change) -> Result<(), String> {
    match &c.tenant {
        Some(t) => put(manager, t.clone()).map_err(|e| e.to_string()),
        None => match manager.delete_tenant(&c.id) {
            Ok(()) | Err(Error::TenantNotFound(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// Makes `t` the manager's tenant of its id, whatever it had: replaced in
/// place when it is the same tenant (same `created_at`), else created anew.
fn put(manager: &Manager, t: Tenant) -> Result<(), Error> {
    match manager.get_tenant(&t.id) {
        Ok(current) if current == t => Ok(()),
        Ok(current) if current.created_at == t.created_at => manager.replace(&t).map(drop),
        Ok(_) => {
            manager.delete_tenant(&t.id)?;
            manager.restore(t).map(drop)
        }
        Err(Error::TenantNotFound(_)) => manager.restore(t).map(drop),
        Err(e) => Err(e),
    }
}

/// Makes the manager's tenants exactly `tenants`, but leaves those in
/// `keep` alone.
fn reconcile(manager: &Manager, tenants: impl IntoIterator<Item = Tenant>, keep: &HashSet<String>) {
    let mut ids = HashSet::new();
    for t in tenants {
        let id = t.id.clone();
        if let Err(e) = put(manager, t) {
            tracing::error!(tenant = %id, "follower: cannot apply stored tenant {id:?}: {e}");
        }
        ids.insert(id);
    }
    for t in manager.list_tenants() {
        if !ids.contains(&t.id) && !keep.contains(&t.id) {
            let _ = manager.delete_tenant(&t.id);
        }
    }
}

/// The snapshot: a first line `{"version":N}`, then one tenant record (as
/// stored in Redis) per line. `None` if the file does not exist.
fn read_snapshot(path: &Path) -> Result<Option<(u64, Vec<Tenant>)>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::new(format!(
                "cannot read the snapshot {}: {e}",
                path.display()
            )))
        }
    };
    let bad = |line: usize, what: String| {
        StoreError::new(format!(
            "the snapshot {} is damaged at line {line}: {what}; delete it to start from Redis",
            path.display()
        ))
    };
    let mut lines = text.lines();
    #[derive(serde::Deserialize)]
    struct Header {
        version: u64,
    }
    let header: Header =
        serde_json::from_str(lines.next().unwrap_or("")).map_err(|e| bad(1, e.to_string()))?;
    let mut tenants = Vec::new();
    for (i, line) in lines.enumerate() {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_owned)))
            .ok_or_else(|| bad(i + 2, "not a tenant record".into()))?;
        tenants.push(decode(&id, line).map_err(|e| bad(i + 2, e.message().to_owned()))?);
    }
    Ok(Some((header.version, tenants)))
}

fn write_snapshot(path: &Path, version: u64, tenants: &[Tenant]) -> Result<(), String> {
    let mut text = format!("{{\"version\":{version}}}\n");
    for t in tenants {
        text.push_str(&encode(t).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
