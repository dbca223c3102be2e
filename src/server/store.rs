//! The durable tenant store: SQLite through rusqlite, one row per tenant.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a write returns
//! only after its commit record is fsynced, so an acknowledged change
//! survives a crash or power loss, and a change cut short by one is rolled
//! back whole at the next open. Quotas are columns (named like the
//! [`Quotas`] fields) so an operator can query the file with `sqlite3`;
//! timestamps are nanoseconds since the Unix epoch, so they come back exact.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::{QuotaType, Quotas, Tenant, TenantStatus, UNLIMITED};

/// Where [`Admin`](super::Admin) keeps tenants. Every method returns only
/// once the change is durable.
///
/// [`SqliteStore`] is the implementation; the trait lets tests inject
/// failures and lets a broker put tenants in its own database.
pub trait Store: Send + 'static {
    /// Every tenant stored.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read or holds an invalid row.
    fn load_all(&mut self) -> Result<Vec<Tenant>, StoreError>;
    /// Every tenant stored, each row on its own: a row that cannot be read
    /// as a tenant is an `Err` naming the tenant and the field, and the
    /// other rows still load. The default calls [`Store::load_all`].
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read at all.
    fn load_rows(&mut self) -> Result<Vec<Result<Tenant, StoreError>>, StoreError> {
        Ok(self.load_all()?.into_iter().map(Ok).collect())
    }
    /// Adds a tenant whose id is not stored yet.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the write fails or the id is already stored.
    fn insert(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Overwrites a stored tenant (everything but `created_at`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the write fails or the id is not stored.
    fn update(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Removes a stored tenant.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the write fails or the id is not stored.
    fn delete(&mut self, id: &str) -> Result<(), StoreError>;
    /// Flushes and closes the store.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the final flush fails.
    fn close(self: Box<Self>) -> Result<(), StoreError>;
    /// For a store shared by several servers whose changes carry versions
    /// (Redis): the version of tenant `id` as this store last read, wrote or
    /// was told by [`Store::followed`]. `None` by default.
    fn version_of(&self, id: &str) -> Option<u64> {
        let _ = id;
        None
    }
    /// For a shared store: the engine now holds tenant `id` as changed by
    /// another server at `version` (`None`: deleted), so a later update or
    /// delete through this store expects that version. A no-op by default.
    fn followed(&mut self, id: &str, version: Option<u64>) {
        let _ = (id, version);
    }
}

/// A store chosen at run time (SQLite or Redis) is a store too.
impl Store for Box<dyn Store> {
    fn load_all(&mut self) -> Result<Vec<Tenant>, StoreError> {
        (**self).load_all()
    }
    fn load_rows(&mut self) -> Result<Vec<Result<Tenant, StoreError>>, StoreError> {
        (**self).load_rows()
    }
    fn insert(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        (**self).insert(tenant)
    }
    fn update(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        (**self).update(tenant)
    }
    fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        (**self).delete(id)
    }
    fn close(self: Box<Self>) -> Result<(), StoreError> {
        <dyn Store as Store>::close(*self)
    }
    fn version_of(&self, id: &str) -> Option<u64> {
        (**self).version_of(id)
    }
    fn followed(&mut self, id: &str, version: Option<u64>) {
        (**self).followed(id, version)
    }
}

/// A store operation failed; the change it carried was not made (or, for
/// [`StoreErrorKind::Unknown`], may have been).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

/// What kind of failure a [`StoreError`] is: the store itself failed, or the
/// change conflicts with what the store holds (which, when several servers
/// share one store, another server may have written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be read or written, or holds invalid data.
    Failed,
    /// An insert found the id stored already.
    Exists,
    /// An update or delete found the id not stored.
    NotStored,
    /// An update or delete found the tenant changed since this store last
    /// read or wrote it.
    Changed,
    /// The store's answer to a write was lost (the connection failed while
    /// the change was on its way): it may or may not have been made.
    Unknown,
}

impl StoreError {
    /// The store failed ([`StoreErrorKind::Failed`]); `message` is an
    /// operator's summary.
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError::of(StoreErrorKind::Failed, message)
    }

    /// An error of `kind`.
    pub fn of(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The summary, without the `tenant store:` prefix of `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tenant store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    /// An operator's summary (`disk full`, `the database file is
    /// read-only`); SQLite's own message goes to the log.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let summary = match e.sqlite_error_code() {
            Some(C::DiskFull) => "disk full",
            Some(C::ReadOnly) => "the database file is read-only",
            Some(C::DatabaseBusy | C::DatabaseLocked) => {
                "the database is locked by another process"
            }
            Some(C::CannotOpen) => "the database file cannot be opened",
            Some(C::PermissionDenied) => "permission denied",
            Some(C::SystemIoFailure) => "an I/O error",
            Some(C::DatabaseCorrupt | C::NotADatabase) => "the database file is corrupt",
            Some(C::OutOfMemory) => "out of memory",
            Some(C::ConstraintViolation) => {
                return StoreError::of(
                    StoreErrorKind::Exists,
                    "a row conflicts with one already stored",
                )
            }
            _ => "an unexpected database error (see the server log)",
        };
        tracing::error!(error = %e, "tenant store: {summary}");
        StoreError::new(summary)
    }
}

