//! The one place the engine's synchronisation primitives come from, and the
//! one place their loom stand-ins live.
//!
//! Under `--cfg quota_loom` every atomic, `Arc` and lock below is loom's, so the
//! models in `loom-tests/` explore the interleavings of the engine's real code;
//! otherwise they are `std`'s. A namespaced cfg is used instead of a bare
//! `--cfg loom` because that one changes tokio and other crates too (crossbeam
//! uses `crossbeam_loom` for the same reason).
//!
//! `papaya`, `arc-swap` and `quanta` know nothing of loom, so the engine reaches
//! them through the three small types here, each with a loom stand-in of the
//! same interface: [`Map`] (papaya's map; a loom `RwLock<HashMap>`),
//! [`SwapCell`] (an `ArcSwap`; a loom `RwLock<Arc<_>>`) and [`TimeSource`]
//! (a `quanta::Clock`; a tick counter a model moves by hand). No other module
//! has a `quota_loom` cfg of its own, but for the models' entry points.
//!
//! Two names for a reference count: [`Arc`] is loom's under the cfg (the
//! models see its count: trackers, permits, quota snapshots), [`StdArc`] is
//! always `std`'s (values loom need not see: ids, the clock, tenant infos).

pub(crate) use std::sync::Arc as StdArc;

#[cfg(not(quota_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Arc,
};

#[cfg(quota_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Arc,
};

/// A pause in a spin loop (loom must be told, or it explores the spin forever).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(quota_loom))]
    std::hint::spin_loop();
    #[cfg(quota_loom)]
    loom::thread::yield_now();
}

// ----- the map the registry keeps its trackers in ---------------------------

/// A concurrent map from an id to `V`: papaya's `HashMap` keyed by a
/// `SmolStr` (an id of up to 23 bytes stored inline in the entry) and hashed
/// with foldhash. Lookups pin an epoch guard (a thread-local, no shared
/// write) and borrow the value for the call.
#[cfg(not(quota_loom))]
pub(crate) struct Map<V>(papaya::HashMap<smol_str::SmolStr, V, foldhash::fast::RandomState>);

#[cfg(not(quota_loom))]
impl<V: Clone> Map<V> {
    pub(crate) fn new(capacity: usize) -> Map<V> {
        Map(papaya::HashMap::builder()
            .capacity(capacity)
            .hasher(foldhash::fast::RandomState::default())
            .build())
    }

