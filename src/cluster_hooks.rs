//! What the engine offers a cluster-wide quota sync: a feed of the tenants
//! that had traffic, and local caps on the rate quotas.
//!
//! The sync itself ([`ClusterSync`](crate::server::ClusterSync), feature
//! `cluster`) talks to Redis off the hot path. The engine only has to tell
//! it which tenants were called, and to enforce the local allowance it
//! hands each tenant, both without a network call, a lock or an allocation
//! on `enforce_*`.
//!
//! # The activity feed
//!
//! While a sync is attached, a tenant the sync is not following carries the
//! `WATCHED` bit in its status byte. An admission compares that byte with
//! `Active` anyway, so a watched tenant's first call takes the cold branch
//! of the status check: it clears the bit (`fetch_and`, so one caller wins)
//! and the winner pushes the tenant's id onto a bounded lock-free queue
//! ([`crossbeam_queue::ArrayQueue`]: preallocated, so the push allocates
//! nothing). Every later call of that tenant finds the byte equal to
//! `Active` and pays nothing. The sync drains the queue once per bucket,
//! follows those tenants while they have traffic, and sets the bit again
//! when it lets one go (after reading its totals, so nothing admitted in
//! between is lost: see `server::cluster`). A tenant that was never called
//! costs the sync nothing.
//!
//! If the queue is full, the id is not pushed and the `overflowed` flag is
//! raised; the sync then scans every tenant once for those whose bit is
//! clear and that it does not follow. Nothing is lost either way.
//!
//! # Caps
//!
//! A tracker's rate limits are read on every admission from its
//! sequence-locked copy (`rate_copy.rs`). A cap lowers a rate in that copy
//! only; the tenant's quotas (the `ArcSwap` source of truth, what the API
//! and `get_tenant` show) are untouched. Caps are in window units (what the
//! window may hold), converted to the per-second rate whose window limit
//! does not exceed them.
//!
//! While a sync is attached every tracker is capped: a tenant the sync
//! follows at the allowance the sync computed, any other at its *idle
//! share* while Redis answers (a window's quota divided by the live brokers
//! times the buckets: what one bucket of a fair share would carry, so that
//! a tenant first called on this broker is admitted at once up to that
//! much, and fully from the next sync on) and at its *fallback share*
//! while Redis does not (the quota divided by the live brokers last seen).

use crossbeam_queue::ArrayQueue;

use crate::clock::Geometry;
use crate::quotas::rates_of;
use crate::sync::{AtomicBool, AtomicU64, Ordering, StdArc};
use crate::Quotas;

/// Capacity of the activity queue: tenants that may start having traffic
/// between two drains before the sync falls back to a scan.
pub(crate) const FEED_CAPACITY: usize = 1 << 16;

/// The engine side of a cluster sync, shared by every tracker of a manager.
#[derive(Debug)]
pub(crate) struct ClusterHooks {
    feed: ArrayQueue<StdArc<str>>,
    overflowed: AtomicBool,
    /// Live brokers last seen (at least 1).
    live: AtomicU64,
    /// Whether the last sync reached Redis.
    reachable: AtomicBool,
}

impl ClusterHooks {
    pub(crate) fn new() -> ClusterHooks {
        ClusterHooks {
            feed: ArrayQueue::new(FEED_CAPACITY),
            overflowed: AtomicBool::new(false),
            live: AtomicU64::new(1),
            reachable: AtomicBool::new(true),
        }
    }

