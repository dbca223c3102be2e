//! Fixtures shared by the bench targets: tenant ids, quotas that never refuse,
//! and the three implementations built the same way.
//!
//! Every throughput bench offers the same call to every implementation: a
//! produce of [`MSG_BYTES`] bytes in one message. The quotas are chosen so that
//! none of them refuses on that load, and each is still *limited* (so every
//! implementation runs its real check, not an "unlimited" shortcut):
//!
//! - ours and the seed port: every rate quota at [`MAX_RATE_QUOTA`]
//!   (2^39 - 1 per second), every count quota at 10^9;
//! - governor: one bytes/s quota of 10^9 bytes/s (one cell per nanosecond,
//!   governor's finest period) with a burst of `u32::MAX` bytes. At 64 bytes a
//!   call that is 15.6 M calls/s per key, more than any bench here offers.
//!
//! The benches check this before they measure (`assert_admits`).

#![allow(dead_code)]

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota as GovQuota};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use streambus_tenancy::{Manager, Quotas, MAX_RATE_QUOTA};

use crate::seed_port::SeedManager;

/// Bytes in every produce call the benches make.
pub const MSG_BYTES: u64 = 64;

/// Count quotas large enough that no bench reaches them.
pub const BIG_COUNT: i64 = 1_000_000_000;

/// A 15-byte tenant id: `tenant-00000042`.
pub fn tenant_id(i: usize) -> String {
    format!("tenant-{i:08}")
}

/// `n` ids in a fixed shuffled order (seeded, so every run visits the same
/// sequence).
pub fn shuffled_ids(n: usize) -> Vec<String> {
    let mut ids: Vec<String> = (0..n).map(tenant_id).collect();
    ids.shuffle(&mut StdRng::seed_from_u64(0x5eed_0004));
    ids
}

/// `len` tenant ids drawn from a Zipf(1.0) law over `n` tenants (the tenant
/// of rank `k` drawn with weight `1/k`), ranks mapped to ids in a shuffled
/// order so that the popular tenants are not neighbours in memory.
/// Deterministic (fixed seed), precomputed so that drawing costs the
/// measured loop nothing.
pub fn zipf_ids(n: usize, len: usize) -> Vec<String> {
    use rand::Rng;
    let ids = shuffled_ids(n);
    let mut cumulative = Vec::with_capacity(n);
    let mut total = 0.0f64;
    for k in 1..=n {
        total += 1.0 / k as f64;
        cumulative.push(total);
    }
    let mut rng = StdRng::seed_from_u64(0x21bf_0001);
    (0..len)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            let rank = cumulative.partition_point(|&c| c < u).min(n - 1);
            ids[rank].clone()
        })
        .collect()
}

/// Limited quotas that a bench never reaches.
pub fn roomy_quotas() -> Quotas {
    Quotas {
        max_bytes_per_second: MAX_RATE_QUOTA,
        max_messages_per_second: MAX_RATE_QUOTA,
        max_requests_per_second: MAX_RATE_QUOTA,
        max_connections: BIG_COUNT,
        max_producers: BIG_COUNT,
        max_consumers: BIG_COUNT,
        max_consumer_groups: BIG_COUNT,
        max_topics: BIG_COUNT,
        max_partitions: BIG_COUNT,
        ..Quotas::default()
    }
}

/// Quotas that refuse: 1,000 bytes/s, everything else roomy.
pub fn tiny_bytes_quotas() -> Quotas {
    Quotas {
        max_bytes_per_second: 1_000,
        ..roomy_quotas()
    }
}

/// Our engine on the real clock with `n` tenants `tenant_id(0..n)`.
pub fn ours(n: usize, quotas: Quotas) -> Manager {
    let m = Manager::new();
    for i in 0..n {
        m.create_tenant(&tenant_id(i), "Bench tenant", quotas)
            .unwrap();
    }
    m
}

/// [`ours`] with [`ManagerBuilder::cached_clock`] refreshed every
/// millisecond: calls read a cached reading instead of the TSC.
///
/// [`ManagerBuilder::cached_clock`]: streambus_tenancy::ManagerBuilder::cached_clock
pub fn ours_cached_clock(n: usize, quotas: Quotas) -> Manager {
    let m = Manager::builder()
        .cached_clock(Duration::from_millis(1))
        .build();
    for i in 0..n {
        m.create_tenant(&tenant_id(i), "Bench tenant", quotas)
            .unwrap();
    }
    m
}

