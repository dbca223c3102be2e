//! The enforce and throttle paths perform no heap allocation, on admission
//! and on refusal (or delay) alike. A counting global allocator counts the
//! allocations each thread makes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use streambus_tenancy::{Error, Manager, Quotas};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn enforce_and_throttle_allocate_nothing_on_admit_or_refuse() {
    let (clock, mock) = quanta::Clock::mock();
    let m = Manager::builder().clock(clock).build();
    m.create_tenant(
        "hot",
        "Hot",
        Quotas {
            max_bytes_per_second: 1_000_000,
            max_connections: 2,
            max_topics: 1,
            max_storage_bytes: 10,
            max_retention_hours: 1,
            ..Quotas::default()
        },
    )
    .unwrap();
    m.create_tenant("free", "Free", Quotas::unlimited())
        .unwrap();
    let tracker = m.get_tracker("hot").unwrap();
    // Warm up: the first use of the epoch-based map and the quota cell may
    // set up thread-local state once.
    // (The produce path reads its limits without an `ArcSwap` guard, so the
    // count quotas are what first touches arc-swap's per-thread debt list.)
    for _ in 0..10 {
        let _ = m.enforce_produce_quota("hot", 1, 1);
        let _ = tracker.enforce_produce(1, 1);
        let _ = m.throttle_produce_quota("hot", 1, 1);
        m.enforce_connection_quota("hot").unwrap();
        m.release_connection("hot");
    }

    let mut admitted = 0;
    let mut refused = 0;
    let (mut throttled, mut unthrottled) = (0, 0);
    let n = allocations_in(|| {
        for i in 0..200_000u64 {
            // Cross bucket boundaries too: rotation is on the measured path.
            if i % 1000 == 0 {
                mock.increment(Duration::from_millis(37));
            }
            for r in [
                m.enforce_produce_quota("hot", 100, 1),
                m.enforce_consume_quota("hot", 100, 1),
                tracker.enforce_produce(100, 1),
                m.enforce_request_quota("hot"),
                m.enforce_produce_quota("free", 1 << 20, 10),
            ] {
                match r {
                    Ok(()) => admitted += 1,
                    Err(Error::QuotaExceeded(_)) => refused += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            // Throttle mode: recorded, answered with a delay.
            for d in [
                m.throttle_produce_quota("hot", 1000, 1),
                m.throttle_consume_quota("hot", 1000, 1),
                tracker.throttle_produce(1000, 1),
                tracker.throttle_consume(0, 0),
                m.throttle_produce_quota("free", 1 << 20, 10),
            ] {
                if d.unwrap().is_zero() {
                    unthrottled += 1;
                } else {
                    throttled += 1;
                }
            }
        }
    });
    assert_eq!(n, 0, "enforce allocated {n} times");
    assert!(
        admitted > 0 && refused > 0,
        "{admitted} admitted, {refused} refused"
    );
    assert!(
        throttled > 0 && unthrottled > 0,
        "{throttled} throttled, {unthrottled} not"
    );

    // Refusals that never fit (retry_after None) and every count quota.
    let n = allocations_in(|| {
        for _ in 0..10_000 {
            assert!(m.enforce_produce_quota("hot", 2_000_000, 1).is_err());
            m.enforce_connection_quota("hot").unwrap();
            m.enforce_connection_quota("hot").unwrap();
            assert!(m.enforce_connection_quota("hot").is_err());
            m.release_connection("hot");
            m.release_connection("hot");
            m.enforce_topic_quota("hot", 1).unwrap();
            assert!(m.enforce_topic_quota("hot", 1).is_err());
            m.release_topic("hot", 1);
            assert!(m.enforce_storage_quota("hot", 11).is_err());
            assert!(m.enforce_retention_quota("hot", 2).is_err());
            m.update_storage_usage("hot", 5).unwrap();
            assert!(tracker.add_connection().is_ok());
            tracker.remove_connection();
        }
    });
    assert_eq!(n, 0, "count quotas allocated {n} times");
}

/// With a cluster sync attached, the produce path still allocates nothing:
/// a watched tenant's first call (which feeds the sync through a
/// preallocated queue), a capped admission and a capped refusal. (Redis is
/// not needed: the sync holds tenants to their fallback shares meanwhile.)
#[cfg(feature = "cluster")]
#[test]
fn enforce_allocates_nothing_under_a_cluster_sync() {
    use std::sync::Arc;
    use streambus_tenancy::server::{ClusterOptions, ClusterSync};

    let m = Arc::new(Manager::new());
    let q = Quotas {
        max_bytes_per_second: 1_000_000,
        ..Quotas::default()
    };
    for i in 0..100 {
        m.create_tenant(&format!("t{i}"), "T", q).unwrap();
    }
    // Port 1 on loopback: nothing listens, every round fails at once.
    let sync = ClusterSync::start(
        Arc::clone(&m),
        "redis://127.0.0.1:1",
        ClusterOptions::new("a"),
    )
    .unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    for id in &ids {
        // The first call of each tenant: the feed.
        assert_eq!(
            allocations_in(|| drop(m.enforce_produce_quota(id, 1_000, 1))),
            0
        );
    }
    let mut refused = false;
    let n = allocations_in(|| {
        for _ in 0..2_000 {
            refused |= m.enforce_produce_quota(&ids[0], 1_000, 1).is_err();
        }
    });
    assert_eq!(n, 0);
    assert!(
        refused,
        "the cap refused some calls, and refusing allocated nothing"
    );
    sync.stop();
}