/// Schema version in `PRAGMA user_version`: 1 stored the first 11 quota
/// types, 2 adds `max_connection_creation_rate`.
const SCHEMA_VERSION: i64 = 2;

/// How many quota types (the first of [`QuotaType::ALL`]) the first stored
/// schema had. A quota type declared after them is missing from the rows
/// and records an older version wrote; it reads as unlimited there, so that
/// upgrading limits nobody (the SQLite store adds its column with that
/// default; the Redis store fills it in when reading).
pub(crate) const FIRST_SCHEMA_QUOTAS: usize = 11;

/// Adds every quota column a table of an older schema lacks, `-1` in the
/// stored rows (see [`FIRST_SCHEMA_QUOTAS`]).
fn add_missing_quota_columns(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
) -> Result<(), StoreError> {
    let mut have = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('tenants')")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            have.push(row.get::<_, String>(0)?);
        }
    }
    for q in QuotaType::ALL {
        let column = q.field_name();
        if have.iter().any(|c| c == column) {
            continue;
        }
        if q.index() < FIRST_SCHEMA_QUOTAS {
            return Err(StoreError::new(format!(
                "{}: the tenants table has no {column} column; it was not written by this program",
                path.display()
            )));
        }
        tx.execute_batch(&format!(
            "ALTER TABLE tenants ADD COLUMN {column} INTEGER NOT NULL DEFAULT {UNLIMITED}"
        ))?;
        let rows: i64 = tx.query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))?;
        tracing::info!(
            store = %path.display(),
            "tenant store upgraded: added {column}, unlimited for the {rows} stored tenants"
        );
    }
    Ok(())
}

/// The tenant store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the file cannot be opened or created, or was written
    /// by a newer schema.
    ///
    /// A file of an older schema is upgraded in one transaction: each quota
    /// column it lacks is added, `-1` (unlimited) in every stored row.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)
            .map_err(|e| StoreError::new(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::new(format!(
                "cannot enable WAL mode (got {mode})"
            )));
        }
        // FULL: the WAL is fsynced at every commit, so a commit that returned
        // is on disk (NORMAL would only sync at checkpoints).
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(format!(
                "{} has schema version {version}; this build reads up to {SCHEMA_VERSION}",
                path.display()
            )));
        }
        let quota_columns: Vec<String> = QuotaType::ALL
            .iter()
            .map(|q| format!("{} INTEGER NOT NULL", q.field_name()))
            .collect();
        let quota_columns = quota_columns.join(",\n                 ");
        let tx = conn.transaction()?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS tenants (
                 id TEXT PRIMARY KEY NOT NULL,
                 name TEXT NOT NULL,
                 description TEXT NOT NULL,
                 metadata TEXT NOT NULL,
                 status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
                 created_at_ns INTEGER NOT NULL,
                 updated_at_ns INTEGER NOT NULL,
                 {quota_columns}
             ) STRICT, WITHOUT ROWID;"
        ))?;
        add_missing_quota_columns(&tx, &path)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir);
        }
        Ok(SqliteStore { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One stored tenant, read from disk (not from the engine).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails or the row is invalid.
    pub fn get(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {} FROM tenants WHERE id = ?1", select_columns());
        let row = self.conn.query_row(&sql, [id], row_values).optional()?;
        row.map(tenant_from_row).transpose()
    }

    fn write(&mut self, sql: &str, tenant: &Tenant, expect_rows: bool) -> Result<(), StoreError> {
        let values = RowValues::of(tenant)?;
        let mut p: Vec<&dyn rusqlite::ToSql> = vec![
            &values.id,
            &values.name,
            &values.description,
            &values.metadata,
            &values.status,
            &values.created_at_ns,
            &values.updated_at_ns,
        ];
        for q in &values.quotas {
            p.push(q);
        }
        let n = self.conn.execute(sql, p.as_slice())?;
        if expect_rows && n == 0 {
            return Err(StoreError::of(
                StoreErrorKind::NotStored,
                format!("tenant {:?} is not stored", tenant.id),
            ));
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn load_all(&mut self) -> Result<Vec<Tenant>, StoreError> {
        self.load_rows()?.into_iter().collect()
    }

    fn load_rows(&mut self) -> Result<Vec<Result<Tenant, StoreError>>, StoreError> {
        let sql = format!("SELECT {} FROM tenants ORDER BY id", select_columns());
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], row_values)?;
        let mut all = Vec::new();
        for row in rows {
            all.push(tenant_from_row(row?));
        }
        Ok(all)
    }

    fn insert(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let cols = all_columns();
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO tenants ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        );
        self.write(&sql, tenant, false)
    }

    fn update(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        // ?1 is the id; ?6 (created_at) is bound but never written: SQLite
        // counts parameters by the largest index, so an unused one is fine.
        let sets: Vec<String> = all_columns()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != 5)
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        let sql = format!("UPDATE tenants SET {} WHERE id = ?1", sets.join(", "));
        self.write(&sql, tenant, true)
    }

    fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM tenants WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StoreError::of(
                StoreErrorKind::NotStored,
                format!("tenant {id:?} is not stored"),
            ));
        }
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<(), StoreError> {
        // Fold the WAL into the main file so the data directory is one file
        // at rest; a failure here loses nothing (the WAL is replayed at open).
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        self.conn.close().map_err(|(_, e)| StoreError::from(e))
    }
}

