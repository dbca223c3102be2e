//! The tenant store in Redis (feature `cluster`): several admin servers on
//! one set of tenants, each change one atomic Lua script that also appends
//! it to a change stream for the followers.
//!
//! # Keys
//!
//! Every key starts with the hash tag `{streambus-tenancy}`, so all of them
//! sit in one Redis Cluster slot and every script touches one slot (a
//! script may not touch keys of several slots):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{streambus-tenancy}:schema` | string | the schema version, [`REDIS_SCHEMA_VERSION`] |
//! | `{streambus-tenancy}:version` | string | the last change's version: 1, 2, 3, ... |
//! | `{streambus-tenancy}:tenants` | hash | tenant id → the tenant as JSON |
//! | `{streambus-tenancy}:versions` | hash | tenant id → the version of its last change |
//! | `{streambus-tenancy}:changes` | stream | one entry per change, its ID `VERSION-0` |
//!
//! A change-stream entry has the fields `version`, `op` (`create`,
//! `update` or `delete`; suspend and activate are updates of `status`),
//! `id`, `at_ms` (Redis' clock when it was made) and, but for a delete,
//! `tenant` (the JSON as stored). The stream keeps about
//! [`CHANGE_STREAM_LEN`] entries; a follower further behind reloads the
//! tenants instead.
//!
//! One slot for everything is the price of a change log without gaps: a
//! tenant's write, the version counter and the stream entry commit in one
//! script, so no crash can leave one without the others. The data is small
//! (a tenant is about a kilobyte) and changes are admin actions, so one
//! shard carries them easily; a cluster still gives its replicas and
//! fail-over.
//!
//! # Consistency
//!
//! The change script runs atomically. Before writing anything it checks the
//! schema version, and then: a create that the id is absent (else
//! [`StoreErrorKind::Exists`]); an update or delete that the id is stored
//! (else [`StoreErrorKind::NotStored`]) at the version this store last read
//! or wrote for it (else [`StoreErrorKind::Changed`]). So concurrent changes
//! of one tenant through several servers serialize and none overwrites
//! another unseen, and of racing creates of one id exactly one wins. The
//! version comes from one counter and only increases; stream entry IDs are
//! the versions, so followers read changes in version order.
//!
//! A change whose answer is lost (the connection breaks while Redis runs
//! it) is reported as failed, though Redis may have made it: the admin path
//! then leaves its engine as it was, and a follower applies the change if
//! it was made. Sending it again would find it made (`Exists`, `Changed`).
//!
//! # Durability
//!
//! A change returns once Redis has answered, which with `appendonly yes`
//! and `appendfsync always` is after the change is fsynced to the AOF: the
//! promise SQLite with `synchronous=FULL` gives. Other settings promise
//! less (`everysec`: up to a second of changes).
//!
//! # Connections
//!
//! The [`Store`] trait is synchronous (the admin path calls it from
//! `spawn_blocking`), and redis-rs' reconnecting connection manager and its
//! cluster client are async; so the store owns a small current-thread tokio
//! runtime and runs each call on it with `block_on`. See
//! [`RedisUrl`](super::RedisUrl) for the URL and how a cluster is found.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use redis::{RedisError, Script};
use serde::{Deserialize, Serialize};

use super::redis_conn::{Connection, RedisUrl};
use super::store::{
    from_nanos, quotas_from, to_nanos, Store, StoreError, StoreErrorKind, FIRST_SCHEMA_QUOTAS,
};
use crate::{QuotaType, Tenant, TenantStatus, UNLIMITED};

/// The schema version this build reads and writes.
pub const REDIS_SCHEMA_VERSION: u64 = 1;

/// About how many entries the change stream keeps (`XADD MAXLEN ~`).
pub const CHANGE_STREAM_LEN: u64 = 10_000;

/// The store's keys; see the module docs.
pub(crate) mod keys {
    pub(crate) const SCHEMA: &str = "{streambus-tenancy}:schema";
    pub(crate) const VERSION: &str = "{streambus-tenancy}:version";
    pub(crate) const TENANTS: &str = "{streambus-tenancy}:tenants";
    pub(crate) const VERSIONS: &str = "{streambus-tenancy}:versions";
    pub(crate) const CHANGES: &str = "{streambus-tenancy}:changes";
}

