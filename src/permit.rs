//! RAII permits: a held count that gives itself back on drop.

use crate::sync::Arc;
use crate::tracker::{Held, QuotaTracker};
use crate::QuotaType;

/// One connection, producer, consumer or consumer group held by a tenant.
///
/// Dropping the permit releases it, so a count cannot drift when a handler
/// returns early or panics (the seed's troubleshooting item 3, "connection
/// count drift"). The permit keeps the tenant's tracker alive: if the tenant
/// is deleted, and even re-created under the same id, dropping the permit
/// releases into the old tracker and never touches the new tenant.
///
/// # Examples
///
/// ```
/// use streambus_tenancy::{Manager, Quotas};
///
/// let m = Manager::new();
/// m.create_tenant("acme", "ACME", Quotas { max_connections: 1, ..Quotas::default() })?;
/// {
///     let _conn = m.acquire_connection("acme")?;
///     assert!(m.acquire_connection("acme").is_err()); // at the limit
/// } // released here
/// assert!(m.acquire_connection("acme").is_ok());
/// # Ok::<(), streambus_tenancy::Error>(())
/// ```
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit {
    tracker: Arc<QuotaTracker>,
    held: Held,
}

impl Permit {
    pub(crate) fn new(tracker: Arc<QuotaTracker>, held: Held) -> Permit {
        Permit { tracker, held }
    }

    /// The tenant the permit belongs to.
    pub fn tenant_id(&self) -> &str {
        self.tracker.id()
    }

    /// What the permit holds (`Connections`, `Producers`, `Consumers` or
    /// `ConsumerGroups`).
    pub fn quota_type(&self) -> QuotaType {
        self.held.quota_type()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.tracker.release(self.held);
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("tenant_id", &self.tenant_id())
            .field("quota_type", &self.quota_type())
            .finish()
    }
}
