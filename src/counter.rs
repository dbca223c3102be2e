//! Count quotas: connections, producers, consumers, groups, topics, partitions.
//!
//! A count is one `AtomicU64`. Admission is a compare-exchange loop that only
//! publishes `held + n` if it is within the limit, so neither the number held
//! nor any value a concurrent reader can load ever exceeds the limit (an
//! add-then-roll-back scheme would let readers see the overshoot). Release is a
//! saturating compare-exchange loop: releasing more than is held leaves 0, never
//! a wrapped-around huge count. A restore after a restart overwrites the count
//! with one store, above the limit if need be: an acquire or release that
//! loaded the old value then fails its compare-exchange and decides again
//! from the restored one, so every change lands before or after the restore,
//! never on a mix.
//!
//! # Orderings
//!
//! The counts guard no other memory: a count is its own datum, and every
//! decision about it is made by the compare-exchange that publishes it, whose
//! atomicity (not its ordering) is what bounds the count. `Relaxed` would be
//! enough for the counts alone; acquires and releases are `AcqRel`/`Acquire`
//! so that a permit released on one thread and re-acquired on another orders the
//! caller's own data as a mutex would, at no cost on x86-64.

use crate::sync::{AtomicU64, Ordering};

/// A count admitted or released atomically against a limit.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n` if `held + n <= limit` (`limit < 0` is unlimited),
    /// saturating at `u64::MAX`.
    ///
    /// Returns the amount actually added (less than `n` only at saturation,
    /// which a roll-back must give back instead of `n`); on refusal, what
    /// was held when the decision was made.
    #[inline]
    pub(crate) fn try_acquire(&self, n: u64, limit: i64) -> Result<u64, u64> {
        // Acquire: pairs with the AcqRel of the last release or acquire.
        let mut held = self.0.load(Ordering::Acquire);
        loop {
            let next = held.saturating_add(n);
            if limit >= 0 && next > limit as u64 {
                return Err(held);
            }
            match self
                .0
                .compare_exchange_weak(held, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(next - held),
                Err(actual) => held = actual,
            }
        }
    }

    /// Takes away `n`, stopping at zero.
    #[inline]
    pub(crate) fn release(&self, n: u64) {
        let mut held = self.0.load(Ordering::Acquire);
        loop {
            let next = held.saturating_sub(n);
            if next == held {
                return;
            }
            match self
                .0
                .compare_exchange_weak(held, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => held = actual,
            }
        }
    }

    /// Overwrites the count: storage usage is reported, and counts restored
    /// after a restart are set, not admitted.
    #[inline]
    pub(crate) fn set(&self, value: u64) {
        self.0.store(value, Ordering::Release);
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}