/// One change: checks, then the stream entry, the counter and the tenant.
/// The checks come first because Redis does not roll a script back: a
/// script that fails must fail before its first write. XADD comes first of
/// the writes, so a stream that refuses the ID leaves nothing half-done.
///
/// KEYS: schema, version, tenants, versions, changes.
/// ARGV: schema version, op, id, tenant JSON (empty for a delete), expected
/// version (empty for a create), stream length.
const CHANGE_SCRIPT: &str = r"
local schema = redis.call('GET', KEYS[1])
if schema ~= ARGV[1] then
  return redis.error_reply('SCHEMA ' .. tostring(schema))
end
local op, id, record = ARGV[2], ARGV[3], ARGV[4]
local current = redis.call('HGET', KEYS[4], id)
if op == 'create' then
  if current then
    return redis.error_reply('EXISTS ' .. current)
  end
else
  if not current then
    return redis.error_reply('NOTSTORED ' .. id)
  end
  if current ~= ARGV[5] then
    return redis.error_reply('CHANGED ' .. current)
  end
end
local version = string.format('%d', (tonumber(redis.call('GET', KEYS[2])) or 0) + 1)
local now = redis.call('TIME')
local at_ms = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
if op == 'delete' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], version .. '-0',
    'version', version, 'op', op, 'id', id, 'at_ms', at_ms)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
else
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], version .. '-0',
    'version', version, 'op', op, 'id', id, 'at_ms', at_ms, 'tenant', record)
  redis.call('HSET', KEYS[3], id, record)
  redis.call('HSET', KEYS[4], id, version)
end
redis.call('SET', KEYS[2], version)
return tonumber(version)
";

/// A stored tenant's id, the tenant or why it cannot be read, and its
/// version.
pub(crate) type Row = (String, Result<Tenant, StoreError>, u64);

/// Every tenant with its version, and the last version, read at one
/// instant. KEYS: version, tenants, versions.
const LOAD_SCRIPT: &str = r"
return {redis.call('GET', KEYS[1]) or '0', redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3])}
";

/// One tenant and its version. KEYS: tenants, versions. ARGV: id.
const GET_SCRIPT: &str = r"
return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1])}
";