/// Governor's clock that reads quanta's cached time, refreshed every
/// millisecond by quanta's upkeep thread (one per process, shared by clones):
/// the like-for-like baseline of [`ours_cached_clock`].
pub fn governor_upkeep_clock() -> governor::clock::QuantaUpkeepClock {
    static CLOCK: std::sync::OnceLock<governor::clock::QuantaUpkeepClock> =
        std::sync::OnceLock::new();
    CLOCK
        .get_or_init(|| {
            governor::clock::QuantaUpkeepClock::from_interval(Duration::from_millis(1))
                .expect("quanta's upkeep thread")
        })
        .clone()
}

/// Governor keyed on [`governor_upkeep_clock`].
pub type GovUpkeepKeyed = governor::RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    governor::clock::QuantaUpkeepClock,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;

/// Governor direct on [`governor_upkeep_clock`].
pub type GovUpkeepDirect = governor::RateLimiter<
    governor::state::direct::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::QuantaUpkeepClock,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;

/// [`governor_keyed`] on [`governor_upkeep_clock`].
pub fn governor_keyed_upkeep(n: usize, quota: GovQuota) -> GovUpkeepKeyed {
    let g = GovUpkeepKeyed::dashmap_with_clock(quota, governor_upkeep_clock());
    for i in 0..n {
        let _ = g.check_key_n(&tenant_id(i), NonZeroU32::new(1).unwrap());
    }
    g
}

/// [`governor_direct`] on [`governor_upkeep_clock`].
pub fn governor_direct_upkeep(quota: GovQuota) -> GovUpkeepDirect {
    GovUpkeepDirect::direct_with_clock(quota, governor_upkeep_clock())
}

/// Our engine on a frozen mock clock (the window never frees).
pub fn ours_mock(n: usize, quotas: Quotas) -> (Manager, std::sync::Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    // Start away from the origin so nothing depends on tick 0.
    mock.increment(Duration::from_secs(1));
    let m = Manager::builder().clock(clock).build();
    for i in 0..n {
        m.create_tenant(&tenant_id(i), "Bench tenant", quotas)
            .unwrap();
    }
    (m, mock)
}

/// The seed port with `n` tenants.
pub fn seed(n: usize, quotas: Quotas) -> SeedManager {
    let m = SeedManager::new();
    for i in 0..n {
        m.create_tenant(&tenant_id(i), "Bench tenant", quotas)
            .unwrap();
    }
    m
}

/// governor's roomy bytes/s quota (see the module docs).
pub fn governor_roomy_quota() -> GovQuota {
    GovQuota::with_period(Duration::from_nanos(1))
        .unwrap()
        .allow_burst(NonZeroU32::MAX)
}

/// governor's refusing quota: 1,000 bytes/s, burst 1,000.
pub fn governor_tiny_quota() -> GovQuota {
    GovQuota::per_second(NonZeroU32::new(1_000).unwrap())
}

/// A governor keyed limiter (default DashMap store, default quanta clock) with
/// state for `tenant_id(0..n)` already created.
pub fn governor_keyed(n: usize, quota: GovQuota) -> DefaultKeyedRateLimiter<String> {
    let g = DefaultKeyedRateLimiter::keyed(quota);
    for i in 0..n {
        let _ = g.check_key_n(&tenant_id(i), NonZeroU32::new(1).unwrap());
    }
    g
}

/// A governor direct limiter (one state, no map): the analogue of a cached
/// tracker.
pub fn governor_direct(quota: GovQuota) -> DefaultDirectRateLimiter {
    DefaultDirectRateLimiter::direct(quota)
}

/// [`MSG_BYTES`] as governor's cell count.
pub fn gov_n() -> NonZeroU32 {
    NonZeroU32::new(MSG_BYTES as u32).unwrap()
}

/// Runs `calls` produce calls and panics if any was refused: the fairness
/// check every throughput bench makes before it measures.
pub fn assert_admits(what: &str, calls: usize, mut call: impl FnMut(usize) -> bool) {
    for i in 0..calls {
        assert!(
            call(i),
            "{what} refused call {i}: the bench would not be fair"
        );
    }
}

