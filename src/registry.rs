//! The tenant registry: id -> tracker, with no global lock on any path.
//!
//! A `papaya::HashMap` keyed by the tenant id and hashed with foldhash. The key
//! is a `SmolStr`: an id of up to 23 bytes is stored inline in the map's
//! entry, so a lookup compares it without following a pointer to another
//! allocation (one cache line less per call over many tenants); a longer id
//! shares the tracker's `Arc<str>`. Lookups pin an
//! epoch guard (a thread-local, no shared write) and borrow the tracker for the
//! duration of the call, so the hot path does not even touch the `Arc`'s
//! reference count. Under `--cfg quota_loom` a loom `RwLock<HashMap>` stands in,
//! so that models of delete and re-create run the engine's own logic.

use std::sync::Arc as IdArc;

use crate::sync::Arc;
use crate::tracker::QuotaTracker;

#[cfg(not(quota_loom))]
pub(crate) struct Registry(
    papaya::HashMap<smol_str::SmolStr, Arc<QuotaTracker>, foldhash::fast::RandomState>,
);

#[cfg(not(quota_loom))]
impl Registry {
    pub(crate) fn new(capacity: usize) -> Registry {
        Registry(
            papaya::HashMap::builder()
                .capacity(capacity)
                .hasher(foldhash::fast::RandomState::default())
                .build(),
        )
    }

    /// Runs `f` on the tenant's tracker, borrowed for the call.
    #[inline]
    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&Arc<QuotaTracker>) -> R) -> Option<R> {
        let guard = self.0.guard();
        self.0.get(id, &guard).map(f)
    }

    /// Inserts unless the id is taken; of racing inserts exactly one wins.
    pub(crate) fn try_insert(&self, tracker: Arc<QuotaTracker>) -> Result<(), ()> {
        let guard = self.0.guard();
        let id = smol_str::SmolStr::from(IdArc::clone(tracker.id_arc()));
        self.0
            .try_insert(id, tracker, &guard)
            .map(|_| ())
            .map_err(|_| ())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<QuotaTracker>> {
        let guard = self.0.guard();
        self.0.remove(id, &guard).cloned()
    }

    /// Visits every tracker (a weakly consistent view, as papaya's iterator).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<QuotaTracker>)) {
        let guard = self.0.guard();
        for (_, t) in self.0.iter(&guard) {
            f(t);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(quota_loom)]
pub(crate) struct Registry(
    crate::sync::RwLock<std::collections::HashMap<IdArc<str>, Arc<QuotaTracker>>>,
);

#[cfg(quota_loom)]
impl Registry {
    pub(crate) fn new(_capacity: usize) -> Registry {
        Registry(crate::sync::RwLock::new(std::collections::HashMap::new()))
    }

    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&Arc<QuotaTracker>) -> R) -> Option<R> {
        let t = self.0.read().unwrap().get(id).cloned();
        t.as_ref().map(f)
    }

    pub(crate) fn try_insert(&self, tracker: Arc<QuotaTracker>) -> Result<(), ()> {
        let mut map = self.0.write().unwrap();
        let id = IdArc::clone(tracker.id_arc());
        if map.contains_key(&id) {
            return Err(());
        }
        map.insert(id, tracker);
        Ok(())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<QuotaTracker>> {
        self.0.write().unwrap().remove(id)
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<QuotaTracker>)) {
        let all: Vec<_> = self.0.read().unwrap().values().cloned().collect();
        for t in &all {
            f(t);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap().len()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tenants", &self.len())
            .finish()
    }
}
