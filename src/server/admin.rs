//! The durable admin path: validate, write to the store, then apply to the
//! engine, one change at a time.
//!
//! # Consistency
//!
//! Changes are serialized by one mutex around the store. Each one is
//! computed from the engine's current state, written to the store (which
//! returns once the write is synced), and only then applied to the engine
//! with [`Manager::restore`], [`Manager::replace`] or
//! [`Manager::delete_tenant`]. So:
//!
//! - a change the caller saw succeed is on disk;
//! - a change that failed to persist never reached the engine;
//! - the engine and the store apply changes in the same order, and agree on
//!   every field (timestamps included) once a change returns.
//!
//! Enforcement never takes this mutex: it reads the engine, which swaps each
//! tenant's quotas and status atomically.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::store::{Store, StoreError, StoreErrorKind};
use crate::{
    validate_name, validate_tenant_id, Error, Manager, NewTenant, Tenant, TenantStatus,
    TenantUpdate,
};

/// Longest tenant description, in characters (Unicode scalar values, as
/// JSON Schema's `maxLength` counts them).
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// Most metadata entries per tenant.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest metadata key, in characters.
pub(crate) const MAX_METADATA_KEY_LEN: usize = 128;
/// Longest metadata value, in characters.
pub(crate) const MAX_METADATA_VALUE_LEN: usize = 1024;