/// Every measured operation, each behind its own `#[inline(never)]` call site.
///
/// The engine's hot functions are `#[inline]`, so without this the compiler
/// would inline them differently into every bench loop (depending on how many
/// call sites the bench file has), and instruction counts would move by 20%
/// when an unrelated bench is added. With one out-of-line call site per
/// operation, criterion and iai-callgrind measure the same machine code, as a
/// broker's one produce handler would call it; the call itself costs every
/// implementation the same few instructions.
pub mod call {
    use std::num::NonZeroU32;

    use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil};
    use streambus_tenancy::{Error, Manager, QuotaTracker};

    use super::MSG_BYTES;
    use crate::seed_port::{SeedError, SeedManager, SeedTracker};

    type GovInstant = <governor::clock::DefaultClock as governor::clock::Clock>::Instant;
    type GovResult = Result<Result<(), NotUntil<GovInstant>>, governor::InsufficientCapacity>;

    #[inline(never)]
    pub fn governor_keyed_upkeep(g: &super::GovUpkeepKeyed, id: &String) -> GovResult {
        g.check_key_n(id, super::gov_n())
    }

    #[inline(never)]
    pub fn governor_direct_upkeep(g: &super::GovUpkeepDirect) -> GovResult {
        g.check_n(super::gov_n())
    }

    #[inline(never)]
    pub fn ours_produce(m: &Manager, id: &str) -> Result<(), Error> {
        m.enforce_produce_quota(id, MSG_BYTES, 1)
    }

    #[inline(never)]
    pub fn ours_tracker_produce(t: &QuotaTracker) -> Result<(), Error> {
        t.enforce_produce(MSG_BYTES, 1)
    }

    #[inline(never)]
    pub fn ours_throttle(m: &Manager, id: &str) -> Result<std::time::Duration, Error> {
        m.throttle_produce_quota(id, MSG_BYTES, 1)
    }

    #[inline(never)]
    pub fn ours_tracker_throttle(t: &QuotaTracker) -> Result<std::time::Duration, Error> {
        t.throttle_produce(MSG_BYTES, 1)
    }

    #[inline(never)]
    pub fn ours_connection_pair(m: &Manager, id: &str) -> Result<(), Error> {
        let r = m.enforce_connection_quota(id);
        m.release_connection(id);
        r
    }

    #[inline(never)]
    pub fn ours_permit(m: &Manager, id: &str) -> bool {
        m.acquire_connection(id).is_ok()
    }

    #[inline(never)]
    pub fn seed_produce(m: &SeedManager, id: &str) -> Result<(), SeedError> {
        m.enforce_produce_quota(id, MSG_BYTES as i64, 1)
    }

    #[inline(never)]
    pub fn seed_tracker_produce(t: &SeedTracker) -> Result<(), SeedError> {
        t.enforce_produce(MSG_BYTES as i64, 1)
    }

    #[inline(never)]
    pub fn seed_connection_pair(m: &SeedManager, id: &str) -> Result<(), SeedError> {
        let r = m.enforce_connection_quota(id);
        m.release_connection(id);
        r
    }

    #[inline(never)]
    pub fn governor_keyed(g: &DefaultKeyedRateLimiter<String>, id: &String) -> GovResult {
        g.check_key_n(id, NonZeroU32::new(MSG_BYTES as u32).unwrap())
    }

    #[inline(never)]
    pub fn governor_direct(g: &DefaultDirectRateLimiter) -> GovResult {
        g.check_n(NonZeroU32::new(MSG_BYTES as u32).unwrap())
    }
}

/// Cycles through a slice without a division per step.
pub struct Cycle<'a, T> {
    items: &'a [T],
    next: usize,
}

impl<'a, T> Cycle<'a, T> {
    pub fn new(items: &'a [T]) -> Self {
        Cycle { items, next: 0 }
    }

    #[inline]
    pub fn next(&mut self) -> &'a T {
        let item = &self.items[self.next];
        self.next += 1;
        if self.next == self.items.len() {
            self.next = 0;
        }
        item
    }
}