/// Best effort: make a newly created database file's directory entry durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

const FIXED_COLUMNS: [&str; 7] = [
    "id",
    "name",
    "description",
    "metadata",
    "status",
    "created_at_ns",
    "updated_at_ns",
];

fn all_columns() -> Vec<&'static str> {
    FIXED_COLUMNS
        .iter()
        .copied()
        .chain(QuotaType::ALL.iter().map(|q| q.field_name()))
        .collect()
}

fn select_columns() -> String {
    all_columns().join(", ")
}

/// A row as SQLite values, in [`all_columns`] order.
struct RowValues {
    id: String,
    name: String,
    description: String,
    metadata: String,
    status: String,
    created_at_ns: i64,
    updated_at_ns: i64,
    quotas: [i64; QuotaType::COUNT],
}

impl RowValues {
    fn of(t: &Tenant) -> Result<RowValues, StoreError> {
        let status = match t.status {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => {
                return Err(StoreError::new(format!("tenant {:?} is deleted", t.id)))
            }
        };
        Ok(RowValues {
            id: t.id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            metadata: serde_json::to_string(&t.metadata)
                .map_err(|e| StoreError::new(format!("metadata of {:?}: {e}", t.id)))?,
            status: status.to_owned(),
            created_at_ns: to_nanos(t.created_at),
            updated_at_ns: to_nanos(t.updated_at),
            quotas: QuotaType::ALL.map(|q| t.quotas.get(q)),
        })
    }
}

