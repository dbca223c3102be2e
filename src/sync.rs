//! The one place the engine's own synchronisation primitives come from.
//!
//! Under `--cfg quota_loom` every atomic, `Arc` and lock below is loom's, so the
//! models in `loom-tests/` explore the interleavings of the engine's real code;
//! otherwise they are `std`'s. A namespaced cfg is used instead of a bare
//! `--cfg loom` because that one changes tokio and other crates too (crossbeam
//! uses `crossbeam_loom` for the same reason).
//!
//! `papaya`, `arc-swap` and `quanta` know nothing of loom, so the engine reaches
//! them through small internal types ([`QuotaCell`](crate::quotas) and the
//! clock in `clock.rs`) that swap in a loom-visible stand-in under the cfg.

#[cfg(not(quota_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, AtomicU8, Ordering},
    Arc,
};

#[cfg(quota_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, AtomicU8, Ordering},
    Arc, RwLock,
};

/// A pause in a spin loop (loom must be told, or it explores the spin forever).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(quota_loom))]
    std::hint::spin_loop();
    #[cfg(quota_loom)]
    loom::thread::yield_now();
}