/// Why an admin change was refused. Nothing of it was applied.
#[derive(Debug)]
pub enum AdminError {
    /// The engine refused it: bad id, name or quotas, unknown or existing id.
    Engine(Error),
    /// A field outside the engine's checks (description, metadata) is out of
    /// range; the message names it.
    Invalid {
        /// The field, e.g. `metadata`.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Deleting a tenant that still holds connections, without `force`.
    HasConnections {
        /// The tenant.
        id: String,
        /// Connections it holds.
        connections: u64,
    },
    /// The tenant was changed through another admin server sharing the
    /// store since this one read it; nothing was applied. Reading it again
    /// (once this server has followed that change) and retrying succeeds.
    Changed(String),
    /// The store failed; the change was neither persisted nor applied.
    Store(StoreError),
    /// At start: a stored tenant cannot be read or restored. The message
    /// names the tenant and the field.
    BadStoredTenant(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Engine(e) => fmt::Display::fmt(e, f),
            AdminError::Invalid { field, message } => write!(f, "{field}: {message}"),
            AdminError::HasConnections { id, connections } => write!(
                f,
                "tenant {id:?} holds {connections} connection(s); close them or delete with force=true"
            ),
            AdminError::Changed(id) => write!(
                f,
                "tenant {id:?} was changed through another admin server meanwhile; \
                 the change was not applied: read the tenant again and retry"
            ),
            AdminError::Store(e) if e.kind() == StoreErrorKind::Unknown => write!(
                f,
                "{e}; the change may or may not have been applied: read the tenant before retrying"
            ),
            AdminError::Store(e) => write!(f, "{e}; the change was not applied"),
            AdminError::BadStoredTenant(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        AdminError::Engine(e)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

/// The engine plus its durable store: every tenant change goes through here.
///
/// All methods block (the store syncs to disk); from async code call them
/// in `tokio::task::spawn_blocking`, as the [router](super::router) does.
pub struct Admin {
    manager: Arc<Manager>,
    store: Mutex<Option<Box<dyn Store>>>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("tenants", &self.manager.len())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Rebuilds `manager` from `store` (every stored tenant, with its status
    /// and timestamps) and returns the admin path over both.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] if the store cannot be read;
    /// [`AdminError::BadStoredTenant`] if a stored tenant is invalid (the
    /// message names the tenant and the field; see
    /// [`Admin::open_skipping_bad_rows`] to start without such tenants);
    /// [`AdminError::Engine`] if a stored tenant is already in `manager`.
    pub fn open(manager: Arc<Manager>, store: impl Store) -> Result<Admin, AdminError> {
        Admin::load(manager, Box::new(store), false).map(|(admin, _)| admin)
    }

    /// As [`Admin::open`], but a stored tenant that cannot be read or
    /// restored is left out (and left as it is in the store) instead of
    /// stopping the start. Returns the admin path and one message per tenant
    /// left out, each also logged at `error`.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] if the store cannot be read at all.
    pub fn open_skipping_bad_rows(
        manager: Arc<Manager>,
        store: impl Store,
    ) -> Result<(Admin, Vec<String>), AdminError> {
        Admin::load(manager, Box::new(store), true)
    }

    fn load(
        manager: Arc<Manager>,
        mut store: Box<dyn Store>,
        skip_bad: bool,
    ) -> Result<(Admin, Vec<String>), AdminError> {
        let rows = store.load_rows()?;
        let mut skipped = Vec::new();
        let mut n = 0;
        for row in rows {
            let outcome = match row {
                Ok(t) => {
                    let id = t.id.clone();
                    match manager.restore(t) {
                        Ok(_) => Ok(()),
                        Err(e @ Error::TenantExists(_)) => return Err(AdminError::Engine(e)),
                        Err(e) => Err(StoreError::new(format!("stored tenant {id:?}: {e}"))),
                    }
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => n += 1,
                Err(e) if skip_bad => {
                    tracing::error!("left out at start: {e}");
                    skipped.push(e.message().to_owned());
                }
                Err(e) => {
                    return Err(AdminError::BadStoredTenant(format!(
                        "{e}; fix or delete that row, or start with --skip-bad-rows to \
                         start without it"
                    )))
                }
            }
        }
        tracing::info!(tenants = n, "tenants restored from the store");
        let admin = Admin {
            manager,
            store: Mutex::new(Some(store)),
        };
        Ok((admin, skipped))
    }

    /// The engine.
    pub fn manager(&self) -> &Arc<Manager> {
        &self.manager
    }

    fn lock(&self) -> Result<StoreGuard<'_>, AdminError> {
        // A panic while holding the lock happened before or after a store
        // write, never inside one (a SQLite transaction is atomic), so the
        // store is still consistent: carry on.
        let guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(AdminError::Store(StoreError::new("the store is closed")));
        }
        Ok(StoreGuard(guard))
    }

    /// Creates an active tenant.
    ///
    /// # Errors
    ///
    /// [`AdminError::Engine`] for a bad id, name or quotas or an existing id;
    /// [`AdminError::Invalid`] for a bad description or metadata;
    /// [`AdminError::Store`].
    pub fn create(&self, new: NewTenant) -> Result<Tenant, AdminError> {
        validate_tenant_id(&new.id)?;
        validate_name(&new.name)?;
        new.quotas.validate()?;
        validate_extras(Some(&new.description), Some(&new.metadata))?;
        let mut store = self.lock()?;
        if self.manager.get_tenant(&new.id).is_ok() {
            return Err(Error::TenantExists(new.id).into());
        }
        let tenant = new.into_tenant(SystemTime::now());
        store
            .get()
            .insert(&tenant)
            .map_err(|e| store_refused(&tenant.id, e))?;
        if let Err(e) = self.manager.restore(tenant.clone()) {
            // Cannot happen while every change goes through this lock; keep
            // the store equal to the engine all the same.
            let _ = store.get().delete(&tenant.id);
            return Err(e.into());
        }
        tracing::info!(tenant = %tenant.id, "tenant created");
        Ok(tenant)
    }

    /// Changes the fields that are `Some` in `update`; the next enforcement
    /// sees new quotas.
    ///
    /// # Errors
    ///
    /// As [`Admin::create`], and [`Error::TenantNotFound`].
    pub fn update(&self, id: &str, update: TenantUpdate) -> Result<Tenant, AdminError> {
        self.modify(id, |t| {
            if let Some(n) = update.name {
                t.name = n;
            }
            if let Some(d) = update.description {
                t.description = d;
            }
            if let Some(m) = update.metadata {
                t.metadata = m;
            }
            if let Some(q) = update.quotas {
                t.quotas = q;
            }
            Ok::<(), AdminError>(())
        })
    }

    /// Suspends a tenant (a no-op if it is suspended already).
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`]; [`AdminError::Store`].
    pub fn suspend(&self, id: &str) -> Result<Tenant, AdminError> {
        self.set_status(id, TenantStatus::Suspended)
    }

    /// Re-activates a tenant (a no-op if it is active already).
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`]; [`AdminError::Store`].
    pub fn activate(&self, id: &str) -> Result<Tenant, AdminError> {
        self.set_status(id, TenantStatus::Active)
    }

    fn set_status(&self, id: &str, status: TenantStatus) -> Result<Tenant, AdminError> {
        self.modify(id, |t| {
            t.status = status;
            Ok::<(), AdminError>(())
        })
    }

    /// Applies `f` to the tenant as it is now, under the admin lock, then
    /// validates the result, writes it to the store and applies it to the
    /// engine. `f` cannot change the id or `created_at`; if it changes
    /// nothing, nothing is written. Reading and changing under one lock means
    /// concurrent partial updates never lose each other's fields.
    ///
    /// # Errors
    ///
    /// What `f` returns; [`Error::TenantNotFound`]; [`AdminError::Engine`]
    /// or [`AdminError::Invalid`] if the result is invalid;
    /// [`AdminError::Store`].
    pub fn modify<E: From<AdminError>>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Tenant) -> Result<(), E>,
    ) -> Result<Tenant, E> {
        let mut store = self.lock()?;
        let current = self.manager.get_tenant(id).map_err(AdminError::from)?;
        let mut t = current.clone();
        f(&mut t)?;
        t.id = current.id.clone();
        t.created_at = current.created_at;
        t.updated_at = current.updated_at;
        if t == current {
            return Ok(current);
        }
        validate_name(&t.name).map_err(AdminError::from)?;
        t.quotas.validate().map_err(AdminError::from)?;
        validate_extras(Some(&t.description), Some(&t.metadata))?;
        if t.status == TenantStatus::Deleted {
            return Err(AdminError::Invalid {
                field: "status",
                message: "use delete to delete a tenant".into(),
            }
            .into());
        }
        // Never move updated_at backwards, even if the wall clock does.
        t.updated_at = SystemTime::now().max(current.updated_at);
        store.get().update(&t).map_err(|e| store_refused(id, e))?;
        let t = self.manager.replace(&t).map_err(AdminError::from)?;
        if t.status != current.status {
            tracing::info!(tenant = %id, status = %t.status, "tenant status changed");
        } else {
            tracing::info!(tenant = %id, "tenant updated");
        }
        Ok(t)
    }

    /// Deletes a tenant. Refused while it holds connections unless `force`.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`]; [`AdminError::HasConnections`];
    /// [`AdminError::Store`].
    pub fn delete(&self, id: &str, force: bool) -> Result<(), AdminError> {
        let mut store = self.lock()?;
        let usage = self.manager.get_usage(id)?;
        if usage.connections > 0 && !force {
            return Err(AdminError::HasConnections {
                id: id.to_owned(),
                connections: usage.connections,
            });
        }
        store.get().delete(id).map_err(|e| store_refused(id, e))?;
        self.manager.delete_tenant(id)?;
        tracing::info!(tenant = %id, forced = force, "tenant deleted");
        Ok(())
    }

    /// Runs `f` on the engine and the store under the admin lock, so that no
    /// change made through this admin path interleaves with it: how the
    /// follower (feature `cluster`) applies the changes other servers made
    /// to a shared store.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`] if the store is closed.
    pub fn with_store<R>(
        &self,
        f: impl FnOnce(&Manager, &mut dyn Store) -> R,
    ) -> Result<R, AdminError> {
        let mut store = self.lock()?;
        Ok(f(&self.manager, store.get()))
    }

    /// Closes the store; later changes fail with [`AdminError::Store`].
    /// Waits for a change in progress to finish first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the final flush fails (nothing acknowledged is lost:
    /// every change was synced when it was made).
    pub fn close(&self) -> Result<(), StoreError> {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        match guard.take() {
            Some(store) => store.close(),
            None => Ok(()),
        }
    }
}

struct StoreGuard<'a>(MutexGuard<'a, Option<Box<dyn Store>>>);

