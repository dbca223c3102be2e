//! The tenant registry: id -> tracker, with no global lock on any path.
//!
//! A [`Map`] (papaya's `HashMap`, see `sync.rs`) keyed by the tenant id. An
//! id of up to 23 bytes is stored inline in the map's entry, so a lookup
//! compares it without following a pointer to another allocation; a longer
//! id shares the tracker's `Arc<str>`. Lookups borrow the tracker for the
//! duration of the call, so the hot path does not even touch the `Arc`'s
//! reference count. Under `--cfg quota_loom` the map's loom stand-in is used,
//! so that models of delete and re-create run the engine's own logic.

use crate::sync::{Arc, Map};
use crate::tracker::QuotaTracker;

pub(crate) struct Registry(Map<Arc<QuotaTracker>>);

impl Registry {
    pub(crate) fn new(capacity: usize) -> Registry {
        Registry(Map::new(capacity))
    }

    /// Runs `f` on the tenant's tracker, borrowed for the call.
    #[inline]
    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&Arc<QuotaTracker>) -> R) -> Option<R> {
        self.0.with(id, f)
    }

    /// Inserts unless the id is taken; of racing inserts exactly one wins.
    pub(crate) fn try_insert(&self, tracker: Arc<QuotaTracker>) -> Result<(), ()> {
        let id = crate::sync::StdArc::clone(tracker.id_arc());
        self.0.try_insert(&id, tracker)
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<QuotaTracker>> {
        self.0.remove(id)
    }

    /// Visits every tracker (a weakly consistent view).
    pub(crate) fn for_each(&self, f: impl FnMut(&Arc<QuotaTracker>)) {
        self.0.for_each(f)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tenants", &self.len())
            .finish()
    }
}