/// The tenant store in Redis: see the module docs.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use streambus_tenancy::Manager;
/// use streambus_tenancy::server::{Admin, RedisStore};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::open("redis://:s3cret@127.0.0.1:6379/0")?;
/// let admin = Admin::open(Arc::new(Manager::new()), store)?;
/// # Ok(()) }
/// ```
pub struct RedisStore {
    url: RedisUrl,
    rt: Option<tokio::runtime::Runtime>,
    conn: Connection,
    /// The version of each tenant as this store last read or wrote it: what
    /// an update or delete expects to find.
    versions: HashMap<String, u64>,
    change: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("tenants_seen", &self.versions.len())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server or cluster at `url`
    /// (`redis://[USER:PASSWORD@]HOST:PORT[/DB]`, `rediss://` for TLS) and
    /// checks the schema version, setting it in a new store.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is malformed, Redis cannot be reached or
    /// refuses the password, or the store was written by a newer version of
    /// this crate. No message contains the password.
    pub fn open(url: &str) -> Result<RedisStore, StoreError> {
        let url = RedisUrl::parse(url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("cannot start a runtime for Redis: {e}")))?;
        let mut conn = rt.block_on(url.connect())?;
        rt.block_on(check_schema(&url, &mut conn))?;
        tracing::info!(redis = %url, "tenant store in Redis");
        Ok(RedisStore {
            url,
            rt: Some(rt),
            conn,
            versions: HashMap::new(),
            change: Script::new(CHANGE_SCRIPT),
        })
    }

    /// The URL, with its password hidden.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// One stored tenant and its version, read from Redis. A later update or
    /// delete of it through this store expects that version.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if Redis cannot be read or holds an invalid tenant.
    pub fn get(&mut self, id: &str) -> Result<Option<(Tenant, u64)>, StoreError> {
        let read: (Option<String>, Option<u64>) = self.run(|url, conn| async move {
            Script::new(GET_SCRIPT)
                .key(keys::TENANTS)
                .key(keys::VERSIONS)
                .arg(id)
                .invoke_async(conn)
                .await
                .map_err(|e| url.unreachable(&e))
        })?;
        match read {
            (Some(json), Some(version)) => {
                let t = decode(id, &json)?;
                self.versions.insert(id.to_owned(), version);
                Ok(Some((t, version)))
            }
            (None, None) => {
                self.versions.remove(id);
                Ok(None)
            }
            _ => Err(StoreError::new(format!(
                "stored tenant {id:?}: its tenant and version keys disagree"
            ))),
        }
    }

    /// Runs `f` on the store's connection to completion.
    fn run<'a, T, F>(&'a mut self, f: impl FnOnce(&'a RedisUrl, &'a mut Connection) -> F) -> T
    where
        F: std::future::Future<Output = T> + 'a,
    {
        let RedisStore { url, rt, conn, .. } = self;
        match rt.as_ref() {
            Some(rt) => rt.block_on(f(url, conn)),
            // `rt` is taken only by `drop`.
            None => unreachable!("the runtime lives as long as the store"),
        }
    }

    /// Runs the change script; returns the change's version.
    fn write(&mut self, op: &str, id: &str, record: &str) -> Result<u64, StoreError> {
        let expected = match op {
            "create" => String::new(),
            _ => self.versions.get(id).copied().unwrap_or(0).to_string(),
        };
        let change = self.change.clone();
        let expect = expected.as_str();
        let result = self.run(|_, conn| async move {
            let mut call = change.prepare_invoke();
            call.key(keys::SCHEMA)
                .key(keys::VERSION)
                .key(keys::TENANTS)
                .key(keys::VERSIONS)
                .key(keys::CHANGES)
                .arg(REDIS_SCHEMA_VERSION)
                .arg(op)
                .arg(id)
                .arg(record)
                .arg(expect)
                .arg(CHANGE_STREAM_LEN);
            call.invoke_async::<u64>(conn).await
        });
        match result {
            Ok(version) => {
                if op == "delete" {
                    self.versions.remove(id);
                } else {
                    self.versions.insert(id.to_owned(), version);
                }
                Ok(version)
            }
            Err(e) => Err(self.refused(id, &expected, &e)),
        }
    }

    fn refused(&self, id: &str, expected: &str, e: &RedisError) -> StoreError {
        let found = e.detail().unwrap_or("").trim();
        match e.code() {
            Some("EXISTS") => StoreError::of(
                StoreErrorKind::Exists,
                format!("tenant {id:?} is stored already"),
            ),
            Some("NOTSTORED") => StoreError::of(
                StoreErrorKind::NotStored,
                format!("tenant {id:?} is not stored"),
            ),
            Some("CHANGED") => StoreError::of(
                StoreErrorKind::Changed,
                format!(
                    "tenant {id:?} is at version {found} in Redis, not at {expected} as this \
                     server last saw it"
                ),
            ),
            Some("SCHEMA") => StoreError::new(format!(
                "the Redis store's schema version is {found}, not {REDIS_SCHEMA_VERSION}: \
                 it was changed while this server ran; restart it with a build that reads it"
            )),
            // The script may have run before the answer was lost.
            _ => StoreError::of(
                StoreErrorKind::Unknown,
                self.url.unreachable(e).message().to_owned(),
            ),
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // Never blocks, so the store may be dropped inside async code.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Sets the schema version in a new store; refuses a newer one.
pub(crate) async fn check_schema(url: &RedisUrl, conn: &mut Connection) -> Result<(), StoreError> {
    let set: bool = redis::cmd("SET")
        .arg(keys::SCHEMA)
        .arg(REDIS_SCHEMA_VERSION)
        .arg("NX")
        .query_async::<Option<String>>(conn)
        .await
        .map_err(|e| url.unreachable(&e))?
        .is_some();
    if set {
        tracing::info!(redis = %url, "new tenant store: schema version {REDIS_SCHEMA_VERSION}");
        return Ok(());
    }
    let found: Option<String> = redis::cmd("GET")
        .arg(keys::SCHEMA)
        .query_async(conn)
        .await
        .map_err(|e| url.unreachable(&e))?;
    match found.as_deref().map(str::parse::<u64>) {
        Some(Ok(REDIS_SCHEMA_VERSION)) => Ok(()),
        Some(Ok(v)) if v > REDIS_SCHEMA_VERSION => Err(StoreError::new(format!(
            "the tenant store in Redis at {url} has schema version {v}, written by a newer \
             streambus-tenancy; this build reads up to {REDIS_SCHEMA_VERSION}: upgrade it"
        ))),
        _ => Err(StoreError::new(format!(
            "the tenant store in Redis at {url} has an unknown schema version {:?} in {}; \
             this build reads {REDIS_SCHEMA_VERSION}",
            found.unwrap_or_default(),
            keys::SCHEMA
        ))),
    }
}

/// Every stored tenant id with the tenant (or why it cannot be read) and
/// its version, sorted by id; and the last version.
pub(crate) async fn load(
    url: &RedisUrl,
    conn: &mut Connection,
) -> Result<(u64, Vec<Row>), StoreError> {
    type Loaded = (String, Vec<(String, String)>, HashMap<String, String>);
    let (last, tenants, versions): Loaded = Script::new(LOAD_SCRIPT)
        .key(keys::VERSION)
        .key(keys::TENANTS)
        .key(keys::VERSIONS)
        .invoke_async(conn)
        .await
        .map_err(|e| url.unreachable(&e))?;
    let last = last
        .parse::<u64>()
        .map_err(|_| StoreError::new(format!("{} holds {last:?}, not a version", keys::VERSION)))?;
    let mut all = Vec::with_capacity(tenants.len());
    for (id, json) in tenants {
        let version = versions.get(&id).and_then(|v| v.parse::<u64>().ok());
        let row = match version {
            Some(_) => decode(&id, &json),
            None => Err(StoreError::new(format!(
                "stored tenant {id:?}: no valid version in {}",
                keys::VERSIONS
            ))),
        };
        all.push((id, row, version.unwrap_or(0)));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((last, all))
}

impl Store for RedisStore {
    fn load_all(&mut self) -> Result<Vec<Tenant>, StoreError> {
        self.load_rows()?.into_iter().collect()
    }

    fn load_rows(&mut self) -> Result<Vec<Result<Tenant, StoreError>>, StoreError> {
        let (_, rows) = self.run(load)?;
        self.versions.clear();
        let mut all = Vec::with_capacity(rows.len());
        for (id, row, version) in rows {
            if row.is_ok() {
                self.versions.insert(id, version);
            }
            all.push(row);
        }
        Ok(all)
    }

    fn insert(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let record = encode(tenant)?;
        self.write("create", &tenant.id, &record).map(drop)
    }

    fn update(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let record = encode(tenant)?;
        self.write("update", &tenant.id, &record).map(drop)
    }

    fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        self.write("delete", id, "").map(drop)
    }

    fn version_of(&self, id: &str) -> Option<u64> {
        self.versions.get(id).copied()
    }

    fn followed(&mut self, id: &str, version: Option<u64>) {
        match version {
            Some(v) => self.versions.insert(id.to_owned(), v),
            None => self.versions.remove(id),
        };
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        // Every change was acknowledged by Redis when it was made: nothing
        // to flush. Drop shuts the runtime down.
        Ok(())
    }
}

/// A tenant as stored in Redis: timestamps in nanoseconds (exact), quotas
/// by their field names.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: String,
    name: String,
    description: String,
    metadata: BTreeMap<String, String>,
    status: String,
    created_at_ns: i64,
    updated_at_ns: i64,
    quotas: BTreeMap<String, i64>,
}

/// `tenant` as the JSON stored in Redis.
pub(crate) fn encode(t: &Tenant) -> Result<String, StoreError> {
    let status = match t.status {
        TenantStatus::Active => "active",
        TenantStatus::Suspended => "suspended",
        TenantStatus::Deleted => {
            return Err(StoreError::new(format!("tenant {:?} is deleted", t.id)))
        }
    };
    let record = Record {
        id: t.id.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        metadata: t.metadata.clone(),
        status: status.to_owned(),
        created_at_ns: to_nanos(t.created_at),
        updated_at_ns: to_nanos(t.updated_at),
        quotas: QuotaType::ALL
            .iter()
            .map(|&q| (q.field_name().to_owned(), t.quotas.get(q)))
            .collect(),
    };
    serde_json::to_string(&record).map_err(|e| StoreError::new(format!("tenant {:?}: {e}", t.id)))
}

/// The tenant stored under `id` as `json`. The error names the tenant and
/// the field that is wrong.
pub(crate) fn decode(id: &str, json: &str) -> Result<Tenant, StoreError> {
    let bad = |what: String| StoreError::new(format!("stored tenant {id:?}: {what}"));
    let de = &mut serde_json::Deserializer::from_str(json);
    let r: Record = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            bad(format!("not a tenant record: {}", e.inner()))
        } else {
            bad(format!("{path}: {}", e.inner()))
        }
    })?;
    if r.id != id {
        return Err(bad(format!("the record's id is {:?}", r.id)));
    }
    let status = match r.status.as_str() {
        "active" => TenantStatus::Active,
        "suspended" => TenantStatus::Suspended,
        other => return Err(bad(format!("status: unknown status {other:?}"))),
    };
    if let Some(k) = r
        .quotas
        .keys()
        .find(|k| QuotaType::ALL.iter().all(|q| q.field_name() != k.as_str()))
    {
        return Err(bad(format!("quotas: unknown quota {k:?}")));
    }
    let mut values = [0i64; QuotaType::COUNT];
    for q in QuotaType::ALL {
        values[q.index()] = match r.quotas.get(q.field_name()) {
            Some(v) => *v,
            // Declared after the first schema: unlimited in an older record.
            None if q.index() >= FIRST_SCHEMA_QUOTAS => UNLIMITED,
            None => return Err(bad(format!("quotas: {} is missing", q.field_name()))),
        };
    }
    Ok(Tenant {
        id: r.id,
        name: r.name,
        description: r.description,
        created_at: from_nanos(r.created_at_ns),
        updated_at: from_nanos(r.updated_at_ns),
        quotas: quotas_from(&values),
        metadata: r.metadata,
        status,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::Quotas;

    #[test]
    fn a_record_round_trips_exactly() {
        let t = Tenant {
            id: "acme".into(),
            name: "Acme \"quoted\" ünïcode".into(),
            description: "d\nline".into(),
            created_at: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            updated_at: UNIX_EPOCH + Duration::new(1_700_000_001, 1),
            quotas: Quotas {
                max_topics: 7,
                ..Quotas::free_tier()
            },
            metadata: [("k".to_string(), "v".to_string())].into(),
            status: TenantStatus::Suspended,
        };
        assert_eq!(decode("acme", &encode(&t).unwrap()).unwrap(), t);
    }

    #[test]
    fn a_bad_record_names_its_tenant_and_field() {
        let good = encode(&Tenant {
            id: "a".into(),
            name: "A".into(),
            description: String::new(),
            created_at: UNIX_EPOCH,
            updated_at: UNIX_EPOCH,
            quotas: Quotas::free_tier(),
            metadata: BTreeMap::new(),
            status: TenantStatus::Active,
        })
        .unwrap();
        let e = |json: &str| decode("a", json).unwrap_err().message().to_owned();
        assert!(
            e("{not json").starts_with("stored tenant \"a\": "),
            "{}",
            e("x")
        );
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let with = |path: &str, value: serde_json::Value| {
            let mut v = v.clone();
            *v.pointer_mut(path).unwrap() = value;
            v.to_string()
        };
        assert!(e(&with("/status", "gone".into())).contains("status: unknown status \"gone\""));
        assert!(e(&with("/quotas/max_topics", "many".into())).contains("quotas.max_topics"));
        assert!(e(&with("/created_at_ns", "x".into())).contains("created_at_ns"));
        assert!(e(&with("/id", "b".into())).contains("the record's id is \"b\""));
        let mut missing = v.clone();
        missing["quotas"]
            .as_object_mut()
            .unwrap()
            .remove("max_topics");
        assert!(e(&missing.to_string()).contains("quotas: max_topics is missing"));
        // A record written before the connection-creation rate existed reads
        // it as unlimited.
        let mut older = v.clone();
        older["quotas"]["max_connection_creation_rate"] = 40.into();
        let read = |v: &serde_json::Value| decode("a", &v.to_string()).unwrap();
        assert_eq!(read(&older).quotas.max_connection_creation_rate, 40);
        older["quotas"]
            .as_object_mut()
            .unwrap()
            .remove("max_connection_creation_rate");
        assert_eq!(read(&older).quotas.max_connection_creation_rate, UNLIMITED);
        let mut extra = v.clone();
        extra["quotas"]["max_widgets"] = 1.into();
        assert!(e(&extra.to_string()).contains("unknown quota \"max_widgets\""));
    }
}
