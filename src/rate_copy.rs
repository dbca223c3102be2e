//! The three rate quotas, copied under a sequence lock for the hot path.
//!
//! Every admission needs `max_bytes_per_second`, `max_messages_per_second`
//! and `max_requests_per_second` of one version of a tenant's quotas. An
//! `ArcSwap` guard costs about 45 instructions; this copy costs four loads
//! and a compare. The `ArcSwap` in [`QuotaCell`](crate::quotas) stays the
//! source of truth: a reader that finds a write under way falls back to it,
//! so readers never wait for a writer and the hot path stays lock-free even
//! if a writer is preempted in the middle of its write.
//!
//! # Orderings
//!
//! A writer takes the sequence from even to odd (compare-exchange, `Acquire`,
//! so writers exclude each other and each sees the previous one's stores),
//! makes its write to the source of truth, stores the three rates with
//! `Release`, and stores the next even sequence with `Release`. A reader
//! loads the sequence (`Acquire`), the three rates (`Acquire`, so the second
//! sequence load cannot move before them) and the sequence again; if the two
//! agree and are even, the rates all come from the write that published that
//! sequence. (If a rate came from a later write, that write's odd sequence
//! store happens before the rate store, which the reader's `Acquire` load
//! synchronises with, so the second sequence load reads at least the odd
//! value and the check fails.) The loom model `quota_swap_whole` covers it.

use crate::sync::{AtomicU64, Ordering};

/// Three `i64` rate quotas under a sequence lock.
#[derive(Debug)]
pub(crate) struct RateCopy {
    seq: AtomicU64,
    /// `max_bytes_per_second`, `max_messages_per_second`,
    /// `max_requests_per_second`, as `i64` bit patterns.
    rates: [AtomicU64; 3],
}

impl RateCopy {
    pub(crate) fn new(rates: [i64; 3]) -> RateCopy {
        RateCopy {
            seq: AtomicU64::new(0),
            rates: rates.map(|r| AtomicU64::new(r as u64)),
        }
    }

    /// The three rates of one write, or `None` while a write is under way
    /// (the caller then reads the source of truth).
    #[inline]
    pub(crate) fn read(&self) -> Option<[i64; 3]> {
        // Acquire: pairs with the writer's closing Release store, so the
        // rates it published are visible.
        let before = self.seq.load(Ordering::Acquire);
        // Acquire: pairs with the Release rate stores and keeps the second
        // sequence load after these.
        let rates = [
            self.rates[0].load(Ordering::Acquire) as i64,
            self.rates[1].load(Ordering::Acquire) as i64,
            self.rates[2].load(Ordering::Acquire) as i64,
        ];
        let after = self.seq.load(Ordering::Relaxed);
        (before == after && before & 1 == 0).then_some(rates)
    }

    /// Publishes the rates `write` returns, running `write` (the write to
    /// the source of truth, which computes the rates to publish) inside the
    /// odd phase, so no reader can take the old rates after that write is
    /// visible. Writers exclude each other (an admin path and the cluster
    /// sync; readers never wait for them).
    pub(crate) fn write(&self, write: impl FnOnce() -> [i64; 3]) {
        let mut seq = self.seq.load(Ordering::Relaxed);
        loop {
            if seq & 1 == 0 {
                // Acquire: the previous writer's stores come before ours.
                match self.seq.compare_exchange_weak(
                    seq,
                    seq + 1,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(actual) => seq = actual,
                }
            } else {
                crate::sync::spin_loop();
                seq = self.seq.load(Ordering::Relaxed);
            }
        }
        let rates = write();
        for (cell, rate) in self.rates.iter().zip(rates) {
            // Release: carries the odd sequence to any reader of this rate.
            cell.store(rate as u64, Ordering::Release);
        }
        // Release: publishes the rates to readers that acquire this sequence.
        self.seq.store(seq + 2, Ordering::Release);
    }
}