impl StoreGuard<'_> {
    fn get(&mut self) -> &mut dyn Store {
        // `lock` checked that the store is open.
        match self.0.as_mut() {
            Some(s) => s.as_mut(),
            None => unreachable!("the store was checked open under this lock"),
        }
    }
}

/// A store error on a change to tenant `id`, as the admin path answers it:
/// a conflict with what another server sharing the store wrote reads like
/// the same conflict within one server (the id exists, is not found, or
/// changed meanwhile).
fn store_refused(id: &str, e: StoreError) -> AdminError {
    match e.kind() {
        StoreErrorKind::Exists => AdminError::Engine(Error::TenantExists(id.to_owned())),
        StoreErrorKind::NotStored => AdminError::Engine(Error::TenantNotFound(id.to_owned())),
        StoreErrorKind::Changed => AdminError::Changed(id.to_owned()),
        _ => AdminError::Store(e),
    }
}

/// Checks what the engine does not: description and metadata sizes, in
/// characters.
fn validate_extras(
    description: Option<&str>,
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<(), AdminError> {
    let invalid = |field, message| Err(AdminError::Invalid { field, message });
    if let Some(d) = description {
        let chars = d.chars().count();
        if chars > MAX_DESCRIPTION_LEN {
            return invalid(
                "description",
                format!("is {chars} characters long; at most {MAX_DESCRIPTION_LEN} are allowed"),
            );
        }
    }
    if let Some(m) = metadata {
        if m.len() > MAX_METADATA_ENTRIES {
            return invalid(
                "metadata",
                format!(
                    "has {} entries; at most {MAX_METADATA_ENTRIES} are allowed",
                    m.len()
                ),
            );
        }
        for (k, v) in m {
            let chars = k.chars().count();
            if chars == 0 || chars > MAX_METADATA_KEY_LEN || k.chars().any(char::is_control) {
                return invalid(
                    "metadata",
                    format!(
                        "key {k:?} must be 1 to {MAX_METADATA_KEY_LEN} characters without control characters"
                    ),
                );
            }
            let chars = v.chars().count();
            if chars > MAX_METADATA_VALUE_LEN {
                return invalid(
                    "metadata",
                    format!(
                        "value of {k:?} is {chars} characters long; at most {MAX_METADATA_VALUE_LEN} are allowed"
                    ),
                );
            }
        }
    }
    Ok(())
}