fn row_values(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowValues> {
    let mut quotas = [0i64; QuotaType::COUNT];
    for (i, q) in quotas.iter_mut().enumerate() {
        *q = r.get(FIXED_COLUMNS.len() + i)?;
    }
    Ok(RowValues {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        metadata: r.get(3)?,
        status: r.get(4)?,
        created_at_ns: r.get(5)?,
        updated_at_ns: r.get(6)?,
        quotas,
    })
}

fn tenant_from_row(v: RowValues) -> Result<Tenant, StoreError> {
    let bad = |what: String| StoreError::new(format!("stored tenant {:?}: {what}", v.id));
    let status = match v.status.as_str() {
        "active" => TenantStatus::Active,
        "suspended" => TenantStatus::Suspended,
        other => return Err(bad(format!("unknown status {other:?}"))),
    };
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(&v.metadata).map_err(|e| bad(format!("metadata: {e}")))?;
    Ok(Tenant {
        id: v.id.clone(),
        name: v.name.clone(),
        description: v.description.clone(),
        created_at: from_nanos(v.created_at_ns),
        updated_at: from_nanos(v.updated_at_ns),
        quotas: quotas_from(&v.quotas),
        metadata,
        status,
    })
}

/// Builds `Quotas` from values in [`QuotaType::ALL`] order.
pub(crate) fn quotas_from(values: &[i64; QuotaType::COUNT]) -> Quotas {
    Quotas::from_fn(|q| values[q.index()])
}

pub(crate) use crate::tenant::{from_nanos, to_nanos};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn tenant(id: &str) -> Tenant {
        let now = SystemTime::now();
        Tenant {
            id: id.into(),
            name: format!("Name of {id}"),
            description: "d".into(),
            created_at: now,
            updated_at: now,
            quotas: Quotas {
                max_topics: 7,
                ..Quotas::free_tier()
            },
            metadata: [("k".to_string(), "v \"quoted\"".to_string())].into(),
            status: TenantStatus::Active,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut s = SqliteStore::open(&path).unwrap();
        let a = tenant("a");
        s.insert(&a).unwrap();
        assert_eq!(
            s.insert(&a).unwrap_err().kind(),
            StoreErrorKind::Exists,
            "a second insert of one id fails"
        );
        let mut b = a.clone();
        b.name = "renamed".into();
        b.status = TenantStatus::Suspended;
        b.updated_at = a.updated_at + Duration::from_nanos(1234);
        s.update(&b).unwrap();
        Box::new(s).close().unwrap();

        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.load_all().unwrap(), vec![b.clone()]);
        assert_eq!(s.get("a").unwrap(), Some(b));
        s.delete("a").unwrap();
        assert_eq!(s.delete("a").unwrap_err().kind(), StoreErrorKind::NotStored);
        assert_eq!(s.update(&a).unwrap_err().kind(), StoreErrorKind::NotStored);
        assert_eq!(s.load_all().unwrap(), vec![]);
    }

    /// `tests/fixtures/tenants-v1.db` was written by the version before the
    /// connection-creation rate (schema 1, eleven quota columns): `acme`
    /// from the pro tier with `max_topics` 7, and `free-one` from the free
    /// tier, suspended.
    #[test]
    fn a_schema_1_file_opens_and_gains_the_new_quota_unlimited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.db");
        std::fs::write(&path, include_bytes!("../../tests/fixtures/tenants-v1.db")).unwrap();
        let version = |p: &Path| -> i64 {
            let c = Connection::open(p).unwrap();
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(version(&path), 1);

        let mut s = SqliteStore::open(&path).unwrap();
        let all = s.load_all().unwrap();
        let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["acme", "free-one"]);
        let pro = Quotas {
            max_topics: 7,
            ..Quotas::pro_tier()
        };
        assert_eq!(all[0].quotas, pro);
        assert_eq!(all[0].quotas.max_connection_creation_rate, UNLIMITED);
        assert_eq!(all[1].quotas, Quotas::free_tier());
        assert_eq!(all[1].status, TenantStatus::Suspended);

        // The new column is written and read like the others.
        let mut acme = all[0].clone();
        acme.quotas.max_connection_creation_rate = 25;
        s.update(&acme).unwrap();
        Box::new(s).close().unwrap();
        assert_eq!(version(&path), SCHEMA_VERSION);
        // Opening again changes nothing.
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get("acme").unwrap(), Some(acme));
        assert_eq!(s.load_all().unwrap()[1], all[1]);
    }

    #[test]
    fn a_table_without_an_original_quota_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE tenants (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
             description TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL,
             created_at_ns INTEGER NOT NULL, updated_at_ns INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        drop(c);
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(
            e.message().contains("no max_bytes_per_second column"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn sqlite_errors_read_as_an_operator_would_say_them() {
        let e = |code| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("raw sqlite detail".into()),
            ))
        };
        assert_eq!(e(rusqlite::ffi::SQLITE_FULL).message(), "disk full");
        assert_eq!(
            e(rusqlite::ffi::SQLITE_READONLY).message(),
            "the database file is read-only"
        );
        assert_eq!(
            e(rusqlite::ffi::SQLITE_BUSY).message(),
            "the database is locked by another process"
        );
        assert!(!e(rusqlite::ffi::SQLITE_CORRUPT)
            .message()
            .contains("raw sqlite detail"));
    }

    #[test]
    fn a_bad_row_names_its_tenant_and_field_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut s = SqliteStore::open(&path).unwrap();
        s.insert(&tenant("a")).unwrap();
        s.insert(&tenant("b")).unwrap();
        s.conn
            .execute(
                "UPDATE tenants SET metadata = '{not json' WHERE id = 'a'",
                [],
            )
            .unwrap();
        let rows = s.load_rows().unwrap();
        assert_eq!(rows.len(), 2);
        let e = rows[0].as_ref().unwrap_err();
        assert!(
            e.message().starts_with("stored tenant \"a\": metadata: "),
            "{e}"
        );
        assert_eq!(rows[1].as_ref().unwrap().id, "b");
        assert!(s.load_all().is_err());
    }

    #[test]
    fn nanos_round_trip() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::from_secs(5),
        ] {
            assert_eq!(from_nanos(to_nanos(t)), t);
        }
    }
}