    /// Tells the sync that `id` had its first call since it was watched.
    #[cold]
    pub(crate) fn push(&self, id: StdArc<str>) {
        if self.feed.push(id).is_err() {
            // Relaxed: the sync's scan finds the tenant by its status byte.
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }

    /// The next tenant from the feed.
    pub(crate) fn pop(&self) -> Option<StdArc<str>> {
        self.feed.pop()
    }

    /// Whether the feed overflowed since the last call (and clears it).
    pub(crate) fn take_overflowed(&self) -> bool {
        self.overflowed.swap(false, Ordering::Relaxed)
    }

    /// Sets the live broker count and whether Redis answers.
    pub(crate) fn set_cluster(&self, live: u64, reachable: bool) {
        self.live.store(live.max(1), Ordering::Relaxed);
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    /// Live brokers last seen.
    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The caps (window units) of a tenant the sync does not follow.
    pub(crate) fn unfollowed_caps(&self, quotas: &Quotas, g: &Geometry) -> [Option<u64>; 3] {
        let live = self.live();
        let reachable = self.reachable.load(Ordering::Relaxed);
        rates_of(quotas).map(|q| {
            (q >= 0).then(|| {
                let window = g.window_limit(q as u64);
                if reachable {
                    idle_share(window, live, g.buckets)
                } else {
                    fallback_share(window, live)
                }
            })
        })
    }
}

/// A window's quota over the live brokers times the buckets: one bucket of a
/// fair share, and at least 1 if the quota is not 0.
pub(crate) fn idle_share(window: u64, live: u64, buckets: u64) -> u64 {
    let share = window / live.max(1).saturating_mul(buckets);
    if window > 0 {
        share.max(1)
    } else {
        0
    }
}

/// A window's quota over the live brokers: what each may admit while Redis
/// does not answer.
pub(crate) fn fallback_share(window: u64, live: u64) -> u64 {
    window / live.max(1)
}

/// The per-second rates a tracker enforces for `quotas` under `caps`
/// (window units; `None` keeps the quota).
pub(crate) fn capped_rates(quotas: &Quotas, caps: [Option<u64>; 3], g: &Geometry) -> [i64; 3] {
    let mut rates = rates_of(quotas);
    for (rate, cap) in rates.iter_mut().zip(caps) {
        if let (true, Some(cap)) = (*rate >= 0, cap) {
            if cap < g.window_limit(*rate as u64) {
                *rate = g.rate_for_window(cap) as i64;
            }
        }
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Ordering;
    use std::time::Duration;

    fn g(window_ms: u64, buckets: u64) -> Geometry {
        Geometry::new(Duration::from_millis(window_ms), buckets as usize).unwrap()
    }

    #[test]
    fn a_cap_never_admits_more_than_itself_in_a_window() {
        for (window, buckets) in [(1000, 10), (2500, 5), (333, 3), (60_000, 600)] {
            let g = g(window, buckets);
            for cap in [0u64, 1, 7, 999, 1000, 123_456_789] {
                let q = Quotas {
                    max_bytes_per_second: 1 << 40,
                    ..Quotas::default()
                };
                let rates = capped_rates(&q, [Some(cap), None, None], &g);
                assert!(g.window_limit(rates[0] as u64) <= cap, "{window} ms: {cap}");
                // And it is the largest such rate.
                assert!(
                    g.window_limit(rates[0] as u64 + 1) > cap,
                    "{window} ms: {cap}"
                );
            }
        }
    }

    #[test]
    fn a_cap_above_the_quota_or_on_an_unlimited_rate_changes_nothing() {
        let g = g(1000, 10);
        let q = Quotas {
            max_bytes_per_second: 500,
            max_messages_per_second: -1,
            ..Quotas::default()
        };
        let rates = capped_rates(&q, [Some(10_000), Some(3), None], &g);
        assert_eq!(rates[0], 500);
        assert_eq!(rates[1], -1);
        assert_eq!(rates[2], q.max_requests_per_second);
    }

    /// Bounded stress of the activity feed over the real engine: four
    /// threads call 500 tenants while a sync thread drains the feed and
    /// watches each fed tenant again. Every arming (the attach, then each
    /// rewatch) is answered by exactly one feed or is still armed at the
    /// end, so no call's tenant is lost and none is fed twice.
    #[cfg(not(quota_loom))]
    #[test]
    fn every_arming_feeds_once_under_contention() {
        use std::collections::HashMap;
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        let m = Arc::new(crate::Manager::new());
        let ids: Vec<String> = (0..500).map(|i| format!("t{i:03}")).collect();
        for id in &ids {
            m.create_tenant(id, "T", Quotas::unlimited()).unwrap();
        }
        m.attach_cluster();
        let done = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..4)
            .map(|k| {
                let (m, ids) = (Arc::clone(&m), ids.clone());
                std::thread::spawn(move || {
                    for round in 0..200 {
                        for (i, id) in ids.iter().enumerate() {
                            if (i + round + k) % 3 == 0 {
                                m.enforce_request_quota(id).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        let sync = {
            let (m, done) = (Arc::clone(&m), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut fed: HashMap<String, u64> = HashMap::new();
                let mut rewatched: HashMap<String, u64> = HashMap::new();
                let hooks = m.cluster_hooks().unwrap();
                loop {
                    let finished = done.load(Ordering::Acquire);
                    while let Some(id) = hooks.pop() {
                        *fed.entry(id.to_string()).or_default() += 1;
                        m.get_tracker(&id).unwrap().rewatch();
                        *rewatched.entry(id.to_string()).or_default() += 1;
                    }
                    if finished {
                        return (fed, rewatched);
                    }
                    std::thread::yield_now();
                }
            })
        };
        for c in callers {
            c.join().unwrap();
        }
        done.store(true, Ordering::Release);
        let (fed, rewatched) = sync.join().unwrap();
        assert!(!m.cluster_hooks().unwrap().take_overflowed());
        let mut total_fed = 0;
        for id in &ids {
            let f = fed.get(id).copied().unwrap_or(0);
            let armed = 1 + rewatched.get(id).copied().unwrap_or(0);
            let watched = m.get_tracker(id).unwrap().is_watched();
            assert!(f >= 1, "{id} was called and never fed");
            assert_eq!(
                armed - f,
                u64::from(watched),
                "{id}: armed {armed}, fed {f}"
            );
            total_fed += f;
        }
        assert!(
            total_fed > ids.len() as u64,
            "the sync rewatched and was fed again"
        );
    }

    /// A cap binds admissions without changing the quotas the API shows; a
    /// tenant not followed starts at its idle share, a quota update too.
    #[cfg(not(quota_loom))]
    #[test]
    fn caps_bind_the_hot_path_and_leave_the_quotas_alone() {
        let (clock, _mock) = quanta::Clock::mock();
        let m = crate::Manager::builder().clock(clock).build();
        let q = Quotas {
            max_bytes_per_second: 3000,
            max_messages_per_second: -1,
            max_requests_per_second: -1,
            ..Quotas::default()
        };
        m.create_tenant("a", "A", q).unwrap();
        m.attach_cluster();
        // One broker live, 10 buckets: the idle share is 300 bytes.
        assert!(m.enforce_produce_quota("a", 300, 1).is_ok());
        let e = m.enforce_produce_quota("a", 1, 1).unwrap_err();
        assert!(
            matches!(e, crate::Error::QuotaExceeded(ref q) if q.limit == 3000),
            "{e:?}"
        );
        assert_eq!(m.get_tenant("a").unwrap().quotas, q);
        let t = m.get_tracker("a").unwrap();
        t.cap_rates([Some(1000), None, None]);
        assert!(m.enforce_produce_quota("a", 700, 1).is_ok());
        assert!(m.enforce_produce_quota("a", 1, 1).is_err());
        // A new quota starts at its idle share again.
        let q2 = Quotas {
            max_bytes_per_second: 100_000,
            ..q
        };
        m.update_tenant("a", None, Some(q2)).unwrap();
        assert_eq!(m.get_tenant("a").unwrap().quotas, q2);
        assert!(m.enforce_produce_quota("a", 9_000, 1).is_ok());
        assert!(m.enforce_produce_quota("a", 1_001, 1).is_err());
        // A tenant created after the attach is capped too.
        m.create_tenant("b", "B", q).unwrap();
        assert!(m.enforce_produce_quota("b", 301, 1).is_err());
    }

    #[test]
    fn shares_split_the_quota() {
        assert_eq!(fallback_share(900, 3), 300);
        assert_eq!(fallback_share(900, 0), 900);
        assert_eq!(idle_share(900, 3, 10), 30);
        assert_eq!(idle_share(5, 3, 10), 1, "at least one unit");
        assert_eq!(idle_share(0, 3, 10), 0, "a zero quota stays zero");
    }
}