    /// Runs `f` on the value of `id`, borrowed for the call.
    #[inline]
    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let guard = self.0.guard();
        self.0.get(id, &guard).map(f)
    }

    /// Inserts unless the id is taken; of racing inserts exactly one wins.
    pub(crate) fn try_insert(&self, id: &StdArc<str>, value: V) -> Result<(), ()> {
        let guard = self.0.guard();
        let key = smol_str::SmolStr::from(StdArc::clone(id));
        self.0
            .try_insert(key, value, &guard)
            .map(|_| ())
            .map_err(|_| ())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<V> {
        let guard = self.0.guard();
        self.0.remove(id, &guard).cloned()
    }

    /// Visits every value (a weakly consistent view, as papaya's iterator).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&V)) {
        let guard = self.0.guard();
        for (_, v) in self.0.iter(&guard) {
            f(v);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Loom stand-in for [`Map`]: a loom `RwLock` around a `HashMap`, so that
/// models of delete and re-create run the engine's own logic.
#[cfg(quota_loom)]
pub(crate) struct Map<V>(loom::sync::RwLock<std::collections::HashMap<StdArc<str>, V>>);

#[cfg(quota_loom)]
impl<V: Clone> Map<V> {
    pub(crate) fn new(_capacity: usize) -> Map<V> {
        Map(loom::sync::RwLock::new(std::collections::HashMap::new()))
    }

    pub(crate) fn with<R>(&self, id: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let v = self.0.read().unwrap().get(id).cloned();
        v.as_ref().map(f)
    }

    pub(crate) fn try_insert(&self, id: &StdArc<str>, value: V) -> Result<(), ()> {
        let mut map = self.0.write().unwrap();
        if map.contains_key(id) {
            return Err(());
        }
        map.insert(StdArc::clone(id), value);
        Ok(())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<V> {
        self.0.write().unwrap().remove(id)
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&V)) {
        let all: Vec<V> = self.0.read().unwrap().values().cloned().collect();
        for v in &all {
            f(v);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().unwrap().len()
    }
}

// ----- a value swapped whole ------------------------------------------------

/// A value read whole and replaced whole: an `arc_swap::ArcSwap`.
#[cfg(not(quota_loom))]
#[derive(Debug)]
pub(crate) struct SwapCell<T>(arc_swap::ArcSwap<T>);

/// What [`SwapCell::load`] returns: a guard that derefs to the value.
#[cfg(not(quota_loom))]
pub(crate) type Snapshot<T> = arc_swap::Guard<StdArc<T>>;

#[cfg(not(quota_loom))]
impl<T> SwapCell<T> {
    pub(crate) fn new(value: T) -> SwapCell<T> {
        SwapCell(arc_swap::ArcSwap::from_pointee(value))
    }

    /// The value in force; never allocates.
    #[inline]
    pub(crate) fn load(&self) -> Snapshot<T> {
        self.0.load()
    }

    /// A copy of the value in force.
    pub(crate) fn get(&self) -> T
    where
        T: Copy,
    {
        **self.0.load()
    }

    pub(crate) fn store(&self, value: T) {
        self.0.store(StdArc::new(value));
    }
}

/// Loom stand-in for [`SwapCell`]: a loom `RwLock<Arc<_>>`, so the models see
/// the swap as a synchronisation point.
#[cfg(quota_loom)]
#[derive(Debug)]
pub(crate) struct SwapCell<T>(loom::sync::RwLock<Arc<T>>);

#[cfg(quota_loom)]
pub(crate) type Snapshot<T> = Arc<T>;

#[cfg(quota_loom)]
impl<T> SwapCell<T> {
    pub(crate) fn new(value: T) -> SwapCell<T> {
        SwapCell(loom::sync::RwLock::new(Arc::new(value)))
    }

    #[inline]
    pub(crate) fn load(&self) -> Snapshot<T> {
        self.0.read().unwrap().clone()
    }

    pub(crate) fn get(&self) -> T
    where
        T: Copy,
    {
        *self.load()
    }

    pub(crate) fn store(&self, value: T) {
        *self.0.write().unwrap() = Arc::new(value);
    }
}

// ----- time ------------------------------------------------------------------

/// Where the engine reads time: a `quanta::Clock` and the raw reading taken
/// as the origin; with a cached clock, the last reading a refresher thread
/// stored (see `ManagerBuilder::cached_clock`).
#[cfg(not(quota_loom))]
#[derive(Debug)]
pub(crate) struct TimeSource {
    clock: quanta::Clock,
    origin: u64,
    /// Nanoseconds since the origin as last refreshed, if calls read a
    /// cached reading instead of the clock.
    cached: Option<AtomicU64>,
}

#[cfg(not(quota_loom))]
impl TimeSource {
    /// Time from `clock` (`quanta::Clock::new()` if `None`), counted from
    /// now; read from a cached reading if `cached`.
    pub(crate) fn new(clock: Option<quanta::Clock>, cached: bool) -> TimeSource {
        let clock = clock.unwrap_or_default();
        let origin = clock.raw();
        TimeSource {
            clock,
            origin,
            cached: cached.then(|| AtomicU64::new(0)),
        }
    }

    /// Nanoseconds since the origin (`bucket_nanos` is for the stand-in).
    #[inline]
    pub(crate) fn nanos(&self, _bucket_nanos: u64) -> u64 {
        match &self.cached {
            // Relaxed: a reading orders nothing, and the engine takes a
            // reading older than another thread's as it takes any stale one
            // (window.rs, "Rotation"). The value only grows, and a thread
            // never reads an older value of one atomic after a newer one.
            Some(cached) => cached.load(Ordering::Relaxed),
            None => self.read(),
        }
    }

    /// Reads the clock itself.
    #[inline]
    fn read(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }

    /// Stores a fresh reading for the calls to read (cached clocks only).
    pub(crate) fn refresh(&self) {
        if let Some(cached) = &self.cached {
            // Never backwards, even if two refreshes race.
            cached.fetch_max(self.read(), Ordering::Relaxed);
        }
    }
}

/// Loom stand-in for [`TimeSource`]: a bucket counter the model advances
/// with [`TimeSource::advance`].
#[cfg(quota_loom)]
#[derive(Debug)]
pub(crate) struct TimeSource {
    ticks: AtomicU64,
}

#[cfg(quota_loom)]
impl TimeSource {
    pub(crate) fn new(_clock: Option<quanta::Clock>, _cached: bool) -> TimeSource {
        TimeSource {
            ticks: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn nanos(&self, bucket_nanos: u64) -> u64 {
        // The models read time like any other shared value; SeqCst keeps the
        // clock itself out of the orderings being verified.
        self.ticks.load(Ordering::SeqCst) * bucket_nanos
    }

    /// Nothing to refresh: the models move time by hand.
    pub(crate) fn refresh(&self) {}

    /// Moves time forward by whole buckets.
    pub(crate) fn advance(&self, buckets: u64) {
        self.ticks.fetch_add(buckets, Ordering::SeqCst);
    }
}
